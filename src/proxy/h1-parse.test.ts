import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseHead, isHeadError, ChunkedDecoder, ChunkError, hasBadHeadByte, hasCtlByte, type HeadError, type ParsedHead } from './h1-parse.ts';

const B = (s: string): Buffer => Buffer.from(s, 'latin1');

/** parseHead with generous limits unless given. */
function parse(s: string, maxSize = 16384, maxFields = 100, start = 0): ParsedHead | HeadError | null {
  return parseHead(B(s), start, maxSize, maxFields);
}

function ok(s: string, maxSize = 16384, maxFields = 100): ParsedHead {
  const r = parse(s, maxSize, maxFields);
  assert.ok(r !== null, `expected a parsed head for ${JSON.stringify(s)}, got null`);
  assert.ok(!isHeadError(r), `expected a parsed head for ${JSON.stringify(s)}, got ${JSON.stringify(r)}`);
  return r;
}

function fails(s: string, status: HeadError['status'], maxSize = 16384, maxFields = 100): HeadError {
  const r = parse(s, maxSize, maxFields);
  assert.ok(r !== null, `expected HeadError ${status} for ${JSON.stringify(s)}, got null`);
  assert.ok(isHeadError(r), `expected HeadError ${status} for ${JSON.stringify(s)}, got ${JSON.stringify(r)}`);
  assert.equal(r.status, status, `status for ${JSON.stringify(s)}: ${r.message}`);
  assert.equal(typeof r.message, 'string');
  assert.ok(r.message.length > 0);
  return r;
}

describe('parseHead: complete and incomplete heads', () => {
  test('returns null for every strict prefix of a valid head', () => {
    const head = 'GET /a?b=c HTTP/1.1\r\nHost: example.com\r\nX-A: 1\r\n\r\n';
    for (let i = 0; i < head.length; i++) {
      assert.equal(parse(head.slice(0, i)), null, `prefix of length ${i}`);
    }
    assert.ok(!isHeadError(ok(head)));
  });

  test('parses method, target, version, rawHeaders and end', () => {
    const head = 'POST /items/1?x=%20y HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\nX-Dup: a\r\nx-dup: b\r\n\r\n';
    const r = ok(head + 'abcGET / HTTP/1.1\r\n');
    assert.equal(r.method, 'POST');
    assert.equal(r.target, '/items/1?x=%20y');
    assert.equal(r.version, '1.1');
    assert.deepEqual(r.rawHeaders, ['Host', 'example.com', 'Content-Length', '3', 'X-Dup', 'a', 'x-dup', 'b']);
    assert.equal(r.end, head.length);

    const r10 = ok('GET * HTTP/1.0\r\n\r\n');
    assert.equal(r10.version, '1.0');
    assert.equal(r10.target, '*');
    assert.deepEqual(r10.rawHeaders, []);
    assert.equal(r10.end, 18);
  });

  test('honours a start offset: end is absolute', () => {
    const prefix = 'xxxx\r\n';
    const head = 'GET / HTTP/1.1\r\nHost: a\r\n\r\n';
    const r = parse(prefix + head, 16384, 100, prefix.length);
    assert.ok(r !== null && !isHeadError(r));
    assert.equal(r.method, 'GET');
    assert.equal(r.end, prefix.length + head.length);
  });

  test('field values lose leading OWS and trailing SP, keep a trailing HTAB and inner whitespace', () => {
    const r = ok('GET / HTTP/1.1\r\nA: \t  v  w  \r\nB:x\r\nC:\t\r\nD:   \r\nE: v\t\r\nF: v \t \r\nTransfer-Encoding: chunked\t\r\n\r\n');
    assert.deepEqual(r.rawHeaders, [
      'A', 'v  w',
      'B', 'x',
      'C', '',
      'D', '',
      'E', 'v\t',
      'F', 'v \t',
      'Transfer-Encoding', 'chunked\t',
    ]);
  });

  test('obs-text (0x80-0xff) in a field value is passed through as latin1', () => {
    const r = ok('GET / HTTP/1.1\r\nX: caf\xe9\r\n\r\n');
    assert.deepEqual(r.rawHeaders, ['X', 'caf\xe9']);
  });
});

describe('parseHead: malformed heads', () => {
  test('bare LF fails, in the request line, in a field line and at the end', () => {
    fails('GET / HTTP/1.1\nHost: a\r\n\r\n', 400);
    fails('GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n', 400);
    fails('GET / HTTP/1.1\r\nHost: a\r\n\n\r\n\r\n', 400);
    fails('\nGET / HTTP/1.1\r\n\r\n', 400);
  });

  test('an incomplete head with a bare LF fails early instead of waiting', () => {
    fails('GET / HTTP/1.1\nHo', 400);
    fails('GET / HTTP/1.1\r\nHost: a\n', 400);
    fails('\n', 400);
  });

  test('bare CR fails, complete or not; a CR as the last byte so far waits', () => {
    fails('GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n', 400);
    fails('GET / HTTP/1.1\r\nHost: ab\r\r\n\r\n', 400);
    fails('GET / HTTP/1.1\r\r\nHost: a\r\n\r\n', 400);
    fails('GET /\r HTTP/1.1\r\nHost: a\r\n\r\n', 400);
    fails('GET / HTTP/1.1\rHost', 400);
    assert.equal(parse('GET / HTTP/1.1\r'), null);
    assert.equal(parse('GET / HTTP/1.1\r\nHost: a\r\n\r'), null);
  });

  test('control characters fail (complete or not); HTAB in a value is allowed', () => {
    for (const c of ['\x00', '\x01', '\x08', '\x0b', '\x0c', '\x1b', '\x1f', '\x7f']) {
      fails(`GET / HTTP/1.1\r\nX: a${c}b\r\n\r\n`, 400);
      fails(`GET / HTTP/1.1\r\nX${c}: ab\r\n\r\n`, 400);
      fails(`GET /${c} HTTP/1.1\r\n\r\n`, 400);
      fails(`GET / HTTP/1.1\r\nX: a${c}`, 400);
    }
    assert.deepEqual(ok('GET / HTTP/1.1\r\nX: a\tb\r\n\r\n').rawHeaders, ['X', 'a\tb']);
  });

  test('obs-fold and whitespace before the first field name fail', () => {
    fails('GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n', 400);
    fails('GET / HTTP/1.1\r\nX: a\r\n\tb\r\n\r\n', 400);
    fails('GET / HTTP/1.1\r\n Host: a\r\n\r\n', 400);
  });

  test('whitespace between name and colon fails', () => {
    fails('GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400);
    fails('GET / HTTP/1.1\r\nHost\t: a\r\n\r\n', 400);
  });

  test('a field line without a colon, or with an empty name, fails', () => {
    fails('GET / HTTP/1.1\r\nHost a\r\n\r\n', 400);
    fails('GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n', 400);
    fails('GET / HTTP/1.1\r\n: a\r\n\r\n', 400);
    // A colon on a later line does not rescue a line without one.
    fails('GET / HTTP/1.1\r\nNoColon\r\nX: y\r\n\r\n', 400);
  });

  test('malformed request lines fail with 400', () => {
    fails('GET  / HTTP/1.1\r\n\r\n', 400);
    fails('GET /  HTTP/1.1\r\n\r\n', 400);
    fails('GET / HTTP/1.1 \r\n\r\n', 400);
    fails(' GET / HTTP/1.1\r\n\r\n', 400);
    fails('GET /\r\n\r\n', 400);
    fails('GET\r\n\r\n', 400);
    fails('GET / XTTP/1.1\r\n\r\n', 400);
    fails('GET / http/1.1\r\n\r\n', 400);
    fails('GET\t/ HTTP/1.1\r\n\r\n', 400);
  });

  test('a request line without any SP is 400 even when a later field line has a SP past offset 32', () => {
    // The first SP of the head is in the field line, 40 bytes in: the method itself is 3 characters.
    fails(`GET\r\n${'X'.repeat(40)}: v\r\n\r\n`, 400);
  });

  test('HTTP/0.9, HTTP/1.2, HTTP/2.0 and other versions fail', () => {
    for (const v of ['HTTP/0.9', 'HTTP/1.2', 'HTTP/1.9', 'HTTP/2.0', 'HTTP/3.0', 'HTTP/1.10', 'HTTP/1.', 'HTTP/11']) {
      fails(`GET / ${v}\r\nHost: a\r\n\r\n`, 400);
    }
    // HTTP/0.9 simple request (no version at all).
    fails('GET /\r\n\r\n', 400);
  });

  test('non-visible-ASCII in the target fails', () => {
    fails('GET /caf\xe9 HTTP/1.1\r\n\r\n', 400);
    fails('GET /a\tb HTTP/1.1\r\n\r\n', 400);
    fails('GET /\x80 HTTP/1.1\r\n\r\n', 400);
    fails('GET /\xff HTTP/1.1\r\n\r\n', 400);
    assert.equal(ok('GET /!~%41 HTTP/1.1\r\n\r\n').target, '/!~%41');
  });

  test('more fields than maxFields: 431; exactly maxFields is fine', () => {
    const lines = (n: number): string => Array.from({ length: n }, (_, i) => `X-${i}: v\r\n`).join('');
    assert.equal(ok(`GET / HTTP/1.1\r\n${lines(3)}\r\n`, 16384, 3).rawHeaders.length, 6);
    fails(`GET / HTTP/1.1\r\n${lines(4)}\r\n`, 431, 16384, 3);
    fails(`GET / HTTP/1.1\r\n${lines(101)}\r\n`, 431);
  });

  test('a head over maxSize: 431, complete or not; a head of exactly maxSize parses', () => {
    const head = `GET / HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(50)}\r\n\r\n`;
    assert.equal(ok(head, head.length).end, head.length);
    fails(head, 431, head.length - 1);
    // Still incomplete but already longer than maxSize.
    fails(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(200)}`, 431, 100);
    // Incomplete and within maxSize: wait.
    assert.equal(parse(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(50)}`, 100), null);
  });

  test('a request line alone over maxSize with no CRLF yet: 414', () => {
    fails(`GET /${'a'.repeat(200)}`, 414, 100);
    fails(`GET /${'a'.repeat(200)} HTTP/1.1`, 414, 100);
  });

  test('a request line alone over maxSize is 414 even once its CRLF has arrived', () => {
      fails(`GET /${'a'.repeat(200)} HTTP/1.1\r\nHost: a\r\n\r\n`, 414, 100);
      fails(`GET /${'a'.repeat(200)} HTTP/1.1\r\nHo`, 414, 100);
    });

  test('a method over 32 characters with no CRLF, over maxSize: 501', () => {
    fails('A'.repeat(200), 501, 100);
    fails(`${'A'.repeat(40)} /${'a'.repeat(100)}`, 501, 100);
    // A 32-character method is fine: the long target makes it 414.
    fails(`${'A'.repeat(32)} /${'a'.repeat(100)}`, 414, 100);
  });
});

// ---------------------------------------------------------------------------------------------

interface DecodeResult {
  data: Buffer;
  done: boolean;
  /** Absolute offset in the concatenated input where the decoder stopped once done, else -1. */
  end: number;
}

/** Feeds `pieces` in order (stopping once done), as the connection does: push(piece, 0). */
function decode(pieces: Buffer[], maxTrailer = 16384): DecodeResult {
  const out: Buffer[] = [];
  const d = new ChunkedDecoder((c) => {
    out.push(Buffer.from(c));
  }, maxTrailer);
  let offset = 0;
  for (const p of pieces) {
    const used = d.push(p, 0);
    assert.ok(used >= 0 && used <= p.length, `push returned ${used} for a piece of ${p.length}`);
    if (d.done) return { data: Buffer.concat(out), done: true, end: offset + used };
    assert.equal(used, p.length, 'a decoder that is not done consumes the whole piece');
    offset += p.length;
  }
  return { data: Buffer.concat(out), done: false, end: -1 };
}

function bytewise(b: Buffer): Buffer[] {
  return Array.from({ length: b.length }, (_, i) => b.subarray(i, i + 1));
}

/** Every way of feeding `input`: whole, 1 byte at a time, and in 2 pieces split at each offset. */
function* splits(input: Buffer): Generator<[string, Buffer[]]> {
  yield ['whole', [input]];
  yield ['bytewise', bytewise(input)];
  for (let i = 0; i <= input.length; i++) yield [`split at ${i}`, [input.subarray(0, i), input.subarray(i)]];
}

const PIPELINED = 'GET /next HTTP/1.1\r\nHost: a\r\n\r\n';

function assertDecodes(body: string | Buffer, expected: string | Buffer, maxTrailer = 16384): void {
  const bodyBuf = typeof body === 'string' ? B(body) : body;
  const want = typeof expected === 'string' ? B(expected) : expected;
  const input = Buffer.concat([bodyBuf, B(PIPELINED)]);
  for (const [how, pieces] of splits(input)) {
    const r = decode(pieces, maxTrailer);
    assert.ok(r.done, `${how}: not done for ${JSON.stringify(bodyBuf.toString('latin1'))}`);
    assert.equal(r.end, bodyBuf.length, `${how}: stopped at ${r.end}, the body ends at ${bodyBuf.length}`);
    assert.ok(r.data.equals(want), `${how}: decoded ${JSON.stringify(r.data.toString('latin1'))}`);
  }
}

function assertChunkError(body: string | Buffer, status: 400 | 431, maxTrailer = 16384, allSplits = true): void {
  const input = typeof body === 'string' ? B(body) : body;
  const ways: Iterable<[string, Buffer[]]> = allSplits
    ? splits(input)
    : [['whole', [input]], ['bytewise', bytewise(input)], ['halves', [input.subarray(0, input.length >> 1), input.subarray(input.length >> 1)]]];
  for (const [how, pieces] of ways) {
    assert.throws(() => decode(pieces, maxTrailer), (err: unknown) => {
      assert.ok(err instanceof ChunkError, `${how}: not a ChunkError: ${String(err)}`);
      assert.equal(err.status, status, `${how}: ${err.message}`);
      return true;
    }, `${how}: no ChunkError for ${JSON.stringify(input.toString('latin1').slice(0, 80))}`);
  }
}

describe('ChunkedDecoder: valid bodies', () => {
  test('a single chunk, at every split; stops before pipelined bytes', () => {
    assertDecodes('5\r\nhello\r\n0\r\n\r\n', 'hello');
  });

  test('several chunks, upper- and lowercase hex, leading zeros', () => {
    const data = 'x'.repeat(26) + 'y'.repeat(10) + 'z';
    assertDecodes(`1a\r\n${'x'.repeat(26)}\r\n00A\r\n${'y'.repeat(10)}\r\n1\r\nz\r\n000\r\n\r\n`, data);
  });

  test('an empty body (last-chunk only)', () => {
    assertDecodes('0\r\n\r\n', '');
  });

  test('chunk data may contain CR, LF and "0\\r\\n\\r\\n"', () => {
    assertDecodes('7\r\n0\r\n\r\n\n\r\r\n0\r\n\r\n', '0\r\n\r\n\n\r');
  });

  test('binary chunk data comes through unchanged', () => {
    const bin = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    assertDecodes(Buffer.concat([B('100\r\n'), bin, B('\r\n0\r\n\r\n')]), bin);
  });

  test('chunk extensions', () => {
    assertDecodes('5;a=b\r\nhello\r\n0\r\n\r\n', 'hello');
    assertDecodes('5 ; a = "q\\"x"\r\nhello\r\n0;last\r\n\r\n', 'hello');
    assertDecodes('5;a;b=c;d="";e="x y"\r\nhello\r\n0\r\n\r\n', 'hello');
    assertDecodes('5\t;\ta\t=\tb\r\nhello\r\n0\r\n\r\n', 'hello');
  });

  test('trailer fields are read and dropped', () => {
    assertDecodes('5\r\nhello\r\n0\r\nX-Sum: abc\r\nX-Other:  v \r\n\r\n', 'hello');
  });

  test('a chunk line of exactly 4096 characters is accepted', () => {
    const line = `5;a=${'b'.repeat(4096 - 4)}`;
    assert.equal(line.length, 4096);
    const body = B(`${line}\r\nhello\r\n0\r\n\r\n`);
    for (const pieces of [[body], bytewise(body), [body.subarray(0, 2000), body.subarray(2000)]]) {
      const r = decode(pieces);
      assert.ok(r.done);
      assert.equal(r.data.toString(), 'hello');
    }
  });

  test('push honours `from`', () => {
    const prefix = B('ignored bytes');
    const out: Buffer[] = [];
    const d = new ChunkedDecoder((c) => {
      out.push(Buffer.from(c));
    }, 1000);
    const body = '3\r\nabc\r\n0\r\n\r\n';
    const used = d.push(Buffer.concat([prefix, B(body), B('tail')]), prefix.length);
    assert.ok(d.done);
    assert.equal(used, prefix.length + body.length);
    assert.equal(Buffer.concat(out).toString(), 'abc');
  });

  test('onData returning false stops the push right after that slice; pushing on from there resumes', () => {
    const input = B('5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\nPIPELINED');
    const out: string[] = [];
    const d = new ChunkedDecoder((c) => {
      out.push(c.toString('latin1'));
      return false;
    }, 1000);
    const stops: number[] = [];
    let at = 0;
    while (!d.done) {
      const next = d.push(input, at);
      assert.ok(next > at, 'no progress');
      stops.push(next);
      at = next;
    }
    assert.deepEqual(out, ['hello', 'abc']);
    assert.deepEqual(stops, [8, 16, 23]);
    assert.equal(input.toString('latin1', at), 'PIPELINED');

    // Returning true (or nothing) does not stop.
    const d2 = new ChunkedDecoder(() => true, 1000);
    assert.equal(d2.push(input, 0), 23);
    assert.ok(d2.done);
  });

  test('done is false until the final CRLF of the trailer section', () => {
    const d = new ChunkedDecoder(() => {}, 1000);
    assert.equal(d.done, false);
    d.push(B('0\r\n'), 0);
    assert.equal(d.done, false);
    d.push(B('X: y\r\n'), 0);
    assert.equal(d.done, false);
    d.push(B('\r'), 0);
    assert.equal(d.done, false);
    assert.equal(d.push(B('\nrest'), 0), 1);
    assert.equal(d.done, true);
  });

  test('property: random chunks encoded validly and split randomly decode to their concatenation', () => {
    const hexCase = fc.constantFrom('lower', 'upper');
    const ext = fc.constantFrom('', ';a', ';a=b', ' ; n = "q\\"x"', ';x=1;y="a b"');
    const chunk = fc.record({ data: fc.uint8Array({ minLength: 1, maxLength: 300 }), zeros: fc.nat(3), hexCase, ext });
    const trailer = fc.constantFrom('', 'X-T: 1\r\n', 'A: b\r\nC: d e\r\n');
    fc.assert(fc.property(fc.array(chunk, { maxLength: 8 }), trailer, fc.array(fc.nat(), { maxLength: 12 }), (chunks, trl, cutSeeds) => {
      const parts: Buffer[] = [];
      for (const c of chunks) {
        let size = c.data.length.toString(16);
        size = '0'.repeat(c.zeros) + (c.hexCase === 'upper' ? size.toUpperCase() : size);
        parts.push(B(`${size}${c.ext}\r\n`), Buffer.from(c.data), B('\r\n'));
      }
      parts.push(B(`0\r\n${trl}\r\n`));
      const body = Buffer.concat(parts);
      const input = Buffer.concat([body, B(PIPELINED)]);
      const cuts = [...new Set(cutSeeds.map((s) => s % (input.length + 1)))].sort((a, b) => a - b);
      const pieces: Buffer[] = [];
      let prev = 0;
      for (const cut of cuts) {
        pieces.push(input.subarray(prev, cut));
        prev = cut;
      }
      pieces.push(input.subarray(prev));
      const r = decode(pieces);
      assert.ok(r.done);
      assert.equal(r.end, body.length);
      assert.ok(r.data.equals(Buffer.concat(chunks.map((c) => Buffer.from(c.data)))));
    }), { numRuns: 300 });
  });
});

describe('ChunkedDecoder: malformed bodies', () => {
  test('bad hex digits', () => {
    assertChunkError('g\r\nhello\r\n0\r\n\r\n', 400);
    assertChunkError('5g\r\nhello\r\n0\r\n\r\n', 400);
    assertChunkError('-5\r\nhello\r\n0\r\n\r\n', 400);
    assertChunkError('+5\r\nhello\r\n0\r\n\r\n', 400);
  });

  test('0x prefix', () => {
    assertChunkError('0x1\r\na\r\n0\r\n\r\n', 400);
    assertChunkError('0X5\r\nhello\r\n0\r\n\r\n', 400);
  });

  test('whitespace around the size', () => {
    assertChunkError(' 5\r\nhello\r\n0\r\n\r\n', 400);
    assertChunkError('\t5\r\nhello\r\n0\r\n\r\n', 400);
    assertChunkError('5 \r\nhello\r\n0\r\n\r\n', 400);
  });

  test('an empty size line', () => {
    assertChunkError('\r\nhello\r\n0\r\n\r\n', 400);
    assertChunkError('5\r\nhello\r\n\r\n0\r\n\r\n', 400);
    assertChunkError(';a=b\r\n\r\n', 400);
  });

  test('17 or more hex digits', () => {
    assertChunkError(`${'0'.repeat(16)}1\r\na\r\n0\r\n\r\n`, 400);
    assertChunkError(`${'f'.repeat(17)}\r\n`, 400);
    // 16 digits that do not fit a safe integer.
    assertChunkError(`${'f'.repeat(16)}\r\n`, 400);
  });

  test('16 hex digits with leading zeros are fine', () => {
    assertDecodes(`${'0'.repeat(15)}5\r\nhello\r\n0\r\n\r\n`, 'hello');
  });

  test('malformed extensions', () => {
    assertChunkError('5;\r\nhello\r\n0\r\n\r\n', 400);
    assertChunkError('5;a=\r\nhello\r\n0\r\n\r\n', 400);
    assertChunkError('5;=b\r\nhello\r\n0\r\n\r\n', 400);
    assertChunkError('5;a="unterminated\r\nhello\r\n0\r\n\r\n', 400);
    assertChunkError('5;a b\r\nhello\r\n0\r\n\r\n', 400);
    assertChunkError('5;a=b c\r\nhello\r\n0\r\n\r\n', 400);
    assertChunkError('5;a=\x01\r\nhello\r\n0\r\n\r\n', 400);
  });

  test('bare CR in a chunk line (fails before the line ends)', () => {
    assertChunkError('5\rx\r\nhello\r\n0\r\n\r\n', 400);
    assertChunkError('5;a\rb\r\nhello\r\n0\r\n\r\n', 400);
    assertChunkError('5\r\r\nhello\r\n0\r\n\r\n', 400);
    // Incomplete: the bare CR is already followed by another byte.
    assertChunkError('5\rx', 400);
  });

  test('chunk data longer than its size', () => {
    assertChunkError('3\r\nhello\r\n0\r\n\r\n', 400);
  });

  test('chunk data not followed by CRLF', () => {
    assertChunkError('5\r\nhello0\r\n\r\n', 400);
    assertChunkError('5\r\nhello\rX0\r\n\r\n', 400);
    assertChunkError('5\r\nhello\n0\r\n\r\n', 400);
  });

  test('chunk data shorter than its size eats the next line and then fails', () => {
    assertChunkError('7\r\nhello\r\n0\r\n\r\n', 400);
  });

  test('bare LF line ends', () => {
    assertChunkError('5\nhello\r\n0\r\n\r\n', 400);
    assertChunkError('5\r\nhello\r\n0\n\r\n', 400);
    assertChunkError('5\r\nhello\r\n0\r\n\n', 400);
    assertChunkError('5\r\nhello\r\n0\r\nX: y\n\r\n', 400);
  });

  test('a chunk line over 4096 characters, with or without its CRLF', () => {
    assertChunkError(`5;a=${'b'.repeat(4093)}\r\nhello\r\n0\r\n\r\n`, 400, 16384, false);
    assertChunkError(`1;a=${'b'.repeat(5000)}`, 400, 16384, false);
    assertChunkError('0'.repeat(5000), 400, 16384, false);
  });

  test('malformed trailer fields', () => {
    assertChunkError('0\r\nNoColon\r\n\r\n', 400);
    assertChunkError('0\r\n: v\r\n\r\n', 400);
    assertChunkError('0\r\n X: v\r\n\r\n', 400);
    assertChunkError('0\r\nX : v\r\n\r\n', 400);
    assertChunkError('0\r\nX: a\rb\r\n\r\n', 400);
    assertChunkError('0\r\nX: a\x00b\r\n\r\n', 400);
  });

  test('a trailer section larger than maxTrailerSize: 431, with or without its end', () => {
    const trailers = Array.from({ length: 10 }, (_, i) => `X-${i}: ${'v'.repeat(20)}\r\n`).join('');
    assertDecodes(`0\r\n${trailers}\r\n`, '', 1000);
    assertChunkError(`0\r\n${trailers}\r\n`, 431, 100);
    assertChunkError(`0\r\nX: ${'v'.repeat(200)}`, 431, 100, false);
    assertChunkError(`5\r\nhello\r\n0\r\n${trailers}`, 431, 100);
  });
});

describe('byte scans', () => {
  // The regular expressions the byte loops replace: they must agree on every input.
  const CTL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
  const BAD_HEAD = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n/;
  // Mostly printable bytes with CR, LF, HTAB and the odd control or high byte, so both answers come up often.
  const byte = fc.oneof(
    { weight: 20, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
    { weight: 3, arbitrary: fc.constantFrom(0x0d, 0x0a, 0x09) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) },
  );
  const slice = fc.tuple(fc.array(byte, { maxLength: 64 }), fc.nat(), fc.nat()).map(([bytes, a, b]) => {
    const buf = Buffer.from(bytes);
    const start = buf.length === 0 ? 0 : a % (buf.length + 1);
    const end = start + (buf.length === 0 ? 0 : b % (buf.length - start + 1));
    return { buf, start, end };
  });

  test('hasCtlByte finds what the control-character class finds', () => {
    fc.assert(fc.property(slice, ({ buf, start, end }) => {
      assert.equal(hasCtlByte(buf, start, end), CTL.test(buf.toString('latin1', start, end)));
    }), { numRuns: 2000 });
  });

  test('hasBadHeadByte finds what the response-head expression finds (controls, bare CR, bare LF)', () => {
    fc.assert(fc.property(slice, ({ buf, start, end }) => {
      assert.equal(hasBadHeadByte(buf, start, end), BAD_HEAD.test(buf.toString('latin1', start, end)));
    }), { numRuns: 2000 });
    assert.equal(hasBadHeadByte(B('HTTP/1.1 200 OK\r\nA: b\r\n'), 0, 24), false);
    assert.equal(hasBadHeadByte(B('HTTP/1.1 200 OK\r\nA: b\r'), 0, 23), true, 'a CR at the end');
    assert.equal(hasBadHeadByte(B('\nA'), 0, 2), true, 'an LF at the start');
    assert.equal(hasCtlByte(B('a\x7fb'), 0, 3), true);
    assert.equal(hasCtlByte(B('a\x7fb'), 2, 3), false, 'only the slice is scanned');
  });
});

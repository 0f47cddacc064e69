// Tests for checkRequest: every reliability.md §2.2/§2.3 case that reaches the application as (method, version, target, rawHeaders).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRequest } from './strict-request.ts';
import type { RequestFacts, StrictResult } from './strict-request.ts';

const LIMITS = { maxHeaderCount: 100, maxUrlLength: 8192 };

function check(headers: string[], opts: { method?: string; version?: string; target?: string } = {}): StrictResult {
  return checkRequest(opts.method ?? 'POST', opts.version ?? '1.1', opts.target ?? '/', headers, LIMITS);
}

function ok(headers: string[], opts: { method?: string; version?: string; target?: string } = {}): RequestFacts {
  const r = check(headers, opts);
  if (!r.ok) throw new Error(`rejected ${JSON.stringify(headers)}: ${r.status} ${r.error}`);
  return r;
}

function rejects(status: number, pattern: RegExp, headers: string[], opts: { method?: string; version?: string; target?: string } = {}): void {
  const r = check(headers, opts);
  const what = `${JSON.stringify(opts)} ${JSON.stringify(headers)}`;
  assert.equal(r.ok, false, `accepted ${what}`);
  if (r.ok) return;
  assert.equal(r.status, status, `${what}: ${r.error}`);
  assert.match(r.error, pattern, what);
}

const H = ['Host', 'api.example.com'];

test('a plain GET yields the facts with no allocation beyond the result', () => {
  const f = ok([...H, 'User-Agent', 'x', 'Accept', '*/*', 'Connection', 'keep-alive'], { method: 'GET' });
  assert.deepEqual(f, {
    ok: true, host: 'api.example.com', hostname: 'api.example.com', hasBody: false, contentLength: -1, chunked: false,
    expectContinue: false, upgrade: false, connectionTokens: null, connectionClose: false, connectionKeepAlive: true,
  });
  const c = ok([...H, 'Connection', 'Close, x-hop'], { method: 'GET' });
  assert.equal(c.connectionClose, true);
  assert.equal(c.connectionKeepAlive, false);
  assert.deepEqual(c.connectionTokens, ['x-hop']);
});

test('§2.3 framing, CL: duplicates and anything but 1*DIGIT without a leading zero', () => {
  rejects(400, /more than one Content-Length/, [...H, 'Content-Length', '1', 'Content-Length', '0']);
  rejects(400, /more than one Content-Length/, [...H, 'Content-Length', '0', 'Content-Length', '1']);
  rejects(400, /more than one Content-Length/, [...H, 'Content-Length', '5', 'content-length', '5']);
  rejects(400, /invalid Content-Length/, [...H, 'Content-Length', '', 'Content-Length', '59']);
  for (const v of ['0x10', '+1_0', '010', '00', '-48', '1Z', '18446744073709551616', '9007199254740992', '1000,1000', '1000 1000', '1000\x11', '+2', '1.0', ' ', '\u0661']) {
    rejects(400, /invalid Content-Length/, [...H, 'Content-Length', v]);
  }
  assert.equal(ok([...H, 'Content-Length', '0']).contentLength, 0);
  assert.equal(ok([...H, 'Content-Length', '0']).hasBody, false);
  const f = ok([...H, 'content-length', ' 1234 ']);
  assert.equal(f.contentLength, 1234);
  assert.equal(f.hasBody, true);
  assert.equal(ok([...H, 'Content-Length', '9007199254740991']).contentLength, Number.MAX_SAFE_INTEGER);
});

test('§2.3 framing, TE: only exactly "chunked", once, never with CL, never on HTTP/1.0', () => {
  rejects(400, /both Transfer-Encoding and Content-Length/, [...H, 'Transfer-Encoding', 'chunked', 'Content-Length', '5']);
  rejects(400, /both Transfer-Encoding and Content-Length/, [...H, 'Content-Length', '5', 'Transfer-Encoding', 'chunked']);
  rejects(400, /more than one Transfer-Encoding/, [...H, 'Transfer-Encoding', 'chunked', 'Transfer-Encoding', 'chunked']);
  for (const v of ['chunked,chunked', 'chunked, chunked', ',chunked', 'chunked,', 'chunked, identity', 'identity, chunked, identity',
    'gzip, chunked', 'identity', 'xchunked', 'chunk', '"chunked"', "'chunked'", '\x0bchunked', '\xa0chunked\xa0', '\xffchunked\xff',
    'chunked\x0c', 'chunked\x7f', '', 'chunkeD;x', 'chunked\t', ' chunked\t']) {
    rejects(400, /Transfer-Encoding other than/, [...H, 'Transfer-Encoding', v]);
  }
  rejects(400, /CR, LF or NUL/, [...H, 'Transfer-Encoding', 'chunked\r']);
  rejects(400, /CR, LF or NUL/, [...H, 'Transfer-Encoding', '\x00chunked']);
  rejects(400, /HTTP\/1\.0/, ['Transfer-Encoding', 'chunked'], { version: '1.0' });
  // Valid controls: case-insensitive. The parsers (llhttp, the h1 engine) drop leading OWS and trailing SP; a
  // trailing HTAB reaches this check and is refused (§2.3 lists `TE: chunked\t`).
  for (const [name, v] of [['TRANSFER-ENCODING', 'CHUNKED'], ['transfer-encoding', 'Chunked'], ['Transfer-Encoding', 'chunked']]) {
    const f = ok([...H, name, v]);
    assert.equal(f.chunked, true);
    assert.equal(f.hasBody, true);
    assert.equal(f.contentLength, -1);
  }
});

test('§2.3 header names: non-tokens and framing look-alikes are rejected', () => {
  for (const name of ['Transf\x82r-Encoding', 'Transfer Encoding', 'Transfer-Encoding ', ' Transfer-Encoding', '\tHost', '',
    'X Y', '\xefoo', 'Content-Length\x85', 'Content-Length 10', 'Transfer-\r\nEncoding', 'a\x00b', 'a\x7f',
    ...'"(),/;<=>?@[\\]{}'.split('').map((c) => `X${c}Y`)]) {
    rejects(400, /invalid header field name/, [...H, name, 'chunked']);
  }
  for (const name of ['Transfer_Encoding', 'transfer_encoding', 'Transfer-%45ncoding', 'Content_Length', 'content%2Dlength']) {
    rejects(400, /invalid header field name/, [...H, name, '5']);
  }
  // `_` and `%` are tchar: unrelated names stay valid.
  assert.equal(ok([...H, 'X_Custom', '1', 'x-100%', '2', "!#$&'*+-.^_`|~09azAZ", '3']).ok, true);
});

test('§2.3 values: CR, LF and NUL anywhere (folding, bare CR, smuggled lines) are rejected', () => {
  for (const v of ['bar\r\n Transfer-Encoding: chunked', 'bar\rTransfer-Encoding: chunked', 'bar\nTransfer-Encoding: chunked', 'a\rb', 'v\x00alue', 'x\r\n\tfolded']) {
    rejects(400, /CR, LF or NUL/, [...H, 'Foo', v]);
  }
  assert.equal(ok([...H, 'Foo', 'tab\tand \x01 other controls pass']).ok, true);
});

test('§2.3 Host: exactly one, a valid uri-host[:port]', () => {
  rejects(400, /missing Host/, ['Accept', '*/*']);
  rejects(400, /more than one Host/, ['Host', 'a', 'Host', 'b']);
  rejects(400, /more than one Host/, ['Host', 'a', 'host', 'a']);
  for (const v of ['a,b', 'user@a', 'a/b', '', 'google.com\x01.evil', 'a b', 'a:', 'a:65536', 'a:123456', 'a:8x', ':80', '.', '.a',
    '[::1', '[::1}', '{::1]', '[]', '[::1]x', '[::1]:', '[::g]', 'a%2eb', 'a?b', 'a#b', 'a\\b', "a'b", '\u00e9.com', 'a;b']) {
    rejects(400, /invalid Host/, ['Host', v]);
  }
  rejects(400, /CR, LF or NUL/, ['Host', 'google.com\x00.evil']);
  const cases: Array<[string, string, string]> = [
    ['ADMIN.example.com.', 'admin.example.com.', 'admin.example.com'],
    ['Api.Example.com:8443', 'api.example.com:8443', 'api.example.com'],
    ['api.example.com.:80', 'api.example.com.:80', 'api.example.com'],
    ['127.0.0.1:0', '127.0.0.1:0', '127.0.0.1'],
    ['[::1]:8080', '[::1]:8080', '[::1]'],
    ['[2001:DB8::a]', '[2001:db8::a]', '[2001:db8::a]'],
    ['[::ffff:1.2.3.4]', '[::ffff:1.2.3.4]', '[::ffff:1.2.3.4]'],
    ['my_host-1.local', 'my_host-1.local', 'my_host-1.local'],
  ];
  for (const [v, host, hostname] of cases) {
    const f = ok(['Host', v]);
    assert.equal(f.host, host, v);
    assert.equal(f.hostname, hostname, v);
  }
  const f10 = ok([], { method: 'GET', version: '1.0' });
  assert.equal(f10.host, '');
  assert.equal(f10.hostname, '');
});

test('§2.2/§2.3 request line: method, version and target form', () => {
  rejects(501, /longer than 32/, H, { method: 'A'.repeat(10 * 1024) });
  rejects(501, /longer than 32/, H, { method: 'G'.repeat(33) });
  assert.equal(ok(H, { method: 'X'.repeat(32) }).ok, true);
  for (const m of ['G=":<>(e),[T];?"', '\x00', '', 'GET ', 'G\tET', 'GÉT']) rejects(400, /method is not a token/, H, { method: m });
  for (const v of ['0.9', '1.32', '4294967295.255', '1', '1.10', '3.0', '']) rejects(400, /HTTP version/, H, { version: v });
  rejects(400, /absolute-form/, H, { method: 'GET', target: 'http://evil/x' });
  rejects(400, /absolute-form/, ['Host', 'public'], { method: 'GET', target: 'http://internal-host/admin' });
  for (const t of ['!', '', 'evil.com:443', 'x/y', '*']) rejects(400, /must start with/, H, { method: 'GET', target: t });
  rejects(400, /"#"/, H, { method: 'GET', target: '/a#b' });
  rejects(400, /"#"/, H, { method: 'GET', target: '/admin/x#' });
  assert.equal(ok(H, { method: 'OPTIONS', target: '*' }).ok, true);
  rejects(414, /too long/, H, { method: 'GET', target: '/' + 'a'.repeat(100 * 1024) });
  assert.equal(ok(H, { method: 'GET', target: '/' + 'a'.repeat(8191) }).ok, true);
  rejects(414, /too long/, H, { method: 'GET', target: '/' + 'a'.repeat(8192) });
});

test('§2.3 sizes: more header fields than the limit → 431', () => {
  const many: string[] = [...H];
  for (let i = 1; i < 100; i++) many.push(`X-${i}`, 'v');
  assert.equal(ok(many).ok, true);
  many.push('X-100', 'v');
  rejects(431, /too many header fields/, many);
});

test('Expect, Connection tokens and WebSocket upgrade', () => {
  assert.equal(ok([...H, 'Expect', '100-Continue', 'Content-Length', '10']).expectContinue, true);
  assert.equal(ok([...H, 'Expect', 'something-else']).expectContinue, false);
  assert.equal(ok([...H, 'Connection', 'close']).connectionTokens, null);
  assert.deepEqual(ok([...H, 'Connection', 'keep-alive, X-Forwarded-For ,, TE', 'connection', 'Close, x-secret']).connectionTokens,
    ['x-forwarded-for', 'te', 'x-secret']);
  rejects(400, /invalid Connection/, [...H, 'Connection', 'a b']);
  rejects(400, /invalid Connection/, [...H, 'Connection', 'x, "y"']);
  const ws = [...H, 'Connection', 'Upgrade', 'Upgrade', 'WebSocket', 'Sec-WebSocket-Key', 'k', 'Sec-WebSocket-Version', '13'];
  const f = ok(ws, { method: 'GET' });
  assert.equal(f.upgrade, true);
  assert.deepEqual(f.connectionTokens, ['upgrade']);
  assert.equal(ok(ws, { method: 'POST' }).upgrade, false);
  assert.equal(ok(ws.slice(0, 2).concat(ws.slice(4)), { method: 'GET' }).upgrade, false); // no Connection: upgrade
  assert.equal(ok([...H, 'Connection', 'upgrade', 'Upgrade', 'h2c'], { method: 'GET' }).upgrade, false);
  assert.equal(ok([...H, 'Connection', 'keep-alive, Upgrade', 'Upgrade', 'foo, websocket'], { method: 'GET' }).upgrade, true);
  assert.equal(ok(['Connection', 'upgrade', 'Upgrade', 'websocket'], { method: 'GET', version: '1.0' }).upgrade, false);
});

test('HTTP/2: pseudo-headers, :authority as Host, connection-specific headers rejected', () => {
  const h2 = (headers: string[], authority?: string): StrictResult => checkRequest('GET', '2.0', '/a', headers, LIMITS, authority);
  const f = h2([':method', 'GET', ':path', '/a', ':scheme', 'https', ':authority', 'API.example.com:443', 'accept', '*/*']);
  assert.ok(f.ok);
  assert.equal(f.host, 'api.example.com:443');
  assert.equal(f.hostname, 'api.example.com');
  assert.equal(f.hasBody, true); // no content-length: DATA frames may follow
  const empty = h2([':authority', 'a', 'content-length', '0']);
  assert.ok(empty.ok && !empty.hasBody);
  assert.ok(h2(['host', 'a.com']).ok);
  assert.ok(h2([':authority', 'a.com'], 'a.com').ok);
  const viaParam = h2(['accept', '*/*'], 'b.com');
  assert.ok(viaParam.ok && viaParam.hostname === 'b.com');
  for (const bad of [[':authority', 'a.com', 'host', 'b.com'], [':authority', 'a', 'connection', 'keep-alive'],
    [':authority', 'a', 'transfer-encoding', 'chunked'], [':authority', 'a', 'te', 'gzip'], [':authority', 'a', 'upgrade', 'websocket'],
    [':authority', 'a', 'keep-alive', '5'], [':authority', 'a', 'proxy-connection', 'x'], ['accept', '*/*'], [':authority', 'a', 'x', 'a\r\nb']]) {
    const r = h2(bad);
    assert.equal(r.ok, false, JSON.stringify(bad));
  }
  assert.ok(h2([':authority', 'a', 'te', 'trailers']).ok);
  // Pseudo-header names are not tokens on HTTP/1.
  rejects(400, /invalid header field name/, [':authority', 'a', ...H], { version: '1.1' });
});

test('failures are shared frozen constants', () => {
  const a = check([...H, 'Host', 'x']);
  const b = check(['Host', 'y', 'Host', 'z']);
  assert.equal(a, b);
  assert.ok(Object.isFrozen(a));
});

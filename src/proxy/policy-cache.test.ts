import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  acceptsEncoding,
  directives,
  encodingWeight,
  downstreamCacheControl,
  MAX_VARIANTS,
  pickVariant,
  storableHeaders,
  teeBody,
  unstorableReason,
  valueBytes,
  valueKey,
  withVariant,
  type StoredResponse,
} from './policy-cache.ts';
import { ResponseCapture } from './response-capture.ts';

test('encodingWeight: q-values, with unlisted identity least preferred', () => {
  assert.equal(encodingWeight('gzip;q=0.8, br', 'gzip'), 0.8);
  assert.equal(encodingWeight('gzip;q=0.8, br', 'br'), 1);
  assert.ok(encodingWeight('gzip', '') > 0 && encodingWeight('gzip', '') < 0.01);
  assert.equal(encodingWeight('gzip, identity;q=0.5', ''), 0.5);
  assert.equal(encodingWeight('*;q=0.3', 'br'), 0.3);
});

test('Accept-Encoding: listed codings with q > 0, * for the rest, identity unless excluded', () => {
  assert.equal(acceptsEncoding('gzip, br', 'gzip'), true);
  assert.equal(acceptsEncoding('gzip, br', 'br'), true);
  assert.equal(acceptsEncoding('gzip, br', 'deflate'), false);
  assert.equal(acceptsEncoding('gzip, br', ''), true, 'identity is acceptable unless excluded');
  assert.equal(acceptsEncoding('gzip;q=0, br', 'gzip'), false);
  assert.equal(acceptsEncoding('*', 'zstd'), true);
  assert.equal(acceptsEncoding('*;q=0', ''), false);
  assert.equal(acceptsEncoding('identity;q=0, gzip', ''), false);
  assert.equal(acceptsEncoding('GZIP', 'gzip'), true);
  assert.equal(acceptsEncoding('x-gzip', 'gzip'), true);
  assert.equal(acceptsEncoding('', 'gzip'), false);
  assert.equal(acceptsEncoding('', ''), true);
  // No header: identity only.
  assert.equal(acceptsEncoding(undefined, ''), true);
  assert.equal(acceptsEncoding(undefined, 'gzip'), false);
  // Several codings applied: each must be accepted.
  assert.equal(acceptsEncoding('gzip', 'gzip, br'), false);
  assert.equal(acceptsEncoding('gzip, br', 'gzip, br'), true);
});

function variant(over: Partial<StoredResponse>): StoredResponse {
  return { status: 200, headers: [], body: Buffer.from('x'), encoding: '', vary: [], expiresAt: 10_000, ...over };
}

test('a variant is picked only in an accepted encoding, with matching Vary values, while fresh', () => {
  const gz = variant({ encoding: 'gzip', body: Buffer.from('gz') });
  const plain = variant({ encoding: '', body: Buffer.from('plain') });
  assert.equal(pickVariant([plain, gz], ['accept-encoding', 'gzip'], 0), gz);
  assert.equal(pickVariant([gz, plain], ['accept-encoding', 'gzip'], 0), gz, 'the encoding the client asked for beats an unlisted identity');
  assert.equal(pickVariant([gz, plain], ['accept-encoding', 'gzip;q=0.5, identity'], 0), plain, 'q-values decide');
  assert.equal(pickVariant([plain], ['accept-encoding', 'gzip'], 0), plain, 'identity is still acceptable');
  assert.equal(pickVariant([plain, gz], [], 0), plain);
  assert.equal(pickVariant([gz], [], 0), undefined, 'no gzip for a client that did not ask for it');
  assert.equal(pickVariant([gz], ['accept-encoding', 'br'], 0), undefined);
  const fr = variant({ vary: [['accept-language', 'fr']] });
  assert.equal(pickVariant([fr], ['accept-language', 'fr'], 0), fr);
  assert.equal(pickVariant([fr], ['accept-language', 'de'], 0), undefined);
  assert.equal(pickVariant([fr], [], 0), undefined);
  const none = variant({ vary: [['accept-language', undefined]] });
  assert.equal(pickVariant([none], [], 0), none);
  assert.equal(pickVariant([plain], [], 10_000), undefined, 'expired');
});

test('withVariant replaces the same variant, drops expired ones and keeps at most MAX_VARIANTS', () => {
  const a = variant({ encoding: '' });
  const b = variant({ encoding: 'gzip' });
  const a2 = variant({ encoding: '', body: Buffer.from('new') });
  assert.deepEqual(withVariant([a, b], a2, 0), [b, a2]);
  const old = variant({ encoding: 'br', expiresAt: 5 });
  assert.deepEqual(withVariant([old], a, 5), [a]);
  let list: StoredResponse[] = [];
  for (let i = 0; i < MAX_VARIANTS + 3; i++) list = withVariant(list, variant({ vary: [['x', String(i)]] }), 0);
  assert.equal(list.length, MAX_VARIANTS);
  assert.equal(list[list.length - 1].vary[0][1], String(MAX_VARIANTS + 2));
});

test('Cache-Control: directive names; responses that must not be stored', () => {
  assert.deepEqual([...directives('public, max-age=60, Must-Revalidate')], ['public', 'max-age', 'must-revalidate']);
  assert.deepEqual([...directives(undefined)], []);
  const res = (headers: string[]) => ({ status: 200, reason: '', headers, body: null, capture: null });
  assert.equal(unstorableReason(res(['cache-control', 'public, max-age=60'])), undefined);
  assert.equal(unstorableReason(res(['cache-control', 'no-store'])), 'Cache-Control: no-store');
  assert.equal(unstorableReason(res(['cache-control', 'private, max-age=60'])), 'Cache-Control: private');
  assert.equal(unstorableReason(res(['cache-control', 'private="set-cookie"'])), 'Cache-Control: private');
  assert.equal(unstorableReason(res(['cache-control', 'no-cache'])), 'Cache-Control: no-cache');
  assert.equal(unstorableReason(res(['set-cookie', 'sid=1'])), 'Set-Cookie');
  assert.equal(unstorableReason(res(['vary', 'Accept, *'])), 'Vary: *');
});

test('the downstream Cache-Control of a cached response', () => {
  assert.equal(downstreamCacheControl('none', true, 60), 'no-store');
  assert.equal(downstreamCacheControl('private', true, 59.7), 'private, max-age=59, must-revalidate');
  assert.equal(downstreamCacheControl('public', false, 300), 'public, max-age=300');
  assert.equal(downstreamCacheControl('public', false, -3), 'public, max-age=0');
});

test('stored headers drop the request id, Age and framing', () => {
  assert.deepEqual(
    storableHeaders(['content-type', 'text/plain', 'x-request-id', 'r1', 'age', '3', 'content-length', '5', 'etag', '"e"', 'transfer-encoding', 'chunked']),
    ['content-type', 'text/plain', 'etag', '"e"'],
  );
});

test('value keys are hashed and distinct; value sizes', () => {
  assert.notEqual(valueKey('a'), valueKey('b'));
  assert.equal(valueKey('Bearer secret').includes('secret'), false);
  assert.equal(valueKey('x'.repeat(10_000)).length, valueKey('y').length);
  assert.ok(valueBytes('x'.repeat(1000)) >= 2000);
  assert.ok(valueBytes({ a: 'x'.repeat(1000) }) >= 1000);
  const loop: Record<string, unknown> = {};
  loop.self = loop;
  assert.equal(valueBytes(loop), Infinity);
});

function streamingCapture(): ResponseCapture {
  const noop = () => {};
  const cap = new ResponseCapture('stream', 1 << 20, { head: noop, end: noop, overflow: noop });
  cap.writeHead(200, ['content-type', 'text/plain']);
  return cap;
}

test('teeBody: the whole body of a streaming response, as a copy, once it ends', () => {
  const cap = streamingCapture();
  cap.write(Buffer.from('hel'));
  const got: { body?: Buffer | null } = {};
  teeBody(cap, 1000, () => false, (b) => (got.body = b));
  assert.equal(got.body === undefined, true, 'nothing before the end');
  cap.write(Buffer.from('lo '));
  cap.end(Buffer.from('world'));
  assert.equal(got.body?.toString(), 'hello world');
  // What the client will get is untouched.
  assert.equal(cap.body().toString(), 'hello world');
});

test('teeBody: an already ended response is read at once', () => {
  const cap = streamingCapture();
  cap.end(Buffer.from('done'));
  const got: { body?: Buffer | null } = {};
  teeBody(cap, 1000, () => false, (b) => (got.body = b));
  assert.equal(got.body?.toString(), 'done');
});

test('teeBody: nothing for a body over the cap, a destroyed response, an error head or a failed exchange', () => {
  const results: Array<Buffer | null> = [];
  const big = streamingCapture();
  teeBody(big, 5, () => false, (b) => results.push(b));
  big.write(Buffer.from('123'));
  big.end(Buffer.from('456'));
  const gone = streamingCapture();
  teeBody(gone, 100, () => false, (b) => results.push(b));
  gone.write(Buffer.from('part'));
  gone.destroy();
  const replaced = streamingCapture();
  teeBody(replaced, 100, () => false, (b) => results.push(b));
  replaced.write(Buffer.from('part'));
  replaced.retractHead();
  replaced.writeHead(502, ['content-type', 'application/json']);
  replaced.end(Buffer.from('{"error":1}'));
  const failed = streamingCapture();
  teeBody(failed, 100, () => true, (b) => results.push(b));
  failed.end(Buffer.from('x'));
  assert.deepEqual(results, [null, null, null, null]);
});

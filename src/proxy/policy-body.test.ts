import { test } from 'node:test';
import assert from 'node:assert/strict';
import zlib from 'node:zlib';
import { BodyDecodeError, acceptAsks, contentCodings, decodeBody, hasContentEncoding, isJsonType, isXmlType, mediaType } from './policy-body.ts';

const TEXT = Buffer.from('hello, hello, hello '.repeat(50));

test('contentCodings: lower-case, in order, identity dropped', () => {
  assert.deepEqual(contentCodings(undefined), []);
  assert.deepEqual(contentCodings(' GZIP , identity,br'), ['gzip', 'br']);
  assert.equal(hasContentEncoding(['content-encoding', 'identity']), false);
  assert.equal(hasContentEncoding(['x', 'y', 'content-encoding', 'gzip']), true);
  assert.equal(hasContentEncoding([]), false);
});

test('decodeBody: each known coding, stacked codings, and the header removed', async () => {
  const zstd = (zlib as unknown as { zstdCompressSync?: (b: Buffer) => Buffer }).zstdCompressSync;
  const cases: Array<[string, Buffer]> = [
    ['gzip', zlib.gzipSync(TEXT)],
    ['x-gzip', zlib.gzipSync(TEXT)],
    ['deflate', zlib.deflateSync(TEXT)],
    ['deflate', zlib.deflateRawSync(TEXT)],
    ['br', zlib.brotliCompressSync(TEXT)],
    ['deflate, gzip', zlib.gzipSync(zlib.deflateSync(TEXT))],
  ];
  if (zstd) cases.push(['zstd', zstd(TEXT)]);
  for (const [enc, data] of cases) {
    const headers = ['content-type', 'text/plain', 'content-encoding', enc, 'etag', '"abc"'];
    assert.deepEqual(await decodeBody(headers, data, 1 << 20), TEXT, enc);
    assert.deepEqual(headers, ['content-type', 'text/plain', 'etag', 'W/"abc"'], enc);
  }
});

test('decodeBody leaves unknown encodings, empty bodies and plain bodies exactly as they are', async () => {
  const raw = Buffer.from([1, 2, 3]);
  const h1 = ['content-encoding', 'compress'];
  assert.equal(await decodeBody(h1, raw, 100), raw);
  assert.deepEqual(h1, ['content-encoding', 'compress']);
  const h2 = ['content-encoding', 'gzip, compress'];
  assert.equal(await decodeBody(h2, raw, 100), raw);
  assert.deepEqual(h2, ['content-encoding', 'gzip, compress']);
  const h3 = ['content-encoding', 'gzip'];
  const empty = Buffer.alloc(0);
  assert.equal(await decodeBody(h3, empty, 100), empty);
  assert.deepEqual(h3, ['content-encoding', 'gzip']);
  const h4 = ['content-type', 'a/b'];
  assert.equal(await decodeBody(h4, raw, 100), raw);
});

test('decodeBody refuses corrupt data and output past the limit (a compression bomb)', async () => {
  await assert.rejects(decodeBody(['content-encoding', 'gzip'], Buffer.from('nope'), 100), (e: unknown) => e instanceof BodyDecodeError && e.code === 'corrupt');
  await assert.rejects(decodeBody(['content-encoding', 'br'], Buffer.from('nope'), 100), (e: unknown) => e instanceof BodyDecodeError && e.code === 'corrupt');
  const bomb = zlib.gzipSync(Buffer.alloc(10 * 1024 * 1024));
  assert.ok(bomb.length < 20 * 1024);
  await assert.rejects(decodeBody(['content-encoding', 'gzip'], bomb, 1024 * 1024), (e: unknown) => e instanceof BodyDecodeError && e.code === 'payload_too_large');
  await assert.rejects(decodeBody(['content-encoding', 'deflate'], zlib.deflateRawSync(Buffer.alloc(4096)), 1024), (e: unknown) => e instanceof BodyDecodeError && e.code === 'payload_too_large');
});

test('media types and Accept', () => {
  assert.equal(mediaType('Application/JSON; charset=utf-8'), 'application/json');
  assert.equal(mediaType(undefined), '');
  assert.ok(isJsonType('application/problem+json') && isJsonType('text/json') && !isJsonType('+json'));
  assert.ok(isXmlType('application/soap+xml') && isXmlType('text/xml') && !isXmlType('application/json'));
  assert.ok(acceptAsks('text/html, application/xml;q=0.9', isXmlType));
  assert.ok(!acceptAsks('application/xml;q=0', isXmlType));
  assert.ok(!acceptAsks('*/*', isXmlType));
  assert.ok(!acceptAsks(undefined, isJsonType));
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProxyHeader } from './proxy-protocol.ts';

test('PROXY v1 TCP4 and TCP6 give the source address and header length', () => {
  const h = 'PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n';
  const r = parseProxyHeader(Buffer.from(h + 'GET / HTTP/1.1\r\n'), 'any');
  assert.deepEqual(r, { sourceAddress: '192.0.2.7', sourcePort: 56324, length: h.length });
  const r6 = parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n'), 'v1');
  assert.equal((r6 as { sourceAddress: string }).sourceAddress, '2001:db8::1');
  assert.equal(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4'), 'any'), 'incomplete');
  assert.ok('error' in (parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n'), 'any') as object));
  assert.ok('error' in (parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n'), 'any') as object));
});

test('PROXY v2 PROXY/TCP4 and LOCAL', () => {
  const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const body = Buffer.from([10, 1, 2, 3, 10, 9, 9, 9, 0x1f, 0x90, 0x01, 0xbb]);
  const hdr = Buffer.concat([sig, Buffer.from([0x21, 0x11, 0x00, body.length]), body]);
  assert.deepEqual(parseProxyHeader(hdr, 'v2'), { sourceAddress: '10.1.2.3', sourcePort: 8080, length: 28 });
  const local = Buffer.concat([sig, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  assert.deepEqual(parseProxyHeader(local, 'any'), { sourceAddress: null, sourcePort: 0, length: 16 });
  assert.equal(parseProxyHeader(hdr.subarray(0, 20), 'v2'), 'incomplete');
  assert.ok('error' in (parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n'), 'v2') as object));
});

test('PROXY v1 addresses must be single addresses of the declared family; v2 IPv6 is canonical', () => {
  assert.ok('error' in (parseProxyHeader(Buffer.from('PROXY TCP4 203.0.113.7,10.1.1.1 127.0.0.1 51000 80\r\n'), 'any') as object));
  assert.ok('error' in (parseProxyHeader(Buffer.from('PROXY TCP4 2001:db8::1 127.0.0.1 1 2\r\n'), 'any') as object));
  assert.ok('error' in (parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n'), 'any') as object));
  const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
  const addr = Buffer.alloc(36);
  addr.writeUInt16BE(0x2001, 0); addr.writeUInt16BE(0x0db8, 2); addr.writeUInt16BE(1, 14); addr.writeUInt16BE(443, 32);
  const hdr = Buffer.concat([sig, Buffer.from([0x21, 0x21, 0x00, 36]), addr]);
  assert.deepEqual(parseProxyHeader(hdr, 'v2'), { sourceAddress: '2001:db8::1', sourcePort: 443, length: 52 });
});

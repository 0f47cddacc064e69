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

test('TLS after a PROXY header that shares its packet with the ClientHello: the handshake still completes', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, readFileSync, rmSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const net = await import('node:net');
  const tls = await import('node:tls');
  const { acceptProxyProtocol } = await import('./proxy-protocol.ts');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-pp-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(dir, 'k.pem'),
      '-out', path.join(dir, 'c.pem'), '-subj', '/CN=pp.test', '-days', '1'], { stdio: 'ignore' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    if (process.env.LOCKGATE_REQUIRE_ALL) throw new Error('openssl is required (apt-get install openssl)');
    return t.skip('openssl not installed (apt-get install openssl)');
  }
  const inner = tls.createServer({ key: readFileSync(path.join(dir, 'k.pem')), cert: readFileSync(path.join(dir, 'c.pem')) }, (s) => {
    const h = (s as unknown as { _handle?: { _parentWrap?: { stream?: { proxiedAddress?: string } } } })._handle;
    s.end(`hello ${h?._parentWrap?.stream?.proxiedAddress}`);
  });
  const front = net.createServer((s) => acceptProxyProtocol(s, 'any', 2000, (x) => inner.emit('connection', x), true));
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
  const raw = net.connect((front.address() as { port: number }).port, '127.0.0.1');
  await new Promise((r) => raw.once('connect', r));
  raw.cork();
  raw.write('PROXY TCP4 198.51.100.9 127.0.0.1 1 2\r\n');
  const reply = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('TLS handshake never completed: the ClientHello was lost')), 2000);
    const c = tls.connect({ socket: raw, rejectUnauthorized: false });
    process.nextTick(() => raw.uncork());
    let data = '';
    c.setEncoding('utf8').on('data', (d: string) => (data += d));
    c.on('end', () => {
      clearTimeout(timer);
      resolve(data);
    });
    c.on('error', reject);
  });
  raw.destroy();
  front.close();
  inner.close();
  rmSync(dir, { recursive: true, force: true });
  assert.equal(reply, 'hello 198.51.100.9');
});

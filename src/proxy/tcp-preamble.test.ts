// Tests for the tunnel wire format, the bounded line reader and the two-way splice (half-close, reset) on loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { MAX_LINE, parseTunnelReply, parseTunnelRequest, readLine, splice, tunnelReply, tunnelRequest } from './tcp-preamble.ts';
import { parseAuthority } from './connect-request.ts';

test('preamble and reply lines round-trip; malformed ones are refused', () => {
  assert.deepEqual(parseTunnelRequest(tunnelRequest(5432, 'abc-123').toString().trimEnd()), { port: 5432, requestId: 'abc-123' });
  for (const bad of ['', 'LOCKGATE-TCP/1 5432', 'LOCKGATE-TCP/2 5432 id', 'LOCKGATE-TCP/1 0 id', 'LOCKGATE-TCP/1 65536 id', 'LOCKGATE-TCP/1 80 a b', 'GET / HTTP/1.1']) {
    assert.ok('error' in parseTunnelRequest(bad), bad);
  }
  assert.deepEqual(parseTunnelReply(tunnelReply(403, 'Access denied by shop/x (decision d1)').toString().trimEnd()), { status: 403, text: 'Access denied by shop/x (decision d1)' });
  assert.deepEqual(parseTunnelReply(tunnelReply(200, 'ok\r\nsmuggled').toString().trimEnd()), { status: 200, text: 'ok??smuggled' }, 'control characters never split the line');
  assert.ok('error' in parseTunnelReply('OK'));
  assert.ok(tunnelReply(502, 'x'.repeat(1000)).length <= MAX_LINE);
});

test('CONNECT targets: host:port with the hostname lowercased; no port, bad port or bad host is refused', () => {
  assert.deepEqual(parseAuthority('Inventory.Shop:5432'), { host: 'inventory.shop', port: 5432 });
  assert.deepEqual(parseAuthority('db.:1'), { host: 'db', port: 1 });
  assert.deepEqual(parseAuthority('[::1]:80'), { host: '[::1]', port: 80 });
  for (const bad of ['inventory', 'inventory:', 'inventory:0', 'inventory:65536', 'inventory:5x', ':80', 'a b:80', 'inv/x:80']) assert.equal(parseAuthority(bad), null, bad);
});

/** A connected pair of loopback sockets. */
async function socketPair(): Promise<{ a: net.Socket; b: net.Socket; close(): void }> {
  const server = net.createServer({ allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const a = net.connect({ port: (server.address() as AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const b = await accepted;
  server.close();
  return { a, b, close: () => (a.destroy(), b.destroy()) };
}

test('readLine returns the line and the bytes after it; refuses over-long lines, early close and silence', async () => {
  const p = await socketPair();
  try {
    p.a.write('LOCKGATE-TCP/1 80 id\npayload');
    const r = await readLine(p.b, 2000);
    assert.equal(r.line, 'LOCKGATE-TCP/1 80 id');
    // 'payload' may arrive with the line or after it: what came with it is handed back, the rest stays on the socket.
    const more = await new Promise<string>((resolve) => {
      let got = r.rest.toString();
      if (got === 'payload') return resolve(got);
      p.b.on('data', (d: Buffer) => (got += d.toString()) === 'payload' && resolve(got));
      p.b.resume();
    });
    assert.equal(more, 'payload');
  } finally {
    p.close();
  }
  const long = await socketPair();
  try {
    long.a.write('x'.repeat(MAX_LINE + 10));
    await assert.rejects(readLine(long.b, 2000), /too long/);
  } finally {
    long.close();
  }
  const silent = await socketPair();
  try {
    await assert.rejects(readLine(silent.b, 50), /no line within 50 ms/);
    const ended = readLine(silent.b, 2000);
    silent.a.end('partial');
    await assert.rejects(ended, /closed before a complete line/);
  } finally {
    silent.close();
  }
});

test('splice: bytes both ways, a half-close passes through while the other direction goes on, a reset resets the other side', async () => {
  const left = await socketPair();
  const right = await socketPair();
  try {
    const done = new Promise<{ forward: number; backward: number }>((r) => splice(left.b, right.a, r));
    // Far right end: echoes, and on our FIN answers "bye" then closes its side.
    right.b.on('data', (d: Buffer) => right.b.write(d));
    right.b.on('end', () => right.b.end('bye'));
    let got = '';
    left.a.on('data', (d: Buffer) => (got += d.toString()));
    const leftClosed = new Promise<void>((r) => left.a.once('close', () => r()));
    left.a.write('hello');
    await new Promise((r) => setTimeout(r, 50));
    left.a.end();
    await leftClosed;
    assert.equal(got, 'hellobye', 'the answer after our half-close came through before the close');
    assert.deepEqual(await done, { forward: 5, backward: 8 });
  } finally {
    left.close();
    right.close();
  }
  const l2 = await socketPair();
  const r2 = await socketPair();
  try {
    splice(l2.b, r2.a, () => {});
    const err = new Promise<string>((r) => l2.a.once('error', (e: NodeJS.ErrnoException) => r(e.code ?? '')));
    r2.b.resetAndDestroy();
    assert.equal(await err, 'ECONNRESET', 'a reset on one side is a reset on the other');
  } finally {
    l2.close();
    r2.close();
  }
});

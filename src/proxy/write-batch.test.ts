// Tests for the batched socket writes: held until the round of I/O ends, in order, with backpressure, never lost to a destroy.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import { destroySocket, holdWrites } from './write-batch.ts';

/** What the h1 engine and pool do: hold the socket, then write. */
const write = (s: net.Socket, data: string | Buffer): boolean => {
  holdWrites(s);
  return s.write(data);
};

/** A connected pair on loopback: `ours` is written to, `peer` collects what arrives. */
async function pair(t: TestContext): Promise<{ ours: net.Socket; peer: net.Socket; received: () => string; ended: Promise<unknown> }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const peer = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [ours] = (await accepted) as [net.Socket];
  await once(peer, 'connect');
  let got = '';
  peer.setEncoding('latin1');
  peer.on('data', (d: string) => (got += d));
  const ended = new Promise((r) => peer.once('close', r));
  peer.on('error', () => {});
  ours.on('error', () => {});
  t.after(() => {
    ours.destroy();
    peer.destroy();
    server.close();
  });
  return { ours, peer, received: () => got, ended };
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const until = async (what: string, f: () => boolean): Promise<void> => {
  for (let i = 0; i < 500 && !f(); i++) await new Promise((r) => setTimeout(r, 5));
  assert.ok(f(), `timed out waiting for ${what}`);
};

test('writes made in one round are held (corked) until it ends, then leave in order', async (t) => {
  const a = await pair(t);
  const b = await pair(t);
  assert.equal(write(a.ours, 'one '), true);
  assert.equal(write(b.ours, 'x'), true);
  write(a.ours, Buffer.from('two '));
  // A cork/uncork pair inside the round (the engine's large-body path) keeps the outer hold and the order.
  a.ours.cork();
  a.ours.write('three ');
  a.ours.uncork();
  a.ours.write('four');
  assert.equal(a.ours.writableCorked, 1, 'held');
  assert.equal(a.ours.writableLength, 'one two three four'.length, 'nothing written yet');
  await turn();
  assert.equal(a.ours.writableCorked, 0);
  await until('the bytes', () => a.received() === 'one two three four' && b.received() === 'x');
});

test('destroySocket sends what the round wrote before destroying; end() flushes by itself', async (t) => {
  const a = await pair(t);
  write(a.ours, 'HTTP/1.1 400 Bad Request\r\n\r\n');
  destroySocket(a.ours);
  await a.ended;
  assert.equal(a.received(), 'HTTP/1.1 400 Bad Request\r\n\r\n');
  const b = await pair(t);
  write(b.ours, 'bye');
  b.ours.end();
  await b.ended;
  assert.equal(b.received(), 'bye');
});

test('backpressure still shows: write() is false over the high-water mark, and drain follows the flush', async (t) => {
  const a = await pair(t);
  const big = Buffer.alloc(a.ours.writableHighWaterMark + 1, 0x61);
  assert.equal(write(a.ours, big), false);
  await once(a.ours, 'drain');
  await until('the bytes', () => a.received().length === big.length);
});

test('a socket destroyed before the flush is skipped; writes after the flush start a new batch', async (t) => {
  const a = await pair(t);
  const b = await pair(t);
  write(a.ours, 'lost');
  write(b.ours, 'first ');
  a.ours.destroy();
  await turn();
  write(b.ours, 'second');
  assert.equal(b.ours.writableCorked, 1, 'held again');
  await turn();
  await until('both writes', () => b.received() === 'first second');
});

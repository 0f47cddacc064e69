// Tests for protocol sniffing: classification of first bytes, bytes split across packets, and the timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { classifyPrefix, H2_PREFACE, sniffProtocol, type SniffedProtocol } from './h2c-sniff.ts';

test('classifyPrefix: TLS only when allowed, the whole preface for h2c, the first differing byte for HTTP/1.1', () => {
  assert.equal(classifyPrefix(Buffer.from([0x16, 0x03, 0x01]), true), 'tls');
  assert.equal(classifyPrefix(Buffer.from([0x16, 0x03, 0x01]), false), 'http1');
  assert.equal(classifyPrefix(H2_PREFACE, false), 'h2c');
  assert.equal(classifyPrefix(Buffer.concat([H2_PREFACE, Buffer.from([0, 0, 0])]), true), 'h2c');
  assert.equal(classifyPrefix(H2_PREFACE.subarray(0, 10), false), 'incomplete');
  assert.equal(classifyPrefix(Buffer.alloc(0), true), 'incomplete');
  assert.equal(classifyPrefix(Buffer.from('GET / HTTP/1.1\r\n'), true), 'http1');
  assert.equal(classifyPrefix(Buffer.from('P'), false), 'incomplete');
  assert.equal(classifyPrefix(Buffer.from('PO'), false), 'http1');
  assert.equal(classifyPrefix(Buffer.from('PRI * HTTP/1.1\r\n'), false), 'http1');
});

async function sniffOver(write: (c: net.Socket) => Promise<void>, opts = { tls: true, timeoutMs: 2000 }): Promise<{ kind: SniffedProtocol | 'closed'; replay: Buffer }> {
  let resolveResult!: (r: { kind: SniffedProtocol | 'closed'; replay: Buffer }) => void;
  const result = new Promise<{ kind: SniffedProtocol | 'closed'; replay: Buffer }>((r) => (resolveResult = r));
  const server = net.createServer((s) => {
    s.once('close', () => resolveResult({ kind: 'closed', replay: Buffer.alloc(0) }));
    sniffProtocol(s, opts, (kind, sock) => {
      // The bytes read to decide are back on the socket: a consumer reading with 'data' sees them first.
      sock.once('data', (d: Buffer) => {
        resolveResult({ kind, replay: d });
        sock.destroy();
      });
      sock.resume();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  try {
    await new Promise((r) => client.once('connect', r));
    await write(client);
    return await result;
  } finally {
    client.destroy();
    server.close();
  }
}

test('sniffProtocol hands on the socket with the sniffed bytes put back, also when the preface arrives in pieces', async () => {
  const h1 = await sniffOver(async (c) => void c.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
  assert.equal(h1.kind, 'http1');
  assert.ok(h1.replay.toString('latin1').startsWith('GET / HTTP/1.1'));

  const split = await sniffOver(async (c) => {
    for (const part of [H2_PREFACE.subarray(0, 3), H2_PREFACE.subarray(3, 20), H2_PREFACE.subarray(20)]) {
      c.write(part);
      await new Promise((r) => setTimeout(r, 20));
    }
  });
  assert.equal(split.kind, 'h2c');
  assert.deepEqual(split.replay.subarray(0, H2_PREFACE.length), H2_PREFACE);

  const tls = await sniffOver(async (c) => void c.write(Buffer.from([0x16, 0x03, 0x01, 0x00])));
  assert.equal(tls.kind, 'tls');
  assert.equal(tls.replay[0], 0x16);
});

test('a connection that never says which protocol is closed at the timeout', async () => {
  const t0 = Date.now();
  const r = await sniffOver(async (c) => void c.write('PRI * HT'), { tls: false, timeoutMs: 150 });
  assert.equal(r.kind, 'closed');
  assert.ok(Date.now() - t0 >= 140 && Date.now() - t0 < 2000);
});

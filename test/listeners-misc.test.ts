// Cross-process: PROXY protocol v1/v2, Expect: 100-continue and listener limits (header count, body size, header timeout) on a real gateway.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, type GatewayProcess } from './helpers/gateway-process.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { RawConnection, sendRaw, summarize, type RawResult } from './helpers/raw-http.ts';

let up: Upstream;
let gw: GatewayProcess;
/** Every request that reached the upstream, complete or not. */
const arrived: string[] = [];

before(async () => {
  up = await startUpstream();
  up.server.on('request', (req: { url?: string }) => arrived.push(req.url ?? ''));
  // 127.0.0.1 (the load balancer sending PROXY headers) and 10/8 (internal proxies) are trusted; 203.0.113.0/24 is not.
  gw = await startGateway(`apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners:
    - { name: http, address: 127.0.0.1, port: 0 }
    - { name: pp-v1, address: 127.0.0.1, port: 0, proxyProtocol: v1 }
    - { name: pp-v2, address: 127.0.0.1, port: 0, proxyProtocol: v2 }
    - { name: pp-any, address: 127.0.0.1, port: 0, proxyProtocol: any }
  limits: { maxHeaderCount: 20, maxBodySize: 1KiB, headerTimeout: 1s }
  trustedProxies: [127.0.0.1/32, 10.0.0.0/8]
  admin: { address: 127.0.0.1, port: 0 }
  accessLog: { enabled: false }
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: "http://127.0.0.1:${up.port}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: routed }
spec:
  path: /m
  backend: up
`);
});

after(async () => {
  await gw?.stop();
  await up?.close();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A GET that tries to spoof the forwarding headers and the request id. */
function spoofingGet(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: gw.example.test\r\nX-Forwarded-For: 6.6.6.6\r\nX-Request-Id: spoofed-request-id-1\r\n\r\n`;
}

function lastSeen(path: string): Upstream['seen'][number] | undefined {
  return up.seen.findLast((s) => s.url === path);
}

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A PROXY v2 header (PROXY command, STREAM) for an IPv4 or IPv6 source; the destination is the same family's loopback. */
function proxyV2(source: Buffer, sourcePort: number): Buffer {
  const v6 = source.length === 16;
  const addrLen = v6 ? 36 : 12;
  const b = Buffer.alloc(16 + addrLen);
  V2_SIGNATURE.copy(b);
  b[12] = 0x21; // version 2, PROXY
  b[13] = v6 ? 0x21 : 0x11; // AF_INET6 or AF_INET, STREAM
  b.writeUInt16BE(addrLen, 14);
  source.copy(b, 16);
  const dst = v6 ? Buffer.from([...Array(15).fill(0), 1]) : Buffer.from([127, 0, 0, 1]);
  dst.copy(b, 16 + source.length);
  b.writeUInt16BE(sourcePort, 16 + 2 * source.length);
  b.writeUInt16BE(80, 18 + 2 * source.length);
  return b;
}

function assertClosedUnanswered(r: RawResult, path: string): void {
  const xff = lastSeen(path)?.headers['x-forwarded-for'];
  assert.equal(r.responses.length, 0, `${summarize(r)}${xff === undefined ? '' : `; upstream got X-Forwarded-For: ${xff}`}`);
  assert.ok(r.closed, `connection still open: ${summarize(r)}`);
  assert.deepEqual(arrived.filter((u) => u === path), [], 'the upstream saw the request');
}

// ---- PROXY protocol

test('PROXY v1: the PROXY source is the client: X-Forwarded-For is its address, spoofed headers are replaced', async () => {
  const r = await sendRaw(gw.ports['pp-v1'], `PROXY TCP4 203.0.113.7 127.0.0.1 51000 80\r\n${spoofingGet('/m/v1')}`, { responses: 1 });
  assert.equal(r.status, 200, summarize(r));
  const seen = lastSeen('/m/v1');
  // The load balancer (127.0.0.1) is trusted, but it only relays: the client 203.0.113.7 is not, so its headers are not believed.
  assert.equal(seen?.headers['x-forwarded-for'], '203.0.113.7');
  assert.notEqual(seen?.headers['x-request-id'], 'spoofed-request-id-1');
});

test('PROXY v1 from a trusted proxy (10/8): its X-Forwarded-For is kept and its address appended', async () => {
  const r = await sendRaw(gw.ports['pp-v1'], `PROXY TCP4 10.9.8.7 127.0.0.1 51000 80\r\n${spoofingGet('/m/v1-trusted')}`, { responses: 1 });
  assert.equal(r.status, 200, summarize(r));
  const seen = lastSeen('/m/v1-trusted');
  assert.equal(seen?.headers['x-forwarded-for'], '6.6.6.6, 10.9.8.7');
  assert.equal(seen?.headers['x-request-id'], 'spoofed-request-id-1');
});

test('PROXY v1 header split across TCP segments is reassembled', async () => {
  const conn = await RawConnection.open(gw.ports['pp-v1']);
  try {
    conn.write('PROXY TCP4 203.0.113.8 127.0.');
    await sleep(50);
    conn.write(`0.1 51000 80\r\n${spoofingGet('/m/v1-split')}`);
    assert.ok(await conn.waitForResponses(1, 2000), summarize(conn.result()));
    assert.equal(conn.result().status, 200);
  } finally {
    conn.close();
  }
  assert.equal(lastSeen('/m/v1-split')?.headers['x-forwarded-for'], '203.0.113.8');
});

test('a connection without a PROXY header on a PROXY listener is closed unanswered', async () => {
  const r = await sendRaw(gw.ports['pp-v1'], spoofingGet('/m/no-proxy-header'));
  assertClosedUnanswered(r, '/m/no-proxy-header');
});

test('PROXY v1 with a source that is not an IP address is refused (no X-Forwarded-For injection)', async () => {
  const r = await sendRaw(gw.ports['pp-v1'], `PROXY TCP4 203.0.113.7,10.1.1.1 127.0.0.1 51000 80\r\n${spoofingGet('/m/v1-bad-source')}`);
  assertClosedUnanswered(r, '/m/v1-bad-source');
});

test('PROXY v2 (IPv4) sets X-Forwarded-For to the binary source address', async () => {
  const r = await sendRaw(gw.ports['pp-v2'], Buffer.concat([proxyV2(Buffer.from([198, 51, 100, 9]), 40000), Buffer.from(spoofingGet('/m/v2'))]), { responses: 1 });
  assert.equal(r.status, 200, summarize(r));
  assert.equal(lastSeen('/m/v2')?.headers['x-forwarded-for'], '198.51.100.9');
});

test('PROXY v2 (IPv6) gives the source in canonical text form (2001:db8::1, as a v1 header would carry it)', async () => {
  const src = Buffer.alloc(16);
  src.writeUInt16BE(0x2001, 0);
  src.writeUInt16BE(0x0db8, 2);
  src[15] = 1;
  const r = await sendRaw(gw.ports['pp-v2'], Buffer.concat([proxyV2(src, 40000), Buffer.from(spoofingGet('/m/v2-ipv6'))]), { responses: 1 });
  assert.equal(r.status, 200, summarize(r));
  assert.equal(lastSeen('/m/v2-ipv6')?.headers['x-forwarded-for'], '2001:db8::1');
});

test('a v1 header on a v2-only listener is refused', async () => {
  const r = await sendRaw(gw.ports['pp-v2'], `PROXY TCP4 203.0.113.7 127.0.0.1 51000 80\r\n${spoofingGet('/m/v1-on-v2')}`);
  assertClosedUnanswered(r, '/m/v1-on-v2');
});

test('proxyProtocol: any accepts both v1 and v2', async () => {
  const v1 = await sendRaw(gw.ports['pp-any'], `PROXY TCP4 203.0.113.10 127.0.0.1 51000 80\r\n${spoofingGet('/m/any-v1')}`, { responses: 1 });
  assert.equal(v1.status, 200, summarize(v1));
  const v2 = await sendRaw(gw.ports['pp-any'], Buffer.concat([proxyV2(Buffer.from([198, 51, 100, 11]), 40000), Buffer.from(spoofingGet('/m/any-v2'))]), { responses: 1 });
  assert.equal(v2.status, 200, summarize(v2));
  assert.equal(lastSeen('/m/any-v1')?.headers['x-forwarded-for'], '203.0.113.10');
  assert.equal(lastSeen('/m/any-v2')?.headers['x-forwarded-for'], '198.51.100.11');
});

// ---- Expect: 100-continue

test('Expect: 100-continue on a routed POST: 100 Continue, then the body goes up and the final response comes back', async () => {
  const conn = await RawConnection.open(gw.ports.http);
  try {
    conn.write('POST /m/upload HTTP/1.1\r\nHost: gw.example.test\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n');
    assert.ok(await conn.waitForResponses(1, 2000), `no interim response: ${summarize(conn.result())}`);
    assert.equal(conn.result().status, 100);
    assert.equal(lastSeen('/m/upload'), undefined, 'nothing may be complete upstream before the body was sent');
    conn.write('hello world');
    assert.ok(await conn.waitForResponses(2, 2000), summarize(conn.result()));
    assert.deepEqual(conn.result().responses.map((x) => x.status), [100, 200]);
  } finally {
    conn.close();
  }
  const seen = lastSeen('/m/upload');
  assert.equal(seen?.body, 'hello world');
  assert.equal(seen?.method, 'POST');
  assert.equal(seen?.headers.expect, undefined, 'Expect is hop-by-hop here: the gateway already answered it');
});

test('Expect: 100-continue on an unrouted path: the final 404 comes without a 100 first, and the body is not read as a request', async () => {
  const conn = await RawConnection.open(gw.ports.http);
  try {
    conn.write('POST /nowhere HTTP/1.1\r\nHost: gw.example.test\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n');
    assert.ok(await conn.waitForResponses(1, 2000), summarize(conn.result()));
    const r = conn.result();
    assert.equal(r.status, 404, summarize(r));
    assert.equal(r.responses.some((x) => x.status === 100), false);
    // Never answered 100, so the body may never come: the connection must close rather than wait to parse it.
    assert.ok(await conn.waitForClose(1000), `still open 1 s after the 404: ${summarize(conn.result())}`);
  } finally {
    conn.close();
  }
});

// ---- Limits: maxHeaderCount 20, maxBodySize 1 KiB, headerTimeout 1 s

function withHeaders(path: string, count: number): string {
  const extra = Array.from({ length: count - 1 }, (_, i) => `X-H${i}: ${i}\r\n`).join('');
  return `GET ${path} HTTP/1.1\r\nHost: gw.example.test\r\n${extra}\r\n`;
}

test('header count: 20 fields pass, 30 fields get 431 and nothing reaches the upstream', async () => {
  const ok = await sendRaw(gw.ports.http, withHeaders('/m/headers-20', 20), { responses: 1 });
  assert.equal(ok.status, 200, summarize(ok));
  const r = await sendRaw(gw.ports.http, withHeaders('/m/headers-30', 30));
  assert.equal(r.status, 431, summarize(r));
  assert.ok(r.closed, summarize(r));
  assert.deepEqual(arrived.filter((u) => u === '/m/headers-30'), []);
});

test('body size: 1 KiB passes, 2 KiB with Content-Length gets 413 and nothing is forwarded', async () => {
  const ok = await sendRaw(gw.ports.http, `POST /m/body-1k HTTP/1.1\r\nHost: gw.example.test\r\nContent-Length: 1024\r\n\r\n${'a'.repeat(1024)}`, { responses: 1 });
  assert.equal(ok.status, 200, summarize(ok));
  assert.equal(lastSeen('/m/body-1k')?.body.length, 1024);
  const r = await sendRaw(gw.ports.http, `POST /m/body-2k HTTP/1.1\r\nHost: gw.example.test\r\nContent-Length: 2048\r\n\r\n${'a'.repeat(2048)}`);
  assert.equal(r.status, 413, summarize(r));
  assert.ok(r.closed, summarize(r));
  await sleep(100);
  assert.deepEqual(arrived.filter((u) => u === '/m/body-2k'), []);
});

test('slow headers: a header block still incomplete after headerTimeout (1 s) is cut off within 2.5 s', async () => {
  const conn = await RawConnection.open(gw.ports.http);
  const t0 = performance.now();
  conn.write('GET /m/slow-headers HTTP/1.1\r\nHost: gw.example.test\r\n');
  // Trickle a header line every 200 ms, never ending the block (slowloris).
  const trickle = setInterval(() => conn.write(`X-Slow-${Math.round(performance.now() - t0)}: 1\r\n`), 200);
  let r: RawResult;
  let ms: number;
  try {
    await conn.waitForClose(2500);
    // Read before our own close() marks the connection closed.
    r = conn.result();
    ms = performance.now() - t0;
  } finally {
    clearInterval(trickle);
    conn.close();
  }
  assert.ok(r.closed, `still open after ${Math.round(ms)} ms: ${summarize(r)}`);
  assert.ok(r.responses.length === 0 || r.status === 408, `answered ${summarize(r)}`);
  assert.deepEqual(arrived.filter((u) => u === '/m/slow-headers'), []);
});

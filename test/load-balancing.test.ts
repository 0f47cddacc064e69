// Cross-process: each load-balancing algorithm's distribution, measured at real upstreams behind a real gateway process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import { startGateway, type GatewayProcess } from './helpers/gateway-process.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { runLoad, countOf } from './helpers/load.ts';

const GATEWAY = `apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  admin: { address: 127.0.0.1, port: 0 }
  accessLog: { enabled: false }
`;

/** A Backend named `name` and an Api serving every path under `/name` from it (JSON is valid YAML). */
function route(name: string, backend: Record<string, unknown>): string {
  return `---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: ${name} }
spec: ${JSON.stringify(backend)}
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: ${name} }
spec: { path: /${name}, backend: ${name} }
`;
}

/** Answers with its own name, after `delayMs`. */
function named(name: string, delayMs = 0) {
  return (_req: http.IncomingMessage, res: http.ServerResponse): void => {
    const send = (): void => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': name.length });
      res.end(name);
    };
    if (delayMs > 0) setTimeout(send, delayMs);
    else send();
  };
}

let a: Upstream;
let b: Upstream;
let c: Upstream;
let slow: Upstream;
let gw: GatewayProcess;
let origin: string;

/** Requests an upstream received for one Api (its path prefix). */
const hits = (up: Upstream, api: string): number => up.seen.filter((s) => s.url.startsWith(`/${api}/`)).length;

before(async () => {
  [a, b, c, slow] = await Promise.all([startUpstream(named('a')), startUpstream(named('b')), startUpstream(named('c')), startUpstream(named('slow', 50))]);
  // Passive ejection and retries stay out of the way: every upstream answers 200.
  const three = [a, b, c].map((u) => ({ url: u.url }));
  const fastAndSlow = [{ url: a.url }, { url: slow.url }];
  const yaml =
    GATEWAY +
    route('rr', { endpoints: three, loadBalancing: { algorithm: 'round-robin' } }) +
    route('wrr', { endpoints: [{ url: a.url, weight: 3 }, { url: b.url, weight: 1 }], loadBalancing: { algorithm: 'weighted-round-robin' } }) +
    route('lr', { endpoints: fastAndSlow, loadBalancing: { algorithm: 'least-request' } }) +
    route('ewma', { endpoints: fastAndSlow, loadBalancing: { algorithm: 'ewma' } }) +
    route('hash', { endpoints: three, loadBalancing: { algorithm: 'consistent-hash', hashOn: { header: 'x-user' } } });
  gw = await startGateway(yaml, { workers: 1 });
  origin = `http://127.0.0.1:${gw.ports.http}`;
});

after(async () => {
  await gw?.stop();
  await Promise.all([a, b, c, slow].map((u) => u?.close()));
});

test('round-robin spreads 300 requests exactly evenly over 3 upstreams', async () => {
  const r = await runLoad({ origin, concurrency: 3, count: 300, request: (i) => ({ path: `/rr/${i}` }) });
  assert.equal(countOf(r, 200), 300, JSON.stringify(r));
  assert.deepEqual([hits(a, 'rr'), hits(b, 'rr'), hits(c, 'rr')], [100, 100, 100]);
});

test('weighted-round-robin honours weights 3:1 exactly over 400 requests', async () => {
  const r = await runLoad({ origin, concurrency: 4, count: 400, request: (i) => ({ path: `/wrr/${i}` }) });
  assert.equal(countOf(r, 200), 400, JSON.stringify(r));
  assert.deepEqual([hits(a, 'wrr'), hits(b, 'wrr')], [300, 100]);
});

test('least-request sends most traffic to the fast upstream when the other delays 50 ms', async () => {
  // Round-robin would give each 50%; least-request keeps only ~1 request in flight at the slow one.
  const r = await runLoad({ origin, concurrency: 4, count: 200, request: (i) => ({ path: `/lr/${i}` }) });
  assert.equal(countOf(r, 200), 200, JSON.stringify(r));
  const fast = hits(a, 'lr');
  const slowHits = hits(slow, 'lr');
  assert.equal(fast + slowHits, 200);
  assert.ok(fast >= 150, `least-request: fast ${fast}, slow ${slowHits}`);
});

test('ewma prefers the fast upstream even with one request at a time (least-request could not tell them apart)', async () => {
  // With nothing in flight both endpoints look equal to least-request; only the latency estimate separates them.
  const r = await runLoad({ origin, concurrency: 1, count: 100, request: (i) => ({ path: `/ewma/${i}` }) });
  assert.equal(countOf(r, 200), 100, JSON.stringify(r));
  const fast = hits(a, 'ewma');
  const slowHits = hits(slow, 'ewma');
  assert.equal(fast + slowHits, 100);
  assert.ok(fast >= 90, `ewma: fast ${fast}, slow ${slowHits}`);
});

test('consistent-hash on a header: one key always reaches one upstream, different keys spread over all', async () => {
  const keys = Array.from({ length: 30 }, (_, i) => `user-${i}`);
  const seenBy = new Map<string, Set<string>>(keys.map((k) => [k, new Set()]));
  // Four rounds over all keys, interleaved, so stickiness cannot come from sending a key's requests together.
  const r = await runLoad({
    origin,
    concurrency: 4,
    count: keys.length * 4,
    request: (i) => ({ path: `/hash/${i}`, headers: { 'x-user': keys[i % keys.length] } }),
    onResponse: (i, status, _h, body) => {
      if (status === 200) seenBy.get(keys[i % keys.length])!.add(body);
    },
  });
  assert.equal(countOf(r, 200), 120, JSON.stringify(r));
  for (const [k, set] of seenBy) assert.equal(set.size, 1, `key ${k} reached ${[...set].join(', ')}`);
  const used = new Set([...seenBy.values()].map((s) => [...s][0]));
  assert.deepEqual([...used].sort(), ['a', 'b', 'c'], 'keys spread over every upstream');
  assert.equal(hits(a, 'hash') + hits(b, 'hash') + hits(c, 'hash'), 120);
});

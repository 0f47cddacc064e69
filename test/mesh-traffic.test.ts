// Mesh traffic management on a real DataPlane (127.0.0.1): weighted splits, fault injection, locality preference,
// inbound authorization, the hop limit, and gRPC trailers-only errors over HTTP/2.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { parseConfigText, formatProblems } from '../src/model/load-config.ts';
import { DataPlane } from '../src/app/data-plane.ts';
import { buildRuntime, retireRuntime } from '../src/proxy/runtime.ts';
import { createRequestHandler, type DataPlaneState } from '../src/proxy/request-handler.ts';
import type { Exchange } from '../src/proxy/exchange.ts';
import { accessDecision, requestEnd, type AccessDecisionEvent } from '../src/telemetry/channels.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { runLoad, countOf } from './helpers/load.ts';
import { createTestPki, opensslMissing } from './helpers/certs.ts';

const doc = (kind: string, name: string, spec: unknown, namespace = 'shop'): string =>
  `---\napiVersion: lockgate.dev/v1alpha1\nkind: ${kind}\nmetadata: { name: ${name}, namespace: ${namespace} }\nspec: ${JSON.stringify(spec)}\n`;

const GATEWAY = (mesh: unknown) =>
  doc('Gateway', 'gw', {
    listeners: [
      { name: 'http', address: '127.0.0.1', port: 0 },
      { name: 'grpc', address: '127.0.0.1', port: 0, protocol: 'h2' },
    ],
    admin: { enabled: false },
    accessLog: { enabled: false },
    ...(mesh === undefined ? {} : { mesh }),
  });

/** Answers with its name; `/healthz` fails while `down.has(name)`; any path fails with 503 while `failing.has(name)`. */
const down = new Set<string>();
const failing = new Set<string>();
function named(name: string) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const bad = req.url === '/healthz' ? down.has(name) : failing.has(name);
    res.writeHead(bad ? 503 : 200, { 'content-type': 'text/plain', 'x-upstream': name });
    res.end(name);
  };
}

const ups: Record<string, Upstream> = {};
const timers = new Set<NodeJS.Timeout>();
let refusedPort = 0;

before(async () => {
  for (const n of ['v1', 'v2', 'v3', 'za', 'zb', 'zc', 'oa', 'ob', 'app']) ups[n] = await startUpstream(named(n));
  ups.slow = await startUpstream((_req, res) => {
    const t = setTimeout(() => res.end('slow'), 1500);
    timers.add(t);
  });
  const s = http.createServer();
  refusedPort = await new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
  await new Promise<void>((r) => s.close(() => r()));
});

after(async () => {
  for (const t of timers) clearTimeout(t);
  await Promise.all(Object.values(ups).map((u) => u.close()));
});

interface Plane {
  plane: DataPlane;
  origin: string;
  h2Origin: string;
  close(): Promise<void>;
}

async function startPlane(yaml: string): Promise<Plane> {
  const loaded = parseConfigText(yaml, 'mesh-traffic.yaml');
  if (!loaded.config) throw new Error(formatProblems(loaded.problems));
  const plane = new DataPlane(loaded.config, { accessLog: false });
  const ports = await plane.listen();
  return { plane, origin: `http://127.0.0.1:${ports.http}`, h2Origin: `http://127.0.0.1:${ports.grpc}`, close: () => plane.drain(1000) };
}

async function get(url: string, headers: Record<string, string> = {}) {
  const r = await request(url, { headers });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text };
}

/** Collects the finished exchanges' backends while `fn` runs. */
async function backendsDuring(fn: () => Promise<void>): Promise<string[]> {
  const seen: string[] = [];
  const on = (ex: unknown): void => void seen.push((ex as Exchange).backend);
  requestEnd.subscribe(on);
  try {
    await fn();
  } finally {
    requestEnd.unsubscribe(on);
  }
  return seen;
}

const hits = (u: Upstream, prefix: string): number => u.seen.filter((s) => s.url.startsWith(prefix)).length;

test('weighted split 90/10/0: 500 requests 10 at a time land within ±5 % (exactly, with smooth WRR); weight 0 gets none', async () => {
  const yaml =
    GATEWAY(undefined) +
    doc('Backend', 'v1', { url: ups.v1.url }) +
    doc('Backend', 'v2', { url: ups.v2.url }) +
    doc('Backend', 'v3', { url: ups.v3.url }) +
    doc('Backend', 'canary', { split: [{ backend: 'v1', weight: 90 }, { backend: 'v2', weight: 10 }, { backend: 'v3', weight: 0 }] }) +
    doc('Api', 'split', { path: '/split', backend: 'canary' });
  const g = await startPlane(yaml);
  try {
    let result: Awaited<ReturnType<typeof runLoad>> | undefined;
    const backends = await backendsDuring(async () => {
      result = await runLoad({ origin: g.origin, concurrency: 10, count: 500, request: (i) => ({ path: `/split/${i}` }) });
    });
    assert.equal(countOf(result!, 200), 500, JSON.stringify(result));
    const v1 = hits(ups.v1, '/split/');
    const v2 = hits(ups.v2, '/split/');
    assert.ok(Math.abs(v1 - 450) <= 25 && Math.abs(v2 - 50) <= 25, `v1 ${v1}, v2 ${v2}`);
    // Smooth WRR in one worker is exact, not merely within the tolerance.
    assert.deepEqual([v1, v2], [450, 50]);
    assert.equal(hits(ups.v3, '/split/'), 0);
    // The access log names the leg each request used.
    assert.equal(backends.filter((b) => b === 'shop/v1').length, 450);
    assert.equal(backends.filter((b) => b === 'shop/v2').length, 50);
  } finally {
    await g.close();
  }
});

test('split legs: a retry re-picks the leg; a leg with no available endpoint passes its turn to the others', async () => {
  const yaml =
    GATEWAY(undefined) +
    doc('Backend', 'v1', { url: ups.v1.url }) +
    doc('Backend', 'flaky', { url: ups.v3.url, retries: { attempts: 1, statuses: [503] }, outlierDetection: { enabled: false } }) +
    doc('Backend', 'dead', { url: ups.v2.url, healthCheck: { enabled: true, path: '/healthz', interval: '100ms', timeout: '90ms', unhealthyThreshold: 1 } }) +
    doc('Backend', 'half', { split: [{ backend: 'flaky', weight: 1 }, { backend: 'v1', weight: 1 }] }) +
    doc('Backend', 'canary', { split: [{ backend: 'dead', weight: 1 }, { backend: 'v1', weight: 1 }] }) +
    doc('Api', 'half', { path: '/half', backend: 'half' }) +
    doc('Api', 'canary', { path: '/canary', backend: 'canary' });
  failing.add('v3');
  down.add('v2');
  const g = await startPlane(yaml);
  try {
    const seen: Exchange[] = [];
    const onEnd = (ex: unknown): void => void seen.push(ex as Exchange);
    requestEnd.subscribe(onEnd);
    for (let i = 0; i < 20; i++) assert.equal((await get(`${g.origin}/half/${i}`)).text, 'v1');
    requestEnd.unsubscribe(onEnd);
    // 1:1 alternates legs pick by pick: every first attempt is the flaky leg's 503, every retry the other leg.
    assert.equal(hits(ups.v3, '/half/'), 20);
    assert.deepEqual(new Set(seen.map((ex) => `${ex.backend} ${ex.attempts}`)), new Set(['shop/v1 2']));
    const canary = async () => {
      const out = new Set<string>();
      for (let i = 0; i < 6; i++) out.add((await get(`${g.origin}/canary/${i}`)).text);
      return [...out].join(',');
    };
    await until(async () => (await canary()) === 'v1', 5000, 'the dead leg to be health-checked out');
    const r = await runLoad({ origin: g.origin, concurrency: 4, count: 40, request: (i) => ({ path: `/canary/after${i}` }) });
    assert.equal(countOf(r, 200), 40, JSON.stringify(r));
    assert.equal(hits(ups.v2, '/canary/after'), 0);
  } finally {
    failing.clear();
    down.clear();
    await g.close();
  }
});

test('fault abort at 100 % answers the configured status with x-lockgate-fault and the request id; 0 % never', async () => {
  const yaml =
    GATEWAY(undefined) +
    doc('Backend', 'v1', { url: ups.v1.url }) +
    doc('Backend', 'all', { url: ups.v1.url, fault: { abort: { percent: 100, status: 503 } } }) +
    doc('Backend', 'none', { url: ups.v1.url, fault: { abort: { percent: 0, status: 503 }, delay: { percent: 0, duration: '1s' } } }) +
    doc('Api', 'all', { path: '/abort-all', backend: 'all' }) +
    doc('Api', 'none', { path: '/abort-none', backend: 'none' });
  const g = await startPlane(yaml);
  try {
    const before = hits(ups.v1, '/abort-all');
    for (let i = 0; i < 20; i++) {
      const r = await get(`${g.origin}/abort-all/${i}`);
      assert.equal(r.status, 503);
      assert.equal(r.headers['x-lockgate-fault'], 'abort');
      const body = JSON.parse(r.text) as { statusCode: number; requestId: string; message: string };
      assert.equal(body.statusCode, 503);
      assert.equal(body.requestId, r.headers['x-request-id']);
      assert.match(body.message, /fault/);
    }
    assert.equal(hits(ups.v1, '/abort-all'), before, 'an aborted request never reaches the backend');
    const r = await runLoad({ origin: g.origin, concurrency: 5, count: 100, request: (i) => ({ path: `/abort-none/${i}` }) });
    assert.equal(countOf(r, 200), 100, JSON.stringify(r));
  } finally {
    await g.close();
  }
});

test('fault delay adds at least the configured delay; a delayed request then goes through', async () => {
  const yaml =
    GATEWAY(undefined) +
    doc('Backend', 'slowed', { url: ups.v1.url, fault: { delay: { percent: 100, duration: '250ms' } } }) +
    doc('Backend', 'fast', { url: ups.v1.url }) +
    doc('Api', 'slowed', { path: '/delayed', backend: 'slowed' }) +
    doc('Api', 'fast', { path: '/fast', backend: 'fast' });
  const g = await startPlane(yaml);
  try {
    await get(`${g.origin}/fast/warm`);
    const t0 = performance.now();
    const fast = await get(`${g.origin}/fast/x`);
    const tFast = performance.now() - t0;
    const t1 = performance.now();
    const results = await Promise.all([0, 1, 2, 3].map((i) => get(`${g.origin}/delayed/${i}`)));
    const tDelayed = performance.now() - t1;
    assert.equal(fast.status, 200);
    for (const r of results) assert.equal(r.status, 200);
    assert.ok(tDelayed >= 250, `delayed took ${tDelayed} ms`);
    assert.ok(tDelayed < 2000, `delayed took ${tDelayed} ms`);
    assert.ok(tFast < 250, `fast took ${tFast} ms`);
  } finally {
    await g.close();
  }
});

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test('locality: the zone first; fails over to the region when the zone endpoint is health-checked down, and back', async () => {
  const yaml =
    GATEWAY(undefined) +
    doc('Backend', 'local', {
      endpoints: [
        { url: ups.zc.url, labels: { region: 'us', zone: 'us-1' } },
        { url: ups.zb.url, labels: { region: 'eu', zone: 'eu-2' } },
        { url: ups.za.url, labels: { region: 'eu', zone: 'eu-1' } },
      ],
      locality: { region: 'eu', zone: 'eu-1' },
      // Generous probe timeouts: the probes share this process's event loop (and the machine) with the load.
      healthCheck: { enabled: true, path: '/healthz', interval: '200ms', timeout: '180ms', unhealthyThreshold: 2, healthyThreshold: 1 },
    }) +
    doc('Api', 'local', { path: '/local', backend: 'local' });
  const g = await startPlane(yaml);
  try {
    const names = async (n: number) => {
      const out = new Set<string>();
      for (let i = 0; i < n; i++) out.add((await get(`${g.origin}/local/${i}`)).text);
      return [...out].sort().join(',');
    };
    assert.equal(await names(20), 'za');
    down.add('za');
    await until(async () => (await names(5)) === 'zb', 5000, 'failover to the region');
    assert.equal(await names(20), 'zb');
    down.add('zb');
    await until(async () => (await names(5)) === 'zc', 5000, 'failover to another region');
    down.delete('za');
    down.delete('zb');
    await until(async () => (await names(5)) === 'za', 5000, 'back to the zone');
  } finally {
    down.clear();
    await g.close();
  }
});

test('locality: an endpoint ejected by outlier detection hands its zone over to the next tier', async () => {
  const yaml =
    GATEWAY(undefined) +
    doc('Backend', 'local', {
      endpoints: [
        { url: ups.oa.url, labels: { region: 'eu', zone: 'eu-1' } },
        { url: ups.ob.url, labels: { region: 'eu', zone: 'eu-2' } },
      ],
      locality: { region: 'eu', zone: 'eu-1' },
      outlierDetection: { enabled: true, consecutiveErrors: 2, baseEjectionTime: '30s', maxEjectionPercent: 50 },
      retries: { attempts: 2, statuses: [503] },
    }) +
    doc('Api', 'local', { path: '/ej', backend: 'local' });
  const g = await startPlane(yaml);
  try {
    assert.equal((await get(`${g.origin}/ej/0`)).text, 'oa');
    failing.add('oa');
    // Two failures eject oa (the retries of the first request already reach ob once it is out).
    const statuses = [];
    for (let i = 0; i < 10; i++) statuses.push((await get(`${g.origin}/ej/f${i}`)).status);
    assert.deepEqual(statuses, Array(10).fill(200));
    const oaBefore = hits(ups.oa, '/ej/');
    for (let i = 0; i < 20; i++) assert.equal((await get(`${g.origin}/ej/after${i}`)).text, 'ob');
    assert.equal(hits(ups.oa, '/ej/'), oaBefore, 'the ejected zone endpoint gets no traffic');
  } finally {
    failing.clear();
    await g.close();
  }
});

/** Access decisions published while `fn` runs. */
async function decisionsDuring(fn: () => Promise<void>): Promise<AccessDecisionEvent[]> {
  const seen: AccessDecisionEvent[] = [];
  const on = (e: unknown): void => void seen.push(e as AccessDecisionEvent);
  accessDecision.subscribe(on);
  try {
    await fn();
  } finally {
    accessDecision.unsubscribe(on);
  }
  return seen;
}

const MESH_SERVICE = doc('MeshService', 'inventory', { ports: [{ name: 'http', port: 8080 }] });

function authzConfig(mode: 'enforce' | 'audit', defaultAccess = 'audit'): string {
  return (
    GATEWAY({ maxHops: 8, defaultAccess }) +
    MESH_SERVICE +
    doc('Backend', 'app', { url: ups.app.url }) +
    doc('Api', 'inbound', { path: '/', backend: 'app', meshService: 'inventory' }) +
    doc('AccessPolicy', 'callers', { target: { service: 'inventory' }, mode, allow: [{ sources: ['shop/orders'] }], deny: [{ paths: ['/admin/*'] }] })
  );
}

test('authorization enforce: a plaintext caller no policy allows gets 403 access_denied with the decision; the reasons are published', async () => {
  const g = await startPlane(authzConfig('enforce'));
  try {
    let r: Awaited<ReturnType<typeof get>> | undefined;
    const events = await decisionsDuring(async () => {
      r = await get(`${g.origin}/items`);
    });
    assert.equal(r!.status, 403);
    const body = JSON.parse(r!.text) as { error: { code: string; message: string; requestId: string; decision: string } };
    assert.equal(body.error.code, 'access_denied');
    assert.equal(body.error.requestId, r!.headers['x-request-id']);
    assert.ok(body.error.decision.length > 0);
    assert.equal(events.length, 1);
    const e = events[0];
    assert.equal(e.decision, body.error.decision);
    assert.equal(e.outcome, 'deny');
    assert.equal(e.service, 'shop/inventory');
    assert.equal(e.sourceId, '');
    assert.equal(e.method, 'GET');
    assert.equal(e.path, '/items');
    assert.equal(e.policy, 'shop/callers');
    assert.match(e.reasons.join('\n'), /no allow rule of shop\/callers matched: source \(none: plaintext/);
    assert.equal(hits(ups.app, '/items'), 0, 'a denied request never reaches the app');
  } finally {
    await g.close();
  }
});

test('authorization audit: the same request is allowed, and the would-be denial is published with its reasons', async () => {
  const g = await startPlane(authzConfig('audit'));
  try {
    const seen: Exchange[] = [];
    const onEnd = (ex: unknown): void => void seen.push(ex as Exchange);
    requestEnd.subscribe(onEnd);
    let r: Awaited<ReturnType<typeof get>> | undefined;
    const events = await decisionsDuring(async () => {
      r = await get(`${g.origin}/items?x=1`);
    });
    requestEnd.unsubscribe(onEnd);
    assert.equal(r!.status, 200);
    assert.equal(r!.text, 'app');
    assert.equal(events.length, 1);
    assert.equal(events[0].outcome, 'audit');
    assert.match(events[0].reasons.join('\n'), /audit/);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].decision, `${events[0].decision}:audit`);
  } finally {
    await g.close();
  }
});

/** The request handler on a plain HTTP server with a listener that reports `peerId` as the caller's identity. */
async function handlerWithPeer(yaml: string, peerId: string): Promise<{ url: string; close(): Promise<void> }> {
  const loaded = parseConfigText(yaml, 'peer.yaml');
  if (!loaded.config) throw new Error(formatProblems(loaded.problems));
  const built = buildRuntime(loaded.config, undefined);
  if (!built.runtime) throw new Error(built.problems.join('\n'));
  const runtime = built.runtime;
  const state: DataPlaneState = { runtime, overloaded: false, draining: false, finish: () => {}, subscriptions: null };
  const handler = createRequestHandler(state, { name: 'inbound', proto: 'https', proxied: false, peerIdOf: () => peerId });
  const server = http.createServer(handler as http.RequestListener);
  const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await retireRuntime(runtime, undefined);
    },
  };
}

test('authorization with a peer identity: the allowed workload passes, another is denied, deny rules win', async () => {
  const orders = await handlerWithPeer(authzConfig('enforce', 'deny'), 'spiffe://lockgate.local/ns/shop/sa/orders');
  const web = await handlerWithPeer(authzConfig('enforce', 'deny'), 'spiffe://lockgate.local/ns/shop/sa/web');
  try {
    const events = await decisionsDuring(async () => {
      const ok = await get(`${orders.url}/items`);
      assert.equal(ok.status, 200);
      assert.equal(ok.text, 'app');
      const admin = await get(`${orders.url}/admin/users`);
      assert.equal(admin.status, 403);
      assert.equal((JSON.parse(admin.text) as { error: { code: string } }).error.code, 'access_denied');
      const other = await get(`${web.url}/items`);
      assert.equal(other.status, 403);
    });
    // Allowed decisions are not published; both denials are, with the deciding rule.
    assert.equal(events.length, 2);
    assert.equal(events[0].sourceId, 'spiffe://lockgate.local/ns/shop/sa/orders');
    assert.match(events[0].reasons[0], /deny rule shop\/callers deny\[0\] matched/);
    assert.equal(events[1].sourceId, 'spiffe://lockgate.local/ns/shop/sa/web');
    assert.match(events[1].reasons[0], /spiffe:\/\/lockgate.local\/ns\/shop\/sa\/web not in/);
  } finally {
    await orders.close();
    await web.close();
  }
});

test('hop limit: a request at maxHops gets 508 loop_detected; below it the hop count goes upstream incremented', async () => {
  const yaml = GATEWAY({ maxHops: 3, defaultAccess: 'allow' }) + doc('Backend', 'v1', { url: ups.v1.url }) + doc('Api', 'hops', { path: '/hops', backend: 'v1' });
  const g = await startPlane(yaml);
  try {
    const looped = await get(`${g.origin}/hops/a`, { 'x-lockgate-hops': '3' });
    assert.equal(looped.status, 508);
    assert.equal((JSON.parse(looped.text) as { requestId: string }).requestId, looped.headers['x-request-id']);
    assert.equal(hits(ups.v1, '/hops/a'), 0);
    assert.equal((await get(`${g.origin}/hops/b`, { 'x-lockgate-hops': '2' })).status, 200);
    assert.equal(ups.v1.seen.find((s) => s.url === '/hops/b')?.headers['x-lockgate-hops'], '3');
    assert.equal((await get(`${g.origin}/hops/c`)).status, 200);
    assert.equal(ups.v1.seen.find((s) => s.url === '/hops/c')?.headers['x-lockgate-hops'], '1');
  } finally {
    await g.close();
  }
  // Not a mesh node: no header added, and a client's value is just another header.
  const plain = await startPlane(GATEWAY(undefined) + doc('Backend', 'v1', { url: ups.v1.url }) + doc('Api', 'hops', { path: '/hops', backend: 'v1' }));
  try {
    assert.equal((await get(`${plain.origin}/hops/d`)).status, 200);
    assert.equal(ups.v1.seen.find((s) => s.url === '/hops/d')?.headers['x-lockgate-hops'], undefined);
    assert.equal((await get(`${plain.origin}/hops/e`, { 'x-lockgate-hops': '99' })).status, 200);
  } finally {
    await plain.close();
  }
});

interface GrpcResult {
  headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader;
  data: number;
  trailers: http2.IncomingHttpHeaders | null;
  ms: number;
}

/** One gRPC-shaped POST over h2c; resolves when the stream ends. */
function grpcCall(client: http2.ClientHttp2Session, path: string, extra: Record<string, string> = {}): Promise<GrpcResult> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = client.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...extra });
    let headers: GrpcResult['headers'] | undefined;
    let trailers: GrpcResult['trailers'] = null;
    let data = 0;
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => (data += c.length));
    req.on('end', () => resolve({ headers: headers!, data, trailers, ms: performance.now() - t0 }));
    req.on('error', reject);
    // An empty unary message: the 5-byte gRPC frame header.
    req.end(Buffer.from([0, 0, 0, 0, 0]));
  });
}

test('gRPC: gateway-made errors are trailers-only (HTTP 200, grpc-status, grpc-message); grpc-timeout caps the request', async () => {
  const yaml =
    GATEWAY({ maxHops: 4, defaultAccess: 'audit' }) +
    MESH_SERVICE +
    doc('Backend', 'app', { url: ups.app.url }) +
    doc('Backend', 'slow', { url: ups.slow.url }) +
    doc('Backend', 'gone', { url: `http://127.0.0.1:${refusedPort}`, retries: { attempts: 0 } }) +
    doc('Backend', 'aborted', { url: ups.app.url, fault: { abort: { percent: 100, status: 503 } } }) +
    doc('Api', 'inbound', { hostnames: ['inventory'], path: '/', backend: 'app', meshService: 'inventory' }) +
    doc('AccessPolicy', 'callers', { target: { service: 'inventory' }, mode: 'enforce', allow: [{ sources: ['shop/orders'] }] }) +
    doc('Api', 'slow', { path: '/slow.Svc', backend: 'slow' }) +
    doc('Api', 'gone', { path: '/gone.Svc', backend: 'gone' }) +
    doc('Api', 'aborted', { path: '/aborted.Svc', backend: 'aborted' });
  const g = await startPlane(yaml);
  const client = http2.connect(g.h2Origin);
  client.on('error', () => {});
  try {
    const expectTrailersOnly = (r: GrpcResult, status: number, what: string) => {
      assert.equal(r.headers[':status'], 200, what);
      assert.equal(r.headers['grpc-status'], String(status), `${what}: ${JSON.stringify(r.headers)}`);
      assert.equal(typeof r.headers['grpc-message'], 'string', what);
      assert.match(String(r.headers['content-type']), /^application\/grpc/, what);
      assert.equal(r.data, 0, `${what}: no body`);
      assert.equal(r.trailers, null, `${what}: everything is in the one HEADERS frame`);
      assert.ok(typeof r.headers['x-request-id'] === 'string', what);
    };
    expectTrailersOnly(await grpcCall(client, '/nothing.Here/Method'), 12, 'no route');
    const denied = await grpcCall(client, '/inventory.Svc/Get', { ':authority': 'inventory' });
    expectTrailersOnly(denied, 7, 'denied');
    assert.match(String(denied.headers['grpc-message']), /Access denied/);
    const aborted = await grpcCall(client, '/aborted.Svc/Get');
    expectTrailersOnly(aborted, 14, 'fault abort');
    assert.equal(aborted.headers['x-lockgate-fault'], 'abort');
    expectTrailersOnly(await grpcCall(client, '/gone.Svc/Get'), 14, 'upstream unavailable');
    const late = await grpcCall(client, '/slow.Svc/Get', { 'grpc-timeout': '200m' });
    expectTrailersOnly(late, 4, 'deadline');
    assert.ok(late.ms >= 190 && late.ms < 1200, `deadline answered after ${late.ms} ms`);
    const looped = await grpcCall(client, '/gone.Svc/Get', { 'x-lockgate-hops': '4' });
    expectTrailersOnly(looped, 9, 'loop');
    // The same errors over HTTP/1.1 keep their JSON bodies.
    const h1 = await get(`${g.origin}/nothing`);
    assert.equal(h1.status, 404);
    assert.match(h1.text, /"statusCode":404/);
  } finally {
    client.close();
    await g.close();
  }
});

test('gRPC passthrough over h2: the upstream\'s trailers reach the client, and te: trailers reaches the upstream', { skip: opensslMissing() }, async () => {
  const pki = await createTestPki();
  const seenTe: string[] = [];
  const upstream = http2.createSecureServer({ cert: readFileSync(pki.a.certFile), key: readFileSync(pki.a.keyFile) });
  upstream.on('stream', (stream, headers) => {
    seenTe.push(String(headers.te));
    stream.on('data', () => {});
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'fine' }));
      stream.end(Buffer.from([0, 0, 0, 0, 2, 8, 1]));
    });
  });
  const port = await new Promise<number>((r) => upstream.listen(0, '127.0.0.1', () => r((upstream.address() as AddressInfo).port)));
  const yaml =
    GATEWAY(undefined) +
    doc('Backend', 'grpc', { url: `https://127.0.0.1:${port}`, protocol: 'h2', tls: { caFile: pki.ca.certFile, serverName: 'a.example.test' } }) +
    doc('Api', 'grpc', { path: '/echo.Svc', backend: 'grpc' });
  const g = await startPlane(yaml);
  const client = http2.connect(g.h2Origin);
  client.on('error', () => {});
  try {
    const r = await grpcCall(client, '/echo.Svc/Get', { 'grpc-timeout': '5S' });
    assert.equal(r.headers[':status'], 200);
    assert.equal(r.data, 7);
    assert.equal(r.trailers?.['grpc-status'], '0');
    assert.equal(r.trailers?.['grpc-message'], 'fine');
    assert.deepEqual(seenTe, ['trailers']);
  } finally {
    client.close();
    await g.close();
    upstream.close();
    pki.close();
  }
});

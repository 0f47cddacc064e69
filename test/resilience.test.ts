// Cross-process: health checks, outlier ejection, retries and their budget, circuit breaker, limits, timeouts, error bodies and load shedding.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import { request } from 'undici';
import { startGateway, type GatewayProcess } from './helpers/gateway-process.ts';
import { refusedPort, startUpstream, type Upstream } from './helpers/upstream.ts';
import { runLoad, countOf } from './helpers/load.ts';

function gatewayDoc(extra = ''): string {
  return `apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  admin: { address: 127.0.0.1, port: 0 }
  accessLog: { enabled: false }
${extra}`;
}

/** A Backend named `name` and an Api serving every path under `/name` from it (JSON is valid YAML). */
function route(name: string, backend: Record<string, unknown>, api: Record<string, unknown> = {}): string {
  return `---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: ${name} }
spec: ${JSON.stringify(backend)}
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: ${name} }
spec: ${JSON.stringify({ path: `/${name}`, backend: name, ...api })}
`;
}

function reply(res: http.ServerResponse, status: number, text: string): void {
  if (res.destroyed) return;
  res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A port nothing listens on (outside the range other tests' servers get ports from). */
const deadPort = refusedPort;

let h1Healthy = true;
let cbFailing = true;
let h1: Upstream;
let h2: Upstream;
let ok: Upstream;
let fail500: Upstream;
let fail503: Upstream;
let cbUp: Upstream;
let slow600: Upstream;
let slow3000: Upstream;
let deadUrl: string;
let gw: GatewayProcess;
let origin: string;

const probes = (up: Upstream): number => up.seen.filter((s) => s.url === '/healthz').length;
const hits = (up: Upstream, api: string): number => up.seen.filter((s) => s.url.startsWith(`/${api}/`)).length;

async function get(path: string, init: { method?: string; body?: string } = {}) {
  const res = await request(`${origin}${path}`, { method: (init.method ?? 'GET') as 'GET', body: init.body });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text };
}

/** Asserts the gateway's own JSON error shape: exactly {statusCode, message, requestId}, the id echoing x-request-id. */
function assertJsonError(r: { status: number; headers: Record<string, unknown>; text: string }, status: number, message: string): void {
  assert.equal(r.status, status, r.text);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  const body = JSON.parse(r.text) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), ['message', 'requestId', 'statusCode']);
  assert.equal(body.statusCode, status);
  assert.equal(body.message, message);
  assert.equal(body.requestId, r.headers['x-request-id']);
  assert.ok(typeof body.requestId === 'string' && body.requestId.length > 0);
}

before(async () => {
  [h1, h2, ok, fail500, fail503, cbUp, slow600, slow3000] = await Promise.all([
    startUpstream((req, res) => reply(res, req.url === '/healthz' && !h1Healthy ? 503 : 200, 'h1')),
    startUpstream((_req, res) => reply(res, 200, 'h2')),
    startUpstream((_req, res) => reply(res, 200, 'ok')),
    startUpstream((_req, res) => reply(res, 500, 'boom')),
    startUpstream((_req, res) => reply(res, 503, 'unavailable')),
    startUpstream((_req, res) => reply(res, cbFailing ? 500 : 200, cbFailing ? 'boom' : 'ok')),
    startUpstream((_req, res) => setTimeout(() => reply(res, 200, 'slow'), 600)),
    startUpstream((_req, res) => setTimeout(() => reply(res, 200, 'too slow'), 3000)),
  ]);
  deadUrl = `http://127.0.0.1:${await deadPort()}`;
  const noOutliers = { enabled: false };
  const yaml =
    gatewayDoc() +
    route('hc', {
      endpoints: [{ url: h1.url }, { url: h2.url }],
      // A generous probe timeout: a probe lost to a busy CI machine must not flip the endpoint.
      healthCheck: { path: '/healthz', interval: '200ms', timeout: '150ms', unhealthyThreshold: 2, healthyThreshold: 2 },
      outlierDetection: noOutliers,
    }) +
    route('od', {
      endpoints: [{ url: fail500.url }, { url: ok.url }],
      outlierDetection: { consecutiveErrors: 3, baseEjectionTime: '30s', maxEjectionPercent: 50 },
      retries: { attempts: 0 },
    }) +
    route('retry', { endpoints: [{ url: fail503.url }, { url: ok.url }], retries: { attempts: 1, backoff: '0' }, outlierDetection: noOutliers }) +
    route('refused', { endpoints: [{ url: deadUrl }, { url: ok.url }], retries: { attempts: 1, backoff: '0' }, outlierDetection: noOutliers }) +
    route('nobudget', {
      endpoints: [{ url: fail503.url }, { url: ok.url }],
      retries: { attempts: 1, backoff: '0', budgetPercent: 0, minPerSecond: 0 },
      outlierDetection: noOutliers,
    }) +
    route('budget3', {
      endpoints: [{ url: fail503.url }, { url: ok.url }],
      // 0.3 per second over the budget's 10 s window: exactly 3 retries, then none.
      retries: { attempts: 1, backoff: '0', budgetPercent: 0, minPerSecond: 0.3 },
      outlierDetection: noOutliers,
    }) +
    route('cb', {
      url: cbUp.url,
      retries: { attempts: 0 },
      outlierDetection: noOutliers,
      circuitBreaker: { rules: [{ name: 'errors', count: 3, interval: '10s', tripDuration: '500ms' }] },
    }) +
    route('pending', { url: slow600.url, maxConnections: 1, maxPendingRequests: 1, retries: { attempts: 0 } }) +
    route('timeout', { url: slow3000.url, timeouts: { perTry: '200ms' }, retries: { attempts: 0 } }) +
    route('dead', { url: deadUrl }) +
    route('apim', { url: deadUrl }, { errorStyle: 'apim' });
  gw = await startGateway(yaml, { workers: 1 });
  origin = `http://127.0.0.1:${gw.ports.http}`;
});

after(async () => {
  await gw?.stop();
  await Promise.all([h1, h2, ok, fail500, fail503, cbUp, slow600, slow3000].map((u) => u?.close()));
});

test('active health checks: an endpoint failing /healthz gets no traffic after the threshold, and returns after passing again', async () => {
  await waitFor(() => probes(h1) >= 1 && probes(h2) >= 1, 2000, 'first probes');
  for (let i = 0; i < 20; i++) assert.equal((await get(`/hc/before-${i}`)).status, 200);
  assert.equal(hits(h1, 'hc'), 10, 'both endpoints serve while healthy');

  h1Healthy = false;
  const p0 = probes(h1);
  // The third probe after the flip proves two failing probes were counted (each probe is scheduled after the previous one's result).
  await waitFor(() => probes(h1) >= p0 + 3, 5000, 'failing probes');
  const h1Before = hits(h1, 'hc');
  for (let i = 0; i < 20; i++) {
    const r = await get(`/hc/down-${i}`);
    assert.equal(r.status, 200);
    assert.equal(r.text, 'h2');
  }
  assert.equal(hits(h1, 'hc'), h1Before, 'the unhealthy endpoint got no traffic');

  h1Healthy = true;
  const p1 = probes(h1);
  await waitFor(() => probes(h1) >= p1 + 3, 5000, 'passing probes');
  for (let i = 0; i < 20; i++) assert.equal((await get(`/hc/back-${i}`)).status, 200);
  assert.equal(hits(h1, 'hc') - h1Before, 10, 'the endpoint takes its round-robin share again');
});

test('passive outlier detection ejects an endpoint after 3 consecutive 500s', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 20; i++) statuses.push((await get(`/od/${i}`)).status);
  assert.equal(hits(fail500, 'od'), 3, 'exactly consecutiveErrors requests reached the failing endpoint');
  assert.equal(statuses.filter((s) => s === 500).length, 3);
  assert.deepEqual(statuses.slice(-10), Array(10).fill(200));
});

test('a GET answered 503 is retried on the other endpoint and succeeds, with the same request id', async () => {
  for (let i = 0; i < 10; i++) {
    const r = await get(`/retry/get-${i}`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, 'ok');
  }
  const failed = fail503.seen.filter((s) => s.url.startsWith('/retry/get-'));
  assert.ok(failed.length >= 1, 'some first attempts went to the 503 endpoint');
  assert.equal(ok.seen.filter((s) => s.url.startsWith('/retry/get-')).length, 10);
  const okIds = new Set(ok.seen.map((s) => s.headers['x-request-id']));
  for (const s of failed) assert.ok(okIds.has(s.headers['x-request-id']), `retry of ${s.url} kept its request id`);
});

test('a GET whose endpoint refuses the connection is retried on the other endpoint', async () => {
  for (let i = 0; i < 6; i++) {
    const r = await get(`/refused/${i}`);
    assert.equal(r.status, 200, r.text);
  }
  assert.equal(hits(ok, 'refused'), 6);
});

test('a POST or PUT with a body is not retried: the body was streamed and is gone', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) statuses.push((await get('/retry/post', { method: i % 2 ? 'PUT' : 'POST', body: `body-${i}` })).status);
  const bodies = [...fail503.seen, ...ok.seen].filter((s) => s.url === '/retry/post').map((s) => s.body);
  for (let i = 0; i < 6; i++) assert.equal(bodies.filter((b) => b === `body-${i}`).length, 1, `body-${i} sent once`);
  const to503 = fail503.seen.filter((s) => s.url === '/retry/post').length;
  assert.ok(to503 >= 1, 'some requests reached the 503 endpoint');
  assert.equal(statuses.filter((s) => s === 503).length, to503, 'their 503 was passed on, not retried');
});

test('retry budget: budgetPercent 0 and minPerSecond 0 allow no retries at all', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) statuses.push((await get(`/nobudget/${i}`)).status);
  assert.equal(hits(fail503, 'nobudget') + hits(ok, 'nobudget'), 10, 'each request reached an upstream once');
  assert.ok(statuses.filter((s) => s === 503).length >= 1, String(statuses));
});

test('retry budget: minPerSecond 0.3 allows exactly 3 retries in the window, then stops retrying', async () => {
  const statuses: number[] = [];
  for (let i = 0; i < 20; i++) statuses.push((await get(`/budget3/${i}`)).status);
  const attempts = hits(fail503, 'budget3') + hits(ok, 'budget3');
  assert.equal(attempts - 20, 3, `retries made (statuses ${statuses.join(',')})`);
  assert.ok(statuses.filter((s) => s === 503).length >= 1, 'once the budget is spent, 503s are passed on');
});

test('circuit breaker: opens after 3 failures (503 + Retry-After), half-opens after tripDuration, closes on a good probe', async () => {
  const metric = async (): Promise<string | undefined> => {
    const text = await (await request(`http://127.0.0.1:${gw.admin}/metrics`)).body.text();
    return text.split('\n').find((l) => l.startsWith('lockgate_breaker_open{backend="default/cb"}'));
  };
  cbFailing = true;
  for (let i = 0; i < 3; i++) assert.equal((await get(`/cb/${i}`)).status, 500);
  const open = await get('/cb/open');
  assertJsonError(open, 503, 'Backend circuit breaker is open');
  assert.match(String(open.headers['retry-after']), /^[1-9]\d*$/);
  assert.equal(hits(cbUp, 'cb'), 3, 'nothing reaches the backend while open');
  assert.equal(await metric(), 'lockgate_breaker_open{backend="default/cb"} 1');

  // Half-open after 500 ms: one probe goes through; it fails, so the breaker opens again.
  await sleep(600);
  assert.equal((await get('/cb/probe-1')).status, 500);
  assert.equal(hits(cbUp, 'cb'), 4);
  assertJsonError(await get('/cb/reopened'), 503, 'Backend circuit breaker is open');
  assert.equal(hits(cbUp, 'cb'), 4);

  cbFailing = false;
  await sleep(600);
  assert.equal((await get('/cb/probe-2')).status, 200);
  for (let i = 0; i < 5; i++) assert.equal((await get(`/cb/closed-${i}`)).status, 200);
  assert.equal(hits(cbUp, 'cb'), 10);
  assert.equal(await metric(), 'lockgate_breaker_open{backend="default/cb"} 0');
});

test('pending-request cap: with maxConnections 1 and maxPendingRequests 1, requests beyond 2 get 503 at once', async () => {
  const t0 = performance.now();
  const results: Array<{ status: number; ms: number; body: string; retryAfter: unknown; id: unknown }> = [];
  const r = await runLoad({
    origin,
    concurrency: 5,
    count: 5,
    request: (i) => ({ path: `/pending/${i}` }),
    onResponse: (_i, status, headers, body) => results.push({ status, ms: performance.now() - t0, body, retryAfter: headers['retry-after'], id: headers['x-request-id'] }),
  });
  assert.deepEqual(r.errors, {});
  assert.equal(countOf(r, 200), 2, JSON.stringify(results));
  assert.equal(countOf(r, 503), 3, JSON.stringify(results));
  for (const x of results.filter((x) => x.status === 503)) {
    // A queued request would wait for the 600 ms upstream; a refused one is answered at once.
    assert.ok(x.ms < 400, `503 answered after ${x.ms.toFixed(0)} ms`);
    assert.deepEqual(JSON.parse(x.body), { statusCode: 503, message: 'Too many pending requests to the backend', requestId: x.id });
  }
  assert.equal(hits(slow600, 'pending'), 2);
});

test('per-try timeout: an upstream slower than timeouts.perTry gives 504 with a JSON body', async () => {
  const t0 = performance.now();
  const r = await get('/timeout/x');
  const ms = performance.now() - t0;
  assertJsonError(r, 504, 'The backend did not respond in time');
  // Sub-second per-try timeouts run on the gateway's 10 ms deadline wheel: never early, and late by little.
  assert.ok(ms >= 195 && ms < 600, `504 after ${ms.toFixed(0)} ms (perTry 200 ms, upstream 3000 ms)`);
});

test('connection refused: 502 with a JSON body {statusCode, message, requestId}', async () => {
  assertJsonError(await get('/dead/x'), 502, 'Could not connect to the backend');
});

test('errorStyle apim: a backend failure is API Management\'s 500 body with the activityId', async () => {
  const r = await get('/apim/x');
  assert.equal(r.status, 500);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  const id = r.headers['x-request-id'];
  assert.ok(typeof id === 'string' && id.length > 0);
  assert.equal(r.text, `{"statusCode":500,"message":"Internal server error","activityId":${JSON.stringify(id)}}`);
});

async function shedCount(g: GatewayProcess): Promise<number> {
  const text = await (await request(`http://127.0.0.1:${g.admin}/metrics`)).body.text();
  const line = text.split('\n').find((l) => l.startsWith('lockgate_requests_shed_total '));
  return line ? Number(line.split(' ')[1]) : 0;
}

test('overload: with maxEventLoopDelay 1ms, load is shed with 503 + Retry-After and counted in lockgate_requests_shed_total', async () => {
  const up = await startUpstream((_req, res) => reply(res, 200, 'ok'));
  const g = await startGateway(gatewayDoc("  overload: { maxEventLoopDelay: 1ms, retryAfter: 2s }\n") + route('o', { url: up.url }), { workers: 1 });
  try {
    const before = await shedCount(g);
    const shed: Array<{ retryAfter: unknown; body: string; id: unknown }> = [];
    const r = await runLoad({
      origin: `http://127.0.0.1:${g.ports.http}`,
      concurrency: 50,
      count: 2000,
      request: (i) => ({ path: `/o/${i}` }),
      onResponse: (_i, status, headers, body) => {
        if (status === 503) shed.push({ retryAfter: headers['retry-after'], body, id: headers['x-request-id'] });
      },
    });
    assert.deepEqual(r.errors, {});
    assert.equal(countOf(r, 200) + countOf(r, 503), 2000, JSON.stringify(r.statuses));
    assert.ok(shed.length >= 1, 'some requests were shed');
    for (const s of shed) {
      assert.equal(s.retryAfter, '2');
      assert.deepEqual(JSON.parse(s.body), { statusCode: 503, message: 'Gateway overloaded, retry later', requestId: s.id });
    }
    assert.equal((await shedCount(g)) - before, shed.length, 'every shed request is counted');
  } finally {
    await g.stop();
    await up.close();
  }
});

test('overload: an idle gateway sheds nothing when maxEventLoopDelay (9ms) is above its real event-loop delay', async () => {
  const up = await startUpstream((_req, res) => reply(res, 200, 'ok'));
  const g = await startGateway(gatewayDoc("  overload: { maxEventLoopDelay: 9ms }\n") + route('o', { url: up.url }), { workers: 1 });
  try {
    const base = `http://127.0.0.1:${g.ports.http}`;
    // Warm up (first requests compile code), then let two 100 ms measurement windows pass.
    for (let i = 0; i < 5; i++) await (await request(`${base}/o/warm`)).body.dump();
    await sleep(250);
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await request(`${base}/o/${i}`);
      await res.body.dump();
      statuses.push(res.statusCode);
      await sleep(25);
    }
    const shed = statuses.filter((s) => s === 503).length;
    assert.equal(shed, 0, `an idle gateway shed ${shed} of 20 spaced requests (statuses ${statuses.join(',')})`);
    assert.deepEqual(statuses, Array(20).fill(200));
  } finally {
    await g.stop();
    await up.close();
  }
});

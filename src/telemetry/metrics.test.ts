import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MetricsRegistry, mergeSnapshots } from './metrics.ts';
import { Exchange } from '../proxy/exchange.ts';

function ex(route: object | null, status: number, opts: { api?: string; op?: string; backend?: string; ms?: number; error?: Exchange['errorCode'] } = {}): Exchange {
  const e = new Exchange('http', '127.0.0.1', 'GET', 1000, Date.now());
  e.routeKey = route;
  e.api = opts.api ?? 'a';
  e.operation = opts.op ?? 'o';
  e.backend = opts.backend ?? 'b';
  e.status = status;
  e.tDispatch = 1001;
  e.tResponseStart = 1002;
  e.tEnd = 1000 + (opts.ms ?? 3);
  if (opts.error) e.errorCode = opts.error;
  return e;
}

const total = (labels: string): string => `lockgate_requests_total{${labels}}`;

test('requests are counted per route and status, with their latency in the route histogram', () => {
  const m = new MetricsRegistry();
  try {
    const r1 = {};
    const r2 = {};
    m.record(ex(r1, 200));
    m.record(ex(r1, 200));
    m.record(ex(r1, 503, { error: 'no_healthy_endpoint' }));
    m.record(ex(r2, 200, { op: 'p', ms: 700 }));
    const s = m.snapshot();
    assert.equal(s.counters[total('api="a",operation="o",backend="b",status="200"')], 2);
    assert.equal(s.counters[total('api="a",operation="o",backend="b",status="503"')], 1);
    assert.equal(s.counters[total('api="a",operation="p",backend="b",status="200"')], 1);
    assert.equal(s.counters['lockgate_request_errors_total{code="no_healthy_endpoint"}'], 1);
    const h = s.histograms['lockgate_request_duration_seconds{api="a",operation="p",backend="b"}'];
    assert.equal(h.count, 1);
    assert.ok(Math.abs(h.sum - 0.7) < 1e-9);
    assert.equal(h.counts[10], 1, '0.7 s falls in the (0.5, 1] bucket');
  } finally {
    m.close();
  }
});

test('a reload (new route objects, same labels) continues the same counters and histograms', () => {
  const m = new MetricsRegistry();
  try {
    m.record(ex({}, 200));
    m.record(ex({}, 200));
    const s = m.snapshot();
    assert.equal(s.counters[total('api="a",operation="o",backend="b",status="200"')], 2);
    assert.equal(s.histograms['lockgate_request_duration_seconds{api="a",operation="o",backend="b"}'].count, 2);
    assert.equal(s.histograms['lockgate_upstream_duration_seconds{api="a",operation="o",backend="b"}'].count, 2);
  } finally {
    m.close();
  }
});

test('a snapshot is a copy, and label values are escaped', () => {
  const m = new MetricsRegistry();
  try {
    const r = {};
    m.record(ex(r, 200, { api: 'we"ird\\' }));
    const s = m.snapshot();
    m.record(ex(r, 200, { api: 'we"ird\\' }));
    const k = total('api="we\\"ird\\\\",operation="o",backend="b",status="200"');
    assert.equal(s.counters[k], 1);
    assert.equal(m.snapshot().counters[k], 2);
  } finally {
    m.close();
  }
});

test('unrouted requests count under empty labels; snapshots from workers sum, gauges take the maximum', () => {
  const a = new MetricsRegistry();
  const b = new MetricsRegistry();
  try {
    a.record(ex(null, 404));
    b.record(ex(null, 404));
    b.record(ex(null, 404));
    const sa = a.snapshot();
    const sb = b.snapshot();
    sa.gauges.g = 1;
    sb.gauges.g = 3;
    const merged = mergeSnapshots([sa, sb]);
    assert.equal(merged.counters[total('api="",operation="",backend="",status="404"')], 3);
    assert.equal(merged.gauges.g, 3);
    assert.equal(merged.histograms['lockgate_request_duration_seconds{api="",operation="",backend=""}'].count, 3);
  } finally {
    a.close();
    b.close();
  }
});

test("a route target's telemetry slot holds its series for this registry only", () => {
  const a = new MetricsRegistry();
  const b = new MetricsRegistry();
  try {
    const route = { telemetry: null as unknown };
    a.record(ex(route, 200));
    assert.notEqual(route.telemetry, null, 'the slot is filled on first use');
    a.record(ex(route, 200));
    a.record(ex(route, 500));
    a.record(ex(route, 200));
    // Another registry in the same thread (tests) must not count into a's series through the slot.
    b.record(ex(route, 200));
    const k = total('api="a",operation="o",backend="b",status="200"');
    assert.equal(a.snapshot().counters[k], 3);
    assert.equal(a.snapshot().counters[total('api="a",operation="o",backend="b",status="500"')], 1);
    assert.equal(b.snapshot().counters[k], 1);
  } finally {
    a.close();
    b.close();
  }
});

test('requests refused by the parser are counted by status', async () => {
  const { requestRefused } = await import('./channels.ts');
  const m = new MetricsRegistry();
  try {
    requestRefused.publish({ status: 400 });
    requestRefused.publish({ status: 400 });
    requestRefused.publish({ status: 431 });
    const c = m.snapshot().counters;
    assert.equal(c['lockgate_requests_refused_total{status="400"}'], 2);
    assert.equal(c['lockgate_requests_refused_total{status="431"}'], 1);
  } finally {
    m.close();
  }
});

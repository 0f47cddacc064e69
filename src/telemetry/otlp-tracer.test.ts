// OtlpTracer against a real OTLP/HTTP collector stand-in: what is exported, with which ids, names, attributes and times.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, test } from 'node:test';
import { Exchange } from '../proxy/exchange.ts';
import { requestEnd } from './channels.ts';
import { createOtlpTracer, sampledByRatio, sampleThreshold, type OtlpTracerConfig } from './otlp-tracer.ts';

interface OtlpValue { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean }
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: OtlpValue }[];
  events: { name: string; timeUnixNano: string }[];
  status: { code: number; message?: string };
}
interface Received { path: string; contentType: string; resource: Record<string, unknown>; spans: OtlpSpan[] }

let server: http.Server;
let endpoint = '';
let received: Received[] = [];

function plain(v: OtlpValue): unknown {
  return v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : v.doubleValue ?? v.boolValue);
}
function attrs(list: { key: string; value: OtlpValue }[]): Record<string, unknown> {
  return Object.fromEntries(list.map((a) => [a.key, plain(a.value)]));
}
const spans = (): OtlpSpan[] => received.flatMap((r) => r.spans);

before(async () => {
  server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const rs of body.resourceSpans) {
        received.push({
          path: req.url ?? '',
          contentType: req.headers['content-type'] ?? '',
          resource: attrs(rs.resource.attributes),
          spans: rs.scopeSpans.flatMap((s: { spans: OtlpSpan[] }) => s.spans),
        });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));
beforeEach(() => {
  received = [];
});

const config = (over: Partial<OtlpTracerConfig> = {}): OtlpTracerConfig =>
  ({ endpoint, sampleRatio: 0, serviceName: 'edge-gw', workerId: 3, ...over });

let seq = 0;
/** A finished request with all phases; `parent` '' means the gateway started the trace. */
function exchange(parent: string, flags: number, traceId = `4bf92f3577b34da6a3ce929d0e0e47${(seq++ % 100).toString().padStart(2, '0')}`): Exchange {
  const ex = new Exchange('public', '203.0.113.9', 'GET', 1000.25, 1_700_000_000_123);
  ex.requestId = `req-${seq}`;
  ex.traceId = traceId;
  ex.spanId = `00f067aa0ba902${(seq % 100).toString().padStart(2, '0')}`;
  ex.parentSpanId = parent;
  ex.traceFlags = flags;
  ex.host = 'api.example.com';
  ex.path = '/orders/42';
  ex.api = 'orders';
  ex.operation = 'get-order';
  ex.backend = 'orders-svc';
  ex.endpoint = '10.0.0.7:8080';
  ex.configVersion = 'v17';
  ex.status = 200;
  ex.bytesOut = 512;
  ex.attempts = 1;
  ex.tDispatch = 1000.75;
  ex.tUpstreamStart = 1002.25;
  ex.tResponseStart = 1010.5;
  ex.tEnd = 1012.25;
  return ex;
}

test('sampleThreshold and sampledByRatio: 0 never, 1 always, in between by the trace id tail', () => {
  const low = 'ffffffffffffffffffffffff00000000';
  const high = '00000000000000000000000fffffffff';
  assert.equal(sampledByRatio(low, sampleThreshold(0)), false);
  assert.equal(sampledByRatio(high, sampleThreshold(1)), true);
  assert.equal(sampledByRatio(low, sampleThreshold(0.5)), true);
  assert.equal(sampledByRatio(high, sampleThreshold(0.5)), false);
  assert.equal(sampledByRatio('', sampleThreshold(1)), false);
});

test('exports incoming-sampled requests with the exchange ids, name, status, attributes and times; drops unsampled ones', async () => {
  const tracer = await createOtlpTracer(config());
  const sampled = exchange('b7ad6b7169203331', 1);
  const notSampled = exchange('b7ad6b7169203332', 0);
  const ours = exchange('', 0); // gateway-started, ratio 0
  const failed = exchange('b7ad6b7169203333', 1);
  failed.api = '';
  failed.operation = '';
  failed.backend = '';
  failed.endpoint = '';
  failed.status = 404;
  failed.errorCode = 'no_route';
  failed.tDispatch = failed.tUpstreamStart = failed.tResponseStart = 0;
  const bad = exchange('b7ad6b7169203334', 3);
  bad.status = 502;
  for (const ex of [sampled, notSampled, ours, failed, bad]) requestEnd.publish(ex);
  await tracer.close();

  assert.equal(received.length, 1, 'one batch for one flush');
  assert.equal(received[0].path, '/v1/traces');
  assert.match(received[0].contentType, /application\/json/);
  assert.equal(received[0].resource['service.name'], 'edge-gw');
  assert.equal(received[0].resource['lockgate.worker_id'], 3);
  const got = spans();
  assert.deepEqual(got.map((s) => s.spanId), [sampled.spanId, failed.spanId, bad.spanId]);
  assert.deepEqual(tracer.stats(), { exported: 3, failed: 0, dropped: 0, queued: 0 });

  const [s, f, b] = got;
  assert.equal(s.traceId, sampled.traceId);
  assert.equal(s.parentSpanId, sampled.parentSpanId);
  assert.equal(s.name, 'GET orders/get-order');
  assert.equal(s.kind, 2, 'SPAN_KIND_SERVER');
  assert.equal(s.status.code, 0, 'unset');
  assert.deepEqual(attrs(s.attributes), {
    'http.request.method': 'GET',
    'url.path': '/orders/42',
    'server.address': 'api.example.com',
    'client.address': '203.0.113.9',
    'http.response.status_code': 200,
    'http.request.body.size': 0,
    'http.response.body.size': 512,
    'lockgate.request_id': sampled.requestId,
    'lockgate.listener': 'public',
    'lockgate.config_version': 'v17',
    'lockgate.attempts': 1,
    'lockgate.api': 'orders',
    'lockgate.operation': 'get-order',
    'lockgate.backend': 'orders-svc',
    'lockgate.endpoint': '10.0.0.7:8080',
    'lockgate.phase.routing_ms': 0.5,
    'lockgate.phase.upstream_connect_ms': 1.5,
    'lockgate.phase.upstream_response_ms': 8.25,
    'lockgate.phase.total_ms': 12,
  });
  // Wall times: wallStart, then each phase boundary at its offset, in order, to the nanosecond.
  assert.equal(s.startTimeUnixNano, '1700000000123000000');
  assert.equal(s.endTimeUnixNano, '1700000000135000000');
  assert.deepEqual(s.events.map((e) => [e.name, e.timeUnixNano]), [
    ['dispatch', '1700000000123500000'],
    ['upstream_start', '1700000000125000000'],
    ['response_start', '1700000000133250000'],
  ]);

  assert.equal(f.name, 'GET (no route)');
  assert.equal(f.status.code, 2, 'error');
  assert.equal(f.status.message, 'no_route');
  const fa = attrs(f.attributes);
  assert.equal(fa['error.type'], 'no_route');
  assert.equal(fa['lockgate.api'], undefined);
  assert.equal(fa['lockgate.phase.routing_ms'], 12, 'no dispatch: routing runs to the end');
  assert.equal(fa['lockgate.phase.upstream_connect_ms'], undefined);
  assert.equal(f.events.length, 0);

  assert.equal(b.status.code, 2, '5xx is an error');
  assert.equal(attrs(b.attributes)['error.type'], '502');
});

test('ratio 1 exports gateway-started traces with no parent; incoming not-sampled still follow the parent', async () => {
  const tracer = await createOtlpTracer(config({ sampleRatio: 1 }));
  const ours = exchange('', 0);
  requestEnd.publish(ours);
  requestEnd.publish(exchange('b7ad6b7169203335', 0));
  await tracer.close();
  const got = spans();
  assert.equal(got.length, 1);
  assert.equal(got[0].traceId, ours.traceId);
  assert.equal(got[0].spanId, ours.spanId);
  assert.equal(got[0].parentSpanId, undefined);
});

test('a full queue drops and counts instead of growing; after close nothing is taken', async () => {
  // Batch of 2 starts an export at once; while it runs the queue holds 4 more and the 7th is dropped.
  const tracer = await createOtlpTracer(config({ maxQueueSize: 4, maxExportBatchSize: 2 }));
  for (let i = 0; i < 7; i++) requestEnd.publish(exchange('b7ad6b7169203336', 1));
  assert.equal(tracer.stats().dropped, 1);
  await tracer.close();
  requestEnd.publish(exchange('b7ad6b7169203337', 1));
  assert.equal(spans().length, 6);
  assert.deepEqual(tracer.stats(), { exported: 6, failed: 0, dropped: 1, queued: 0 });
});

test('an unreachable collector counts failures and close still returns', async () => {
  const tracer = await createOtlpTracer(config({ endpoint: 'http://127.0.0.1:1/v1/traces', exportTimeoutMs: 500 }));
  requestEnd.publish(exchange('b7ad6b7169203338', 1));
  await tracer.close();
  assert.deepEqual(tracer.stats(), { exported: 0, failed: 1, dropped: 0, queued: 0 });
});

// Cross-process: a real gateway process in front of a real upstream — routing, forwarding headers, errors, admin.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, type GatewayProcess } from './helpers/gateway-process.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';

let up: Upstream;
let gw: GatewayProcess;
let base: string;

function config(upstreamPort: number, extra = ''): string {
  return `apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  admin: { address: 127.0.0.1, port: 0 }
  accessLog: { path: stdout }
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec:
  url: http://127.0.0.1:${upstreamPort}
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: orders }
spec:
  path: /orders
  backend: up
  operations:
    - { name: list, method: GET, urlTemplate: / }
    - { name: get, method: GET, urlTemplate: "/{id}" }
    - { name: create, method: POST, urlTemplate: / }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: files }
spec:
  path: /files
  backend: up
  stripPath: true
${extra}`;
}

before(async () => {
  up = await startUpstream((req, res, body) => {
    if (req.url === '/big') {
      const big = Buffer.alloc(200_000, 'b');
      res.writeHead(200, { 'content-length': big.length });
      return res.end(req.method === 'HEAD' ? undefined : big);
    }
    if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first,');
      setTimeout(() => res.end('last'), 20);
      return;
    }
    if (req.url?.startsWith('/files/hop') || req.url === '/hop') {
      // Hop-by-hop response headers, including one named in Connection, must not reach the client.
      res.writeHead(200, { connection: 'keep-alive, x-hop-secret', 'x-hop-secret': 's', 'keep-alive': 'timeout=5', 'x-end-to-end': 'e', 'content-length': '2' });
      return res.end('ok');
    }
    const text = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  });
  gw = await startGateway(config(up.port));
  base = `http://127.0.0.1:${gw.ports.http}`;
});

after(async () => {
  await gw?.stop();
  await up?.close();
});

test('a GET is routed, forwarded with X-Forwarded-*, Via, request id and traceparent', async () => {
  const res = await request(`${base}/orders/42?x=1`, { headers: { 'x-forwarded-for': '6.6.6.6', 'x-request-id': 'spoofed' } });
  assert.equal(res.statusCode, 200);
  const echoed = (await res.body.json()) as { url: string; headers: Record<string, string> };
  assert.equal(echoed.url, '/orders/42?x=1');
  // The client is not a trusted proxy: its X-Forwarded-For and request id are replaced.
  assert.equal(echoed.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(echoed.headers['x-forwarded-proto'], 'http');
  assert.equal(echoed.headers.via, '1.1 lockgate');
  assert.notEqual(echoed.headers['x-request-id'], 'spoofed');
  assert.equal(res.headers['x-request-id'], echoed.headers['x-request-id']);
  assert.match(echoed.headers.traceparent, /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
});

test('an incoming traceparent is continued with a new span id', async () => {
  const tp = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const res = await request(`${base}/orders`, { headers: { traceparent: tp, tracestate: 'a=1' } });
  const echoed = (await res.body.json()) as { headers: Record<string, string> };
  const [, trace, span, flags] = echoed.headers.traceparent.split('-');
  assert.equal(trace, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.notEqual(span, '00f067aa0ba902b7');
  // The client is not a trusted hop, so it cannot force sampling: with tracing off the gateway decides "not sampled".
  assert.equal(flags, '00');
  assert.equal(echoed.headers.tracestate, 'a=1');
});

test('stripPath removes the Api base path before forwarding', async () => {
  const res = await request(`${base}/files/a/b.txt`);
  const echoed = (await res.body.json()) as { url: string };
  assert.equal(echoed.url, '/a/b.txt');
});

test('hop-by-hop response headers, and those the upstream names in Connection, are not passed back', async () => {
  const res = await request(`${base}/files/hop`);
  assert.equal(await res.body.text(), 'ok');
  assert.equal(res.headers['x-hop-secret'], undefined);
  // Our own keep-alive hint (from the listener's idle timeout), never the upstream's.
  assert.notEqual(res.headers['keep-alive'], 'timeout=5');
  assert.equal(res.headers['x-end-to-end'], 'e');
});

test('bodies of every framing arrive intact: large with Content-Length, chunked, and HEAD without a body', async () => {
  const big = await request(`${base}/files/big`);
  assert.equal(big.headers['content-length'], '200000');
  const body = Buffer.from(await big.body.arrayBuffer());
  assert.equal(body.length, 200_000);
  assert.ok(body.every((b) => b === 0x62));
  const chunked = await request(`${base}/files/chunked`);
  assert.equal(await chunked.body.text(), 'first,last');
  const head = await request(`${base}/files/big`, { method: 'HEAD' });
  assert.equal(head.statusCode, 200);
  assert.equal(head.headers['content-length'], '200000');
  assert.equal((await head.body.text()).length, 0);
});

test('POST bodies stream through with their length', async () => {
  const body = 'x'.repeat(20_000);
  const res = await request(`${base}/orders`, { method: 'POST', body });
  const echoed = (await res.body.json()) as { body: string; headers: Record<string, string> };
  assert.equal(echoed.body.length, 20_000);
  assert.equal(echoed.headers['content-length'], '20000');
});

test('no route: 404 JSON with the request id, nothing forwarded', async () => {
  const before = up.seen.length;
  const res = await request(`${base}/nowhere`);
  assert.equal(res.statusCode, 404);
  const body = (await res.body.json()) as { statusCode: number; message: string; requestId: string };
  assert.equal(body.statusCode, 404);
  assert.equal(body.message, 'Resource not found');
  assert.equal(body.requestId, res.headers['x-request-id']);
  // Method mismatch is a 404 too, as in API Management.
  const del = await request(`${base}/orders/1`, { method: 'DELETE' });
  assert.equal(del.statusCode, 404);
  await del.body.dump();
  assert.equal(up.seen.length, before);
});

test('path traversal is normalised before routing; encoded slashes are rejected', async () => {
  const res = await request(`${base}/files/../orders/7`);
  const echoed = (await res.body.json()) as { url: string };
  assert.equal(echoed.url, '/orders/7');
  const bad = await request(`${base}/files/..%2forders/7`);
  assert.equal(bad.statusCode, 400);
  const body = (await bad.body.json()) as { statusCode: number; requestId: string };
  assert.equal(body.statusCode, 400);
  assert.ok(body.requestId);
});

test('admin: healthz, readyz, metrics count requests per operation, config is served', async () => {
  const admin = `http://127.0.0.1:${gw.admin}`;
  assert.equal((await request(`${admin}/healthz`)).statusCode, 200);
  assert.equal((await request(`${admin}/readyz`)).statusCode, 200);
  const m = await (await request(`${admin}/metrics`)).body.text();
  assert.match(m, /lockgate_requests_total\{api="orders",operation="get",backend="default\/up",status="200"\} \d+/);
  assert.match(m, /lockgate_request_duration_seconds_bucket\{api="orders",operation="get",backend="default\/up",le="\+Inf"\} \d+/);
  assert.match(m, /lockgate_config_info\{version="[0-9a-f]{12}"\} 1/);
  const cfg = (await (await request(`${admin}/config`)).body.json()) as { version: string };
  assert.match(cfg.version, /^[0-9a-f]{12}$/);
});

test('access log: one JSON line per request with ids and phase durations', async () => {
  const res = await request(`${base}/orders/99`, { headers: { 'user-agent': 't' } });
  await res.body.dump();
  const id = res.headers['x-request-id'] as string;
  let line: string | undefined;
  for (let i = 0; i < 50 && !line; i++) {
    line = gw.stdout.find((l) => l.includes(id));
    if (!line) await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(line, 'access log line written');
  const entry = JSON.parse(line) as Record<string, unknown> & { durationsUs: Record<string, number> };
  assert.equal(entry.status, 200);
  assert.equal(entry.api, 'orders');
  assert.equal(entry.operation, 'get');
  assert.equal(entry.path, '/orders/99');
  assert.match(String(entry.traceId), /^[0-9a-f]{32}$/);
  assert.ok(entry.durationsUs.total > 0);
});

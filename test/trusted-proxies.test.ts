// From a trusted proxy, incoming forwarding facts are kept: X-Forwarded-* appended or kept, x-request-id and
// the sampling decision of traceparent honoured. (The untrusted case is in gateway-basics.test.ts.)
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startGateway, type GatewayProcess } from './helpers/gateway-process.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { simpleConfig } from './helpers/config.ts';

let up: Upstream;
let gw: GatewayProcess;

before(async () => {
  up = await startUpstream();
  gw = await startGateway(simpleConfig({ upstreamPort: up.port, gateway: '  trustedProxies: [127.0.0.0/8]\n  accessLog: { enabled: false }' }));
});

after(async () => {
  await gw?.stop();
  await up?.close();
});

test('a trusted hop keeps its request id, X-Forwarded-For chain, proto and host, and its sampling decision', async () => {
  const res = await request(`http://127.0.0.1:${gw.ports.http}/t`, {
    headers: {
      'x-request-id': 'edge-42.a:b',
      'x-forwarded-for': '198.51.100.7',
      'x-forwarded-proto': 'https',
      'x-forwarded-host': 'api.example.com',
      traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    },
  });
  const echoed = (await res.body.json()) as { headers: Record<string, string> };
  assert.equal(res.headers['x-request-id'], 'edge-42.a:b');
  assert.equal(echoed.headers['x-request-id'], 'edge-42.a:b');
  assert.equal(echoed.headers['x-forwarded-for'], '198.51.100.7, 127.0.0.1');
  assert.equal(echoed.headers['x-forwarded-proto'], 'https');
  assert.equal(echoed.headers['x-forwarded-host'], 'api.example.com');
  assert.match(echoed.headers.traceparent, /^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
});

test('an invalid request id from a trusted hop is still replaced', async () => {
  const res = await request(`http://127.0.0.1:${gw.ports.http}/t`, { headers: { 'x-request-id': 'bad id with spaces' } });
  const echoed = (await res.body.json()) as { headers: Record<string, string> };
  assert.notEqual(echoed.headers['x-request-id'], 'bad id with spaces');
  assert.match(echoed.headers['x-request-id'], /^[0-9a-f]{32}$/);
});

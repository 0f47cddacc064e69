// Cross-process: subscription keys at the edge, as API Management checks them (reference/apim.md §1.3, §2.18),
// against a store written the way `lockgate subscription` writes it, including a change while running.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { startGateway, type GatewayProcess } from './helpers/gateway-process.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { SubscriptionStore } from '../src/store/subscription-store.ts';

const MISSING = 'Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.';
const INVALID = 'Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.';

let up: Upstream;
let gw: GatewayProcess;
let base: string;
const dir = mkdtempSync(path.join(tmpdir(), 'lg-subs-gw-'));
const keys: Record<string, string> = {};

function config(port: number): string {
  return `apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  admin: { address: 127.0.0.1, port: 0 }
  accessLog: { path: "off" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: "http://127.0.0.1:${port}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: orders }
spec: { path: /orders, backend: up, subscriptionRequired: true }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: legacy }
spec:
  path: /legacy
  backend: up
  errorStyle: apim
  subscriptionRequired: true
  subscriptionKeyParameterNames: { header: X-Api-Key, query: key }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: open }
spec: { path: /open, backend: up }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: trial }
spec: { path: /trial, backend: up, subscriptionRequired: true }
---
apiVersion: lockgate.dev/v1alpha1
kind: Product
metadata: { name: starter }
spec: { apis: [orders] }
---
apiVersion: lockgate.dev/v1alpha1
kind: Product
metadata: { name: premium }
spec: { apis: [legacy] }
---
apiVersion: lockgate.dev/v1alpha1
kind: Product
metadata: { name: free }
spec: { apis: [trial], subscriptionRequired: false }
`;
}

before(async () => {
  const store = SubscriptionStore.open(dir);
  try {
    keys.alice = store.create({ name: 'alice', scope: { kind: 'api', name: 'orders' } }).keys.primaryKey!;
    keys.bob = store.create({ name: 'bob', scope: { kind: 'all' }, primaryKey: 'migrated-from-apim-1' }).keys.secondaryKey!;
    keys.carol = store.create({ name: 'carol', scope: { kind: 'api', name: 'legacy' } }).keys.primaryKey!;
    keys.dave = store.create({ name: 'dave', scope: { kind: 'all' } }).keys.primaryKey!;
    store.setState('dave', 'suspend');
    keys.erin = store.create({ name: 'erin', scope: { kind: 'all' }, expiresAt: '2020-01-01T00:00:00Z' }).keys.primaryKey!;
    keys.frank = store.create({ name: 'frank', scope: { kind: 'product', name: 'starter' } }).keys.primaryKey!;
    keys.gina = store.create({ name: 'gina', scope: { kind: 'product', name: 'premium' } }).keys.primaryKey!;
  } finally {
    store.close();
  }
  up = await startUpstream();
  gw = await startGateway(config(up.port), { args: ['--data-dir', dir] });
  base = `http://127.0.0.1:${gw.ports.http}`;
});

after(async () => {
  await gw?.stop();
  await up?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function call(p: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, unknown> | string }> {
  const r = await request(`${base}${p}`, { headers });
  const text = await r.body.text();
  let body: Record<string, unknown> | string = text;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // upstream echo bodies are JSON too; keep text otherwise
  }
  return { status: r.statusCode, body };
}

test('no key: 401 with API Management\'s exact message; the backend never sees the request', async () => {
  const before = up.seen.length;
  const r = await call('/orders/1');
  assert.equal(r.status, 401);
  const body = r.body as { statusCode: number; message: string; requestId: string };
  assert.equal(body.statusCode, 401);
  assert.equal(body.message, MISSING);
  assert.match(body.requestId, /^[0-9a-f]{32}$/);
  assert.equal(up.seen.length, before);
});

test('errorStyle apim: the 401 bodies are byte for byte API Management\'s', async () => {
  const missing = await request(`${base}/legacy/x`);
  assert.equal(missing.statusCode, 401);
  assert.equal(await missing.body.text(), JSON.stringify({ statusCode: 401, message: MISSING }));
  const invalid = await request(`${base}/legacy/x`, { headers: { 'x-api-key': 'wrong-key-123' } });
  assert.equal(invalid.statusCode, 401);
  assert.equal(await invalid.body.text(), JSON.stringify({ statusCode: 401, message: INVALID }));
});

test('a valid key in the header opens its Api, and the key is not forwarded', async () => {
  const r = await call('/orders/1?x=1', { 'Ocp-Apim-Subscription-Key': keys.alice });
  assert.equal(r.status, 200);
  const seen = up.seen.at(-1)!;
  assert.equal(seen.url, '/orders/1?x=1');
  assert.equal(seen.headers['ocp-apim-subscription-key'], undefined);
});

test('the query parameter is read when the header is absent, and removed before forwarding', async () => {
  const r = await call(`/orders/2?a=1&subscription-key=${keys.bob}&b=2`);
  assert.equal(r.status, 200);
  assert.equal(up.seen.at(-1)!.url, '/orders/2?a=1&b=2');
  // A supplied (migrated) key works as well as a generated one.
  assert.equal((await call('/orders/3', { 'ocp-apim-subscription-key': 'migrated-from-apim-1' })).status, 200);
});

test('custom key names per Api', async () => {
  assert.equal((await call('/legacy/a', { 'X-Api-Key': keys.carol })).status, 200);
  assert.equal(up.seen.at(-1)!.headers['x-api-key'], undefined);
  assert.equal((await call(`/legacy/a?key=${keys.carol}`)).status, 200);
  assert.equal(up.seen.at(-1)!.url, '/legacy/a');
  // The default header name means nothing on this Api.
  assert.equal((await call('/legacy/a', { 'Ocp-Apim-Subscription-Key': keys.carol })).status, 401);
});

test('a key scoped to a product opens the Apis of that product only', async () => {
  assert.equal((await call('/orders/1', { 'Ocp-Apim-Subscription-Key': keys.frank })).status, 200);
  assert.equal((await call('/legacy/1', { 'X-Api-Key': keys.gina })).status, 200);
  assert.equal((await call('/legacy/1', { 'X-Api-Key': keys.frank })).status, 401);
});

test('an open product lets requests through without a key, and with an invalid one (API Management\'s resolution)', async () => {
  assert.equal((await call('/trial/a')).status, 200);
  assert.equal((await call('/trial/a', { 'Ocp-Apim-Subscription-Key': 'not-a-real-key' })).status, 200);
  assert.equal(up.seen.at(-1)!.headers['ocp-apim-subscription-key'], undefined, 'an ignored key is still not forwarded');
  assert.equal((await call('/trial/a', { 'Ocp-Apim-Subscription-Key': keys.bob })).status, 200);
});

test('invalid, wrong-scope, suspended, expired and other-product keys get the invalid-key 401', async () => {
  for (const [what, key] of [['unknown', 'nope-nope-nope'], ['other Api', keys.carol], ['suspended', keys.dave], ['expired', keys.erin], ['other product', keys.gina]]) {
    const r = await call('/orders/1', { 'Ocp-Apim-Subscription-Key': key });
    assert.equal(r.status, 401, what);
    assert.equal((r.body as { message: string }).message, INVALID, what);
  }
});

test('an Api without subscriptionRequired ignores keys', async () => {
  assert.equal((await call('/open/x')).status, 200);
  assert.equal((await call('/open/x', { 'Ocp-Apim-Subscription-Key': 'whatever-123' })).status, 200);
});

test('a change made with the store while the gateway runs applies within seconds', async () => {
  const store = SubscriptionStore.open(dir);
  let fresh: string;
  try {
    store.setState('alice', 'suspend');
    fresh = store.regenerate('bob', 'primary');
  } finally {
    store.close();
  }
  const deadline = Date.now() + 5000;
  let status = 0;
  while (Date.now() < deadline) {
    status = (await call('/orders/1', { 'Ocp-Apim-Subscription-Key': keys.alice })).status;
    if (status === 401) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(status, 401, 'the suspended subscription is refused');
  assert.equal((await call('/orders/1', { 'Ocp-Apim-Subscription-Key': fresh })).status, 200, 'the regenerated key works');
  assert.equal((await call('/orders/1', { 'Ocp-Apim-Subscription-Key': keys.bob })).status, 200, 'the other key of bob still works');
  assert.equal((await call('/orders/1', { 'Ocp-Apim-Subscription-Key': 'migrated-from-apim-1' })).status, 401, 'the replaced primary key is refused');
});

test('a WebSocket upgrade needs the key too (no way around the check by upgrading)', async () => {
  const { sendRaw } = await import('./helpers/raw-http.ts');
  const upgrade = (extra: string): string =>
    `GET /orders/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;
  const none = await sendRaw(gw.ports.http, upgrade(''), { timeoutMs: 2000 });
  assert.equal(none.status, 401);
  assert.equal((JSON.parse(none.responses[0].body.toString()) as { message: string }).message, MISSING);
  const bad = await sendRaw(gw.ports.http, upgrade('Ocp-Apim-Subscription-Key: wrong-wrong-1\r\n'), { timeoutMs: 2000 });
  assert.equal(bad.status, 401);
  // With a valid key the gateway goes on to the backend (which, here, does not speak WebSocket).
  const good = await sendRaw(gw.ports.http, upgrade(`Ocp-Apim-Subscription-Key: ${keys.frank}\r\n`), { timeoutMs: 2000 });
  assert.notEqual(good.status, 401);
  assert.deepEqual(up.seen.filter((s) => s.headers['ocp-apim-subscription-key'] !== undefined && s.url.startsWith('/orders')).map((s) => `${s.method} ${s.url}`), []);
});

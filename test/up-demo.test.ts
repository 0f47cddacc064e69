// `lockgate up` (what `npm start` runs): the demo gateway and services come up and answer the printed curl commands.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { request } from 'undici';

const BIN = path.resolve(import.meta.dirname, '../bin/lockgate.mjs');

test('lockgate up serves the demo: the mesh (mTLS identities, canary, denied call), the edge demo; Ctrl-C stops it cleanly', async () => {
  const proc = spawn(process.execPath, [BIN, 'up', '--port', '0', '--admin-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  try {
    const urls = await new Promise<{ gw: string; admin: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no URLs printed:\n${out}`)), 90_000);
      proc.stdout.on('data', () => {
        const gw = /gateway\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        const admin = /admin\s+(http:\/\/127\.0\.0\.1:\d+)\/healthz/.exec(out);
        if (gw && admin) {
          clearTimeout(timer);
          resolve({ gw: gw[1], admin: admin[1] });
        }
      });
      proc.once('exit', (code) => reject(new Error(`exited ${code}:\n${out}`)));
    });
    assert.match(out, /curl -i http:\/\/127\.0\.0\.1:\d+\/orders\/1/);
    // The mesh: gateway → orders → inventory over mTLS; inventory saw orders' verified identity.
    const shop = await request(`${urls.gw}/shop/orders/1`);
    assert.equal(shop.statusCode, 200);
    const sb = (await shop.body.json()) as { inventory: { status: number; body: { caller: string; version: string } } };
    assert.equal(sb.inventory.status, 200);
    assert.equal(sb.inventory.body.caller, 'spiffe://lockgate.local/ns/shop/sa/orders');
    // The canary: 90/10 with smooth weighted round-robin is exact over any 10 consecutive calls of one caller.
    const versions: Record<string, number> = {};
    for (let i = 0; i < 20; i++) {
      const r = await request(`${urls.gw}/shop/orders/1`);
      const v = ((await r.body.json()) as { inventory: { body: { version: string } } }).inventory.body.version;
      versions[v] = (versions[v] ?? 0) + 1;
    }
    assert.deepEqual(versions, { v1: 18, v2: 2 });
    // The denied call: orders may only read stock; inventory's sidecar refuses the DELETE with a decision id.
    const cancel = await request(`${urls.gw}/shop/orders/1/cancel`, { method: 'POST' });
    const cb = (await cancel.body.json()) as { inventory: { status: number; body: { error: { code: string; decision: string } } } };
    assert.equal(cancel.statusCode, 502);
    assert.equal(cb.inventory.status, 403);
    assert.equal(cb.inventory.body.error.code, 'access_denied');
    assert.ok(cb.inventory.body.error.decision);
    const order = await request(`${urls.gw}/orders/1`);
    assert.equal(order.statusCode, 200);
    assert.deepEqual(await order.body.json(), { id: '1', item: 'keyboard', quantity: 1, status: 'shipped' });
    const created = await request(`${urls.gw}/orders`, { method: 'POST', body: '{"item":"cable"}' });
    assert.equal(created.statusCode, 201);
    await created.body.dump();
    const echo = await request(`${urls.gw}/echo/anything?x=1`);
    assert.equal(((await echo.body.json()) as { url: string }).url, '/anything?x=1');
    const missing = await request(`${urls.gw}/nowhere`);
    assert.equal(missing.statusCode, 404);
    assert.equal(((await missing.body.json()) as { message: string }).message, 'Resource not found');
    // The protected demo Api: 401 without a key, 200 with the key printed in the curl command.
    const noKey = await request(`${urls.gw}/partners/hello`);
    assert.equal(noKey.statusCode, 401);
    await noKey.body.dump();
    const key = /Ocp-Apim-Subscription-Key: ([0-9a-f]{32})'/.exec(out)?.[1];
    assert.ok(key, `no key printed:\n${out}`);
    const withKey = await request(`${urls.gw}/partners/hello`, { headers: { 'ocp-apim-subscription-key': key } });
    assert.equal(withKey.statusCode, 200);
    assert.equal(((await withKey.body.json()) as { url: string }).url, '/hello');
    // The rate limit the printed curl loop trips: 5 calls a minute per subscription (one was made above).
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await request(`${urls.gw}/partners/hello`, { headers: { 'ocp-apim-subscription-key': key } });
      await r.body.dump();
      statuses.push(r.statusCode);
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 429]);
    assert.match(out, /for i in 1 2 3 4 5 6 7; do curl/);
    // Two versions imported from OpenAPI: v1 answers from the document's example (mock-response), no version is v1.
    const v1 = await request(`${urls.gw}/catalog/v1/products/1`);
    assert.equal(v1.statusCode, 200);
    assert.deepEqual(await v1.body.json(), { id: 1, name: 'keyboard', price: 49.5 });
    const dflt = await request(`${urls.gw}/catalog/products`);
    assert.deepEqual(((await dflt.body.json()) as unknown[]).length, 2);
    const v2 = await request(`${urls.gw}/catalog/v2/products/7`);
    assert.equal(((await v2.body.json()) as { url: string }).url, '/products/7');
    const metrics = await (await request(`${urls.admin}/metrics`)).body.text();
    assert.match(metrics, /lockgate_requests_total\{api="orders",operation="get-order",backend="default\/orders",status="200"\} 1/);
  } finally {
    proc.kill('SIGINT');
    const [code] = (await once(proc, 'exit')) as [number | null];
    assert.equal(code, 0);
  }
});

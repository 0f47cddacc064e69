// Cross-process: rate limits exact across a gateway's worker threads, quotas that survive a restart (--data-dir),
// and subscription key rotation under load without a failed request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { request, Agent } from 'undici';
import { startGateway } from './helpers/gateway-process.ts';
import { startUpstream } from './helpers/upstream.ts';
import { SubscriptionStore } from '../src/store/subscription-store.ts';

function config(upstreamPort: number, policy: string, api = ''): string {
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
spec: { url: "http://127.0.0.1:${upstreamPort}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: orders }
spec: { path: /orders, backend: up${api} }
---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: limits }
spec:
  scope: { api: orders }
  inbound:
${policy}`;
}

test('rate-limit-by-key admits exactly `calls` per window across 2 worker threads', async () => {
  const up = await startUpstream((_req, res) => setTimeout(() => res.end('ok'), 5));
  const calls = 40;
  // A window long enough that the burst below cannot straddle two windows unnoticed: we check the reset header.
  const gw = await startGateway(config(up.port, `    - rate-limit-by-key: { calls: ${calls}, renewalPeriod: 300s, counterKey: '"all"' }\n`), { workers: 2 });
  // Many connections so that both workers (SO_REUSEPORT) take requests.
  const agent = new Agent({ connections: 64, pipelining: 1 });
  try {
    const results = await Promise.all(
      Array.from({ length: 2 * calls }, async () => {
        const r = await request(`http://127.0.0.1:${gw.ports.http}/orders/x`, { dispatcher: agent, reset: true });
        await r.body.text();
        return r.statusCode;
      }),
    );
    const ok = results.filter((s) => s === 200).length;
    const limited = results.filter((s) => s === 429).length;
    assert.equal(ok + limited, 2 * calls, `statuses: ${JSON.stringify(results)}`);
    assert.equal(ok, calls, `exactly ${calls} admitted, got ${ok}`);
  } finally {
    await agent.close();
    await gw.stop();
    await up.close();
  }
});

test('quota-by-key counters survive a gateway restart (--data-dir)', async () => {
  const up = await startUpstream((_req, res) => res.end('ok'));
  const data = mkdtempSync(path.join(tmpdir(), 'lg-quota-'));
  const yaml = config(up.port, `    - quota-by-key: { calls: 3, renewalPeriod: 3600s, counterKey: '"tenant-a"' }\n`);
  const call = async (port: number): Promise<number> => {
    const r = await request(`http://127.0.0.1:${port}/orders/x`);
    await r.body.text();
    return r.statusCode;
  };
  try {
    let gw = await startGateway(yaml, { args: ['--data-dir', data] });
    assert.equal(await call(gw.ports.http), 200);
    assert.equal(await call(gw.ports.http), 200);
    // A clean stop flushes the counters.
    assert.equal(await gw.stop(), 0);
    gw = await startGateway(yaml, { args: ['--data-dir', data] });
    try {
      assert.equal(await call(gw.ports.http), 200, 'the third call of the quota');
      const over = await request(`http://127.0.0.1:${gw.ports.http}/orders/x`);
      const body = (await over.body.json()) as { message: string };
      assert.equal(over.statusCode, 403);
      assert.match(body.message, /^Out of call volume quota\. Quota will be replenished in \d\d:\d\d:\d\d\.$/);
    } finally {
      await gw.stop();
    }
  } finally {
    await up.close();
    rmSync(data, { recursive: true, force: true });
  }
});

test('subscription keys rotate under load without a failed request', async () => {
  const up = await startUpstream((_req, res) => res.end('ok'));
  const data = mkdtempSync(path.join(tmpdir(), 'lg-rotate-'));
  const store = SubscriptionStore.open(data);
  const { keys } = store.create({ name: 'client', scope: { kind: 'api', name: 'orders' } });
  store.close();
  const gw = await startGateway(config(up.port, '    - base: {}\n', ', subscriptionRequired: true'), { workers: 2, args: ['--data-dir', data] });
  // The client starts on the primary key; the operator rotates the secondary, the client moves to it,
  // then the operator rotates the primary. Every request along the way must succeed.
  let current = keys.primaryKey!;
  let stop = false;
  const statuses: number[] = [];
  const load = (async () => {
    while (!stop) {
      const r = await request(`http://127.0.0.1:${gw.ports.http}/orders/x`, { headers: { 'ocp-apim-subscription-key': current } });
      await r.body.text();
      statuses.push(r.statusCode);
    }
  })();
  // What a careful client does before switching: the new key must work on fresh connections (so on every
  // worker) several times in a row; the gateway applies a store change to all workers within a second.
  const waitApplied = async (key: string): Promise<void> => {
    const deadline = Date.now() + 8000;
    let inRow = 0;
    while (Date.now() < deadline && inRow < 10) {
      const r = await request(`http://127.0.0.1:${gw.ports.http}/orders/x`, { headers: { 'ocp-apim-subscription-key': key }, reset: true });
      await r.body.text();
      inRow = r.statusCode === 200 ? inRow + 1 : 0;
      if (inRow === 0) await new Promise((res) => setTimeout(res, 100));
    }
    if (inRow < 10) throw new Error('the new key was not applied in time');
  };
  try {
    await new Promise((r) => setTimeout(r, 300));
    let s = SubscriptionStore.open(data);
    const secondary = s.regenerate('client', 'secondary');
    s.close();
    await waitApplied(secondary);
    current = secondary;
    await new Promise((r) => setTimeout(r, 300));
    s = SubscriptionStore.open(data);
    const primary = s.regenerate('client', 'primary');
    s.close();
    await waitApplied(primary);
    await new Promise((r) => setTimeout(r, 300));
  } finally {
    stop = true;
    await load;
    await gw.stop();
    await up.close();
    rmSync(data, { recursive: true, force: true });
  }
  assert.ok(statuses.length > 20, `only ${statuses.length} requests were made`);
  assert.deepEqual([...new Set(statuses)], [200], `every request succeeded (${statuses.length})`);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import type { NodeIdentity } from '../model/snapshot.ts';
import { bundleFingerprint, NodeTracker, type NodeStatus } from './node-tracker.ts';

const orders: NodeIdentity = { kind: 'sidecar', namespace: 'shop', service: 'orders', spiffeId: 'spiffe://t/ns/shop/sa/orders' };

async function stored(store: MemoryConfigStore, id: string): Promise<NodeStatus | undefined> {
  const kv = await store.get(`/nodes/${id}`);
  return kv && (JSON.parse(kv.value) as NodeStatus);
}

test('a join is written at once; stream, sent versions and answers are written lazily, in one batch', async () => {
  let t = 1000;
  const store = new MemoryConfigStore();
  const tr = await NodeTracker.open({ store, now: () => t, flushDelayMs: 60_000 });
  await tr.joined('orders-1', orders);
  assert.equal((await stored(store, 'orders-1'))?.identity.spiffeId, orders.spiffeId);
  const rev = await store.revision();
  tr.connected('orders-1', '1.0');
  tr.sent('orders-1', 7, 3);
  tr.answered({ node: 'orders-1', version: 7, ok: true });
  t = 2000;
  tr.sent('orders-1', 9, 3);
  tr.answered({ node: 'orders-1', version: 9, ok: false, reason: 'snapshot config rejected: line 3' });
  assert.equal(await store.revision(), rev, 'nothing written yet');
  const n = tr.get('orders-1')!;
  assert.deepEqual([n.connected, n.schema, n.sentVersion, n.ackedVersion, n.lastSeen], [true, '1.0', 9, 7, 2000]);
  assert.deepEqual(n.lastAnswer, { version: 9, ok: false, reason: 'snapshot config rejected: line 3', at: 2000 });
  await tr.flush();
  assert.equal(await store.revision(), rev + 1, 'one write for all of it');
  assert.equal((await stored(store, 'orders-1'))?.lastAnswer?.reason, 'snapshot config rejected: line 3');
  await tr.close();
  await store.close();
});

test('unknown nodes are ignored; two overlapping streams keep a node connected until both end', async () => {
  const store = new MemoryConfigStore();
  const tr = await NodeTracker.open({ store, flushDelayMs: 60_000 });
  tr.answered({ node: 'ghost', version: 1, ok: true });
  assert.equal(tr.get('ghost'), undefined);
  await tr.joined('o', orders);
  tr.connected('o', '1.0');
  tr.connected('o', '1.0');
  tr.disconnected('o');
  assert.equal(tr.get('o')!.connected, true);
  tr.disconnected('o');
  assert.equal(tr.get('o')!.connected, false);
  await tr.close();
  await store.close();
});

test('after a restart every node shows as disconnected with what it last acknowledged', async () => {
  const store = new MemoryConfigStore();
  const a = await NodeTracker.open({ store, flushDelayMs: 5 });
  await a.joined('o', orders);
  a.connected('o', '1.0');
  a.answered({ node: 'o', version: 4, ok: true });
  await new Promise((r) => setTimeout(r, 30)); // the lazy flush
  assert.equal((await stored(store, 'o'))?.connected, true);
  const b = await NodeTracker.open({ store });
  assert.deepEqual([b.get('o')!.connected, b.get('o')!.ackedVersion], [false, 4]);
  assert.deepEqual(b.list().map((n) => n.id), ['o']);
  await b.close();
  await a.close();
  await store.close();
});

test('the certificate issued, the bundle sent and the app address are recorded and survive a restart', async () => {
  let t = 5000;
  let bundle = bundleFingerprint(['-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n']);
  const store = new MemoryConfigStore();
  const a = await NodeTracker.open({ store, now: () => t, flushDelayMs: 60_000, bundleFingerprint: () => bundle });
  await a.joined('o', orders, undefined, { issued: { root: 'R1', notAfter: 9000, issuedAt: 5000 }, bundle, app: { address: '127.0.0.1:8080', transport: 'tcp' } });
  assert.deepEqual((await stored(store, 'o'))?.app, { address: '127.0.0.1:8080', transport: 'tcp' }, 'written with the join');
  assert.deepEqual([a.get('o')!.root, a.get('o')!.certificateNotAfter, a.get('o')!.certificateIssuedAt, a.get('o')!.bundleFingerprint], ['R1', 9000, 5000, bundle]);
  // A root rotation: the next snapshot sent carries the new bundle; a renewal records the new root.
  bundle = bundleFingerprint(['a', 'b']);
  a.sent('o', 2, 1);
  assert.equal(a.get('o')!.bundleFingerprint, bundle);
  t = 7000;
  a.issued('o', { root: 'R2', notAfter: 11_000, issuedAt: 7000 });
  a.app('o', { address: '/run/o.sock', transport: 'unix' });
  assert.deepEqual([a.get('o')!.root, a.get('o')!.certificateNotAfter, a.get('o')!.lastSeen], ['R2', 11_000, 7000]);
  await a.flush();
  const b = await NodeTracker.open({ store });
  assert.deepEqual([b.get('o')!.root, b.get('o')!.bundleFingerprint, b.get('o')!.app?.transport], ['R2', bundle, 'unix']);
  a.app('o', undefined);
  assert.equal(a.get('o')!.app, undefined, 'a registration without app clears it');
  assert.equal(bundleFingerprint([' x \n', 'y']), bundleFingerprint(['x', 'y\n']), 'whitespace around each PEM does not count');
  assert.notEqual(bundleFingerprint(['x', 'y']), bundleFingerprint(['y', 'x']));
  await b.close();
  await a.close();
  await store.close();
});

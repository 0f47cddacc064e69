import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import type { NodeIdentity } from '../model/snapshot.ts';
import { NodeTracker, type NodeStatus } from './node-tracker.ts';

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

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import type { EndpointRecord } from '../model/snapshot.ts';
import { EndpointRegistry, endpointProblem } from './registry.ts';

function rec(node: string, service = 'shop/inventory', address = '127.0.0.1:9001'): EndpointRecord {
  return { service, node, address, labels: { zone: 'a' }, healthy: true, spiffeId: `spiffe://t/ns/shop/sa/${service.split('/')[1]}` };
}

test('register, list sorted by node, deregister; revisions follow the store and arrays change only with their service', async () => {
  const store = new MemoryConfigStore();
  const reg = await EndpointRegistry.open({ store, sweepIntervalMs: 60_000 });
  const seen: string[][] = [];
  reg.onChange((s) => seen.push([...s]));
  await reg.register(rec('n2'));
  await reg.register(rec('n1'));
  await reg.register(rec('o1', 'shop/orders'));
  assert.deepEqual(reg.services(), ['shop/inventory', 'shop/orders']);
  const list = reg.endpoints('shop/inventory');
  assert.deepEqual(list.map((e) => e.node), ['n1', 'n2']);
  assert.equal(reg.revision, await store.revision());
  const rev = reg.revision;
  await reg.register(rec('n1')); // unchanged: no write, no event
  assert.equal(reg.revision, rev);
  assert.equal(reg.endpoints('shop/inventory'), list);
  await reg.register({ ...rec('o1', 'shop/orders'), healthy: false });
  assert.equal(reg.endpoints('shop/inventory'), list, 'another service changing keeps this array');
  assert.equal(await reg.deregister('shop/inventory', 'n2'), true);
  assert.equal(await reg.deregister('shop/inventory', 'n2'), false);
  assert.deepEqual(reg.endpoints('shop/inventory').map((e) => e.node), ['n1']);
  assert.deepEqual(seen, [['shop/inventory'], ['shop/inventory'], ['shop/orders'], ['shop/orders'], ['shop/inventory']]);
  assert.deepEqual((await store.range('/registry/')).kvs.map((kv) => kv.key), ['/registry/shop/inventory/n1', '/registry/shop/orders/o1']);
  reg.close();
  await store.close();
});

test('records of a node whose stream is gone expire after the grace period; connected nodes stay', async () => {
  let t = 0;
  const store = new MemoryConfigStore();
  const reg = await EndpointRegistry.open({ store, now: () => t, graceMs: 30_000, sweepIntervalMs: 60_000 });
  reg.nodeConnected('live');
  await reg.register(rec('live'));
  await reg.register(rec('never-streamed'));
  await reg.register(rec('crashes'));
  reg.nodeConnected('crashes');
  t = 10_000;
  reg.nodeDisconnected('crashes');
  t = 29_999;
  assert.equal(await reg.sweep(), 0);
  t = 30_000;
  assert.equal(await reg.sweep(), 1, 'never-streamed expires 30 s after it registered');
  t = 39_999;
  assert.equal(await reg.sweep(), 0);
  t = 40_000;
  assert.equal(await reg.sweep(), 1, 'crashes expires 30 s after its stream ended');
  assert.deepEqual(reg.endpoints('shop/inventory').map((e) => e.node), ['live']);
  // A reconnect within the grace period keeps the record.
  reg.nodeDisconnected('live');
  t = 60_000;
  reg.nodeConnected('live');
  t = 200_000;
  assert.equal(await reg.sweep(), 0);
  reg.close();
  await store.close();
});

test('a restarted control plane loads the records and gives their nodes the grace period to come back', async () => {
  let t = 0;
  const store = new MemoryConfigStore();
  const a = await EndpointRegistry.open({ store, now: () => t, sweepIntervalMs: 60_000 });
  a.nodeConnected('n1');
  a.nodeConnected('n2');
  await a.register(rec('n1'));
  await a.register(rec('n2'));
  a.close();
  t = 100_000;
  const b = await EndpointRegistry.open({ store, now: () => t, graceMs: 30_000, sweepIntervalMs: 60_000 });
  assert.deepEqual(b.endpoints('shop/inventory').map((e) => e.node), ['n1', 'n2']);
  b.nodeConnected('n1');
  t = 130_000;
  assert.equal(await b.sweep(), 1);
  assert.deepEqual(b.endpoints('shop/inventory').map((e) => e.node), ['n1']);
  b.close();
  await store.close();
});

test('registrations are checked', () => {
  assert.equal(endpointProblem({ address: '127.0.0.1:8443' }), undefined);
  assert.equal(endpointProblem({ address: '[::1]:8443', labels: { region: 'eu', zone: 'eu-1', version: 'v2' }, healthy: false }), undefined);
  assert.match(endpointProblem({ address: '127.0.0.1' })!, /address/);
  assert.match(endpointProblem({ address: 'h:70000' })!, /address/);
  assert.match(endpointProblem({ address: 'h:1', labels: { a: 1 } })!, /label/);
  assert.match(endpointProblem({ address: 'h:1', healthy: 'yes' })!, /healthy/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import { SNAPSHOT_SCHEMA, type NodeIdentity } from '../model/snapshot.ts';
import { EndpointRegistry } from './registry.ts';
import { SnapshotCompiler } from './snapshot-compiler.ts';

const doc = (kind: string, ns: string, name: string, spec: string): [string, string] =>
  [`/config/${kind}/${ns}/${name}`, `apiVersion: lockgate.dev/v1alpha1\nkind: ${kind}\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n${spec}`];

const DOCS: Array<[string, string]> = [
  doc('Mesh', 'default', 'default', '  trustDomain: shop.local\n  certificateLifetime: 1h\n'),
  doc('MeshService', 'shop', 'orders', '  ports: [{ name: http, port: 8080 }]\n'),
  doc('MeshService', 'shop', 'inventory', '  ports: [{ name: http, port: 8080 }]\n'),
  doc('MeshService', 'shop', 'inventory-v2', '  ports: [{ name: http, port: 8080 }]\n'),
  doc('MeshRoute', 'shop', 'inventory-canary', '  service: inventory\n  rules:\n    - backends: [{ service: inventory, weight: 90 }, { service: inventory-v2, weight: 10 }]\n'),
  doc('AccessPolicy', 'shop', 'inventory-readers', '  target: { service: inventory }\n  allow: [{ sources: [orders] }]\n'),
  doc('AccessPolicy', 'shop', 'orders-callers', '  target: { service: shop/orders }\n  allow: [{ sources: ["*"] }]\n'),
  doc('Gateway', 'infra', 'edge', '  listeners: [{ name: http, port: 8080 }]\n'),
  doc('Api', 'shop', 'orders-api', '  path: /orders\n  backend: orders-mesh\n'),
  doc('Backend', 'shop', 'orders-mesh', '  type: mesh\n  meshService: orders\n'),
  doc('Backend', 'shop', 'legacy', '  type: url\n  url: http://127.0.0.1:1\n'),
];

const sidecar = (service: string): NodeIdentity => ({ kind: 'sidecar', namespace: 'shop', service, spiffeId: `spiffe://shop.local/ns/shop/sa/${service}` });
const gateway: NodeIdentity = { kind: 'gateway', namespace: 'infra', service: 'edge', spiffeId: 'spiffe://shop.local/ns/infra/sa/edge' };

function names(config: string): string[] {
  return [...config.matchAll(/^kind: (\w+)\nmetadata: \{ name: ([\w-]+)/gm)].map((m) => `${m[1]}/${m[2]}`);
}

async function setup() {
  const store = new MemoryConfigStore();
  await store.putMany(DOCS.map(([key, value]) => ({ key, value })));
  const registry = await EndpointRegistry.open({ store, sweepIntervalMs: 60_000 });
  for (const [svc, node] of [['shop/orders', 'o1'], ['shop/inventory', 'i1'], ['shop/inventory-v2', 'i2'], ['shop/unrelated', 'u1']]) {
    await registry.register({ service: svc, node, address: '127.0.0.1:1', labels: {}, healthy: true, spiffeId: `spiffe://shop.local/ns/shop/sa/${svc.split('/')[1]}` });
  }
  let bundle = ['ROOT-A'];
  const openRevision = await store.revision();
  const compiler = await SnapshotCompiler.open({ store, registry, trustBundle: () => bundle });
  const changed = (): Promise<void> => new Promise((resolve) => {
    const off = compiler.onChange(() => {
      off();
      resolve();
    });
  });
  return {
    store, registry, compiler, changed, openRevision, setBundle: (b: string[]) => (bundle = b),
    async close() {
      compiler.close();
      registry.close();
      await store.close();
    },
  };
}

test('a sidecar gets the Mesh, every MeshService and MeshRoute, the AccessPolicies that target it, and every endpoint', async () => {
  const s = await setup();
  const snap = s.compiler.compile(sidecar('inventory'));
  assert.equal(snap.schema, SNAPSHOT_SCHEMA);
  assert.equal(snap.version, s.openRevision, 'the store revision the config was read at');
  assert.equal(snap.endpointsVersion, s.registry.revision);
  assert.deepEqual(snap.trustBundle, ['ROOT-A']);
  assert.deepEqual(snap.node, sidecar('inventory'));
  assert.deepEqual(names(snap.config), [
    'Mesh/default', 'MeshService/inventory', 'MeshService/inventory-v2', 'MeshService/orders', 'MeshRoute/inventory-canary', 'AccessPolicy/inventory-readers',
  ]);
  assert.deepEqual(Object.keys(snap.endpoints).sort(), ['shop/inventory', 'shop/inventory-v2', 'shop/orders', 'shop/unrelated']);
  const orders = s.compiler.compile(sidecar('orders'));
  assert.deepEqual(names(orders.config).filter((n) => n.startsWith('AccessPolicy/')), ['AccessPolicy/orders-callers']);
  assert.deepEqual(s.compiler.meshSettings(), { trustDomain: 'shop.local', certificateLifetime: 3600_000 });
  await s.close();
});

test('a gateway gets the edge kinds, the Mesh and MeshServices, and the endpoints of its mesh Backends (and their routes\' splits)', async () => {
  const s = await setup();
  await s.store.put(...doc('MeshRoute', 'shop', 'orders-split', '  service: orders\n  rules:\n    - backends: [{ service: inventory-v2, weight: 1 }]\n'));
  await s.changed();
  const snap = s.compiler.compile(gateway);
  assert.deepEqual(names(snap.config), [
    'Mesh/default', 'Gateway/edge', 'Api/orders-api', 'Backend/legacy', 'Backend/orders-mesh',
    'MeshService/inventory', 'MeshService/inventory-v2', 'MeshService/orders', 'MeshRoute/orders-split',
  ]);
  assert.deepEqual(Object.keys(snap.endpoints).sort(), ['shop/inventory-v2', 'shop/orders']);
  // The config text is valid YAML documents in sequence (what the node's loader reads).
  assert.equal(snap.config.split(/^---$/m).length, 9);
  await s.close();
});

test('compiled once per version and service: the same object until something the node gets changes', async () => {
  const s = await setup();
  const a = s.compiler.compile(sidecar('inventory'));
  assert.equal(s.compiler.compile({ ...sidecar('inventory') }), a, 'shared by nodes of one service');
  // A policy for another service: a new store revision, but nothing inventory's sidecar gets.
  await s.store.put(...doc('AccessPolicy', 'shop', 'orders-more', '  target: { service: orders }\n'));
  await s.changed();
  assert.equal(s.compiler.compile(sidecar('inventory')), a);
  const o = s.compiler.compile(sidecar('orders'));
  assert.equal(o.version, s.compiler.version);
  assert.ok(o.config.includes('orders-more'));
  // A MeshService change reaches every sidecar, with the new store revision as version.
  const w = await s.store.put(...doc('MeshService', 'shop', 'payments', '  ports: [{ name: http, port: 8080 }]\n'));
  await s.changed();
  const b = s.compiler.compile(sidecar('inventory'));
  assert.notEqual(b, a);
  assert.equal(b.version, w.revision);
  // An endpoint change: same config version, new endpoints version.
  await s.registry.register({ service: 'shop/orders', node: 'o2', address: '127.0.0.1:2', labels: {}, healthy: true, spiffeId: 'spiffe://shop.local/ns/shop/sa/orders' });
  const c = s.compiler.compile(sidecar('inventory'));
  assert.equal(c.version, b.version);
  assert.equal(c.endpointsVersion, s.registry.revision);
  assert.equal(c.endpoints['shop/orders'].length, 2);
  assert.equal(c.config, b.config);
  // The gateway does not get unrelated's endpoints, so a change there is not a change for it.
  const g = s.compiler.compile(gateway);
  await s.registry.register({ service: 'shop/unrelated', node: 'u2', address: '127.0.0.1:3', labels: {}, healthy: true, spiffeId: 'spiffe://shop.local/ns/shop/sa/unrelated' });
  assert.equal(s.compiler.compile(gateway), g);
  // A trust bundle change (root rotation) is a change for everyone.
  s.setBundle(['ROOT-A', 'ROOT-B']);
  assert.deepEqual(s.compiler.compile(gateway).trustBundle, ['ROOT-A', 'ROOT-B']);
  await s.close();
});

test('a deleted document disappears, and one transaction is seen whole', async () => {
  const s = await setup();
  await s.store.putMany([
    { key: '/config/MeshService/shop/inventory-v2', delete: true },
    { key: '/config/MeshRoute/shop/inventory-canary', delete: true },
  ]);
  await s.changed();
  const names2 = names(s.compiler.compile(sidecar('orders')).config);
  assert.ok(!names2.includes('MeshService/inventory-v2') && !names2.includes('MeshRoute/inventory-canary'), names2.join());
  await s.close();
});

test('10,000 routes: compile once, then sharing is free', async () => {
  const store = new MemoryConfigStore();
  const ops = [];
  for (let i = 0; i < 10_000; i++) ops.push({ key: `/config/Api/shop/api-${i}`, value: `apiVersion: lockgate.dev/v1alpha1\nkind: Api\nmetadata: { name: api-${i}, namespace: shop }\nspec: { path: /r${i}, backend: b }\n` });
  await store.putMany(ops);
  const registry = await EndpointRegistry.open({ store, sweepIntervalMs: 60_000 });
  const compiler = await SnapshotCompiler.open({ store, registry, trustBundle: () => ['R'] });
  let t = performance.now();
  const first = compiler.compile(gateway);
  const firstMs = performance.now() - t;
  t = performance.now();
  for (let i = 0; i < 20; i++) assert.equal(compiler.compile({ ...gateway }), first);
  const sharedMs = performance.now() - t;
  assert.ok(firstMs < 500, `first compile took ${firstMs} ms`);
  assert.ok(sharedMs < 20, `20 shared compiles took ${sharedMs} ms`);
  compiler.close();
  registry.close();
  await store.close();
});

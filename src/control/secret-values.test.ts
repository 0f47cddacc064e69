import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { NodeIdentity } from '../model/snapshot.ts';
import { LocalKeyWrapper } from '../secrets/key-wrapper.ts';
import { MasterKeys } from '../secrets/master-keys.ts';
import { SecretStore } from '../secrets/secret-store.ts';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import { SecretValueCache } from './secret-values.ts';
import { SnapshotCompiler } from './snapshot-compiler.ts';

const doc = (kind: string, name: string, spec: string): [string, string] =>
  [`/config/${kind}/default/${name}`, `apiVersion: lockgate.dev/v1alpha1\nkind: ${kind}\nmetadata: { name: ${name} }\nspec:\n${spec}`];
const gateway: NodeIdentity = { kind: 'gateway', namespace: 'default', service: 'edge', spiffeId: 'spiffe://t/ns/default/sa/edge' };
const sidecar: NodeIdentity = { kind: 'sidecar', namespace: 'default', service: 'orders', spiffeId: 'spiffe://t/ns/default/sa/orders' };
const registry = { revision: 0, services: () => [], endpoints: () => [] };

async function until(what: string, fn: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('gateway snapshots carry the named secrets beside the config, never in it; a new version is a new snapshot', async (t) => {
  const store = new MemoryConfigStore();
  const secrets = new SecretStore({ store, keys: new MasterKeys(new LocalKeyWrapper(randomBytes(32))) });
  await secrets.set('db', 'value-one');
  await secrets.set('db', 'value-two');
  await secrets.set('unused', 'value-unused');
  await store.putMany([
    doc('NamedValue', 'latest', '  secret: db\n'),
    doc('NamedValue', 'pinned', '  secret: db\n  version: 1\n'),
    doc('NamedValue', 'plain', '  value: not-secret\n'),
    doc('MeshService', 'orders', '  ports: [{ name: http, port: 8080 }]\n'),
  ].map(([key, value]) => ({ key, value })));
  const errors: string[] = [];
  const cache = await SecretValueCache.open({ store, secrets, onError: (e) => errors.push((e as Error).message) });
  const compiler = await SnapshotCompiler.open({ store, registry, trustBundle: () => ['ROOT'], secretValues: cache });
  cache.onChange(() => compiler.trustBundleChanged());
  t.after(async () => {
    compiler.close();
    cache.close();
    await store.close();
  });
  const first = compiler.compile(gateway);
  assert.deepEqual(first.secrets, { db: 'value-two', 'db@1': 'value-one' }, 'only the secrets NamedValues name');
  assert.ok(!first.config.includes('value-'), 'the config text holds names only');
  assert.match(first.config, /kind: NamedValue/);
  const side = compiler.compile(sidecar);
  assert.equal(side.secrets, undefined, 'sidecars get no secrets');
  assert.ok(!side.config.includes('NamedValue'));
  // A new version of the secret: same config version, a new snapshot with the new value.
  await secrets.set('db', 'value-three');
  await until('the new value', () => compiler.compile(gateway).secrets?.db === 'value-three');
  const next = compiler.compile(gateway);
  assert.notEqual(next, first);
  assert.equal(next.version, first.version);
  assert.equal(next.config, first.config);
  // A NamedValue naming a missing secret: reported (by name), left out of the snapshot (the node then says which).
  await store.put(...doc('NamedValue', 'broken', '  secret: missing\n'));
  await until('the error', () => errors.length > 0);
  assert.match(errors[0], /secret missing named by a NamedValue cannot be opened: no secret named missing/);
  assert.ok(!errors.join('\n').includes('value-'));
  assert.equal(compiler.compile(gateway).secrets?.missing, undefined);
});

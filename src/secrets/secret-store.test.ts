import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import { LocalKeyWrapper, SecretsError } from './key-wrapper.ts';
import { MasterKeys } from './master-keys.ts';
import { SECRETS_PREFIX, SecretStore, secretKey } from './secret-store.ts';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SecretsError, String(err));
    return err.code;
  }
  assert.fail('expected a SecretsError');
}

function setup(): { store: MemoryConfigStore; keys: MasterKeys; secrets: SecretStore } {
  const store = new MemoryConfigStore();
  const keys = new MasterKeys(new LocalKeyWrapper(randomBytes(32)));
  let t = 1_000;
  return { store, keys, secrets: new SecretStore({ store, keys, now: () => t++ }) };
}

test('every set is a new version; get reads the newest enabled one or a given version', async () => {
  const { store, secrets } = setup();
  const v1 = await secrets.set('db-password', 'first-value', { by: 'alice' });
  const v2 = await secrets.set('db-password', 'second-value');
  assert.equal(v1.version, 1);
  assert.equal(v2.version, 2);
  assert.equal(v1.createdBy, 'alice');
  assert.equal((await secrets.get('db-password')).value, 'second-value');
  assert.equal((await secrets.get('db-password', { version: 1 })).value, 'first-value');
  await secrets.setEnabled('db-password', 2, false);
  assert.equal((await secrets.get('db-password')).value, 'first-value');
  assert.equal(await code(secrets.get('db-password', { version: 2 })), 'secret_invalid');
  assert.equal(await code(secrets.get('db-password', { version: 3 })), 'secret_not_found');
  assert.equal(await code(secrets.get('nope')), 'secret_not_found');
  const list = await secrets.list();
  assert.deepEqual(list, [{ name: 'db-password', latest: 1, versions: 2, updatedAt: 1001 }]);
  const versions = await secrets.versions('db-password');
  assert.deepEqual(versions.map((v) => [v.version, v.enabled]), [[1, true], [2, false]]);
  // Nothing stored anywhere holds the value in clear, and nothing lands under /config/.
  const { kvs } = await store.range('');
  assert.ok(kvs.every((kv) => kv.key.startsWith(SECRETS_PREFIX)));
  for (const kv of kvs) assert.ok(!kv.value.includes('first-value') && !kv.value.includes('second-value'));
  assert.equal(await secrets.delete('db-password'), 2);
  assert.deepEqual(await secrets.list(), []);
  await store.close();
});

test('names and values are checked; concurrent sets get distinct versions', async () => {
  const { store, secrets } = setup();
  assert.equal(await code(secrets.set('Bad Name', 'x')), 'secret_invalid');
  assert.equal(await code(secrets.set('ok', '')), 'secret_invalid');
  assert.equal(await code(secrets.set('ok', 'x'.repeat(64 * 1024 + 1))), 'secret_invalid');
  const infos = await Promise.all(Array.from({ length: 8 }, (_, i) => secrets.set('busy', `value-${i}`)));
  assert.deepEqual(infos.map((i) => i.version).sort((a, b) => a - b), [1, 2, 3, 4, 5, 6, 7, 8]);
  for (const info of infos) assert.match((await secrets.get('busy', { version: info.version })).value, /^value-\d$/);
  await store.close();
});

test('the wrong master key opens nothing; an envelope moved to another version does not open', async () => {
  const { store, secrets } = setup();
  await secrets.set('api-key', 'value-a');
  await secrets.set('api-key', 'value-b');
  const other = new SecretStore({ store, keys: new MasterKeys(new LocalKeyWrapper(randomBytes(32))) });
  assert.equal(await code(other.get('api-key')), 'unknown_key');
  // Copy version 1's envelope into version 2's record: the aad binds it to name and version.
  const one = JSON.parse((await store.get(secretKey('api-key', 1)))!.value) as { envelope: string };
  const two = await store.get(secretKey('api-key', 2));
  await store.put(two!.key, JSON.stringify({ ...JSON.parse(two!.value), envelope: one.envelope }));
  assert.equal(await code(secrets.get('api-key', { version: 2 })), 'decrypt_failed');
  await store.close();
});

test('rewrap under a new master key: every secret readable at every step, the old key not needed after', async () => {
  const { store, keys, secrets } = setup();
  const oldKey = keys.current;
  const expected = new Map<string, string>();
  for (let i = 0; i < 25; i++) {
    const name = `s-${i}`;
    const value = `secret-value-${i}-${randomBytes(4).toString('hex')}`;
    await secrets.set(name, value);
    expected.set(`${name}@1`, value);
  }
  const readAll = async (): Promise<void> => {
    for (const [ref, value] of expected) {
      const [name, version] = ref.split('@');
      assert.equal((await secrets.get(name, { version: Number(version) })).value, value, ref);
    }
  };
  const newKey = new LocalKeyWrapper(randomBytes(32));
  keys.rotateTo(newKey);
  // A set during the rotation is sealed under the new key already.
  expected.set('s-0@2', 'written-mid-rotation');
  await secrets.set('s-0', 'written-mid-rotation');
  const batches: number[] = [];
  const result = await secrets.rewrap({
    batchSize: 7,
    onBatch: async (done) => {
      batches.push(done);
      await readAll();
    },
  });
  assert.deepEqual(result, { rewrapped: 25, remaining: 0 });
  assert.deepEqual(batches, [7, 14, 21, 25]);
  await readAll();
  assert.deepEqual(await secrets.keyUsage(), { [newKey.keyId]: 26 });
  // The new key alone now opens everything; the old key alone opens nothing.
  keys.retirePrevious();
  await readAll();
  const onlyOld = new SecretStore({ store, keys: new MasterKeys(oldKey) });
  assert.equal(await code(onlyOld.get('s-3')), 'unknown_key');
  // A second run has nothing to do.
  assert.deepEqual(await secrets.rewrap(), { rewrapped: 0, remaining: 0 });
  await store.close();
});

test('rewrap interleaved with reads and writes: each batch leaves every secret readable, and no write is lost', async () => {
  const { store, keys, secrets } = setup();
  for (let i = 0; i < 12; i++) await secrets.set(`k-${i}`, `v-${i}`);
  keys.rotateTo(new LocalKeyWrapper(randomBytes(32)));
  let disabledMidway = false;
  const result = await secrets.rewrap({
    batchSize: 4,
    onBatch: () => {
      // Not awaited by rewrap: runs between its batches, racing with its compare-and-swap writes.
      if (!disabledMidway) {
        disabledMidway = true;
        void secrets.setEnabled('k-11', 1, false);
      }
    },
  });
  assert.equal(result.remaining, 0);
  for (let i = 0; i < 11; i++) assert.equal((await secrets.get(`k-${i}`)).value, `v-${i}`);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal((await secrets.versions('k-11'))[0].enabled, false, 'the disable made during the rotation is kept');
  assert.deepEqual(Object.keys(await secrets.keyUsage()), [keys.current.keyId]);
  await store.close();
});

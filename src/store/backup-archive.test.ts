// Tests for the backup archive: round trip through a store, header binding, tampering, wrong keys, versions.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { open, seal } from '../secrets/envelope.ts';
import { LocalKeyWrapper } from '../secrets/key-wrapper.ts';
import {
  BackupError, backupStore, createBackupArchive, openBackupArchive, readBackupHeader, restoreIntoStore, type ArchiveCipher,
} from './backup-archive.ts';
import { MemoryConfigStore } from './memory-config-store.ts';

function cipher(key = randomBytes(32)): ArchiveCipher {
  const w = new LocalKeyWrapper(key);
  return { keyId: w.keyId, seal: (p, aad) => seal(p, w, aad), open: (t, aad) => open(t, [w], aad) };
}

async function filled(): Promise<MemoryConfigStore> {
  const store = new MemoryConfigStore();
  await store.put('/config/Backend/default/orders', 'apiVersion: lockgate.dev/v1alpha1\nkind: Backend\n');
  await store.put('/ca/state', '{"trustDomain":"mesh.test","roots":[{"key":"sealed"}]}');
  await store.put('/nodes/orders-1', '{"identity":{"service":"orders"}}');
  await store.put('/tokens/admin/0123456789abcdef', '{"hash":"ab"}');
  await store.put('/nodes/orders-1', '{"identity":{"service":"orders"},"version":2}'); // a second write: revision 5
  await store.put('/gone', 'x');
  await store.delete('/gone');
  await store.put('/unicode/é', 'ünïcödé ✓');
  return store;
}

const rejectsWith = (code: string, pattern: RegExp) => (err: unknown): boolean => {
  assert.ok(err instanceof BackupError, `a BackupError, got ${String(err)}`);
  assert.equal(err.code, code);
  assert.match(err.message, pattern);
  return true;
};

test('backup then restore: every live key and value, nothing deleted, revisions restart at 1', async () => {
  const source = await filled();
  const c = cipher();
  const { text, header } = await backupStore(source, { trustDomain: 'mesh.test', cipher: c, now: () => Date.UTC(2025, 0, 2) });
  assert.equal(header.revision, await source.revision());
  assert.equal(header.keys, 5);
  assert.equal(header.createdAt, '2025-01-02T00:00:00.000Z');
  const parsed = JSON.parse(text);
  assert.equal(parsed.format, 'lockgate-backup');
  assert.equal(parsed.version, 1);
  assert.equal(parsed.keyId, c.keyId);
  assert.ok(!text.includes('orders-1') && !text.includes('Backend'), 'keys and values are inside the sealed payload only');

  const opened = await openBackupArchive(text, c);
  const want = (await source.range('')).kvs.map(({ key, value }) => ({ key, value }));
  assert.deepEqual(opened.entries, want);
  assert.deepEqual(opened.header, header);

  const target = new MemoryConfigStore();
  assert.equal(await restoreIntoStore(target, opened.entries), 1);
  assert.deepEqual((await target.range('')).kvs.map(({ key, value }) => ({ key, value })), want);
  assert.equal((await target.get('/nodes/orders-1'))!.version, 1);
  await assert.rejects(restoreIntoStore(target, opened.entries), rejectsWith('not_empty', /not empty \(revision 1\)/));
  await source.close();
  await target.close();
});

test('the archive is a consistent read: a write after it does not show up', async () => {
  const store = await filled();
  const c = cipher();
  const pending = backupStore(store, { trustDomain: 'mesh.test', cipher: c });
  await store.put('/config/Backend/default/late', 'late');
  const { entries, header } = await openBackupArchive((await pending).text, c);
  assert.equal(header.revision, (await store.revision()) - 1, 'the read happened before the write');
  assert.ok(!entries.some((e) => e.key.endsWith('/late')));
  assert.equal(entries.length, header.keys);
  await store.close();
});

test('an empty store backs up and restores to an empty store', async () => {
  const c = cipher();
  const { text } = await backupStore(new MemoryConfigStore(), { trustDomain: '', cipher: c });
  const { entries } = await openBackupArchive(text, c);
  assert.deepEqual(entries, []);
  const target = new MemoryConfigStore();
  assert.equal(await restoreIntoStore(target, entries), 0);
});

test('a wrong master key is refused, naming both key ids', async () => {
  const c = cipher();
  const other = cipher();
  const { text } = await createBackupArchive([{ key: '/a', value: '1' }], { revision: 1, trustDomain: 'td', cipher: c });
  await assert.rejects(openBackupArchive(text, other), rejectsWith('wrong_key', new RegExp(`sealed under master key ${c.keyId}, but the master key given is ${other.keyId}`)));
  // A header rewritten to name the other key: the data key does not unwrap under it.
  const relabelled = JSON.stringify({ ...JSON.parse(text), keyId: other.keyId });
  await assert.rejects(openBackupArchive(relabelled, other), rejectsWith('wrong_key', /does not unwrap/));
});

test('a changed header field or payload is refused as tampered', async () => {
  const c = cipher();
  const { text } = await createBackupArchive([{ key: '/a', value: '1' }, { key: '/b', value: '2' }], { revision: 7, trustDomain: 'td', cipher: c });
  const a = JSON.parse(text);
  for (const change of [{ revision: 8 }, { trustDomain: 'other' }, { keys: 3 }, { createdAt: '2020-01-01T00:00:00.000Z' }]) {
    await assert.rejects(openBackupArchive(JSON.stringify({ ...a, ...change }), c), rejectsWith('tampered', /does not authenticate/), JSON.stringify(change));
  }
  const env = JSON.parse(a.payload);
  const ct = Buffer.from(env.ciphertext, 'base64');
  ct[ct.length >> 1] ^= 1;
  const flipped = JSON.stringify({ ...a, payload: JSON.stringify({ ...env, ciphertext: ct.toString('base64') }) });
  await assert.rejects(openBackupArchive(flipped, c), rejectsWith('tampered', /does not authenticate/));
  await assert.rejects(openBackupArchive(JSON.stringify({ ...a, payload: '{"v":1}' }), c), rejectsWith('tampered', /./));
});

test('a sealed payload that is not a list of entries is refused', async () => {
  const c = cipher();
  const { text } = await createBackupArchive([{ key: '/a', value: '1' }, { key: '/a', value: '2' }], { revision: 1, trustDomain: 'td', cipher: c });
  await assert.rejects(openBackupArchive(text, c), rejectsWith('tampered', /repeated entry \("\/a"\)/));
});

test('headers: not an archive, unknown versions and damaged fields have clear messages', () => {
  assert.throws(() => readBackupHeader('not json'), rejectsWith('not_an_archive', /not a Lockgate backup/));
  assert.throws(() => readBackupHeader('{"format":"tarball"}'), rejectsWith('not_an_archive', /"format": "lockgate-backup"/));
  assert.throws(() => readBackupHeader('[]'), rejectsWith('not_an_archive', /not a Lockgate backup/));
  assert.throws(() => readBackupHeader('{"format":"lockgate-backup","version":2}'), rejectsWith('unsupported_version', /format version 2; this Lockgate reads version 1 only/));
  assert.throws(() => readBackupHeader('{"format":"lockgate-backup","version":"1"}'), rejectsWith('not_an_archive', /not a format version/));
  const ok = { format: 'lockgate-backup', version: 1, createdAt: new Date().toISOString(), revision: 1, trustDomain: 't', keyId: 'k', keys: 0, payload: 'p' };
  assert.equal(readBackupHeader(JSON.stringify({ ...ok, extra: true })).keyId, 'k');
  for (const [field, value] of [['revision', -1], ['keys', 1.5], ['keyId', ''], ['createdAt', 'yesterday'], ['payload', undefined]] as const) {
    assert.throws(() => readBackupHeader(JSON.stringify({ ...ok, [field]: value })), rejectsWith('not_an_archive', new RegExp(`"${field}" is missing or malformed`)));
  }
});

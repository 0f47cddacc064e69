import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SNAPSHOT_SCHEMA, type Snapshot } from '../model/snapshot.ts';
import { loadSnapshotFile, saveSnapshotFile } from './snapshot-file.ts';

const snap: Snapshot = {
  schema: SNAPSHOT_SCHEMA, version: 12, endpointsVersion: 30,
  node: { kind: 'sidecar', namespace: 'shop', service: 'orders', spiffeId: 'spiffe://t/ns/shop/sa/orders' },
  config: 'kind: Mesh\n', endpoints: {}, trustBundle: ['ROOT'],
};

test('a saved snapshot loads back, in format 1, written atomically with mode 0600', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lg-snap-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'snapshot.json');
  assert.deepEqual(await loadSnapshotFile(path), { ok: false, missing: true, message: `no saved snapshot at ${path}` });
  await saveSnapshotFile(path, snap, 1234);
  const raw = JSON.parse(await readFile(path, 'utf8'));
  assert.deepEqual([raw.format, raw.savedAt], [1, 1234]);
  assert.deepEqual(await loadSnapshotFile(path), { ok: true, snapshot: snap, savedAt: 1234 });
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  await saveSnapshotFile(path, { ...snap, version: 13 });
  assert.deepEqual(await readdir(dir), ['snapshot.json'], 'no temp files left behind');
  // Written from the JSON text it arrived as: the same file as from the object.
  await saveSnapshotFile(path, snap, 99, JSON.stringify(snap));
  assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), { format: 1, savedAt: 99, snapshot: snap });
  assert.deepEqual(await loadSnapshotFile(path), { ok: true, snapshot: snap, savedAt: 99 });
  // Or from parts that join to it (a delta-built snapshot), non-ASCII text included: the same file again.
  const withAccents = { ...snap, config: `${snap.config}# café – ünïcode\n` };
  const text = JSON.stringify(withAccents);
  const cut = [text.slice(0, 7), text.slice(7, text.length - 20), '', text.slice(text.length - 20)];
  await saveSnapshotFile(path, withAccents, 100, cut);
  assert.deepEqual(JSON.parse(await readFile(path, 'utf8')), { format: 1, savedAt: 100, snapshot: withAccents });
  assert.deepEqual(await readdir(dir), ['snapshot.json']);
});

test('an unknown file format, a foreign schema or garbage is ignored with a message', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lg-snap-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'snapshot.json');
  const cases: Array<[string, RegExp]> = [
    [JSON.stringify({ format: 2, savedAt: 1, snapshot: snap }), /format 2, this node reads format 1: ignored/],
    [JSON.stringify({ format: 1, savedAt: 1, snapshot: { ...snap, schema: '2.0' } }), /schema "2.0".*ignored/],
    [JSON.stringify({ format: 1, savedAt: 1 }), /holds no snapshot/],
    ['{"format":1,', /not JSON/],
  ];
  for (const [text, message] of cases) {
    await writeFile(path, text);
    const r = await loadSnapshotFile(path);
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.message : '', message);
  }
});

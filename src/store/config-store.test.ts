// Runs the ConfigStore contract against every embedded backend, plus what only SQLite can show (threads, files).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { compareKeys, prefixEnd, type ConfigStore } from './config-store.ts';
import { configStoreContract } from './config-store.contract.ts';
import { MemoryConfigStore } from './memory-config-store.ts';
import { CONFIG_DB, SqliteConfigStore } from './sqlite-config-store.ts';

// The memory backend lives in one object: the restart and second-writer tests do not apply to it.
configStoreContract('memory', async () => {
  const store = new MemoryConfigStore();
  return { store, dispose: () => store.close() };
}, { persistent: false });

configStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lg-config-'));
  const opened: ConfigStore[] = [];
  const open = (): SqliteConfigStore => {
    const s = SqliteConfigStore.open(dir, { pollIntervalMs: 10 });
    opened.push(s);
    return s;
  };
  return {
    store: open(),
    openPeer: async () => open(),
    dispose: async () => {
      for (const s of opened) await s.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

test('compareKeys orders by code point and prefixEnd bounds a prefix', () => {
  const keys = ['b', 'a/\u{1F600}', 'a/\uffff', 'a', 'a/'];
  assert.deepEqual(keys.sort(compareKeys), ['a', 'a/', 'a/\uffff', 'a/\u{1F600}', 'b']);
  assert.equal(prefixEnd('a/'), 'a0');
  assert.equal(prefixEnd(''), undefined);
  assert.equal(prefixEnd('a\u{10FFFF}'), 'b');
  assert.equal(prefixEnd('x\ud7ff'), 'x\ue000');
});

test('sqlite: the database is one WAL file under the data dir', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lg-config-'));
  const s = SqliteConfigStore.open(join(dir, 'data'));
  try {
    await s.put('k', 'v');
    assert.equal(s.path, join(dir, 'data', CONFIG_DB));
    assert.ok(existsSync(`${s.path}-wal`));
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

// Two threads, two connections, one file: real lock contention (busy_timeout), not interleaved promises.
const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
(async () => {
  const { SqliteConfigStore } = await import(workerData.module);
  const s = SqliteConfigStore.open(workerData.dir);
  let conflicts = 0;
  for (let done = 0; done < workerData.n;) {
    const cur = await s.get('counter');
    const r = await s.put('counter', String(Number(cur?.value ?? '0') + 1), { ifModRevision: cur?.modRevision ?? 0 });
    if (r.ok) done++; else conflicts++;
  }
  await s.close();
  parentPort.postMessage({ conflicts });
})().catch((err) => parentPort.postMessage({ error: String(err && err.stack) }));
`;

test('sqlite: writers in two threads on one file never lose an update under CAS', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lg-config-'));
  await SqliteConfigStore.open(dir).close(); // create the schema before the threads race to
  const n = 300;
  const run = (): Promise<{ conflicts?: number; error?: string }> => new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { module: new URL('./sqlite-config-store.ts', import.meta.url).href, dir, n } });
    w.once('message', (m) => resolve(m));
    w.once('error', reject);
    w.once('exit', (code) => reject(new Error(`worker exited with ${code} before reporting`)));
  });
  try {
    const results = await Promise.all([run(), run()]);
    for (const r of results) assert.equal(r.error, undefined, r.error);
    const s = SqliteConfigStore.open(dir);
    try {
      const kv = await s.get('counter');
      assert.equal(kv?.value, String(2 * n));
      assert.equal(kv?.version, 2 * n);
      assert.equal(await s.revision(), 2 * n);
    } finally {
      await s.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

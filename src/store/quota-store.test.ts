import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { QuotaStore, QUOTAS_DB, startQuotaFlusher } from './quota-store.ts';
import { SharedCounterTable } from '../proxy/shared-counter-table.ts';
import { newResult, windowSpec } from '../proxy/counter-store.ts';

const HOUR = windowSpec(3_600_000, { durable: true });
const T0 = 1_699_999_200_000; // an hour boundary

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'lg-quota-'));
  try {
    fn(join(dir, 'data'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function use(t: SharedCounterTable, key: string, n: number, now: number, limit = 100): number {
  const out = newResult();
  let admitted = 0;
  for (let i = 0; i < n; i++) if (t.increment(key, 1, limit, HOUR, now, out).admitted) admitted++;
  return admitted;
}

test('open creates quotas.db in WAL mode and keeps its hash seed across reopenings', () => {
  withDir((dir) => {
    const s = QuotaStore.open(dir);
    const seed = s.seed;
    assert.ok(Number.isInteger(seed) && seed >= 0);
    s.close();
    assert.ok(existsSync(join(dir, QUOTAS_DB)));
    const db = new DatabaseSync(join(dir, QUOTAS_DB));
    assert.equal((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
    db.close();
    const again = QuotaStore.open(dir);
    assert.equal(again.seed, seed);
    again.close();
  });
});

test('a table with another seed is refused (its hashes would not match the rows)', () => {
  withDir((dir) => {
    const s = QuotaStore.open(dir);
    const t = SharedCounterTable.create(64, { seed: s.seed + 1 });
    assert.throws(() => s.flush(t, T0), /hash seed/);
    assert.throws(() => s.load(t, T0), /hash seed/);
    s.close();
  });
});

test('flush writes only the durable counters that changed since the last flush', () => {
  withDir((dir) => {
    const s = QuotaStore.open(dir);
    const t = SharedCounterTable.create(64, { seed: s.seed });
    use(t, 'a', 3, T0 + 1);
    use(t, 'b', 1, T0 + 1);
    t.increment('rate', 1, 10, windowSpec(1000), T0 + 1, newResult());
    assert.deepEqual(s.flush(t, T0 + 2), { written: 2, pruned: 0 });
    assert.deepEqual(s.flush(t, T0 + 3), { written: 0, pruned: 0 });
    use(t, 'a', 2, T0 + 4);
    assert.deepEqual(s.flush(t, T0 + 5), { written: 1, pruned: 0 });
    const rows = new Map(s.rows().map((r) => [r.hash, r]));
    assert.equal(rows.size, 2);
    assert.deepEqual(rows.get(t.hashOf('a', HOUR)), { hash: t.hashOf('a', HOUR), periodMs: 3_600_000, originMs: 0, windowStartMs: T0, count: 5 });
    assert.equal(rows.get(t.hashOf('b', HOUR))?.count, 1);
    s.close();
  });
});

test('restart: flushed counts come back in a new table, and a window that ended meanwhile starts from zero', () => {
  withDir((dir) => {
    const s = QuotaStore.open(dir);
    const t = SharedCounterTable.create(64, { seed: s.seed });
    const day = windowSpec(86_400_000, { durable: true, originMs: T0 });
    const out = newResult();
    assert.equal(use(t, 'hourly', 10, T0 + 100, 7), 7);
    for (let i = 0; i < 4; i++) t.increment('daily', 1, 5, day, T0 + 100, out);
    s.flush(t, T0 + 200);
    s.close();

    // Restart within the hour: both continue where they were.
    const s2 = QuotaStore.open(dir);
    const t2 = SharedCounterTable.create(64, { seed: s2.seed });
    assert.deepEqual(s2.load(t2, T0 + 60_000), { restored: 2, expired: 0, refused: 0 });
    assert.equal(use(t2, 'hourly', 10, T0 + 60_000, 7), 0);
    assert.equal(t2.increment('daily', 1, 5, day, T0 + 60_000, out).count, 5);
    assert.equal(t2.increment('daily', 1, 5, day, T0 + 60_000, out).admitted, false);
    s2.flush(t2, T0 + 60_001);
    s2.close();

    // Restart after the hour ended: the hourly quota starts afresh (its row is deleted), the daily one does not.
    const s3 = QuotaStore.open(dir);
    const t3 = SharedCounterTable.create(64, { seed: s3.seed });
    assert.deepEqual(s3.load(t3, T0 + 3_600_000), { restored: 1, expired: 1, refused: 0 });
    assert.equal(s3.rows().length, 1);
    assert.equal(use(t3, 'hourly', 10, T0 + 3_600_000, 7), 7);
    assert.equal(t3.increment('daily', 1, 5, day, T0 + 3_600_000, out).admitted, false);
    s3.close();
  });
});

test('a lifetime quota (period 0) survives any restart', () => {
  withDir((dir) => {
    const life = windowSpec(0, { durable: true });
    const s = QuotaStore.open(dir);
    const t = SharedCounterTable.create(16, { seed: s.seed });
    const out = newResult();
    t.increment('forever', 9, 10, life, T0, out);
    s.flush(t, T0);
    s.close();
    const s2 = QuotaStore.open(dir);
    const t2 = SharedCounterTable.create(16, { seed: s2.seed });
    assert.equal(s2.load(t2, T0 + 1e11).restored, 1);
    assert.equal(t2.increment('forever', 2, 10, life, T0 + 1e11, out).admitted, false);
    assert.equal(out.count, 9);
    assert.equal(out.resetMs, Infinity);
    s2.close();
  });
});

test('crash bound: counts after the last completed flush are lost, counts before it are kept', () => {
  withDir((dir) => {
    const s = QuotaStore.open(dir);
    const t = SharedCounterTable.create(64, { seed: s.seed });
    use(t, 'k', 6, T0 + 10);
    s.flush(t, T0 + 1000);
    use(t, 'k', 3, T0 + 1500); // the crash comes before the next flush
    s.close();
    const s2 = QuotaStore.open(dir);
    const t2 = SharedCounterTable.create(64, { seed: s2.seed });
    s2.load(t2, T0 + 5000);
    assert.equal(t2.peek('k', 100, HOUR, T0 + 5000, newResult()).count, 6);
    s2.close();
  });
});

test('flush deletes rows of ended windows and does not write counters whose window already ended', () => {
  withDir((dir) => {
    const s = QuotaStore.open(dir);
    const t = SharedCounterTable.create(64, { seed: s.seed });
    use(t, 'old', 1, T0 + 1);
    s.flush(t, T0 + 2);
    use(t, 'late', 1, T0 + 3_599_999);
    assert.deepEqual(s.flush(t, T0 + 3_600_000), { written: 0, pruned: 1 });
    assert.equal(s.rows().length, 0);
    s.close();
  });
});

test('a failed flush loses nothing: the counters are flagged again', () => {
  withDir((dir) => {
    const s = QuotaStore.open(dir);
    const t = SharedCounterTable.create(64, { seed: s.seed });
    use(t, 'k', 2, T0 + 1);
    s.close();
    assert.throws(() => s.flush(t, T0 + 2));
    const again = t.collectDirty(T0 + 3);
    assert.equal(again.length, 1);
    assert.equal(again[0].count, 2);
  });
});

test('startQuotaFlusher flushes every interval, reports failures, and stop() flushes once more', () => {
  withDir((dir) => {
    mock.timers.enable({ apis: ['setInterval'] });
    const s = QuotaStore.open(dir);
    let open = true;
    try {
      const t = SharedCounterTable.create(64, { seed: s.seed });
      let now = T0 + 10;
      const errors: Error[] = [];
      const f = startQuotaFlusher(t, s, { now: () => now, onError: (e) => errors.push(e) });
      use(t, 'k', 2, now);
      mock.timers.tick(999);
      assert.equal(s.rows().length, 0, 'not before the interval');
      mock.timers.tick(1);
      assert.equal(s.rows()[0]?.count, 2);
      use(t, 'k', 3, (now += 500));
      assert.deepEqual(f.stop(), { written: 1, pruned: 0 });
      assert.equal(s.rows()[0].count, 5);
      assert.equal(f.stop(), null);
      use(t, 'k', 1, now);
      mock.timers.tick(5000);
      assert.equal(s.rows()[0].count, 5, 'no flush after stop');

      const g = startQuotaFlusher(t, s, { intervalMs: 100, now: () => now, onError: (e) => errors.push(e) });
      assert.equal(g.flushNow().written, 1);
      s.close();
      open = false;
      use(t, 'k', 1, now);
      mock.timers.tick(100);
      assert.equal(errors.length, 1, 'a failed periodic flush is reported, not thrown');
      assert.throws(() => g.stop());
      assert.equal(t.collectDirty(now).length, 1, 'and its counter is still flagged');
      assert.throws(() => startQuotaFlusher(t, s, { intervalMs: 0 }), RangeError);
    } finally {
      mock.timers.reset();
      if (open) s.close();
    }
  });
});

// Issue #3 §5: counters that hold across the worker threads of one gateway. Two worker_threads attach to one
// SharedCounterTable and hammer the same keys at the same (injected) instant, released together by a barrier;
// the total admitted must be exactly the limit, window after window, and for GCRA bursts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SharedCounterTable } from '../src/proxy/shared-counter-table.ts';
import { newResult, windowSpec } from '../src/proxy/counter-store.ts';
import { QuotaStore, startQuotaFlusher } from '../src/store/quota-store.ts';

const T0 = 1_699_999_200_000; // an hour boundary
const HOUR_MS = 3_600_000;

type Job =
  | { kind: 'window'; keys: string[]; limit: number; periodMs: number; durable: boolean; now: number; attempts: number }
  | { kind: 'gcra'; keys: string[]; calls: number; periodMs: number; now: number; attempts: number };

// The worker: attaches to the table, waits at the barrier, then makes `attempts` calls on every key, interleaved.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
(async () => {
  const { SharedCounterTable } = await import(workerData.tableUrl);
  const { windowSpec, gcraSpec, newResult } = await import(workerData.storeUrl);
  const table = SharedCounterTable.attach(workerData.buffer);
  const gate = new Int32Array(workerData.gate);
  const out = newResult();
  parentPort.on('message', (job) => {
    const spec = job.kind === 'gcra' ? gcraSpec(job.calls, job.periodMs) : windowSpec(job.periodMs, { durable: job.durable });
    const admitted = job.keys.map(() => 0);
    const full = [0];
    Atomics.add(gate, 1, 1);
    while (Atomics.load(gate, 0) < job.round) Atomics.pause?.();
    for (let i = 0; i < job.attempts; i++) {
      for (let k = 0; k < job.keys.length; k++) {
        const r = job.kind === 'gcra'
          ? table.takeGcra(job.keys[k], 1, spec, job.now, out)
          : table.increment(job.keys[k], 1, job.limit, spec, job.now + (i % 97), out);
        if (r.admitted) admitted[k]++;
        if (r.status !== 'ok') full[0]++;
      }
    }
    parentPort.postMessage({ admitted, refused: full[0] });
  });
  parentPort.postMessage('ready');
})().catch((err) => { throw err; });
`;

interface Pool {
  workers: Worker[];
  gate: Int32Array;
  round: number;
}

async function startPool(table: SharedCounterTable, n = 2): Promise<Pool> {
  const gate = new Int32Array(new SharedArrayBuffer(8));
  const workerData = {
    buffer: table.buffer,
    gate: gate.buffer,
    tableUrl: new URL('../src/proxy/shared-counter-table.ts', import.meta.url).href,
    storeUrl: new URL('../src/proxy/counter-store.ts', import.meta.url).href,
  };
  const workers = Array.from({ length: n }, () => new Worker(WORKER_SOURCE, { eval: true, workerData }));
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          w.once('message', () => resolve());
          w.once('error', reject);
        }),
    ),
  );
  return { workers, gate, round: 0 };
}

/** Posts the job to every worker, releases them together once all wait at the barrier, returns admitted per key per worker. */
async function runRound(pool: Pool, job: Job): Promise<Array<{ admitted: number[]; refused: number }>> {
  const round = ++pool.round;
  const replies = pool.workers.map(
    (w) =>
      new Promise<{ admitted: number[]; refused: number }>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      }),
  );
  for (const w of pool.workers) w.postMessage({ ...job, round });
  const deadline = Date.now() + 20_000;
  while (Atomics.load(pool.gate, 1) < round * pool.workers.length) {
    if (Date.now() > deadline) throw new Error('workers did not reach the barrier');
    await new Promise((r) => setTimeout(r, 1));
  }
  Atomics.store(pool.gate, 0, round);
  return Promise.all(replies);
}

async function stopPool(pool: Pool): Promise<void> {
  await Promise.all(pool.workers.map((w) => w.terminate()));
}

function totals(replies: Array<{ admitted: number[] }>, keys: number): number[] {
  return Array.from({ length: keys }, (_, k) => replies.reduce((sum, r) => sum + r.admitted[k], 0));
}

test('fixed window across 2 workers: 2 × calls concurrent attempts admit exactly calls, window after window', { timeout: 60_000 }, async () => {
  const table = SharedCounterTable.create(1024);
  const pool = await startPool(table);
  try {
    const calls = 2000;
    const keys = ['client-a', 'client-b', 'client-c', 'client-d'];
    const spec = windowSpec(1000);
    // Round 1 also races the insertion of four new keys; later rounds race the roll-over into a new window.
    for (let w = 0; w < 6; w++) {
      const now = T0 + w * 1000 + 100;
      const replies = await runRound(pool, { kind: 'window', keys, limit: calls, periodMs: 1000, durable: false, now, attempts: calls });
      assert.deepEqual(totals(replies, keys.length), keys.map(() => calls), `window ${w}`);
      assert.deepEqual(replies.map((r) => r.refused), [0, 0]);
      for (const k of keys) assert.equal(table.peek(k, calls, spec, now, newResult()).count, calls);
    }
    assert.equal(table.stats(T0).used, keys.length, 'each key inserted once, not once per thread');
  } finally {
    await stopPool(pool);
  }
});

test('new keys first seen by both workers at once: each inserted once, each admits exactly its limit', { timeout: 60_000 }, async () => {
  const table = SharedCounterTable.create(16384);
  const pool = await startPool(table);
  try {
    for (let round = 0; round < 4; round++) {
      // Both workers walk the same fresh keys in the same order, so they race to insert each one.
      const keys = Array.from({ length: 1000 }, (_, i) => `r${round}-k${i}`);
      const replies = await runRound(pool, { kind: 'window', keys, limit: 3, periodMs: 60_000, durable: false, now: T0, attempts: 3 });
      assert.deepEqual(totals(replies, keys.length), keys.map(() => 3), `round ${round}`);
      assert.equal(table.stats(T0).used, (round + 1) * keys.length);
    }
  } finally {
    await stopPool(pool);
  }
});

test('GCRA across 2 workers: exactly the burst at one instant, exactly the refill afterwards', { timeout: 60_000 }, async () => {
  const table = SharedCounterTable.create(1024);
  const pool = await startPool(table);
  try {
    const calls = 1000; // per 1000 ms: T = 1 ms, burst = 1000
    const job = { kind: 'gcra' as const, keys: ['g1', 'g2'], calls, periodMs: 1000, attempts: calls };
    assert.deepEqual(totals(await runRound(pool, { ...job, now: T0 }), 2), [calls, calls]);
    assert.deepEqual(totals(await runRound(pool, { ...job, now: T0 }), 2), [0, 0]);
    assert.deepEqual(totals(await runRound(pool, { ...job, now: T0 + 250 }), 2), [250, 250]);
    // Idle for longer than a period: the bucket holds at most the burst, not the idle time's worth.
    assert.deepEqual(totals(await runRound(pool, { ...job, now: T0 + 5000 }), 2), [calls, calls]);
  } finally {
    await stopPool(pool);
  }
});

test('quota counted by 2 workers survives a restart (flush, new table, load); a window that ended meanwhile resets', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lg-counters-'));
  try {
    const store = QuotaStore.open(dir);
    const table = SharedCounterTable.create(1024, { seed: store.seed });
    let now = T0 + 1000;
    const flusher = startQuotaFlusher(table, store, { now: () => now });
    const pool = await startPool(table);
    try {
      const replies = await runRound(pool, { kind: 'window', keys: ['sub-1'], limit: 1500, periodMs: HOUR_MS, durable: true, now, attempts: 1000 });
      assert.deepEqual(totals(replies, 1), [1500]);
    } finally {
      await stopPool(pool);
    }
    now += 50;
    assert.equal(flusher.stop()?.written, 1, 'drain flushes');
    store.close();

    const hour = windowSpec(HOUR_MS, { durable: true });
    const out = newResult();
    const s2 = QuotaStore.open(dir);
    const t2 = SharedCounterTable.create(1024, { seed: s2.seed });
    assert.equal(s2.load(t2, T0 + 2000).restored, 1);
    assert.equal(t2.increment('sub-1', 1, 1500, hour, T0 + 2000, out).admitted, false);
    assert.equal(out.count, 1500);
    assert.equal(out.resetMs, HOUR_MS - 2000);
    s2.close();

    const s3 = QuotaStore.open(dir);
    const t3 = SharedCounterTable.create(1024, { seed: s3.seed });
    assert.deepEqual(s3.load(t3, T0 + HOUR_MS + 5), { restored: 0, expired: 1, refused: 0 });
    assert.equal(t3.increment('sub-1', 1, 1500, hour, T0 + HOUR_MS + 5, out).count, 1);
    s3.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

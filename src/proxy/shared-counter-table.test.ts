import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LOCK_LEASE_MS, MIN_CAPACITY, PROBE_LIMIT, SharedCounterTable, TABLE_LAYOUT } from './shared-counter-table.ts';
import { gcraSpec, newResult, windowSpec, type CounterOp, type CounterResult } from './counter-store.ts';

const W1S = windowSpec(1000);
const T0 = 1_699_999_200_000; // a window boundary for 1 s, 1 min and 1 h periods

function admittedOf(n: number, call: (out: CounterResult) => CounterResult): number {
  const out = newResult();
  let admitted = 0;
  for (let i = 0; i < n; i++) if (call(out).admitted) admitted++;
  return admitted;
}

/** The slot a key's counter sits in when nothing collided with it (its home slot). */
function homeSlot(t: SharedCounterTable, hash: string): number {
  return parseInt(hash.slice(8), 16) & (t.capacity - 1);
}

test('create rounds the capacity up to a power of two; attach sees the same counters', () => {
  const t = SharedCounterTable.create(100, { seed: 1 });
  assert.equal(t.capacity, 128);
  assert.equal(SharedCounterTable.create(1).capacity, MIN_CAPACITY);
  assert.equal(t.buffer.byteLength, TABLE_LAYOUT.headerBytes + 128 * TABLE_LAYOUT.bytesPerSlot);
  const other = SharedCounterTable.attach(t.buffer);
  assert.equal(other.seed, 1);
  const out = newResult();
  t.increment('k', 1, 10, W1S, T0, out);
  other.increment('k', 2, 10, W1S, T0, out);
  assert.equal(out.count, 3);
  assert.equal(t.peek('k', 10, W1S, T0, out).count, 3);
  assert.throws(() => SharedCounterTable.create(0), RangeError);
  assert.throws(() => SharedCounterTable.create(2 ** 25), RangeError);
});

test('attach refuses a buffer that is not a table', () => {
  assert.throws(() => SharedCounterTable.attach(new ArrayBuffer(4096) as unknown as SharedArrayBuffer), TypeError);
  assert.throws(() => SharedCounterTable.attach(new SharedArrayBuffer(4096)), /bad magic/);
  const t = SharedCounterTable.create(16);
  const bigger = new SharedArrayBuffer(t.buffer.byteLength + 8);
  new Uint8Array(bigger).set(new Uint8Array(t.buffer));
  assert.throws(() => SharedCounterTable.attach(bigger), /not the size/);
});

test('key hashes are stable (persisted quota rows depend on them) and depend on key, spec and seed', () => {
  const t = SharedCounterTable.create(16, { seed: 0 });
  // Pinned: a change to the hash orphans every quota row on disk; change these only with a migration.
  assert.equal(t.hashOf('client-1', windowSpec(60_000)), 'f8f92c0d6414d42e');
  assert.equal(t.hashOf('client-1', windowSpec(3_600_000, { durable: true })), '75a89a2a0840ef56');
  assert.equal(t.hashOf('ключ😀', gcraSpec(10, 1000)), 'e7882b1474438ff8');
  const hashes = new Set([
    t.hashOf('client-1', windowSpec(60_000)),
    t.hashOf('client-1', windowSpec(60_000, { durable: true })),
    t.hashOf('client-1', windowSpec(60_001)),
    t.hashOf('client-1', windowSpec(60_000, { originMs: 1 })),
    t.hashOf('client-1', gcraSpec(10, 60_000)),
    t.hashOf('client-2', windowSpec(60_000)),
    t.hashOf('a', windowSpec(60_000)),
    t.hashOf('a\0', windowSpec(60_000)),
    SharedCounterTable.create(16, { seed: 1 }).hashOf('client-1', windowSpec(60_000)),
  ]);
  assert.equal(hashes.size, 9);
});

test('200 000 similar keys get 200 000 distinct 64-bit hashes', () => {
  const t = SharedCounterTable.create(16, { seed: 42 });
  const seen = new Set<string>();
  for (let i = 0; i < 200_000; i++) seen.add(t.hashOf(`10.0.${i >> 8}.${i & 255}`, W1S));
  assert.equal(seen.size, 200_000);
});

test('fixed window: exactly `limit` calls per window, aligned to the period, with remaining and reset', () => {
  const t = SharedCounterTable.create(64);
  const out = newResult();
  // First call 1 ms before a boundary: the window still ends at the boundary.
  t.increment('ip', 1, 3, W1S, T0 + 999, out);
  assert.deepEqual(out, { admitted: true, count: 1, remaining: 2, resetMs: 1, retryAfterMs: 0, status: 'ok' });
  assert.equal(admittedOf(10, (o) => t.increment('ip', 1, 3, W1S, T0 + 999, o)), 2);
  t.increment('ip', 1, 3, W1S, T0 + 999, out);
  assert.deepEqual(out, { admitted: false, count: 3, remaining: 0, resetMs: 1, retryAfterMs: 1, status: 'ok' });
  for (let k = 1; k <= 5; k++) {
    const start = T0 + k * 1000;
    assert.equal(admittedOf(10, (o) => t.increment('ip', 1, 3, W1S, start + 500, o)), 3, `window ${k}`);
  }
  // A window that was skipped entirely also starts from zero.
  assert.equal(admittedOf(10, (o) => t.increment('ip', 1, 3, W1S, T0 + 60_000, o)), 3);
});

test('costs: a call larger than what is left is refused and not counted; cost 0 counts nothing', () => {
  const t = SharedCounterTable.create(16);
  const out = newResult();
  t.increment('kb', 7, 10, W1S, T0, out);
  assert.equal(t.increment('kb', 4, 10, W1S, T0, out).admitted, false);
  assert.equal(out.count, 7);
  assert.equal(t.increment('kb', 0, 10, W1S, T0, out).count, 7);
  assert.equal(t.increment('kb', 3, 10, W1S, T0, out).admitted, true);
  assert.equal(out.count, 10);
  // Without a limit (bandwidth counted after the response) everything counts.
  assert.equal(t.increment('kb', 1000, Infinity, W1S, T0, out).count, 1010);
  assert.equal(t.peek('kb', 1000, W1S, T0, out).admitted, false);
});

test('one key under two specs is two counters; durable and plain are separate too', () => {
  const t = SharedCounterTable.create(64);
  const out = newResult();
  const minute = windowSpec(60_000);
  const quota = windowSpec(60_000, { durable: true });
  assert.equal(admittedOf(5, (o) => t.increment('k', 1, 2, W1S, T0, o)), 2);
  assert.equal(admittedOf(5, (o) => t.increment('k', 1, 3, minute, T0, o)), 3);
  assert.equal(admittedOf(5, (o) => t.increment('k', 1, 4, quota, T0, o)), 4);
  assert.equal(t.peek('k', 10, minute, T0, out).count, 3);
});

test('peek and cost-0 calls never create a counter', () => {
  const t = SharedCounterTable.create(16);
  const out = newResult();
  t.peek('nobody', 5, W1S, T0, out);
  assert.deepEqual(out, { admitted: true, count: 0, remaining: 5, resetMs: 1000, retryAfterMs: 0, status: 'ok' });
  t.increment('nobody', 0, 5, W1S, T0 + 250, out);
  assert.deepEqual(out, { admitted: true, count: 0, remaining: 5, resetMs: 750, retryAfterMs: 0, status: 'ok' });
  t.takeGcra('nobody', 0, gcraSpec(5, 1000), T0, out);
  assert.equal(out.admitted, true);
  assert.equal(out.remaining, 5);
  assert.equal(t.stats(T0).used, 0);
});

test('a thread whose clock is behind counts in the window another thread already opened', () => {
  const t = SharedCounterTable.create(16);
  const out = newResult();
  t.increment('k', 1, 2, W1S, T0 + 2500, out);
  t.increment('k', 1, 2, W1S, T0 + 1999, out);
  assert.equal(out.count, 2);
  assert.equal(out.resetMs, 1001);
  assert.equal(t.increment('k', 1, 2, W1S, T0 + 1999, out).admitted, false);
});

test('GCRA through the table: burst = calls at one instant, then the refill rate', () => {
  const t = SharedCounterTable.create(16);
  const g = gcraSpec(5, 1000); // T = 200 ms
  assert.equal(admittedOf(12, (o) => t.takeGcra('u', 1, g, T0, o)), 5);
  const out = newResult();
  t.takeGcra('u', 1, g, T0, out);
  assert.equal(out.retryAfterMs, 200);
  assert.equal(admittedOf(12, (o) => t.takeGcra('u', 1, g, T0 + 199, o)), 0);
  assert.equal(admittedOf(12, (o) => t.takeGcra('u', 1, g, T0 + 200, o)), 1);
  assert.equal(admittedOf(12, (o) => t.takeGcra('u', 1, g, T0 + 600, o)), 2);
  // A fixed window of the same key is another counter.
  assert.equal(admittedOf(3, (o) => t.increment('u', 1, 3, W1S, T0, o)), 3);
});

test('incrementBatch answers each op on its own, into the caller’s results', () => {
  const t = SharedCounterTable.create(64);
  const hour = windowSpec(3_600_000, { durable: true });
  const ops: CounterOp[] = [
    { key: 'sub:calls', cost: 1, limit: 2, spec: hour },
    { key: 'sub:kb', cost: 0, limit: 100, spec: hour },
    { key: 'sub', cost: 1, spec: gcraSpec(1, 1000) },
  ];
  const out: CounterResult[] = [];
  t.incrementBatch(ops, T0, out);
  assert.equal(out.length, 3);
  assert.deepEqual(out.map((r) => r.admitted), [true, true, true]);
  const first = out[0];
  t.incrementBatch(ops, T0, out);
  assert.equal(out[0], first, 'results are reused');
  assert.deepEqual(out.map((r) => r.admitted), [true, true, false]);
  t.incrementBatch(ops, T0, out);
  assert.deepEqual(out.map((r) => [r.admitted, r.count]), [[false, 2], [true, 0], [false, 1]]);
});

test('full table: a new key is refused with status full (never admitted), known keys keep counting, expiry frees slots', () => {
  const t = SharedCounterTable.create(16);
  assert.ok(PROBE_LIMIT >= 16);
  const out = newResult();
  for (let i = 0; i < 16; i++) assert.equal(t.increment(`k${i}`, 1, 2, W1S, T0 + 100, out).admitted, true);
  assert.equal(t.stats(T0 + 100).live, 16);
  // 1000 tries of a 17th key: none admitted, none thrown.
  assert.equal(admittedOf(1000, (o) => t.increment('late', 1, 2, W1S, T0 + 100, o)), 0);
  t.increment('late', 1, 2, W1S, T0 + 100, out);
  assert.deepEqual(out, { admitted: false, count: 0, remaining: 0, resetMs: 900, retryAfterMs: 900, status: 'full' });
  assert.equal(t.stats(T0 + 100).full, 1001);
  // Known keys are unaffected: still exact.
  assert.equal(admittedOf(5, (o) => t.increment('k3', 1, 2, W1S, T0 + 100, o)), 1);
  // After the window ends every slot is reusable: the new key gets one, and the key it displaced starts afresh.
  assert.equal(admittedOf(5, (o) => t.increment('late', 1, 2, W1S, T0 + 1000, o)), 2);
  assert.equal(t.stats(T0 + 1000).used, 16);
  let again = 0;
  for (let i = 0; i < 16; i++) again += admittedOf(5, (o) => t.increment(`k${i}`, 1, 2, W1S, T0 + 1000, o));
  assert.equal(again, 15 * 2, 'one old key has no room left this window: it is refused, not admitted unlimited');
});

test('full table of lifetime quotas stays full; GCRA slots free up when the bucket is full again', () => {
  const life = windowSpec(0, { durable: true });
  const t = SharedCounterTable.create(16);
  const out = newResult();
  for (let i = 0; i < 16; i++) t.increment(`q${i}`, 1, 10, life, T0, out);
  t.increment('new', 1, 10, life, T0 + 1e12, out);
  assert.equal(out.status, 'full');
  assert.equal(out.retryAfterMs, Infinity);

  const g = gcraSpec(1, 1000);
  const u = SharedCounterTable.create(16);
  for (let i = 0; i < 16; i++) assert.equal(u.takeGcra(`g${i}`, 1, g, T0, out).admitted, true);
  u.takeGcra('new', 1, g, T0 + 400, out);
  assert.equal(out.status, 'full');
  assert.equal(out.retryAfterMs, 600);
  assert.equal(u.takeGcra('new', 1, g, T0 + 1000, out).admitted, true);
});

test('insert lock held by a dead thread: new keys are refused `busy` until its lease passes, then it is taken over', () => {
  const t = SharedCounterTable.create(64);
  const out = newResult();
  assert.equal(t.increment('warm', 1, 5, W1S, T0, out).admitted, true);
  const lock = new BigInt64Array(t.buffer, TABLE_LAYOUT.lockByteOffset, 1);
  Atomics.store(lock, 0, BigInt(T0 + LOCK_LEASE_MS));
  t.increment('cold', 1, 5, W1S, T0 + 10, out);
  assert.equal(out.status, 'busy');
  assert.equal(out.admitted, false);
  // A warm key never takes the lock.
  assert.equal(t.increment('warm', 1, 5, W1S, T0 + 10, out).count, 2);
  assert.equal(t.stats(T0).busy, 1);
  assert.equal(t.increment('cold', 1, 5, W1S, T0 + LOCK_LEASE_MS + 1, out).admitted, true);
  assert.equal(t.stats(T0).steals, 1);
  assert.equal(Atomics.load(lock, 0), 0n, 'released after use');
});

test('a slot left half-written (state -1) by a dead thread is re-initialised, not stuck', () => {
  const t = SharedCounterTable.create(64);
  const out = newResult();
  t.increment('k', 1, 5, W1S, T0, out);
  const slot = homeSlot(t, t.hashOf('k', W1S));
  const state = new BigInt64Array(t.buffer, TABLE_LAYOUT.headerBytes, t.capacity);
  assert.notEqual(Atomics.load(state, slot), 0n);
  Atomics.store(state, slot, -1n);
  assert.equal(t.increment('k', 1, 5, W1S, T0, out).admitted, true);
  assert.equal(out.count, 1);
  assert.equal(t.stats(T0).used, 1);
});

test('collectDirty returns changed durable counters once, and restore puts them back (larger count of a window wins)', () => {
  const hour = windowSpec(3_600_000, { durable: true });
  const t = SharedCounterTable.create(64, { seed: 9 });
  const out = newResult();
  t.increment('a', 3, 100, hour, T0 + 5, out);
  t.increment('plain', 3, 100, W1S, T0 + 5, out);
  const dirty = t.collectDirty(T0 + 10);
  assert.equal(dirty.length, 1);
  assert.deepEqual({ ...dirty[0], slot: 0 }, { slot: 0, hash: t.hashOf('a', hour), periodMs: 3_600_000, originMs: 0, windowStartMs: T0, count: 3 });
  assert.equal(t.collectDirty(T0 + 10).length, 0, 'flags cleared');
  t.increment('a', 1, 100, hour, T0 + 20, out);
  assert.equal(t.collectDirty(T0 + 30)[0].count, 4);
  t.markDirty(dirty[0].slot);
  assert.equal(t.collectDirty(T0 + 30).length, 1);

  const fresh = SharedCounterTable.create(64, { seed: 9 });
  assert.equal(fresh.restore({ ...dirty[0], count: 4 }, T0 + 40), 'restored');
  assert.equal(fresh.restore({ ...dirty[0], count: 2 }, T0 + 40), 'restored');
  assert.equal(fresh.peek('a', 100, hour, T0 + 50, out).count, 4);
  assert.equal(fresh.restore({ ...dirty[0], count: 9 }, T0 + 40), 'restored');
  assert.equal(fresh.peek('a', 100, hour, T0 + 50, out).count, 9);
  assert.equal(fresh.restore(dirty[0], T0 + 3_600_000), 'expired');
  assert.equal(fresh.collectDirty(T0 + 50).length, 0, 'restoring does not mark dirty');
  assert.throws(() => fresh.restore({ ...dirty[0], hash: 'zz' }, T0), RangeError);
});

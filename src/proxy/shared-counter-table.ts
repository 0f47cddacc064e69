// Exact counters shared by the worker threads of one gateway: a fixed-capacity open-addressing table in a
// SharedArrayBuffer, every update an Atomics compare-exchange, so two threads never admit more than the limit.
//
// Layout (all views over one SharedArrayBuffer; the main thread `create`s it, workers `attach` to it):
//   header (64 B): Int32 magic, version, capacity, seed, full/busy/steal counters, any-dirty flag; BigInt64 at byte 32: insert lock.
//   per slot (40 B, struct of arrays): state BigInt64 | key hash hi, lo Int32 | meta Int32 | dirty Int32 | period, origin Float64
//
// State, one 64-bit word per slot, so window and count change together in one CAS:
//   fixed window: (window index mod 2^30) + 1 in the high 32 bits, the count in the low 32 bits;
//   GCRA: the theoretical arrival time (TAT) in µs since the Unix epoch;
//   0 = never used, -1 = being (re)keyed under the insert lock.
//
// Concurrency:
// - Warm key (the request path): probe for the key hash, load the state, check the key is still this slot's,
//   compute, compare-exchange. A failed CAS re-reads and tries again (lock-free: a failure means another thread's
//   update succeeded). A window that ended is rolled over by the same CAS, so no thread can add to a stale count.
// - New key, or a slot taken over from an expired key: under one insert lock (a lease word; a holder that died
//   mid-insert is overtaken once its lease has passed). The holder re-scans the key's probe run, so a key is never
//   inserted twice, and it takes an expired slot by CAS-ing its state to -1 first, so the old owner's in-flight
//   update either lands before (the slot is live again and is not taken) or fails and re-probes.
// - The lease (LOCK_LEASE_MS) is the one place exactness rests on timing: the insert section is about a µs of work,
//   but a thread stalled inside it for longer than the lease (a stop-the-world pause, a descheduled core) can overlap
//   with the thread that took over, and in the worst case one key's count for the current window is lost.
// - After a successful CAS the updater re-checks the slot's key; if the slot changed owner in between (an ABA on
//   the state word, which needs a re-key and a bit-identical state), it restores the old state and retries.
//
// Keys: a 64-bit hash (two 32-bit multiply-xor lanes, see hashCounter) of the key string, the counter's kind,
// period and origin, and the table's seed. Two different keys share a counter only if their 64-bit hashes collide: for n live
// keys the chance that any two collide is about n² / 2^65 (1e6 keys: 3e-8; 1e7 keys: 3e-6) for keys the hash treats
// as random, and a collision can only make the two keys share one counter (fewer admitted calls), never lift a
// limit. The hash is not a keyed cryptographic one: the random seed makes collisions harder to precompute, it does
// not make them impossible for a client that can choose its keys and learn the seed.
//
// Full table: a key lives within `PROBE_LIMIT` slots of its home slot. When all of them hold live counters of other
// keys, the new key gets no counter and the call is denied with status `full` and `retryAfterMs` = time until the
// first of those counters expires (the `full` statistic counts it). Keys already in the table are unaffected, and a
// full table never admits a call it cannot count and never throws. Window slots free up when their window ends,
// GCRA slots when their bucket is full again; lifetime quotas (period 0) never free their slot.
import { randomInt } from 'node:crypto';
import {
  MAX_COUNT,
  gcraTake,
  newResult,
  normalizeCost,
  windowEndMs,
  windowIndex,
  windowPeek,
  windowSpec,
  windowStartMs,
  windowTake,
  type CounterOp,
  type CounterResult,
  type CounterStore,
  type GcraSpec,
  type WindowSpec,
} from './counter-store.ts';

const MAGIC = 0x4c47_4354; // "LGCT"
const VERSION = 1;
const HEADER_BYTES = 64;
const BYTES_PER_SLOT = 40;
const H_MAGIC = 0;
const H_VERSION = 1;
const H_CAPACITY = 2;
const H_SEED = 3;
const H_FULL = 4;
const H_BUSY = 5;
const H_STEALS = 6;
/** Set when a durable counter is flagged dirty: collectDirty scans the table only after it was. */
const H_ANY_DIRTY = 7;
/** Offsets for tests and tools that inspect a table's buffer. */
export const TABLE_LAYOUT = { headerBytes: HEADER_BYTES, lockByteOffset: 32, bytesPerSlot: BYTES_PER_SLOT } as const;

export const MIN_CAPACITY = 16;
export const MAX_CAPACITY = 1 << 24;
/** How far from its home slot a key may live; also the most slots a lookup reads. */
export const PROBE_LIMIT = 64;
/** A holder of the insert lock that has not released it this long after its call's `now` is presumed dead. */
export const LOCK_LEASE_MS = 500;
/** Waiting for the insert lock: this many spins, then the call is denied with status `busy`. */
const LOCK_SPINS = 1 << 14;
/** Retries of one call when other threads keep winning its CAS (practically never reached). */
const MAX_ROUNDS = 1000;

const EMPTY = 0n;
const TOMB = -1n;
const LOW32 = 0xffff_ffffn;
/** Small deltas as ready bigints: one allocation fewer per increment. */
const SMALL = Array.from({ length: 64 }, (_, i) => BigInt(i));
const ENC_SPAN = 2 ** 30;
const META_WINDOW = 1;
const META_DURABLE = 2;
const META_GCRA = 4;

const DONE = 0;
const AGAIN = 1; // lost a CAS: re-read the same slot
const REPROBE = 2; // the slot is not (or no longer) this key's
const INSERT = 3; // the slot is being (re)keyed: go through the insert lock

const pause: (n?: number) => void = (Atomics as unknown as { pause?: (n?: number) => void }).pause ?? (() => {});

// ---------------------------------------------------------------------------------------------------------------
// The 64-bit key hash: two 32-bit multiply-xor lanes over the key's UTF-16 code units, two units a step, then the
// counter's length, kind, period and origin, and a cross-lane finaliser (cyrb53's, kept at 64 bits). Int32 maths
// only: no BigInt, no allocation, no UTF-8 encoding. Persisted quota rows are keyed by it: changing it orphans them.

const LANE1 = 0x9e3779b1 | 0;
const LANE2 = 0x5f356495 | 0;
const SEED1 = 0xdeadbeef | 0;
const SEED2 = 0x41c6ce57 | 0;
let hashHi = 0;
let hashLo = 0;

function hashCounter(seed: number, key: string, meta: number, periodMs: number, originMs: number): void {
  let h1 = SEED1 ^ seed;
  let h2 = SEED2 ^ Math.imul(seed, 0x27d4eb2f);
  const len = key.length;
  let i = 0;
  for (; i + 1 < len; i += 2) {
    const k = key.charCodeAt(i) | (key.charCodeAt(i + 1) << 16);
    h1 = Math.imul(h1 ^ k, LANE1);
    h2 = Math.imul(h2 ^ k, LANE2);
  }
  // The words after the key: an odd last unit, the length (so "a" and "a\0" differ), then the spec.
  let k = i < len ? key.charCodeAt(i) : 0x10000;
  for (let w = 0; w < 6; w++) {
    h1 = Math.imul(h1 ^ k, LANE1);
    h2 = Math.imul(h2 ^ k, LANE2);
    h1 ^= h2 >>> 15;
    k =
      w === 0 ? len
      : w === 1 ? meta
      : w === 2 ? periodMs % 4294967296
      : w === 3 ? Math.floor(periodMs / 4294967296)
      : w === 4 ? originMs % 4294967296
      : Math.floor(originMs / 4294967296);
  }
  h1 = Math.imul(h1 ^ k, LANE1);
  h2 = Math.imul(h2 ^ k, LANE2);
  h1 = Math.imul(h1 ^ (h1 >>> 16), 0x85ebca6b | 0) ^ Math.imul(h2 ^ (h2 >>> 13), 0xc2b2ae35 | 0);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 0x85ebca6b | 0) ^ Math.imul(h1 ^ (h1 >>> 13), 0xc2b2ae35 | 0);
  // (0, 0) marks an empty slot.
  hashHi = h2;
  hashLo = h1 === 0 && h2 === 0 ? 1 : h1;
}

function hex(hi: number, lo: number): string {
  return (hi >>> 0).toString(16).padStart(8, '0') + (lo >>> 0).toString(16).padStart(8, '0');
}

// ---------------------------------------------------------------------------------------------------------------

function encodeIndex(index: number): number {
  return (((index % ENC_SPAN) + ENC_SPAN) % ENC_SPAN) + 1;
}

/** `a − b` for encoded window indexes, in [−2^29, 2^29): > 0 when `a` is the later window. */
function encDiff(a: number, b: number): number {
  let d = a - b;
  if (d >= ENC_SPAN / 2) d -= ENC_SPAN;
  else if (d < -ENC_SPAN / 2) d += ENC_SPAN;
  return d;
}

function metaOf(spec: WindowSpec): number {
  return spec.durable ? META_WINDOW | META_DURABLE : META_WINDOW;
}

function fillRefused(out: CounterResult, status: 'full' | 'busy', retryAfterMs: number): void {
  out.admitted = false;
  out.count = 0;
  out.remaining = 0;
  out.resetMs = retryAfterMs;
  out.retryAfterMs = retryAfterMs;
  out.status = status;
}

/** A durable (quota) counter as the quota store persists it. */
export interface DurableCounter {
  /** The slot's 64-bit key hash, 16 hex digits (the key string itself is not kept). */
  readonly hash: string;
  /** 0 = lifetime. */
  readonly periodMs: number;
  readonly originMs: number;
  readonly windowStartMs: number;
  readonly count: number;
}

export interface TableStats {
  capacity: number;
  /** Slots holding a key, live or expired. */
  used: number;
  /** Slots whose counter has not expired at `nowMs`. */
  live: number;
  /** Calls denied because the key's probe run was full of live counters. */
  full: number;
  /** Calls denied because the insert lock stayed taken. */
  busy: number;
  /** Insert locks taken over from a holder whose lease had passed. */
  steals: number;
}

export class SharedCounterTable implements CounterStore {
  readonly buffer: SharedArrayBuffer;
  readonly capacity: number;
  readonly seed: number;
  readonly #mask: number;
  readonly #probe: number;
  readonly #header: Int32Array;
  readonly #lock: BigInt64Array;
  readonly #state: BigInt64Array;
  readonly #keys: Int32Array;
  readonly #meta: Int32Array;
  readonly #dirty: Int32Array;
  readonly #params: Float64Array;
  readonly #scratch = newResult();

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#header = new Int32Array(buffer, 0, 8);
    this.#lock = new BigInt64Array(buffer, TABLE_LAYOUT.lockByteOffset, 1);
    const cap = this.#header[H_CAPACITY];
    this.capacity = cap;
    this.seed = this.#header[H_SEED];
    this.#mask = cap - 1;
    this.#probe = Math.min(cap, PROBE_LIMIT);
    let off = HEADER_BYTES;
    this.#state = new BigInt64Array(buffer, off, cap);
    off += 8 * cap;
    this.#keys = new Int32Array(buffer, off, 2 * cap);
    off += 8 * cap;
    this.#meta = new Int32Array(buffer, off, cap);
    off += 4 * cap;
    this.#dirty = new Int32Array(buffer, off, cap);
    off += 4 * cap;
    this.#params = new Float64Array(buffer, off, 2 * cap);
  }

  /** A new table in the main thread: `capacity` rounded up to a power of two in [16, 2^24]; 40 bytes a slot. */
  static create(capacity: number, opts: { seed?: number } = {}): SharedCounterTable {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) {
      throw new RangeError(`counter table capacity must be an integer in [1, ${MAX_CAPACITY}], got ${capacity}`);
    }
    let cap = MIN_CAPACITY;
    while (cap < capacity) cap *= 2;
    const buffer = new SharedArrayBuffer(HEADER_BYTES + cap * BYTES_PER_SLOT);
    const h = new Int32Array(buffer, 0, 8);
    h[H_MAGIC] = MAGIC;
    h[H_VERSION] = VERSION;
    h[H_CAPACITY] = cap;
    h[H_SEED] = opts.seed === undefined ? randomInt(0, 2 ** 31) : opts.seed | 0;
    return new SharedCounterTable(buffer);
  }

  /** The same table in a worker thread (the buffer arrives through workerData or postMessage, shared, not copied). */
  static attach(buffer: SharedArrayBuffer): SharedCounterTable {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < HEADER_BYTES) throw new TypeError('not a counter table: expected its SharedArrayBuffer');
    const h = new Int32Array(buffer, 0, 8);
    if (h[H_MAGIC] !== MAGIC || h[H_VERSION] !== VERSION) throw new TypeError('not a counter table (bad magic or version)');
    const cap = h[H_CAPACITY];
    if (cap < MIN_CAPACITY || (cap & (cap - 1)) !== 0 || buffer.byteLength !== HEADER_BYTES + cap * BYTES_PER_SLOT) {
      throw new TypeError(`counter table buffer has ${buffer.byteLength} bytes, not the size its header (capacity ${cap}) says`);
    }
    return new SharedCounterTable(buffer);
  }

  /** The 64-bit hash (16 hex digits) this table files `key` under for `spec`, as the quota store's rows show it. */
  hashOf(key: string, spec: WindowSpec | GcraSpec): string {
    hashCounter(this.seed, key, spec.kind === 'gcra' ? META_GCRA : metaOf(spec), spec.periodMs, spec.kind === 'gcra' ? 0 : spec.originMs);
    return hex(hashHi, hashLo);
  }

  increment(key: string, cost: number, limit: number, spec: WindowSpec, nowMs: number, out: CounterResult): CounterResult {
    const meta = metaOf(spec);
    hashCounter(this.seed, key, meta, spec.periodMs, spec.originMs);
    return this.#window(hashHi, hashLo, meta, normalizeCost(cost), limit, spec, nowMs, out, false);
  }

  peek(key: string, limit: number, spec: WindowSpec, nowMs: number, out: CounterResult): CounterResult {
    const meta = metaOf(spec);
    hashCounter(this.seed, key, meta, spec.periodMs, spec.originMs);
    return this.#window(hashHi, hashLo, meta, 0, limit, spec, nowMs, out, true);
  }

  takeGcra(key: string, cost: number, spec: GcraSpec, nowMs: number, out: CounterResult): CounterResult {
    hashCounter(this.seed, key, META_GCRA, spec.periodMs, 0);
    const hi = hashHi;
    const lo = hashLo;
    const c = normalizeCost(cost);
    const nowUs = Math.max(1, Math.round(nowMs * 1000));
    let slot = this.#find(hi, lo);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (slot < 0) {
        if (c === 0) {
          gcraTake(nowUs, nowUs, 0, spec, out);
          return out;
        }
        slot = this.#insert(hi, lo, META_GCRA, spec.periodMs, 0, BigInt(nowUs), nowMs, out, spec.emissionUs / 1000);
        if (slot < 0) return out;
      }
      const r = this.#gcraAt(slot, hi, lo, c, spec, nowUs, out);
      if (r === DONE) return out;
      if (r !== AGAIN) slot = r === INSERT ? -1 : this.#find(hi, lo);
    }
    fillRefused(out, 'busy', 1);
    return out;
  }

  incrementBatch(ops: readonly CounterOp[], nowMs: number, out: CounterResult[]): CounterResult[] {
    for (let i = 0; i < ops.length; i++) {
      const op = ops[i];
      const r = (out[i] ??= newResult());
      if (op.spec.kind === 'gcra') this.takeGcra(op.key, op.cost, op.spec, nowMs, r);
      else this.increment(op.key, op.cost, (op as { limit: number }).limit, op.spec, nowMs, r);
    }
    return out;
  }

  #window(hi: number, lo: number, meta: number, cost: number, limit: number, spec: WindowSpec, nowMs: number, out: CounterResult, peek: boolean): CounterResult {
    const idx = windowIndex(nowMs, spec);
    const enc = encodeIndex(idx);
    let slot = this.#find(hi, lo);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (slot < 0) {
        // Nothing to count for an unknown key: answer without taking a slot.
        if (peek) {
          windowPeek(0, limit, windowEndMs(idx, spec) - nowMs, out);
          return out;
        }
        if (cost === 0) {
          windowTake(0, 0, limit, windowEndMs(idx, spec) - nowMs, out);
          return out;
        }
        slot = this.#insert(hi, lo, meta, spec.periodMs, spec.originMs, BigInt(enc) << 32n, nowMs, out, windowEndMs(idx, spec) - nowMs);
        if (slot < 0) return out;
      }
      const r = this.#windowAt(slot, hi, lo, cost, limit, spec, idx, enc, nowMs, out, peek);
      if (r === DONE) return out;
      if (r !== AGAIN) slot = r === INSERT ? -1 : this.#find(hi, lo);
    }
    fillRefused(out, 'busy', 1);
    return out;
  }

  /** Lock-free lookup: the slot holding this key hash, or -1 (an empty slot ends a probe run: slots are never emptied). */
  #find(hi: number, lo: number): number {
    const keys = this.#keys;
    const mask = this.#mask;
    let slot = lo & mask;
    for (let p = 0; p < this.#probe; p++) {
      const kh = Atomics.load(keys, 2 * slot);
      const kl = Atomics.load(keys, 2 * slot + 1);
      if (kh === hi && kl === lo) return slot;
      if (kh === 0 && kl === 0) return -1;
      slot = (slot + 1) & mask;
    }
    return -1;
  }

  #sameKey(slot: number, hi: number, lo: number): boolean {
    return Atomics.load(this.#keys, 2 * slot) === hi && Atomics.load(this.#keys, 2 * slot + 1) === lo;
  }

  #windowAt(slot: number, hi: number, lo: number, cost: number, limit: number, spec: WindowSpec, idx: number, enc: number, nowMs: number, out: CounterResult, peek: boolean): number {
    const state = this.#state;
    const s = Atomics.load(state, slot);
    if (s === EMPTY || s === TOMB) return INSERT;
    // State first, key second: a re-key stores -1, then the key, then the new state, so this pair is consistent.
    if (!this.#sameKey(slot, hi, lo)) return REPROBE;
    const sEnc = Number(s >> 32n);
    const d = encDiff(enc, sEnc);
    let count = 0;
    let at = idx;
    if (d <= 0) {
      count = Number(s & LOW32);
      // d < 0: another thread already rolled this key into a later window (its clock ran ahead): count there.
      at = idx - d;
    }
    const resetMs = windowEndMs(at, spec) - nowMs;
    if (peek) {
      windowPeek(count, limit, resetMs, out);
      return DONE;
    }
    const next = windowTake(count, cost, limit, resetMs, out);
    if (next < 0 || cost === 0) return DONE;
    const delta = next - count;
    const ns = d > 0 ? (BigInt(enc) << 32n) | BigInt(next) : s + (delta < 64 ? SMALL[delta] : BigInt(delta));
    if (Atomics.compareExchange(state, slot, s, ns) !== s) return AGAIN;
    if (!this.#sameKey(slot, hi, lo)) {
      Atomics.compareExchange(state, slot, ns, s);
      return REPROBE;
    }
    if (spec.durable && Atomics.load(this.#dirty, slot) === 0) {
      Atomics.store(this.#dirty, slot, 1);
      Atomics.store(this.#header, H_ANY_DIRTY, 1); // after the slot's flag: a collector that clears this sees the slot next time at worst
    }
    return DONE;
  }

  #gcraAt(slot: number, hi: number, lo: number, cost: number, spec: GcraSpec, nowUs: number, out: CounterResult): number {
    const state = this.#state;
    const s = Atomics.load(state, slot);
    if (s === EMPTY || s === TOMB) return INSERT;
    if (!this.#sameKey(slot, hi, lo)) return REPROBE;
    const next = gcraTake(Number(s), nowUs, cost, spec, out);
    if (next < 0 || cost === 0) return DONE;
    const ns = BigInt(next);
    if (Atomics.compareExchange(state, slot, s, ns) !== s) return AGAIN;
    if (!this.#sameKey(slot, hi, lo)) {
      Atomics.compareExchange(state, slot, ns, s);
      return REPROBE;
    }
    return DONE;
  }

  /** When the counter in `slot` (state `s`) expires: -Infinity for an empty or half-written slot, Infinity for lifetime. */
  #expiry(slot: number, s: bigint, nowMs: number): number {
    if (s === EMPTY || s === TOMB) return -Infinity;
    const meta = Atomics.load(this.#meta, slot);
    if (meta & META_GCRA) return Number(s) / 1000;
    const period = this.#params[2 * slot];
    if (period === 0) return Infinity;
    const origin = this.#params[2 * slot + 1];
    const nowIdx = Math.floor((nowMs - origin) / period);
    const at = nowIdx - encDiff(encodeIndex(nowIdx), Number(s >> 32n));
    return origin + (at + 1) * period;
  }

  #acquire(nowMs: number): bigint {
    const lease = BigInt(Math.max(1, Math.ceil(nowMs) + LOCK_LEASE_MS));
    const lock = this.#lock;
    for (let i = 0; i < LOCK_SPINS; i++) {
      const v = Atomics.load(lock, 0);
      if (v === 0n) {
        if (Atomics.compareExchange(lock, 0, 0n, lease) === 0n) return lease;
      } else if (Number(v) < nowMs) {
        if (Atomics.compareExchange(lock, 0, v, lease) === v) {
          Atomics.add(this.#header, H_STEALS, 1);
          return lease;
        }
      } else {
        pause();
      }
    }
    return 0n;
  }

  /**
   * Under the insert lock: the slot now holding the key (found, or claimed and set to `init`), or -1 with `out`
   * filled (`full`: retry when the first neighbour expires, else after `fallbackRetryMs`; `busy`).
   */
  #insert(hi: number, lo: number, meta: number, periodMs: number, originMs: number, init: bigint, nowMs: number, out: CounterResult, fallbackRetryMs: number): number {
    const lease = this.#acquire(nowMs);
    if (lease === 0n) {
      Atomics.add(this.#header, H_BUSY, 1);
      fillRefused(out, 'busy', 1);
      return -1;
    }
    try {
      const keys = this.#keys;
      const state = this.#state;
      for (let attempt = 0; attempt < 8; attempt++) {
        let candidate = -1;
        let found = -1;
        let earliest = Infinity;
        let slot = lo & this.#mask;
        for (let p = 0; p < this.#probe; p++, slot = (slot + 1) & this.#mask) {
          const kh = Atomics.load(keys, 2 * slot);
          const kl = Atomics.load(keys, 2 * slot + 1);
          if (kh === hi && kl === lo) {
            found = slot;
            break;
          }
          if (kh === 0 && kl === 0) {
            if (candidate < 0) candidate = slot;
            break;
          }
          if (candidate < 0) {
            const exp = this.#expiry(slot, Atomics.load(state, slot), nowMs);
            if (exp <= nowMs) candidate = slot;
            else if (exp < earliest) earliest = exp;
          }
        }
        if (found >= 0) {
          const s = Atomics.load(state, found);
          // Live, or expired but this key's own (it rolls over lock-free). -1 or 0: left by a holder that died.
          if (s !== EMPTY && s !== TOMB) return found;
          candidate = found;
        }
        if (candidate < 0) {
          Atomics.add(this.#header, H_FULL, 1);
          fillRefused(out, 'full', earliest < Infinity ? Math.max(1, Math.ceil(earliest - nowMs)) : fallbackRetryMs);
          return -1;
        }
        // Another key's expired counter is taken only if its owner has not renewed it meanwhile (the CAS fails).
        const s = Atomics.load(state, candidate);
        if (s !== EMPTY && s !== TOMB && this.#expiry(candidate, s, nowMs) > nowMs) continue;
        if (Atomics.compareExchange(state, candidate, s, TOMB) !== s) continue;
        Atomics.store(keys, 2 * candidate, hi);
        Atomics.store(keys, 2 * candidate + 1, lo);
        Atomics.store(this.#meta, candidate, meta);
        this.#params[2 * candidate] = periodMs;
        this.#params[2 * candidate + 1] = originMs;
        Atomics.store(this.#dirty, candidate, 0);
        // Publishes the key, meta and params above (sequentially consistent store).
        Atomics.store(state, candidate, init);
        return candidate;
      }
      Atomics.add(this.#header, H_BUSY, 1);
      fillRefused(out, 'busy', 1);
      return -1;
    } finally {
      Atomics.compareExchange(this.#lock, 0, lease, 0n);
    }
  }

  stats(nowMs: number): TableStats {
    let used = 0;
    let live = 0;
    for (let slot = 0; slot < this.capacity; slot++) {
      if (Atomics.load(this.#keys, 2 * slot) === 0 && Atomics.load(this.#keys, 2 * slot + 1) === 0) continue;
      used++;
      if (this.#expiry(slot, Atomics.load(this.#state, slot), nowMs) > nowMs) live++;
    }
    const h = this.#header;
    return { capacity: this.capacity, used, live, full: Atomics.load(h, H_FULL), busy: Atomics.load(h, H_BUSY), steals: Atomics.load(h, H_STEALS) };
  }

  // -------------------------------------------------------------------------------------------------------------
  // Persistence of durable (quota) counters: used by store/quota-store.ts from the main thread.

  /**
   * Durable counters changed since the last call (their dirty flags are cleared first, so an update racing with
   * this call is seen now or flagged again for the next one). A slot being re-keyed is skipped and re-flagged.
   */
  collectDirty(nowMs: number): Array<DurableCounter & { slot: number }> {
    const found: Array<DurableCounter & { slot: number }> = [];
    // Nothing flagged since the last call: no scan of the table (every second, on every gateway, mostly idle).
    if (Atomics.exchange(this.#header, H_ANY_DIRTY, 0) === 0) return found;
    const keys = this.#keys;
    for (let slot = 0; slot < this.capacity; slot++) {
      if (Atomics.load(this.#dirty, slot) === 0 || Atomics.exchange(this.#dirty, slot, 0) === 0) continue;
      const kh = Atomics.load(keys, 2 * slot);
      const kl = Atomics.load(keys, 2 * slot + 1);
      const s = Atomics.load(this.#state, slot);
      const meta = Atomics.load(this.#meta, slot);
      const periodMs = this.#params[2 * slot];
      const originMs = this.#params[2 * slot + 1];
      if (Atomics.load(keys, 2 * slot) !== kh || Atomics.load(keys, 2 * slot + 1) !== kl || s === EMPTY || s === TOMB) {
        this.markDirty(slot);
        continue;
      }
      if ((meta & META_DURABLE) === 0) continue;
      const spec = windowSpec(periodMs, { originMs, durable: true });
      const nowIdx = windowIndex(nowMs, spec);
      const at = nowIdx - encDiff(encodeIndex(nowIdx), Number(s >> 32n));
      found.push({ slot, hash: hex(kh, kl), periodMs, originMs, windowStartMs: windowStartMs(at, spec), count: Number(s & LOW32) });
    }
    return found;
  }

  /** Flags a slot for the next collectDirty (after a failed write). */
  markDirty(slot: number): void {
    Atomics.store(this.#dirty, slot, 1);
    Atomics.store(this.#header, H_ANY_DIRTY, 1);
  }

  /**
   * Puts back a persisted counter: `expired` when its window ended before `nowMs` (not restored); if the key is
   * already here, the larger count of the same window wins (restoring twice does not double-count).
   */
  restore(c: DurableCounter, nowMs: number): 'restored' | 'expired' | 'full' | 'busy' {
    if (!/^[0-9a-f]{16}$/.test(c.hash)) throw new RangeError(`bad counter hash "${c.hash}"`);
    const hi = parseInt(c.hash.slice(0, 8), 16) | 0;
    const lo = parseInt(c.hash.slice(8), 16) | 0;
    const spec = windowSpec(c.periodMs, { originMs: c.originMs, durable: true });
    const idx = spec.periodMs === 0 ? 0 : Math.round((c.windowStartMs - spec.originMs) / spec.periodMs);
    if (windowEndMs(idx, spec) <= nowMs) return 'expired';
    const enc = encodeIndex(idx);
    const count = Math.min(Math.max(0, Math.floor(c.count)), MAX_COUNT);
    const want = (BigInt(enc) << 32n) | BigInt(count);
    const out = this.#scratch;
    let slot = this.#find(hi, lo);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      if (slot < 0) {
        slot = this.#insert(hi, lo, META_WINDOW | META_DURABLE, spec.periodMs, spec.originMs, want, nowMs, out, 0);
        if (slot < 0) return out.status === 'full' ? 'full' : 'busy';
      }
      const s = Atomics.load(this.#state, slot);
      if (s === EMPTY || s === TOMB) {
        slot = -1;
        continue;
      }
      if (!this.#sameKey(slot, hi, lo)) {
        slot = this.#find(hi, lo);
        continue;
      }
      const d = encDiff(enc, Number(s >> 32n));
      if (d < 0 || (d === 0 && Number(s & LOW32) >= count)) return 'restored';
      if (Atomics.compareExchange(this.#state, slot, s, want) === s) return 'restored';
    }
    return 'busy';
  }
}

// The counters behind rate-limit-by-key and quota-by-key: a Redis-shaped interface plus the window and GCRA arithmetic.
//
// The interface is what a Redis backend (several gateways, a later issue) can implement with one Lua script per
// operation and a pipeline for the batched form; the in-memory backend (shared-counter-table.ts) answers
// synchronously, so its methods narrow every `Reply<T>` to `T` and the request path never allocates a Promise.
// Results are written into a caller-owned `CounterResult` (reused per filter in a worker) instead of a new object.
//
// Time is wall-clock milliseconds since the Unix epoch (`Date.now()` or `performance.timeOrigin + performance.now()`),
// passed by the caller on every call: windows are aligned to `originMs + k × periodMs`, which must mean the same
// instant in every thread and, later, on every gateway sharing a Redis.

/** Largest count a window holds (the table stores it in 32 bits); unconditional increments saturate here. */
export const MAX_COUNT = 0xffff_ffff;

/** `ok`; `full`: no slot for a new key (denied, see shared-counter-table.ts); `busy`: the insert lock stayed taken (denied). */
export type CounterStatus = 'ok' | 'full' | 'busy';

export interface CounterResult {
  /** The call was counted (fixed window, GCRA) or, for `peek`, the counter is still below its limit. */
  admitted: boolean;
  /** Units used in the current window after this call (GCRA: calls still "in the bucket", ⌈(TAT − now) / T⌉). */
  count: number;
  /** Units still allowed in this window (GCRA: calls allowed right now); never negative, Infinity without a limit. */
  remaining: number;
  /** ms until the window ends (GCRA: until the bucket is full again); Infinity for a lifetime quota. */
  resetMs: number;
  /** 0 when admitted; otherwise ms until a call of this cost could pass (for `Retry-After`). */
  retryAfterMs: number;
  status: CounterStatus;
}

export function newResult(): CounterResult {
  return { admitted: false, count: 0, remaining: 0, resetMs: 0, retryAfterMs: 0, status: 'ok' };
}

/** A fixed window of `periodMs` aligned to `originMs` (APIM `first-period-start`); `periodMs` 0 = a lifetime counter. */
export interface WindowSpec {
  readonly kind: 'window';
  readonly periodMs: number;
  /** Normalised into [0, periodMs): only the alignment matters. */
  readonly originMs: number;
  /** Quota counters: flushed to the data directory and restored after a restart. Part of the counter's identity. */
  readonly durable: boolean;
}

/** GCRA (a token bucket without a timer): `calls` per `periodMs` on average, at most `burst` at once. */
export interface GcraSpec {
  readonly kind: 'gcra';
  readonly periodMs: number;
  readonly calls: number;
  readonly burst: number;
  /** T, the emission interval, rounded to whole µs (≥ 1) so the arithmetic stays exact in a double. */
  readonly emissionUs: number;
  /** τ = burst × T: how far the theoretical arrival time may run ahead of now. */
  readonly toleranceUs: number;
}

function assertInteger(name: string, v: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${v}`);
}

/** Builds (and validates) a window; build it once per policy, not per request. */
export function windowSpec(periodMs: number, opts: { originMs?: number; durable?: boolean } = {}): WindowSpec {
  assertInteger('periodMs', periodMs, 0);
  const origin = opts.originMs ?? 0;
  assertInteger('originMs', origin, Number.MIN_SAFE_INTEGER);
  return { kind: 'window', periodMs, originMs: periodMs === 0 ? 0 : ((origin % periodMs) + periodMs) % periodMs, durable: opts.durable ?? false };
}

/** Builds a GCRA limit; `burst` defaults to `calls` (a fresh key may spend the whole period's allowance at once). */
export function gcraSpec(calls: number, periodMs: number, burst = calls): GcraSpec {
  assertInteger('calls', calls, 0, MAX_COUNT);
  assertInteger('periodMs', periodMs, 1);
  assertInteger('burst', burst, 0, MAX_COUNT);
  const emissionUs = Math.max(1, Math.round((periodMs * 1000) / Math.max(1, calls)));
  return { kind: 'gcra', periodMs, calls, burst, emissionUs, toleranceUs: emissionUs * burst };
}

/** The index k of the window holding `nowMs` (windows are [origin + k·period, origin + (k+1)·period)); 0 for lifetime. */
export function windowIndex(nowMs: number, spec: WindowSpec): number {
  return spec.periodMs === 0 ? 0 : Math.floor((nowMs - spec.originMs) / spec.periodMs);
}

export function windowStartMs(index: number, spec: WindowSpec): number {
  return spec.periodMs === 0 ? 0 : spec.originMs + index * spec.periodMs;
}

/** Exclusive end of window `index`: Infinity for a lifetime counter. */
export function windowEndMs(index: number, spec: WindowSpec): number {
  return spec.periodMs === 0 ? Infinity : spec.originMs + (index + 1) * spec.periodMs;
}

/** Coerces a caller's cost to an integer in [0, MAX_COUNT] (NaN → 0), so the table never throws on the request path. */
export function normalizeCost(cost: number): number {
  return cost > 0 ? Math.min(Math.floor(cost), MAX_COUNT) : 0;
}

/**
 * Fixed window: the call passes when `count + cost ≤ limit` (`limit` Infinity: always, saturating at MAX_COUNT;
 * a finite limit above MAX_COUNT counts as MAX_COUNT).
 * Fills `out` and returns the new count, or -1 when denied (the count does not change: denied calls are not counted).
 */
export function windowTake(count: number, cost: number, limit: number, resetMs: number, out: CounterResult): number {
  // A finite limit above what a slot can count is clamped (stricter, never unlimited).
  if (limit > MAX_COUNT && limit !== Infinity) limit = MAX_COUNT;
  out.resetMs = resetMs;
  out.status = 'ok';
  const next = count + cost;
  if (next <= limit) {
    const stored = next > MAX_COUNT ? MAX_COUNT : next;
    out.admitted = true;
    out.count = stored;
    out.remaining = limit - stored;
    out.retryAfterMs = 0;
    return stored;
  }
  out.admitted = false;
  out.count = count;
  out.remaining = limit > count ? limit - count : 0;
  out.retryAfterMs = resetMs;
  return -1;
}

/** The read-only form of windowTake: `admitted` says the counter is still below `limit`. */
export function windowPeek(count: number, limit: number, resetMs: number, out: CounterResult): void {
  out.admitted = count < limit;
  out.count = count;
  out.remaining = limit > count ? limit - count : 0;
  out.resetMs = resetMs;
  out.retryAfterMs = count < limit ? 0 : resetMs;
  out.status = 'ok';
}

/**
 * GCRA with integer µs: TAT' = max(TAT, now) + cost·T passes when TAT' − τ ≤ now. From an idle key exactly `burst`
 * calls pass at one instant, then one every T. Fills `out`; returns the new TAT, or -1 when denied (TAT unchanged).
 */
export function gcraTake(tatUs: number, nowUs: number, cost: number, spec: GcraSpec, out: CounterResult): number {
  const t = spec.emissionUs;
  const tat = tatUs > nowUs ? tatUs : nowUs;
  const next = tat + cost * t;
  const allowAt = next - spec.toleranceUs;
  out.status = 'ok';
  if (allowAt <= nowUs) {
    out.admitted = true;
    out.count = Math.ceil((next - nowUs) / t);
    out.remaining = Math.floor((nowUs + spec.toleranceUs - next) / t);
    out.resetMs = Math.ceil((next - nowUs) / 1000);
    out.retryAfterMs = 0;
    return next;
  }
  out.admitted = false;
  out.count = Math.ceil((tat - nowUs) / t);
  out.remaining = Math.max(0, Math.floor((nowUs + spec.toleranceUs - tat) / t));
  out.resetMs = Math.ceil((tat - nowUs) / 1000);
  out.retryAfterMs = Math.ceil((allowAt - nowUs) / 1000);
  return -1;
}

/** A result that may come later: the in-memory store narrows it to `T`, a Redis store to `Promise<T>`. */
export type Reply<T> = T | Promise<T>;

export function isPromise<T>(r: Reply<T>): r is Promise<T> {
  return typeof (r as Promise<T> | null)?.then === 'function';
}

export type CounterOp =
  | { readonly key: string; readonly cost: number; readonly limit: number; readonly spec: WindowSpec }
  | { readonly key: string; readonly cost: number; readonly spec: GcraSpec };

/**
 * Counters by key. Keys are the policy's counter-key values; the store keys its counters by (key, spec kind,
 * durable, period, origin), so one key string under two different windows is two counters.
 */
export interface CounterStore {
  /**
   * Increment-with-expiry, conditional: adds `cost` to the key's counter for the window holding `nowMs` when the
   * result stays ≤ `limit` (Infinity: always, e.g. bandwidth counted after the response); the counter expires at
   * the window's end. Redis: one Lua script on `key:{windowIndex}` — GET, INCRBY if within limit, PEXPIREAT end,
   * return count and PTTL.
   */
  increment(key: string, cost: number, limit: number, spec: WindowSpec, nowMs: number, out: CounterResult): Reply<CounterResult>;
  /** The counter without changing it (Redis: GET + PTTL); `admitted` = count < limit. Never creates a counter. */
  peek(key: string, limit: number, spec: WindowSpec, nowMs: number, out: CounterResult): Reply<CounterResult>;
  /** GCRA take of `cost` (Redis: one Lua script on the TAT, the redis-cell algorithm). */
  takeGcra(key: string, cost: number, spec: GcraSpec, nowMs: number, out: CounterResult): Reply<CounterResult>;
  /**
   * Several independent operations at once (Redis: one pipeline, one round trip): `out[i]` answers `ops[i]`
   * (created when missing). Each op is decided on its own, as a pipeline would: no rollback across ops.
   */
  incrementBatch(ops: readonly CounterOp[], nowMs: number, out: CounterResult[]): Reply<CounterResult[]>;
}

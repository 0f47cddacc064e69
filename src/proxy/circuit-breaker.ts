// Per-backend circuit breaker with API Management's rule terms (count/percentage, interval, status ranges, Retry-After).
import type { BreakerRule } from '../model/types.ts';

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface CircuitBreakerOptions {
  /** For metrics and the breaker diagnostics channel. */
  onStateChange?: (state: BreakerState, previous: BreakerState) => void;
  /** Wall clock for HTTP-date Retry-After values (the main clock may be monotonic). Default Date.now. */
  wallClock?: () => number;
  /** Cap on a trip taken from Retry-After, so a backend cannot switch itself off for a week. Default 1 h. */
  maxRetryAfterMs?: number;
  /**
   * A half-open probe that never reports back (the caller found no endpoint, the client left)
   * stops blocking new probes after this long. Default: the trip duration, within 1–30 s.
   */
  probeTimeoutMs?: number;
}

/** Buckets per interval: memory is constant and the window slides in steps of interval/10. */
const BUCKETS = 10;

interface RuleWindow {
  rule: BreakerRule;
  width: number;
  stamps: Float64Array;
  totals: Uint32Array;
  fails: Uint32Array;
}

function isFailure(rule: BreakerRule, status: number | undefined): boolean {
  if (status === undefined) return rule.errorReasons;
  const ranges = rule.statusCodeRanges;
  for (let i = 0; i < ranges.length; i++) if (status >= ranges[i].min && status <= ranges[i].max) return true;
  return false;
}

/** Count one result into the current bucket; returns true when the rule's condition now holds. */
function countAndCheck(w: RuleWindow, now: number, failed: boolean): boolean {
  const id = Math.floor(now / w.width);
  const s = id % BUCKETS;
  if (w.stamps[s] !== id) {
    w.stamps[s] = id;
    w.totals[s] = 0;
    w.fails[s] = 0;
  }
  w.totals[s]++;
  if (!failed) return false;
  w.fails[s]++;
  let total = 0;
  let fails = 0;
  for (let i = 0; i < BUCKETS; i++) {
    if (w.stamps[i] > id - BUCKETS) {
      total += w.totals[i];
      fails += w.fails[i];
    }
  }
  const r = w.rule;
  if (r.count !== undefined && r.count > 0 && fails >= r.count) return true;
  return r.percentage !== undefined && total >= Math.max(1, r.minRequests) && fails * 100 >= r.percentage * total;
}

/** Milliseconds from a Retry-After value (delay-seconds or HTTP-date); undefined when unusable. */
export function parseRetryAfter(value: string | undefined, wallNow: number): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // Every HTTP-date form starts with a day name; this keeps Date.parse from accepting "-5" as a year.
  if (!/^[A-Za-z]{3}/.test(v)) return undefined;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - wallNow);
}

/**
 * Closed: everything passes and results are counted. Open: nothing passes until the trip ends.
 * Half-open: one probe at a time; its success closes the breaker, its failure opens it again.
 * Several rules may be given (API Management allows one); the first that holds trips.
 * Per process and approximate, as in API Management: in half-open the first result reported
 * decides, even a late one from a request sent before the trip.
 */
export class CircuitBreaker {
  readonly #windows: RuleWindow[];
  readonly #clock: () => number;
  readonly #wallClock: () => number;
  readonly #onStateChange: ((state: BreakerState, previous: BreakerState) => void) | undefined;
  readonly #maxRetryAfterMs: number;
  readonly #probeTimeoutMs: number | undefined;
  #state: BreakerState = 'closed';
  #openUntil = 0;
  #tripRule: BreakerRule | undefined;
  /** Clock time the half-open probe was let through; -1 when no probe is out. */
  #probeAt = -1;

  constructor(rules: BreakerRule[], clock: () => number, opts: CircuitBreakerOptions = {}) {
    this.#windows = rules.map((rule) => ({
      rule,
      width: Math.max(1, rule.interval / BUCKETS),
      stamps: new Float64Array(BUCKETS).fill(-Infinity),
      totals: new Uint32Array(BUCKETS),
      fails: new Uint32Array(BUCKETS),
    }));
    this.#clock = clock;
    this.#wallClock = opts.wallClock ?? Date.now;
    this.#onStateChange = opts.onStateChange;
    this.#maxRetryAfterMs = opts.maxRetryAfterMs ?? 3_600_000;
    this.#probeTimeoutMs = opts.probeTimeoutMs;
  }

  get state(): BreakerState {
    this.#advance(this.#clock());
    return this.#state;
  }

  /** May a request go to the backend now? In half-open, `true` means "you are the probe". */
  allow(): boolean {
    if (this.#state === 'closed') return true;
    const now = this.#clock();
    this.#advance(now);
    if (this.#state === 'open') return false;
    const probeTimeout = this.#probeTimeoutMs ?? Math.min(30_000, Math.max(1000, this.#tripRule?.tripDuration ?? 0));
    if (this.#probeAt >= 0 && now - this.#probeAt < probeTimeout) return false;
    this.#probeAt = now;
    return true;
  }

  /**
   * Report a finished request: its status, or undefined for a connect failure, reset or timeout.
   * Results that arrive while open came from requests sent before the trip and are ignored.
   */
  record(status: number | undefined, retryAfterHeader?: string): void {
    if (this.#windows.length === 0) return;
    const now = this.#clock();
    this.#advance(now);
    if (this.#state === 'open') return;
    if (this.#state === 'half-open') {
      this.#probeAt = -1;
      for (const w of this.#windows) {
        if (isFailure(w.rule, status)) return this.#open(w.rule, now, retryAfterHeader);
      }
      return this.#close();
    }
    for (const w of this.#windows) {
      if (countAndCheck(w, now, isFailure(w.rule, status))) return this.#open(w.rule, now, retryAfterHeader);
    }
  }

  /** Seconds for the Retry-After of the 503 sent while the breaker refuses (0 when closed). */
  retryAfterSeconds(): number {
    const now = this.#clock();
    this.#advance(now);
    if (this.#state === 'closed') return 0;
    if (this.#state === 'half-open') return 1;
    return Math.max(1, Math.ceil((this.#openUntil - now) / 1000));
  }

  #advance(now: number): void {
    if (this.#state === 'open' && now >= this.#openUntil) {
      this.#probeAt = -1;
      this.#set('half-open');
    }
  }

  #open(rule: BreakerRule, now: number, retryAfterHeader: string | undefined): void {
    let duration = rule.tripDuration;
    if (rule.acceptRetryAfter) {
      const ms = parseRetryAfter(retryAfterHeader, this.#wallClock());
      if (ms !== undefined) duration = Math.min(ms, this.#maxRetryAfterMs);
    }
    this.#tripRule = rule;
    this.#openUntil = now + duration;
    this.#reset();
    this.#set('open');
  }

  #close(): void {
    this.#tripRule = undefined;
    this.#reset();
    this.#set('closed');
  }

  /** Forget counted results, so that old failures cannot trip a breaker that just closed. */
  #reset(): void {
    for (const w of this.#windows) {
      w.stamps.fill(-Infinity);
      w.totals.fill(0);
      w.fails.fill(0);
    }
  }

  #set(state: BreakerState): void {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.#onStateChange?.(state, previous);
  }

  /** Name of the rule that tripped the breaker, for logs; undefined while closed. */
  get trippedBy(): string | undefined {
    return this.#tripRule?.name;
  }
}

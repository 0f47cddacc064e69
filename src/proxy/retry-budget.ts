// Retry budget (Finagle/Linkerd): retries may add only a percentage of recent traffic plus a small floor.
import type { RetryPolicy } from '../model/types.ts';

/** Linkerd's TTL: the budget looks at the last 10 s, counted in 1 s buckets. */
const WINDOW_MS = 10_000;
const BUCKETS = 10;
const WIDTH = WINDOW_MS / BUCKETS;

/**
 * Retries in the last 10 s ≤ budgetPercent % of requests in the last 10 s + minPerSecond × 10.
 * Unlike a fixed "max 3 retries", this stops retry storms: when everything fails, retries add at
 * most `budgetPercent` to the load instead of multiplying it. Call recordRequest() for first
 * attempts only; a retry is counted by tryAcquireRetry() when it succeeds.
 */
export class RetryBudget {
  readonly #percent: number;
  readonly #reserve: number;
  readonly #clock: () => number;
  readonly #stamps = new Float64Array(BUCKETS).fill(-Infinity);
  readonly #requests = new Float64Array(BUCKETS);
  readonly #retries = new Float64Array(BUCKETS);

  constructor(policy: Pick<RetryPolicy, 'budgetPercent' | 'minPerSecond'>, clock: () => number) {
    this.#percent = Math.max(0, policy.budgetPercent);
    this.#reserve = Math.max(0, policy.minPerSecond) * (WINDOW_MS / 1000);
    this.#clock = clock;
  }

  recordRequest(): void {
    this.#requests[this.#slot(this.#clock())]++;
  }

  /** Takes one retry from the budget; false means "do not retry, return what you have". */
  tryAcquireRetry(): boolean {
    const now = this.#clock();
    const s = this.#slot(now);
    const id = Math.floor(now / WIDTH);
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < BUCKETS; i++) {
      if (this.#stamps[i] > id - BUCKETS) {
        requests += this.#requests[i];
        retries += this.#retries[i];
      }
    }
    if (retries + 1 > (requests * this.#percent) / 100 + this.#reserve) return false;
    this.#retries[s]++;
    return true;
  }

  #slot(now: number): number {
    const id = Math.floor(now / WIDTH);
    const s = id % BUCKETS;
    if (this.#stamps[s] !== id) {
      this.#stamps[s] = id;
      this.#requests[s] = 0;
      this.#retries[s] = 0;
    }
    return s;
  }
}

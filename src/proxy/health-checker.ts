// Active health checks: GET each endpoint's health path on a jittered interval and flip EndpointState.healthy.
import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import type { HealthCheck } from '../model/types.ts';
import type { EndpointState } from './endpoint-state.ts';

export interface HealthCheckerOptions {
  /** Used to time each check for `onCheck`. Default performance.now. */
  clock?: () => number;
  random?: () => number;
  /** Called once by start(); the checker owns and closes what it returns (e.g. an mTLS Agent). */
  dispatcherFactory?: () => Dispatcher;
  onChange?: (ep: EndpointState, healthy: boolean) => void;
  /** Every check's outcome and duration (ms), for metrics. */
  onCheck?: (ep: EndpointState, ok: boolean, ms: number) => void;
}

const DEFAULT_EXPECTED = [{ min: 200, max: 399 }];
const USER_AGENT = 'lockgate-health-check';

/**
 * One timer chain per endpoint (a check is never overlapped by the next one), jittered by ±10%
 * and with first checks spread over one interval, so that many gateways do not probe in step.
 * Timers are unref'd: a checker never keeps the process alive. Off the request path, so an
 * AbortSignal.timeout per check is fine here.
 */
export class HealthChecker {
  readonly #endpoints: readonly EndpointState[];
  readonly #cfg: HealthCheck;
  readonly #clock: () => number;
  readonly #random: () => number;
  readonly #factory: () => Dispatcher;
  readonly #onChange: HealthCheckerOptions['onChange'];
  readonly #onCheck: HealthCheckerOptions['onCheck'];
  readonly #urls: string[];
  readonly #expected: ReadonlyArray<{ min: number; max: number }>;
  readonly #successes: Uint32Array;
  readonly #failures: Uint32Array;
  readonly #timers: Array<NodeJS.Timeout | undefined>;
  readonly #running = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  #dispatcher: Dispatcher | undefined;
  #closed = false;

  constructor(endpoints: readonly EndpointState[], cfg: HealthCheck, opts: HealthCheckerOptions = {}) {
    this.#endpoints = endpoints;
    this.#cfg = cfg;
    this.#clock = opts.clock ?? performance.now.bind(performance);
    this.#random = opts.random ?? Math.random;
    this.#factory = opts.dispatcherFactory ?? (() => new Agent({ connections: 1 }));
    this.#onChange = opts.onChange;
    this.#onCheck = opts.onCheck;
    this.#urls = endpoints.map((ep) => new URL(cfg.path, ep.url).href);
    this.#expected = cfg.expectedStatuses.length > 0 ? cfg.expectedStatuses : DEFAULT_EXPECTED;
    this.#successes = new Uint32Array(endpoints.length);
    this.#failures = new Uint32Array(endpoints.length);
    this.#timers = endpoints.map(() => undefined);
  }

  start(): void {
    if (!this.#cfg.enabled || this.#closed || this.#dispatcher !== undefined) return;
    this.#dispatcher = this.#factory();
    for (let i = 0; i < this.#endpoints.length; i++) this.#schedule(i, this.#random() * this.#cfg.interval);
  }

  /** Stops the timers, aborts checks in flight, waits for them, and closes the dispatcher. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#abort.abort();
    await Promise.allSettled(this.#running);
    await this.#dispatcher?.close();
  }

  #schedule(i: number, delay: number): void {
    const t = setTimeout(() => {
      const p = this.#check(i).finally(() => this.#running.delete(p));
      this.#running.add(p);
    }, delay);
    t.unref();
    this.#timers[i] = t;
  }

  async #check(i: number): Promise<void> {
    const ep = this.#endpoints[i];
    const started = this.#clock();
    let ok = false;
    try {
      const res = await request(this.#urls[i], {
        method: 'GET',
        dispatcher: this.#dispatcher,
        headers: { 'user-agent': USER_AGENT },
        signal: AbortSignal.any([this.#abort.signal, AbortSignal.timeout(this.#cfg.timeout)]),
      });
      ok = this.#isExpected(res.statusCode);
      await res.body.dump();
    } catch {
      ok = false; // refused, reset, timed out or aborted: all mean "not healthy now"
    }
    if (this.#closed) return;
    this.#onCheck?.(ep, ok, this.#clock() - started);
    this.#count(i, ep, ok);
    this.#schedule(i, this.#cfg.interval * (0.9 + 0.2 * this.#random()));
  }

  #isExpected(status: number): boolean {
    for (const r of this.#expected) if (status >= r.min && status <= r.max) return true;
    return false;
  }

  #count(i: number, ep: EndpointState, ok: boolean): void {
    if (ok) {
      this.#failures[i] = 0;
      this.#successes[i]++;
      if (!ep.healthy && this.#successes[i] >= this.#cfg.healthyThreshold) this.#flip(ep, true);
    } else {
      this.#successes[i] = 0;
      this.#failures[i]++;
      if (ep.healthy && this.#failures[i] >= this.#cfg.unhealthyThreshold) this.#flip(ep, false);
    }
  }

  #flip(ep: EndpointState, healthy: boolean): void {
    ep.healthy = healthy;
    this.#onChange?.(ep, healthy);
  }
}

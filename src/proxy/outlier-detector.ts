// Passive health: eject an endpoint after consecutive 5xx or connect failures, for longer each time it happens again.
import type { OutlierDetection } from '../model/types.ts';
import type { EndpointState } from './endpoint-state.ts';

/** Envoy's cap on one ejection. */
export const MAX_EJECTION_MS = 300_000;

/** What counts against an endpoint: a 5xx, or no response at all (undefined status). */
export function isOutlierFailure(status: number | undefined): boolean {
  return status === undefined || status >= 500;
}

export interface OutlierDetectorOptions {
  /** For metrics and logs: called when an endpoint is taken out until `until`. */
  onEject?: (ep: EndpointState, until: number) => void;
}

/**
 * Ejection lasts baseEjectionTime × (times ejected), capped at 300 s; each further
 * baseEjectionTime an endpoint stays in takes one off that multiplier again. Ejection ends by
 * time alone (EndpointState.available compares `ejectedUntil`), so there is no timer. It never
 * takes out more than maxEjectionPercent of the endpoints, nor the last available one.
 * Counters live in typed arrays indexed by EndpointState.index.
 */
export class OutlierDetector {
  readonly #endpoints: readonly EndpointState[];
  readonly #cfg: OutlierDetection;
  readonly #clock: () => number;
  readonly #onEject: OutlierDetectorOptions['onEject'];
  readonly #consecutive: Uint32Array;
  readonly #times: Uint32Array;
  /** When the next "good behaviour" decrement of the multiplier is due. */
  readonly #decayAt: Float64Array;

  constructor(
    endpoints: readonly EndpointState[],
    cfg: OutlierDetection,
    clock: () => number = () => performance.now(),
    opts: OutlierDetectorOptions = {},
  ) {
    this.#endpoints = endpoints;
    this.#cfg = cfg;
    this.#clock = clock;
    this.#onEject = opts.onEject;
    const size = endpoints.reduce((m, ep) => Math.max(m, ep.index + 1), 0);
    this.#consecutive = new Uint32Array(size);
    this.#times = new Uint32Array(size);
    this.#decayAt = new Float64Array(size);
  }

  /**
   * Report one finished attempt; `failed` means a 5xx, a connect failure or a reset (see
   * isOutlierFailure). Returns true when this result ejected the endpoint.
   */
  record(ep: EndpointState, failed: boolean): boolean {
    const cfg = this.#cfg;
    if (!cfg.enabled) return false;
    const now = this.#clock();
    const i = ep.index;
    if (now < ep.ejectedUntil) return false; // late results of requests sent before the ejection
    const base = cfg.baseEjectionTime;
    if (this.#times[i] > 0 && now >= this.#decayAt[i] && base > 0) {
      const k = Math.floor((now - this.#decayAt[i]) / base) + 1;
      this.#times[i] = k >= this.#times[i] ? 0 : this.#times[i] - k;
      this.#decayAt[i] += k * base;
    }
    if (!failed) {
      this.#consecutive[i] = 0;
      return false;
    }
    if (++this.#consecutive[i] < cfg.consecutiveErrors || !this.#mayEject(ep, now)) return false;
    this.#consecutive[i] = 0;
    const times = ++this.#times[i];
    const until = now + Math.min(base * times, Math.max(base, MAX_EJECTION_MS));
    ep.ejectedUntil = until;
    this.#decayAt[i] = until + base;
    this.#onEject?.(ep, until);
    return true;
  }

  /** Endpoints out now, for metrics. */
  ejectedCount(): number {
    const now = this.#clock();
    let n = 0;
    for (const ep of this.#endpoints) if (now < ep.ejectedUntil) n++;
    return n;
  }

  #mayEject(ep: EndpointState, now: number): boolean {
    const total = this.#endpoints.length;
    let ejected = 0;
    let othersAvailable = 0;
    for (const other of this.#endpoints) {
      if (now < other.ejectedUntil) ejected++;
      if (other !== ep && other.available(now)) othersAvailable++;
    }
    return othersAvailable > 0 && (ejected + 1) * 100 <= this.#cfg.maxEjectionPercent * total;
  }
}

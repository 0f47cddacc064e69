// The mutable runtime facts about one upstream endpoint that balancers read and the request path updates.
import type { Endpoint } from '../model/types.ts';
import { createPeakEwma, observePeakEwma, DEFAULT_RTT_MS, DEFAULT_DECAY_MS } from '../lib/ewma.ts';
import type { PeakEwma } from '../lib/ewma.ts';

export interface EndpointStateOptions {
  initialRttMs?: number;
  decayMs?: number;
  /**
   * A failed request counts as at least this slow: an endpoint that fails fast would otherwise
   * look like the fastest one and attract all the traffic (the "black hole" of latency balancing).
   */
  failurePenaltyMs?: number;
}

export const DEFAULT_FAILURE_PENALTY_MS = 1000;

/**
 * Touched twice per request (onStart, onEnd), so it is a fixed-shape object with public fields
 * that balancers read directly; no lifecycle, nothing to close.
 */
export class EndpointState {
  /** Position in the backend's endpoint list; other per-endpoint arrays are indexed by it. */
  readonly index: number;
  readonly url: string;
  weight: number;
  /** Set by active health checks; true until a checker says otherwise. */
  healthy = true;
  /** Clock time until which outlier detection keeps this endpoint out; 0 = not ejected. */
  ejectedUntil = 0;
  inflight = 0;
  readonly latency: PeakEwma;
  readonly #failurePenaltyMs: number;

  constructor(index: number, endpoint: Endpoint, now = 0, opts: EndpointStateOptions = {}) {
    this.index = index;
    this.url = endpoint.url;
    this.weight = endpoint.weight;
    this.latency = createPeakEwma(now, opts.initialRttMs ?? DEFAULT_RTT_MS, opts.decayMs ?? DEFAULT_DECAY_MS);
    this.#failurePenaltyMs = opts.failurePenaltyMs ?? DEFAULT_FAILURE_PENALTY_MS;
  }

  available(now: number): boolean {
    return this.healthy && now >= this.ejectedUntil;
  }

  onStart(): void {
    this.inflight++;
  }

  onEnd(now: number, latencyMs: number, failed: boolean): void {
    if (this.inflight > 0) this.inflight--;
    const sample = failed && latencyMs < this.#failurePenaltyMs ? this.#failurePenaltyMs : latencyMs;
    observePeakEwma(this.latency, now, sample);
  }
}

/** Build the runtime list for a backend's configured endpoints. */
export function endpointStates(endpoints: readonly Endpoint[], now = 0, opts?: EndpointStateOptions): EndpointState[] {
  return endpoints.map((e, i) => new EndpointState(i, e, now, opts));
}

// Peak EWMA: a latency estimate that jumps up at once on a slow sample and decays by elapsed time, not by sample count.

/**
 * The estimate as a plain record so that callers can embed it and update it without allocation.
 * `value` is in the caller's unit (milliseconds here); `at` is the clock time of the last sample.
 */
export interface PeakEwma {
  value: number;
  at: number;
  /** Time constant (same unit as the clock): after `decay` of quiet, old weight has fallen to 1/e. */
  decay: number;
}

/** Linkerd's defaults: 30 ms until the first response is seen, 10 s time constant. */
export const DEFAULT_RTT_MS = 30;
export const DEFAULT_DECAY_MS = 10_000;

export function createPeakEwma(now: number, initial = DEFAULT_RTT_MS, decay = DEFAULT_DECAY_MS): PeakEwma {
  if (!(decay > 0)) throw new RangeError('decay must be positive');
  return { value: initial, at: now, decay };
}

/**
 * Add a sample. A sample above the estimate replaces it (the "peak": react to a slowdown at
 * once); a lower one is blended in with a weight that grows with the time since the last sample,
 * so a burst of fast replies in one millisecond cannot erase a slow one.
 */
export function observePeakEwma(e: PeakEwma, now: number, sample: number): void {
  if (sample > e.value) {
    e.value = sample;
  } else {
    const elapsed = now > e.at ? now - e.at : 0;
    const w = Math.exp(-elapsed / e.decay);
    e.value = e.value * w + sample * (1 - w);
  }
  if (now > e.at) e.at = now;
}

/**
 * The estimate as seen at `now`, without changing it: it decays towards zero while no samples
 * arrive, so an endpoint that was slow and then left alone gets tried again (as Finagle and
 * tower do by reading the estimate as a zero sample).
 */
export function peakEwmaValue(e: PeakEwma, now: number): number {
  const elapsed = now - e.at;
  return elapsed > 0 ? e.value * Math.exp(-elapsed / e.decay) : e.value;
}

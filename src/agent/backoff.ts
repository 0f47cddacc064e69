// Jittered exponential backoff for reconnects and retries: so that many nodes do not come back in lockstep.

export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
  /** Returns [0, 1); injected in tests. */
  random?: () => number;
}

/** Delay before attempt `attempt` (0-based): initial × 2^attempt, capped, then scaled by a random factor in [0.5, 1]. */
export function backoffDelay(attempt: number, o: BackoffOptions = {}): number {
  const initial = o.initialMs ?? 200;
  const max = o.maxMs ?? 10_000;
  const base = Math.min(max, initial * 2 ** Math.min(attempt, 30));
  return Math.round(base * (0.5 + 0.5 * (o.random ?? Math.random)()));
}

/** Resolves after `ms`, or at once when `signal` aborts (the caller checks the signal). */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

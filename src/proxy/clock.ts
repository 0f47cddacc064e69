// The data plane's monotonic clock: each request-path timestamp is one performance.now(), and the
// breakers, budgets and balancers read the latest stamp instead of asking the OS again (≈75 ns a call here).
import { performance } from 'node:perf_hooks';

let last = performance.now();

/** A fresh monotonic timestamp (ms), remembered for `lastStamp`. */
export function stamp(): number {
  return (last = performance.now());
}

/** The most recent stamp: exact to within the current callback, which is all per-request bookkeeping needs. */
export function lastStamp(): number {
  return last;
}

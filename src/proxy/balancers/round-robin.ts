// Round-robin balancing: each available endpoint in turn, ignoring weights other than 0 (drained).
import type { EndpointState } from '../endpoint-state.ts';

/**
 * `start` lets each worker begin at a different endpoint so that N workers started together
 * do not all send their first request to endpoint 0.
 */
export function roundRobin(endpoints: readonly EndpointState[], start = 0) {
  const n = endpoints.length;
  let next = n > 0 ? Math.abs(Math.trunc(start)) % n : 0;
  return {
    pick(now: number): EndpointState | undefined {
      for (let k = 0; k < n; k++) {
        const ep = endpoints[next];
        next = next + 1 === n ? 0 : next + 1;
        if (ep.weight > 0 && ep.available(now)) return ep;
      }
      return undefined;
    },
  };
}

// nginx's smooth weighted round-robin: weights 5:1:1 give a a b a c a a, spreading the heavy endpoint out.
import type { EndpointState } from '../endpoint-state.ts';

/**
 * Each pick adds every available endpoint's weight to its running score, takes the highest
 * score and subtracts the total from it (ngx_http_upstream_get_peer). Unavailable endpoints
 * take no part, so the rest keep their proportions while one is out.
 */
export function smoothWeightedRoundRobin(endpoints: readonly EndpointState[]) {
  const n = endpoints.length;
  const current = new Float64Array(n);
  return {
    pick(now: number): EndpointState | undefined {
      let best = -1;
      let total = 0;
      for (let i = 0; i < n; i++) {
        const ep = endpoints[i];
        const w = ep.weight;
        if (!(w > 0) || !ep.available(now)) continue;
        current[i] += w;
        total += w;
        if (best < 0 || current[i] > current[best]) best = i;
      }
      if (best < 0) return undefined;
      current[best] -= total;
      return endpoints[best];
    },
  };
}

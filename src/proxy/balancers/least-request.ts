// Power of two choices on requests in flight; also the P2C skeleton that the EWMA balancer reuses.
import type { EndpointState } from '../endpoint-state.ts';

/** Lower is better. Called twice per pick, so it must not allocate. */
export type EndpointCost = (ep: EndpointState, now: number) => number;

/** Index of the first usable endpoint at or after `from` (wrapping), not `skip`; -1 if none. */
function scan(endpoints: readonly EndpointState[], from: number, skip: number, now: number): number {
  const n = endpoints.length;
  for (let k = 0, i = from; k < n; k++, i = i + 1 === n ? 0 : i + 1) {
    if (i === skip) continue;
    const ep = endpoints[i];
    if (ep.weight > 0 && ep.available(now)) return i;
  }
  return -1;
}

/**
 * Sample two distinct endpoints uniformly and keep the cheaper: nearly as good as scanning for
 * the least loaded, in O(1), and it never herds every worker onto the same "best" endpoint.
 * When a sampled endpoint is unavailable the next usable one after it stands in.
 */
export function powerOfTwoChoices(endpoints: readonly EndpointState[], random: () => number, cost: EndpointCost) {
  const n = endpoints.length;
  return {
    pick(now: number): EndpointState | undefined {
      if (n === 0) return undefined;
      const i = scan(endpoints, Math.floor(random() * n) % n, -1, now);
      if (i < 0) return undefined;
      if (n === 1) return endpoints[i];
      let j = Math.floor(random() * (n - 1)) % (n - 1);
      if (j >= i) j++;
      j = scan(endpoints, j, i, now);
      if (j < 0) return endpoints[i];
      const a = endpoints[i];
      const b = endpoints[j];
      return cost(b, now) < cost(a, now) ? b : a;
    },
  };
}

const inflightCost: EndpointCost = (ep) => ep.inflight;

/** Envoy/Istio LEAST_REQUEST: P2C on the number of requests in flight. */
export function leastRequest(endpoints: readonly EndpointState[], random: () => number = Math.random) {
  return powerOfTwoChoices(endpoints, random, inflightCost);
}

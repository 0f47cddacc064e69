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

/** A non-zero 32-bit seed for the inline xorshift generators below. */
export function seed32(random: () => number): number {
  return (Math.floor(random() * 4294967296) | 0) || 0x2545f491;
}

/**
 * Sample two distinct endpoints uniformly and keep the cheaper: nearly as good as scanning for
 * the least loaded, in O(1), and it never herds every worker onto the same "best" endpoint.
 * When a sampled endpoint is unavailable the next usable one after it stands in.
 * The injected `random` only seeds an inline xorshift32: calling a random function per pick
 * returns a boxed double, which allocates on every request.
 */
export function powerOfTwoChoices(endpoints: readonly EndpointState[], random: () => number, cost: EndpointCost) {
  const n = endpoints.length;
  let s = seed32(random);
  return {
    pick(now: number): EndpointState | undefined {
      if (n === 0) return undefined;
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      // `>>> 1` keeps the value a small integer, so `%` is an integer division rather than fmod.
      const i = scan(endpoints, (s >>> 1) % n, -1, now);
      if (i < 0) return undefined;
      if (n === 1) return endpoints[i];
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      let j = (s >>> 1) % (n - 1);
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

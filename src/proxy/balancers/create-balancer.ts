// Chooses the balancer for a backend's load-balancing config; the one place that maps algorithm names to code.
import type { LoadBalancing } from '../../model/types.ts';
import type { EndpointState } from '../endpoint-state.ts';
import { roundRobin } from './round-robin.ts';
import { smoothWeightedRoundRobin } from './smooth-weighted-round-robin.ts';
import { leastRequest } from './least-request.ts';
import { ewmaBalancer } from './ewma.ts';
import { consistentHash } from './consistent-hash.ts';

/**
 * Picks an endpoint that is available at `now` (healthy, not ejected, weight > 0). `undefined`
 * means none is: the caller answers 503 `no_healthy_endpoint`. `hashKey` is read only by
 * consistent-hash. Picks allocate nothing.
 */
export interface Balancer {
  pick(now: number, hashKey?: string): EndpointState | undefined;
}

/** Built once per config version and endpoint set; the endpoint list must not change afterwards. */
export function createBalancer(
  lb: LoadBalancing,
  endpoints: EndpointState[],
  random: () => number = Math.random,
): Balancer {
  switch (lb.algorithm) {
    case 'round-robin':
      return roundRobin(endpoints, Math.floor(random() * Math.max(1, endpoints.length)));
    case 'weighted-round-robin':
      return smoothWeightedRoundRobin(endpoints);
    case 'least-request':
      return leastRequest(endpoints, random);
    case 'ewma':
      return ewmaBalancer(endpoints, random);
    case 'consistent-hash':
      return consistentHash(endpoints, random);
    default: {
      const never: never = lb.algorithm;
      throw new Error(`unknown load-balancing algorithm ${String(never)}`);
    }
  }
}

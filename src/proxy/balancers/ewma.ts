// Linkerd's balancer: power of two choices on peak-EWMA latency × (requests in flight + 1).
import type { EndpointState } from '../endpoint-state.ts';
import { peakEwmaValue } from '../../lib/ewma.ts';
import { powerOfTwoChoices } from './least-request.ts';
import type { EndpointCost } from './least-request.ts';

/**
 * Multiplying by (inflight + 1) makes a fast endpoint that is already busy look as expensive as
 * the queue it has. The estimate decays only while the endpoint is idle: a slow endpoint left
 * alone is tried again later, but one whose requests hang keeps its cost and gains more.
 */
const ewmaCost: EndpointCost = (ep, now) =>
  ep.inflight === 0 ? peakEwmaValue(ep.latency, now) : ep.latency.value * (ep.inflight + 1);

export function ewmaBalancer(endpoints: readonly EndpointState[], random: () => number = Math.random) {
  return powerOfTwoChoices(endpoints, random, ewmaCost);
}

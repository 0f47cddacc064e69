// Locality preference around any balancer: the caller's zone first, then its region, then anywhere, failing over per tier.
import type { Locality, LoadBalancing } from '../../model/types.ts';
import type { EndpointState } from '../endpoint-state.ts';
import { createBalancer, type Balancer } from './create-balancer.ts';

/**
 * Endpoints split into tiers by how close their `region`/`zone` labels are to `self`: same zone (and, when both
 * name one, same region), same region, the rest. Empty tiers are dropped; the order inside a tier is the
 * configured order. With no locality or no labels there is a single tier.
 */
export function localityTiers<T extends { readonly index: number }>(
  endpoints: readonly T[],
  labels: ReadonlyArray<Readonly<Record<string, string>> | undefined>,
  self: Locality,
): T[][] {
  const zone: T[] = [];
  const region: T[] = [];
  const rest: T[] = [];
  for (const ep of endpoints) {
    const l = labels[ep.index];
    const sameRegion = self.region !== undefined && l?.region === self.region;
    // A zone name is only unique within its region: a label naming another region is not our zone.
    const sameZone = self.zone !== undefined && l?.zone === self.zone && (self.region === undefined || l.region === undefined || sameRegion);
    if (sameZone) zone.push(ep);
    else if (sameRegion) region.push(ep);
    else rest.push(ep);
  }
  return [zone, region, rest].filter((t) => t.length > 0);
}

/**
 * One balancer of the configured algorithm per tier. A pick asks the nearest tier first; a tier whose every
 * endpoint is unavailable (health-checked down, ejected, or weight 0) answers undefined and the next tier is
 * asked, so traffic returns to the zone as soon as one of its endpoints is back.
 */
export function localityBalancer(lb: LoadBalancing, tiers: EndpointState[][], random: () => number = Math.random): Balancer {
  const balancers = tiers.map((t) => createBalancer(lb, t, random));
  const n = balancers.length;
  if (n === 1) return balancers[0];
  return {
    pick(now: number, hashKey?: string): EndpointState | undefined {
      for (let i = 0; i < n; i++) {
        const ep = balancers[i].pick(now, hashKey);
        if (ep !== undefined) return ep;
      }
      return undefined;
    },
  };
}

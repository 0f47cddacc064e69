// Weighted splits between Backends (canary): nginx's smooth weighted round-robin over the legs, so splits are exact and interleaved.
import type { UpstreamCluster } from './upstream-cluster.ts';

/** One leg: the child Backend's cluster and its relative weight (0 = never picked). */
export interface SplitLeg {
  cluster: UpstreamCluster;
  weight: number;
}

/** Picks the leg of each request. State is per split per worker thread (module state is per thread). */
export interface WeightedSplit {
  readonly legs: readonly SplitLeg[];
  /** The next leg's cluster; undefined only when every weight is 0. */
  pick(): UpstreamCluster | undefined;
}

/**
 * Smooth weighted round-robin (ngx_http_upstream_get_peer): each pick adds every weight to its leg's running
 * score, takes the highest and subtracts the total from it. Over any whole cycle of `sum(weights)` picks each leg
 * gets exactly its weight, and heavy legs are spread out (90/10 never sends ten in a row to the light one).
 * Legs are not skipped when their endpoints are down: the split stays exact, and a retry re-picks.
 */
export function smoothWeighted<T>(items: readonly T[], weights: readonly number[]): { pick(): T | undefined } {
  const n = items.length;
  const w = Float64Array.from(weights, (x) => (x > 0 ? x : 0));
  let total = 0;
  for (let i = 0; i < n; i++) total += w[i];
  const current = new Float64Array(n);
  return {
    pick(): T | undefined {
      if (total === 0) return undefined;
      let best = -1;
      for (let i = 0; i < n; i++) {
        if (w[i] === 0) continue;
        current[i] += w[i];
        if (best < 0 || current[i] > current[best]) best = i;
      }
      current[best] -= total;
      return items[best];
    },
  };
}

export function createWeightedSplit(legs: readonly SplitLeg[]): WeightedSplit {
  const swrr = smoothWeighted(legs.map((l) => l.cluster), legs.map((l) => l.weight));
  return { legs, pick: swrr.pick };
}

// Keyed by the split Backend's own (endpoint-less) cluster, so every path that forwards to that cluster (the plain
// route, a policy pipeline, set-backend-service) finds its split without a field on the cluster.
const splits = new WeakMap<UpstreamCluster, WeightedSplit>();

/** The split of a split Backend's cluster, if the runtime registered one. */
export function splitOf(cluster: UpstreamCluster): WeightedSplit | undefined {
  return splits.get(cluster);
}

/**
 * Registers (or replaces) the split of `parent` for a new config version. The same legs (same child clusters,
 * same weights) keep their running state, so a reload that changed nothing else does not restart the cycle.
 */
export function registerSplit(parent: UpstreamCluster, legs: readonly SplitLeg[]): WeightedSplit {
  const old = splits.get(parent);
  if (old !== undefined && old.legs.length === legs.length && old.legs.every((l, i) => l.cluster === legs[i].cluster && l.weight === legs[i].weight)) return old;
  const split = createWeightedSplit(legs);
  splits.set(parent, split);
  return split;
}

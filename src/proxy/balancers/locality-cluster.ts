// Builds a Backend's cluster: a plain UpstreamCluster, or one that picks endpoints by locality when the Backend asks for it.
import { UpstreamCluster } from '../upstream-cluster.ts';
import { lastStamp } from '../clock.ts';
import type { Balancer } from './create-balancer.ts';
import { localityBalancer, localityTiers } from './locality.ts';

type ClusterArgs = ConstructorParameters<typeof UpstreamCluster>;

/**
 * Only `pick` differs: pools, breaker, budget, outliers and health checks are the base cluster's and act on the same
 * EndpointState objects the tiers hold. A process whose configs never set `locality` never creates one, so
 * `cluster.pick` stays monomorphic on the request path.
 */
export class LocalityCluster extends UpstreamCluster {
  readonly #balancer: Balancer;

  constructor(balancer: (cluster: UpstreamCluster) => Balancer, ...args: ClusterArgs) {
    super(...args);
    this.#balancer = balancer(this);
  }

  override pick(hashKey: string | undefined): ReturnType<UpstreamCluster['pick']> {
    return this.#balancer.pick(lastStamp(), hashKey);
  }
}

/**
 * A LocalityCluster when the Backend sets `locality` and its endpoints fall into more than one tier; otherwise the
 * plain cluster (exactly today's code path).
 */
export function createCluster(...args: ClusterArgs): UpstreamCluster {
  const spec = args[1];
  const self = spec.locality;
  if (self === undefined || (self.region === undefined && self.zone === undefined) || spec.endpoints.length < 2) return new UpstreamCluster(...args);
  const labels = spec.endpoints.map((e) => e.labels);
  // Only a real split into tiers is worth a balancer per tier.
  if (localityTiers(spec.endpoints.map((_e, index) => ({ index })), labels, self).length < 2) return new UpstreamCluster(...args);
  return new LocalityCluster((c) => localityBalancer(spec.loadBalancing, localityTiers(c.endpoints, labels, self)), ...args);
}

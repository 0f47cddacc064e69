// One Backend at runtime: its endpoints, one undici Pool each, the balancer, breaker, retry budget, outlier and health state.
import { readFileSync } from 'node:fs';
import { Pool, type Dispatcher } from 'undici';
import { H1Pool } from './h1-pool.ts';
import type { BackendSpec } from '../model/types.ts';
import { EndpointState } from './endpoint-state.ts';
import { createBalancer, type Balancer } from './balancers/create-balancer.ts';
import { CircuitBreaker } from './circuit-breaker.ts';
import { RetryBudget } from './retry-budget.ts';
import { OutlierDetector } from './outlier-detector.ts';
import { HealthChecker } from './health-checker.ts';
import { createCachedLookup } from './dns-cache.ts';
import { lastStamp, stamp } from './clock.ts';

/** What forwarding needs of a pool: undici's Pool (TLS, HTTP/2) or the h1 engine's H1Pool (plain HTTP/1.1). */
export interface UpstreamPool {
  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

export interface ClusterHooks {
  onBreakerState?: (backend: string, state: string) => void;
  /** Replaces the real pools (`lockgate test` answers from stubs, with no network); health checks are then off. */
  poolFactory?: (origin: string, backend: string) => UpstreamPool;
}

/** The upstream of one Backend. Lifecycle: built per config version (or reused when unchanged), closed when retired. */
export class UpstreamCluster {
  readonly name: string;
  readonly spec: BackendSpec;
  readonly endpoints: EndpointState[];
  /** Pools and per-endpoint path prefixes, indexed like `endpoints`. */
  readonly pools: UpstreamPool[];
  readonly basePaths: string[];
  readonly breaker: CircuitBreaker | null;
  readonly budget: RetryBudget;
  readonly outliers: OutlierDetector | null;
  /** Cap on requests in flight or queued per endpoint. */
  readonly maxInflightPerEndpoint: number;
  readonly #balancer: Balancer;
  readonly #health: HealthChecker | null;

  constructor(name: string, spec: BackendSpec, hooks: ClusterHooks = {}) {
    this.name = name;
    this.spec = spec;
    // Breaker, budget and outlier windows read the request path's latest stamp: no clock call of their own.
    const clock = lastStamp;
    const now = stamp();
    this.endpoints = spec.endpoints.map((e, i) => new EndpointState(i, e, now));
    this.#balancer = createBalancer(spec.loadBalancing, this.endpoints);
    this.breaker = spec.circuitBreaker.rules.length
      ? new CircuitBreaker(spec.circuitBreaker.rules, clock, { onStateChange: (state) => hooks.onBreakerState?.(name, state) })
      : null;
    this.budget = new RetryBudget({ budgetPercent: spec.retries.budgetPercent, minPerSecond: spec.retries.minPerSecond }, clock);
    this.outliers = spec.outlierDetection.enabled ? new OutlierDetector(this.endpoints, spec.outlierDetection, clock) : null;
    this.maxInflightPerEndpoint = spec.maxConnections + spec.maxPendingRequests;
    const lookup = createCachedLookup(spec.dnsRefresh);
    const tls = spec.tls;
    const connect: Record<string, unknown> = { lookup, timeout: spec.timeouts.connect };
    if (tls) {
      if (tls.caFile) connect.ca = readFileSync(tls.caFile);
      if (tls.serverName) connect.servername = tls.serverName;
      connect.rejectUnauthorized = tls.verify;
      if (tls.certFile && tls.keyFile) {
        connect.cert = readFileSync(tls.certFile);
        connect.key = readFileSync(tls.keyFile);
      }
    }
    this.pools = [];
    this.basePaths = [];
    for (const e of spec.endpoints) {
      const u = new URL(e.url);
      const isIp = /^[\d.]+$|^\[/.test(u.hostname);
      const clientTtl = isIp ? null : spec.dnsRefresh;
      if (hooks.poolFactory !== undefined) {
        this.pools.push(hooks.poolFactory(u.origin, name));
      } else if (u.protocol === 'http:' && spec.protocol !== 'h2') {
        this.pools.push(
          new H1Pool(u.origin, {
            connections: spec.maxConnections,
            keepAliveTimeout: spec.timeouts.idle,
            connectTimeout: spec.timeouts.connect,
            headersTimeout: spec.timeouts.perTry,
            bodyTimeout: spec.timeouts.perTry,
            clientTtl,
            lookup: isIp ? undefined : lookup,
          }) as unknown as UpstreamPool,
        );
      } else {
        this.pools.push(
          new Pool(u.origin, {
            connections: spec.maxConnections,
            pipelining: 1,
            keepAliveTimeout: spec.timeouts.idle,
            connectTimeout: spec.timeouts.connect,
            headersTimeout: spec.timeouts.perTry,
            bodyTimeout: spec.timeouts.perTry,
            allowH2: spec.protocol === 'h2',
            // Hostname endpoints: cap connection age so new connections pick up re-resolved addresses.
            clientTtl,
            connect,
          }),
        );
      }
      this.basePaths.push(u.pathname === '/' ? '' : u.pathname.replace(/\/$/, ''));
    }
    this.#health = spec.healthCheck.enabled && hooks.poolFactory === undefined ? new HealthChecker(this.endpoints, spec.healthCheck, {}) : null;
    this.#health?.start();
  }

  /** The endpoint to use now, or undefined when none is available. */
  pick(hashKey: string | undefined): EndpointState | undefined {
    return this.#balancer.pick(lastStamp(), hashKey);
  }

  async close(): Promise<void> {
    await this.#health?.close();
    await Promise.all(this.pools.map((p) => p.close().catch(() => p.destroy())));
  }
}

// One Backend at runtime: its endpoints, one undici Pool each, the balancer, breaker, retry budget, outlier and health state.
import { createSecureContext } from 'node:tls';
import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { createHash } from 'node:crypto';
import { Pool, buildConnector, type Dispatcher } from 'undici';
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
import { checkSpiffeServerIdentity } from './peer-identity-check.ts';
import { unixSocketPath } from '../model/value-checks.ts';

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
  /**
   * Per https endpoint, the `servername` every request is dispatched with (undefined for the rest): undici otherwise
   * takes the TLS server name from each request's Host header, so the client's Host would choose SNI and the name the
   * certificate is verified against, and every change of Host would open a new connection. See fixedServerName().
   */
  readonly serverNames: (string | undefined)[];
  readonly breaker: CircuitBreaker | null;
  readonly budget: RetryBudget;
  readonly outliers: OutlierDetector | null;
  /** Cap on requests in flight or queued per endpoint. */
  readonly maxInflightPerEndpoint: number;
  /** Hash of the TLS files' contents as this cluster's pools read them ('' without TLS): see tlsFilesChanged(). */
  readonly tlsFingerprint: string;
  /** The TLS client settings of this cluster's pools (CA, client certificate, peer SPIFFE check): opaque TCP tunnels dial with them too. */
  readonly tlsOptions: Readonly<ConnectionOptions>;
  /** The peer's SPIFFE ID when the cluster expects exactly one (a mesh service): the audience of end-user assertions; '' otherwise. */
  readonly audience: string;
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
    const files = readTlsFiles(spec);
    this.tlsFingerprint = files.fingerprint;
    this.audience = spec.tls?.spiffeIds?.length === 1 ? spec.tls.spiffeIds[0] : '';
    const tlsOpts: ConnectionOptions = {};
    const tls = spec.tls;
    if (tls) {
      if (files.ca) tlsOpts.ca = files.ca;
      if (tls.serverName) tlsOpts.servername = tls.serverName;
      tlsOpts.rejectUnauthorized = tls.verify;
      if (files.cert && files.key) {
        tlsOpts.cert = files.cert;
        tlsOpts.key = files.key;
      }
      if (tls.spiffeIds !== undefined && tls.spiffeIds.length > 0) {
        // A mesh peer is named by its SPIFFE ID, not its address; a failed identity check must fail the connection.
        tlsOpts.checkServerIdentity = checkSpiffeServerIdentity(tls.spiffeIds);
        tlsOpts.rejectUnauthorized = true;
      }
      // One secure context per cluster (its files are fixed for its life: new files make a new cluster), instead of
      // one per new connection, which tls.connect builds from ca/cert/key when given no context. Files that do not
      // load are left to each connection, which then reports the problem as before.
      try {
        tlsOpts.secureContext = createSecureContext({ ...(tlsOpts.ca ? { ca: tlsOpts.ca } : {}), ...(tlsOpts.cert ? { cert: tlsOpts.cert, key: tlsOpts.key } : {}) });
      } catch {
        // per-connection contexts, as before
      }
    }
    this.tlsOptions = tlsOpts;
    const connect: Record<string, unknown> = { lookup, timeout: spec.timeouts.connect, ...tlsOpts };
    this.pools = [];
    this.basePaths = [];
    this.serverNames = [];
    for (const e of spec.endpoints) {
      const socketPath = unixSocketPath(e.url);
      if (socketPath !== undefined) {
        this.pools.push(hooks.poolFactory !== undefined ? hooks.poolFactory(e.url, name) : unixPool(socketPath, spec));
        this.basePaths.push('');
        this.serverNames.push(undefined);
        continue;
      }
      const u = new URL(e.url);
      const isIp = /^[\d.]+$|^\[/.test(u.hostname);
      const clientTtl = isIp ? null : spec.dnsRefresh;
      // https: the configured name, else the URL's host name; an address gets no SNI (null) and is verified as an address.
      const sni = u.protocol !== 'https:' ? undefined : (tls?.serverName ?? (isIp ? null : u.hostname));
      // What requests carry (never empty, so undici never falls back to the Host header): the name, or the address.
      this.serverNames.push(sni === null ? u.hostname.replace(/^\[|\]$/g, '') : sni);
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
            // h2 to an http: endpoint is cleartext HTTP/2 with prior knowledge (h2c), e.g. a local gRPC app.
            ...(spec.protocol === 'h2' && u.protocol === 'http:' ? { useH2c: true } : {}),
            // Hostname endpoints: cap connection age so new connections pick up re-resolved addresses.
            clientTtl,
            connect: sni === undefined ? connect : fixedServerName(buildConnector({ ...connect, allowH2: spec.protocol === 'h2' } as buildConnector.BuildOptions), sni),
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

  /**
   * The TLS files now differ from what the pools were built with (rotated in place without a new `generation`):
   * the runtime then builds a new cluster instead of reusing this one. Unreadable files count as changed.
   */
  tlsFilesChanged(): boolean {
    if (this.spec.tls === undefined) return false;
    try {
      return readTlsFiles(this.spec).fingerprint !== this.tlsFingerprint;
    } catch {
      return true;
    }
  }

  async close(): Promise<void> {
    await this.#health?.close();
    await Promise.all(this.pools.map((p) => p.close().catch(() => p.destroy())));
  }
}

/**
 * A TLS connector that always uses `name` as the server name (null: none, for an address), whatever the request that
 * opened the connection carried: SNI and the certificate's name check come from the Backend, never from a client.
 */
function fixedServerName(connector: buildConnector.connector, name: string | null): buildConnector.connector {
  return (opts, callback) => connector({ ...opts, servername: name ?? undefined }, callback);
}

/**
 * An endpoint on a Unix domain socket (a local app beside its sidecar): undici, which dials the path, speaking
 * HTTP/1.1, or h2c with protocol h2. The origin only names the connection; requests keep their own Host.
 */
function unixPool(socketPath: string, spec: BackendSpec): UpstreamPool {
  return new Pool('http://localhost', {
    socketPath,
    connections: spec.maxConnections,
    pipelining: 1,
    keepAliveTimeout: spec.timeouts.idle,
    connectTimeout: spec.timeouts.connect,
    headersTimeout: spec.timeouts.perTry,
    bodyTimeout: spec.timeouts.perTry,
    allowH2: spec.protocol === 'h2',
    ...(spec.protocol === 'h2' ? { useH2c: true } : {}),
  });
}

/** The CA bundle, client certificate and key of a Backend's TLS settings, read now, with a hash of their contents. */
function readTlsFiles(spec: BackendSpec): { ca?: Buffer; cert?: Buffer; key?: Buffer; fingerprint: string } {
  const tls = spec.tls;
  if (tls === undefined) return { fingerprint: '' };
  const ca = tls.caFile ? readFileSync(tls.caFile) : undefined;
  const withCert = tls.certFile !== undefined && tls.keyFile !== undefined;
  const cert = withCert ? readFileSync(tls.certFile!) : undefined;
  const key = withCert ? readFileSync(tls.keyFile!) : undefined;
  const h = createHash('sha256');
  for (const b of [ca, cert, key]) {
    h.update(String(b?.byteLength ?? -1));
    h.update(':');
    if (b) h.update(b);
  }
  return { ca, cert, key, fingerprint: h.digest('hex') };
}

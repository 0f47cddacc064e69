// The config vocabulary as plain data: what a validated config looks like after defaults are applied.

/** Where a value came from in a source file (1-based line and column). */
export interface SourcePos {
  file: string;
  line: number;
  col: number;
}

/** One problem in a config: validation never throws, it returns a list of these. */
export interface Problem {
  file: string;
  line: number;
  col: number;
  /** JSON-pointer-like path inside the document, e.g. `spec.listeners[0].port`. */
  path: string;
  message: string;
}

export interface Metadata {
  name: string;
  namespace: string;
  labels: Record<string, string>;
}

export interface Resource<K extends string, S> {
  apiVersion: 'lockgate.dev/v1alpha1';
  kind: K;
  metadata: Metadata;
  spec: S;
  /** Position of the document's `kind:` line, for messages raised after validation. */
  source?: SourcePos;
}

// ---------- Gateway ----------

export interface TlsCertificate {
  certFile: string;
  keyFile: string;
  /** SNI names served by this certificate; empty means the default certificate. */
  hostnames: string[];
}

export interface ListenerTls {
  certificates: TlsCertificate[];
  minVersion: 'TLSv1.2' | 'TLSv1.3';
}

export interface Listener {
  name: string;
  address: string;
  port: number;
  protocol: 'http' | 'https' | 'h2';
  tls?: ListenerTls;
  /** Accept a PROXY protocol header (v1, v2, or either) before HTTP. */
  proxyProtocol: 'off' | 'v1' | 'v2' | 'any';
}

export interface Http2Limits {
  maxConcurrentStreams: number;
  maxHeaderListSize: number;
  /** RST_STREAM frames a client may send per second before the connection is closed (rapid reset). */
  maxResetsPerSecond: number;
}

export interface GatewayLimits {
  maxConnections: number;
  maxHeaderSize: number;
  maxHeaderCount: number;
  maxBodySize: number;
  maxUrlLength: number;
  /** Time to receive the whole header block (ms). */
  headerTimeout: number;
  /** Time to receive the whole request (ms). */
  requestTimeout: number;
  /** Keep-alive idle timeout (ms); above common load-balancer idle timeouts (60 s). */
  idleTimeout: number;
  http2: Http2Limits;
}

export interface GatewaySpec {
  listeners: Listener[];
  limits: GatewayLimits;
  /** CIDRs whose X-Forwarded-* and x-request-id are trusted. */
  trustedProxies: string[];
  /** Max `Via` hops before 508 Loop Detected. */
  maxHops: number;
  admin: { address: string; port: number; enabled: boolean };
  accessLog: { enabled: boolean; path: string; bufferLines: number };
  overload: { maxEventLoopDelay: number; retryAfter: number };
  tracing: { otlpEndpoint?: string; sampleRatio: number; serviceName: string };
}

// ---------- Api ----------

export interface HeaderMatch {
  name: string;
  exact?: string;
  prefix?: string;
  present?: boolean;
}

export interface Operation {
  name: string;
  /** Upper-case methods; `['*']` matches any. */
  methods: string[];
  /**
   * Relative to the Api path. `/items` exact, `/items/*` prefix (segment boundary),
   * `/items/{id}` one-segment template (templates may mix: `/a/{x}/b/*`).
   */
  urlTemplate: string;
  headers: HeaderMatch[];
  backend?: string;
}

export interface PathOptions {
  escapedSlashes: 'reject' | 'decode';
  backslash: 'reject' | 'slash';
  semicolon: 'keep' | 'strip' | 'reject';
}

export interface ApiSpec {
  displayName?: string;
  /** Hostnames: exact `api.example.com`, wildcard `*.example.com`; empty = any host. */
  hostnames: string[];
  /** Base path, `/` or `/orders` (no trailing slash except root). */
  path: string;
  backend: string;
  errorStyle: 'lockgate' | 'apim';
  /** When true the base path is removed before forwarding. */
  stripPath: boolean;
  pathOptions: PathOptions;
  /** Empty: every path under `path` and every method goes to `backend`. */
  operations: Operation[];
  /** Requests need an active subscription key (reference/apim.md §1.3). */
  subscriptionRequired: boolean;
  subscriptionKeyParameterNames: { header: string; query: string };
}

// ---------- Backend ----------

export interface Endpoint {
  /** `http://host:port` or `https://host:port`. */
  url: string;
  weight: number;
}

export type LbAlgorithm = 'round-robin' | 'weighted-round-robin' | 'least-request' | 'ewma' | 'consistent-hash';

export interface LoadBalancing {
  algorithm: LbAlgorithm;
  /** For consistent-hash: what to hash on. */
  hashOn?: { header?: string; cookie?: string; clientIp?: boolean };
}

export interface HealthCheck {
  enabled: boolean;
  path: string;
  interval: number;
  timeout: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  expectedStatuses: Array<{ min: number; max: number }>;
}

export interface OutlierDetection {
  enabled: boolean;
  consecutiveErrors: number;
  baseEjectionTime: number;
  maxEjectionPercent: number;
}

export interface RetryPolicy {
  /** Extra attempts after the first. */
  attempts: number;
  /** Retry on these statuses (plus connect failures and resets). */
  statuses: number[];
  methods: string[];
  /** Retries may add at most this percent of the request rate, plus `minPerSecond`. */
  budgetPercent: number;
  minPerSecond: number;
  backoff: number;
}

export interface BreakerRule {
  name: string;
  /** Trip when `count` failures, or `percentage` of requests (with at least `minRequests`), fail within `interval`. */
  count?: number;
  percentage?: number;
  minRequests: number;
  interval: number;
  statusCodeRanges: Array<{ min: number; max: number }>;
  /** Connect failures, resets and timeouts count as failures too. */
  errorReasons: boolean;
  tripDuration: number;
  acceptRetryAfter: boolean;
}

export interface UpstreamTls {
  caFile?: string;
  serverName?: string;
  verify: boolean;
  certFile?: string;
  keyFile?: string;
}

export interface BackendSpec {
  endpoints: Endpoint[];
  loadBalancing: LoadBalancing;
  healthCheck: HealthCheck;
  outlierDetection: OutlierDetection;
  timeouts: { connect: number; perTry: number; idle: number };
  retries: RetryPolicy;
  circuitBreaker: { rules: BreakerRule[] };
  /** Requests waiting for a connection per endpoint; 503 beyond it. */
  maxPendingRequests: number;
  /** Connections per endpoint. */
  maxConnections: number;
  /** Re-resolve hostnames this often when DNS gives no TTL (ms). */
  dnsRefresh: number;
  protocol: 'http1' | 'h2';
  tls?: UpstreamTls;
}

// ---------- Product ----------

export interface ProductSpec {
  displayName?: string;
  description?: string;
  /** Qualified `namespace/name` of each Api after validation. */
  apis: string[];
  subscriptionRequired: boolean;
  approvalRequired: boolean;
  state: 'published' | 'notPublished';
  subscriptionsLimit?: number;
}

export type GatewayResource = Resource<'Gateway', GatewaySpec>;
export type ProductResource = Resource<'Product', ProductSpec>;
export type ApiResource = Resource<'Api', ApiSpec>;
export type BackendResource = Resource<'Backend', BackendSpec>;
export type AnyResource = GatewayResource | ApiResource | BackendResource | ProductResource;

/** A whole validated config: what the data plane builds from. Later kinds add fields here. */
export interface Config {
  gateway: GatewayResource;
  apis: ApiResource[];
  backends: Map<string, BackendResource>;
  products: ProductResource[];
  /** Hash of the source text, the version shown in /config and metrics. */
  version: string;
  files: string[];
}

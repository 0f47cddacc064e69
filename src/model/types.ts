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
  /** `request`: ask for a client certificate (validate-client-certificate checks it). */
  clientCertificate: 'none' | 'request';
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
  /** Largest body a policy may buffer. */
  maxBufferedBody: number;
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

export interface Operation extends OperationDescription {
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

/**
 * What an OpenAPI import (src/model/openapi-import.ts) adds to an operation; not written in config (so not in the
 * config schema), and absent from hand-written operations unless they replace an imported one.
 */
export interface OperationDescription {
  operationId?: string;
  summary?: string;
  /** Path-item and operation parameters merged (the operation's win); path parameters always required. */
  parameters?: OperationParameter[];
  requestBody?: OperationRequestBody;
  /** By status: `"200"`, a class `"4XX"`, or `"default"`. */
  responses?: Record<string, OperationResponse>;
  /** Where an imported operation is defined (its method key in the OpenAPI document). */
  source?: SourcePos;
}

/** A JSON Schema (draft 2020-12; OpenAPI 3.0 schemas are converted). Shared components live in its root `$defs`. */
export type JsonSchema = Record<string, unknown> | boolean;

export interface OperationParameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required: boolean;
  schema?: JsonSchema;
  /** OpenAPI serialization: `simple`, `form`, `label`, `matrix`, `spaceDelimited`, `pipeDelimited`, `deepObject`. */
  style?: string;
  explode?: boolean;
  /** Set when the parameter is described by `content` rather than `schema` (the one media type). */
  contentType?: string;
  /** A path parameter's name in `urlTemplate` when the OpenAPI name is not an identifier (`pet-id` → `pet_id`). */
  templateName?: string;
}

export interface OperationExample {
  summary?: string;
  value?: unknown;
  externalValue?: string;
}

export interface OperationMediaType {
  schema?: JsonSchema;
  example?: unknown;
  /** By name, in document order. */
  examples?: Record<string, OperationExample>;
}

export interface OperationRequestBody {
  required: boolean;
  /** By media type or range as written: `application/json`, `application/*`, `*\/*`. */
  content: Record<string, OperationMediaType>;
}

export interface OperationResponse {
  description?: string;
  headers?: Record<string, { required: boolean; schema?: JsonSchema }>;
  content: Record<string, OperationMediaType>;
}

/** `spec.import` after loading: the document's absolute path and what was read from it. */
export interface ApiImport extends OpenApiInfo {
  openapi: string;
}

/** Read from the imported document (not written in config). */
export interface OpenApiInfo {
  /** The document's `openapi` field, e.g. `3.0.3`. */
  openapiVersion?: string;
  title?: string;
  /** `servers[0].url`, kept for reference; routing uses the Api's own path and backend. */
  serverUrl?: string;
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
  /** OpenAPI import; its operations are appended to `operations` at load (hand-written ones win). */
  import?: ApiImport;
  /** Empty: every path under `path` and every method goes to `backend`. */
  operations: Operation[];
  /** Requests need an active subscription key (reference/apim.md §1.3). */
  subscriptionRequired: boolean;
  subscriptionKeyParameterNames: { header: string; query: string };
  /** Qualified `namespace/name` of the ApiVersionSet after validation. */
  versionSet?: string;
  version?: string;
  revision: number;
  /** Qualified `namespace/name` of the Api this one is a non-current revision of. */
  revisionOf?: string;
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

// ---------- ApiVersionSet ----------

export interface ApiVersionSetSpec {
  displayName?: string;
  /** Where a request names the version: `/path/v2/…`, a header, or a query parameter. */
  scheme: 'path' | 'header' | 'query';
  headerName: string;
  queryName: string;
  /** The version a request without one goes to; unset: such a request gets 404. */
  defaultVersion?: string;
}

// ---------- ApiPolicy ----------

export type PolicySection = 'inbound' | 'backend' | 'outbound' | 'onError';

/** One policy of a section after validation: its name, its decoded attributes, and where it was written. */
export interface PolicyEntry {
  name: string;
  /** Decoded attributes; nested policy lists (choose, retry) hold PolicyEntry[] too. */
  attrs: Record<string, unknown>;
  file: string;
  line: number;
  col: number;
  /** `spec.inbound[2]`, `spec.inbound[0].choose.when[1].policies[0]`: for LastError.Path and messages. */
  path: string;
  /** The scope of the ApiPolicy it was written in (context.LastError.Scope); '' for built-ins and fragments. */
  scope?: 'global' | 'product' | 'api' | 'operation';
}

/** An expression found in an ApiPolicy, with its place, so a higher layer can compile and report it. */
export interface ExpressionSite {
  source: string;
  file: string;
  line: number;
  /** Column of the expression's first character (after `@(`). */
  col: number;
  path: string;
}

export interface PolicyScope {
  global?: boolean;
  product?: string;
  api?: string;
  operation?: string;
}

export interface ApiPolicySpec {
  /** Qualified `namespace/name` for product and api after validation. */
  scope: PolicyScope;
  inbound?: PolicyEntry[];
  backend?: PolicyEntry[];
  outbound?: PolicyEntry[];
  onError?: PolicyEntry[];
  /** Filled by validation: every expression in the document. */
  expressions: ExpressionSite[];
}

/** A PolicyFragment (API Management's policy fragment): a named list of policies that include-fragment inserts. */
export interface PolicyFragmentSpec {
  description?: string;
  /** Entries without a section (checked against the including section when an ApiPolicy includes the fragment). */
  policies: PolicyEntry[];
  /** Filled by validation: every expression in the fragment. */
  expressions: ExpressionSite[];
}

export type PolicyFragmentResource = Resource<'PolicyFragment', PolicyFragmentSpec>;

export type GatewayResource = Resource<'Gateway', GatewaySpec>;
export type ApiPolicyResource = Resource<'ApiPolicy', ApiPolicySpec>;
export type ApiVersionSetResource = Resource<'ApiVersionSet', ApiVersionSetSpec>;
export type ProductResource = Resource<'Product', ProductSpec>;
export type ApiResource = Resource<'Api', ApiSpec>;
export type BackendResource = Resource<'Backend', BackendSpec>;
export type AnyResource = GatewayResource | ApiResource | BackendResource | ProductResource | ApiPolicyResource | ApiVersionSetResource | PolicyFragmentResource;

/** A whole validated config: what the data plane builds from. Later kinds add fields here. */
export interface Config {
  gateway: GatewayResource;
  apis: ApiResource[];
  backends: Map<string, BackendResource>;
  products: ProductResource[];
  apiPolicies: ApiPolicyResource[];
  /** Policy fragments; their policies are already inserted where ApiPolicies include them. */
  policyFragments?: PolicyFragmentResource[];
  /** By qualified `namespace/name`. */
  versionSets: Map<string, ApiVersionSetResource>;
  /** Hash of the source text, the version shown in /config and metrics. */
  version: string;
  files: string[];
}

// The config vocabulary as plain data: what a validated config looks like after defaults are applied.
import type { NamedValueSpec } from './named-value-types.ts';
import type { ApiAuthentication, IdentityProviderSpec } from './identity-types.ts';

export type { ApiAuthentication, IdentityProviderSpec } from './identity-types.ts';

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
  /**
   * `request`: ask for a client certificate (validate-client-certificate checks it); `require`: the handshake fails
   * without one that chains to `clientCaFile` (mutual TLS, as a sidecar's inbound listener).
   */
  clientCertificate: 'none' | 'request' | 'require';
  /** PEM bundle client certificates must chain to (absolute path after validation). */
  clientCaFile?: string;
  /** Permissive mTLS: the TLS port also accepts plaintext HTTP (sniffed), for migrating services into the mesh. */
  plaintext?: boolean;
  /** Opaque; a change makes the data plane reload the certificate files (rotation). */
  generation?: string;
}

export interface Listener {
  name: string;
  /** An IP address or hostname, or `unix:/path` (a Unix domain socket, mode 0600; `port` is then ignored). */
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
  /** Set when this gateway (or sidecar) is a mesh node; absent for a plain gateway. */
  mesh?: GatewayMesh;
}

/** A data-plane node's mesh settings. */
export interface GatewayMesh {
  /** Requests that have crossed this many mesh hops are refused (508). */
  maxHops: number;
  /** What happens to a call no AccessPolicy allows or denies. */
  defaultAccess: AccessDefault;
  /** The node's own SPIFFE ID. */
  identity?: string;
  /** Signed end-user assertions between hops (identity issue §2). */
  assertions?: { keysFile: string; exchange: boolean; userHeaders: boolean; forwardBearer: boolean };
  /** Outbound opaque TCP: the services (and their tcp ports) a `CONNECT host:port` may reach. */
  tcpRoutes?: MeshTcpRoute[];
  /** Inbound opaque TCP: where tunnels from mesh peers end. */
  tcpInbound?: MeshTcpInbound;
}

/** One service a CONNECT may reach: by these hostnames, on these tcp ports, through this Backend's sidecars. */
export interface MeshTcpRoute {
  /** Qualified `namespace/name` of the MeshService. */
  service: string;
  hostnames: string[];
  ports: number[];
  /** The Backend whose endpoints are the service's sidecars: `name` (the Gateway's namespace) or `namespace/name`. */
  backend: string;
}

/** Tunnels ending at this node reach `host:port` for a declared port, after the service's AccessPolicies allow them. */
export interface MeshTcpInbound {
  /** Qualified `namespace/name` of the MeshService beside which this node stands. */
  service: string;
  host: string;
  ports: number[];
  /** Time to connect to the app (ms). */
  connectTimeout: number;
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
  /** Overrides the Api's `authentication` for this operation. */
  authentication?: ApiAuthentication;
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
  /** Qualified `namespace/name` of a MeshService: this Api is a sidecar's inbound route for it (its AccessPolicies apply). */
  meshService?: string;
  /** End-user authentication by IdentityProviders (bearer tokens, browser login). */
  authentication?: ApiAuthentication;
}

// ---------- Backend ----------

export interface Endpoint {
  /** `http://host:port`, `https://host:port`, or `unix:/path` (plaintext over a Unix domain socket). */
  url: string;
  weight: number;
  /**
   * Free-form labels; `region`, `zone` (locality preference) and `version` (MeshRoute subsets) are read.
   * Always set (`{}`) on a decoded config; optional so endpoints built in code need not spell it.
   */
  labels?: Record<string, string>;
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
  /** Expected peer SPIFFE IDs (any one), checked instead of the hostname. */
  spiffeIds?: string[];
  /** Opaque; a change makes the data plane open new connection pools (certificate rotation). */
  generation?: string;
}

/** One leg of a split Backend: a qualified `namespace/name` of another Backend and its relative weight. */
export interface BackendSplit {
  backend: string;
  weight: number;
}

/** The caller's own locality: endpoints whose `region`/`zone` labels match are preferred. */
export interface Locality {
  region?: string;
  zone?: string;
}

export interface BackendSpec {
  /** `url`: endpoints listed here; `mesh`: endpoints of `meshService` from the registry at run time. */
  type: 'url' | 'mesh';
  /** Empty for a split Backend, and possibly for a mesh Backend. */
  endpoints: Endpoint[];
  /** Weighted split over other (non-split) Backends, qualified after validation; such a Backend has no endpoints. */
  split?: BackendSplit[];
  /** Delay or abort a percentage of requests (resilience testing). */
  fault?: MeshFault;
  locality?: Locality;
  /** For `type: mesh`: qualified `namespace/name` of the MeshService. */
  meshService?: string;
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
  /** In a block scalar: the content's indentation, for positions on the expression's later lines. */
  indent?: number;
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

// ---------- Mesh (re-exported by mesh-types.ts) ----------

/** Mesh-wide access default: a new mesh starts in `audit` so services can be onboarded before rules are complete. */
export type AccessDefault = 'allow' | 'audit' | 'deny';
export type MtlsMode = 'strict' | 'permissive';

/** `kind: Mesh`: one per config (a built-in default when absent), the settings every node shares. */
export interface MeshSpec {
  /** SPIFFE trust domain, e.g. `lockgate.local`. */
  trustDomain: string;
  /** Default mTLS mode of a service's inbound listener. */
  mtls: MtlsMode;
  /** What happens to a call no AccessPolicy allows or denies. */
  defaultAccess: AccessDefault;
  /** Workload certificate lifetime (ms): 10 s to 90 days, 24 h by default. */
  certificateLifetime: number;
  /** Requests that have crossed this many sidecars are refused (508): a routing loop. */
  maxHops: number;
}

/** Protocol of a service port: `http` (HTTP/1.1 and h2c sniffed), `grpc`, or `tcp` (opaque, passed through). */
export type MeshPortProtocol = 'http' | 'grpc' | 'tcp';

export interface MeshPort {
  name: string;
  port: number;
  protocol: MeshPortProtocol;
}

export interface MeshTimeouts {
  /** Whole request, first byte sent to last byte received (ms); 0 = none. */
  request: number;
  /** Per attempt (ms); 0 = the request timeout. */
  perTry: number;
  connect: number;
  idle: number;
}

/** `kind: MeshService`: a service in the mesh and how its callers reach it. */
export interface MeshServiceSpec {
  ports: MeshPort[];
  /** Overrides the mesh-wide mode for this service's inbound side. */
  mtls?: MtlsMode;
  loadBalancing: LoadBalancing;
  timeouts: MeshTimeouts;
  retries: RetryPolicy;
  outlierDetection: OutlierDetection;
  /** Prefer endpoints in the caller's zone, then region; fail over to the next locality when none is healthy. */
  localityPreference: boolean;
}

export interface MeshRouteMatch {
  /** `exact` or `prefix` (segment-wise, as Gateway API's PathPrefix). */
  path?: { type: 'exact' | 'prefix'; value: string };
  /** Header name (lower-case) → exact value. */
  headers: Record<string, string>;
  methods: string[];
}

export interface MeshRouteBackend {
  /** Qualified `namespace/name` of a MeshService after validation. */
  service: string;
  /** Endpoint label `version` to select (a subset); absent = every endpoint of the service. */
  version?: string;
  weight: number;
}

export interface MeshFault {
  delay?: { percent: number; duration: number };
  abort?: { percent: number; status: number };
}

export interface MeshRouteRule {
  name?: string;
  /** Empty = every request. A rule matches when any one of its matches does. */
  matches: MeshRouteMatch[];
  /** Weighted split (smooth weighted round-robin, so splits are exact); weight 0 gets nothing. */
  backends: MeshRouteBackend[];
  timeouts?: Partial<MeshTimeouts>;
  retries?: Partial<RetryPolicy>;
  fault?: MeshFault;
}

/** `kind: MeshRoute`: routing for calls to one MeshService (a producer route). First matching rule wins. */
export interface MeshRouteSpec {
  /** Qualified `namespace/name` of the MeshService whose callers this route applies to. */
  service: string;
  rules: MeshRouteRule[];
}

/** A string criterion: a value (equal), a list (any of them), or one operator. */
export type StringMatch = string | string[] | { is?: string; in?: string[]; startsWith?: string; endsWith?: string; contains?: string };
/** A list criterion (groups, claims): a value (the list has it), a list (has any), or one operator. */
export type ListMatch = string | string[] | { has?: string; hasAny?: string[]; hasAll?: string[] };

/** `time`: when a rule holds, in `timeZone` (IANA, default UTC). Every field present must hold. */
export interface TimeWindow {
  /** `HH:MM` (24 h): from this time of day (inclusive)… */
  after?: string;
  /** …until this one (exclusive); `before` < `after` spans midnight. */
  before?: string;
  /** `mon`…`sun` and ranges `mon-fri`. */
  days?: string[];
  /** `YYYY-MM-DD` (inclusive) and `until` (exclusive), in `timeZone`. */
  from?: string;
  until?: string;
  timeZone: string;
}

/**
 * One AccessPolicy rule: every criterion present must match (AND); a list matches any of its entries (OR).
 * `all`, `any` and `none` hold nested rules (and, or, and "none of them matches").
 */
export interface AccessRule {
  /**
   * SPIFFE IDs (`spiffe://…`) or service names (written `orders` or `shop/orders`; always qualified `namespace/name`
   * after validation, in the policy's namespace); `*` = any authenticated workload; empty = any caller.
   * The singular `source` is folded in here.
   */
  sources: string[];
  /** Upper-case; empty = any. The singular `method` is folded in here. */
  methods: string[];
  /** Exact paths, or prefixes written with a trailing `*` (`/admin/*`); empty = any. The singular `path` is folded in. */
  paths: string[];
  /** Empty = any. */
  ports: number[];
  /** true: an end user was identified (a validated token or assertion); false: none was. */
  authenticated?: boolean;
  /** The end user's `sub`. */
  user?: StringMatch;
  email?: StringMatch;
  /** The domain of the end user's `email` (lower-case). */
  domain?: StringMatch;
  groups?: ListMatch;
  /** `claim/<path>` criteria, by dotted path into the claims. */
  claims?: Record<string, ListMatch>;
  /** CIDRs or addresses of the client (the gateway's client, a sidecar's peer). */
  sourceIp?: string[];
  time?: TimeWindow;
  /** A CEL expression over `context` that must be true. */
  cel?: string;
  /**
   * true: the end user holds an approved, unexpired grant (an approved AccessRequest, distributed as an AccessGrant)
   * for this target that covers the method and path; false: holds none.
   */
  grant?: boolean;
  all?: AccessRule[];
  any?: AccessRule[];
  none?: AccessRule[];
}

/** `kind: AccessPolicy`: who may call a service (mesh) or an Api/operation (gateway). Deny rules win over allow rules. */
export interface AccessPolicySpec {
  /**
   * What it protects: a MeshService (qualified `namespace/name`) and its ports (empty = all), or an Api of the
   * gateway and optionally one of its operations. Exactly one of `service` and `api`.
   */
  target: { service?: string; ports: number[]; api?: string; operation?: string };
  /** `audit`: log what would be denied, allow it. */
  mode: 'enforce' | 'audit';
  allow: AccessRule[];
  deny: AccessRule[];
  /** The rules' `cel` expressions, where they are (filled in by validation, checked a layer up). */
  expressions?: ExpressionSite[];
  /** Just-in-time access to this target: who approves requests, how many, for how long at most. */
  requests?: AccessRequestSettings;
}

/** `AccessPolicy.spec.requests`: how AccessRequests for the policy's target are reviewed. */
export interface AccessRequestSettings {
  /** Groups whose members may approve or deny (never their own request). */
  approvers: string[];
  /** Approvals needed. */
  minApprovals: number;
  /** Groups whose one approval is enough (flagged in the audit trail). */
  forceApprovers: string[];
  /** Longest access a request may ask for (ms); longer asks are capped. */
  maxDuration: number;
  /** A request not reviewed within this (ms) expires. */
  reviewWithin: number;
}

/**
 * `kind: AccessGrant`: an approved AccessRequest as nodes see it (made by the control plane, never applied by hand):
 * `user` may call `target` with `methods` on `paths` from `from` until `until` (exclusive).
 */
export interface AccessGrantSpec {
  /** The AccessRequest id. */
  request: string;
  /** The end user's `sub`. */
  user: string;
  target: { service?: string; api?: string; operation?: string };
  /** Upper-case; empty = any. */
  methods: string[];
  /** Exact paths or `/x/*` prefixes; empty = any. */
  paths: string[];
  /** RFC 3339 times. */
  from: string;
  until: string;
  approvedBy: string[];
}

export type AccessGrantResource = Resource<'AccessGrant', AccessGrantSpec>;

export type MeshResource = Resource<'Mesh', MeshSpec>;
export type MeshServiceResource = Resource<'MeshService', MeshServiceSpec>;
export type MeshRouteResource = Resource<'MeshRoute', MeshRouteSpec>;
export type AccessPolicyResource = Resource<'AccessPolicy', AccessPolicySpec>;


export type GatewayResource = Resource<'Gateway', GatewaySpec>;
export type ApiPolicyResource = Resource<'ApiPolicy', ApiPolicySpec>;
export type ApiVersionSetResource = Resource<'ApiVersionSet', ApiVersionSetSpec>;
export type ProductResource = Resource<'Product', ProductSpec>;
export type ApiResource = Resource<'Api', ApiSpec>;
export type BackendResource = Resource<'Backend', BackendSpec>;
export type NamedValueResource = Resource<'NamedValue', NamedValueSpec>;
export type IdentityProviderResource = Resource<'IdentityProvider', IdentityProviderSpec>;

/** `kind: RoleBinding`: a role at the admin API for an IdentityProvider's groups or users, over namespaces. */
export interface RoleBindingSpec {
  role: 'viewer' | 'operator' | 'approver' | 'admin';
  /** As written ("name" in the binding's namespace or "namespace/name"). */
  provider: string;
  groups: string[];
  users: string[];
  /** Namespaces, or ["*"]. */
  namespaces: string[];
  /** As written: "namespace/name", or "name" (that name in any of the bound namespaces). */
  apis: string[];
  services: string[];
}
export type RoleBindingResource = Resource<'RoleBinding', RoleBindingSpec>;
export type AnyResource =
  | GatewayResource
  | ApiResource
  | BackendResource
  | ProductResource
  | ApiPolicyResource
  | ApiVersionSetResource
  | PolicyFragmentResource
  | MeshResource
  | MeshServiceResource
  | MeshRouteResource
  | AccessPolicyResource
  | NamedValueResource
  | IdentityProviderResource
  | AccessGrantResource
  | RoleBindingResource;

/** A whole validated config: what the data plane builds from. Later kinds add fields here. */
export interface Config {
  /** NamedValues as written (values of `secret` and `env` ones are not here: only where `{{name}}` was substituted). */
  namedValues?: NamedValueResource[];
  /**
   * Resources that had `{{name}}` references, substituted → as written. Views of the config (the admin port's
   * `/config`) show the written form, so a secret substituted into a header never appears in them.
   */
  unresolved?: Map<object, object>;
  gateway: GatewayResource;
  apis: ApiResource[];
  backends: Map<string, BackendResource>;
  products: ProductResource[];
  apiPolicies: ApiPolicyResource[];
  /** Policy fragments; their policies are already inserted where ApiPolicies include them. */
  policyFragments?: PolicyFragmentResource[];
  /** By qualified `namespace/name`. */
  versionSets: Map<string, ApiVersionSetResource>;
  /** The `kind: Mesh` document, or DEFAULT_MESH (namespace `default`, name `default`) when there is none. */
  mesh: MeshResource;
  /** By qualified `namespace/name`. */
  meshServices: Map<string, MeshServiceResource>;
  meshRoutes: MeshRouteResource[];
  accessPolicies: AccessPolicyResource[];
  /** Approved just-in-time access (AccessGrant documents the control plane adds to snapshots). */
  accessGrants?: AccessGrantResource[];
  /** IdentityProviders by qualified `namespace/name` (absent: none). */
  identityProviders?: Map<string, IdentityProviderResource>;
  /** Admin-API roles (absent: none; only the control plane reads them). */
  roleBindings?: RoleBindingResource[];
  /** Hash of the source text, the version shown in /config and metrics. */
  version: string;
  files: string[];
}

// One request's state while its policy pipeline runs: the request and response as policies change them, variables, claims and the last error.
import type { AssertionService } from './assertion.ts';
import type { Operation, PolicySection } from '../model/types.ts';
import type { SubscriptionRecord } from '../model/subscription.ts';
import type { CompiledAccess } from '../policy/access-decision.ts';
import type { Exchange } from './exchange.ts';
import type { ErrorStyle } from './error-response.ts';
import type { FinishFn } from './forward-handler.ts';
import type { ResponseCapture } from './response-capture.ts';
import type { UpstreamCluster } from './upstream-cluster.ts';

/** The parts of a route the pipeline reads (RouteTarget has them; kept narrow to avoid an import cycle). */
export interface PolicyRoute {
  api: string;
  operation: string;
  cluster: UpstreamCluster;
  errorStyle: ErrorStyle;
}

/** What a request handler gives a pipeline so forward-request can do what the fast path does. */
export interface ForwardBits {
  request: { aborted: boolean; once(event: 'aborted', f: () => void): unknown };
  hashKey: string | undefined;
  finish: FinishFn;
  /** Most bytes of a response body buffered for outbound policies. */
  maxBufferedBody: number;
  /** The client response, for forward-request's direct path. */
  res: unknown;
  /** Mints the end user's assertion for mesh backends (`gateway.mesh.assertions`); null when not configured. */
  assertions?: AssertionService | null;
}

/** Where a pipeline's route is: the Api, operation and templates. */
export interface RouteFacts {
  /** `namespace/name` of the Api. */
  apiKey: string;
  api: string;
  operation: string;
  /** The operation's full URL template (Api path + operation template), for rewrite-uri's parameters. */
  urlTemplate: string;
  /** The Api's path (removed before forwarding when stripPath is on). */
  apiPath: string;
  stripPrefix: string;
  /** The Gateway's name (context.Deployment.GatewayId). */
  gateway: string;
  /** The operation as configured or imported (schemas and examples for mock-response and validation). */
  spec: Operation | null;
}

/** API Management's context.LastError. */
export interface LastError {
  source: string;
  reason: string;
  message: string;
  scope: string;
  section: string;
  path: string;
  policyId: string;
}

export interface PolicyRequest {
  method: string;
  /** Path sent to the backend (after the Api's prefix is stripped, after rewrite-uri), without the query. */
  path: string;
  /** '' or '?a=1&b=2'. */
  query: string;
  /** Backend request headers as a flat [name, value, …] list (lower-case names), changed in place by policies. */
  headers: string[];
  /** The buffered body, or null when the request has none or it streams through. */
  body: Buffer | null;
  /** The client's body stream when it is not buffered. */
  stream: AsyncIterable<Buffer> | null;
  /** The path the client sent (canonical), for expressions and rewrite-uri's template parameters. */
  originalPath: string;
  originalQuery: string;
}

export interface PolicyResponse {
  status: number;
  reason: string;
  /** Flat [name, value, …] list, lower-case names. */
  headers: string[];
  /** Buffered body; null with `capture` set means the body still streams from the backend. */
  body: Buffer | null;
  capture: ResponseCapture | null;
}

/** Thrown by a policy (or raised for a backend failure): jumps to onError with this response as the default. */
export class PolicyError extends Error {
  readonly reason: string;
  readonly source: string;
  readonly response: PolicyResponse;

  constructor(source: string, reason: string, message: string, response: PolicyResponse) {
    super(message);
    this.source = source;
    this.reason = reason;
    this.response = response;
  }
}

/** A JSON error response in API Management's shape: `{"statusCode":…,"message":…}`. */
export function jsonResponse(status: number, body: unknown, headers: string[] = []): PolicyResponse {
  const text = Buffer.from(JSON.stringify(body));
  return { status, reason: '', headers: ['content-type', 'application/json; charset=utf-8', ...headers], body: text, capture: null };
}

export function errorResponse(status: number, message: string, headers: string[] = []): PolicyResponse {
  return jsonResponse(status, { statusCode: status, message }, headers);
}

/** A route's gateway AccessPolicies, as the pipeline needs them to decide (access-gate.ts). */
export interface RouteAccess {
  readonly compiled: CompiledAccess;
  readonly target: { readonly api: string; readonly operation: string };
  /** How the gateway names itself in a denial: `gateway <name>`. */
  readonly hop: string;
}

export class PolicyContext {
  readonly ex: Exchange;
  readonly route: PolicyRoute;
  readonly req: PolicyRequest;
  res: PolicyResponse | null = null;
  readonly variables = new Map<string, unknown>();
  /** Claims of the token validate-jwt accepted (null when none ran). */
  claims: Record<string, unknown> | null = null;
  /** The gateway AccessPolicies this route must pass; null once decided (or when none targets it). */
  access: RouteAccess | null = null;
  lastError: LastError | null = null;
  section: PolicySection = 'inbound';
  /** Set by return-response / mock-response / cors: the pipeline ends and `res` is sent. */
  stopped = false;
  /** Set with `stopped` by cache-lookup on a hit: outbound still runs, from the step after the one named here. */
  resumeOutboundAfter: string | null = null;
  /** The exchange went to telemetry (finishOnce). */
  finished = false;
  /** A listener drops a streaming backend response when the client leaves (policy-forward.ts), added once. */
  watchingClose = false;
  /** The cluster forward-request sends to (set-backend-service changes it). */
  cluster: UpstreamCluster;
  /** Base path set-backend-service put in front of the request path ('' for none). */
  backendBase = '';
  /** The product whose scope applies ('' for none). */
  product = '';
  /** Where the request is (Api, operation, templates) for expressions and rewrite-uri. */
  facts: RouteFacts | null = null;
  /** The subscription whose key opened the request, or null. */
  subscription: SubscriptionRecord | null = null;
  /** forward-request collects the whole response body (an outbound policy reads it). */
  bufferResponse = false;
  /** Nothing runs after the backend (no outbound or onError policies): forward-request may answer the client itself. */
  directAllowed = false;
  /** forward-request handed the response to the client itself: there is nothing left to send. */
  sentDirect = false;
  /** Headers added to whatever response is sent (cors on an allowed cross-origin request). */
  readonly responseHeaders: string[] = [];
  /** Work left for when the response is known (deferred rate-limit and quota counting), run just before it is sent. */
  deferred: Array<(pc: PolicyContext) => void> | null = null;
  /** Quota counter keys this request already counted (several policies on one key count once, as in API Management). */
  counted: Set<string> | null = null;
  /** What forward-request needs from the request handler. */
  forward: ForwardBits | null = null;
  /** The raw client request headers (for expressions that read what the client sent). */
  readonly clientHeaders: string[];
  readonly h2: boolean;

  constructor(ex: Exchange, route: PolicyRoute, req: PolicyRequest, clientHeaders: string[], h2: boolean) {
    this.ex = ex;
    this.route = route;
    this.req = req;
    this.cluster = route.cluster;
    this.clientHeaders = clientHeaders;
    this.h2 = h2;
  }
}

/** Header list helpers: names in the list are lower-case. */
export function getHeader(list: string[], lower: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < list.length; i += 2) {
    if (list[i] === lower) out = out === undefined ? list[i + 1] : `${out}, ${list[i + 1]}`;
  }
  return out;
}

export function removeHeader(list: string[], lower: string): void {
  // Most calls remove nothing (set-header's override of a header the request lacks): find the first match before
  // writing anything.
  let w = 0;
  while (w < list.length && list[w] !== lower) w += 2;
  if (w >= list.length) return;
  for (let r = w + 2; r < list.length; r += 2) {
    if (list[r] === lower) continue;
    list[w++] = list[r];
    list[w++] = list[r + 1];
  }
  list.length = w;
}

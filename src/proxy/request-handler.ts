// The per-request path: strict checks, canonical path, routing, forwarding headers, then dispatch to the upstream cluster.
import { ASSERTION_HEADER, assertionFromClaims, userHeadersOf, type AssertionSource, type VerifiedAssertion } from './assertion.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { stamp } from './clock.ts';
import { parseTraceparent, newTraceId, newSpanId, formatTraceparent, sampledByRatio } from '../lib/trace-context.ts';
import { newRequestId, isValidRequestId } from '../lib/request-id.ts';
import type { ErrorCode } from '../lib/errors.ts';
import { checkRequest } from './strict-request.ts';
import { Exchange } from './exchange.ts';
import { sendError, CLOSING, type AnyResponse } from './error-response.ts';
import { CLIENT_ID_HEADER, buildUpstreamHeaders } from './upstream-headers.ts';
import { ForwardHandler, type FinishFn, type ForwardOptions } from './forward-handler.ts';
import { limitedBody } from './limited-body.ts';
import { clientIpOf } from './client-address.ts';
import { forwardPath, type Runtime, type RouteTarget } from './runtime.ts';
import { routingInput } from './version-routing.ts';
import { resolveRoute } from './resolve-route.ts';
import { H1Request } from './h1-server.ts';
import { resolveSubscription, type SubscriptionIndex } from './subscription-index.ts';
import { pipelineFor, startPipeline, startPreflight } from './policy-start.ts';
import type { SubscriptionRecord } from '../model/subscription.ts';
import { decideAccess, type CompiledAccess } from '../policy/access-decision.ts';
import { decideGatewayAccess, publishDecision } from './access-gate.ts';
import { grpcTimeoutMs } from './forward-handler.ts';
import { answerReserved, sendAuthReply } from './auth-step.ts';
import { authenticate, type AuthOutcome } from './route-auth.ts';
import { stripGatewayCookies } from './auth-cookies.ts';
import { splitOf } from './weighted-split.ts';
import type { UpstreamCluster } from './upstream-cluster.ts';

/** A cluster with one expected peer (a mesh service), or a split (a MeshRoute's canary) with such a leg: exchange. */
function callsMeshService(cluster: UpstreamCluster): boolean {
  return cluster.audience !== '' || (splitOf(cluster)?.legs.some((l) => l.cluster.audience !== '') ?? false);
}

/** Mutable state shared by every listener of one worker: the live runtime and the load flags. */
export interface DataPlaneState {
  runtime: Runtime;
  /** Set by the event-loop monitor: shed new requests while true. */
  overloaded: boolean;
  draining: boolean;
  /** Called once per finished request (publishes to telemetry). */
  finish: FinishFn;
  /** Subscriptions from the store (--data-dir); null when the gateway has none. */
  subscriptions: SubscriptionIndex | null;
  /** Record which policies run for each request (Exchange.policyTrace): `lockgate test` only. */
  tracePolicies?: boolean;
}

export interface ListenerInfo {
  name: string;
  proto: 'http' | 'https';
  /** PROXY protocol in front: the client address comes from its header. */
  proxied: boolean;
  /**
   * The calling workload's SPIFFE ID from the connection's verified client certificate ('' = none: plaintext or no
   * certificate). Set by mTLS listeners; read only for routes whose Api has a meshService. Absent = always ''.
   */
  peerIdOf?: (req: AnyRequest) => string;
}

export type AnyRequest = IncomingMessage | Http2ServerRequest | H1Request;

const HOPS = 'x-lockgate-hops';

/** The mesh hop count a request arrives with: the largest `x-lockgate-hops` value, 0 when absent or not a number. */
export function meshHopsOf(raw: string[]): number {
  let hops = 0;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length !== HOPS.length || raw[i].toLowerCase() !== HOPS) continue;
    const v = raw[i + 1];
    const n = v.length <= 6 && /^[0-9]+$/.test(v) ? Number(v) : 0;
    if (n > hops) hops = n;
  }
  return hops;
}

/** The request facts an access decision reads and records (an Exchange has them; the WebSocket path can pass its own). */
export type AccessSubject = Pick<Exchange, 'method' | 'path' | 'requestId' | 'traceId' | 'peerId' | 'decision'>;

/**
 * Decides a mesh inbound request (issue 4 §6) with the caller's identity (`ex.peerId`, set from the listener when the
 * request came in), the service, the port the caller connected to, method and canonical path; records
 * `<id>:<allow|deny|audit>` on `ex`, and publishes every decision that denies or would deny. Returns the decision
 * when the request is refused, else null.
 */
export function authorizeMeshRequest(
  access: CompiledAccess,
  service: string,
  req: AnyRequest,
  ex: AccessSubject,
  claims: Readonly<Record<string, unknown>> | null = null,
): { id: string; policy: string } | null {
  const sourceId = ex.peerId;
  const socket = req.socket as { localPort?: number; remoteAddress?: string } | null;
  const port = socket?.localPort ?? 0;
  const sourceIp = socket?.remoteAddress ?? '';
  // The end user is whoever the verified assertion names (identity issue §2), else none.
  const d = decideAccess(access, { sourceId, service, port, method: ex.method, path: ex.path, claims, sourceIp, headers: req.rawHeaders, requestId: ex.requestId });
  publishDecision(ex, d, service, port, sourceId, { sourceIp, claims });
  return d.allow ? null : { id: d.id, policy: d.policy };
}


/** The verified assertion goes on to the app (to verify with the JWKS, and to pass on), with plain copies if asked. */
function addUserHeaders(headers: string[], a: VerifiedAssertion, plain: boolean): void {
  headers.push(ASSERTION_HEADER, a.token);
  if (!plain) return;
  const h = userHeadersOf(a);
  for (let i = 0; i < h.length; i++) headers.push(h[i]);
}

function cookieValue(raw: string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length !== 6 || raw[i].toLowerCase() !== 'cookie') continue;
    for (const part of raw[i + 1].split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
    }
  }
  return undefined;
}

/** The method a CORS preflight asks about (OPTIONS with Origin and Access-Control-Request-Method), else undefined. */
function preflightMethod(raw: string[]): string | undefined {
  if (headerValue(raw, 'origin') === undefined) return undefined;
  const m = headerValue(raw, 'access-control-request-method');
  return m === undefined || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/.test(m) ? undefined : m.toUpperCase();
}

/**
 * The request's id: the one it came with when the caller is trusted for it (a trusted proxy, or a caller with a
 * verified workload certificate: another hop of the mesh, so one id follows the request through every tier), else a
 * new one. `hopTrusted` also lets such a caller's sampling decision stand.
 */
export function requestIdOf(raw: string[], hopTrusted: boolean): string {
  const incoming = hopTrusted ? headerValue(raw, 'x-request-id') : undefined;
  return incoming !== undefined && isValidRequestId(incoming) ? incoming : newRequestId();
}

function headerValue(raw: string[], lower: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) if (raw[i].length === lower.length && raw[i].toLowerCase() === lower) return raw[i + 1];
  return undefined;
}

/** Creates the 'request' listener for one listener. Never throws: every failure becomes a JSON error response. */
export function createRequestHandler(state: DataPlaneState, listener: ListenerInfo) {
  return function onRequest(req: AnyRequest, res: AnyResponse): void {
    // A request pipelined behind one we refused with close: never handled; the socket closes after that answer.
    if ((req.socket as { [CLOSING]?: boolean } | null)?.[CLOSING] === true) return;
    const rt = state.runtime;
    const t0 = stamp();
    const ex = new Exchange(listener.name, clientIpOf(req, listener.proxied), req.method ?? '', t0, performance.timeOrigin + t0);
    ex.configVersion = rt.version;
    // mTLS listeners only: the caller's SPIFFE ID (read once per connection) goes into the access log on every route.
    if (listener.peerIdOf !== undefined) ex.peerId = listener.peerIdOf(req);
    try {
      handle(state, rt, listener, req, res, ex);
    } catch (err) {
      // A bug must never become an empty 200 or a crash: answer 500 and log the cause.
      ex.requestId ||= newRequestId();
      fail(state, res, ex, 'internal', (err as Error)?.message ?? String(err), true, 'lockgate');
    }
  };
}

function fail(state: DataPlaneState, res: AnyResponse, ex: Exchange, code: ErrorCode, detail: string, close: boolean, style: 'lockgate' | 'apim', retryAfter?: number): void {
  sendError(res, ex, code, detail, { style, close, retryAfterSeconds: retryAfter });
  ex.tEnd = stamp();
  state.finish(ex);
}

function handle(state: DataPlaneState, rt: Runtime, listener: ListenerInfo, req: AnyRequest, res: AnyResponse, ex: Exchange): void {
  const raw = req.rawHeaders;
  // By transport, not by the version the client claims (`GET / HTTP/2.0` over HTTP/1 is not HTTP/2).
  const h2 = 'stream' in req;
  const trusted = rt.trusted.contains(ex.clientIp);
  const hopTrusted = trusted || ex.peerId !== '';

  // Identity of the request first, so even a rejected request is traceable.
  ex.requestId = requestIdOf(raw, hopTrusted);
  const tp = headerValue(raw, 'traceparent');
  const parent = tp === undefined ? undefined : parseTraceparent(tp);
  if (parent) {
    ex.traceId = parent.traceId;
    ex.parentSpanId = parent.parentId;
    // Only a trusted hop may force sampling; otherwise the gateway decides, deterministically on the trace id.
    ex.traceFlags = hopTrusted ? parent.flags : (parent.flags & ~1) | (sampledByRatio(ex.traceId, rt.sampleThreshold) ? 1 : 0);
  } else {
    ex.traceId = newTraceId();
    ex.traceFlags = rt.sampleThreshold > 0 && sampledByRatio(ex.traceId, rt.sampleThreshold) ? 1 : 0;
  }
  ex.spanId = newSpanId();

  const target = h2 ? ((req as Http2ServerRequest).headers[':path'] ?? '') : (req.url ?? '');
  // The h1 engine checked the request already (it needs the framing to read the body).
  const h1 = req instanceof H1Request;
  const facts = h1 ? req.facts : checkRequest(ex.method, req.httpVersion, target, raw, rt.gateway.limits);
  if (!facts.ok) {
    // Logs and metrics may assume a token method; an HTTP/2 :method is not parsed by llhttp.
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/.test(ex.method)) ex.method = 'INVALID';
    const code: ErrorCode = facts.status === 414 ? 'uri_too_long' : facts.status === 431 ? 'header_too_large' : facts.status === 501 ? 'not_implemented' : 'bad_request';
    return fail(state, res, ex, code, facts.error, true, 'lockgate');
  }
  ex.host = facts.hostname;
  if (state.overloaded) return fail(state, res, ex, 'overloaded', '', facts.hasBody, 'lockgate', rt.gateway.overload.retryAfter / 1000);
  if (facts.hasBody && facts.contentLength > rt.gateway.limits.maxBodySize) {
    return fail(state, res, ex, 'payload_too_large', '', true, 'lockgate');
  }
  // Mesh nodes count hops in a header of their own (a Via-less loop through sidecars is still a loop); others pay nothing.
  let hops = -1;
  if (rt.meshMaxHops > 0) {
    hops = meshHopsOf(raw);
    if (hops >= rt.meshMaxHops) return fail(state, res, ex, 'loop_detected', `${hops} mesh hops`, facts.hasBody, 'lockgate');
  }

  // The login callback and logout (IdentityProviders) answer on every host, before routing.
  if (rt.identity !== null && target.startsWith('/.lockgate/')) {
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    if (path === '/.lockgate/callback' || path === '/.lockgate/logout') {
      ex.path = path;
      const input = { rawHeaders: raw, method: ex.method, target, host: facts.host, secure: listener.proto === 'https', now: Date.now() };
      return answerReserved(rt.identity, path, q < 0 ? '' : target.slice(q + 1), input, res, ex, facts.hasBody, state.finish);
    }
  }
  // Revisions (;rev=N) and query-scheme versions are matched as pseudo-headers; the common config has neither.
  const ri = rt.hasRevisions || rt.versionQueryNames.length > 0 ? routingInput(target, raw, rt.hasRevisions, rt.versionQueryNames) : null;
  const routeTarget = ri === null ? target : ri.target;
  const matchHeaders = ri === null ? raw : ri.matchHeaders;
  let cp = resolveRoute(rt, routeTarget, facts.hostname, ex.method, matchHeaders);
  if ('error' in cp) return fail(state, res, ex, 'bad_request', cp.error, true, 'lockgate');
  // A CORS preflight is routed by the method it asks about: the Api's cors policy answers it (API Management).
  const preflightFor = ex.method === 'OPTIONS' ? preflightMethod(raw) : undefined;
  if (cp.match === undefined && preflightFor !== undefined) {
    // The asked-for method first; else any operation on the path (the cors policy decides what is allowed).
    let again = resolveRoute(rt, routeTarget, facts.hostname, preflightFor, matchHeaders);
    if (!('error' in again) && again.match === undefined) {
      const methods = rt.router.allowedMethods(facts.hostname, again.path, matchHeaders);
      if (methods.length > 0) again = resolveRoute(rt, routeTarget, facts.hostname, methods[0], matchHeaders);
    }
    if (!('error' in again) && again.match?.value.policies?.none?.cors) cp = again;
  }
  const match = cp.match;
  ex.path = cp.path;
  if (match === undefined) return fail(state, res, ex, 'no_route', '', facts.hasBody, 'lockgate');
  const route: RouteTarget = match.value;
  // A revision that does not exist is not the current one.
  if (ri !== null && ri.revision !== 0 && ri.revision !== route.revision) return fail(state, res, ex, 'no_route', '', facts.hasBody, route.errorStyle);
  ex.api = route.api;
  ex.operation = route.operation;
  ex.backend = route.cluster.name;
  ex.routeKey = route;
  // End-user assertions: an inbound hop accepts one addressed to it from the workload it names; an outbound hop
  // exchanges the app's for one addressed to the service called (per attempt, in the forwarder). Anywhere else a
  // client's copy is only dropped (buildUpstreamHeaders).
  const asr = rt.assertions;
  let asserted: VerifiedAssertion | null = null;
  let identity: AssertionSource | null = null;
  if (asr !== null) {
    const token = headerValue(raw, ASSERTION_HEADER);
    if (token !== undefined && route.meshService !== '') {
      const r = asr.service.accept(token, ex.peerId);
      if (!r.ok) return fail(state, res, ex, 'invalid_assertion', `sidecar ${route.meshService}: ${r.error}`, facts.hasBody, route.errorStyle);
      asserted = r.assertion;
    } else if (token !== undefined && asr.exchange && asr.service.canMint && callsMeshService(route.cluster)) {
      const r = asr.service.exchangeSource(token);
      if (!r.ok) return fail(state, res, ex, 'invalid_assertion', `sidecar ${asr.service.self} outbound: ${r.error}`, facts.hasBody, route.errorStyle);
      identity = r.source;
    }
  }
  if (route.meshService !== '' && rt.access !== null) {
    const denied = authorizeMeshRequest(rt.access, route.meshService, req, ex, asserted === null ? null : asserted.claims);
    if (denied !== null) {
      sendError(res, ex, 'access_denied', denied.policy, { style: route.errorStyle, close: facts.hasBody, decision: denied.id, hop: `sidecar ${route.meshService}` });
      ex.tEnd = stamp();
      return state.finish(ex);
    }
  }

  if (preflightFor !== undefined && route.policies?.none?.cors) {
    // Browsers send no credentials on a preflight: it is answered before the key check, by cors alone.
    return startPreflight(route.policies.none, { ex, route, res, h2, method: ex.method, path: cp.path, query: cp.query, clientHeaders: raw, finish: state.finish });
  }

  // The rest runs once the end user is known: at once, or after a key fetch or token refresh (IdentityProviders).
  const proceed = (userClaims: Record<string, unknown> | null): void => {
    // Subscription key (API Management's model): checked after routing, removed before forwarding.
    let query = cp.query;
    let dropHeader: string | undefined;
    let product = '';
    let record: SubscriptionRecord | null = null;
    const needKey = route.subscription;
    if (needKey !== null) {
      const k = resolveSubscription(state.subscriptions, needKey, route.api, raw, query);
      if (k.error !== null) return fail(state, res, ex, k.error, '', facts.hasBody, route.errorStyle);
      ex.subscription = k.subscription;
      query = k.query;
      dropHeader = needKey.header;
      product = k.product;
      record = k.record;
    }

    const pipeline = route.policies === null ? null : pipelineFor(route.policies, product);
    // Gateway AccessPolicies: without policies there is no end user to wait for, so the check is here; with a pipeline,
    // after its inbound authentication (or where an access-check policy stands).
    const gate = rt.gatewayAccess === null ? undefined : rt.gatewayAccess.get(route);
    if (gate !== undefined && pipeline === null) {
      const d = decideGatewayAccess(gate, ex, { claims: userClaims, headers: raw });
      if (!d.allow) {
        sendError(res, ex, 'access_denied', d.policy, { style: route.errorStyle, close: facts.hasBody, decision: d.id, hop: gate.hop });
        ex.tEnd = stamp();
        return state.finish(ex);
      }
    }

    const traceparent = formatTraceparent(ex.traceId, ex.spanId, ex.traceFlags);
    const headers = buildUpstreamHeaders(raw, {
      clientIp: ex.clientIp,
      trusted,
      proto: listener.proto,
      host: facts.host,
      requestId: ex.requestId,
      traceparent,
      connectionTokens: facts.connectionTokens,
      contentLength: facts.hasBody && !facts.chunked ? facts.contentLength : -1,
      maxHops: rt.gateway.maxHops,
      keepTracestate: parent !== undefined,
      drop: dropHeader,
    });
    if (headers === null) return fail(state, res, ex, 'loop_detected', '', facts.hasBody, route.errorStyle);
    // Session ids stay at the gateway.
    if (route.auth !== null) stripGatewayCookies(headers);
    // The client's copy never reaches here (buildUpstreamHeaders drops it): ours is the only one.
    if (hops >= 0) headers.push(HOPS, String(hops + 1));
    if (route.meshService !== '' && ex.peerId !== '') headers.push(CLIENT_ID_HEADER, ex.peerId);
    if (asserted !== null) addUserHeaders(headers, asserted, asr!.userHeaders);
    // gRPC runs over HTTP/2 only: HTTP/1.1 requests never look. Its deadline caps the request; `te: trailers` goes upstream.
    let timeoutMs = 0;
    if (h2) {
      const hs = (req as Http2ServerRequest).headers;
      const ct = hs['content-type'];
      if (ct !== undefined && ct.startsWith('application/grpc')) {
        timeoutMs = grpcTimeoutMs(hs['grpc-timeout']);
        headers.push('te', 'trailers');
      }
    }

    let path = forwardPath(route, cp.path);
    if (query && pipeline === null) path += query;

    let hashKey: string | undefined;
    if (route.hashHeader) hashKey = headerValue(raw, route.hashHeader);
    else if (route.hashCookie) hashKey = cookieValue(raw, route.hashCookie);
    else if (route.hashClientIp) hashKey = ex.clientIp;

    if (facts.expectContinue && !h2) (res as ServerResponse).writeContinue();
    if (state.draining && !h2) (res as ServerResponse).shouldKeepAlive = false;

    // A known length was checked against the limit above; an unknown one is counted as it streams.
    let body: ForwardOptions['body'] = null;
    if (facts.hasBody) {
      const stream = h1 ? req.body! : (req as IncomingMessage);
      if (facts.contentLength >= 0 && !facts.chunked) {
        ex.bytesIn = facts.contentLength;
        body = stream;
      } else {
        body = limitedBody(stream, rt.gateway.limits.maxBodySize, ex);
      }
    }
    if (pipeline !== null) {
      if (state.tracePolicies === true) ex.policyTrace = [];
      return startPipeline(pipeline, {
        ex,
        route,
        res,
        h2,
        method: ex.method,
        path,
        query,
        originalPath: cp.path,
        originalQuery: cp.query,
        headers,
        clientHeaders: raw,
        body: body as AsyncIterable<Buffer> | null,
        product,
        subscription: record,
        finish: state.finish,
        forward: { request: req as IncomingMessage, hashKey, maxBufferedBody: rt.gateway.limits.maxBufferedBody, res, assertions: asr?.service ?? null },
        maxBufferedBody: rt.gateway.limits.maxBufferedBody,
        access: gate ?? null,
        claims: userClaims,
      });
    }
    // An end user an IdentityProvider validated is asserted to a mesh backend (the exchange's, on an outbound hop, wins).
    const idn = identity ?? (userClaims === null || asr === null ? null : assertionFromClaims(asr.service, userClaims));
    const handler = new ForwardHandler(
      ex,
      res as ServerResponse | Http2ServerResponse,
      route.cluster,
      { method: ex.method, path, headers, body, request: req as IncomingMessage, hashKey, errorStyle: route.errorStyle, h2, timeoutMs, identity: idn },
      state.finish,
    );
    handler.start();
  };
  if (route.auth === null) return proceed(null);
  const authed = authenticate(route.auth, { rawHeaders: raw, method: ex.method, target, host: facts.host, secure: listener.proto === 'https', now: Date.now() });
  const afterAuth = (o: AuthOutcome): void => {
    if ('reply' in o) return sendAuthReply(res, ex, o.reply, facts.hasBody, state.finish);
    proceed(o.claims);
  };
  if (!(authed instanceof Promise)) return afterAuth(authed);
  authed.then(afterAuth).catch((err: unknown) => {
    // A bug must never leave the client hanging.
    if (!res.headersSent) fail(state, res, ex, 'internal', (err as Error)?.message ?? String(err), true, 'lockgate');
  });
}

// The undici dispatch handler for one proxied request: streams the response back with backpressure, retries, and records outcomes.
import { ASSERTION_HEADER, type AssertionSource } from './assertion.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { Dispatcher } from 'undici';
import { LockgateError, upstreamErrorCode, type ErrorCode } from '../lib/errors.ts';
import type { H1Response } from './h1-server.ts';
import type { Exchange } from './exchange.ts';
import type { UpstreamCluster } from './upstream-cluster.ts';
import type { EndpointState } from './endpoint-state.ts';
import { sendError, type ErrorStyle } from './error-response.ts';
import { shouldRetry, backoffMs } from './retry-decision.ts';
import { lastStamp, stamp } from './clock.ts';
import { connectionTokens } from './field-syntax.ts';
import { DeadlineWheel, type Deadline } from './deadline-wheel.ts';
import { splitOf, type WeightedSplit } from './weighted-split.ts';
import { faultOf, WheelTimer, type FaultInjector, type FaultVerdict } from './fault-injection.ts';

/**
 * Per-try timeouts under a second run on this wheel: undici's own header timeout ticks every ~500 ms.
 * Longer ones are left to undici (its `headersTimeout`), which costs nothing extra per request.
 */
const SHORT_TIMEOUT_MS = 1000;
const wheel = new DeadlineWheel();

/**
 * When the client goes away while an HTTP/1.1 upstream works on a request already sent in full, aborting costs the
 * pooled connection (HTTP/1.1 cannot cancel one exchange and keep the connection), and on a mesh hop the next request
 * pays a new mTLS handshake on both sides (~1–2 ms of CPU each). So the response gets this long to finish, up to
 * ABANDON_MAX_BYTES, read and dropped, and the connection goes back to the pool; a slower or larger one is aborted
 * then. HTTP/2 upstreams are cancelled at once (a stream reset keeps the connection), as are requests whose body
 * was still streaming.
 */
export const ABANDON_GRACE_MS = 500;
export const ABANDON_MAX_BYTES = 64 * 1024;
const CLIENT_CLOSED = 'client closed';

class PerTryTimeout extends Error {
  readonly code = 'UND_ERR_HEADERS_TIMEOUT';
  constructor(ms: number, what = 'the per-try timeout') {
    super(`no response headers within ${what} of ${ms} ms`);
  }
}

const GRPC_UNIT_MS: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/** A `grpc-timeout` value (`<1–8 digits><H|M|S|m|u|n>`) in whole milliseconds (at least 1), or 0 when absent or invalid. */
export function grpcTimeoutMs(v: string | string[] | undefined): number {
  if (typeof v !== 'string' || v.length < 2 || v.length > 9) return 0;
  const unit = GRPC_UNIT_MS[v[v.length - 1]];
  const digits = v.slice(0, -1);
  if (unit === undefined || !/^[0-9]+$/.test(digits)) return 0;
  return Math.max(1, Math.ceil(Number(digits) * unit));
}

type Controller = Dispatcher.DispatchController;

const FAULT_HEADER: Record<string, string> = Object.freeze({ 'x-lockgate-fault': 'abort' }) as Record<string, string>;
type Res = ServerResponse | Http2ServerResponse | H1Response;

/** What the handler reports when the exchange is over (to telemetry and in-flight accounting). */
export type FinishFn = (ex: Exchange) => void;

/** Response headers we never pass back: hop-by-hop and framing (Node re-frames the body for the client). */
function skipResponseHeader(n: string): boolean {
  switch (n.length) {
    case 7:
      return n === 'trailer' || n === 'upgrade';
    case 10:
      return n === 'connection' || n === 'keep-alive';
    case 12:
      // Ours replaces the upstream's (one id per response, as Envoy's always_set_request_id_in_response): a Lockgate
      // hop behind us adopted our id anyway, and an app's own id is not the one our logs know the request by.
      return n === 'x-request-id';
    case 16:
      return n === 'proxy-connection';
    case 17:
      return n === 'transfer-encoding';
    default:
      return false;
  }
}

export interface ForwardOptions {
  method: string;
  path: string;
  headers: string[];
  /** The request body: the request stream, a size-capped iterator over it, or null when there is none. */
  body: IncomingMessage | AsyncIterable<Buffer> | null;
  /** The client request, watched for an HTTP/2 stream reset while its body is forwarded. */
  request: { aborted: boolean; once(event: 'aborted', f: () => void): unknown };
  hashKey: string | undefined;
  errorStyle: ErrorStyle;
  h2: boolean;
  /** Whole-request deadline from the request's start (a gRPC `grpc-timeout`): caps every per-try timeout. 0/absent = none. */
  timeoutMs?: number;
  /** The end user's assertion for the next hop, set per attempt for the picked cluster's audience; absent/null = none. */
  identity?: AssertionSource | null;
}

function addTrailers(res: Http2ServerResponse, trailers: Record<string, string | string[] | undefined>): void {
  let out: Record<string, string | string[]> | null = null;
  for (const name in trailers) {
    const v = trailers[name];
    if (v === undefined || name.charCodeAt(0) === 58 /* ':' */) continue;
    (out ??= {})[name] = v;
  }
  if (out !== null) res.addTrailers(out);
}

/**
 * The split's next leg; a leg with no available endpoint passes its turn on (at most once round the legs), so a
 * canary whose endpoints are all down or unregistered costs no failed requests while the other legs are up.
 */
function pickLeg(split: WeightedSplit): UpstreamCluster | undefined {
  let leg = split.pick();
  const now = lastStamp();
  for (let i = 1; i < split.legs.length && leg !== undefined && !hasAvailable(leg, now); i++) leg = split.pick();
  return leg;
}

function hasAvailable(c: UpstreamCluster, now: number): boolean {
  for (const ep of c.endpoints) if (ep.weight > 0 && ep.available(now)) return true;
  return false;
}

/** Removes `authorization: Bearer …` from a flat header list (names are lower-case there). */
function dropBearer(h: string[]): void {
  for (let i = h.length - 2; i >= 0; i -= 2) {
    if (h[i] === 'authorization' && /^bearer\s/i.test(h[i + 1])) h.splice(i, 2);
  }
}

/** Handler class (not closures) so a request costs one object; reused across retry attempts. */
export class ForwardHandler implements Dispatcher.DispatchHandler {
  readonly #ex: Exchange;
  readonly #res: Res;
  /** The cluster of the current attempt: the route's, or the split leg picked for it. */
  #cluster: UpstreamCluster;
  readonly #opts: ForwardOptions;
  /** The route's Backend is a weighted split: each attempt picks a leg. */
  readonly #split: WeightedSplit | null;
  /** The route Backend's fault, until the first attempt has decided it. */
  #fault: FaultInjector | null;
  /** performance.now() deadline of the whole request (grpc-timeout); 0 = none. */
  readonly #deadlineAt: number;
  #requestDeadline: WheelTimer | null = null;
  readonly #finish: FinishFn;
  #endpoint: EndpointState | undefined;
  #controller: Controller | null = null;
  #discarding = false;
  #done = false;
  #clientGone = false;
  #attemptStart = 0;
  #deadline: Deadline | null = null;
  /** The response's Content-Length (-1 when unknown): the chunk that completes it ends the response at once. */
  #expected = -1;
  #ended = false;
  /** Created on the first backpressure pause only. */
  #onDrain: (() => void) | undefined;
  /** A per-try timeout that fired before undici handed us the controller. */
  #pendingAbort: Error | null = null;
  /** The client went away and this attempt's response is being read and dropped (ABANDON_GRACE_MS): bytes so far, else -1. */
  #abandoned = -1;
  #abandonTimer: Deadline | null = null;

  constructor(ex: Exchange, res: Res, cluster: UpstreamCluster, opts: ForwardOptions, finish: FinishFn) {
    this.#ex = ex;
    this.#res = res;
    this.#cluster = cluster;
    this.#opts = opts;
    this.#finish = finish;
    // Two property loads for a Backend with neither (the common case); the lookups run only when one is set.
    const spec = cluster.spec;
    this.#split = spec.split === undefined ? null : (splitOf(cluster) ?? null);
    this.#fault = spec.fault === undefined ? null : (faultOf(cluster) ?? null);
    this.#deadlineAt = opts.timeoutMs !== undefined && opts.timeoutMs > 0 ? ex.tStart + opts.timeoutMs : 0;
    // `on`, not `once`: the handler guards itself, and once() would allocate a wrapper per request.
    (res as ServerResponse).on('close', this.#onClientClose);
    if (opts.h2 && opts.body !== null) {
      // An HTTP/2 upload cancelled by RST_STREAM ends the body stream as if it were complete: never forward it.
      if (opts.request.aborted) this.#clientGone = true;
      else opts.request.once('aborted', this.#onClientClose);
    }
  }

  /** Picks a split leg and an endpoint and dispatches; answers 503 itself when nothing can take the request. */
  start(): void {
    if (this.#clientGone || (this.#res as { closed?: boolean }).closed === true) {
      this.#ex.status ||= 499;
      return this.#complete();
    }
    if (this.#split !== null) {
      // Every attempt re-picks, so a retry may land on the other leg; the log names the leg of the last attempt.
      const leg = pickLeg(this.#split);
      if (leg === undefined) return this.#fail('no_healthy_endpoint', 'every split weight is 0');
      this.#cluster = leg;
      this.#ex.backend = leg.name;
    }
    // Faults are decided once, before the first attempt: the route Backend's, or a split leg's (looked up only for splits).
    if ((this.#fault !== null || this.#split !== null) && this.#ex.attempts === 0 && this.#injectFault()) return;
    this.#attempt();
  }

  /** Decides the route Backend's fault, then the picked leg's. True when the request is delayed or aborted. */
  #injectFault(): boolean {
    const own = this.#fault;
    this.#fault = null;
    const leg = this.#split === null || this.#cluster.spec.fault === undefined ? undefined : faultOf(this.#cluster);
    let v: FaultVerdict | null = own === null ? null : own.decide();
    if (leg !== undefined && leg !== own) {
      const w = leg.decide();
      if (v === null) v = w;
      else if (w !== null) v = { delayMs: v.delayMs || w.delayMs, abortStatus: v.abortStatus || w.abortStatus };
    }
    if (v === null) return false;
    const abortStatus = v.abortStatus;
    if (v.delayMs > 0) {
      new WheelTimer(wheel, v.delayMs, () => {
        if (this.#clientGone) {
          this.#ex.status ||= 499;
          return this.#complete();
        }
        if (abortStatus > 0) this.#faultAbort(abortStatus);
        else this.#attempt();
      });
      return true;
    }
    this.#faultAbort(abortStatus);
    return true;
  }

  #faultAbort(status: number): void {
    sendError(this.#res, this.#ex, 'fault_abort', '', { style: this.#opts.errorStyle, close: this.#opts.body !== null, status, headers: FAULT_HEADER });
    this.#complete();
  }

  #attempt(): void {
    const cluster = this.#cluster;
    if (this.#deadlineAt !== 0 && this.#deadlineAt <= stamp()) return this.#fail('upstream_timeout', 'grpc-timeout');
    if (cluster.breaker !== null && !cluster.breaker.allow()) {
      return this.#fail('breaker_open', '', cluster.breaker.retryAfterSeconds());
    }
    const ep = cluster.pick(this.#opts.hashKey);
    if (ep === undefined) return this.#fail('no_healthy_endpoint', '');
    if (ep.inflight >= cluster.maxInflightPerEndpoint) return this.#fail('pending_limit', '', 1);
    this.#endpoint = ep;
    const ex = this.#ex;
    ex.attempts++;
    ex.endpoint = ep.url;
    if (ex.attempts === 1) cluster.budget.recordRequest();
    ep.onStart();
    this.#discarding = false;
    this.#controller = null;
    this.#pendingAbort = null;
    this.#attemptStart = ex.tDispatch = stamp();
    const perTry = cluster.spec.timeouts.perTry;
    if (this.#deadlineAt !== 0) this.#capByDeadline(perTry);
    else if (perTry < SHORT_TIMEOUT_MS) this.#deadline = wheel.add(perTry, () => this.#timeout(new PerTryTimeout(perTry)));
    const idn = this.#opts.identity;
    if (idn !== undefined && idn !== null) this.#setAssertion(idn, cluster.audience);
    const base = cluster.basePaths[ep.index];
    cluster.pools[ep.index].dispatch(
      // undici streams async iterables too (its types only list Readable).
      {
        method: this.#opts.method,
        path: base ? base + this.#opts.path : this.#opts.path,
        headers: this.#opts.headers,
        body: this.#opts.body as IncomingMessage | null,
        // https endpoints: the Backend's TLS server name, never one derived from the client's Host (UpstreamCluster.serverNames).
        // (undici's Request takes `servername`; its DispatchOptions type does not list it.)
        servername: cluster.serverNames[ep.index],
      } as Dispatcher.DispatchOptions,
      this,
    );
  }

  /**
   * The assertion header for this attempt's cluster: the audience is the peer's SPIFFE ID, so a split or a retry
   * to another service gets its own. A cluster that is not a mesh service (no single expected peer ID) gets none.
   */
  #setAssertion(idn: AssertionSource, audience: string): void {
    const h = this.#opts.headers;
    let at = -1;
    for (let i = h.length - 2; i >= 0; i -= 2) {
      if (h[i] === ASSERTION_HEADER) {
        at = i;
        break;
      }
    }
    if (audience === '') {
      if (at >= 0) h.splice(at, 2);
      return;
    }
    const value = idn.headerFor(audience);
    if (at >= 0) h[at + 1] = value;
    else {
      h.push(ASSERTION_HEADER, value);
      // The user's own token stays at the edge: the assertion says who they are (mesh.assertions.forwardBearer keeps it).
      if (idn.dropsBearer) dropBearer(h);
    }
  }

  onRequestStart(controller: Controller): void {
    this.#controller = controller;
    this.#ex.tUpstreamStart = stamp();
    if (this.#clientGone) controller.abort(new Error(CLIENT_CLOSED));
    else if (this.#pendingAbort !== null) controller.abort(this.#pendingAbort);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.#clearDeadline();
    const ex = this.#ex;
    ex.tResponseStart = stamp();
    if (this.#abandoned !== -1) {
      // Nobody to send it to: passive health still learns the outcome, the body is dropped (#discarding).
      this.#record(statusCode, false, headers['retry-after']);
      return;
    }
    if (this.#canRetry(statusCode, undefined)) {
      // Read and drop this body so the connection stays reusable, then try again at onResponseEnd.
      this.#discarding = true;
      this.#record(statusCode, false, headers['retry-after']);
      return;
    }
    ex.status = statusCode;
    const cl = headers['content-length'];
    this.#expected = typeof cl === 'string' && this.#opts.method !== 'HEAD' ? Number(cl) : -1;
    const res = this.#res;
    if (this.#clientGone || res.destroyed) return controller.abort(new Error(CLIENT_CLOSED));
    // Headers named in the upstream's Connection are hop-by-hop too; plain keep-alive/close names none.
    const conn = headers.connection;
    // (A malformed list names nothing we could honour: treat it as naming nothing.)
    const tokens = typeof conn === 'string' && conn !== 'keep-alive' && conn !== 'close' ? (connectionTokens(conn, null) ?? null) : null;
    const out: string[] = [];
    for (const name in headers) {
      if (skipResponseHeader(name)) continue;
      if (tokens !== null && tokens.includes(name)) continue;
      const v = headers[name];
      if (v === undefined) continue;
      if (typeof v === 'string') out.push(name, v);
      else for (let i = 0; i < v.length; i++) out.push(name, v[i]);
    }
    out.push('x-request-id', ex.requestId);
    this.#record(statusCode, false, headers['retry-after']);
    if (this.#opts.h2) {
      const obj: Record<string, string | string[]> = {};
      for (let i = 0; i < out.length; i += 2) {
        const prev = obj[out[i]];
        obj[out[i]] = prev === undefined ? out[i + 1] : Array.isArray(prev) ? [...prev, out[i + 1]] : [prev, out[i + 1]];
      }
      (res as Http2ServerResponse).writeHead(statusCode, obj);
    } else {
      (res as ServerResponse).writeHead(statusCode, out);
    }
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.#discarding) {
      if (this.#abandoned !== -1 && (this.#abandoned += chunk.length) > ABANDON_MAX_BYTES) controller.abort(new Error(CLIENT_CLOSED));
      return;
    }
    this.#ex.bytesOut += chunk.length;
    const res = this.#res;
    if (res.destroyed) return controller.abort(new Error(CLIENT_CLOSED));
    if (this.#ex.bytesOut === this.#expected) {
      // The last bytes of a known-length body: one end(chunk) instead of write(chunk) then end().
      this.#ended = true;
      (res as ServerResponse).end(chunk);
      return;
    }
    if (!(res as ServerResponse).write(chunk)) {
      controller.pause();
      (res as ServerResponse).once('drain', (this.#onDrain ??= () => this.#controller?.resume()));
    }
  }

  onResponseEnd(_controller: Controller, trailers?: Record<string, string | string[] | undefined>): void {
    if (this.#abandoned !== -1) {
      // Finished in time: the connection stays pooled; the client was told nothing (it had gone).
      this.#release(false);
      this.#ex.status ||= 499;
      return this.#complete();
    }
    if (this.#discarding) {
      this.#release(false);
      return this.#retryLater();
    }
    this.#release(false);
    if (!this.#ended) {
      // HTTP/2 clients get the upstream's trailers (gRPC's grpc-status lives there); HTTP/1.1 responses carry none.
      if (this.#opts.h2 && trailers !== undefined) addTrailers(this.#res as Http2ServerResponse, trailers);
      (this.#res as ServerResponse).end();
    }
    this.#complete();
  }

  onResponseError(_controller: Controller, err: Error): void {
    this.#clearDeadline();
    const responded = this.#res.headersSent;
    // Our own errors (a body over the size limit) keep their code; the rest are the upstream's.
    const code: ErrorCode = this.#clientGone ? 'upstream_reset' : err instanceof LockgateError ? err.code : upstreamErrorCode(err);
    if (!this.#discarding && !responded) this.#record(undefined, true, undefined);
    this.#release(true);
    if (this.#clientGone) {
      this.#ex.status ||= 499;
      return this.#complete();
    }
    if (!responded && (this.#discarding || this.#canRetry(undefined, (err as { code?: string }).code))) return this.#retryLater();
    this.#fail(code, err.message);
  }

  #timeout(err: Error): void {
    this.#deadline = null;
    if (this.#controller !== null) this.#controller.abort(err);
    else this.#pendingAbort = err;
  }

  #clearDeadline(): void {
    if (this.#deadline !== null) {
      wheel.cancel(this.#deadline);
      this.#deadline = null;
    }
    if (this.#requestDeadline !== null) {
      this.#requestDeadline.cancel();
      this.#requestDeadline = null;
    }
  }

  /** This attempt's timeout when the request has a deadline: the per-try timeout or what is left, whichever is shorter. */
  #capByDeadline(perTry: number): void {
    const left = this.#deadlineAt - this.#attemptStart;
    if (left >= perTry) {
      if (perTry < SHORT_TIMEOUT_MS) this.#deadline = wheel.add(perTry, () => this.#timeout(new PerTryTimeout(perTry)));
      return;
    }
    const ms = Math.max(1, Math.ceil(left));
    this.#requestDeadline = new WheelTimer(wheel, ms, () => {
      this.#requestDeadline = null;
      this.#timeout(new PerTryTimeout(this.#opts.timeoutMs ?? ms, 'the grpc-timeout'));
    });
  }

  #canRetry(status: number | undefined, errCode: string | undefined): boolean {
    const c = this.#cluster;
    const retries = c.spec.retries;
    if (!shouldRetry(retries, this.#opts.method, this.#ex.attempts, status, errCode, this.#opts.body === null)) return false;
    return c.budget.tryAcquireRetry();
  }

  #retryLater(): void {
    if (this.#clientGone) return this.#complete();
    const delay = backoffMs(this.#cluster.spec.retries, this.#ex.attempts);
    if (delay > 0) setTimeout(() => this.start(), delay);
    else this.start();
  }

  /** Passive health: outliers, breaker, latency. */
  #record(status: number | undefined, failed: boolean, retryAfter: string | string[] | undefined): void {
    const c = this.#cluster;
    const ep = this.#endpoint;
    const isFailure = failed || (status !== undefined && status >= 500);
    if (ep !== undefined && c.outliers !== null) c.outliers.record(ep, isFailure);
    if (c.breaker !== null) c.breaker.record(status, typeof retryAfter === 'string' ? retryAfter : undefined);
  }

  #release(failed: boolean): void {
    const ep = this.#endpoint;
    if (ep === undefined) return;
    const now = (this.#ex.tEnd = stamp());
    ep.onEnd(now, now - this.#attemptStart, failed);
    this.#endpoint = undefined;
  }

  #fail(code: ErrorCode, detail: string, retryAfterSeconds?: number): void {
    sendError(this.#res, this.#ex, code, detail, { style: this.#opts.errorStyle, close: this.#opts.body !== null, retryAfterSeconds });
    this.#complete();
  }

  #complete(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#abandonTimer !== null) {
      wheel.cancel(this.#abandonTimer);
      this.#abandonTimer = null;
    }
    // Usually just stamped by #release in the same callback.
    if (this.#ex.tEnd === 0) this.#ex.tEnd = stamp();
    this.#finish(this.#ex);
  }


  readonly #onClientClose = (): void => {
    if (this.#done) return;
    const res = this.#res as ServerResponse;
    if (res.writableFinished && !this.#opts.h2) return;
    this.#clientGone = true;
    const c = this.#controller;
    if (c === null || this.#abandoned !== -1) return;
    // A request sent in full to an HTTP/1.1 upstream may finish within the grace, keeping its connection (see ABANDON_GRACE_MS).
    if (this.#opts.body === null && this.#cluster.spec.protocol !== 'h2' && this.#endpoint !== undefined) {
      this.#abandoned = 0;
      this.#discarding = true;
      // Paused by backpressure from the client that left: its 'drain' never comes.
      c.resume();
      this.#abandonTimer = wheel.add(ABANDON_GRACE_MS, () => {
        this.#abandonTimer = null;
        c.abort(new Error(CLIENT_CLOSED));
      });
      return;
    }
    c.abort(new Error(CLIENT_CLOSED));
  };
}

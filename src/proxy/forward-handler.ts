// The undici dispatch handler for one proxied request: streams the response back with backpressure, retries, and records outcomes.
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
import { stamp } from './clock.ts';
import { connectionTokens } from './field-syntax.ts';
import { DeadlineWheel, type Deadline } from './deadline-wheel.ts';

/**
 * Per-try timeouts under a second run on this wheel: undici's own header timeout ticks every ~500 ms.
 * Longer ones are left to undici (its `headersTimeout`), which costs nothing extra per request.
 */
const SHORT_TIMEOUT_MS = 1000;
const wheel = new DeadlineWheel();

class PerTryTimeout extends Error {
  readonly code = 'UND_ERR_HEADERS_TIMEOUT';
  constructor(ms: number) {
    super(`no response headers within the per-try timeout of ${ms} ms`);
  }
}

type Controller = Dispatcher.DispatchController;
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
}

/** Handler class (not closures) so a request costs one object; reused across retry attempts. */
export class ForwardHandler implements Dispatcher.DispatchHandler {
  readonly #ex: Exchange;
  readonly #res: Res;
  readonly #cluster: UpstreamCluster;
  readonly #opts: ForwardOptions;
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

  constructor(ex: Exchange, res: Res, cluster: UpstreamCluster, opts: ForwardOptions, finish: FinishFn) {
    this.#ex = ex;
    this.#res = res;
    this.#cluster = cluster;
    this.#opts = opts;
    this.#finish = finish;
    // `on`, not `once`: the handler guards itself, and once() would allocate a wrapper per request.
    (res as ServerResponse).on('close', this.#onClientClose);
    if (opts.h2 && opts.body !== null) {
      // An HTTP/2 upload cancelled by RST_STREAM ends the body stream as if it were complete: never forward it.
      if (opts.request.aborted) this.#clientGone = true;
      else opts.request.once('aborted', this.#onClientClose);
    }
  }

  /** Picks an endpoint and dispatches; answers 503 itself when nothing can take the request. */
  start(): void {
    if (this.#clientGone || (this.#res as { closed?: boolean }).closed === true) {
      this.#ex.status ||= 499;
      return this.#complete();
    }
    const cluster = this.#cluster;
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
    if (perTry < SHORT_TIMEOUT_MS) this.#deadline = wheel.add(perTry, () => this.#timeout(new PerTryTimeout(perTry)));
    const base = cluster.basePaths[ep.index];
    cluster.pools[ep.index].dispatch(
      // undici streams async iterables too (its types only list Readable).
      { method: this.#opts.method, path: base ? base + this.#opts.path : this.#opts.path, headers: this.#opts.headers, body: this.#opts.body as IncomingMessage | null },
      this,
    );
  }

  onRequestStart(controller: Controller): void {
    this.#controller = controller;
    this.#ex.tUpstreamStart = stamp();
    if (this.#clientGone) controller.abort(new Error('client closed'));
    else if (this.#pendingAbort !== null) controller.abort(this.#pendingAbort);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.#clearDeadline();
    const ex = this.#ex;
    ex.tResponseStart = stamp();
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
    if (this.#clientGone || res.destroyed) return controller.abort(new Error('client closed'));
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
    if (this.#discarding) return;
    this.#ex.bytesOut += chunk.length;
    const res = this.#res;
    if (res.destroyed) return controller.abort(new Error('client closed'));
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

  onResponseEnd(): void {
    if (this.#discarding) {
      this.#release(false);
      return this.#retryLater();
    }
    this.#release(false);
    if (!this.#ended) (this.#res as ServerResponse).end();
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
    // Usually just stamped by #release in the same callback.
    if (this.#ex.tEnd === 0) this.#ex.tEnd = stamp();
    this.#finish(this.#ex);
  }


  readonly #onClientClose = (): void => {
    if (this.#done) return;
    const res = this.#res as ServerResponse;
    if (res.writableFinished && !this.#opts.h2) return;
    this.#clientGone = true;
    this.#controller?.abort(new Error('client closed'));
  };
}

// forward-request inside a pipeline: the same ForwardHandler as the fast path, writing into a ResponseCapture.
import { assertionFromClaims } from './assertion.ts';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERROR_TABLE } from '../lib/errors.ts';
import { ForwardHandler, type ForwardOptions } from './forward-handler.ts';
import { PolicyError, jsonResponse, type ForwardBits, type PolicyContext, type PolicyResponse } from './policy-context.ts';
import { finishOnce } from './policy-run.ts';
import { ResponseCapture } from './response-capture.ts';
import { decodeBody, hasContentEncoding, type BodyDecodeError } from './policy-body.ts';

export interface ForwardSettings {
  /** Collect the whole body before outbound runs (an outbound policy reads it). */
  buffer: boolean;
  failOnErrorStatusCode: boolean;
}

/** API Management's LastError reasons for backend failures (reference/apim.md §2.17). */
function reasonFor(code: string): string {
  switch (code) {
    case 'upstream_timeout':
      return 'Timeout';
    case 'upstream_connect':
    case 'no_healthy_endpoint':
    case 'breaker_open':
    case 'pending_limit':
      return 'BackendConnectionFailure';
    default:
      return 'BackendResponseFailure';
  }
}

function backendError(pc: PolicyContext, cap: ResponseCapture): PolicyError {
  const ex = pc.ex;
  const code = ex.errorCode === '' ? 'internal' : ex.errorCode;
  // The forwarder already rendered the error in the Api's style (API Management's 500 with activityId, or ours).
  const response: PolicyResponse = { status: cap.status, reason: '', headers: cap.headers, body: cap.body(), capture: null };
  // Whatever the policies do next, the forwarder's code stays for logs; the message is the public one.
  return new PolicyError('forward-request', reasonFor(code), ex.errorDetail || ERROR_TABLE[code].message, response);
}

/**
 * The fast way when nothing runs after the backend (no outbound, no onError, no deferred counting or added
 * response headers, not inside retry): the forwarder writes to the client as on a route without policies, and a
 * backend failure gets the same default response onError would have sent.
 */
export function canForwardDirect(pc: PolicyContext, nested: boolean): boolean {
  return pc.directAllowed && !nested && pc.responseHeaders.length === 0 && pc.deferred === null && !pc.bufferResponse;
}

/** The request as the policies left it, for the forwarder. */
function forwardOptions(pc: PolicyContext, bits: ForwardBits): ForwardOptions {
  const req = pc.req;
  return {
    method: req.method,
    path: pc.backendBase + req.path + req.query,
    headers: withLength(req.headers, req.body),
    body: (req.body !== null ? req.body : req.stream) as IncomingMessage | AsyncIterable<Buffer> | null,
    request: bits.request,
    hashKey: bits.hashKey,
    errorStyle: pc.route.errorStyle,
    h2: pc.h2,
    // The end user as policies validated them (validate-jwt, an IdentityProvider): asserted to a mesh backend.
    identity: assertionFromClaims(bits.assertions ?? null, pc.claims),
  };
}

export function forwardDirect(pc: PolicyContext, bits: ForwardBits, res: ServerResponse): void {
  pc.sentDirect = true;
  pc.stopped = true;
  const handler = new ForwardHandler(
    pc.ex,
    res,
    pc.cluster,
    forwardOptions(pc, bits),
    () => finishOnce(pc, bits.finish),
  );
  handler.start();
}

/**
 * The client leaving while the pipeline holds a response still streaming from the backend drops it (once per request;
 * only requests that stream a captured response pay for the listener).
 */
function watchClientClose(pc: PolicyContext, res: ServerResponse): void {
  if (pc.watchingClose) return;
  pc.watchingClose = true;
  res.on('close', () => {
    if (!res.writableFinished) pc.res?.capture?.destroy();
  });
}

/**
 * Sends pc.req to pc.cluster. Resolves with pc.res set (its body buffered, or still streaming in a
 * capture the sender attaches); rejects with a PolicyError for a backend failure.
 */
export function forwardRequest(pc: PolicyContext, bits: ForwardBits, settings: ForwardSettings): Promise<void> {
  // A retried forward replaces the previous response; one still streaming is dropped.
  pc.res?.capture?.abandon();
  pc.res = null;
  const ex = pc.ex;
  ex.errorCode = '';
  ex.errorDetail = '';
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    const settle = (cap: ResponseCapture): void => {
      if (settled) return;
      settled = true;
      if (ex.errorCode !== '') return reject(backendError(pc, cap));
      const res: PolicyResponse = { status: cap.status, reason: '', headers: cap.headers, body: cap.buffered ? cap.body() : null, capture: cap.buffered ? null : cap };
      pc.res = res;
      if (!cap.buffered) watchClientClose(pc, bits.res as ServerResponse);
      const done = (): void => {
        if (settings.failOnErrorStatusCode && cap.status >= 400) {
          return reject(new PolicyError('forward-request', 'BackendErrorStatusCode', `the backend answered ${cap.status}`, res));
        }
        resolve();
      };
      if (res.body === null || !hasContentEncoding(res.headers)) return done();
      // A buffered gzip/deflate/br/zstd body is decoded once for the outbound policies and sent decoded (policy-body.ts).
      decodeBody(res.headers, res.body, bits.maxBufferedBody).then(
        (body) => {
          res.body = body;
          done();
        },
        (err: BodyDecodeError) => {
          const tooLarge = err.code === 'payload_too_large';
          reject(new PolicyError('forward-request', tooLarge ? 'ResponseBodyTooLarge' : 'ResponseBodyDecodeFailure', err.message, jsonResponse(502, { statusCode: 502, message: 'Bad gateway' })));
        },
      );
    };
    const cap = new ResponseCapture(settings.buffer ? 'buffer' : 'stream', bits.maxBufferedBody, {
      // An error response from the forwarder is read whole (its end follows at once): it becomes onError's default.
      head: (c) => {
        if (ex.errorCode === '') settle(c);
      },
      end: settle,
      overflow: (c) => {
        if (settled) return;
        settled = true;
        c.abandon();
        reject(new PolicyError('forward-request', 'ResponseBodyTooLarge', `the response body is larger than ${bits.maxBufferedBody} bytes, the most outbound policies may buffer`, jsonResponse(502, { statusCode: 502, message: 'Bad gateway' })));
      },
    });
    const handler = new ForwardHandler(
      ex,
      cap as unknown as ServerResponse,
      pc.cluster,
      forwardOptions(pc, bits),
      // Buffered, or failed before a head: the pipeline goes on. Streaming: the exchange is done once the
      // body went through to the client (or the client left); before attach, the sender finishes it.
      () => {
        if (!settled) return settle(cap);
        if (cap.attached || (cap.destroyed && !cap.abandoned)) finishOnce(pc, bits.finish);
      },
    );
    handler.start();
  });
}

/** A buffered body goes with its exact length (a policy may have replaced it). */
function withLength(headers: string[], body: Buffer | null): string[] {
  if (body === null) return headers;
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i];
    if (n === 'content-length' || n === 'transfer-encoding') continue;
    out.push(n, headers[i + 1]);
  }
  out.push('content-length', String(body.length));
  return out;
}

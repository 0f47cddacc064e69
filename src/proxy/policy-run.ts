// Runs a compiled pipeline for one request: inbound → backend → outbound, onError on any failure, then sends the response.
import type { ServerResponse } from 'node:http';
import { LockgateError } from '../lib/errors.ts';
import type { AnyResponse } from './error-response.ts';
import { stamp } from './clock.ts';
import type { FinishFn } from './forward-handler.ts';
import { type PolicyContext, PolicyError, errorResponse, jsonResponse, type LastError, type PolicyResponse } from './policy-context.ts';
import type { CompiledPipeline, Step } from './policy-pipeline.ts';
import { writeHeadTo } from './response-capture.ts';
import { enforceAccess } from './access-gate.ts';

/** Runs steps in order; stays synchronous until a step returns a promise. */
export function runSteps(steps: readonly Step[], pc: PolicyContext, from = 0): void | Promise<void> {
  for (let i = from; i < steps.length; i++) {
    if (pc.stopped) return;
    if (pc.ex.policyTrace !== null) pc.ex.policyTrace.push(`${pc.section} ${steps[i].name} (${steps[i].at ?? steps[i].path})`);
    const r = steps[i].run(pc);
    if (r !== undefined) return r.then(() => runSteps(steps, pc, i + 1));
  }
}

/** Where a thrown value becomes context.LastError and the default response (API Management's flow). */
function asPolicyError(err: unknown, pc: PolicyContext, step: Step | undefined): PolicyError {
  if (err instanceof PolicyError) return err;
  const message = (err as Error)?.message ?? String(err);
  const apim = pc.route.errorStyle === 'apim';
  const body = apim
    ? { statusCode: 500, message: 'Internal server error', activityId: pc.ex.requestId }
    : { statusCode: 500, message: 'Internal server error', requestId: pc.ex.requestId };
  const reason = (err as { reason?: string })?.reason ?? (err instanceof LockgateError ? err.code : 'PolicyFailure');
  return new PolicyError(step?.name ?? 'pipeline', reason, message, jsonResponse(500, body));
}

/** Tracks which step is running so a failure can name it (LastError.Path). */
class Tracker {
  step: Step | undefined;
}

function runSection(steps: readonly Step[], pc: PolicyContext, t: Tracker): void | Promise<void> {
  for (let i = 0; i < steps.length; i++) {
    if (pc.stopped) return;
    t.step = steps[i];
    if (pc.ex.policyTrace !== null) pc.ex.policyTrace.push(`${pc.section} ${steps[i].name} (${steps[i].at ?? steps[i].path})`);
    const r = steps[i].run(pc);
    if (r !== undefined) {
      return r.then(() => {
        const rest = steps.slice(i + 1);
        return rest.length === 0 ? undefined : runSection(rest, pc, t);
      });
    }
  }
}

export interface PipelineDeps {
  res: AnyResponse;
  finish: FinishFn;
  /** Called once the response is written (or abandoned): releases the exchange to telemetry. */
}

/**
 * Executes the pipeline and answers the client. Never throws; never leaves the client without a response.
 * `pc.res` ends up holding what is sent. Synchronous while every step is (cached tokens, counters, headers): only a
 * step that returns a promise (a key fetch, the backend call) makes the rest wait for it.
 */
export function executePipeline(p: CompiledPipeline, pc: PolicyContext, deps: PipelineDeps): void {
  const t = new Tracker();
  let r: void | Promise<void>;
  try {
    r = runStages(p, pc, t, 0);
  } catch (err) {
    void recover(err, p, pc, t, deps);
    return;
  }
  if (r === undefined) return sendPolicyResponse(pc, deps);
  r.then(
    () => sendPolicyResponse(pc, deps),
    (err: unknown) => recover(err, p, pc, t, deps),
  );
}

/** The stages, in order: inbound, the gateway AccessPolicy check, backend, outbound (or the rest of it after a cache hit). */
const STAGES = 4;

/** Runs the stages from `stage` on; synchronous until a step returns a promise. */
function runStages(p: CompiledPipeline, pc: PolicyContext, t: Tracker, stage: number): void | Promise<void> {
  for (; stage < STAGES; stage++) {
    let r: void | Promise<void> = undefined;
    if (stage === 0) {
      pc.section = 'inbound';
      r = runSection(p.inbound, pc, t);
    } else if (stage === 1) {
      // Gateway AccessPolicies: after inbound authentication, unless an access-check policy places the check.
      if (!pc.stopped && pc.access !== null && !p.explicitAccessCheck) enforceAccess(pc);
    } else if (stage === 2) {
      if (!pc.stopped) {
        pc.section = 'backend';
        r = runSection(p.backend, pc, t);
      }
    } else if (!pc.stopped) {
      pc.section = 'outbound';
      r = runSection(p.outbound, pc, t);
    } else if (pc.resumeOutboundAfter !== null) {
      // A cache hit: the backend is skipped and outbound goes on after cache-store, as in API Management.
      const from = p.outbound.findIndex((st) => st.name === pc.resumeOutboundAfter);
      pc.resumeOutboundAfter = null;
      pc.stopped = false;
      pc.section = 'outbound';
      r = runSection(from === -1 ? p.outbound : p.outbound.slice(from + 1), pc, t);
    }
    if (r !== undefined) {
      const next = stage + 1;
      return r.then(() => runStages(p, pc, t, next));
    }
  }
}

/** A step failed: context.LastError, the default response, onError (API Management's flow), then the answer. */
async function recover(err: unknown, p: CompiledPipeline, pc: PolicyContext, t: Tracker, deps: PipelineDeps): Promise<void> {
  const pe = asPolicyError(err, pc, t.step);
  const section = pc.section;
  pc.lastError = lastErrorOf(pe, section, t.step);
  // A response still streaming from the backend is dropped: the error response replaces it.
  pc.res?.capture?.abandon();
  pc.res = pe.response;
  pc.stopped = false;
  pc.section = 'onError';
  try {
    const r = runSection(p.onError, pc, t);
    if (r !== undefined) await r;
  } catch (err2) {
    // A failure inside onError: the default 500, and the first error stays the one logged.
    pc.res?.capture?.abandon();
    pc.res = asPolicyError(err2, pc, t.step).response;
  }
  pc.ex.errorCode ||= 'policy';
  pc.ex.errorDetail ||= `${pe.source}: ${pe.reason}: ${pe.message}`;
  sendPolicyResponse(pc, deps);
}

function lastErrorOf(pe: PolicyError, section: string, step: Step | undefined): LastError {
  return { source: pe.source, reason: pe.reason, message: pe.message, scope: step?.scope ?? '', section, path: step?.path ?? '', policyId: '' };
}

/** Writes pc.res to the client (streams a captured backend body through) and finishes the exchange once. */
export function sendPolicyResponse(pc: PolicyContext, deps: PipelineDeps): void {
  // forward-request streamed the backend's answer (or its error) to the client and finishes the exchange.
  if (pc.sentDirect) return;
  const ex = pc.ex;
  const res = deps.res;
  if (pc.deferred !== null) {
    pc.stopped = false;
    for (const f of pc.deferred) {
      try {
        f(pc);
      } catch {
        // A failed deferred count (an expression error) must not turn a finished response into an error.
      }
    }
    pc.deferred = null;
  }
  const out: PolicyResponse = pc.res ?? { status: 200, reason: '', headers: [], body: null, capture: null };
  ex.status = out.status;
  const headers = out.headers;
  if (pc.responseHeaders.length) headers.push(...pc.responseHeaders);
  if (!headers.includes('x-request-id')) headers.push('x-request-id', ex.requestId);
  if ((res as { destroyed?: boolean }).destroyed || res.headersSent) {
    out.capture?.abandon();
    ex.status ||= 499;
    return finishOnce(pc, deps.finish);
  }
  try {
    if (out.capture !== null && out.body === null) {
      // The body streams unchanged, so the backend's Content-Length (if any) still holds.
      cleanFraming(headers, -1);
      const cap = out.capture;
      if (cap.attach(res, out.status, headers, pc.h2)) return finishOnce(pc, deps.finish);
      // The forwarder finishes the exchange when the body ends (see policy-forward.ts).
      return;
    }
    const body = out.body ?? EMPTY;
    cleanFraming(headers, body.length);
    writeHeadTo(res, out.status, headers, pc.h2);
    (res as ServerResponse).end(body);
    ex.bytesOut = body.length;
  } catch (err) {
    ex.errorCode ||= 'internal';
    ex.errorDetail ||= (err as Error).message;
    res.destroy();
  }
  finishOnce(pc, deps.finish);
}

const EMPTY = Buffer.alloc(0);

/** Framing headers are ours to set: drop hop-by-hop ones, and with a known `length` set it as Content-Length. */
function cleanFraming(headers: string[], length: number): void {
  let w = 0;
  for (let r = 0; r < headers.length; r += 2) {
    const n = headers[r];
    if ((length >= 0 && n === 'content-length') || n === 'transfer-encoding' || n === 'connection' || n === 'keep-alive') continue;
    headers[w++] = n;
    headers[w++] = headers[r + 1];
  }
  headers.length = w;
  if (length >= 0) headers.push('content-length', String(length));
}

/** Hands the exchange to telemetry exactly once (the forwarder and the sender may both get there). */
export function finishOnce(pc: PolicyContext, finish: FinishFn): void {
  if (pc.finished) return;
  pc.finished = true;
  const ex = pc.ex;
  if (ex.tEnd === 0) ex.tEnd = stamp();
  finish(ex);
}

export { errorResponse };

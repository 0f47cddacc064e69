// Entry from the request handler into a route's policy pipeline: picks the pipeline, reads the body if a policy needs it, runs it.
import type { ServerResponse } from 'node:http';
import type { AnyResponse } from './error-response.ts';
import type { SubscriptionRecord } from '../model/subscription.ts';
import type { Exchange } from './exchange.ts';
import type { FinishFn } from './forward-handler.ts';
import { PolicyContext, errorResponse } from './policy-context.ts';
import type { ForwardBits, PolicyRoute, RouteAccess } from './policy-context.ts';
import type { CompiledPipeline, RoutePolicies } from './policy-pipeline.ts';
import { executePipeline, sendPolicyResponse } from './policy-run.ts';
import { decodeBody, hasContentEncoding } from './policy-body.ts';

export function pipelineFor(p: RoutePolicies, product: string): CompiledPipeline | null {
  if (product === '') return p.none;
  const found = p.byProduct.get(product);
  return found === undefined ? p.none : found;
}

export interface PipelineStart {
  ex: Exchange;
  route: PolicyRoute;
  res: AnyResponse;
  h2: boolean;
  method: string;
  /** Backend path (prefix stripped) and query. */
  path: string;
  query: string;
  /** Canonical client path and query. */
  originalPath: string;
  originalQuery: string;
  /** Upstream headers as built by buildUpstreamHeaders (lower-case names expected by policies). */
  headers: string[];
  clientHeaders: string[];
  /** The body stream (possibly size-capped), or null. */
  body: AsyncIterable<Buffer> | null;
  product: string;
  subscription: SubscriptionRecord | null;
  finish: FinishFn;
  forward: Omit<ForwardBits, 'finish'>;
  /** Most bytes a policy may buffer (request or response body). */
  maxBufferedBody: number;
  /** The route's gateway AccessPolicies, or null. */
  access?: RouteAccess | null;
  /** The end user an IdentityProvider vouched for (bearer token or session) before the pipeline; validate-jwt may still replace it. */
  claims?: Record<string, unknown> | null;
}

function lowerNames(raw: string[]): string[] {
  const out = new Array<string>(raw.length);
  for (let i = 0; i < raw.length; i += 2) {
    out[i] = raw[i].toLowerCase();
    out[i + 1] = raw[i + 1];
  }
  return out;
}

export function startPipeline(p: CompiledPipeline, s: PipelineStart): void {
  const pc = new PolicyContext(
    s.ex,
    s.route,
    {
      method: s.method,
      path: s.path,
      query: s.query,
      headers: lowerNames(s.headers),
      body: null,
      stream: s.body,
      originalPath: s.originalPath,
      originalQuery: s.originalQuery,
    },
    s.clientHeaders,
    s.h2,
  );
  pc.product = s.product;
  pc.facts = p.facts;
  pc.subscription = s.subscription;
  pc.access = s.access ?? null;
  pc.claims = s.claims ?? null;
  pc.bufferResponse = p.needsResponseBody;
  pc.directAllowed = p.outbound.length === 0 && p.onError.length === 0 && p.backend.length > 0 && p.backend[p.backend.length - 1].name === 'forward-request';
  pc.forward = { ...s.forward, finish: s.finish };
  const deps = { res: s.res, finish: s.finish };
  if (p.needsRequestBody && s.body !== null) {
    const max = s.maxBufferedBody;
    readBody(s.body, max)
      // A gzip/deflate/br/zstd body is decoded once here and stays decoded (policy-body.ts); others pass as they are.
      .then((buf) => (hasContentEncoding(pc.req.headers) ? decodeBody(pc.req.headers, buf, max) : buf))
      .then(
        (buf) => {
          pc.req.body = buf;
          pc.req.stream = null;
          executePipeline(p, pc, deps);
        },
        (err: Error) => {
          const tooLarge = (err as { code?: string }).code === 'payload_too_large';
          pc.ex.errorCode = tooLarge ? 'payload_too_large' : 'bad_request';
          pc.ex.errorDetail = err.message;
          pc.res = tooLarge ? errorResponse(413, 'Request entity too large') : errorResponse(400, 'Bad request');
          // The rest of the body is unread: the connection cannot carry another request.
          if ('shouldKeepAlive' in s.res) (s.res as ServerResponse).shouldKeepAlive = false;
          sendPolicyResponse(pc, deps);
        },
      );
    return;
  }
  executePipeline(p, pc, deps);
}

export type PreflightStart = Pick<PipelineStart, 'ex' | 'route' | 'res' | 'h2' | 'method' | 'path' | 'query' | 'clientHeaders' | 'finish'>;

/** Runs only the pipeline's cors policy (it always answers a preflight) and sends its answer. */
export function startPreflight(p: CompiledPipeline, s: PreflightStart): void {
  const pc = new PolicyContext(
    s.ex,
    s.route,
    { method: s.method, path: s.path, query: s.query, headers: lowerNames(s.clientHeaders), body: null, stream: null, originalPath: s.path, originalQuery: s.query },
    s.clientHeaders,
    s.h2,
  );
  pc.facts = p.facts;
  if (s.ex.policyTrace !== null) s.ex.policyTrace.push(`inbound cors (${p.cors!.at ?? p.cors!.path})`);
  try {
    void p.cors!.run(pc);
  } catch (err) {
    pc.res = errorResponse(500, (err as Error).message);
  }
  sendPolicyResponse(pc, { res: s.res, finish: s.finish });
}

async function readBody(body: AsyncIterable<Buffer>, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) throw Object.assign(new Error(`request body over ${max} bytes, the most a policy may buffer`), { code: 'payload_too_large' });
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

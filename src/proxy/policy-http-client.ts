// Calls policies make to other services (send-request, send-one-way-request): the request they build, the per-worker
// HTTP client (one undici Agent per client certificate, keep-alive pools, bounded connections) and the response object
// expressions read. The client is a service (`env.services.httpClient`), so `lockgate test` can replace it with stubs.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { Agent } from 'undici';
import { CAPS, toCelValue } from '../policy/expression-context.ts';
import { FRAMING_AND_HOP } from './hop-by-hop.ts';
import type { PolicyContext } from './policy-context.ts';
import type { CompileEnv, PolicyServices } from './policy-pipeline.ts';
import { compileTemplate, compileValue, isExpression, type TemplateFn, type ValueFn } from './policy-values.ts';

/** A client certificate read at compile time; `id` (a hash of both files) keys the Agent that presents it. */
export interface ClientCertificate {
  id: string;
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
}

export interface OutboundRequest {
  url: string;
  method: string;
  /** Flat [name, value, …] list, lower-case names, no hop-by-hop or framing headers. */
  headers: string[];
  body: Buffer | null;
  /** Milliseconds for the whole call, body included. */
  timeout: number;
  maxResponseBodySize: number;
  /** TLS settings for https URLs; null for the defaults (system roots, no client certificate). */
  tls: OutboundTls | null;
}

/** A client certificate and/or a CA bundle; `id` keys the Agent that uses them. */
export interface OutboundTls {
  id: string;
  cert?: Buffer;
  key?: Buffer;
  /** Replaces the system roots for verifying servers. */
  ca?: Buffer;
}

export interface OutboundResponse {
  status: number;
  reason: string;
  /** Flat [name, value, …] list, lower-case names. */
  headers: string[];
  body: Buffer;
}

export type OutboundErrorCode = 'timeout' | 'connect' | 'too_large' | 'failed';

/** A failed call. `code` picks LastError.Reason. */
export class OutboundError extends Error {
  readonly code: OutboundErrorCode;
  constructor(code: OutboundErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** What send-request needs: one call, resolved with the whole response or rejected with an OutboundError. */
export type HttpClient = (req: OutboundRequest) => Promise<OutboundResponse>;

/** LastError.Reason for a failed call (the same words forward-request uses). */
export function reasonOf(code: OutboundErrorCode): string {
  switch (code) {
    case 'timeout':
      return 'Timeout';
    case 'connect':
      return 'BackendConnectionFailure';
    case 'too_large':
      return 'ResponseBodyTooLarge';
    default:
      return 'BackendResponseFailure';
  }
}

// ---------- the per-worker client ----------

/** Connections per origin per Agent; requests beyond wait (bounded by their timeout). */
const CONNECTIONS_PER_ORIGIN = 32;
/** Distinct origins one Agent keeps pools for (an expression URL could name many). */
const MAX_ORIGINS = 1024;
const CONNECT_TIMEOUT = 10_000;

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'UND_ERR_INFO']);

function flatHeaders(h: Record<string, string | string[] | undefined>): string[] {
  const out: string[] = [];
  for (const [name, v] of Object.entries(h)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const one of v) out.push(name.toLowerCase(), one);
    else out.push(name.toLowerCase(), v);
  }
  return out;
}

/** The real client: undici Agents shared by every policy of the worker (one per client certificate). */
export function createHttpClient(): HttpClient {
  const agents = new Map<string, Agent>();
  const agentFor = (tls: OutboundTls | null): Agent => {
    const key = tls?.id ?? '';
    let a = agents.get(key);
    if (a === undefined) {
      a = new Agent({
        connections: CONNECTIONS_PER_ORIGIN,
        pipelining: 1,
        keepAliveTimeout: 4_000,
        keepAliveMaxTimeout: 60_000,
        maxOrigins: MAX_ORIGINS,
        connect: { timeout: CONNECT_TIMEOUT, ...(tls?.cert !== undefined ? { cert: tls.cert, key: tls.key } : {}), ...(tls?.ca !== undefined ? { ca: tls.ca } : {}) },
      });
      agents.set(key, a);
    }
    return a;
  };
  return async (r) => {
    const u = new URL(r.url);
    const signal = AbortSignal.timeout(r.timeout);
    let body: AsyncIterable<Buffer> & { destroy(): void };
    try {
      const res = await agentFor(r.tls).request({
        origin: u.origin,
        path: `${u.pathname}${u.search}`,
        method: r.method,
        headers: r.headers,
        body: r.body,
        signal,
        headersTimeout: r.timeout,
        bodyTimeout: r.timeout,
      });
      body = res.body as unknown as typeof body;
      const declared = Number(res.headers['content-length'] ?? -1);
      if (declared > r.maxResponseBodySize) {
        body.destroy();
        throw new OutboundError('too_large', `the response body (${declared} bytes) is larger than maxResponseBodySize (${r.maxResponseBodySize})`);
      }
      const chunks: Buffer[] = [];
      let n = 0;
      for await (const c of body) {
        n += c.length;
        if (n > r.maxResponseBodySize) {
          body.destroy();
          throw new OutboundError('too_large', `the response body is larger than maxResponseBodySize (${r.maxResponseBodySize})`);
        }
        chunks.push(c);
      }
      return { status: res.statusCode, reason: res.statusText ?? '', headers: flatHeaders(res.headers), body: Buffer.concat(chunks) };
    } catch (err) {
      if (err instanceof OutboundError) throw err;
      if (signal.aborted) throw new OutboundError('timeout', `no complete response within ${r.timeout} ms`);
      const code = (err as { code?: string }).code ?? '';
      const msg = `${(err as Error).message}${code ? ` (${code})` : ''}`;
      throw new OutboundError(code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' ? 'timeout' : CONNECT_CODES.has(code) ? 'connect' : 'failed', msg);
    }
  };
}

/** The worker's client: the one the composition root (or `lockgate test`) put in services, else a real one made once. */
export function httpClientOf(services: PolicyServices): HttpClient {
  let c = services.httpClient as HttpClient | undefined;
  if (c === undefined) {
    c = createHttpClient();
    services.httpClient = c;
  }
  return c;
}

// ---------- logging for fire-and-forget calls ----------

export type LogFn = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/** `services.log` when the composition root gives one, else JSON lines on stderr (the supervisor's format), at most 10 a second. */
export function logOf(services: PolicyServices): LogFn {
  let l = services.log as LogFn | undefined;
  if (l === undefined) {
    let second = 0;
    let count = 0;
    let suppressed = 0;
    l = (level, msg, fields) => {
      const now = Math.floor(Date.now() / 1000);
      if (now !== second) {
        second = now;
        count = 0;
      }
      if (++count > 10) {
        suppressed++;
        return;
      }
      const extra = suppressed > 0 ? { suppressed } : {};
      suppressed = 0;
      process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields, ...extra })}\n`);
    };
    services.log = l;
  }
  return l;
}

// ---------- client certificates ----------

/** Reads a certificate and key named in a policy (relative to its config file) and checks that they belong together. */
export function loadClientCertificate(spec: { certFile: string; keyFile: string }, env: CompileEnv): ClientCertificate {
  const base = dirname(env.entry.file);
  const certFile = resolve(base, spec.certFile);
  const keyFile = resolve(base, spec.keyFile);
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(certFile);
    key = readFileSync(keyFile);
  } catch (err) {
    throw new Error(`cannot read the client certificate: ${(err as Error).message}`, { cause: err });
  }
  try {
    // Fails on bad PEM and on a key that does not match the certificate.
    createSecureContext({ cert, key });
  } catch (err) {
    throw new Error(`client certificate ${certFile} with key ${keyFile}: ${(err as Error).message}`, { cause: err });
  }
  const id = createHash('sha256').update(cert).update('\0').update(key).digest('hex').slice(0, 32);
  return { id, certFile, keyFile, cert, key };
}

/** A PEM CA bundle named in a policy (relative to its config file). */
export function loadCaFile(name: string, env: CompileEnv): Buffer {
  const file = resolve(dirname(env.entry.file), name);
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    throw new Error(`cannot read caFile: ${(err as Error).message}`, { cause: err });
  }
  try {
    createSecureContext({ ca: pem });
  } catch (err) {
    throw new Error(`caFile ${file}: ${(err as Error).message}`, { cause: err });
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error(`caFile ${file} holds no PEM certificate`);
  return pem;
}

// ---------- building the request ----------

export interface RequestBuilder {
  build(pc: PolicyContext): OutboundRequest;
  needsRequestBody: boolean;
  needsResponseBody: boolean;
}

const MAX_TIMEOUT = 10 * 60_000;
const MAX_BODY = 64 * 1024 * 1024;

/** The current backend request's URL (mode copy without `url`): the cluster's first endpoint plus the path forward-request would send. */
function backendUrl(pc: PolicyContext): string {
  const first = pc.cluster.spec.endpoints[0]?.url ?? '';
  return `${first.replace(/\/$/, '')}${pc.backendBase}${pc.req.path}${pc.req.query}`;
}

function checkedUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw Object.assign(new Error(`${JSON.stringify(url.slice(0, 200))} is not a URL`), { reason: 'InvalidUrl' });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw Object.assign(new Error(`${JSON.stringify(url.slice(0, 200))} is not an http(s) URL`), { reason: 'InvalidUrl' });
  return u.href;
}

/** A URL for messages and logs: without its query (which may carry a key, as in API Management's samples). */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url.slice(0, 100);
  }
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Compiles the attributes both send policies share (mode, url, method, headers, body, timeout, certificate). */
export function compileRequest(attrs: Record<string, unknown>, env: CompileEnv): RequestBuilder {
  const copy = attrs.mode === 'copy';
  if (!copy && typeof attrs.url !== 'string') throw new Error('url is required with mode new');
  const url: ValueFn | null = typeof attrs.url === 'string' ? compileValue(attrs.url, env) : null;
  if (typeof attrs.url === 'string' && !isExpression(attrs.url)) checkedUrl(attrs.url);
  const method: ValueFn | null = typeof attrs.method === 'string' ? compileValue(attrs.method, env) : null;
  if (typeof attrs.method === 'string' && method!.reads.size === 0 && !TOKEN.test(attrs.method)) throw new Error(`method ${JSON.stringify(attrs.method)} is not a valid HTTP method`);
  const headers = Object.entries((attrs.headers ?? {}) as Record<string, string[]>).map(([name, vals]) => {
    const lower = name.toLowerCase();
    if (!TOKEN.test(name)) throw new Error(`header name ${JSON.stringify(name)} is not valid`);
    // Host may be given (API Management's self-call through https://127.0.0.1 needs it); framing is the client's.
    if ((FRAMING_AND_HOP.has(lower) && lower !== 'host') || lower === 'expect') throw new Error(`header ${JSON.stringify(name)} is set by the HTTP client and cannot be given`);
    return { name: lower, values: vals.map((v) => compileValue(v, env)) };
  });
  const body: TemplateFn | null = attrs.body === undefined ? null : compileTemplate(attrs.body, env);
  const jsonBody = attrs.body !== undefined && typeof attrs.body !== 'string';
  const timeout = typeof attrs.timeout === 'number' ? attrs.timeout : 60_000;
  if (timeout > MAX_TIMEOUT) throw new Error(`timeout is at most ${MAX_TIMEOUT / 1000}s`);
  const maxResponseBodySize = typeof attrs.maxResponseBodySize === 'number' ? attrs.maxResponseBodySize : 1024 * 1024;
  if (maxResponseBodySize > MAX_BODY) throw new Error('maxResponseBodySize is at most 64MiB');
  const cert = attrs.authenticationCertificate === undefined ? null : loadClientCertificate(attrs.authenticationCertificate as { certFile: string; keyFile: string }, env);
  const ca = typeof attrs.caFile === 'string' ? loadCaFile(attrs.caFile, env) : null;
  const tls: OutboundTls | null = cert === null && ca === null
    ? null
    : { id: `${cert?.id ?? ''}/${ca === null ? '' : createHash('sha256').update(ca).digest('hex').slice(0, 32)}`, ...(cert === null ? {} : { cert: cert.cert, key: cert.key }), ...(ca === null ? {} : { ca }) };
  const reads = new Set<string>();
  for (const f of [url, method, ...headers.flatMap((h) => h.values)]) if (f !== null) for (const r of f.reads) reads.add(r);
  if (body !== null) for (const r of body.reads) reads.add(r);
  return {
    // mode copy sends the current body unless `body` replaces it.
    needsRequestBody: (copy && body === null) || reads.has('Request.Body'),
    needsResponseBody: reads.has('Response.Body'),
    build(pc) {
      const out: string[] = [];
      if (copy) {
        const h = pc.req.headers;
        for (let i = 0; i < h.length; i += 2) {
          const n = h[i];
          if (FRAMING_AND_HOP.has(n) || n === 'expect' || n.startsWith(':')) continue;
          out.push(n, h[i + 1]);
        }
      }
      for (const { name, values } of headers) {
        for (let i = out.length - 2; i >= 0; i -= 2) if (out[i] === name) out.splice(i, 2);
        for (const f of values) out.push(name, f(pc));
      }
      let payload: Buffer | null = copy ? pc.req.body : null;
      if (body !== null) {
        const v = body.fn(pc);
        payload = Buffer.from(typeof v === 'string' ? v : JSON.stringify(v) ?? '');
        if (jsonBody && !out.includes('content-type')) out.push('content-type', 'application/json; charset=utf-8');
      }
      const m = method !== null ? method(pc) : copy ? pc.req.method : 'GET';
      if (!TOKEN.test(m)) throw Object.assign(new Error(`method ${JSON.stringify(m.slice(0, 50))} is not a valid HTTP method`), { reason: 'InvalidMethod' });
      return {
        url: checkedUrl(url !== null ? url(pc) : backendUrl(pc)),
        method: m.toUpperCase(),
        headers: out,
        body: payload,
        timeout,
        maxResponseBodySize,
        tls,
      };
    },
  };
}

// ---------- the response variable ----------

function isJson(contentType: string | undefined, text: string): boolean {
  if (contentType !== undefined && /[/+]json\b/i.test(contentType)) return true;
  const c = text.trimStart()[0];
  return c === '{' || c === '[';
}

/** Whether expressions can read `v` as a variable (within CAPS.variables); a value over a cap would make all of context.Variables fail. */
function readable(v: unknown): boolean {
  try {
    toCelValue(v, CAPS.variables, 'send-request');
    return true;
  } catch {
    return false;
  }
}

/**
 * The value send-request stores. Expressions see API Management's IResponse fields: StatusCode, StatusReason,
 * Headers (lower-case name → value, repeats joined with ", "), Body (text) and, when the body is JSON, Json (parsed).
 * Body and Json are left out when they would not fit the caps on variables (64 KiB of text): reading them then fails
 * instead of every read of context.Variables failing. return-response (responseVariableName) reads the
 * non-enumerable `status`, `reason`, `headers` (flat list) and `body` (Buffer), which expressions never see.
 */
export function responseVariable(r: OutboundResponse): Record<string, unknown> {
  // No prototype: a header named __proto__ is just a header.
  const Headers = Object.create(null) as Record<string, string>;
  for (let i = 0; i < r.headers.length; i += 2) {
    const n = r.headers[i];
    Headers[n] = Headers[n] === undefined ? r.headers[i + 1] : `${Headers[n]}, ${r.headers[i + 1]}`;
  }
  const v: Record<string, unknown> = { StatusCode: r.status, StatusReason: r.reason, Headers };
  if (r.body.length <= CAPS.variables.totalChars * 4) {
    const text = r.body.toString('utf8');
    v.Body = text;
    if (text.length > 0 && isJson(Headers['content-type'], text)) {
      try {
        v.Json = JSON.parse(text) as unknown;
      } catch {
        // Not JSON after all: Body only.
      }
    }
  }
  if (!readable(v)) {
    delete v.Json;
    if (!readable(v)) {
      delete v.Body;
      if (!readable(v)) v.Headers = Object.create(null) as Record<string, string>;
    }
  }
  Object.defineProperties(v, {
    status: { value: r.status },
    reason: { value: r.reason },
    headers: { value: r.headers },
    body: { value: r.body },
  });
  return v;
}

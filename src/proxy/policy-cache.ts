// Shared by the caching policies: attribute values (flags and durations that may be expressions), the response
// cache key, the variants stored under one key (per Vary and Content-Encoding), Cache-Control both ways, and
// how cache-store reads a body that streams to the client without buffering it.
import { createHash } from 'node:crypto';
import { parseDuration } from '../lib/duration.ts';
import { getHeader, removeHeader, type PolicyContext, type PolicyResponse } from './policy-context.ts';
import type { CompileEnv } from './policy-pipeline.ts';
import { compileValue, isExpression } from './policy-values.ts';
import type { ResponseCapture } from './response-capture.ts';

const NONE: ReadonlySet<string> = new Set();

export type Flag = ((pc: PolicyContext) => boolean) & { reads: ReadonlySet<string> };
export type Millis = ((pc: PolicyContext) => number) & { reads: ReadonlySet<string> };

function evalError(message: string): Error {
  return Object.assign(new Error(message), { reason: 'ExpressionValueEvaluationFailure' });
}

/** `true`, `false`, or an expression giving one (API Management allows expressions in these attributes). */
export function compileFlag(v: unknown, what: string, env: CompileEnv): Flag {
  if (typeof v === 'boolean') return Object.assign(() => v, { reads: NONE });
  if (typeof v === 'string' && isExpression(v)) {
    const f = compileValue(v, env);
    return Object.assign(
      (pc: PolicyContext) => {
        const t = f(pc).trim().toLowerCase();
        if (t === 'true') return true;
        if (t === 'false') return false;
        throw evalError(`${what}: the expression gave ${JSON.stringify(t)}, not true or false`);
      },
      { reads: f.reads },
    );
  }
  throw new Error(`${what} must be true, false or an expression @(…), got ${JSON.stringify(v)}`);
}

/** One of `choices`, or an expression giving one. */
export function compileChoice<T extends string>(v: unknown, choices: readonly T[], what: string, env: CompileEnv): ((pc: PolicyContext) => T) & { reads: ReadonlySet<string> } {
  if (typeof v === 'string' && isExpression(v)) {
    const f = compileValue(v, env);
    return Object.assign(
      (pc: PolicyContext) => {
        const t = f(pc).trim().toLowerCase();
        if ((choices as readonly string[]).includes(t)) return t as T;
        throw evalError(`${what}: the expression gave ${JSON.stringify(t)}, not one of ${choices.join(', ')}`);
      },
      { reads: f.reads },
    );
  }
  if (typeof v === 'string' && (choices as readonly string[]).includes(v)) return Object.assign(() => v as T, { reads: NONE });
  throw new Error(`${what} must be one of ${choices.join(', ')} or an expression @(…), got ${JSON.stringify(v)}`);
}

/** A literal duration needs a unit (`300s`, `1h`, `PT1H`); a bare number is ambiguous and refused. */
export function literalDuration(v: string): number | undefined {
  if (!/[a-zA-Z]/.test(v)) return undefined;
  const ms = parseDuration(v);
  return ms !== undefined && ms > 0 ? ms : undefined;
}

/**
 * `duration`: a literal duration, or an expression giving seconds (API Management's unit, so
 * `@(context.Variables["ttl"])` works as there) or a duration with a unit. A result of 0 or less stores nothing.
 */
export function compileDuration(v: unknown, what: string, env: CompileEnv): Millis {
  if (typeof v === 'string' && isExpression(v)) {
    const f = compileValue(v, env);
    return Object.assign(
      (pc: PolicyContext) => {
        const t = f(pc).trim();
        if (/^-?\d+(?:\.\d+)?$/.test(t)) return Number(t) * 1000;
        const ms = literalDuration(t);
        if (ms === undefined) throw evalError(`${what}: the expression gave ${JSON.stringify(t)}, not seconds or a duration`);
        return ms;
      },
      { reads: f.reads },
    );
  }
  const ms = typeof v === 'string' ? literalDuration(v) : undefined;
  if (ms === undefined) throw new Error(`${what} must be a duration with a unit (such as "300s" or "1h") or an expression @(…), got ${JSON.stringify(v)}`);
  return Object.assign(() => ms, { reads: NONE });
}

/** `caching-type`: Lockgate has only the built-in (internal) cache, which `prefer-external` falls back to. */
export function checkCachingType(v: unknown): void {
  if (v === 'external') {
    throw new Error('cachingType "external" needs an external (Redis) cache, which Lockgate does not have; use "internal" or "prefer-external" (the built-in cache)');
  }
}

// ---------------------------------------------------------------------------------------------------------
// The value cache (cache-store-value, cache-lookup-value, cache-remove-value): global keys, as in API Management.

/** The cache key of a value key: hashed, so a long key (a whole Authorization header) costs 45 bytes and stays unreadable. */
export function valueKey(key: string): string {
  return `v:${createHash('sha256').update(key).digest('base64url')}`;
}

/** What a stored value costs, roughly (Infinity for one that cannot be measured: it is not stored). */
export function valueBytes(v: unknown): number {
  if (typeof v === 'string') return v.length * 2 + 16;
  if (v === null || v === undefined || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return 16;
  if (Buffer.isBuffer(v)) return v.length + 64;
  try {
    const text = JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? String(x) : x));
    return text === undefined ? 16 : text.length * 4 + 64;
  } catch {
    return Infinity;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The response cache: one entry per key holds the variants stored under it.

export type Downstream = 'none' | 'private' | 'public';

export interface StoredResponse {
  status: number;
  /** Response headers as cache-store saw them (no framing, no request id). */
  headers: string[];
  body: Buffer;
  /** Content-Encoding, lower case, '' for identity. */
  encoding: string;
  /** The request's values of the headers the response's Vary names (Accept-Encoding aside, matched by `encoding`). */
  vary: Array<[string, string | undefined]>;
  expiresAt: number;
}

/** Most variants kept per key (encodings × Vary values); the oldest goes first. */
export const MAX_VARIANTS = 4;

/** What cache-lookup found out, for cache-store to use (the request may have changed in between). */
export interface LookupState {
  key: string;
  /** The request headers when the lookup ran (Vary values are taken from them). */
  headers: string[];
  downstream: Downstream;
  mustRevalidate: boolean;
}

const states = new WeakMap<PolicyContext, LookupState>();

export function setLookupState(pc: PolicyContext, s: LookupState): void {
  states.set(pc, s);
}

export function lookupStateOf(pc: PolicyContext): LookupState | undefined {
  return states.get(pc);
}

/** A header from a raw (original case) [name, value, …] list, repeated ones joined with ", ". */
function rawHeader(raw: string[], lower: string): string | undefined {
  let out: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toLowerCase() === lower) out = out === undefined ? raw[i + 1] : `${out}, ${raw[i + 1]}`;
  }
  return out;
}

/** The Authorization header the client sent and the one the request has now (a policy may have changed it). */
export function authorizationOf(pc: PolicyContext): string | undefined {
  const sent = rawHeader(pc.clientHeaders, 'authorization');
  const now = getHeader(pc.req.headers, 'authorization');
  if (sent === undefined && now === undefined) return undefined;
  return `${sent ?? ''}\n${now ?? ''}`;
}

export interface KeyParts {
  varyByHeader: readonly string[];
  varyByQueryParameter: readonly string[];
}

/**
 * The response cache key: where the request goes (Api, operation, product, path, backend), the listed
 * headers and query parameters, and who asks: the subscription and the Authorization header are always
 * part of it, so a caller never gets a response stored for another. Hashed: the key holds no secrets.
 */
export function responseKey(pc: PolicyContext, parts: KeyParts): string {
  const f = pc.facts;
  const params = new URLSearchParams(pc.req.query.startsWith('?') ? pc.req.query.slice(1) : pc.req.query);
  const material = JSON.stringify([
    f?.apiKey ?? pc.route.api,
    f?.operation ?? pc.route.operation,
    pc.product,
    pc.req.originalPath,
    pc.cluster.name,
    pc.backendBase + pc.req.path,
    parts.varyByQueryParameter.map((n) => [n, params.getAll(n)]),
    parts.varyByHeader.map((n) => [n, getHeader(pc.req.headers, n) ?? null]),
    // The subscription; without one (an Api that needs no key), a key the client sent anyway under the default header name.
    pc.subscription !== null ? pc.subscription.id : ['key', rawHeader(pc.clientHeaders, 'ocp-apim-subscription-key') ?? null],
    authorizationOf(pc) ?? null,
  ]);
  return `r:${createHash('sha256').update(material).digest('base64url')}`;
}

/** Directive names of a Cache-Control (or Pragma) value, lower case. */
export function directives(value: string | undefined): Set<string> {
  const out = new Set<string>();
  if (value === undefined) return out;
  for (const part of value.split(',')) {
    const name = part.split('=')[0].trim().toLowerCase();
    if (name) out.add(name);
  }
  return out;
}

/**
 * How much a request with this Accept-Encoding wants a body in `coding` (a Content-Encoding value; '' is
 * identity): 0 when it does not take it, else its q-value (identity it did not list counts least).
 */
export function encodingWeight(acceptEncoding: string | undefined, coding: string): number {
  const codings = coding.split(',').map((c) => c.trim().toLowerCase()).filter((c) => c !== '' && c !== 'identity');
  if (codings.length === 0) codings.push('identity');
  // No Accept-Encoding: only identity (RFC 9110 would allow any, but clients that send none rarely decode).
  if (acceptEncoding === undefined) return codings[0] === 'identity' ? 1 : 0;
  const q = new Map<string, number>();
  for (const item of acceptEncoding.split(',')) {
    const [name, ...params] = item.split(';');
    const n = name.trim().toLowerCase();
    if (!n) continue;
    let weight = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m) weight = Number(m[1]);
    }
    q.set(n === 'x-gzip' ? 'gzip' : n, weight);
  }
  const star = q.get('*');
  let least = Infinity;
  for (const c of codings) {
    const w = q.get(c === 'x-gzip' ? 'gzip' : c);
    const weight = w !== undefined ? w : c === 'identity' ? (star === undefined || star > 0 ? 0.0001 : 0) : (star ?? 0);
    least = Math.min(least, weight > 0 ? weight : 0);
  }
  return least;
}

/** Whether a request with this Accept-Encoding takes a body in `coding`. */
export function acceptsEncoding(acceptEncoding: string | undefined, coding: string): boolean {
  return encodingWeight(acceptEncoding, coding) > 0;
}

/** The variant of `list` this request may get: fresh, matching its Vary values, in the encoding it prefers (newest on a tie). */
export function pickVariant(list: readonly StoredResponse[], headers: string[], now: number): StoredResponse | undefined {
  const ae = getHeader(headers, 'accept-encoding');
  let best: StoredResponse | undefined;
  let bestWeight = 0;
  for (let i = list.length - 1; i >= 0; i--) {
    const v = list[i];
    if (v.expiresAt <= now) continue;
    const w = encodingWeight(ae, v.encoding);
    if (w <= bestWeight) continue;
    if (v.vary.every(([n, val]) => getHeader(headers, n) === val)) {
      best = v;
      bestWeight = w;
    }
  }
  return best;
}

/** `list` with `v` added, replacing a variant for the same Vary values and encoding, expired ones dropped. */
export function withVariant(list: readonly StoredResponse[], v: StoredResponse, now: number): StoredResponse[] {
  const same = (a: StoredResponse) => a.encoding === v.encoding && a.vary.length === v.vary.length && a.vary.every(([n, val], i) => v.vary[i][0] === n && v.vary[i][1] === val);
  const out = list.filter((a) => a.expiresAt > now && !same(a));
  out.push(v);
  while (out.length > MAX_VARIANTS) out.shift();
  return out;
}

export function variantsBytes(list: readonly StoredResponse[]): number {
  let n = 0;
  for (const v of list) {
    n += v.body.length + 64;
    for (const h of v.headers) n += h.length * 2 + 16;
    for (const [name, val] of v.vary) n += (name.length + (val?.length ?? 0)) * 2 + 16;
  }
  return n;
}

/** The Cache-Control the gateway sends for a cached response (cache-lookup's downstream-caching-type and must-revalidate). */
export function downstreamCacheControl(downstream: Downstream, mustRevalidate: boolean, seconds: number): string {
  if (downstream === 'none') return 'no-store';
  return `${downstream}, max-age=${Math.max(0, Math.floor(seconds))}${mustRevalidate ? ', must-revalidate' : ''}`;
}

/** Replaces Cache-Control (and the older Expires and Pragma) in a response header list. */
export function setCacheControl(headers: string[], value: string): void {
  removeHeader(headers, 'cache-control');
  removeHeader(headers, 'expires');
  removeHeader(headers, 'pragma');
  headers.push('cache-control', value);
}

/** Request headers that would let the backend answer 304 or a partial response: removed on a miss (as API Management does). */
export const CONDITIONAL_REQUEST_HEADERS = ['if-none-match', 'if-modified-since', 'if-match', 'if-unmodified-since', 'if-range', 'cache-control', 'pragma'];

/** Response headers not kept with a stored response: per-exchange or framing. */
const NOT_STORED = new Set(['x-request-id', 'age', 'content-length', 'transfer-encoding', 'connection', 'keep-alive']);

export function storableHeaders(headers: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < headers.length; i += 2) if (!NOT_STORED.has(headers[i])) out.push(headers[i], headers[i + 1]);
  return out;
}

/**
 * Why a response must not be stored (undefined: it may be): the backend's Cache-Control forbids a
 * shared cache to keep it, it sets a cookie, or it varies on everything.
 */
export function unstorableReason(res: PolicyResponse): string | undefined {
  const cc = directives(getHeader(res.headers, 'cache-control'));
  if (cc.has('no-store')) return 'Cache-Control: no-store';
  if (cc.has('private')) return 'Cache-Control: private';
  if (cc.has('no-cache')) return 'Cache-Control: no-cache';
  if (getHeader(res.headers, 'set-cookie') !== undefined) return 'Set-Cookie';
  if (directives(getHeader(res.headers, 'vary')).has('*')) return 'Vary: *';
  return undefined;
}

/** The bytes of `parts` in memory of their own (a slice, or a small Buffer from the shared pool, would keep a larger block alive). */
export function ownBytes(parts: Buffer | readonly Buffer[]): Buffer {
  const list = Buffer.isBuffer(parts) ? [parts] : parts;
  let n = 0;
  for (const b of list) n += b.length;
  const out = Buffer.allocUnsafeSlow(n);
  let at = 0;
  for (const b of list) at += b.copy(out, at);
  return out;
}

/**
 * Calls `done` once with the whole body of a response that streams from the backend to the client,
 * or with null when it does not arrive whole (the client or backend went away, an error response
 * replaced it) or grows past `max`. Reads along the stream (wrapping this one capture's write and
 * end): the client gets each byte as early as it would without the cache. The body handed over is a copy.
 */
export function teeBody(cap: ResponseCapture, max: number, failed: () => boolean, done: (body: Buffer | null) => void): void {
  let called = false;
  const finish = (b: Buffer | null) => {
    if (called) return;
    called = true;
    done(b);
  };
  if (cap.destroyed) return finish(null);
  if (cap.writableFinished) return finish(failed() ? null : ownBytes(cap.body()));
  const first = cap.body();
  let chunks: Buffer[] = first.length ? [first] : [];
  let size = first.length;
  let over = size > max;
  if (over) chunks = [];
  const write = cap.write;
  const end = cap.end;
  const writeHead = cap.writeHead;
  cap.writeHead = (status, headers) => {
    // A second head is an error response replacing this one.
    over = true;
    chunks = [];
    return writeHead.call(cap, status, headers);
  };
  cap.write = (chunk) => {
    if (!over && !cap.destroyed && !cap.writableFinished) {
      const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      size += b.length;
      if (size > max) {
        over = true;
        chunks = [];
      } else {
        chunks.push(b);
      }
    }
    return write.call(cap, chunk);
  };
  cap.end = (chunk) => {
    end.call(cap, chunk);
    if (cap.writableFinished) finish(over || cap.destroyed || failed() ? null : ownBytes(chunks));
    return cap;
  };
  cap.once('close', () => finish(null));
}

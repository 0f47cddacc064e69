// The read-only `context` every expression sees (API Management's shape), built lazily from what the pipeline knows, with size caps.

/**
 * Size caps on what an expression can read. The static cost estimate assumes every value is at its cap, so
 * a value over its cap is never truncated (truncation would let a client push text past a `contains` check):
 * reading it, or the map that holds it, fails with an ExpressionError instead (fail closed).
 * Lengths count UTF-16 code units.
 */
export const CAPS = {
  /** Distinct (lower-case) names in Request.Headers / Response.Headers. */
  headerCount: 128,
  headerName: 256,
  /** After repeated fields are joined with ", ". */
  headerValue: 8192,
  queryCount: 128,
  queryName: 256,
  /** After repeated parameters are joined with ",". */
  queryValue: 8192,
  path: 8192,
  queryString: 8192,
  method: 32,
  ipAddress: 64,
  requestId: 128,
  /** Request.Body and Response.Body, as text. */
  body: 256 * 1024,
  /** Names from config: Subscription, Product, Api, Operation, Deployment, LastError (but Message). */
  configString: 1024,
  errorMessage: 4096,
  /** Claims (validate-jwt): each string, entries per map or list, nesting depth, and totals over all claims. */
  claims: { string: 2048, entries: 256, depth: 8, totalChars: 8192, totalNodes: 2048 },
  /** Variables (set-variable): the same per variable (and at most `entries` variables). */
  variables: { string: 64 * 1024, entries: 256, depth: 8, totalChars: 64 * 1024, totalNodes: 4096 },
} as const;

/** A runtime failure of an expression: a missing key, a type error, a value over its cap, an unavailable area. */
export class ExpressionError extends Error {
  readonly code: string;
  /** Where in the expression source (UTF-16 offsets); 0/0 when not known. */
  readonly offset: number;
  readonly length: number;
  constructor(code: string, message: string, offset = 0, length = 0, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ExpressionError';
    this.code = code;
    this.offset = offset;
    this.length = length;
  }
}

/** What the pipeline provides; read only when an expression needs it. Header lists are flat [name, value, …]. */
export interface ExpressionSource {
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  /** '' or '?a=1&b=2' (the '?' is optional). */
  readonly queryString: string;
  /** Any case; repeated names allowed. */
  readonly headers: readonly string[];
  readonly clientIp: string;
  /** The operation URL template's `{name}` values, as the client sent them. */
  matchedParameters(): ReadonlyMap<string, string>;
  /** The path and query the client sent (before rewrite-uri). */
  readonly originalPath: string;
  readonly originalQueryString: string;
  /** The request body as text; called only when an expression reads context.Request.Body. */
  requestBody(): string | null;
  /** null until the backend (or a return-response) produced a response. */
  readonly response: { readonly status: number; readonly headers: readonly string[]; body(): string | null } | null;
  readonly variables: ReadonlyMap<string, unknown>;
  readonly subscription: { readonly id: string; readonly name: string; readonly scope: string } | null;
  readonly product: string | null;
  readonly api: { readonly name: string; readonly path: string; readonly version: string };
  readonly operation: { readonly id: string; readonly method: string; readonly urlTemplate: string };
  /** The payload validate-jwt accepted, or null. */
  readonly claims: Readonly<Record<string, unknown>> | null;
  readonly lastError: {
    readonly source: string;
    readonly reason: string;
    readonly message: string;
    readonly scope: string;
    readonly section: string;
    readonly path: string;
  } | null;
  readonly requestId: string;
  readonly deployment: { readonly region: string; readonly gatewayId: string };
}

/** CEL values: string, bigint (int), number (double), boolean, null, arrays (lists), Maps. */
export type CelMap = ReadonlyMap<string, unknown>;

export interface ExpressionContext {
  readonly Request: {
    readonly Method: string;
    readonly Url: { readonly Path: string; readonly Query: ReadonlyMap<string, string>; readonly QueryString: string };
    readonly Headers: ReadonlyMap<string, string>;
    readonly IpAddress: string;
    readonly Body: string;
    readonly MatchedParameters: ReadonlyMap<string, string>;
    readonly OriginalUrl: { readonly Path: string; readonly QueryString: string };
  };
  /** Absent before there is a response (`has(context.Response)` is false). */
  readonly Response: { readonly StatusCode: bigint; readonly Headers: ReadonlyMap<string, string>; readonly Body: string } | undefined;
  /** Empty strings when the request carries no subscription. Never the key. */
  readonly Subscription: { readonly Id: string; readonly Name: string; readonly Scope: string };
  readonly Product: { readonly Name: string };
  readonly Api: { readonly Name: string; readonly Path: string; readonly Version: string };
  readonly Operation: { readonly Id: string; readonly Method: string; readonly UrlTemplate: string };
  /** The validated token's claims (same map as Claims); empty without validate-jwt. */
  readonly User: CelMap;
  readonly Claims: CelMap;
  readonly Variables: CelMap;
  /** Absent until a policy failed (in onError). */
  readonly LastError:
    | { readonly Source: string; readonly Reason: string; readonly Message: string; readonly Scope: string; readonly Section: string; readonly Path: string }
    | undefined;
  readonly RequestId: string;
  readonly Deployment: { readonly Region: string; readonly GatewayId: string };
}

/** The static shape of `context`, for load-time checks, `reads`, the cost estimate and type checking. */
export type Shape =
  | { readonly kind: 'string'; readonly max: number }
  | { readonly kind: 'int' }
  | { readonly kind: 'map'; readonly entries: number; readonly keyMax: number; readonly value: Shape; readonly lowerCaseKeys?: boolean }
  | { readonly kind: 'dyn'; readonly string: number; readonly entries: number; readonly totalChars: number; readonly totalNodes: number }
  | { readonly kind: 'object'; readonly name: string; readonly fields: Readonly<Record<string, Shape>>; readonly optional?: boolean };

const s = (max: number): Shape => ({ kind: 'string', max });
const cfg = s(CAPS.configString);
const headers: Shape = { kind: 'map', entries: CAPS.headerCount, keyMax: CAPS.headerName, value: s(CAPS.headerValue), lowerCaseKeys: true };
const claims: Shape = { kind: 'map', entries: CAPS.claims.entries, keyMax: CAPS.claims.string, value: { kind: 'dyn', ...CAPS.claims } };
const obj = (name: string, fields: Record<string, Shape>, optional?: boolean): Shape => ({ kind: 'object', name, fields, optional });

export const CONTEXT_SHAPE = obj('Context', {
  Request: obj('Request', {
    Method: s(CAPS.method),
    Url: obj('Url', {
      Path: s(CAPS.path),
      Query: { kind: 'map', entries: CAPS.queryCount, keyMax: CAPS.queryName, value: s(CAPS.queryValue) },
      QueryString: s(CAPS.queryString),
    }),
    Headers: headers,
    IpAddress: s(CAPS.ipAddress),
    Body: s(CAPS.body),
    MatchedParameters: { kind: 'map', entries: 32, keyMax: CAPS.configString, value: s(CAPS.path) },
    OriginalUrl: obj('OriginalUrl', { Path: s(CAPS.path), QueryString: s(CAPS.queryString) }),
  }),
  Response: obj('Response', { StatusCode: { kind: 'int' }, Headers: headers, Body: s(CAPS.body) }, true),
  Subscription: obj('Subscription', { Id: cfg, Name: cfg, Scope: cfg }),
  Product: obj('Product', { Name: cfg }),
  Api: obj('Api', { Name: cfg, Path: cfg, Version: cfg }),
  Operation: obj('Operation', { Id: cfg, Method: cfg, UrlTemplate: cfg }),
  User: claims,
  Claims: claims,
  Variables: { kind: 'map', entries: CAPS.variables.entries, keyMax: CAPS.variables.string, value: { kind: 'dyn', ...CAPS.variables } },
  LastError: obj('LastError', { Source: cfg, Reason: cfg, Message: s(CAPS.errorMessage), Scope: cfg, Section: cfg, Path: cfg }, true),
  RequestId: s(CAPS.requestId),
  Deployment: obj('Deployment', { Region: cfg, GatewayId: cfg }),
}) as Extract<Shape, { kind: 'object' }>;

function overCap(label: string, what: string): ExpressionError {
  return new ExpressionError('over_cap', `${label} cannot be read by expressions: ${what}`);
}

function capped(value: string, max: number, label: string): string {
  if (value.length > max) throw overCap(label, `it is ${value.length} characters long, over the cap of ${max}`);
  return value;
}

/** Lower-case names, repeated fields joined with ", ", caps checked (the whole map fails when one entry is over). */
function headerMap(raw: readonly string[], label: string): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name.length > CAPS.headerName) throw overCap(label, `a header name is ${name.length} characters long, over the cap of ${CAPS.headerName}`);
    const prev = m.get(name);
    const value = prev === undefined ? raw[i + 1] : `${prev}, ${raw[i + 1]}`;
    if (value.length > CAPS.headerValue) throw overCap(label, `header "${name}" is ${value.length} characters long, over the cap of ${CAPS.headerValue}`);
    m.set(name, value);
    if (m.size > CAPS.headerCount) throw overCap(label, `there are more than ${CAPS.headerCount} distinct header names`);
  }
  return m;
}

/** One header without building the map; falls back to the map (and its cap checks) when a cap could be reached. */
function headerLookup(raw: readonly string[], key: string, label: string): string | undefined {
  if (raw.length > 2 * CAPS.headerCount) return headerMap(raw, label).get(key);
  let out: string | undefined;
  let total = 0;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i];
    const value = raw[i + 1];
    total += value.length + 2;
    if (name.length > CAPS.headerName) return headerMap(raw, label).get(key);
    if (name === key || (name.length === key.length && name.toLowerCase() === key)) out = out === undefined ? value : `${out}, ${value}`;
  }
  // Below this no joined value can be over its cap.
  if (total > CAPS.headerValue) return headerMap(raw, label).get(key);
  return out;
}

function queryMap(queryString: string): Map<string, string> {
  const label = 'context.Request.Url.Query';
  capped(queryString, CAPS.queryString, label);
  const m = new Map<string, string>();
  for (const [name, value] of new URLSearchParams(queryString)) {
    if (name.length > CAPS.queryName) throw overCap(label, `a parameter name is ${name.length} characters long, over the cap of ${CAPS.queryName}`);
    const prev = m.get(name);
    const joined = prev === undefined ? value : `${prev},${value}`;
    if (joined.length > CAPS.queryValue) throw overCap(label, `parameter "${name}" is ${joined.length} characters long, over the cap of ${CAPS.queryValue}`);
    m.set(name, joined);
    if (m.size > CAPS.queryCount) throw overCap(label, `the query has more than ${CAPS.queryCount} distinct parameters`);
  }
  return m;
}

interface DynCaps {
  readonly string: number;
  readonly entries: number;
  readonly depth: number;
  readonly totalChars: number;
  readonly totalNodes: number;
}

/**
 * Frozen claims objects (validate-jwt's and the IdentityProviders' cached results, the same object for every request
 * with the same token) as CEL values: converting them was ~1 µs per request that reads `context.User` / `Claims`.
 * Only deeply frozen objects: nothing can change them after the conversion. Entries go with the claims objects.
 */
const celClaims = new WeakMap<object, CelMap>();

/** Frozen all the way down (then it never changes again: freezing cannot be undone). */
function deeplyFrozen(root: object): boolean {
  const todo: unknown[] = [root];
  while (todo.length > 0) {
    const v = todo.pop();
    if (typeof v !== 'object' || v === null) continue;
    if (!Object.isFrozen(v)) return false;
    for (const k of Object.keys(v)) todo.push((v as Record<string, unknown>)[k]);
  }
  return true;
}

/** A JavaScript value as CEL sees it: integral numbers become int (bigint), objects become maps. Caps checked. */
export function toCelValue(v: unknown, caps: DynCaps, label: string, depth = 0, total = { chars: 0, nodes: 0 }): unknown {
  if (depth > caps.depth) throw overCap(label, `values are nested more than ${caps.depth} levels deep`);
  if (++total.nodes > caps.totalNodes) throw overCap(label, `it holds more than ${caps.totalNodes} values in all`);
  switch (typeof v) {
    case 'string':
      if ((total.chars += v.length) > caps.totalChars) throw overCap(label, `its strings add up to more than ${caps.totalChars} characters`);
      return capped(v, caps.string, label);
    case 'number':
      return Number.isSafeInteger(v) ? BigInt(v) : v;
    case 'bigint':
    case 'boolean':
      return v;
    case 'undefined':
      return null;
    case 'object': {
      if (v === null || v instanceof Date) return v;
      if (v instanceof Uint8Array) {
        if (v.length > caps.string) throw overCap(label, `a bytes value is ${v.length} bytes long, over the cap of ${caps.string}`);
        return v;
      }
      if (Array.isArray(v)) {
        if (v.length > caps.entries) throw overCap(label, `a list has ${v.length} elements, over the cap of ${caps.entries}`);
        return v.map((x) => toCelValue(x, caps, label, depth + 1, total));
      }
      const entries = v instanceof Map ? [...v.entries()] : Object.entries(v);
      if (entries.length > caps.entries) throw overCap(label, `a map has ${entries.length} entries, over the cap of ${caps.entries}`);
      const out = new Map<unknown, unknown>();
      for (const [k, x] of entries) out.set(toCelValue(k, caps, label, depth + 1, total), toCelValue(x, caps, label, depth + 1, total));
      return out;
    }
    default:
      throw new ExpressionError('unsupported', `${label} holds a ${typeof v}, which expressions cannot read`);
  }
}

type Res = NonNullable<ExpressionSource['response']>;

/** Reads a value once; a failure (over a cap) is remembered too, so a getter is not called again. */
class Once<T> {
  #state: 0 | 1 | 2 = 0;
  #value: T | undefined;
  #error: unknown;
  get(make: () => T): T {
    if (this.#state === 1) return this.#value as T;
    if (this.#state === 2) throw this.#error;
    try {
      this.#value = make();
      this.#state = 1;
      return this.#value;
    } catch (err) {
      this.#error = err;
      this.#state = 2;
      throw err;
    }
  }
}

class UrlView {
  readonly #s: ExpressionSource;
  #query: Once<Map<string, string>> | undefined;
  constructor(src: ExpressionSource) {
    this.#s = src;
  }
  get Path(): string {
    return capped(this.#s.path, CAPS.path, 'context.Request.Url.Path');
  }
  get QueryString(): string {
    const q = this.#s.queryString;
    return capped(q.startsWith('?') ? q.slice(1) : q, CAPS.queryString, 'context.Request.Url.QueryString');
  }
  get Query(): Map<string, string> {
    return (this.#query ??= new Once()).get(() => queryMap(this.#s.queryString));
  }
}

class RequestView {
  readonly #s: ExpressionSource;
  #url: UrlView | undefined;
  #headers: Once<Map<string, string>> | undefined;
  #body: Once<string> | undefined;
  constructor(src: ExpressionSource) {
    this.#s = src;
  }
  get Method(): string {
    return capped(this.#s.method, CAPS.method, 'context.Request.Method');
  }
  get Url(): UrlView {
    return (this.#url ??= new UrlView(this.#s));
  }
  get Headers(): Map<string, string> {
    return (this.#headers ??= new Once()).get(() => headerMap(this.#s.headers, 'context.Request.Headers'));
  }
  get IpAddress(): string {
    return capped(this.#s.clientIp, CAPS.ipAddress, 'context.Request.IpAddress');
  }
  get Body(): string {
    return (this.#body ??= new Once()).get(() => capped(this.#s.requestBody() ?? '', CAPS.body, 'context.Request.Body'));
  }
  get MatchedParameters(): Map<string, string> {
    return new Map(this.#s.matchedParameters());
  }
  get OriginalUrl(): { Path: string; QueryString: string } {
    const q = this.#s.originalQueryString;
    return {
      Path: capped(this.#s.originalPath, CAPS.path, 'context.Request.OriginalUrl.Path'),
      QueryString: capped(q.startsWith('?') ? q.slice(1) : q, CAPS.queryString, 'context.Request.OriginalUrl.QueryString'),
    };
  }
  header(key: string): string | undefined {
    return headerLookup(this.#s.headers, key, 'context.Request.Headers');
  }
}

class ResponseView {
  readonly #r: Res;
  #headers: Once<Map<string, string>> | undefined;
  #body: Once<string> | undefined;
  constructor(r: Res) {
    this.#r = r;
  }
  get StatusCode(): bigint {
    return BigInt(this.#r.status);
  }
  get Headers(): Map<string, string> {
    return (this.#headers ??= new Once()).get(() => headerMap(this.#r.headers, 'context.Response.Headers'));
  }
  get Body(): string {
    return (this.#body ??= new Once()).get(() => capped(this.#r.body() ?? '', CAPS.body, 'context.Response.Body'));
  }
  header(key: string): string | undefined {
    return headerLookup(this.#r.headers, key, 'context.Response.Headers');
  }
}

const EMPTY_MAP: CelMap = new Map();

class ContextView implements ExpressionContext {
  readonly #s: ExpressionSource;
  #request: RequestView | undefined;
  #response: ResponseView | undefined;
  #claims: Once<CelMap> | undefined;
  #variables: Once<CelMap> | undefined;
  constructor(src: ExpressionSource) {
    this.#s = src;
  }
  get Request(): RequestView {
    return (this.#request ??= new RequestView(this.#s));
  }
  get Response(): ResponseView | undefined {
    const r = this.#s.response;
    return r === null ? undefined : (this.#response ??= new ResponseView(r));
  }
  get Subscription(): ExpressionContext['Subscription'] {
    const sub = this.#s.subscription;
    const label = 'context.Subscription';
    return { Id: capped(sub?.id ?? '', CAPS.configString, label), Name: capped(sub?.name ?? '', CAPS.configString, label), Scope: capped(sub?.scope ?? '', CAPS.configString, label) };
  }
  get Product(): ExpressionContext['Product'] {
    return { Name: capped(this.#s.product ?? '', CAPS.configString, 'context.Product') };
  }
  get Api(): ExpressionContext['Api'] {
    const a = this.#s.api;
    const label = 'context.Api';
    return { Name: capped(a.name, CAPS.configString, label), Path: capped(a.path, CAPS.configString, label), Version: capped(a.version, CAPS.configString, label) };
  }
  get Operation(): ExpressionContext['Operation'] {
    const o = this.#s.operation;
    const label = 'context.Operation';
    return { Id: capped(o.id, CAPS.configString, label), Method: capped(o.method, CAPS.configString, label), UrlTemplate: capped(o.urlTemplate, CAPS.configString, label) };
  }
  get User(): CelMap {
    return this.Claims;
  }
  get Claims(): CelMap {
    return (this.#claims ??= new Once()).get(() => {
      const c = this.#s.claims;
      if (c === null) return EMPTY_MAP;
      // A validator's verified claims are frozen and handed out again for the same token: converted once.
      const cached = celClaims.get(c);
      if (cached !== undefined) return cached;
      const v = toCelValue(c, CAPS.claims, 'context.Claims') as CelMap;
      if (deeplyFrozen(c)) celClaims.set(c, v);
      return v;
    });
  }
  get Variables(): CelMap {
    return (this.#variables ??= new Once()).get(() => {
      const v = this.#s.variables;
      if (v.size > CAPS.variables.entries) throw overCap('context.Variables', `there are ${v.size} variables, over the cap of ${CAPS.variables.entries}`);
      if (v.size === 0) return EMPTY_MAP;
      const out = new Map<string, unknown>();
      for (const [k, x] of v) out.set(k, toCelValue(x, CAPS.variables, `context.Variables["${k}"]`));
      return out;
    });
  }
  get LastError(): ExpressionContext['LastError'] {
    const e = this.#s.lastError;
    if (e === null) return undefined;
    const c = (v: string, max: number = CAPS.configString): string => capped(v, max, 'context.LastError');
    return { Source: c(e.source), Reason: c(e.reason), Message: c(e.message, CAPS.errorMessage), Scope: c(e.scope), Section: c(e.section), Path: c(e.path) };
  }
  get RequestId(): string {
    return capped(this.#s.requestId, CAPS.requestId, 'context.RequestId');
  }
  get Deployment(): ExpressionContext['Deployment'] {
    const d = this.#s.deployment;
    return { Region: capped(d.region, CAPS.configString, 'context.Deployment'), GatewayId: capped(d.gatewayId, CAPS.configString, 'context.Deployment') };
  }
}

/**
 * The context for one evaluation (or several in a row while nothing changes): one small object; areas are
 * materialised on first read and then cached, so build a new one after a policy changes the request.
 */
export function buildExpressionContext(source: ExpressionSource): ExpressionContext {
  return new ContextView(source);
}

/** `owner[field][key]` for a map field; header lookups scan the raw list instead of building the map. */
export function mapEntry(owner: unknown, field: string, key: string): unknown {
  if (field === 'Headers' && (owner instanceof RequestView || owner instanceof ResponseView)) return owner.header(key);
  const m = (owner as Record<string, unknown>)[field];
  return m instanceof Map ? m.get(key) : undefined;
}

// The engine behind validate-jwt: APIM's settings and defaults, token extraction, verification, and a verified-token cache.
import { tokenKey } from '../lib/token-key.ts';
import { createPublicKey, createSecretKey } from 'node:crypto';
import { compactVerify } from 'jose';
import { Lru } from '../lib/lru.ts';
import {
  SUPPORTED_ALGORITHMS, checkAudience, checkIssuer, checkRequiredClaims, checkTokenType, checkValidity, deepFreeze,
  isFailure, parseCompactJws, parseJsonObject, validityWindow,
  type CompactJws, type JwtReason, type RequiredClaim, type RuleFailure, type TimeRules, type Validity,
} from './jwt-rules.ts';
import { JwksSource, isHttpUrl, keyFromJwk, verificationKey, type FetchLike, type JwksSourceOptions, type KeyImport, type VerificationKey } from './jwks-source.ts';

export type { JwtReason, RequiredClaim } from './jwt-rules.ts';
export type { FetchLike, VerificationKey } from './jwks-source.ts';

/** A configured key: an HMAC secret (base64), a JWK (JSON text), or a PEM public key or certificate. */
export interface IssuerSigningKey {
  kind: 'hmac' | 'jwk' | 'pem';
  value: string;
  /** Matched against the token's `kid` (APIM `key id`); a key without one is tried for every token. */
  kid?: string;
}

/** APIM's validate-jwt attributes in camelCase (reference/apim.md §2.1); durations in ms. */
export interface JwtValidatorSettings {
  headerName?: string;
  queryParameterName?: string;
  cookieName?: string;
  requireScheme?: string;
  failedValidationHttpCode?: number;
  failedValidationErrorMessage?: string;
  requireExpirationTime?: boolean;
  requireSignedTokens?: boolean;
  clockSkew?: number;
  maxTokenAge?: number;
  openidConfig?: string[];
  issuerSigningKeys?: IssuerSigningKey[];
  issuers?: string[];
  audiences?: string[];
  requiredClaims?: RequiredClaim[];
  allowedAlgorithms?: string[];
  outputTokenVariableName?: string;
  /** Not in APIM: the required `typ` (RFC 8725 §3.11), e.g. "at+jwt". */
  tokenType?: string;
}

/** Settings with every default applied; exactly one of the three token sources is set. */
export interface ResolvedJwtSettings {
  headerName: string | undefined;
  queryParameterName: string | undefined;
  cookieName: string | undefined;
  /** Undefined when no scheme is required (APIM ignores it for headers other than Authorization). */
  requireScheme: string | undefined;
  failedValidationHttpCode: number;
  failedValidationErrorMessage: string | undefined;
  requireExpirationTime: boolean;
  requireSignedTokens: boolean;
  clockSkew: number;
  maxTokenAge: number | undefined;
  openidConfig: readonly string[];
  issuers: readonly string[];
  audiences: readonly string[];
  requiredClaims: readonly RequiredClaim[];
  allowedAlgorithms: readonly string[];
  outputTokenVariableName: string | undefined;
  tokenType: string | undefined;
}

export interface JwtSuccess {
  ok: true;
  claims: Readonly<Record<string, unknown>>;
  header: Readonly<Record<string, unknown>>;
  /** `exp` in ms since the epoch; undefined when the token has none (require-expiration-time="false"). */
  expiresAt: number | undefined;
}

export interface JwtFailure {
  ok: false;
  status: number;
  /** The public message: the configured one, else APIM's default for the failure. */
  message: string;
  reason: JwtReason;
  /** For logs and LastError.Message; never sent unless the policy author chooses to. */
  detail: string;
}

export type JwtResult = JwtSuccess | JwtFailure;

export interface JwtValidatorDeps {
  fetch?: FetchLike;
  /** Wall clock in ms (token times are epoch seconds). Default Date.now. */
  now?: () => number;
  /** Verified tokens kept (LRU). Default 10 000. */
  cacheSize?: number;
  jwks?: Omit<JwksSourceOptions, 'fetch' | 'now'>;
}

/** APIM's defaults (reference/apim.md §2.1, §2.18). */
export const JWT_DEFAULTS = {
  headerName: 'Authorization',
  requireScheme: 'Bearer',
  failedValidationHttpCode: 401,
  requireExpirationTime: true,
  requireSignedTokens: true,
  clockSkew: 0,
  notPresentMessage: 'JWT not present.',
  invalidMessage: 'Invalid JWT.',
  cacheSize: 10_000,
};

/** Longer tokens are refused before any parsing. */
export const MAX_TOKEN_CHARS = 32 * 1024;
/** A token without a matching `kid` is tried against at most this many keys. */
export const MAX_KEY_TRIES = 8;

/** A verified token as this validator caches it (opaque to callers: pass it back to recheck()). */
export interface CacheEntry {
  /** The whole token (the cache is keyed by its tail: tokenKey). */
  token: string;
  result: JwtSuccess;
  validity: Validity;
  key: VerificationKey;
}

/** Apply defaults, import the configured keys, and list every problem (empty: usable). Never throws. */
export function resolveJwtSettings(s: JwtValidatorSettings): { settings: ResolvedJwtSettings; keys: VerificationKey[]; problems: string[] } {
  const problems: string[] = [];
  const sources = [s.headerName, s.queryParameterName, s.cookieName].filter((x) => x !== undefined);
  if (sources.length > 1) problems.push('set only one of headerName, queryParameterName and cookieName');
  for (const x of sources) if (x === '') problems.push('a token source name must not be empty');
  const headerName = sources.length === 0 ? JWT_DEFAULTS.headerName : s.headerName;
  const isAuthorization = headerName !== undefined && headerName.toLowerCase() === 'authorization';
  const scheme = s.requireScheme ?? JWT_DEFAULTS.requireScheme;
  const status = s.failedValidationHttpCode ?? JWT_DEFAULTS.failedValidationHttpCode;
  if (!Number.isInteger(status) || status < 100 || status > 599) problems.push('failedValidationHttpCode must be an HTTP status code');
  const requireSignedTokens = s.requireSignedTokens ?? JWT_DEFAULTS.requireSignedTokens;
  if (!requireSignedTokens) problems.push('requireSignedTokens=false is not supported: unsigned tokens are never accepted');
  const clockSkew = s.clockSkew ?? JWT_DEFAULTS.clockSkew;
  if (!Number.isFinite(clockSkew) || clockSkew < 0) problems.push('clockSkew must be a non-negative number of ms');
  if (s.maxTokenAge !== undefined && !(Number.isFinite(s.maxTokenAge) && s.maxTokenAge > 0)) problems.push('maxTokenAge must be a positive number of ms');
  const allowed = s.allowedAlgorithms ?? SUPPORTED_ALGORITHMS;
  for (const a of allowed) {
    if (a.toLowerCase() === 'none') problems.push('alg "none" can never be allowed');
    else if (!SUPPORTED_ALGORITHMS.includes(a)) problems.push(`unsupported algorithm ${a}`);
  }
  const openidConfig = s.openidConfig ?? [];
  for (const u of openidConfig) if (!isHttpUrl(u)) problems.push(`openidConfig ${u} is not an http(s) URL`);
  for (const r of s.requiredClaims ?? []) {
    if (!r.name) problems.push('a required claim needs a name');
    if (r.match !== 'all' && r.match !== 'any') problems.push(`required claim ${r.name}: match must be "all" or "any"`);
    if (r.separator === '') problems.push(`required claim ${r.name}: separator must not be empty`);
  }
  const keys: VerificationKey[] = [];
  (s.issuerSigningKeys ?? []).forEach((spec, i) => {
    const r = importSigningKey(spec);
    if ('problem' in r) problems.push(`issuerSigningKeys[${i}]: ${r.problem}`);
    else if (![...r.key.algorithms].some((a) => allowed.includes(a))) problems.push(`issuerSigningKeys[${i}]: the key can verify none of the allowed algorithms`);
    else keys.push(r.key);
  });
  if ((s.issuerSigningKeys ?? []).length === 0 && openidConfig.length === 0) problems.push('configure issuerSigningKeys or openidConfig: without keys no token can validate');
  const settings: ResolvedJwtSettings = {
    headerName,
    queryParameterName: s.queryParameterName,
    cookieName: s.cookieName,
    requireScheme: isAuthorization && scheme !== '' ? scheme : undefined,
    failedValidationHttpCode: status,
    failedValidationErrorMessage: s.failedValidationErrorMessage,
    requireExpirationTime: s.requireExpirationTime ?? JWT_DEFAULTS.requireExpirationTime,
    requireSignedTokens,
    clockSkew,
    maxTokenAge: s.maxTokenAge,
    openidConfig,
    issuers: s.issuers ?? [],
    audiences: s.audiences ?? [],
    requiredClaims: s.requiredClaims ?? [],
    allowedAlgorithms: allowed,
    outputTokenVariableName: s.outputTokenVariableName,
    tokenType: s.tokenType,
  };
  return { settings, keys, problems };
}

const B64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

function importSigningKey(spec: IssuerSigningKey): KeyImport {
  try {
    switch (spec.kind) {
      case 'hmac': {
        const v = spec.value.trim();
        if (!B64.test(v)) return { problem: 'an HMAC key must be base64' };
        const bytes = Buffer.from(v, 'base64');
        // RFC 7518 §3.2 / RFC 8725 §3.5: a shorter key is guessable offline from one token.
        if (bytes.length < 32) return { problem: `an HMAC key must be at least 32 bytes (RFC 7518 §3.2), this one has ${bytes.length}` };
        return verificationKey(createSecretKey(bytes), spec.kid, undefined);
      }
      case 'jwk':
        return keyFromJwk(JSON.parse(spec.value), { allowSecret: true, kid: spec.kid });
      case 'pem':
        return verificationKey(createPublicKey(spec.value), spec.kid, undefined);
      default:
        return { problem: `unknown key kind ${JSON.stringify((spec as { kind: unknown }).kind)}` };
    }
  } catch (err) {
    return { problem: `the key cannot be imported: ${(err as Error).message}` };
  }
}

/** Keys that may verify `alg`, those whose `kid` equals the token's first, then kid-less ones. */
export function selectKeys(keys: readonly VerificationKey[], alg: string, kid: string | undefined): VerificationKey[] {
  const exact: VerificationKey[] = [];
  const loose: VerificationKey[] = [];
  for (const k of keys) {
    if (!k.algorithms.has(alg)) continue;
    if (k.kid === undefined || kid === undefined) loose.push(k);
    else if (k.kid === kid) exact.push(k);
  }
  return exact.concat(loose);
}

/** Verify the signature with each candidate in turn (key rollover); `jose` checks the signature encoding and RSA size. */
export async function verifySignature(token: string, alg: string, candidates: readonly VerificationKey[]): Promise<VerificationKey | RuleFailure> {
  let failure: RuleFailure = { reason: 'TokenSignatureInvalid', detail: 'the signature does not verify' };
  for (const k of candidates.slice(0, MAX_KEY_TRIES)) {
    try {
      await compactVerify(token, k.key, { algorithms: [alg] });
      return k;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (code === 'ERR_JWS_INVALID' || code === 'ERR_JOSE_NOT_SUPPORTED') failure = { reason: 'JwtInvalid', detail: (err as Error).message };
    }
  }
  return failure;
}

/** The JWS half alone (structure, algorithm, key choice, signature) over a fixed key list: what Wycheproof tests. */
export async function verifyJws(token: string, keys: readonly VerificationKey[], allowed: readonly string[] = SUPPORTED_ALGORITHMS): Promise<{ jws: CompactJws; key: VerificationKey } | RuleFailure> {
  const jws = parseCompactJws(token);
  if (isFailure(jws)) return jws;
  if (!allowed.includes(jws.alg)) return { reason: 'TokenAlgorithmNotAllowed', detail: `alg ${jws.alg} is not allowed` };
  const candidates = selectKeys(keys, jws.alg, jws.kid);
  if (candidates.length === 0) return { reason: 'TokenSignatureKeyNotFound', detail: 'no key matches the token kid and alg' };
  const key = await verifySignature(token, jws.alg, candidates);
  return isFailure(key) ? key : { jws, key };
}

export class JwtValidator {
  readonly settings: ResolvedJwtSettings;
  /** The failure for a request without a token, with the configured status and message. */
  readonly tokenNotPresent: JwtFailure;
  readonly #staticKeys: readonly VerificationKey[];
  readonly #sources: readonly JwksSource[];
  readonly #algs: ReadonlySet<string>;
  readonly #time: TimeRules;
  readonly #now: () => number;
  readonly #cache: Lru<string, CacheEntry>;
  readonly #pending = new Map<string, Promise<JwtResult>>();
  readonly #lowerHeader: string | undefined;
  readonly #lowerScheme: string | undefined;

  constructor(settings: ResolvedJwtSettings, keys: readonly VerificationKey[], deps: JwtValidatorDeps = {}) {
    this.settings = settings;
    this.#staticKeys = keys;
    this.#now = deps.now ?? Date.now;
    this.#sources = settings.openidConfig.map((url) => new JwksSource(url, { ...deps.jwks, fetch: deps.fetch, now: this.#now }));
    this.#algs = new Set(settings.allowedAlgorithms);
    this.#time = { clockSkew: settings.clockSkew, maxTokenAge: settings.maxTokenAge, requireExpirationTime: settings.requireExpirationTime };
    this.#cache = new Lru(deps.cacheSize ?? JWT_DEFAULTS.cacheSize);
    this.#lowerHeader = settings.headerName?.toLowerCase();
    this.#lowerScheme = settings.requireScheme?.toLowerCase();
    this.tokenNotPresent = this.#fail({ reason: 'TokenNotPresent', detail: JWT_DEFAULTS.notPresentMessage });
  }

  /** Verified tokens currently cached (for tests and metrics). */
  get cacheSize(): number {
    return this.#cache.size;
  }

  /**
   * The token from the configured header (scheme checked and stripped), query parameter or
   * cookie. null: absent. `{ error }`: present but unusable (wrong scheme, sent twice).
   */
  extractToken(rawHeaders: readonly string[], query: string): string | null | { error: JwtFailure } {
    const s = this.settings;
    if (this.#lowerHeader !== undefined) {
      const value = singleHeader(rawHeaders, this.#lowerHeader);
      if (value === null) return this.#extractError('JwtInvalid', `more than one ${s.headerName} header`);
      if (value === undefined) return null;
      const v = value.trim();
      if (this.#lowerScheme === undefined) return v === '' ? null : v;
      const sp = v.indexOf(' ');
      const scheme = (sp < 0 ? v : v.slice(0, sp)).toLowerCase();
      if (scheme !== this.#lowerScheme) return this.#extractError('TokenNotPresent', `the ${s.headerName} header does not use the ${s.requireScheme} scheme`);
      const token = sp < 0 ? '' : v.slice(sp + 1).trim();
      return token === '' ? null : token;
    }
    const found = s.queryParameterName !== undefined ? queryParam(query, s.queryParameterName) : cookieValue(rawHeaders, s.cookieName ?? '');
    if (found === null) return this.#extractError('JwtInvalid', `the token ${s.queryParameterName !== undefined ? 'query parameter' : 'cookie'} is repeated or malformed`);
    return found === undefined || found === '' ? null : found;
  }

  /**
   * A token seen before and still valid costs one LRU lookup and returns synchronously; exp/nbf
   * (and the key still being published) are re-checked on every hit. Otherwise a Promise.
   */
  validate(token: string): JwtResult | Promise<JwtResult> {
    const key = tokenKey(token);
    const found = this.#cache.get(key);
    if (found !== undefined && found.token === token) {
      const r = this.recheck(found);
      if (r !== undefined) return r;
    }
    if (token === '') return this.tokenNotPresent;
    if (token.length > MAX_TOKEN_CHARS) return this.#fail({ reason: 'JwtInvalid', detail: 'the token is too long' });
    const pending = this.#pending.get(token);
    if (pending !== undefined) return pending;
    // Checks that need no key run synchronously, so malformed tokens never allocate a promise.
    const jws = parseCompactJws(token);
    if (isFailure(jws)) return this.#fail(jws);
    if (!this.#algs.has(jws.alg)) return this.#fail({ reason: 'TokenAlgorithmNotAllowed', detail: `alg ${jws.alg} is not allowed` });
    const claims = parseJsonObject(jws.payload, 'the claims set');
    if (isFailure(claims)) return this.#fail(claims);
    const typ = checkTokenType(jws.header.typ, this.settings.tokenType);
    if (typ !== undefined) return this.#fail(typ);
    const p = this.#verify(token, jws, claims);
    this.#pending.set(token, p);
    void p.finally(() => this.#pending.delete(token));
    return p;
  }

  /**
   * The cache entry of a token this validator verified (for a caller that keeps its own reference to it: one lookup
   * per request instead of two), or undefined.
   */
  cachedEntry(token: string): CacheEntry | undefined {
    const found = this.#cache.peek(tokenKey(token));
    return found !== undefined && found.token === token ? found : undefined;
  }

  /**
   * A cached token checked again as a cache hit is (exp/nbf now, its key still published): the result, or undefined
   * when it must be verified again (validate()). An entry dropped from the cache meanwhile is still judged by its own
   * validity and key, which is all a hit checks.
   */
  recheck(entry: CacheEntry): JwtResult | undefined {
    const bad = checkValidity(entry.validity, this.#now());
    if (bad === undefined) {
      if (entry.key.source === undefined || entry.key.source.holds(entry.key)) return entry.result;
      this.#forget(entry); // its key was rotated out: verify again against the current keys
      return undefined;
    }
    if (bad.reason === 'TokenExpired') this.#forget(entry);
    return this.#fail(bad);
  }

  /** Drops `entry` from the cache, and only it: a caller's older entry must not evict a newer one under the same key. */
  #forget(entry: CacheEntry): void {
    const key = tokenKey(entry.token);
    if (this.#cache.peek(key) === entry) this.#cache.delete(key);
  }

  /** Stops key fetches and drops the cache. */
  close(): void {
    for (const s of this.#sources) s.close();
    this.#cache.clear();
  }

  async #verify(token: string, jws: CompactJws, claims: Record<string, unknown>): Promise<JwtResult> {
    try {
      const key = await this.#findKeyAndVerify(token, jws);
      if (isFailure(key)) return this.#fail(key);
      const validity = validityWindow(claims, this.#time);
      if (isFailure(validity)) return this.#fail(validity);
      const s = this.settings;
      // Without configured issuers, a discovered key vouches only for its own issuer.
      const issuers = s.issuers.length === 0 && key.source?.issuer !== undefined ? [key.source.issuer] : s.issuers;
      const bad = checkValidity(validity, this.#now()) ?? checkIssuer(claims.iss, issuers)
        ?? checkAudience(claims.aud, s.audiences) ?? checkRequiredClaims(claims, s.requiredClaims);
      if (bad !== undefined) return this.#fail(bad);
      const result: JwtSuccess = Object.freeze({ ok: true, claims: deepFreeze(claims), header: deepFreeze(jws.header), expiresAt: validity.expiresAt });
      this.#cache.set(tokenKey(token), { token, result, validity, key });
      return result;
    } catch (err) {
      return this.#fail({ reason: 'JwtInvalid', detail: `verification failed: ${(err as Error).message}` });
    }
  }

  async #findKeyAndVerify(token: string, jws: CompactJws): Promise<VerificationKey | RuleFailure> {
    const loads: Promise<boolean>[] = [];
    for (const src of this.#sources) {
      const p = src.ready();
      if (p !== null) loads.push(p);
    }
    if (loads.length > 0) await Promise.all(loads);
    let candidates = selectKeys(this.#allKeys(), jws.alg, jws.kid);
    if (candidates.length === 0) {
      const refetches: Promise<boolean>[] = [];
      for (const src of this.#sources) {
        const p = src.refreshForMiss();
        if (p !== null) refetches.push(p);
      }
      if (refetches.length > 0) {
        await Promise.all(refetches);
        candidates = selectKeys(this.#allKeys(), jws.alg, jws.kid);
      }
    }
    if (candidates.length === 0) {
      const errors = this.#sources.filter((src) => src.lastError !== undefined).map((src) => `${src.url}: ${src.lastError}`);
      return { reason: 'TokenSignatureKeyNotFound', detail: `no key for kid ${JSON.stringify(jws.kid ?? null)} and alg ${jws.alg}${errors.length > 0 ? ` (${errors.join('; ')})` : ''}` };
    }
    return verifySignature(token, jws.alg, candidates);
  }

  #allKeys(): readonly VerificationKey[] {
    if (this.#sources.length === 0) return this.#staticKeys;
    const all = this.#staticKeys.slice();
    for (const src of this.#sources) all.push(...src.keys);
    return all;
  }

  #extractError(reason: JwtReason, detail: string): { error: JwtFailure } {
    return { error: this.#fail({ reason, detail }) };
  }

  #fail(f: RuleFailure): JwtFailure {
    const message = this.settings.failedValidationErrorMessage
      ?? (f.reason === 'TokenNotPresent' ? JWT_DEFAULTS.notPresentMessage : JWT_DEFAULTS.invalidMessage);
    return { ok: false, status: this.settings.failedValidationHttpCode, message, reason: f.reason, detail: f.detail };
  }
}

/** Build a validator; throws with every problem listed when the settings are unusable (see `resolveJwtSettings`). */
export function createJwtValidator(settings: JwtValidatorSettings, deps: JwtValidatorDeps = {}): JwtValidator {
  const r = resolveJwtSettings(settings);
  if (r.problems.length > 0) throw new Error(`invalid validate-jwt settings: ${r.problems.join('; ')}`);
  return new JwtValidator(r.settings, r.keys, deps);
}

/** The one value of a header; undefined when absent, null when sent more than once. */
function singleHeader(rawHeaders: readonly string[], lowerName: string): string | undefined | null {
  let value: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const n = rawHeaders[i];
    if (n.length === lowerName.length && n.toLowerCase() === lowerName) {
      if (value !== undefined) return null;
      value = rawHeaders[i + 1];
    }
  }
  return value;
}

function decodeQueryPart(s: string): string | null {
  if (!s.includes('%') && !s.includes('+')) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

/** undefined: absent; null: repeated or badly percent-encoded. */
function queryParam(query: string, name: string): string | undefined | null {
  const q = query.startsWith('?') ? query.slice(1) : query;
  if (q === '') return undefined;
  let found: string | undefined;
  for (const part of q.split('&')) {
    const eq = part.indexOf('=');
    const k = decodeQueryPart(eq < 0 ? part : part.slice(0, eq));
    if (k !== name) continue;
    const v = decodeQueryPart(eq < 0 ? '' : part.slice(eq + 1));
    if (found !== undefined || v === null) return null;
    found = v;
  }
  return found;
}

/** undefined: absent; null: the cookie appears more than once (ambiguous, so refused). */
function cookieValue(rawHeaders: readonly string[], name: string): string | undefined | null {
  let found: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const n = rawHeaders[i];
    if (n.length !== 6 || n.toLowerCase() !== 'cookie') continue;
    for (const pair of rawHeaders[i + 1].split(';')) {
      const eq = pair.indexOf('=');
      if (eq < 0 || pair.slice(0, eq).trim() !== name) continue;
      let v = pair.slice(eq + 1).trim();
      if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1);
      if (found !== undefined) return null;
      found = v;
    }
  }
  return found;
}

// Signing keys from one OpenID discovery URL: fetch, hourly refresh, rate-limited refetch on an unknown kid.
import { createPublicKey, createSecretKey, X509Certificate, type JsonWebKey, type KeyObject } from 'node:crypto';
import { algorithmsForKey, decodeBase64url, type KeyFacts } from './jwt-rules.ts';

/** One key we may verify with, and the algorithms its type allows (jwt-rules `algorithmsForKey`). */
export interface VerificationKey {
  readonly kid: string | undefined;
  readonly key: KeyObject;
  readonly algorithms: ReadonlySet<string>;
  /** The discovery source that published it; undefined for configured keys, which never go away. */
  readonly source: JwksSource | undefined;
}

/** Injected HTTP GET: must honour `signal`. The default is the global fetch. */
export type FetchLike = (url: string, signal: AbortSignal) => Promise<Response>;

export const defaultFetch: FetchLike = (url, signal) =>
  fetch(url, { signal, headers: { accept: 'application/json' }, redirect: 'follow' });

export function keyFacts(k: KeyObject): KeyFacts {
  if (k.type === 'secret') return { type: 'secret', secretBytes: k.symmetricKeySize };
  const d = k.asymmetricKeyDetails ?? {};
  return { type: k.type, asymmetricKeyType: k.asymmetricKeyType, namedCurve: d.namedCurve, modulusLength: d.modulusLength };
}

export type KeyImport = { key: VerificationKey } | { problem: string };

/** Wrap a KeyObject; a key that can verify none of our algorithms is a problem, not a silent no-op. */
export function verificationKey(key: KeyObject, kid: string | undefined, alg: string | undefined, source?: JwksSource): KeyImport {
  const algorithms = algorithmsForKey(keyFacts(key), alg);
  if (algorithms.length === 0) {
    return { problem: alg === undefined ? 'the key is too weak or of an unsupported type' : `the key cannot verify its declared alg ${alg}` };
  }
  return { key: { kid, key, algorithms: new Set(algorithms), source } };
}

const PUBLIC_MEMBERS: Record<string, readonly string[]> = { RSA: ['n', 'e'], EC: ['crv', 'x', 'y'], OKP: ['crv', 'x'] };

/**
 * Import one JWK. `use` must be `sig` and `key_ops` must include `verify` when present; private
 * members are dropped; symmetric (`oct`) keys only when `allowSecret` (configured keys, never a
 * published JWKS, which is public by definition).
 */
export function keyFromJwk(jwk: unknown, opts: { allowSecret: boolean; kid?: string; source?: JwksSource }): KeyImport {
  if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return { problem: 'a JWK must be a JSON object' };
  const j = jwk as Record<string, unknown>;
  if (j.use !== undefined && j.use !== 'sig') return { problem: 'the JWK "use" is not "sig"' };
  if (j.key_ops !== undefined && !(Array.isArray(j.key_ops) && j.key_ops.includes('verify'))) return { problem: 'the JWK "key_ops" does not include "verify"' };
  if (j.alg !== undefined && typeof j.alg !== 'string') return { problem: 'the JWK "alg" is not a string' };
  if (j.kid !== undefined && typeof j.kid !== 'string') return { problem: 'the JWK "kid" is not a string' };
  const kid = opts.kid ?? (j.kid as string | undefined);
  const alg = j.alg as string | undefined;
  let key: KeyObject;
  try {
    if (j.kty === 'oct') {
      if (!opts.allowSecret) return { problem: 'symmetric keys are not accepted from a JWKS' };
      const bytes = typeof j.k === 'string' ? decodeBase64url(j.k) : undefined;
      if (bytes === undefined) return { problem: 'the JWK "k" is not base64url' };
      key = createSecretKey(bytes);
    } else if (typeof j.kty === 'string' && PUBLIC_MEMBERS[j.kty] !== undefined && j[PUBLIC_MEMBERS[j.kty][0]] !== undefined) {
      const pub: Record<string, unknown> = { kty: j.kty };
      for (const m of PUBLIC_MEMBERS[j.kty]) pub[m] = j[m];
      key = createPublicKey({ key: pub as JsonWebKey, format: 'jwk' });
    } else if (Array.isArray(j.x5c) && typeof j.x5c[0] === 'string') {
      key = new X509Certificate(Buffer.from(j.x5c[0], 'base64')).publicKey;
    } else {
      return { problem: `unsupported JWK kty ${JSON.stringify(j.kty)}` };
    }
  } catch (err) {
    return { problem: `the JWK cannot be imported: ${(err as Error).message}` };
  }
  return verificationKey(key, kid, alg, opts.source);
}

export interface JwksSourceOptions {
  fetch?: FetchLike;
  /** Wall clock, ms. */
  now?: () => number;
  /** Age after which keys are refreshed in the background. APIM: metadata and JWKS cached 1 h. */
  refreshIntervalMs?: number;
  /** Minimum time between refetches caused by an unknown kid, and after a failed fetch. APIM: 5 min. */
  cooldownMs?: number;
  /** Deadline for one refresh (discovery document + JWKS together). */
  timeoutMs?: number;
  /** Largest response body accepted, each. */
  maxBytes?: number;
  onError?: (url: string, err: Error) => void;
}

export const JWKS_DEFAULTS = { refreshIntervalMs: 3_600_000, cooldownMs: 300_000, timeoutMs: 10_000, maxBytes: 512 * 1024 };

/**
 * One OpenID discovery URL. Keys are served from memory; at most one fetch is in flight (callers
 * join it); a failed fetch keeps the previous keys. `ready()` and `refreshForMiss()` return null
 * when there is nothing to wait for, so a validator with fresh keys never allocates a promise.
 */
export class JwksSource {
  readonly url: string;
  readonly #fetch: FetchLike;
  readonly #now: () => number;
  readonly #opt: typeof JWKS_DEFAULTS;
  readonly #onError: JwksSourceOptions['onError'];
  #keys: readonly VerificationKey[] = [];
  #live = new Set<VerificationKey>();
  #issuer: string | undefined;
  #loadedAt = -Infinity;
  #failedAt = -Infinity;
  #missAt = -Infinity;
  #inflight: Promise<boolean> | null = null;
  #abort: AbortController | null = null;
  #lastError: string | undefined;
  #closed = false;

  constructor(url: string, opts: JwksSourceOptions = {}) {
    this.url = url;
    this.#fetch = opts.fetch ?? defaultFetch;
    this.#now = opts.now ?? Date.now;
    this.#opt = {
      refreshIntervalMs: opts.refreshIntervalMs ?? JWKS_DEFAULTS.refreshIntervalMs,
      cooldownMs: opts.cooldownMs ?? JWKS_DEFAULTS.cooldownMs,
      timeoutMs: opts.timeoutMs ?? JWKS_DEFAULTS.timeoutMs,
      maxBytes: opts.maxBytes ?? JWKS_DEFAULTS.maxBytes,
    };
    this.#onError = opts.onError;
  }

  get keys(): readonly VerificationKey[] {
    return this.#keys;
  }

  /** The `issuer` of the discovery document, once loaded. */
  get issuer(): string | undefined {
    return this.#issuer;
  }

  get loaded(): boolean {
    return this.#loadedAt !== -Infinity;
  }

  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Whether `key` is still in the current key set (a cached verification dies with its key). */
  holds(key: VerificationKey): boolean {
    return this.#live.has(key);
  }

  /**
   * Null when the caller can use `keys` now. Before the first load, the promise of the load (or of
   * the one in flight). When keys are older than the refresh interval, a background refresh starts
   * and the old keys are served meanwhile.
   */
  ready(): Promise<boolean> | null {
    if (this.#closed) return null;
    const now = this.#now();
    if (this.loaded) {
      if (this.#inflight === null && now - this.#loadedAt >= this.#opt.refreshIntervalMs && now - this.#failedAt >= this.#opt.cooldownMs) {
        void this.#refresh();
      }
      return null;
    }
    if (this.#inflight !== null) return this.#inflight;
    if (now - this.#failedAt < this.#opt.cooldownMs) return null;
    return this.#refresh();
  }

  /** A token named a key we do not have: refetch, at most once per cooldown (joins a fetch in flight). */
  refreshForMiss(): Promise<boolean> | null {
    if (this.#closed) return null;
    if (this.#inflight !== null) return this.#inflight;
    const now = this.#now();
    if (now - this.#missAt < this.#opt.cooldownMs || now - this.#failedAt < this.#opt.cooldownMs) return null;
    this.#missAt = now;
    return this.#refresh();
  }

  /** Aborts a fetch in flight; no fetch starts afterwards. */
  close(): void {
    this.#closed = true;
    this.#abort?.abort(new Error('JWKS source closed'));
  }

  #refresh(): Promise<boolean> {
    const ac = new AbortController();
    this.#abort = ac;
    const timer = setTimeout(() => ac.abort(new Error(`JWKS fetch timed out after ${this.#opt.timeoutMs} ms`)), this.#opt.timeoutMs);
    timer.unref();
    const p = withSignal(this.#load(ac.signal), ac.signal).then(
      ({ issuer, keys }) => {
        this.#issuer = issuer;
        this.#keys = keys;
        this.#live = new Set(keys);
        this.#loadedAt = this.#now();
        this.#lastError = undefined;
        return true;
      },
      (err: unknown) => {
        const e = err instanceof Error ? err : new Error(String(err));
        this.#failedAt = this.#now();
        this.#lastError = e.message;
        this.#onError?.(this.url, e);
        return false;
      },
    ).finally(() => {
      clearTimeout(timer);
      this.#inflight = null;
      this.#abort = null;
    });
    this.#inflight = p;
    return p;
  }

  async #load(signal: AbortSignal): Promise<{ issuer: string; keys: VerificationKey[] }> {
    const meta = await this.#getJson(this.url, signal, 'discovery document');
    if (typeof meta !== 'object' || meta === null) throw new Error('the discovery document is not a JSON object');
    const { issuer, jwks_uri: jwksUri } = meta as Record<string, unknown>;
    if (typeof issuer !== 'string' || issuer === '') throw new Error('the discovery document has no issuer');
    if (typeof jwksUri !== 'string' || !isHttpUrl(jwksUri)) throw new Error('the discovery document has no http(s) jwks_uri');
    const jwks = await this.#getJson(jwksUri, signal, 'JWKS');
    const list = (jwks as { keys?: unknown } | null)?.keys;
    if (!Array.isArray(list)) throw new Error('the JWKS has no "keys" array');
    const keys: VerificationKey[] = [];
    for (const jwk of list) {
      const r = keyFromJwk(jwk, { allowSecret: false, source: this });
      // An unchanged key keeps its identity, so tokens cached with it survive the refresh.
      if ('key' in r) keys.push(this.#keys.find((k) => sameKey(k, r.key)) ?? r.key);
    }
    if (keys.length === 0) throw new Error('the JWKS has no usable signing key');
    return { issuer, keys };
  }

  async #getJson(url: string, signal: AbortSignal, what: string): Promise<unknown> {
    const res = await this.#fetch(url, signal);
    const text = await readLimited(res, this.#opt.maxBytes, what);
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`the ${what} is not JSON`);
    }
  }
}

function sameKey(a: VerificationKey, b: VerificationKey): boolean {
  return a.kid === b.kid && a.algorithms.size === b.algorithms.size && [...a.algorithms].every((x) => b.algorithms.has(x)) && a.key.equals(b.key);
}

export function isHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

/** Read a body of at most `maxBytes`, cancelling the stream as soon as it grows past the bound. */
async function readLimited(res: Response, maxBytes: number, what: string): Promise<string> {
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => {});
    throw new Error(`the ${what} fetch returned HTTP ${res.status}`);
  }
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw new Error(`the ${what} is larger than ${maxBytes} bytes`);
  }
  if (res.body === null) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new Error(`the ${what} is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Settle with the signal's reason when it aborts, even if the injected fetch ignores the signal. */
function withSignal<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

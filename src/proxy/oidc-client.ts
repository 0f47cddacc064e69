// One IdentityProvider at run time: its bearer and ID-token validators, discovery endpoints, and the token endpoint calls.
import { readFileSync } from 'node:fs';
import type { IdentityProviderSpec } from '../model/types.ts';
import { createJwtValidator, type JwtResult, type JwtValidator } from './jwt-validator.ts';
import { defaultFetch, isHttpUrl, type FetchLike } from './jwks-source.ts';

export interface OidcClientDeps {
  fetch?: FetchLike;
  /** Wall clock, ms. */
  now?: () => number;
  /** Token-endpoint and discovery deadline, ms (default 10 s). */
  timeoutMs?: number;
  /** For the token endpoint (a POST); default the global fetch. */
  post?: (url: string, init: { body: string; headers: Record<string, string>; signal: AbortSignal }) => Promise<Response>;
}

export interface ProviderEndpoints {
  authorization: string;
  token: string;
  endSession: string | undefined;
}

/** A token endpoint answer that passed the checks (RFC 6749 §5.1). */
export interface TokenSet {
  accessToken: string;
  idToken: string | undefined;
  refreshToken: string | undefined;
  /** ms, from expires_in; undefined when the provider did not say. */
  expiresIn: number | undefined;
}

/** A token endpoint failure; `definitive`: the provider refused (4xx), so retrying the same grant cannot succeed. */
export interface TokenError {
  error: string;
  definitive: boolean;
}

const DISCOVERY_TTL_MS = 3_600_000;
const MAX_BODY = 512 * 1024;

export function discoveryUrlOf(spec: IdentityProviderSpec): string {
  return spec.discovery ?? `${spec.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
}

/** The client secret from the spec, its file or its environment variable (read once per config version). */
export function clientSecretOf(spec: IdentityProviderSpec): string | undefined {
  if (spec.clientSecret !== undefined) return spec.clientSecret;
  if (spec.clientSecretFile !== undefined) return readFileSync(spec.clientSecretFile, 'utf8').replace(/\r?\n$/, '');
  if (spec.clientSecretEnv !== undefined) {
    const v = process.env[spec.clientSecretEnv];
    if (v === undefined || v === '') throw new Error(`environment variable ${spec.clientSecretEnv} (clientSecretEnv) is not set`);
    return v;
  }
  return undefined;
}

export class OidcClient {
  /** Qualified `namespace/name`. */
  readonly name: string;
  readonly spec: IdentityProviderSpec;
  /** Access tokens sent as `Authorization: Bearer`: audience = spec.audience, or the client id. */
  readonly bearer: JwtValidator;
  /** ID tokens from the token endpoint: audience = the client id (OIDC Core §3.1.3.7). */
  readonly idTokens: JwtValidator;
  readonly #secret: string | undefined;
  readonly #fetch: FetchLike;
  readonly #post: NonNullable<OidcClientDeps['post']>;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  #endpoints: Promise<ProviderEndpoints> | null = null;
  #endpointsAt = -Infinity;

  constructor(name: string, spec: IdentityProviderSpec, deps: OidcClientDeps = {}) {
    this.name = name;
    this.spec = spec;
    this.#secret = clientSecretOf(spec);
    this.#fetch = deps.fetch ?? defaultFetch;
    this.#post = deps.post ?? ((url, init) => fetch(url, { method: 'POST', body: init.body, headers: init.headers, signal: init.signal, redirect: 'error' }));
    this.#now = deps.now ?? Date.now;
    this.#timeoutMs = deps.timeoutMs ?? 10_000;
    const common = {
      openidConfig: [discoveryUrlOf(spec)],
      issuers: [spec.issuer],
      allowedAlgorithms: spec.allowedAlgorithms,
      clockSkew: spec.clockSkew,
      requireExpirationTime: true,
    };
    // RFC 8725 pitfalls (alg allowlist, exp required, iat not in the future, kid refetch with cooldown) live in the validator.
    this.bearer = createJwtValidator({ ...common, audiences: spec.audience.length > 0 ? spec.audience : [spec.clientId] }, { fetch: deps.fetch, now: this.#now });
    this.idTokens = createJwtValidator({ ...common, audiences: [spec.clientId] }, { fetch: deps.fetch, now: this.#now });
  }

  get canLogin(): boolean {
    return this.#secret !== undefined;
  }

  /** The claims AccessPolicies read: the token's, with the configured groups claim as `groups`. */
  mapClaims(claims: Readonly<Record<string, unknown>>): Record<string, unknown> {
    const name = this.spec.claims.groups;
    if (name === 'groups') return claims as Record<string, unknown>;
    const out: Record<string, unknown> = { ...claims };
    if (Object.hasOwn(claims, name)) out.groups = claims[name];
    else delete out.groups;
    // Frozen like the validator's claims it copies: the bearer path hands the same copy to every request with the token.
    return Object.freeze(out);
  }

  /** Authorization, token and end-session endpoints from discovery, cached for an hour; a failed fetch is retried next time. */
  endpoints(): Promise<ProviderEndpoints> {
    const now = this.#now();
    if (this.#endpoints === null || now - this.#endpointsAt >= DISCOVERY_TTL_MS) {
      this.#endpointsAt = now;
      const p = this.#loadEndpoints();
      this.#endpoints = p;
      p.catch(() => {
        if (this.#endpoints === p) this.#endpoints = null;
      });
    }
    return this.#endpoints;
  }

  async #loadEndpoints(): Promise<ProviderEndpoints> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    const res = await this.#fetch(discoveryUrlOf(this.spec), signal);
    const doc = (await readJson(res, 'discovery document')) as Record<string, unknown>;
    // OpenID Connect Discovery §4.3: the document must name the issuer we were configured with.
    if (doc.issuer !== this.spec.issuer) throw new Error(`the discovery document names issuer ${JSON.stringify(doc.issuer)}, not ${this.spec.issuer}`);
    const url = (k: string, required: boolean): string | undefined => {
      const v = doc[k];
      if (typeof v === 'string' && isHttpUrl(v)) return v;
      if (required) throw new Error(`the discovery document has no http(s) ${k}`);
      return undefined;
    };
    return { authorization: url('authorization_endpoint', true)!, token: url('token_endpoint', true)!, endSession: url('end_session_endpoint', false) };
  }

  /** Validates an ID token (signature, iss, aud = client id, exp, iat) and, on login, its nonce. */
  async verifyIdToken(token: string, nonce: string | undefined): Promise<JwtResult> {
    const r = await this.idTokens.validate(token);
    if (!r.ok) return r;
    if (nonce !== undefined && r.claims.nonce !== nonce) {
      return { ok: false, status: 401, message: 'Invalid ID token.', reason: 'TokenClaimValueNotAllowed', detail: 'the ID token nonce does not match the login' };
    }
    if (typeof r.claims.sub !== 'string' || r.claims.sub === '') {
      return { ok: false, status: 401, message: 'Invalid ID token.', reason: 'TokenClaimNotFound', detail: 'the ID token has no sub' };
    }
    return r;
  }

  exchangeCode(code: string, codeVerifier: string, redirectUri: string): Promise<TokenSet | TokenError> {
    return this.#token({ grant_type: 'authorization_code', code, code_verifier: codeVerifier, redirect_uri: redirectUri });
  }

  refresh(refreshToken: string): Promise<TokenSet | TokenError> {
    return this.#token({ grant_type: 'refresh_token', refresh_token: refreshToken });
  }

  async #token(params: Record<string, string>): Promise<TokenSet | TokenError> {
    if (this.#secret === undefined) return { error: 'the IdentityProvider has no client secret', definitive: true };
    let res: Response;
    try {
      const { token } = await this.endpoints();
      // client_secret_basic: both parts form-encoded first (RFC 6749 §2.3.1).
      const basic = Buffer.from(`${encodeURIComponent(this.spec.clientId)}:${encodeURIComponent(this.#secret)}`).toString('base64');
      res = await this.#post(token, {
        body: new URLSearchParams(params).toString(),
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: `Basic ${basic}` },
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      return { error: `token endpoint unreachable: ${(err as Error).message}`, definitive: false };
    }
    let body: Record<string, unknown>;
    try {
      body = (await readJson(res, 'token response', true)) as Record<string, unknown>;
    } catch (err) {
      return { error: (err as Error).message, definitive: false };
    }
    if (res.status !== 200) {
      const e = typeof body.error === 'string' ? body.error : `HTTP ${res.status}`;
      return { error: e, definitive: res.status >= 400 && res.status < 500 };
    }
    if (typeof body.access_token !== 'string' || body.access_token === '') return { error: 'the token response has no access_token', definitive: false };
    if (typeof body.token_type !== 'string' || body.token_type.toLowerCase() !== 'bearer') return { error: 'the token response is not a Bearer token', definitive: false };
    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in * 1000 : undefined;
    return {
      accessToken: body.access_token,
      idToken: typeof body.id_token === 'string' ? body.id_token : undefined,
      refreshToken: typeof body.refresh_token === 'string' ? body.refresh_token : undefined,
      expiresIn,
    };
  }

  close(): void {
    this.bearer.close();
    this.idTokens.close();
  }
}

export function isTokenError(x: TokenSet | TokenError): x is TokenError {
  return 'error' in x;
}

async function readJson(res: Response, what: string, anyStatus = false): Promise<unknown> {
  if (!anyStatus && res.status !== 200) {
    await res.body?.cancel().catch(() => {});
    throw new Error(`the ${what} fetch returned HTTP ${res.status}`);
  }
  const text = await res.text();
  if (text.length > MAX_BODY) throw new Error(`the ${what} is larger than ${MAX_BODY} bytes`);
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v;
  } catch {
    throw new Error(`the ${what} is not a JSON object`);
  }
}

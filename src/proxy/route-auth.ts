// Who the end user is on a route whose Api names IdentityProviders: a bearer token, else the login session, else a login redirect or 401.
import { Lru } from '../lib/lru.ts';
import { tokenKey } from '../lib/token-key.ts';
import { parseCompactJws, parseJsonObject, isFailure } from './jwt-rules.ts';
import type { CacheEntry, JwtFailure, JwtResult } from './jwt-validator.ts';
import type { OidcClient } from './oidc-client.ts';
import type { SessionRecord, SessionStore } from './session-store.ts';
import { refreshSession, startLogin, type AuthInput, type AuthReply } from './oidc-login.ts';
import { SESSION_COOKIE, cookieName, headerOnce, readCookie } from './auth-cookies.ts';

export type { AuthInput, AuthReply } from './oidc-login.ts';

/** A route's authentication, compiled once per config version (runtime.ts). */
export interface RouteAuth {
  /** In the Api's order; the first is the login provider. */
  providers: readonly OidcClient[];
  /** Bearer tokens are matched to their provider by `iss`. */
  byIssuer: ReadonlyMap<string, OidcClient>;
  login: OidcClient | null;
  required: boolean;
  sessions: SessionStore;
}

export type AuthOutcome =
  | { claims: Record<string, unknown> | null; via: 'bearer' | 'session' | 'none' }
  | { reply: AuthReply };

const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

function unauthorized(error: 'invalid_request' | 'invalid_token' | '', message: string, detail: string): { reply: AuthReply } {
  const challenge = error === '' ? 'Bearer realm="lockgate"' : `Bearer realm="lockgate", error="${error}"`;
  return { reply: { status: 401, headers: { 'www-authenticate': challenge }, message, detail } };
}

/** A browser navigation that a login page can answer (GET/HEAD asking for HTML, not XHR/fetch). */
export function wantsHtml(raw: readonly string[], method: string): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  const xrw = headerOnce(raw, 'x-requested-with');
  if (typeof xrw === 'string' && xrw.toLowerCase() === 'xmlhttprequest') return false;
  const mode = headerOnce(raw, 'sec-fetch-mode');
  if (typeof mode === 'string' && mode !== 'navigate') return false;
  const accept = headerOnce(raw, 'accept');
  return typeof accept === 'string' && accept.toLowerCase().includes('text/html');
}

/**
 * Decides the end user. Synchronous when the answer is at hand (a cached token, a fresh session), a promise when a
 * key fetch, a token refresh or discovery is needed. Never throws for bad input: every failure is a reply.
 */
export function authenticate(auth: RouteAuth, input: AuthInput): AuthOutcome | Promise<AuthOutcome> {
  const authz = headerOnce(input.rawHeaders, 'authorization');
  if (authz === null) return unauthorized('invalid_request', 'Invalid bearer token', 'more than one Authorization header');
  if (authz !== undefined) {
    const v = authz.trim();
    const sp = v.indexOf(' ');
    // Bearer wins when present; another scheme (Basic for the backend) is left alone.
    if ((sp < 0 ? v : v.slice(0, sp)).toLowerCase() === 'bearer') return bearer(auth, sp < 0 ? '' : v.slice(sp + 1).trim());
  }
  const cookie = readCookie(input.rawHeaders, cookieName(SESSION_COOKIE, input.secure));
  if (cookie !== undefined && SESSION_ID.test(cookie)) {
    const s = session(auth, cookie, input);
    if (s !== null) return s;
  }
  return anonymous(auth, input);
}

function anonymous(auth: RouteAuth, input: AuthInput): AuthOutcome | Promise<AuthOutcome> {
  if (!auth.required) return { claims: null, via: 'none' };
  if (auth.login !== null && wantsHtml(input.rawHeaders, input.method)) {
    return startLogin(auth.login, auth.sessions, input).then(
      (reply): AuthOutcome => ({ reply }),
      (err: Error): AuthOutcome => ({ reply: { status: 502, headers: {}, message: 'The identity provider is unavailable', detail: `login: ${err.message}` } }),
    );
  }
  return unauthorized('', 'no bearer token or session', 'no bearer token or session');
}

/**
 * What was decided for a token before: the provider it was matched to and, once verified, the validator's cache entry
 * with the outcome built from it. A token seen before costs this one lookup: no decoding to find its issuer, no second
 * lookup in the validator's cache (the entry is re-checked directly: exp/nbf, its key still published). Only a hint
 * for the provider: the validator checks `iss` again on every miss of its cache.
 */
interface TokenRecord {
  token: string;
  client: OidcClient;
  entry: CacheEntry | undefined;
  outcome: AuthOutcome | undefined;
}

const tokens = new Lru<string, TokenRecord>(10_000);

function bearer(auth: RouteAuth, token: string): AuthOutcome | Promise<AuthOutcome> {
  if (token === '' || token.length > 32 * 1024) return unauthorized('invalid_request', 'Invalid bearer token', 'empty or oversized bearer token');
  const key = tokenKey(token);
  const found = tokens.get(key);
  let rec = found !== undefined && found.token === token && auth.byIssuer.get(found.client.spec.issuer) === found.client ? found : undefined;
  if (rec !== undefined && rec.entry !== undefined && rec.outcome !== undefined) {
    const r = rec.client.bearer.recheck(rec.entry);
    if (r !== undefined) return r.ok ? rec.outcome : rejected(rec.client, r);
  }
  if (rec === undefined) {
    // The issuer picks the provider; its validator checks the signature, and `iss` again, before anything is trusted.
    const jws = parseCompactJws(token);
    if (isFailure(jws)) return unauthorized('invalid_token', 'Invalid bearer token', jws.detail);
    const claims = parseJsonObject(jws.payload, 'the claims set');
    if (isFailure(claims)) return unauthorized('invalid_token', 'Invalid bearer token', claims.detail);
    const client = typeof claims.iss === 'string' ? auth.byIssuer.get(claims.iss) : undefined;
    if (client === undefined) return unauthorized('invalid_token', 'Invalid bearer token', `issuer ${JSON.stringify(claims.iss ?? null)} is not accepted here`);
    rec = { token, client, entry: undefined, outcome: undefined };
    tokens.set(key, rec);
  }
  const record = rec;
  const client = record.client;
  const done = (res: JwtResult): AuthOutcome => {
    if (!res.ok) return rejected(client, res);
    const outcome: AuthOutcome = { claims: client.mapClaims(res.claims), via: 'bearer' };
    const entry = client.bearer.cachedEntry(token);
    // Kept only with the validator's entry for this result: the next request re-checks that entry.
    if (entry !== undefined && entry.result === res) {
      record.entry = entry;
      record.outcome = outcome;
    }
    return outcome;
  };
  const r = client.bearer.validate(token);
  return r instanceof Promise ? r.then(done) : done(r);
}

function rejected(client: OidcClient, res: JwtFailure): AuthOutcome {
  return unauthorized('invalid_token', 'Invalid bearer token', `${client.name}: ${res.reason}: ${res.detail}`);
}

/** null: no usable session (absent, ended, another provider's); the caller goes on as anonymous. */
function session(auth: RouteAuth, id: string, input: AuthInput): AuthOutcome | Promise<AuthOutcome> | null {
  const now = input.now;
  const rec = auth.sessions.get(id, now);
  if (rec === undefined) return null;
  const client = auth.providers.find((p) => p.name === rec.provider);
  if (client === undefined) return null;
  const s = client.spec.session;
  if (now - rec.lastSeenAt >= s.idleTimeout) {
    auth.sessions.delete(id);
    return null;
  }
  // One write a minute at most, not one per request.
  if (now - rec.lastSeenAt >= Math.min(60_000, s.idleTimeout / 10)) auth.sessions.touch(id, now);
  const margin = Math.min(s.refreshBefore, rec.tokenLifetime / 2);
  if (now < rec.tokenExpiresAt - margin) return ok(rec);
  // Requests of this worker join its refresh in flight; the store's claim keeps other workers from starting another
  // (a rotated refresh token works once).
  let p = refreshing.get(id);
  if (p === undefined && auth.sessions.claimRefresh(id, now, now + 30_000)) {
    const started = refreshSession(client, auth.sessions, id, rec, now).finally(() => refreshing.delete(id));
    refreshing.set(id, started);
    p = started;
  }
  // Still valid: serve now while the refresh runs in the background.
  if (now < rec.tokenExpiresAt) return ok(rec);
  // Expired, and another worker is refreshing: no usable session here (a browser goes through login, which is quick
  // while the provider's own session lasts).
  if (p === undefined) return null;
  return p.then((r) => (r === null ? anonymous(auth, input) : ok(r)));
}

/** Refreshes in flight in this worker, by session id. */
const refreshing = new Map<string, Promise<SessionRecord | null>>();

function ok(rec: SessionRecord): AuthOutcome {
  return { claims: rec.claims, via: 'session' };
}

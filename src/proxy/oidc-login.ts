// The authorization-code flow's two halves the gateway runs per session: the redirect to sign in (PKCE S256, state, nonce) and the token refresh.
import { createHash, randomBytes } from 'node:crypto';
import { LOGIN_COOKIE, cookieAttributes, cookieName } from './auth-cookies.ts';
import { isTokenError, type OidcClient, type TokenSet } from './oidc-client.ts';
import type { SessionRecord, SessionStore } from './session-store.ts';

/** What the request handler knows when it asks. */
export interface AuthInput {
  rawHeaders: readonly string[];
  method: string;
  /** The request target as the client sent it (path and query): where to come back after login. */
  target: string;
  /** The Host header (with port). */
  host: string;
  secure: boolean;
  now: number;
}

/** A response the gateway sends instead of forwarding (401, the login redirect). */
export interface AuthReply {
  status: number;
  headers: Record<string, string | string[]>;
  /** Error replies: the message of the gateway's JSON error body (with the request id). Redirects: none. */
  message?: string;
  /** For the access log only. */
  detail: string;
}

/** A login must come back within this time. */
export const LOGIN_TTL_MS = 600_000;
export const CALLBACK_PATH = '/.lockgate/callback';
export const LOGOUT_PATH = '/.lockgate/logout';

const b64url = (b: Buffer): string => b.toString('base64url');

/** Only a local path may be a return address (no `//host`, no scheme): the login is no open redirect. */
export function safeReturnTo(target: string): string {
  if (!target.startsWith('/') || target.startsWith('//') || target.startsWith('/\\') || target.startsWith(CALLBACK_PATH)) return '/';
  return target.length > 4096 ? '/' : target;
}

export function redirectUriOf(client: OidcClient, input: Pick<AuthInput, 'host' | 'secure'>): string {
  return client.spec.redirectUrl ?? `${input.secure ? 'https' : 'http'}://${input.host}${CALLBACK_PATH}`;
}

/**
 * 302 to the provider's authorization endpoint. The verifier, nonce and return address stay server-side under the
 * `state`; the browser gets the state in a short-lived cookie too, so a callback only completes in the browser that
 * started the login (no login CSRF).
 */
export async function startLogin(client: OidcClient, store: SessionStore, input: AuthInput): Promise<AuthReply> {
  const { authorization } = await client.endpoints();
  const state = b64url(randomBytes(32));
  const nonce = b64url(randomBytes(32));
  const codeVerifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(codeVerifier).digest());
  const redirectUri = redirectUriOf(client, input);
  store.putLogin(state, { provider: client.name, codeVerifier, nonce, returnTo: safeReturnTo(input.target), redirectUri, expiresAt: input.now + LOGIN_TTL_MS });
  const url = new URL(authorization);
  const q = url.searchParams;
  q.set('response_type', 'code');
  q.set('client_id', client.spec.clientId);
  q.set('redirect_uri', redirectUri);
  q.set('scope', client.spec.scopes.join(' '));
  q.set('state', state);
  q.set('nonce', nonce);
  q.set('code_challenge', challenge);
  q.set('code_challenge_method', 'S256');
  return {
    status: 302,
    headers: {
      location: url.toString(),
      'set-cookie': `${cookieName(LOGIN_COOKIE, input.secure)}=${state}${cookieAttributes(input.secure, LOGIN_TTL_MS / 1000)}`,
      'cache-control': 'no-store',
    },
    detail: `login via ${client.name}`,
  };
}

/** A session record from a token response whose ID token `idClaims` verified. */
export function sessionFrom(client: OidcClient, tokens: TokenSet, idToken: string, idClaims: Readonly<Record<string, unknown>>, now: number, base?: SessionRecord): SessionRecord {
  // A refresh without a new ID token keeps the old one, whose expiry then no longer bounds the session.
  const idExp = tokens.idToken === undefined ? Infinity : typeof idClaims.exp === 'number' ? idClaims.exp * 1000 : now;
  const accessExp = tokens.expiresIn !== undefined ? now + tokens.expiresIn : Number.isFinite(idExp) ? idExp : now + 300_000;
  const tokenExpiresAt = Math.min(idExp, accessExp);
  return {
    provider: client.name,
    claims: client.mapClaims(idClaims),
    idToken,
    accessToken: tokens.accessToken,
    // Providers that do not rotate refresh tokens send none on refresh: keep the one we have.
    refreshToken: tokens.refreshToken ?? base?.refreshToken,
    tokenExpiresAt,
    tokenLifetime: Math.max(0, tokenExpiresAt - now),
    createdAt: base?.createdAt ?? now,
    lastSeenAt: now,
    expiresAt: base?.expiresAt ?? now + client.spec.session.maxAge,
  };
}

/**
 * Refreshes a session's tokens and stores the result. null: the session ended (no refresh token, the provider refused,
 * the new ID token names someone else, or the tokens expired while the provider was unreachable), and it is deleted.
 * A transient failure while the tokens are still valid keeps the session; the next request tries again.
 */
export async function refreshSession(client: OidcClient, store: SessionStore, id: string, rec: SessionRecord, now: number): Promise<SessionRecord | null> {
  const end = (): null => {
    store.delete(id);
    return null;
  };
  if (rec.refreshToken === undefined) return now < rec.tokenExpiresAt ? rec : end();
  try {
    const t = await client.refresh(rec.refreshToken);
    if (isTokenError(t)) {
      if (t.definitive || now >= rec.tokenExpiresAt) return end();
      store.put(id, rec);
      return rec;
    }
    let idToken = rec.idToken;
    let claims: Readonly<Record<string, unknown>> = decodeClaims(rec.idToken);
    if (t.idToken !== undefined) {
      const v = await client.verifyIdToken(t.idToken, undefined);
      // OIDC Core §12.2: a refreshed ID token must name the same subject.
      if (!v.ok || v.claims.sub !== claims.sub) return end();
      idToken = t.idToken;
      claims = v.claims;
    }
    const next = sessionFrom(client, t, idToken, claims, now, rec);
    store.put(id, next);
    return next;
  } catch {
    return now < rec.tokenExpiresAt ? rec : end();
  }
}

/** The claims of an ID token we verified when we stored it (never used to decide anything new). */
function decodeClaims(jwt: string): Record<string, unknown> {
  try {
    return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}

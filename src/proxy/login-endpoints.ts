// The gateway's reserved login paths on every host: the OIDC callback (/.lockgate/callback) and logout (/.lockgate/logout).
import { LOGIN_COOKIE, SESSION_COOKIE, cookieAttributes, cookieName, readCookie } from './auth-cookies.ts';
import { isTokenError, type OidcClient } from './oidc-client.ts';
import { CALLBACK_PATH, LOGOUT_PATH, sessionFrom, type AuthInput, type AuthReply } from './oidc-login.ts';
import { newSessionId, type SessionStore } from './session-store.ts';

/** The providers of one config version and the store every worker shares. */
export interface IdentityRuntime {
  /** By qualified `namespace/name`. */
  clients: ReadonlyMap<string, OidcClient>;
  sessions: SessionStore;
}

export function isReservedPath(path: string): boolean {
  return path === CALLBACK_PATH || path === LOGOUT_PATH;
}

function error(status: number, message: string, detail: string, headers: AuthReply['headers'] = {}): AuthReply {
  return { status, headers: { 'cache-control': 'no-store', ...headers }, message, detail };
}

function clearCookie(base: string, secure: boolean): string {
  return `${cookieName(base, secure)}=${cookieAttributes(secure, 0)}`;
}

/** One query parameter; undefined when absent, null when repeated or badly encoded. */
function param(q: URLSearchParams, name: string): string | undefined | null {
  const all = q.getAll(name);
  if (all.length > 1) return null;
  return all[0];
}

/** Answers a reserved path. `query` without the leading `?`. */
export function handleReserved(id: IdentityRuntime, path: string, query: string, input: AuthInput): AuthReply | Promise<AuthReply> {
  if (path === LOGOUT_PATH) {
    if (input.method !== 'GET' && input.method !== 'POST') return error(405, 'Use GET or POST', 'logout method', { allow: 'GET, POST' });
    return logout(id, input);
  }
  if (input.method !== 'GET') return error(405, 'Use GET', 'callback method', { allow: 'GET' });
  return callback(id, query, input).catch((err: Error) => error(502, 'The identity provider is unavailable', `callback: ${err.message}`));
}

async function callback(id: IdentityRuntime, query: string, input: AuthInput): Promise<AuthReply> {
  let q: URLSearchParams;
  try {
    q = new URLSearchParams(query);
  } catch {
    return error(400, 'Malformed login callback', 'callback query');
  }
  const state = param(q, 'state');
  const clearLogin = clearCookie(LOGIN_COOKIE, input.secure);
  if (typeof state !== 'string' || state === '') return error(400, 'Malformed login callback', 'no state', { 'set-cookie': clearLogin });
  // The state must be the one this browser was given when it was sent to sign in.
  if (readCookie(input.rawHeaders, cookieName(LOGIN_COOKIE, input.secure)) !== state) {
    return error(400, 'This login was not started in this browser; start again', 'state does not match the login cookie', { 'set-cookie': clearLogin });
  }
  const pending = id.sessions.takeLogin(state, input.now);
  if (pending === undefined) return error(400, 'The login expired or was already used; start again', 'unknown state', { 'set-cookie': clearLogin });
  const client = id.clients.get(pending.provider);
  if (client === undefined) return error(400, 'The identity provider of this login is no longer configured', `provider ${pending.provider} gone`, { 'set-cookie': clearLogin });
  const providerError = param(q, 'error');
  if (typeof providerError === 'string') {
    return error(401, `Sign-in failed: ${providerError.slice(0, 64)}`, `provider error ${providerError.slice(0, 200)}`, { 'set-cookie': clearLogin });
  }
  // RFC 9207: when the provider names itself, it must be the provider this login went to (mix-up defense).
  const iss = param(q, 'iss');
  if (iss === null || (iss !== undefined && iss !== client.spec.issuer)) return error(400, 'Malformed login callback', `iss ${JSON.stringify(iss)} is not ${client.spec.issuer}`, { 'set-cookie': clearLogin });
  const code = param(q, 'code');
  if (typeof code !== 'string' || code === '') return error(400, 'Malformed login callback', 'no code', { 'set-cookie': clearLogin });
  const tokens = await client.exchangeCode(code, pending.codeVerifier, pending.redirectUri);
  if (isTokenError(tokens)) return error(tokens.definitive ? 401 : 502, 'Sign-in failed', `token exchange: ${tokens.error}`, { 'set-cookie': clearLogin });
  if (tokens.idToken === undefined) return error(502, 'Sign-in failed', 'the token response has no id_token', { 'set-cookie': clearLogin });
  const v = await client.verifyIdToken(tokens.idToken, pending.nonce);
  if (!v.ok) return error(401, 'Sign-in failed', `ID token: ${v.reason}: ${v.detail}`, { 'set-cookie': clearLogin });
  // A new id for every login: a session id planted before sign-in is never promoted (session fixation).
  const sid = newSessionId();
  const rec = sessionFrom(client, tokens, tokens.idToken, v.claims, input.now);
  id.sessions.put(sid, rec);
  return {
    status: 302,
    headers: {
      location: pending.returnTo,
      'set-cookie': [`${cookieName(SESSION_COOKIE, input.secure)}=${sid}${cookieAttributes(input.secure, Math.floor(client.spec.session.maxAge / 1000))}`, clearLogin],
      'cache-control': 'no-store',
    },
    detail: `login ${client.name} sub ${String(v.claims.sub)}`,
  };
}

async function logout(id: IdentityRuntime, input: AuthInput): Promise<AuthReply> {
  const headers: AuthReply['headers'] = { 'set-cookie': clearCookie(SESSION_COOKIE, input.secure), 'cache-control': 'no-store', location: '/' };
  const sid = readCookie(input.rawHeaders, cookieName(SESSION_COOKIE, input.secure));
  if (sid === undefined) return { status: 302, headers, detail: 'logout without session' };
  const rec = id.sessions.get(sid, input.now);
  id.sessions.delete(sid);
  const client = rec === undefined ? undefined : id.clients.get(rec.provider);
  if (rec === undefined || client === undefined) return { status: 302, headers, detail: 'logout' };
  // RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) when the provider publishes an end-session endpoint.
  try {
    const { endSession } = await client.endpoints();
    if (endSession !== undefined) {
      const url = new URL(endSession);
      url.searchParams.set('id_token_hint', rec.idToken);
      url.searchParams.set('client_id', client.spec.clientId);
      if (client.spec.postLogoutRedirectUrl !== undefined) url.searchParams.set('post_logout_redirect_uri', client.spec.postLogoutRedirectUrl);
      headers.location = url.toString();
    }
  } catch {
    // The session is gone either way; without discovery the browser goes home.
  }
  return { status: 302, headers, detail: `logout ${client.name}` };
}

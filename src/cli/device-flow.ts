// A small OAuth 2.0 device authorization grant client (RFC 8628) on fetch: discovery, the code, polling, refresh.
import { setTimeout as delay } from 'node:timers/promises';
import { AdminClientError } from './admin-client-error.ts';

/** A failure a person can act on. `code` is the provider's OAuth error (access_denied, expired_token, …) or one of ours. */
export class DeviceFlowError extends AdminClientError {
  override name = 'DeviceFlowError';
  readonly code: string;
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

export interface ProviderEndpoints {
  issuer: string;
  deviceAuthorizationEndpoint: string;
  tokenEndpoint: string;
}

export interface DeviceAuthorization {
  deviceCode: string;
  userCode: string;
  verificationUri: string;
  verificationUriComplete?: string;
  /** When the code stops working (epoch ms). */
  expiresAt: number;
  /** How long to wait between polls (ms). */
  intervalMs: number;
}

export interface TokenSet {
  idToken: string;
  refreshToken?: string;
  accessToken?: string;
  /** The ID token's `exp` (epoch ms). */
  expiresAt: number;
  /** The ID token's claims, unverified (the control plane verifies the token). */
  claims: Record<string, unknown>;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** Per request (default 10 s). */
  timeoutMs?: number;
}

export interface PollOptions extends RequestOptions {
  /** Give up at this time (epoch ms) even if the code is still valid. */
  deadline?: number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
}

const DEVICE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const MAX_TRANSIENT_FAILURES = 3;

/** Tokens go over TLS; plain HTTP only to this machine (development providers such as `lockgate up`'s). */
function checkUrl(url: string, what: string): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DeviceFlowError('bad_provider', `${what} ${JSON.stringify(url)} is not a URL`);
  }
  const loopback = u.hostname === 'localhost' || u.hostname === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(u.hostname);
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopback)) throw new DeviceFlowError('bad_provider', `${what} ${url} must be https:// (plain http only on this machine)`);
  return u;
}

interface Answer {
  status: number;
  body: Record<string, unknown> | undefined;
  text: string;
}

async function call(url: string, init: RequestInit, what: string, opts: RequestOptions): Promise<Answer> {
  const signal = AbortSignal.any([opts.signal ?? new AbortController().signal, AbortSignal.timeout(opts.timeoutMs ?? 10_000)]);
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, { ...init, headers: { accept: 'application/json', ...init.headers }, signal, redirect: init.redirect ?? 'error' });
    text = await res.text();
  } catch (err) {
    if (opts.signal?.aborted) throw new DeviceFlowError('aborted', 'sign-in cancelled', { cause: err });
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const why = e.name === 'TimeoutError' ? 'no answer in time' : (e.cause?.code ?? e.cause?.message ?? e.message);
    throw new DeviceFlowError('unreachable', `cannot reach ${what} at ${url}: ${why}`, { cause: err });
  }
  let body: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    body = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text };
}

/** The provider's own error (`error: error_description`), or a description of an answer that is not OAuth JSON. */
function providerError(a: Answer, what: string, hint = ''): DeviceFlowError {
  if (a.body !== undefined && typeof a.body.error === 'string') {
    const desc = typeof a.body.error_description === 'string' && a.body.error_description !== '' ? `: ${a.body.error_description}` : '';
    return new DeviceFlowError(a.body.error, `${what} was refused: ${a.body.error}${desc}${hint}`);
  }
  return new DeviceFlowError('bad_response', `${what} answered HTTP ${a.status}: ${a.text.slice(0, 200).trim() || '(empty)'}`);
}

const form = (fields: Record<string, string>): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams(fields).toString(),
});

/** OpenID discovery: the provider must publish a device authorization endpoint. */
export async function discover(issuer: string, opts: RequestOptions = {}): Promise<ProviderEndpoints> {
  const base = checkUrl(issuer, 'the issuer').href.replace(/\/$/, '');
  const url = `${base}/.well-known/openid-configuration`;
  const a = await call(url, { redirect: 'follow' }, 'the identity provider', opts);
  if (a.status !== 200 || a.body === undefined) throw new DeviceFlowError('bad_provider', `${url} answered HTTP ${a.status}, not a discovery document: is ${issuer} an OpenID Connect issuer?`);
  const { device_authorization_endpoint: device, token_endpoint: token } = a.body;
  if (typeof token !== 'string') throw new DeviceFlowError('bad_provider', `the provider at ${issuer} publishes no token_endpoint`);
  if (typeof device !== 'string') {
    throw new DeviceFlowError('no_device_flow', `the provider at ${issuer} does not offer the device authorization grant (no device_authorization_endpoint in its discovery document): enable it there to sign in from the command line`);
  }
  checkUrl(device, 'the device authorization endpoint');
  checkUrl(token, 'the token endpoint');
  return { issuer, deviceAuthorizationEndpoint: device, tokenEndpoint: token };
}

/** Asks for a device code and the user code a person enters at the verification URI. */
export async function startDeviceAuthorization(endpoint: string, clientId: string, scopes: readonly string[], opts: RequestOptions & { now?: () => number } = {}): Promise<DeviceAuthorization> {
  const a = await call(endpoint, form({ client_id: clientId, scope: scopes.join(' ') }), 'the device authorization endpoint', opts);
  if (a.status !== 200 || a.body?.error !== undefined) {
    const e = a.body?.error;
    const hint = e === 'invalid_client' || e === 'unauthorized_client'
      ? ` (is ${clientId} registered at the provider as a public client allowed the device code grant?)`
      : e === 'invalid_scope' ? ` (asked for: ${scopes.join(' ')})` : '';
    throw providerError(a, 'the device authorization request', hint);
  }
  const b = a.body ?? {};
  const { device_code: deviceCode, user_code: userCode, verification_uri: uri, verification_uri_complete: complete, expires_in: expiresIn, interval } = b;
  if (typeof deviceCode !== 'string' || typeof userCode !== 'string' || typeof uri !== 'string' || typeof expiresIn !== 'number') {
    throw new DeviceFlowError('bad_response', `the device authorization endpoint answered without device_code, user_code, verification_uri and expires_in: ${a.text.slice(0, 200)}`);
  }
  return {
    deviceCode,
    userCode,
    verificationUri: uri,
    ...(typeof complete === 'string' ? { verificationUriComplete: complete } : {}),
    expiresAt: (opts.now ?? Date.now)() + expiresIn * 1000,
    intervalMs: (typeof interval === 'number' && interval > 0 ? interval : 5) * 1000,
  };
}

/** The claims of a JWT, unverified. */
export function idTokenClaims(idToken: string): Record<string, unknown> {
  try {
    const claims: unknown = JSON.parse(Buffer.from(idToken.split('.')[1] ?? '', 'base64url').toString('utf8'));
    if (claims !== null && typeof claims === 'object' && !Array.isArray(claims)) return claims as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new DeviceFlowError('bad_id_token', 'the provider answered an ID token that is not a JWT');
}

function tokenSet(a: Answer, keepRefresh?: string): TokenSet {
  const b = a.body ?? {};
  if (typeof b.id_token !== 'string') throw new DeviceFlowError('no_id_token', 'the provider answered no ID token (is the openid scope granted to this client?)');
  const claims = idTokenClaims(b.id_token);
  if (typeof claims.exp !== 'number') throw new DeviceFlowError('bad_id_token', 'the ID token has no exp claim');
  const refreshToken = typeof b.refresh_token === 'string' ? b.refresh_token : keepRefresh;
  return {
    idToken: b.id_token,
    ...(refreshToken !== undefined ? { refreshToken } : {}),
    ...(typeof b.access_token === 'string' ? { accessToken: b.access_token } : {}),
    expiresAt: claims.exp * 1000,
    claims,
  };
}

const defaultSleep = (ms: number, signal?: AbortSignal): Promise<void> => delay(ms, undefined, signal ? { signal } : {});

/**
 * Polls the token endpoint until the person has signed in (or declined, or the code expires): waits `interval` between
 * polls, 5 s more after each slow_down; a few network failures in a row are retried with a doubled wait.
 */
export async function pollDeviceToken(tokenEndpoint: string, clientId: string, auth: DeviceAuthorization, opts: PollOptions = {}): Promise<TokenSet> {
  const now = opts.now ?? Date.now;
  const sleep = opts.sleep ?? defaultSleep;
  const end = Math.min(auth.expiresAt, opts.deadline ?? Infinity);
  let interval = auth.intervalMs;
  let failures = 0;
  for (;;) {
    const left = end - now();
    if (left <= 0) {
      if (end < auth.expiresAt) throw new DeviceFlowError('timeout', 'gave up waiting for the sign-in to finish');
      throw new DeviceFlowError('expired_token', 'the code expired before the sign-in finished: run `lockgate login` again');
    }
    try {
      await sleep(Math.min(interval * (failures > 0 ? 2 ** failures : 1), left), opts.signal);
    } catch (err) {
      throw new DeviceFlowError('aborted', 'sign-in cancelled', { cause: err });
    }
    let a: Answer;
    try {
      a = await call(tokenEndpoint, form({ grant_type: DEVICE_GRANT, device_code: auth.deviceCode, client_id: clientId }), 'the token endpoint', opts);
    } catch (err) {
      if ((err as DeviceFlowError).code === 'unreachable' && ++failures < MAX_TRANSIENT_FAILURES) continue;
      throw err;
    }
    if (a.status >= 500 && a.body?.error === undefined && ++failures < MAX_TRANSIENT_FAILURES) continue;
    failures = 0;
    if (a.status === 200 && a.body?.error === undefined) return tokenSet(a);
    switch (a.body?.error) {
      case 'authorization_pending':
        continue;
      case 'slow_down':
        interval += 5000;
        continue;
      case 'expired_token':
        throw new DeviceFlowError('expired_token', 'the code expired before the sign-in finished: run `lockgate login` again');
      case 'access_denied':
        throw new DeviceFlowError('access_denied', `the sign-in was declined at the provider${typeof a.body.error_description === 'string' ? ` (${a.body.error_description})` : ''}`);
      default:
        throw providerError(a, 'the token request');
    }
  }
}

/** A new ID token for a refresh token; keeps the old refresh token when the provider does not rotate it. */
export async function refresh(tokenEndpoint: string, clientId: string, refreshToken: string, opts: RequestOptions = {}): Promise<TokenSet> {
  checkUrl(tokenEndpoint, 'the token endpoint');
  const a = await call(tokenEndpoint, form({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId }), 'the token endpoint', opts);
  if (a.status !== 200 || a.body?.error !== undefined) throw providerError(a, 'the token refresh');
  return tokenSet(a, refreshToken);
}

export interface DeviceLoginOptions extends PollOptions {
  scopes: readonly string[];
  /** Called once the user code is known: show the person where to enter it. */
  onCode(auth: DeviceAuthorization): void;
}

/** The whole flow for one provider: discovery, the code, the person signs in elsewhere, tokens. */
export async function deviceLogin(issuer: string, clientId: string, opts: DeviceLoginOptions): Promise<TokenSet & { endpoints: ProviderEndpoints }> {
  const endpoints = await discover(issuer, opts);
  const auth = await startDeviceAuthorization(endpoints.deviceAuthorizationEndpoint, clientId, opts.scopes, opts);
  opts.onCode(auth);
  return { ...(await pollDeviceToken(endpoints.tokenEndpoint, clientId, auth, opts)), endpoints };
}

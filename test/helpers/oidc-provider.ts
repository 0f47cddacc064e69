// Test helper: a real OpenID Connect provider (oidc-provider) on 127.0.0.1:0 with static users, programmatic login, key rotation.
//
// Used by the IdentityProvider tests and reusable for the `up` demo: clients can be set after the gateway's port is
// known (the provider is rebuilt; oidc-provider's in-memory adapter is module-wide, so grants and refresh tokens
// survive a rebuild), keys rotate the same way, and a cookie-jar "browser" follows the login redirects.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';

export interface OidcUser {
  sub: string;
  email?: string;
  email_verified?: boolean;
  name?: string;
  groups?: string[];
  [claim: string]: unknown;
}

/** oidc-provider client metadata (snake_case, as the package takes it). */
export type ClientMetadata = Record<string, unknown> & { client_id: string };

/** A public client for the device authorization grant (RFC 8628), as `lockgate login` uses one: no secret, refresh tokens. */
export const DEVICE_CLIENT: ClientMetadata = {
  client_id: 'lockgate-cli',
  grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
  response_types: [],
  token_endpoint_auth_method: 'none',
};

interface Provider {
  callback(): http.RequestListener;
  on(event: string, listener: (...args: unknown[]) => void): void;
  interactionDetails(req: http.IncomingMessage, res: http.ServerResponse): Promise<{ uid: string; prompt: { name: string; details: Record<string, unknown> }; params: Record<string, unknown>; session?: { accountId?: string } }>;
  interactionFinished(req: http.IncomingMessage, res: http.ServerResponse, result: Record<string, unknown>, opts?: Record<string, unknown>): Promise<void>;
  Grant: new (o: { accountId: string; clientId: string }) => GrantLike;
}
interface GrantLike {
  addOIDCScope(scope: string): void;
  addOIDCClaims(claims: string[]): void;
  addResourceScope(resource: string, scope: string): void;
  save(): Promise<string>;
}
type ProviderClass = new (issuer: string, config: Record<string, unknown>) => Provider;

// Imported by a computed name so the type checker does not look for declarations; tests skip when it is missing.
const PACKAGE = 'oidc-provider';
let ProviderCtor: ProviderClass | undefined;
try {
  ProviderCtor = ((await import(PACKAGE)) as { Provider: ProviderClass }).Provider;
} catch {
  ProviderCtor = undefined;
}
export const oidcProviderMissing: string | false = ProviderCtor === undefined ? 'oidc-provider is not installed (npm install --include=dev); skipping' : false;

export const DEFAULT_USERS: Record<string, OidcUser> = {
  alice: { sub: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice', groups: ['eng', 'admins'] },
  bob: { sub: 'bob', email: 'bob@contractor.io', email_verified: true, name: 'Bob', groups: ['contractors'] },
};

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  /** The private JWK as the provider gets it (alg RS256, use sig). */
  jwk: Record<string, unknown>;
}

export function rsaSigningKey(kid: string): SigningKey {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}

export interface OidcFixtureOptions {
  users?: Record<string, OidcUser>;
  clients?: ClientMetadata[];
  /** Seconds. */
  accessTokenTtl?: number;
  idTokenTtl?: number;
  /** The audience (resource indicator) of JWT access tokens. Default https://api.local. */
  resource?: string;
}

export class OidcFixture {
  readonly issuer: string;
  readonly resource: string;
  /** Signing keys, the one in use first. */
  keys: SigningKey[];
  /** Successful grants by grant_type (authorization_code, refresh_token, client_credentials). */
  readonly grants = new Map<string, number>();
  /** Requests served, by path (e.g. how often `/jwks` was fetched). */
  readonly hits = new Map<string, number>();
  readonly #server: http.Server;
  readonly #opts: Required<Omit<OidcFixtureOptions, 'clients'>>;
  #clients: ClientMetadata[];
  #provider!: Provider;
  #keySeq = 1;

  private constructor(server: http.Server, issuer: string, opts: OidcFixtureOptions) {
    this.#server = server;
    this.issuer = issuer;
    this.resource = opts.resource ?? 'https://api.local';
    this.#opts = { users: opts.users ?? DEFAULT_USERS, accessTokenTtl: opts.accessTokenTtl ?? 300, idTokenTtl: opts.idTokenTtl ?? 300, resource: this.resource };
    this.#clients = opts.clients ?? [];
    this.keys = [rsaSigningKey(`k${this.#keySeq}`)];
    this.#rebuild();
  }

  static async start(opts: OidcFixtureOptions = {}): Promise<OidcFixture> {
    if (ProviderCtor === undefined) throw new Error('oidc-provider is not installed');
    // The issuer carries the port, so the provider is made once the server listens.
    const ref: { fixture?: OidcFixture } = {};
    const server = http.createServer((req, res) => {
      if (ref.fixture === undefined) return void res.writeHead(503).end();
      ref.fixture.#handle(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ref.fixture = new OidcFixture(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, opts);
    return ref.fixture;
  }

  get discovery(): string {
    return `${this.issuer}/.well-known/openid-configuration`;
  }

  /** Replaces the registered clients (e.g. once the gateway's callback URL is known). */
  setClients(clients: ClientMetadata[]): void {
    this.#clients = clients;
    this.#rebuild();
  }

  /** Publishes a new key and signs with it from now on; the old keys stay published unless `dropOld`. */
  rotateKey(dropOld = false): SigningKey {
    const k = rsaSigningKey(`k${++this.#keySeq}`);
    this.keys = dropOld ? [k] : [k, ...this.keys];
    this.#rebuild();
    return k;
  }

  /** A client_credentials access token (JWT, aud = resource) for a confidential client. */
  async clientCredentialsToken(clientId: string, secret: string, scope = 'read'): Promise<string> {
    const res = await fetch(`${this.issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${clientId}:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: this.resource, scope }).toString(),
      signal: AbortSignal.timeout(5000),
    });
    const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
    if (res.status !== 200 || body.access_token === undefined) throw new Error(`client_credentials: ${body.error}: ${body.error_description}`);
    return body.access_token;
  }

  /** Signs arbitrary header and claims JSON with one of the provider's keys (RS256), for crafted-token tests. */
  sign(header: Record<string, unknown>, claims: Record<string, unknown>, key: SigningKey = this.keys[0]): string {
    const input = `${b64u(JSON.stringify({ alg: 'RS256', kid: key.kid, ...header }))}.${b64u(JSON.stringify(claims))}`;
    return `${input}.${cryptoSign('sha256', Buffer.from(input), key.privateKey).toString('base64url')}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #rebuild(): void {
    const Ctor = ProviderCtor!;
    const users = this.#opts.users;
    const resource = this.resource;
    const provider = new Ctor(this.issuer, {
      jwks: { keys: this.keys.map((k) => k.jwk) },
      cookies: { keys: ['fixture-cookie-secret'] },
      clients: this.#clients,
      claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
      scopes: ['openid', 'offline_access', 'email', 'profile', 'groups', 'read', 'write'],
      // Scope claims (email, groups) in the ID token, so a session has them without userinfo.
      conformIdTokenClaims: false,
      pkce: { required: () => true },
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        rpInitiatedLogout: { enabled: true },
        // RFC 8628 for public CLI clients (grant_types [device_code, refresh_token], token_endpoint_auth_method none).
        deviceFlow: { enabled: true, userCodeInputSource: deviceInputPage, userCodeConfirmSource: deviceConfirmPage, successSource: deviceSuccessPage },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => resource,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({ scope: 'read write', audience: resource, accessTokenFormat: 'jwt', accessTokenTTL: this.#opts.accessTokenTtl, jwt: { sign: { alg: 'RS256' } } }),
        },
      },
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
      extraTokenClaims: async (_ctx: unknown, t: { kind: string; accountId?: string }) => {
        const u = t.kind === 'AccessToken' && t.accountId !== undefined ? users[t.accountId] : undefined;
        return u === undefined ? undefined : { email: u.email, groups: u.groups };
      },
      issueRefreshToken: async (_ctx: unknown, client: { grantTypeAllowed(g: string): boolean }) => client.grantTypeAllowed('refresh_token'),
      async findAccount(_ctx: unknown, id: string) {
        const u = users[id];
        return u && { accountId: id, claims: async () => ({ ...u }) };
      },
      ttl: { AccessToken: this.#opts.accessTokenTtl, IdToken: this.#opts.idTokenTtl, RefreshToken: 86_400, ClientCredentials: this.#opts.accessTokenTtl, Interaction: 600, Session: 3600, Grant: 3600, DeviceCode: 600 },
    });
    provider.on('grant.success', (ctx: unknown) => {
      const g = (ctx as { oidc?: { params?: { grant_type?: string } } }).oidc?.params?.grant_type ?? '?';
      this.grants.set(g, (this.grants.get(g) ?? 0) + 1);
    });
    // Koa logs rejected requests; the tests assert on responses instead.
    provider.on('server_error', () => {});
    this.#provider = provider;
  }

  /**
   * Interactions: GET shows a one-field login form; POST `login=<user>` signs that user in. Consent is given at once
   * (a first-party client), so a login is the only step a test (or a person trying the demo) takes.
   */
  #handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '').split('?')[0];
    this.hits.set(path, (this.hits.get(path) ?? 0) + 1);
    const m = /^\/interaction\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '');
    if (m === null) return this.#provider.callback()(req, res);
    const provider = this.#provider;
    void (async () => {
      const details = await provider.interactionDetails(req, res);
      if (details.prompt.name === 'login') {
        if (req.method !== 'POST') {
          res.writeHead(200, { 'content-type': 'text/html' }).end(`<form method="post"><input name="login" placeholder="alice"><button>Sign in</button></form>`);
          return;
        }
        const form = new URLSearchParams(await readBody(req));
        const login = form.get('login') ?? '';
        if (this.#opts.users[login] === undefined) return void res.writeHead(403, { 'content-type': 'text/plain' }).end('unknown user');
        await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
        return;
      }
      const accountId = details.session?.accountId ?? '';
      const grant = new provider.Grant({ accountId, clientId: String(details.params.client_id) });
      const d = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    })().catch((err: Error) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end(err.message);
    });
  }
}

// The device flow's pages, plain (oidc-provider's defaults work too but print a notice on first use). `form` is the
// provider's own form (hidden xsrf, user_code, confirm); the buttons submit it.
type PageCtx = { body: string; oidc: { client?: { clientId: string } } };
const page = (title: string, inner: string): string => `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${inner}</body></html>`;

async function deviceInputPage(ctx: PageCtx, form: string, _out?: unknown, err?: { name?: string; userCode?: string }): Promise<void> {
  const msg = err === undefined ? 'Enter the code shown on your device.' : err.name === 'AbortedError' ? 'The sign-in was cancelled.' : err.userCode !== undefined || err.name === 'NoCodeError' ? 'That code is not valid. Try again.' : 'Something went wrong. Try again.';
  ctx.body = page('Sign in a device', `<p>${msg}</p>${form}<button type="submit" form="op.deviceInputForm">Continue</button>`);
}

async function deviceConfirmPage(ctx: PageCtx, form: string, _client: unknown, _deviceInfo: unknown, userCode: string): Promise<void> {
  ctx.body = page('Confirm the device', `<p>Is <code>${userCode}</code> the code your device shows?</p>${form}<button type="submit" form="op.deviceConfirmForm">Continue</button><button type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button>`);
}

async function deviceSuccessPage(ctx: PageCtx): Promise<void> {
  ctx.body = page('Signed in', '<p>You can close this page and return to your device.</p>');
}

function b64u(s: string): string {
  return Buffer.from(s).toString('base64url');
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A cookie jar per origin (host:port): enough for a gateway and a provider on 127.0.0.1 with different ports. */
export class CookieJar {
  readonly #jar = new Map<string, Map<string, string>>();

  cookieHeader(url: string): string | undefined {
    const c = this.#jar.get(new URL(url).host);
    if (c === undefined || c.size === 0) return undefined;
    return [...c].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  get(url: string, name: string): string | undefined {
    return this.#jar.get(new URL(url).host)?.get(name);
  }

  set(url: string, name: string, value: string): void {
    const host = new URL(url).host;
    const c = this.#jar.get(host) ?? new Map<string, string>();
    c.set(name, value);
    this.#jar.set(host, c);
  }

  store(url: string, setCookies: string[]): void {
    for (const sc of setCookies) {
      const [pair, ...attrs] = sc.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || attrs.some((a) => /^\s*expires=.*1970/i.test(a));
      const host = new URL(url).host;
      const c = this.#jar.get(host) ?? new Map<string, string>();
      if (expired || value === '') c.delete(name);
      else c.set(name, value);
      this.#jar.set(host, c);
    }
  }
}

export interface Hop {
  url: string;
  status: number;
  location: string | undefined;
  setCookie: string[];
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/**
 * One browser request (no redirect following), with the jar's cookies, storing what comes back. undici's `request`
 * rather than fetch: fetch always sends `sec-fetch-mode: cors`, which marks a request as not a navigation.
 */
export async function browserFetch(jar: CookieJar, url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Hop> {
  const headers: Record<string, string> = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate', ...init.headers };
  const cookie = jar.cookieHeader(url);
  if (cookie !== undefined) headers.cookie = cookie;
  if (init.body !== undefined) headers['content-type'] ??= 'application/x-www-form-urlencoded';
  const res = await request(url, { method: (init.method ?? 'GET') as 'GET', headers, body: init.body, signal: AbortSignal.timeout(10_000) });
  const raw = res.headers['set-cookie'];
  const setCookie = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  jar.store(url, setCookie);
  const body = await res.body.text();
  const loc = res.headers.location;
  const location = typeof loc === 'string' ? new URL(loc, url).toString() : undefined;
  return { url, status: res.statusCode, location, setCookie, body, headers: res.headers };
}

/**
 * Opens `url` like a browser and signs in as `user` when the provider asks: follows every redirect by hand (so each
 * hop is visible), posts the login form, and stops at the first answer that is not a redirect. Returns every hop.
 */
export async function browserLogin(jar: CookieJar, url: string, user: string, maxHops = 20): Promise<Hop[]> {
  const hops: Hop[] = [];
  let next: { url: string; method?: string; body?: string } | undefined = { url };
  while (next !== undefined) {
    if (hops.length >= maxHops) throw new Error(`more than ${maxHops} hops: ${hops.map((h) => `${h.status} ${h.url}`).join(' → ')}`);
    const hop = await browserFetch(jar, next.url, next);
    hops.push(hop);
    if (hop.status >= 300 && hop.status < 400 && hop.location !== undefined) next = { url: hop.location };
    else if (hop.status === 200 && /\/interaction\/[A-Za-z0-9_-]+$/.test(new URL(hop.url).pathname) && next.method !== 'POST') {
      next = { url: hop.url, method: 'POST', body: new URLSearchParams({ login: user }).toString() };
    } else next = undefined;
  }
  return hops;
}

/** The claims of a JWT, unverified (for assertions in tests). */
export function jwtClaims(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as Record<string, unknown>;
}


/** The `name=value` fields a form submits: hidden inputs, and text inputs with a value (HTML entities decoded). */
function formFields(html: string): { action: string | undefined; fields: Map<string, string> } {
  const form = /<form\b[^>]*>/i.exec(html);
  const action = form === null ? undefined : /\baction="([^"]*)"/i.exec(form[0])?.[1];
  const fields = new Map<string, string>();
  for (const m of html.matchAll(/<input\b[^>]*>/gi)) {
    const attr = (n: string): string | undefined => new RegExp(`\\b${n}="([^"]*)"`, 'i').exec(m[0])?.[1];
    const name = attr('name');
    if (name !== undefined) fields.set(name, unescapeHtml(attr('value') ?? ''));
  }
  return { action: action === undefined ? undefined : unescapeHtml(action), fields };
}

function unescapeHtml(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_m, e: string) => {
    const named: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
    if (e[0] !== '#') return named[e.toLowerCase()];
    return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : Number(e.slice(1)));
  });
}

/**
 * The browser side of the device flow (RFC 8628): opens the verification URL, submits the user-code form (its `xsrf`
 * and `user_code` fields; the code is taken from the URL's `user_code`, or `opts.userCode`), signs in as `user` at
 * `/interaction/<uid>`, consent is given at once, and confirms the code (`confirm=yes`; `abort=yes` when
 * `opts.decline`), stopping at the first page with no form (success) or that is not a redirect. Returns every hop.
 */
export async function approveDevice(jar: CookieJar, verificationUriComplete: string, user: string, opts: { decline?: boolean; userCode?: string; maxHops?: number } = {}): Promise<Hop[]> {
  const maxHops = opts.maxHops ?? 20;
  const userCode = opts.userCode ?? new URL(verificationUriComplete).searchParams.get('user_code') ?? undefined;
  const hops: Hop[] = [];
  const signedIn = new Set<string>();
  let declined = false;
  let next: { url: string; method?: string; body?: string } | undefined = { url: verificationUriComplete };
  while (next !== undefined) {
    if (hops.length >= maxHops) throw new Error(`more than ${maxHops} hops: ${hops.map((h) => `${h.status} ${h.url}`).join(' → ')}`);
    const hop = await browserFetch(jar, next.url, next);
    hops.push(hop);
    next = undefined;
    if (hop.status >= 300 && hop.status < 400 && hop.location !== undefined) {
      next = { url: hop.location };
      continue;
    }
    if (hop.status !== 200) break;
    const path = new URL(hop.url).pathname;
    if (/^\/interaction\/[A-Za-z0-9_-]+$/.test(path)) {
      // The fixture's login form (consent needs no page): sign in once per interaction.
      if (signedIn.has(path)) break;
      signedIn.add(path);
      next = { url: hop.url, method: 'POST', body: new URLSearchParams({ login: user }).toString() };
      continue;
    }
    const { action, fields } = formFields(hop.body);
    if (action === undefined || !fields.has('xsrf')) break; // the success page, or an error page
    // The code input page a second time: the code was refused, or the sign-in was aborted.
    if (hop.body.includes('op.deviceInputForm') && (declined || hops.slice(0, -1).some((h) => h.body.includes('op.deviceInputForm')))) break;
    if (fields.has('confirm')) {
      if (opts.decline) {
        fields.delete('confirm');
        fields.set('abort', 'yes');
        declined = true;
      }
    } else if ((fields.get('user_code') ?? '') === '') {
      if (userCode === undefined) throw new Error('the provider asks for the user code: pass opts.userCode');
      fields.set('user_code', userCode);
    }
    next = { url: new URL(action, hop.url).toString(), method: 'POST', body: new URLSearchParams([...fields]).toString() };
  }
  return hops;
}

// DEVELOPMENT ONLY: the OpenID provider `lockgate up` starts (oidc-provider on 127.0.0.1) with users alice and bob.
//
// A real provider (discovery, JWKS, authorization code with PKCE, JWT access tokens with email and groups), so the
// gateway and the control plane validate its tokens exactly as a company's. The one shortcut is `GET /dev/token/<user>`:
// it signs the user in with no password (running the authorization-code flow against this provider itself, as a
// browser would) and answers the access token, so the demo gets a token with one curl. Never expose it beyond loopback.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { memoryAdapter } from './demo-idp-store.ts';

export interface DemoUser {
  sub: string;
  email: string;
  email_verified: boolean;
  name: string;
  groups: string[];
}

export const DEMO_IDP_USERS: Readonly<Record<string, DemoUser>> = {
  alice: { sub: 'alice', email: 'alice@example.com', email_verified: true, name: 'Alice', groups: ['orders-admins'] },
  bob: { sub: 'bob', email: 'bob@example.com', email_verified: true, name: 'Bob', groups: ['staff'] },
};

/** A demo user by login name (own properties only: `constructor` is nobody). */
export function demoUser(login: string): DemoUser | undefined {
  return Object.hasOwn(DEMO_IDP_USERS, login) ? DEMO_IDP_USERS[login] : undefined;
}

/** The client the demo registers, and the audience (resource indicator) its JWT access tokens name. */
export const DEMO_IDP_CLIENT_ID = 'lockgate-demo';
export const DEMO_IDP_AUDIENCE = 'https://api.lockgate.local';
/** The public client `lockgate login` signs in with (device authorization grant, RFC 8628; no secret). */
export const DEMO_IDP_CLI_CLIENT_ID = 'lockgate-cli';

interface Interaction {
  uid: string;
  prompt: { name: string; details: Record<string, unknown> };
  params: Record<string, unknown>;
  session?: { accountId?: string };
}
interface Provider {
  callback(): http.RequestListener;
  on(event: string, listener: (...args: unknown[]) => void): void;
  interactionDetails(req: http.IncomingMessage, res: http.ServerResponse): Promise<Interaction>;
  interactionFinished(req: http.IncomingMessage, res: http.ServerResponse, result: Record<string, unknown>, opts?: Record<string, unknown>): Promise<void>;
  Grant: new (o: { accountId: string; clientId: string }) => {
    addOIDCScope(scope: string): void;
    addOIDCClaims(claims: string[]): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  };
}
type ProviderClass = new (issuer: string, config: Record<string, unknown>) => Provider;

export interface DemoIdp {
  /** `http://127.0.0.1:<port>`: the issuer, with discovery at `/.well-known/openid-configuration`. */
  readonly issuer: string;
  /** The development-only token shortcut for a user: `GET` answers an access token as text. */
  tokenUrl(user: string): string;
  /** An access token for a user, by the same sign-in the token URL runs. */
  token(user: string): Promise<string>;
  close(): Promise<void>;
}

export interface DemoIdpOptions {
  /** Access token lifetime in seconds (default one hour). */
  accessTokenTtl?: number;
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** One browser request to the provider (no redirect following), keeping its cookies. */
async function browserStep(url: string, body: string | undefined, cookies: Map<string, string>): Promise<{ status: number; location: URL | undefined; text: string }> {
  const res = await request(url, {
    method: body === undefined ? 'GET' : 'POST',
    body,
    headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; '), ...(body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }) },
    headersTimeout: 5000,
    bodyTimeout: 5000,
  });
  const text = await res.body.text();
  const set = res.headers['set-cookie'];
  for (const c of set === undefined ? [] : Array.isArray(set) ? set : [set]) {
    const [pair] = c.split(';');
    const eq = pair.indexOf('=');
    cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
  const loc = res.headers.location;
  return { status: res.statusCode, location: typeof loc === 'string' ? new URL(loc, url) : undefined, text };
}

// The device flow's pages. `form` is oidc-provider's own form (hidden xsrf, user_code, confirm); the buttons submit it.
type PageCtx = { body: string };
const PAGE_STYLE = 'body{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}input[type=text]{font-size:1.4rem;text-transform:uppercase;width:100%;margin:.5rem 0}button{font-size:1rem;margin:.5rem .5rem 0 0}code{font-size:1.4rem}';
const page = (title: string, inner: string): string =>
  `<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${title}</title><style>${PAGE_STYLE}</style></head><body><p>Lockgate demo identity provider (development only)</p><h1>${title}</h1>${inner}</body></html>`;

async function deviceInputPage(ctx: PageCtx, form: string, _out?: unknown, err?: { name?: string; userCode?: string }): Promise<void> {
  const msg = err === undefined ? 'Enter the code <code>lockgate login</code> printed.' : err.name === 'AbortedError' ? 'The sign-in was cancelled.' : err.userCode !== undefined || err.name === 'NoCodeError' ? 'That code is not valid (or has expired). Try again.' : 'Something went wrong. Try again.';
  ctx.body = page('Sign in the Lockgate CLI', `<p>${msg}</p>${form}<button type="submit" form="op.deviceInputForm">Continue</button>`);
}

async function deviceConfirmPage(ctx: PageCtx, form: string, _client: unknown, _deviceInfo: unknown, userCode: string): Promise<void> {
  ctx.body = page('Confirm the code', `<p>Does your terminal show <code>${userCode}</code>? Continue only if it does.</p>${form}<button type="submit" form="op.deviceConfirmForm">Continue</button><button type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Cancel</button>`);
}

async function deviceSuccessPage(ctx: PageCtx): Promise<void> {
  ctx.body = page('Signed in', '<p>You can close this page and return to your terminal.</p>');
}

export async function startDemoIdp(o: DemoIdpOptions = {}): Promise<DemoIdp> {
  // Imported by a computed name: the package ships no type declarations, the interfaces above are what we use.
  const PACKAGE = 'oidc-provider';
  const { Provider } = (await import(PACKAGE)) as { Provider: ProviderClass };
  const ttl = o.accessTokenTtl ?? 3600;
  // The issuer carries the port, so the provider is made once the server listens.
  const ready: { listener?: http.RequestListener } = {};
  const server = http.createServer((req, res) => handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const redirectUri = `${issuer}/dev/callback`;
  const clientSecret = randomBytes(24).toString('base64url');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const provider = new Provider(issuer, {
    adapter: memoryAdapter(),
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), kid: 'demo-1', alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    clients: [
      { client_id: DEMO_IDP_CLIENT_ID, client_secret: clientSecret, redirect_uris: [redirectUri], grant_types: ['authorization_code'], response_types: ['code'] },
      {
        client_id: DEMO_IDP_CLI_CLIENT_ID, client_name: 'Lockgate CLI', token_endpoint_auth_method: 'none', response_types: [], redirect_uris: [],
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
      },
    ],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'], groups: ['groups'] },
    // offline_access: `lockgate login` keeps a refresh token (the authorization-code client asks for none).
    scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: {
      devInteractions: { enabled: false },
      // `lockgate login`: the person opens /device in a browser, enters the code, signs in at the interaction page.
      deviceFlow: { enabled: true, userCodeInputSource: deviceInputPage, userCodeConfirmSource: deviceConfirmPage, successSource: deviceSuccessPage },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => DEMO_IDP_AUDIENCE,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'api', audience: DEMO_IDP_AUDIENCE, accessTokenFormat: 'jwt', accessTokenTTL: ttl, jwt: { sign: { alg: 'RS256' } } }),
      },
    },
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    // Access tokens carry the claims AccessPolicies read (as a company's provider is configured to).
    extraTokenClaims: async (_ctx: unknown, t: { kind: string; accountId?: string }) => {
      const u = t.kind === 'AccessToken' && t.accountId !== undefined ? demoUser(t.accountId) : undefined;
      return u === undefined ? undefined : { email: u.email, groups: u.groups };
    },
    async findAccount(_ctx: unknown, id: string) {
      const u = demoUser(id);
      return u && { accountId: id, claims: async () => ({ ...u }) };
    },
    ttl: { AccessToken: ttl, IdToken: ttl, AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600, DeviceCode: 600, RefreshToken: 86_400 },
  });
  provider.on('server_error', () => {});
  ready.listener = provider.callback();

  /** The login page: one field (no password: development only); consent is given at once (a first-party client). */
  async function interaction(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'login') {
      if (req.method !== 'POST') {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<p>Lockgate demo identity provider (development only)</p><form method="post"><input name="login" placeholder="alice or bob"><button>Sign in</button></form>');
        return;
      }
      const login = new URLSearchParams(await readBody(req)).get('login') ?? '';
      if (demoUser(login) === undefined) return void res.writeHead(403, { 'content-type': 'text/plain' }).end('unknown user: alice or bob\n');
      await provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
      return;
    }
    const grant = new provider.Grant({ accountId: details.session?.accountId ?? '', clientId: String(details.params.client_id) });
    const d = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> };
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
    await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
  }

  /** Signs `user` in as a browser would (authorize → login form → consent → code), then redeems the code with PKCE. */
  async function token(user: string): Promise<string> {
    if (demoUser(user) === undefined) throw new Error(`unknown user ${JSON.stringify(user)}: alice or bob`);
    const verifier = randomBytes(32).toString('base64url');
    const state = randomBytes(16).toString('base64url');
    const auth = new URL(`${issuer}/auth`);
    for (const [k, v] of Object.entries({
      client_id: DEMO_IDP_CLIENT_ID, response_type: 'code', redirect_uri: redirectUri, scope: 'openid email profile groups', resource: DEMO_IDP_AUDIENCE,
      state, nonce: randomBytes(16).toString('base64url'), code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    })) auth.searchParams.set(k, v);
    const cookies = new Map<string, string>();
    let next: { url: string; body?: string } | undefined = { url: auth.href };
    let code: string | undefined;
    for (let hop = 0; next !== undefined && code === undefined; hop++) {
      if (hop === 12) throw new Error('the sign-in took more than 12 steps');
      const at: { url: string; body?: string } = next;
      const r = await browserStep(at.url, at.body, cookies);
      next = undefined;
      if (r.status >= 300 && r.status < 400 && r.location !== undefined) {
        if (r.location.href.startsWith(`${redirectUri}?`)) {
          const p = r.location.searchParams;
          if (p.get('state') !== state) throw new Error('the callback carried another state');
          code = p.get('code') ?? undefined;
          if (code === undefined) throw new Error(`sign-in failed: ${p.get('error') ?? 'no code'}: ${p.get('error_description') ?? ''}`);
        } else next = { url: r.location.href };
      } else if (r.status === 200 && new URL(at.url).pathname.startsWith('/interaction/') && at.body === undefined) {
        next = { url: at.url, body: new URLSearchParams({ login: user }).toString() };
      } else throw new Error(`sign-in stopped at ${r.status} ${at.url}: ${r.text.slice(0, 200)}`);
    }
    const res = await request(`${issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${DEMO_IDP_CLIENT_ID}:${clientSecret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: code!, redirect_uri: redirectUri, code_verifier: verifier, resource: DEMO_IDP_AUDIENCE }).toString(),
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    const body = (await res.body.json()) as { access_token?: string; error?: string; error_description?: string };
    if (res.statusCode !== 200 || body.access_token === undefined) throw new Error(`token endpoint: ${body.error}: ${body.error_description}`);
    return body.access_token;
  }

  function handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0];
    const dev = /^\/dev\/token\/([^/]+)$/.exec(path);
    if (dev !== null && req.method === 'GET') {
      // DEVELOPMENT ONLY: a token for a named user with no password.
      token(dev[1]).then(
        (t) => res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'no-store' }).end(`${t}\n`),
        (err: Error) => res.writeHead(/unknown user/.test(err.message) ? 404 : 500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
      );
      return;
    }
    if (path === '/dev/callback') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('Signed in. (The demo reads the code from the redirect; use /dev/token/<user>.)\n');
    if (path.startsWith('/interaction/')) {
      interaction(req, res).catch((err: Error) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`);
      });
      return;
    }
    if (ready.listener === undefined) return void res.writeHead(503).end();
    ready.listener(req, res);
  }

  return {
    issuer,
    tokenUrl: (user) => `${issuer}/dev/token/${user}`,
    token,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

// IdentityProvider against a real oidc-provider on 127.0.0.1: bearer tokens, browser login with PKCE, sessions, refresh, logout, two providers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startPolicyGateway, GATEWAY, type PolicyGateway } from './helpers/policy-gateway.ts';
import { parseCheckedConfig } from '../src/policy/load-checked.ts';
import { formatProblems } from '../src/model/load-config.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { CookieJar, OidcFixture, browserFetch, browserLogin, jwtClaims, oidcProviderMissing, type OidcFixtureOptions } from './helpers/oidc-provider.ts';

const skip = oidcProviderMissing;
const API = 'https://api.local';

function idpDoc(name: string, p: OidcFixture, extra = ''): string {
  return `---
apiVersion: lockgate.dev/v1alpha1
kind: IdentityProvider
metadata: { name: ${name} }
spec:
  issuer: ${p.issuer}
  clientId: gateway
  clientSecret: gateway-secret
  audience: [${API}]
  scopes: [openid, email, profile, groups, offline_access]
${extra}`;
}

function config(upstream: Upstream, providers: string, apis: string): string {
  return `${GATEWAY}---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: ${upstream.url} }
${providers}${apis}`;
}

const api = (name: string, path: string, auth: string): string => `---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: ${name} }
spec: { path: ${path}, backend: up, authentication: ${auth} }
`;

const policy = (name: string, target: string, rules: string): string => `---
apiVersion: lockgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: ${name} }
spec: { target: { api: ${target} }, ${rules} }
`;

/** The gateway's confidential client, registered once the gateway's callback URL is known. */
function gatewayClient(gw: string): Record<string, unknown> & { client_id: string } {
  return {
    client_id: 'gateway',
    client_secret: 'gateway-secret',
    redirect_uris: [`${gw}/.lockgate/callback`],
    post_logout_redirect_uris: [`${gw}/`],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
  };
}

interface World {
  idp: OidcFixture;
  upstream: Upstream;
  gw: PolicyGateway;
  close(): Promise<void>;
}

async function world(yaml: (idp: OidcFixture, upstream: Upstream) => string, opts: OidcFixtureOptions = {}): Promise<World> {
  const idp = await OidcFixture.start(opts);
  const upstream = await startUpstream();
  let gw: PolicyGateway;
  try {
    gw = await startPolicyGateway(yaml(idp, upstream));
  } catch (err) {
    await idp.close();
    await upstream.close();
    throw err;
  }
  idp.setClients([gatewayClient(gw.url)]);
  return {
    idp,
    upstream,
    gw,
    async close() {
      await gw.close();
      await upstream.close();
      await idp.close();
    },
  };
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; body: string; json: () => Record<string, unknown> }> {
  const res = await fetch(url, { headers, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
  const body = await res.text();
  return { status: res.status, headers: res.headers, body, json: () => JSON.parse(body) as Record<string, unknown> };
}

const now = (): number => Math.floor(Date.now() / 1000);

test('bearer tokens: client_credentials, 401 with request id and WWW-Authenticate, claims decide AccessPolicies', { timeout: 60_000, skip }, async () => {
  const w = await world((idp, up) => config(up, idpDoc('corp', idp),
    api('api', '/api', '{ providers: [corp] }') + api('admin', '/admin', '{ providers: [corp] }') + policy('admins', 'admin', 'allow: [{ groups: admins }]')));
  try {
    const token = await w.idp.clientCredentialsToken('gateway', 'gateway-secret');
    const ok = await get(`${w.gw.url}/api/items`, { authorization: `Bearer ${token}` });
    assert.equal(ok.status, 200, ok.body);
    assert.equal(w.upstream.seen.length, 1);
    assert.equal(w.upstream.seen[0].headers.authorization, `Bearer ${token}`, 'the token goes on to the backend');

    const missing = await get(`${w.gw.url}/api/items`);
    assert.equal(missing.status, 401);
    assert.equal(missing.headers.get('www-authenticate'), 'Bearer realm="lockgate"');
    const body = missing.json();
    assert.equal(body.requestId, missing.headers.get('x-request-id'));
    assert.equal(body.message, 'Authentication required: no bearer token or session');

    for (const bad of ['not-a-jwt', 'a.b.c', `${token}x`, 'Bearer']) {
      const r = await get(`${w.gw.url}/api/items`, { authorization: `Bearer ${bad}` });
      assert.equal(r.status, 401, bad);
      assert.match(r.headers.get('www-authenticate') ?? '', /error="invalid_(token|request)"/);
      assert.equal(r.json().requestId, r.headers.get('x-request-id'));
    }
    // Two Authorization headers are ambiguous: refused, not guessed.
    const twice = await fetch(`${w.gw.url}/api/items`, { headers: [['authorization', `Bearer ${token}`], ['authorization', `Bearer ${token}`]], signal: AbortSignal.timeout(5000) });
    assert.equal(twice.status, 401);
    await twice.body?.cancel();
    assert.equal(w.upstream.seen.length, 1, 'nothing refused reached the backend');

    // The token's claims are the end user: a provider-signed token for alice (admins) passes, one for bob is denied.
    const claims = { iss: w.idp.issuer, aud: API, iat: now(), exp: now() + 300 };
    const alice = w.idp.sign({ typ: 'at+jwt' }, { ...claims, sub: 'alice', groups: ['eng', 'admins'] });
    const bob = w.idp.sign({ typ: 'at+jwt' }, { ...claims, sub: 'bob', groups: ['contractors'] });
    assert.equal((await get(`${w.gw.url}/admin/x`, { authorization: `Bearer ${alice}` })).status, 200);
    const denied = await get(`${w.gw.url}/admin/x`, { authorization: `Bearer ${bob}` });
    assert.equal(denied.status, 403);
    assert.equal((denied.json().error as Record<string, unknown>).code, 'access_denied');
    // The client_credentials token has no groups: denied too.
    assert.equal((await get(`${w.gw.url}/admin/x`, { authorization: `Bearer ${token}` })).status, 403);
  } finally {
    await w.close();
  }
});

test('optional authentication, operation overrides, and claims in an ApiPolicy pipeline', { timeout: 60_000, skip }, async () => {
  const w = await world((idp, up) => config(up, idpDoc('corp', idp),
    api('open', '/open', '{ providers: [corp], required: false }')
    + `---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: piped }
spec:
  path: /piped
  backend: up
  authentication: { providers: [corp] }
  operations:
    - { name: health, urlTemplate: /health, methods: [GET], authentication: { providers: [corp], required: false } }
    - { name: rest, urlTemplate: /*, methods: ["*"] }
---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: piped-user }
spec:
  scope: { api: piped, operation: rest }
  inbound:
    - base: {}
    - set-header: { name: x-user, value: "@(context.User.sub)" }
`
    + policy('piped-no-contractors', 'piped', 'deny: [{ groups: contractors }]')));
  try {
    const base = { iss: w.idp.issuer, aud: API, iat: now(), exp: now() + 300 };
    const alice = w.idp.sign({}, { ...base, sub: 'alice', groups: ['eng'] });
    const bob = w.idp.sign({}, { ...base, sub: 'bob', groups: ['contractors'] });
    // required: false lets anonymous callers in, but a bad token is still refused.
    assert.equal((await get(`${w.gw.url}/open/x`)).status, 200);
    assert.equal((await get(`${w.gw.url}/open/x`, { authorization: `Bearer ${alice}` })).status, 200);
    assert.equal((await get(`${w.gw.url}/open/x`, { authorization: 'Bearer junk' })).status, 401);
    // The operation override: /piped/health is open, the rest of the Api is not.
    assert.equal((await get(`${w.gw.url}/piped/health`)).status, 200);
    assert.equal((await get(`${w.gw.url}/piped/orders`)).status, 401);
    // Claims are context.User for policies, and the AccessPolicy (decided after inbound) sees them.
    const r = await get(`${w.gw.url}/piped/orders`, { authorization: `Bearer ${alice}` });
    assert.equal(r.status, 200, r.body);
    assert.equal(w.upstream.seen[w.upstream.seen.length - 1].headers['x-user'], 'alice');
    const denied = await get(`${w.gw.url}/piped/orders`, { authorization: `Bearer ${bob}` });
    assert.equal(denied.status, 403, denied.body);
  } finally {
    await w.close();
  }
});

test('browser login: code flow with PKCE, session reuse, bearer wins, XHR gets 401, callback replay refused, logout', { timeout: 60_000, skip }, async () => {
  const w = await world((idp, up) => config(up, idpDoc('corp', idp),
    api('app', '/app', '{ providers: [corp], login: true }') + policy('app-eng', 'app', 'allow: [{ groups: eng }]')));
  try {
    const jar = new CookieJar();
    const hops = await browserLogin(jar, `${w.gw.url}/app/page?x=1&y=2`, 'alice');
    const trail = hops.map((h) => `${h.status} ${h.url}`).join('\n');
    // 1. The gateway sends the browser to the provider: code flow, PKCE S256, state and nonce; the return URL stays server-side.
    assert.equal(hops[0].status, 302, trail);
    const auth = new URL(hops[0].location!);
    assert.equal(auth.origin, w.idp.issuer);
    assert.equal(auth.searchParams.get('response_type'), 'code');
    assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
    assert.match(auth.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.ok((auth.searchParams.get('state') ?? '').length >= 43);
    assert.ok((auth.searchParams.get('nonce') ?? '').length >= 43);
    assert.equal(auth.searchParams.get('redirect_uri'), `${w.gw.url}/.lockgate/callback`);
    assert.ok(!hops[0].location!.includes('page'), 'the original URL is not sent to the provider');
    // 2. The callback sets an opaque session cookie and returns to the original URL.
    const cb = hops.find((h) => h.url.startsWith(`${w.gw.url}/.lockgate/callback`));
    assert.ok(cb !== undefined, trail);
    assert.equal(cb.status, 302);
    assert.equal(cb.location, `${w.gw.url}/app/page?x=1&y=2`);
    const sc = cb.setCookie.find((c) => c.startsWith('lockgate_session='));
    assert.ok(sc !== undefined, cb.setCookie.join(' | '));
    assert.match(sc, /^lockgate_session=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/);
    const last = hops[hops.length - 1];
    assert.equal(last.status, 200, trail);
    assert.equal(JSON.parse(last.body).url, '/app/page?x=1&y=2');
    assert.equal(w.idp.grants.get('authorization_code'), 1);
    // The backend never sees the gateway's cookies.
    for (const s of w.upstream.seen) assert.ok(!String(s.headers.cookie ?? '').includes('lockgate_'), String(s.headers.cookie));

    // 3. The session is reused: no provider round trip. The backend's own cookies pass; the gateway's do not.
    jar.set(w.gw.url, 'theme', 'dark');
    const again = await browserFetch(jar, `${w.gw.url}/app/other`);
    assert.equal(again.status, 200);
    assert.equal(w.upstream.seen[w.upstream.seen.length - 1].headers.cookie, 'theme=dark');
    assert.equal(w.idp.grants.get('authorization_code'), 1);
    // fetch/XHR on the same route with the cookie work too; without it they get 401, never a redirect.
    const xhr = await get(`${w.gw.url}/app/other`, { accept: 'application/json', 'x-requested-with': 'XMLHttpRequest' });
    assert.equal(xhr.status, 401);
    assert.equal(xhr.json().requestId, xhr.headers.get('x-request-id'));
    const html = await browserFetch(new CookieJar(), `${w.gw.url}/app/other`);
    assert.equal(html.status, 302, 'a browser navigation without a session is sent to sign in');
    const fetchApi = await get(`${w.gw.url}/app/other`, { accept: 'text/html' });
    assert.equal(fetchApi.status, 401, 'fetch() (sec-fetch-mode: cors) is no navigation: 401, not a redirect');
    // A bearer token wins over the session: a bad one is refused even with a good cookie.
    const bearer = await browserFetch(jar, `${w.gw.url}/app/other`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(bearer.status, 401);
    // A forged or unknown session id is no session.
    const forged = await get(`${w.gw.url}/app/other`, { accept: 'application/json', cookie: `lockgate_session=${'A'.repeat(43)}` });
    assert.equal(forged.status, 401);

    // 4. The callback URL cannot be replayed (the state is single-use) nor completed in another browser.
    const replay = await browserFetch(jar, cb.url);
    assert.equal(replay.status, 400);
    assert.equal(JSON.parse(replay.body).requestId, replay.headers['x-request-id']);
    const other = new CookieJar();
    const start = await browserFetch(other, `${w.gw.url}/app/`);
    assert.equal(start.status, 302);
    const stolenState = new URL(start.location!).searchParams.get('state')!;
    const csrf = await browserFetch(new CookieJar(), `${w.gw.url}/.lockgate/callback?code=x&state=${stolenState}`);
    assert.equal(csrf.status, 400, 'a callback without the login cookie of the browser that started it is refused');
    const junk = await browserFetch(new CookieJar(), `${w.gw.url}/.lockgate/callback?%zz=1&state=`);
    assert.equal(junk.status, 400);

    // 5. AccessPolicies see the session's claims: bob (contractors) signs in and is denied.
    const bobJar = new CookieJar();
    const bobHops = await browserLogin(bobJar, `${w.gw.url}/app/`, 'bob');
    const bobLast = bobHops[bobHops.length - 1];
    assert.equal(bobLast.status, 403, bobHops.map((h) => `${h.status} ${h.url}`).join('\n'));
    assert.equal(JSON.parse(bobLast.body).error.code, 'access_denied');

    // 6. Logout ends the session here and at the provider.
    const out = await browserFetch(jar, `${w.gw.url}/.lockgate/logout`);
    assert.equal(out.status, 302);
    const end = new URL(out.location!);
    assert.equal(end.origin, w.idp.issuer);
    assert.ok(end.searchParams.get('id_token_hint'));
    assert.ok(out.setCookie.some((c) => /^lockgate_session=;.*Max-Age=0/.test(c)));
    const after = await get(`${w.gw.url}/app/other`, { accept: 'application/json', cookie: `lockgate_session=${sc.split(';')[0].split('=')[1]}` });
    assert.equal(after.status, 401, 'the old session id is dead even if a client kept it');
  } finally {
    await w.close();
  }
});

test('a config reload keeps sessions and verified keys', { timeout: 60_000, skip }, async () => {
  let yaml = '';
  const w = await world((idp, up) => (yaml = config(up, idpDoc('corp', idp), api('app', '/app', '{ providers: [corp], login: true }'))));
  try {
    const jar = new CookieJar();
    const hops = await browserLogin(jar, `${w.gw.url}/app/`, 'alice');
    assert.equal(hops[hops.length - 1].status, 200);
    const jwks = w.idp.hits.get('/jwks');
    // A new version: another Api, and the provider's session settings changed (a new client object, same store).
    const next = parseCheckedConfig(yaml.replace('scopes: [openid', 'session: { idleTimeout: 2h }\n  scopes: [openid') + api('more', '/more', '{ providers: [corp] }'), 'test.yaml');
    assert.ok(next.config, formatProblems(next.problems));
    const applied = w.gw.plane.apply(next.config);
    assert.equal(applied.ok, true, applied.problems.join('\n'));
    assert.equal((await browserFetch(jar, `${w.gw.url}/app/again`)).status, 200);
    assert.equal(w.idp.grants.get('authorization_code'), 1, 'no new login after the reload');
    const token = await w.idp.clientCredentialsToken('gateway', 'gateway-secret');
    assert.equal((await get(`${w.gw.url}/more/x`, { authorization: `Bearer ${token}` })).status, 200);
    assert.ok((w.idp.hits.get('/jwks') ?? 0) - (jwks ?? 0) <= 1);
  } finally {
    await w.close();
  }
});

test('refresh: tokens are refreshed before they expire; a refused refresh ends the session', { timeout: 60_000, skip }, async () => {
  // 4 s tokens: the refresh margin is min(refreshBefore 60 s, half the lifetime) = 2 s.
  const w = await world((idp, up) => config(up, idpDoc('corp', idp), api('app', '/app', '{ providers: [corp], login: true }')), { accessTokenTtl: 4, idTokenTtl: 4 });
  try {
    const jar = new CookieJar();
    const hops = await browserLogin(jar, `${w.gw.url}/app/`, 'alice');
    assert.equal(hops[hops.length - 1].status, 200);
    const t0 = Date.now();
    await sleep(2300);
    // Inside the margin: served at once, refreshed in the background.
    assert.equal((await browserFetch(jar, `${w.gw.url}/app/a`)).status, 200);
    await waitFor(() => (w.idp.grants.get('refresh_token') ?? 0) >= 1, 5000);
    // Past the first tokens' expiry the session lives on with the refreshed ones.
    await sleep(Math.max(0, 4500 - (Date.now() - t0)));
    const later = await browserFetch(jar, `${w.gw.url}/app/b`);
    assert.equal(later.status, 200);
    assert.equal(w.idp.grants.get('authorization_code'), 1, 'no new login was needed');

    // The provider stops accepting our refresh (client secret rotated there): the next refresh fails and ends the session.
    await sleep(500); // a background refresh `later` may have started settles first
    const before = w.idp.grants.get('refresh_token') ?? 0;
    w.idp.setClients([{ ...gatewayClient(w.gw.url), client_secret: 'rotated-elsewhere' }]);
    await waitFor(async () => {
      const r = await browserFetch(jar, `${w.gw.url}/app/c`);
      return r.status === 302;
    }, 8000, 250);
    assert.equal(w.idp.grants.get('refresh_token') ?? 0, before, 'the refused refresh granted nothing');
  } finally {
    await w.close();
  }
});

test('two providers at once: tokens told apart by issuer, per-provider groups claim, per-Api provider lists', { timeout: 60_000, skip }, async () => {
  const second = await OidcFixture.start();
  try {
    const w = await world((idp, up) => config(up,
      idpDoc('corp', idp) + idpDoc('partner', second, '  claims: { groups: roles }\n'),
      api('both', '/both', '{ providers: [corp, partner] }') + api('corp-only', '/corp', '{ providers: [corp] }') + policy('both-eng', 'both', 'allow: [{ groups: eng }]')));
    try {
      const base = { aud: API, iat: now(), exp: now() + 300 };
      const fromCorp = w.idp.sign({}, { ...base, iss: w.idp.issuer, sub: 'alice', groups: ['eng'] });
      const fromPartner = second.sign({}, { ...base, iss: second.issuer, sub: 'p1', roles: ['eng'], groups: ['ignored'] });
      const partnerNoRole = second.sign({}, { ...base, iss: second.issuer, sub: 'p2', groups: ['eng'] });
      assert.equal((await get(`${w.gw.url}/both/x`, { authorization: `Bearer ${fromCorp}` })).status, 200);
      assert.equal((await get(`${w.gw.url}/both/x`, { authorization: `Bearer ${fromPartner}` })).status, 200, 'partner roles are the groups');
      assert.equal((await get(`${w.gw.url}/both/x`, { authorization: `Bearer ${partnerNoRole}` })).status, 403, 'partner "groups" is not its groups claim');
      assert.equal((await get(`${w.gw.url}/corp/x`, { authorization: `Bearer ${fromPartner}` })).status, 401, 'corp-only refuses the partner');
      // A token claiming corp's issuer but signed with the partner's key.
      const crossSigned = second.sign({ kid: w.idp.keys[0].kid }, { ...base, iss: w.idp.issuer, sub: 'mallory', groups: ['eng'] });
      assert.equal((await get(`${w.gw.url}/both/x`, { authorization: `Bearer ${crossSigned}` })).status, 401);
      // Real client_credentials tokens from both.
      second.setClients([gatewayClient(w.gw.url)]);
      const cc = await second.clientCredentialsToken('gateway', 'gateway-secret');
      assert.equal(jwtClaims(cc).iss, second.issuer);
      assert.equal((await get(`${w.gw.url}/corp/x`, { authorization: `Bearer ${await w.idp.clientCredentialsToken('gateway', 'gateway-secret')}` })).status, 200);
      assert.equal((await get(`${w.gw.url}/corp/x`, { authorization: `Bearer ${cc}` })).status, 401);
    } finally {
      await w.close();
    }
  } finally {
    await second.close();
  }
});

test('key rotation at the provider under traffic: zero failed requests', { timeout: 60_000, skip }, async () => {
  const w = await world((idp, up) => config(up, idpDoc('corp', idp), api('api', '/api', '{ providers: [corp] }')));
  try {
    let token = await w.idp.clientCredentialsToken('gateway', 'gateway-secret');
    const statuses = new Map<number, number>();
    const kids = new Set<string>();
    let stop = false;
    const loop = async (): Promise<void> => {
      while (!stop) {
        const t = token;
        const r = await get(`${w.gw.url}/api/x`, { authorization: `Bearer ${t}` });
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        kids.add(String(JSON.parse(Buffer.from(t.split('.')[0], 'base64url').toString()).kid));
      }
    };
    const loops = [loop(), loop(), loop(), loop()];
    await sleep(400);
    // Publish a new key and sign with it at once; old tokens stay valid (the old key is still published).
    w.idp.rotateKey();
    token = await w.idp.clientCredentialsToken('gateway', 'gateway-secret');
    await sleep(600);
    stop = true;
    await Promise.all(loops);
    assert.deepEqual([...kids].sort(), ['k1', 'k2']);
    assert.deepEqual([...statuses.keys()], [200], JSON.stringify([...statuses]));
    assert.ok((statuses.get(200) ?? 0) > 20, `only ${statuses.get(200)} requests`);
  } finally {
    await w.close();
  }
});

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}

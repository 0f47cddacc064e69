// RouteAuth decisions that need no provider: navigation detection, session idle and provider checks, cookie hygiene.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authenticate, wantsHtml, type RouteAuth } from './route-auth.ts';
import { readCookie, stripGatewayCookies } from './auth-cookies.ts';
import { safeReturnTo } from './oidc-login.ts';
import { MemorySessionStore, newSessionId, type SessionRecord } from './session-store.ts';
import type { OidcClient } from './oidc-client.ts';

const T = 1_750_000_000_000;
const client = (name: string): OidcClient => ({
  name,
  spec: { issuer: `https://${name}`, session: { refreshBefore: 60_000, maxAge: 43_200_000, idleTimeout: 3_600_000 } },
  mapClaims: (c: Record<string, unknown>) => c,
}) as unknown as OidcClient;

function routeAuth(store: MemorySessionStore, required = true): RouteAuth {
  const corp = client('default/corp');
  return { providers: [corp], byIssuer: new Map([[corp.spec.issuer, corp]]), login: null, required, sessions: store };
}

const rec = (extra: Partial<SessionRecord> = {}): SessionRecord => ({
  provider: 'default/corp', claims: { sub: 'alice' }, idToken: 'x.y.z', accessToken: 'a', refreshToken: undefined,
  tokenExpiresAt: T + 300_000, tokenLifetime: 300_000, createdAt: T, lastSeenAt: T, expiresAt: T + 43_200_000, ...extra,
});

const input = (cookie: string, now: number, headers: string[] = []) => ({ rawHeaders: ['cookie', cookie, ...headers], method: 'GET', target: '/x', host: 'gw', secure: false, now });

test('a session is used until it is idle too long, and only on routes of its provider', () => {
  const store = new MemorySessionStore();
  const id = newSessionId();
  store.put(id, rec());
  const ra = routeAuth(store);
  assert.deepEqual(authenticate(ra, input(`lockgate_session=${id}`, T + 1000)), { claims: { sub: 'alice' }, via: 'session' });
  // On TLS listeners the cookie is __Host- prefixed: the bare name is not read there.
  const tls = authenticate(ra, { ...input(`lockgate_session=${id}`, T + 1000), secure: true });
  assert.ok('reply' in tls && tls.reply.status === 401);
  const other = newSessionId();
  store.put(other, rec({ provider: 'default/partner' }));
  const foreign = authenticate(ra, input(`lockgate_session=${other}`, T + 1000));
  assert.ok('reply' in foreign && foreign.reply.status === 401, 'another provider\'s session is no session here');
  const idle = authenticate(ra, input(`lockgate_session=${id}`, T + 3_600_001));
  assert.ok('reply' in idle && idle.reply.status === 401);
  assert.equal(store.get(id, T + 3_600_001), undefined, 'an idle session is deleted');
  // A duplicated cookie is ambiguous (a planted second cookie must not win): no session.
  const id2 = newSessionId();
  store.put(id2, rec());
  const dup = authenticate(ra, input(`lockgate_session=${id2}; lockgate_session=${newSessionId()}`, T + 1000));
  assert.ok('reply' in dup);
  assert.deepEqual(authenticate(routeAuth(store, false), input('lockgate_session=short', T)), { claims: null, via: 'none' });
});

test('navigations are told from API calls', () => {
  const h = (...kv: string[]) => kv;
  assert.equal(wantsHtml(h('accept', 'text/html,application/xhtml+xml'), 'GET'), true);
  assert.equal(wantsHtml(h('accept', 'text/html', 'sec-fetch-mode', 'navigate'), 'HEAD'), true);
  assert.equal(wantsHtml(h('accept', 'text/html', 'sec-fetch-mode', 'cors'), 'GET'), false);
  assert.equal(wantsHtml(h('accept', 'text/html', 'x-requested-with', 'XMLHttpRequest'), 'GET'), false);
  assert.equal(wantsHtml(h('accept', 'application/json'), 'GET'), false);
  assert.equal(wantsHtml(h('accept', 'text/html'), 'POST'), false);
  assert.equal(wantsHtml(h(), 'GET'), false);
});

test('the gateway\'s cookies never go upstream; return addresses are local paths', () => {
  const headers = ['host', 'x', 'cookie', 'a=1; lockgate_session=abc; b=2', 'cookie', '__Host-lockgate_login=s', 'accept', '*/*'];
  stripGatewayCookies(headers);
  assert.deepEqual(headers, ['host', 'x', 'cookie', 'a=1; b=2', 'accept', '*/*']);
  assert.equal(readCookie(['Cookie', 'a=1; b=2'], 'b'), '2');
  for (const bad of ['//evil.example/x', 'https://evil.example/', '/\\evil.example', 'evil', '/.lockgate/callback?x']) assert.equal(safeReturnTo(bad), '/', bad);
  assert.equal(safeReturnTo('/app/page?x=1'), '/app/page?x=1');
});

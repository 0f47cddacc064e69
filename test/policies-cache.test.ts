// The caching policies end to end (reference/apim.md §1.10, §2.10): cache-lookup / cache-store against a real
// backend that counts its calls, and the key/value trio. Issue #3.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync, gunzipSync } from 'node:zlib';
import { request } from 'undici';
import { hashKey } from '../src/lib/subscription-keys.ts';
import type { SubscriptionRecord } from '../src/model/subscription.ts';
import { ResponseCache } from '../src/proxy/response-cache.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { startPolicyGateway, GATEWAY, type PolicyGateway } from './helpers/policy-gateway.ts';

let up: Upstream;
let calls = 0;

/** The backend: every answer carries `n`, its call count, so a cached answer is recognisable. */
async function startBackend(): Promise<Upstream> {
  return startUpstream((req, res) => {
    calls++;
    const url = new URL(req.url ?? '/', 'http://x');
    const p = url.pathname;
    const echo = () =>
      JSON.stringify({ n: calls, url: req.url, method: req.method, auth: req.headers.authorization ?? null, inm: req.headers['if-none-match'] ?? null, lang: req.headers['accept-language'] ?? null });
    const send = (status: number, headers: Record<string, string>, body: string | Buffer) => {
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (p === '/nostore') return send(200, { 'cache-control': 'no-store' }, echo());
    if (p === '/private') return send(200, { 'cache-control': 'private, max-age=60' }, echo());
    if (p === '/nocache') return send(200, { 'cache-control': 'no-cache' }, echo());
    if (p === '/cookie') return send(200, { 'set-cookie': 'sid=secret' }, echo());
    if (p === '/missing') return send(404, {}, echo());
    if (p === '/public') return send(200, { 'cache-control': 'public, max-age=3600', etag: '"v1"' }, echo());
    if (p === '/lang') return send(200, { vary: 'Accept-Language' }, echo());
    if (p === '/gzip') {
      const text = echo();
      if (/gzip/.test(String(req.headers['accept-encoding'] ?? ''))) return send(200, { 'content-encoding': 'gzip', vary: 'Accept-Encoding' }, gzipSync(text));
      return send(200, { vary: 'Accept-Encoding' }, text);
    }
    if (p.startsWith('/big/')) return send(200, { 'content-type': 'text/plain' }, `${calls}:`.padEnd(Number(p.split('/')[2]), 'x'));
    if (p === '/stream') {
      // Chunked, in pieces with pauses: the gateway streams it and stores it once it has arrived whole.
      res.writeHead(200, { 'content-type': 'text/plain' });
      const n = calls;
      res.write(`call ${n}; `);
      setTimeout(() => {
        res.write('part two; ');
        setTimeout(() => res.end('end'), 20);
      }, 20);
      return;
    }
    return send(200, {}, echo());
  });
}

function apis(): string {
  const api = (name: string, extra = '') => `---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: ${name} }
spec: { path: /${name}, backend: up, stripPath: true${extra} }
`;
  const policy = (name: string, body: string) => `---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: ${name} }
spec:
  scope: { api: ${name} }
${body}`;
  return `${GATEWAY}---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: "${up.url}" }
${api('c')}${policy(
    'c',
    `  inbound:
    - cache-lookup:
        varyByHeader: [X-Tenant]
        varyByQueryParameter: ["version;flavour"]
  outbound:
    - set-header: { name: x-before, value: stored }
    - cache-store: { duration: 30s }
`,
  )}${api('short')}${policy(
    'short',
    `  inbound:
    - cache-lookup: {}
  outbound:
    - cache-store: { duration: 300ms }
`,
  )}${api('subs', ', subscriptionRequired: true')}${policy(
    'subs',
    `  inbound:
    - cache-lookup: { varyByDeveloper: false, varyByDeveloperGroups: false }
  outbound:
    - cache-store: { duration: 30s }
`,
  )}${api('auth')}${policy(
    'auth',
    `  inbound:
    - cache-lookup: { allowPrivateResponseCaching: true }
  outbound:
    - cache-store: { duration: 30s }
`,
  )}${api('authstrip')}${policy(
    'authstrip',
    `  inbound:
    - set-header: { name: authorization, existsAction: delete }
    - cache-lookup: { allowPrivateResponseCaching: "@(true)" }
  outbound:
    - cache-store: { duration: 30s }
`,
  )}${api('noauth')}${policy(
    'noauth',
    `  inbound:
    - cache-lookup: {}
  outbound:
    - cache-store: { duration: 30s }
`,
  )}${api('down')}${policy(
    'down',
    `  inbound:
    - cache-lookup: { downstreamCachingType: public, mustRevalidate: false }
  outbound:
    - cache-store: { duration: 60s }
`,
  )}${api('any')}${policy(
    'any',
    `  inbound:
    - cache-lookup: { downstreamCachingType: "@(\\"private\\")" }
  outbound:
    - cache-store: { duration: '@("20")', cacheResponse: "@(context.Response.StatusCode == 404)" }
`,
  )}${api('buffered')}${policy(
    'buffered',
    `  inbound:
    - cache-lookup: {}
  outbound:
    - set-variable: { name: size, value: "@(size(context.Response.Body))" }
    - cache-store: { duration: 30s }
`,
  )}${api('values')}${policy(
    'values',
    `  inbound:
    - choose:
        when:
          - condition: context.Request.Url.Path.endsWith("/store")
            policies:
              - cache-store-value: { key: '@(context.Request.Headers["x-key"])', value: '@(context.Request.Headers["x-value"])', duration: '@(context.Request.Headers["x-seconds"])' }
              - return-response: { status: 204 }
          - condition: context.Request.Url.Path.endsWith("/flag")
            policies:
              - cache-store-value: { key: flag, value: "@(true)", duration: 30s }
              - cache-lookup-value: { key: flag, variableName: f }
              - return-response: { body: '@(context.Variables["f"] == true ? "bool true" : "not a bool")' }
          - condition: context.Request.Url.Path.endsWith("/remove")
            policies:
              - cache-remove-value: { key: '@(context.Request.Headers["x-key"])' }
              - return-response: { status: 204 }
          - condition: context.Request.Url.Path.endsWith("/nodefault")
            policies:
              - cache-lookup-value: { key: '@(context.Request.Headers["x-key"])', variableName: v }
              - return-response: { body: '@("v" in context.Variables ? "set" : "unset")' }
        otherwise:
          - cache-lookup-value: { key: '@(context.Request.Headers["x-key"])', variableName: v, defaultValue: (none) }
          - return-response: { body: '@(string(context.Variables["v"]))' }
`,
  )}`;
}

let g: PolicyGateway;
const ALICE = 'alice-key-0123456789';
const BOB = 'bob-key-0123456789';

before(async () => {
  up = await startBackend();
  g = await startPolicyGateway(apis());
  const sub = (i: number, name: string, key: string): SubscriptionRecord => ({
    id: `sub_cache${String(i).padStart(11, '0')}`,
    name,
    scope: { kind: 'all' },
    owner: 'test',
    state: 'active',
    primaryKeyHash: hashKey(key),
    secondaryKeyHash: hashKey(`${key}-2`),
    createdAt: new Date(0).toISOString(),
    expiresAt: null,
  });
  g.plane.setSubscriptions([sub(1, 'alice', ALICE), sub(2, 'bob', BOB)]);
});

after(async () => {
  await g?.close();
  await up?.close();
});

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  raw: Buffer;
  text: string;
  n: number;
}

async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'POST' | 'HEAD' = 'GET'): Promise<Got> {
  const r = await request(url, { method, headers });
  const raw = Buffer.from(await r.body.arrayBuffer());
  const text = r.headers['content-encoding'] === 'gzip' ? gunzipSync(raw).toString() : raw.toString();
  let n = -1;
  try {
    n = (JSON.parse(text) as { n: number }).n;
  } catch {
    // not JSON (text bodies)
  }
  return { status: r.statusCode, headers: r.headers, raw, text, n };
}

test('a hit answers from the cache: the backend is not called again', async () => {
  const before = up.seen.length;
  const a = await get(`${g.url}/c/items/1`);
  assert.equal(a.status, 200);
  assert.equal(up.seen.length, before + 1);
  const b = await get(`${g.url}/c/items/1`);
  assert.equal(b.status, 200);
  assert.equal(up.seen.length, before + 1, 'the second request never reached the backend');
  assert.equal(b.text, a.text);
  assert.equal(b.headers['content-type'], 'application/json');
  // Outbound changes made before cache-store are part of what is stored.
  assert.equal(a.headers['x-before'], 'stored');
  assert.equal(b.headers['x-before'], 'stored');
  // Each response carries its own request id, not the stored one.
  assert.ok(a.headers['x-request-id']);
  assert.ok(b.headers['x-request-id']);
  assert.notEqual(b.headers['x-request-id'], a.headers['x-request-id']);
  // A different path is a different entry.
  const c = await get(`${g.url}/c/items/2`);
  assert.notEqual(c.n, a.n);
});

test('Cache never crosses callers: subscriptions never share an entry', async () => {
  const a1 = await get(`${g.url}/subs/report`, { 'ocp-apim-subscription-key': ALICE });
  assert.equal(a1.status, 200);
  const b1 = await get(`${g.url}/subs/report`, { 'ocp-apim-subscription-key': BOB });
  assert.equal(b1.status, 200);
  assert.notEqual(b1.n, a1.n, 'bob must not get the response stored for alice');
  const a2 = await get(`${g.url}/subs/report`, { 'ocp-apim-subscription-key': ALICE });
  const b2 = await get(`${g.url}/subs/report`, { 'ocp-apim-subscription-key': BOB });
  assert.equal(a2.n, a1.n, 'alice hits her own entry');
  assert.equal(b2.n, b1.n, 'bob hits his own entry');
  // Alice's second key is the same subscription: the same entry.
  const a3 = await get(`${g.url}/subs/report`, { 'ocp-apim-subscription-key': `${ALICE}-2` });
  assert.equal(a3.n, a1.n);
  // An Api that needs no key: a key sent anyway still separates callers.
  const k1 = await get(`${g.url}/c/open`, { 'ocp-apim-subscription-key': 'one' });
  const k2 = await get(`${g.url}/c/open`, { 'ocp-apim-subscription-key': 'two' });
  assert.notEqual(k2.n, k1.n);
  assert.equal((await get(`${g.url}/c/open`, { 'ocp-apim-subscription-key': 'one' })).n, k1.n);
});

test('Cache never crosses callers: each Authorization value has its own entries', async () => {
  const a1 = await get(`${g.url}/auth/me`, { authorization: 'Bearer token-a' });
  const b1 = await get(`${g.url}/auth/me`, { authorization: 'Bearer token-b' });
  assert.equal(JSON.parse(a1.text).auth, 'Bearer token-a');
  assert.equal(JSON.parse(b1.text).auth, 'Bearer token-b');
  const a2 = await get(`${g.url}/auth/me`, { authorization: 'Bearer token-a' });
  const b2 = await get(`${g.url}/auth/me`, { authorization: 'Bearer token-b' });
  assert.equal(a2.n, a1.n);
  assert.equal(b2.n, b1.n);
  assert.equal(JSON.parse(b2.text).auth, 'Bearer token-b');
  // Anonymous callers do not get an authorized caller's response either.
  const anon = await get(`${g.url}/auth/me`);
  assert.equal(JSON.parse(anon.text).auth, null);
});

test('Cache never crosses callers: even when a policy removed Authorization before the lookup', async () => {
  const a1 = await get(`${g.url}/authstrip/me`, { authorization: 'Bearer one' });
  const b1 = await get(`${g.url}/authstrip/me`, { authorization: 'Bearer two' });
  assert.notEqual(b1.n, a1.n, 'the client\'s Authorization stays part of the key');
  const a2 = await get(`${g.url}/authstrip/me`, { authorization: 'Bearer one' });
  assert.equal(a2.n, a1.n);
});

test('requests with Authorization are not cached unless allowPrivateResponseCaching', async () => {
  const before = up.seen.length;
  await get(`${g.url}/noauth/x`, { authorization: 'Bearer a' });
  await get(`${g.url}/noauth/x`, { authorization: 'Bearer a' });
  assert.equal(up.seen.length, before + 2);
  // Without Authorization the same route caches.
  const p1 = await get(`${g.url}/noauth/x`);
  const p2 = await get(`${g.url}/noauth/x`);
  assert.equal(p2.n, p1.n);
  assert.equal(up.seen.length, before + 3);
});

test('varyByHeader: each value of the header is its own entry', async () => {
  const a = await get(`${g.url}/c/tenants`, { 'x-tenant': 'a' });
  const b = await get(`${g.url}/c/tenants`, { 'x-tenant': 'b' });
  const none = await get(`${g.url}/c/tenants`);
  assert.notEqual(a.n, b.n);
  assert.notEqual(none.n, a.n);
  assert.notEqual(none.n, b.n);
  assert.equal((await get(`${g.url}/c/tenants`, { 'x-tenant': 'a' })).n, a.n);
  assert.equal((await get(`${g.url}/c/tenants`, { 'x-tenant': 'b' })).n, b.n);
  assert.equal((await get(`${g.url}/c/tenants`)).n, none.n);
});

test('varyByQueryParameter: listed parameters select entries, unlisted ones do not (as in API Management)', async () => {
  const v1 = await get(`${g.url}/c/q?version=1`);
  const v2 = await get(`${g.url}/c/q?version=2`);
  assert.notEqual(v1.n, v2.n);
  // "version;flavour" lists two parameters.
  const f = await get(`${g.url}/c/q?version=1&flavour=x`);
  assert.notEqual(f.n, v1.n);
  assert.equal((await get(`${g.url}/c/q?version=1`)).n, v1.n);
  assert.equal((await get(`${g.url}/c/q?flavour=x&version=1`)).n, f.n, 'parameter order does not matter');
  assert.equal((await get(`${g.url}/c/q?version=1&unlisted=zzz`)).n, v1.n, 'an unlisted parameter is not part of the key');
});

test('Cache-Control no-store, private and no-cache from the backend are honoured: nothing is stored', async () => {
  for (const p of ['nostore', 'private', 'nocache', 'cookie']) {
    const a = await get(`${g.url}/c/${p}`);
    const b = await get(`${g.url}/c/${p}`);
    assert.equal(a.status, 200);
    assert.notEqual(b.n, a.n, `${p} must reach the backend each time`);
  }
  // A response that is not stored keeps the backend's Cache-Control.
  const r = await get(`${g.url}/c/private`);
  assert.equal(r.headers['cache-control'], 'private, max-age=60');
});

test('only 200 is stored unless cacheResponse says otherwise; only GET is looked up', async () => {
  const a = await get(`${g.url}/c/missing`);
  assert.equal(a.status, 404);
  assert.notEqual((await get(`${g.url}/c/missing`)).n, a.n);
  // cacheResponse as an expression: 404s are stored on this route.
  const x = await get(`${g.url}/any/missing`);
  assert.equal(x.status, 404);
  const y = await get(`${g.url}/any/missing`);
  assert.equal(y.status, 404);
  assert.equal(y.n, x.n);
  const before = up.seen.length;
  await get(`${g.url}/c/items/1`, {}, 'POST');
  await get(`${g.url}/c/items/1`, {}, 'POST');
  await get(`${g.url}/c/items/1`, {}, 'HEAD');
  await get(`${g.url}/c/items/1`, {}, 'HEAD');
  assert.equal(up.seen.length, before + 4);
});

test('an entry expires after its duration', async () => {
  const a = await get(`${g.url}/short/e`);
  assert.equal((await get(`${g.url}/short/e`)).n, a.n);
  await new Promise((r) => setTimeout(r, 450));
  const c = await get(`${g.url}/short/e`);
  assert.notEqual(c.n, a.n, 'the 300ms entry expired');
  assert.equal((await get(`${g.url}/short/e`)).n, c.n, 'and the fresh response is stored again');
});

test('downstream Cache-Control: none sends no-store; public sends max-age of the time left', async () => {
  const miss = await get(`${g.url}/c/dc`);
  assert.equal(miss.headers['cache-control'], 'no-store');
  const hit = await get(`${g.url}/c/dc`);
  assert.equal(hit.n, miss.n);
  assert.equal(hit.headers['cache-control'], 'no-store');
  const p1 = await get(`${g.url}/down/public`);
  assert.equal(p1.headers['cache-control'], 'public, max-age=60');
  assert.equal(p1.headers.etag, '"v1"');
  const p2 = await get(`${g.url}/down/public`);
  assert.equal(p2.n, p1.n);
  const m = /^public, max-age=(\d+)$/.exec(String(p2.headers['cache-control']));
  assert.ok(m, String(p2.headers['cache-control']));
  assert.ok(Number(m[1]) <= 60 && Number(m[1]) >= 55);
  assert.equal(p2.headers.etag, '"v1"');
  // An expression picks the type; duration from an expression is in seconds.
  await get(`${g.url}/any/dc`);
  const e = await get(`${g.url}/any/dc`);
  assert.match(String(e.headers['cache-control']), /^private, max-age=(19|20), must-revalidate$/);
});

test('on a miss the backend gets no conditional headers (it must send a whole response)', async () => {
  const r = await get(`${g.url}/c/cond`, { 'if-none-match': '"abc"', 'cache-control': 'no-cache' });
  assert.equal(r.status, 200);
  assert.equal(JSON.parse(r.text).inm, null);
  // The client's Cache-Control does not bypass the cache.
  const again = await get(`${g.url}/c/cond`, { 'cache-control': 'no-cache' });
  assert.equal(again.n, r.n);
});

test('Content-Encoding: a client never gets an encoding it did not accept', async () => {
  const gz = await get(`${g.url}/c/gzip`, { 'accept-encoding': 'gzip' });
  assert.equal(gz.headers['content-encoding'], 'gzip');
  const plain = await get(`${g.url}/c/gzip`);
  assert.equal(plain.headers['content-encoding'], undefined, 'no gzip for a client that did not accept it');
  assert.notEqual(plain.n, gz.n);
  const br = await get(`${g.url}/c/gzip`, { 'accept-encoding': 'br' });
  assert.equal(br.headers['content-encoding'], undefined);
  // Both encodings are now stored side by side.
  const gz2 = await get(`${g.url}/c/gzip`, { 'accept-encoding': 'gzip, deflate' });
  assert.equal(gz2.headers['content-encoding'], 'gzip');
  assert.equal(gz2.n, gz.n);
  assert.deepEqual(gz2.raw, gz.raw, 'the stored bytes are sent as they were received');
  assert.equal((await get(`${g.url}/c/gzip`)).n, plain.n);
});

test('the response\'s Vary is honoured', async () => {
  const fr = await get(`${g.url}/c/lang`, { 'accept-language': 'fr' });
  const de = await get(`${g.url}/c/lang`, { 'accept-language': 'de' });
  assert.notEqual(de.n, fr.n);
  assert.equal(JSON.parse(de.text).lang, 'de');
  assert.equal((await get(`${g.url}/c/lang`, { 'accept-language': 'fr' })).n, fr.n);
  assert.equal((await get(`${g.url}/c/lang`, { 'accept-language': 'de' })).n, de.n);
});

test('a streamed (chunked) body is stored once it has arrived whole; a buffered one too', async () => {
  const a = await get(`${g.url}/c/stream`);
  assert.match(a.text, /^call \d+; part two; end$/);
  const b = await get(`${g.url}/c/stream`);
  assert.equal(b.text, a.text);
  assert.equal(b.headers['content-length'], String(Buffer.byteLength(a.text)));
  const x = await get(`${g.url}/buffered/b`);
  const y = await get(`${g.url}/buffered/b`);
  assert.equal(y.n, x.n);
});

test('the memory bound evicts the least recently used responses; one too large is served but not kept', async () => {
  // Two 30 kB responses fit in 80 kB of entries, three do not.
  const cache = new ResponseCache({ maxBytes: 80_000, maxEntryBytes: 40_000 });
  const small = await startPolicyGateway(apis(), { responseCache: cache });
  const call = async (q: string) => {
    const r = await get(`${small.url}/c/big/30000?version=${q}`);
    assert.equal(r.raw.length, 30000);
    return r.text.split(':')[0]; // the backend's call number
  };
  try {
    const a = await call('a');
    const b = await call('b');
    assert.equal(await call('a'), a, 'a is a hit (and now more recent than b)');
    const c = await call('c');
    assert.ok(cache.bytes <= 80_000);
    assert.equal(await call('a'), a, 'a is still there');
    assert.equal(await call('c'), c, 'c is still there');
    assert.notEqual(await call('b'), b, 'b, the least recently used, was evicted');
    assert.ok(cache.bytes <= 80_000);
    const huge1 = await get(`${small.url}/c/big/60000`);
    assert.equal(huge1.raw.length, 60000, 'the client gets the whole large body');
    const huge2 = await get(`${small.url}/c/big/60000`);
    assert.equal(huge2.raw.length, 60000);
    assert.notEqual(huge2.text.split(':')[0], huge1.text.split(':')[0], 'over the per-entry cap: not stored');
  } finally {
    await small.close();
  }
});

test('value cache: store, look up (default when missing), remove, expire', async () => {
  const h = (key: string, extra: Record<string, string> = {}) => ({ 'x-key': key, ...extra });
  assert.equal((await get(`${g.url}/values/get`, h('k1'))).text, '(none)');
  assert.equal((await get(`${g.url}/values/nodefault`, h('k1'))).text, 'unset');
  assert.equal((await get(`${g.url}/values/store`, h('k1', { 'x-value': 'hello', 'x-seconds': '30' }))).status, 204);
  assert.equal((await get(`${g.url}/values/get`, h('k1'))).text, 'hello');
  assert.equal((await get(`${g.url}/values/nodefault`, h('k1'))).text, 'set');
  assert.equal((await get(`${g.url}/values/get`, h('k2'))).text, '(none)', 'another key');
  assert.equal((await get(`${g.url}/values/remove`, h('k1'))).status, 204);
  assert.equal((await get(`${g.url}/values/get`, h('k1'))).text, '(none)');
  // Removing a missing key is fine.
  assert.equal((await get(`${g.url}/values/remove`, h('never'))).status, 204);
  // A duration expression gives seconds; a fraction expires quickly.
  await get(`${g.url}/values/store`, h('k3', { 'x-value': 'brief', 'x-seconds': '0.2' }));
  assert.equal((await get(`${g.url}/values/get`, h('k3'))).text, 'brief');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await get(`${g.url}/values/get`, h('k3'))).text, '(none)');
  // The value keeps its type.
  assert.equal((await get(`${g.url}/values/flag`)).text, 'bool true');
  // None of this reached the backend.
  assert.equal(up.seen.filter((s) => s.url.includes('values')).length, 0);
});

test('config problems: external cache, a bare-number duration, a non-boolean flag', async () => {
  const bad = (inbound: string, outbound = '') => `${GATEWAY}---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: "${up.url}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: x }
spec: { path: /x, backend: up }
---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: x }
spec:
  scope: { api: x }
  inbound:
${inbound}
${outbound ? `  outbound:\n${outbound}` : ''}`;
  await assert.rejects(startPolicyGateway(bad('    - cache-lookup: { cachingType: external }')), /external/);
  await assert.rejects(startPolicyGateway(bad('    - cache-lookup: {}', '    - cache-store: { duration: "3600" }')), /needs a unit: write "3600s"/);
  await assert.rejects(startPolicyGateway(bad('    - cache-lookup: { allowPrivateResponseCaching: "yes" }')), /allowPrivateResponseCaching/);
  await assert.rejects(startPolicyGateway(bad('    - cache-store: { duration: 10s }')), /not allowed in inbound/);
});

test('a hit goes on with the outbound policies after cache-store (and not those before it)', async () => {
  const { startPolicyGateway: start, GATEWAY: GW } = await import('./helpers/policy-gateway.ts');
  const { startUpstream: su } = await import('./helpers/upstream.ts');
  let calls = 0;
  const u = await su((_req, res) => {
    calls++;
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`n${calls}`);
  });
  const g = await start(`${GW}---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: "${u.url}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: c }
spec: { path: /c, backend: up }
---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: c }
spec:
  scope: { api: c }
  inbound:
    - cache-lookup: { varyByDeveloper: false, varyByDeveloperGroups: false }
  outbound:
    - set-header: { name: x-before, value: "@(context.RequestId)" }
    - cache-store: { duration: 60s }
    - set-header: { name: x-after, value: "@(context.RequestId)" }
`);
  try {
    const first = await fetch(`${g.url}/c/x`);
    const second = await fetch(`${g.url}/c/x`);
    assert.equal(await first.text(), 'n1');
    assert.equal(await second.text(), 'n1', 'served from the cache');
    assert.equal(calls, 1);
    // After cache-store: evaluated again for the hit. Before it: stored with the first response.
    assert.equal(second.headers.get('x-after'), second.headers.get('x-request-id'));
    assert.equal(second.headers.get('x-before'), first.headers.get('x-request-id'));
  } finally {
    await g.close();
    await u.close();
  }
});

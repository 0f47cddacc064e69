// Admin access end to end (identity §6): a control plane (in process) and a real OpenID provider on 127.0.0.1. People's
// tokens get roles from RoleBindings (viewer, operator, approver, admin over namespaces, optionally narrowed to APIs);
// every config route checks each document; cluster-wide routes need the role over "*"; team admins hand out roles
// and automation tokens only inside their scope; approvers by role review access requests; `lockgate login` signs a
// person in with the device flow and the other verbs use the stored sign-in.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { Agent, request } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { ControlPlane } from '../src/app/control-plane.ts';
import { CookieJar, DEVICE_CLIENT, OidcFixture, approveDevice, oidcProviderMissing, type OidcUser } from './helpers/oidc-provider.ts';
import { BIN, HEAD, MeshWorld } from './helpers/mesh-processes.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- admin API bodies are read field by field in assertions
type Json = any;

const CLI_CLIENT = 'lockgate-cli';

const PEOPLE: Record<string, string[]> = {
  alice: ['platform'],
  carol: ['orders-devs'],
  pat: ['payments-api-devs'],
  dave: ['auditors'],
  erin: ['orders-approvers'],
  olga: ['orders-leads'],
  frank: ['orders-viewers'],
  bob: ['staff'],
};
const USERS: Record<string, OidcUser> = Object.fromEntries(
  Object.entries(PEOPLE).map(([sub, groups]) => [sub, { sub, email: `${sub}@example.com`, email_verified: true, name: sub, groups }]),
);

const world = new MeshWorld('lockgate-e2e-roles-');
let idp: OidcFixture;
let cp: ControlPlane;
let agent: Agent;
let ca = '';
let bootstrap = '';
const tok: Record<string, string> = {};

after(async () => {
  agent?.destroy();
  await cp?.close();
  await idp?.close();
  await world.close();
});

function binding(name: string, role: string, groups: string[], namespaces: string[], extra = ''): string {
  return `${HEAD}
kind: RoleBinding
metadata: { name: ${name}, namespace: lockgate-system }
spec:
  role: ${role}
  provider: corp
  groups: [${groups.join(', ')}]
  namespaces: [${namespaces.map((n) => JSON.stringify(n)).join(', ')}]
${extra}`;
}

const meshService = (ns: string, name: string): string => `${HEAD}\nkind: MeshService\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n  ports: [{ name: http, port: 80 }]\n`;

function baseConfig(issuer: string): string {
  return [
    `${HEAD}\nkind: Mesh\nmetadata: { name: default }\nspec: { defaultAccess: allow }\n`,
    `${HEAD}
kind: IdentityProvider
metadata: { name: corp, namespace: lockgate-system }
spec:
  issuer: ${issuer}
  clientId: lockgate
  cliClientId: ${CLI_CLIENT}
  scopes: [openid, email, profile, groups]
`,
    binding('platform', 'admin', ['platform'], ['*']),
    binding('orders-devs', 'operator', ['orders-devs'], ['orders']),
    binding('payments-api-devs', 'operator', ['payments-api-devs'], ['payments'], '  apis: [payments-api]\n'),
    binding('auditors', 'viewer', ['auditors'], ['*']),
    binding('orders-approvers', 'approver', ['orders-approvers'], ['orders']),
    binding('orders-leads', 'admin', ['orders-leads'], ['orders']),
    meshService('orders', 'inventory'),
    meshService('orders', 'shipping'),
    `${HEAD}
kind: AccessPolicy
metadata: { name: inventory-access, namespace: orders }
spec:
  target: { service: inventory }
  allow: [{ sources: [shipping] }, { grant: true }]
  requests: { approvers: [inventory-owners], maxDuration: 1h }
`,
    meshService('payments', 'ledger'),
    `${HEAD}\nkind: Backend\nmetadata: { name: payments-backend, namespace: payments }\nspec: { url: "http://127.0.0.1:9" }\n`,
  ].join('---\n');
}

/** One admin-API request over HTTPS, trusting the control plane's CA (its certificate names only a SPIFFE ID). */
async function call(token: string | undefined, method: string, p: string, body?: string | object, contentType?: string): Promise<{ status: number; json: Json; text: string }> {
  const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (text !== undefined) headers['content-type'] = contentType ?? (typeof body === 'string' ? 'application/yaml' : 'application/json');
  return new Promise((resolve, reject) => {
    const req = request(new URL(p, cp.url), { method, headers, agent, timeout: 10_000 }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      res.on('end', () => {
        let json: Json;
        try {
          json = JSON.parse(data);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, json, text: data });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${p}: no answer in time`)));
    req.on('error', reject);
    req.end(text);
  });
}

const applyAs = (token: string, yaml: string, query = ''): ReturnType<typeof call> => call(token, 'POST', `/v1/config:apply${query}`, yaml);
const putAs = (token: string, kind: string, ns: string, name: string, yaml: string): ReturnType<typeof call> => call(token, 'PUT', `/v1/config/${kind}/${ns}/${name}`, yaml);
const getDoc = (token: string, kind: string, ns: string, name: string): ReturnType<typeof call> => call(token, 'GET', `/v1/config/${kind}/${ns}/${name}`);

/** The stored documents a caller lists, as "Kind ns/name". */
async function listed(token: string): Promise<string[]> {
  const r = await call(token, 'GET', '/v1/config');
  assert.equal(r.status, 200, r.text);
  return (r.json.items as Array<{ kind: string; namespace: string; name: string }>).map((i) => `${i.kind} ${i.namespace}/${i.name}`).sort();
}

/** The events a watch from revision 1 replays within `ms`, as "TYPE Kind ns/name". */
function watchEvents(token: string, query: string, ms = 400): Promise<{ status: number; events: string[]; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(`/v1/config?watch=true&fromRevision=1${query}`, cp.url), { headers: { authorization: `Bearer ${token}` }, ca, checkServerIdentity: () => undefined, agent: false }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      const done = (): void => {
        const events = data.split('\n').filter((l) => l.startsWith('{"type"')).map((l) => JSON.parse(l) as { type: string; kind: string; namespace: string; name: string }).map((e) => `${e.type} ${e.kind} ${e.namespace}/${e.name}`);
        resolve({ status: res.statusCode ?? 0, events, text: data });
      };
      if (res.statusCode !== 200) return void res.on('end', done);
      setTimeout(() => {
        done();
        req.destroy();
      }, ms);
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.end();
  });
}

/** Opens a watch and waits (up to 8 s) for the server to end it. */
function watchEnd(token: string): Promise<{ status: number; ended: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL('/v1/config?watch=true', cp.url), { headers: { authorization: `Bearer ${token}` }, ca, checkServerIdentity: () => undefined, agent: false }, (res) => {
      const timer = setTimeout(() => {
        resolve({ status: res.statusCode ?? 0, ended: false });
        req.destroy();
      }, 8000);
      res.resume();
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, ended: true });
      });
    });
    req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    req.end();
  });
}

/** An ID token for the CLI client, signed with the provider's real key. */
function idToken(sub: string, claims: Record<string, unknown> = {}): string {
  const now = Math.floor(Date.now() / 1000);
  return idp.sign({}, { iss: idp.issuer, sub, email: `${sub}@example.com`, groups: PEOPLE[sub] ?? [], aud: CLI_CLIENT, iat: now, exp: now + 3600, ...claims });
}

const errorOf = (r: { json: Json; text: string }): string => r.json?.error?.message ?? r.text;

before(async () => {
  if (oidcProviderMissing) return;
  idp = await OidcFixture.start({ users: USERS, clients: [DEVICE_CLIENT] });
  const out: string[] = [];
  cp = await ControlPlane.start({ dataDir: world.dir('cp'), port: 0, version: 't', env: {}, out: (l) => out.push(l), log: () => {} });
  const line = out.find((l) => l.includes('bootstrap admin token'));
  assert.ok(line, out.join('\n'));
  bootstrap = line.slice(line.lastIndexOf(' ') + 1).trim();
  ca = readFileSync(cp.info.caFile, 'utf8');
  agent = new Agent({ keepAlive: true, ca, checkServerIdentity: () => undefined });
  const applied = await applyAs(bootstrap, baseConfig(idp.issuer));
  assert.equal(applied.status, 200, applied.text);
  for (const who of Object.keys(PEOPLE)) tok[who] = idToken(who);
});

const skip = oidcProviderMissing;

test('whoami shows each person\'s roles and their RoleBindings; no role is 403 "has no role"; bad tokens are 401 with the reason', { skip }, async () => {
  const expected: Record<string, Array<{ role: string; namespaces: string[]; apis?: string[]; source: string }>> = {
    alice: [{ role: 'admin', namespaces: ['*'], source: 'RoleBinding lockgate-system/platform' }],
    carol: [{ role: 'operator', namespaces: ['orders'], source: 'RoleBinding lockgate-system/orders-devs' }],
    pat: [{ role: 'operator', namespaces: ['payments'], apis: ['payments-api'], source: 'RoleBinding lockgate-system/payments-api-devs' }],
    dave: [{ role: 'viewer', namespaces: ['*'], source: 'RoleBinding lockgate-system/auditors' }],
    erin: [{ role: 'approver', namespaces: ['orders'], source: 'RoleBinding lockgate-system/orders-approvers' }],
    olga: [{ role: 'admin', namespaces: ['orders'], source: 'RoleBinding lockgate-system/orders-leads' }],
    bob: [],
  };
  for (const [who, roles] of Object.entries(expected)) {
    const r = await call(tok[who], 'GET', '/v1/auth/whoami');
    assert.equal(r.status, 200, `${who}: ${r.text}`);
    assert.equal(r.json.subject, `${who}@example.com`);
    assert.equal(r.json.via, 'person');
    assert.equal(r.json.full, false);
    assert.equal(r.json.person.sub, who);
    assert.deepEqual(r.json.person.groups, PEOPLE[who]);
    assert.deepEqual(r.json.person.providers, ['lockgate-system/corp']);
    assert.deepEqual(r.json.roles.map(({ actions: _a, ...g }: { actions: unknown }) => g), roles, who);
  }
  const aliceActions = (await call(tok.alice, 'GET', '/v1/auth/whoami')).json.roles[0].actions;
  assert.deepEqual(aliceActions, ['read', 'write', 'review', 'reveal', 'manage']);
  assert.deepEqual((await call(tok.erin, 'GET', '/v1/auth/whoami')).json.roles[0].actions, ['read', 'review']);
  // The bootstrap token holds everything.
  const boot = await call(bootstrap, 'GET', '/v1/auth/whoami');
  assert.equal(boot.status, 200);
  assert.equal(boot.json.full, true);
  assert.equal(boot.json.via, 'token');

  // bob is a valid person with no role: every admin read is refused, saying so.
  const none = await getDoc(tok.bob, 'MeshService', 'orders', 'inventory');
  assert.equal(none.status, 403, none.text);
  assert.match(errorOf(none), /^bob@example\.com has no role \(RoleBindings give people roles\); read on namespace orders \(service orders\/inventory\) was refused/);
  const noneList = await call(tok.bob, 'GET', '/v1/config');
  assert.equal(noneList.status, 200, 'listing is filtered, not refused');
  assert.deepEqual(noneList.json.items, []);

  // Tokens that are not valid: another issuer, another audience, expired, a forged signature.
  const now = Math.floor(Date.now() / 1000);
  const otherIssuer = await call(idToken('alice', { iss: 'http://127.0.0.1:1/other' }), 'GET', '/v1/auth/whoami');
  assert.equal(otherIssuer.status, 401, otherIssuer.text);
  assert.match(errorOf(otherIssuer), /^the bearer token is not valid: no IdentityProvider has issuer http:\/\/127\.0\.0\.1:1\/other$/);
  const wrongAud = await call(idToken('alice', { aud: 'someone-else' }), 'GET', '/v1/auth/whoami');
  assert.equal(wrongAud.status, 401, wrongAud.text);
  assert.equal(errorOf(wrongAud), 'the bearer token is not valid: lockgate-system/corp: the token audience is not allowed');
  const expired = await call(idToken('alice', { iat: now - 7200, exp: now - 3600 }), 'GET', '/v1/auth/whoami');
  assert.equal(expired.status, 401, expired.text);
  assert.equal(errorOf(expired), 'the bearer token is not valid: lockgate-system/corp: the token has expired');
  const forged = tok.alice.slice(0, tok.alice.lastIndexOf('.') + 1) + Buffer.alloc(256, 7).toString('base64url');
  const bad = await call(forged, 'GET', '/v1/config');
  assert.equal(bad.status, 401, bad.text);
  assert.equal(errorOf(bad), 'the bearer token is not valid: lockgate-system/corp: the signature does not verify');
  // The providers people can sign in with, without authentication.
  const providers = await call(undefined, 'GET', '/v1/auth/providers');
  assert.equal(providers.status, 200, providers.text);
  assert.deepEqual(providers.json.providers, [{ name: 'lockgate-system/corp', issuer: idp.issuer, clientId: CLI_CLIENT, scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'] }]);
});

test('an operator in orders applies there; a body touching payments is refused whole; reads are filtered to orders', { skip }, async () => {
  const ok = await applyAs(tok.carol, meshService('orders', 'billing'));
  assert.equal(ok.status, 200, ok.text);
  assert.deepEqual(ok.json.changes, [{ action: 'create', kind: 'MeshService', namespace: 'orders', name: 'billing' }]);

  // Mixed: an orders document and a payments one. Refused, naming payments; nothing of it was written.
  const mixed = await applyAs(tok.carol, [meshService('orders', 'returns'), meshService('payments', 'refunds')].join('---\n'));
  assert.equal(mixed.status, 403, mixed.text);
  assert.match(errorOf(mixed), /^carol@example\.com may not write on namespace payments \(service payments\/refunds\): roles held: operator in orders \(MeshService payments\/refunds\)$/);
  assert.equal((await getDoc(bootstrap, 'MeshService', 'orders', 'returns')).status, 404, 'the orders half was not written');
  assert.equal((await getDoc(bootstrap, 'MeshService', 'payments', 'refunds')).status, 404);
  // Changing a stored payments document through apply (same as deleting) is refused too.
  const change = await applyAs(tok.carol, `${HEAD}\nkind: MeshService\nmetadata: { name: ledger, namespace: payments }\nspec:\n  ports: [{ name: http, port: 8080 }]\n`);
  assert.equal(change.status, 403, change.text);

  // Listing shows only orders documents (not payments, not lockgate-system's providers and bindings).
  const mine = await listed(tok.carol);
  assert.ok(mine.length >= 4, mine.join(', '));
  assert.ok(mine.every((d) => / orders\//.test(d)), mine.join(', '));
  assert.ok(mine.includes('MeshService orders/billing') && mine.includes('AccessPolicy orders/inventory-access'), mine.join(', '));
  const all = await listed(bootstrap);
  assert.ok(all.includes('MeshService payments/ledger') && all.includes('RoleBinding lockgate-system/platform'), 'the admin sees everything');
  // Asking for a namespace with no role there is refused (not an empty list that would look like "nothing there").
  const byNs = await call(tok.carol, 'GET', '/v1/config?namespace=payments');
  assert.equal(byNs.status, 403, byNs.text);
  assert.match(errorOf(byNs), /^carol@example\.com may not read on namespace payments: roles held: operator in orders$/);
  const ordersOnly = await call(tok.carol, 'GET', '/v1/config?namespace=orders&kind=MeshService');
  assert.equal(ordersOnly.status, 200, ordersOnly.text);
  assert.deepEqual(ordersOnly.json.items.map((i: { name: string }) => i.name).sort(), ['billing', 'inventory', 'shipping']);

  // A watch shows carol only orders documents (the replay from revision 1 holds every namespace's).
  const watched = await watchEvents(tok.carol, '');
  assert.equal(watched.status, 200, watched.text);
  assert.ok(watched.events.includes('PUT MeshService orders/billing'), watched.events.join('\n'));
  assert.ok(watched.events.every((e) => / orders\//.test(e)), watched.events.join('\n'));
  const adminWatch = await watchEvents(bootstrap, '');
  assert.ok(adminWatch.events.includes('PUT MeshService payments/ledger'), adminWatch.events.join('\n'));
  assert.equal((await watchEvents(tok.carol, '&namespace=payments')).status, 403);
  // A watch ends when the token that opened it expires (the client comes back with a fresh one, checked again).
  const shortLived = idToken('carol', { exp: Math.floor(Date.now() / 1000) + 2 });
  const t0 = Date.now();
  const ended = await watchEnd(shortLived);
  assert.equal(ended.status, 200);
  assert.ok(ended.ended, 'the stream ended by itself');
  assert.ok(Date.now() - t0 < 6000, `ended after ${Date.now() - t0} ms`);

  const read = await getDoc(tok.carol, 'MeshService', 'payments', 'ledger');
  assert.equal(read.status, 403, read.text);
  assert.match(errorOf(read), /may not read on namespace payments \(service payments\/ledger\)/);
  assert.equal((await getDoc(tok.carol, 'MeshService', 'orders', 'billing')).status, 200);
  const idp403 = await getDoc(tok.carol, 'IdentityProvider', 'lockgate-system', 'corp');
  assert.equal(idp403.status, 403, idp403.text);

  const del = await call(tok.carol, 'DELETE', '/v1/config/MeshService/payments/ledger');
  assert.equal(del.status, 403, del.text);
  assert.match(errorOf(del), /may not write on namespace payments \(service payments\/ledger\)/);
  assert.equal((await getDoc(bootstrap, 'MeshService', 'payments', 'ledger')).status, 200, 'still there');
  const put = await putAs(tok.carol, 'MeshService', 'payments', 'refunds', meshService('payments', 'refunds'));
  assert.equal(put.status, 403, put.text);
  // Join tokens: write on the service's namespace (and service).
  const join = await call(tok.carol, 'POST', '/v1/tokens', { service: 'inventory', namespace: 'orders' });
  assert.equal(join.status, 201, join.text);
  assert.match(join.json.spiffeId, /\/ns\/orders\/sa\/inventory$/);
  const joinPayments = await call(tok.carol, 'POST', '/v1/tokens', { service: 'ledger', namespace: 'payments' });
  assert.equal(joinPayments.status, 403, joinPayments.text);
  assert.match(errorOf(joinPayments), /^carol@example\.com may not write on namespace payments \(service payments\/ledger\)/);
  assert.equal((await call(tok.dave, 'POST', '/v1/tokens', { service: 'inventory', namespace: 'orders' })).status, 403, 'a viewer makes no join tokens');
  // In orders, PUT and DELETE work.
  assert.equal((await putAs(tok.carol, 'MeshService', 'orders', 'returns', meshService('orders', 'returns'))).status, 201);
  assert.equal((await call(tok.carol, 'DELETE', '/v1/config/MeshService/orders/returns')).status, 200);
});

test('an operator narrowed to one Api writes that Api and its policies only, and sees only what concerns it', { skip }, async () => {
  const api = (name: string, p: string): string => `${HEAD}\nkind: Api\nmetadata: { name: ${name}, namespace: payments }\nspec: { path: ${p}, backend: payments-backend }\n`;
  const policy = (name: string, apiName: string): string => `${HEAD}\nkind: ApiPolicy\nmetadata: { name: ${name}, namespace: payments }\nspec:\n  scope: { api: ${apiName} }\n  inbound:\n    - set-header: { name: x-team, value: payments }\n`;
  const a = await putAs(tok.pat, 'Api', 'payments', 'payments-api', api('payments-api', '/pay'));
  assert.equal(a.status, 201, a.text);
  const p = await applyAs(tok.pat, policy('payments-api-headers', 'payments-api'));
  assert.equal(p.status, 200, p.text);
  assert.deepEqual(p.json.changes.map((c: { action: string }) => c.action), ['create']);

  const other = await putAs(tok.pat, 'Api', 'payments', 'refunds-api', api('refunds-api', '/refunds'));
  assert.equal(other.status, 403, other.text);
  assert.match(errorOf(other), /^pat@example\.com may not write on namespace payments \(api payments\/refunds-api\): roles held: operator in payments for payments-api/);
  const backend = await putAs(tok.pat, 'Backend', 'payments', 'pat-backend', `${HEAD}\nkind: Backend\nmetadata: { name: pat-backend, namespace: payments }\nspec: { url: "http://127.0.0.1:9" }\n`);
  assert.equal(backend.status, 403, backend.text);
  assert.match(errorOf(backend), /^pat@example\.com may not write on namespace payments: roles held: operator in payments for payments-api \(Backend payments\/pat-backend\)$/);
  // A policy for another Api, as admin first (so it exists), then pat cannot change it.
  assert.equal((await applyAs(bootstrap, [api('refunds-api', '/refunds'), policy('refunds-headers', 'refunds-api')].join('---\n'))).status, 200);
  const theirs = await applyAs(tok.pat, policy('refunds-headers', 'payments-api'));
  assert.equal(theirs.status, 403, 'retargeting another Api\'s policy to mine is a write on theirs');
  assert.equal((await call(tok.pat, 'DELETE', '/v1/config/ApiPolicy/payments/refunds-headers')).status, 403);
  assert.equal((await call(tok.pat, 'DELETE', '/v1/config/MeshService/payments/ledger')).status, 403);

  assert.deepEqual(await listed(tok.pat), ['Api payments/payments-api', 'ApiPolicy payments/payments-api-headers']);
  assert.equal((await getDoc(tok.pat, 'Backend', 'payments', 'payments-backend')).status, 403);
  assert.equal((await getDoc(tok.pat, 'Api', 'payments', 'refunds-api')).status, 403);
});

test('a viewer over "*" reads the audit log and secret metadata, never reveals or changes anything', { skip }, async () => {
  const set = await call(bootstrap, 'PUT', '/v1/secrets/x', { value: 's3cret-value' });
  assert.equal(set.status, 201, set.text);

  const audit = await call(tok.dave, 'GET', '/v1/audit?limit=5');
  assert.equal(audit.status, 200, audit.text);
  assert.ok(audit.json.records.length > 0);
  const secrets = await call(tok.dave, 'GET', '/v1/secrets');
  assert.equal(secrets.status, 200, secrets.text);
  assert.ok(secrets.json.items.some((s: { name: string }) => s.name === 'x'));
  assert.equal((await call(tok.dave, 'GET', '/v1/secrets/x')).status, 200, 'metadata');
  const reveal = await call(tok.dave, 'GET', '/v1/secrets/x?reveal=true');
  assert.equal(reveal.status, 403, reveal.text);
  assert.doesNotMatch(reveal.text, /s3cret-value/);
  assert.equal(errorOf(reveal), 'revealing a secret needs the reveal permission');
  // alice (admin over "*") may reveal: the 403 is the role, not the secret.
  const aliceReveal = await call(tok.alice, 'GET', '/v1/secrets/x?reveal=true');
  assert.equal(aliceReveal.status, 200, aliceReveal.text);
  assert.equal(aliceReveal.json.value, 's3cret-value');

  const writes: Array<[string, string, string | object | undefined]> = [
    ['PUT', '/v1/secrets/y', { value: 'v' }],
    ['DELETE', '/v1/secrets/x', undefined],
    ['POST', '/v1/config:apply', meshService('orders', 'dave-svc')],
    ['PUT', '/v1/config/MeshService/orders/dave-svc', meshService('orders', 'dave-svc')],
    ['DELETE', '/v1/config/MeshService/payments/ledger', undefined],
    ['POST', '/v1/identity/keys/rotate', {}],
    ['POST', '/v1/admin-tokens', { role: 'viewer', namespaces: ['orders'] }],
  ];
  for (const [method, p, body] of writes) {
    const r = await call(tok.dave, method, p, body);
    assert.equal(r.status, 403, `${method} ${p}: ${r.text}`);
  }
  const rotate = await call(tok.dave, 'POST', '/v1/identity/keys/rotate', {});
  assert.match(errorOf(rotate), /^dave@example\.com may not manage on the whole installation: roles held: viewer in \*$/);
  // Cluster-wide reads need the role over "*": olga (admin in orders) and carol cannot read the audit log or secrets.
  for (const who of ['olga', 'carol']) {
    const r = await call(tok[who], 'GET', '/v1/audit');
    assert.equal(r.status, 403, `${who}: ${r.text}`);
    assert.match(errorOf(r), /may not read on the whole installation/);
    assert.equal((await call(tok[who], 'GET', '/v1/secrets')).status, 403);
  }
  assert.equal((await call(tok.olga, 'POST', '/v1/identity/keys/rotate', {})).status, 403);
  assert.equal((await getDoc(bootstrap, 'MeshService', 'orders', 'dave-svc')).status, 404);
});

test('RoleBindings: an operator writes none; a team admin grants only inside its namespace; a platform admin anywhere', { skip }, async () => {
  const rb = (ns: string, name: string, role: string, namespaces: string[], groups: string[]): string => `${HEAD}
kind: RoleBinding
metadata: { name: ${name}, namespace: ${ns} }
spec:
  role: ${role}
  provider: lockgate-system/corp
  groups: [${groups.join(', ')}]
  namespaces: [${namespaces.map((n) => JSON.stringify(n)).join(', ')}]
`;
  const byCarol = await applyAs(tok.carol, rb('orders', 'carol-viewers', 'viewer', ['orders'], ['orders-viewers']));
  assert.equal(byCarol.status, 403, byCarol.text);
  assert.match(errorOf(byCarol), /^carol@example\.com may not write RoleBinding orders\/carol-viewers: it grants viewer in orders, and granting a role needs the admin role over all of it$/);

  const byOlga = await putAs(tok.olga, 'RoleBinding', 'orders', 'orders-viewers', rb('orders', 'orders-viewers', 'operator', ['orders'], ['orders-viewers']));
  assert.equal(byOlga.status, 201, byOlga.text);
  // It takes effect: frank (orders-viewers) now holds operator in orders.
  const frank = await call(tok.frank, 'GET', '/v1/auth/whoami');
  assert.deepEqual(frank.json.roles.map((g: { role: string; namespaces: string[]; source: string }) => [g.role, g.namespaces, g.source]), [['operator', ['orders'], 'RoleBinding orders/orders-viewers']]);
  assert.equal((await applyAs(tok.frank, meshService('orders', 'frank-svc'))).status, 200);
  assert.equal((await call(tok.frank, 'DELETE', '/v1/config/MeshService/orders/frank-svc')).status, 200);

  for (const [name, namespaces] of [['into-payments', ['payments']], ['everywhere', ['*']], ['both', ['orders', 'payments']]] as const) {
    const r = await applyAs(tok.olga, rb('orders', name, 'viewer', [...namespaces], ['orders-viewers']));
    assert.equal(r.status, 403, `${name}: ${r.text}`);
    assert.match(errorOf(r), new RegExp(`^olga@example\\.com may not write RoleBinding orders/${name}: it grants viewer in ${namespaces.join(',').replace('*', '\\*')}, and granting a role needs the admin role over all of it$`));
    assert.equal((await getDoc(bootstrap, 'RoleBinding', 'orders', name)).status, 404);
  }
  // Nor in lockgate-system, where the platform bindings live (not her namespace).
  const sys = await applyAs(tok.olga, rb('lockgate-system', 'olga-sys', 'operator', ['orders'], ['orders-viewers']));
  assert.equal(sys.status, 403, sys.text);
  assert.match(errorOf(sys), /may not write on namespace lockgate-system/);
  // Nor widen a platform binding by editing it.
  const widen = await applyAs(tok.olga, binding('orders-leads', 'admin', ['orders-leads'], ['*']));
  assert.equal(widen.status, 403, widen.text);

  const byAlice = await applyAs(tok.alice, rb('lockgate-system', 'payments-ops', 'operator', ['payments'], ['payments-ops']));
  assert.equal(byAlice.status, 200, byAlice.text);
  assert.equal((await applyAs(tok.alice, rb('lockgate-system', 'global-viewers', 'viewer', ['*'], ['everyone']))).status, 200);
  // A binding by user (the email, any case) takes effect at once, and so does its removal.
  const byUser = `${HEAD}\nkind: RoleBinding\nmetadata: { name: bob-reads-payments, namespace: lockgate-system }\nspec: { role: viewer, provider: corp, users: [BOB@Example.com], namespaces: [payments] }\n`;
  assert.equal((await applyAs(tok.alice, byUser)).status, 200);
  const bobNow = await call(tok.bob, 'GET', '/v1/auth/whoami');
  assert.deepEqual(bobNow.json.roles.map((g: { role: string; namespaces: string[]; source: string }) => [g.role, g.namespaces, g.source]), [['viewer', ['payments'], 'RoleBinding lockgate-system/bob-reads-payments']]);
  assert.equal((await getDoc(tok.bob, 'MeshService', 'payments', 'ledger')).status, 200);
  assert.equal((await call(tok.bob, 'DELETE', '/v1/config/MeshService/payments/ledger')).status, 403, 'a viewer does not delete');
  assert.equal((await call(tok.alice, 'DELETE', '/v1/config/RoleBinding/lockgate-system/bob-reads-payments')).status, 200);
  assert.deepEqual((await call(tok.bob, 'GET', '/v1/auth/whoami')).json.roles, []);
  assert.equal((await getDoc(tok.bob, 'MeshService', 'payments', 'ledger')).status, 403);
  // A binding for another provider's people does not match these tokens.
  const otherIdp = `${HEAD}\nkind: IdentityProvider\nmetadata: { name: partners, namespace: lockgate-system }\nspec: { issuer: "https://partners.example.com", clientId: partners }\n---\n${HEAD}\nkind: RoleBinding\nmetadata: { name: partner-admins, namespace: lockgate-system }\nspec: { role: admin, provider: partners, users: [bob], namespaces: ["*"] }\n`;
  assert.equal((await applyAs(tok.alice, otherIdp)).status, 200);
  assert.deepEqual((await call(tok.bob, 'GET', '/v1/auth/whoami')).json.roles, [], 'bob of corp is not bob of partners');
});

test('automation tokens: a team admin makes one within its scope, lists and revokes its own; expired tokens are 401', { skip }, async () => {
  const made = await call(tok.olga, 'POST', '/v1/admin-tokens', { role: 'operator', namespaces: ['orders'], description: 'orders ci', ttl: '1h' });
  assert.equal(made.status, 201, made.text);
  const ci = made.json as { id: string; token: string; role: string; namespaces: string[]; createdBy: string; expiresAt: string; bootstrap: boolean };
  assert.match(ci.token, /^lgadm\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/);
  assert.equal(ci.token.split('.')[1], ci.id);
  assert.deepEqual([ci.role, ci.namespaces, ci.createdBy, ci.bootstrap], ['operator', ['orders'], 'olga@example.com', false]);
  assert.ok(Math.abs(Date.parse(ci.expiresAt) - Date.now() - 3600_000) < 60_000, ci.expiresAt);

  // The token acts as itself: operator in orders, nothing in payments.
  const who = await call(ci.token, 'GET', '/v1/auth/whoami');
  assert.equal(who.status, 200, who.text);
  assert.equal(who.json.subject, `admin-token:${ci.id}`);
  assert.deepEqual(who.json.roles.map((g: { role: string; namespaces: string[] }) => [g.role, g.namespaces]), [['operator', ['orders']]]);
  const inOrders = await applyAs(ci.token, meshService('orders', 'ci-svc'));
  assert.equal(inOrders.status, 200, inOrders.text);
  const inPayments = await applyAs(ci.token, meshService('payments', 'ci-svc'));
  assert.equal(inPayments.status, 403, inPayments.text);
  assert.match(errorOf(inPayments), new RegExp(`^admin-token:${ci.id} may not write on namespace payments`));
  assert.equal((await call(ci.token, 'POST', '/v1/admin-tokens', { role: 'viewer', namespaces: ['orders'] })).status, 403, 'an operator token makes no tokens');

  // Making tokens needs admin over all of the token's scope.
  const byCarol = await call(tok.carol, 'POST', '/v1/admin-tokens', { role: 'viewer', namespaces: ['orders'] });
  assert.equal(byCarol.status, 403, byCarol.text);
  assert.match(errorOf(byCarol), /^carol@example\.com may not hand out viewer in orders: making a token needs the admin role over everything the token covers$/);
  for (const namespaces of [['payments'], ['orders', 'payments'], ['*']]) {
    const r = await call(tok.olga, 'POST', '/v1/admin-tokens', { role: 'viewer', namespaces });
    assert.equal(r.status, 403, `${namespaces}: ${r.text}`);
    assert.match(errorOf(r), /^olga@example\.com may not hand out viewer in /);
  }
  const bad = await call(tok.olga, 'POST', '/v1/admin-tokens', { role: 'root', namespaces: ['orders'] });
  assert.equal(bad.status, 400, bad.text);

  // Listing: olga sees the tokens within her scope (hers), not the bootstrap token; the bootstrap token sees all.
  const bootstrapId = bootstrap.split('.')[1];
  const olgaList = await call(tok.olga, 'GET', '/v1/admin-tokens');
  assert.equal(olgaList.status, 200, olgaList.text);
  const olgaIds = olgaList.json.tokens.map((t: { id: string }) => t.id);
  assert.ok(olgaIds.includes(ci.id), olgaList.text);
  assert.ok(!olgaIds.includes(bootstrapId), 'the bootstrap token is not hers to see');
  assert.ok(olgaList.json.tokens.every((t: { token?: string }) => t.token === undefined), 'a listing never shows a token');
  const all = await call(bootstrap, 'GET', '/v1/admin-tokens');
  assert.equal(all.status, 200, all.text);
  const boot = all.json.tokens.find((t: { id: string }) => t.id === bootstrapId);
  assert.deepEqual([boot?.role, boot?.namespaces, boot?.bootstrap], ['admin', ['*'], true]);
  assert.ok(all.json.tokens.some((t: { id: string }) => t.id === ci.id));
  // olga cannot revoke the bootstrap token; carol cannot revoke olga's.
  const revokeBoot = await call(tok.olga, 'DELETE', `/v1/admin-tokens/${bootstrapId}`);
  assert.equal(revokeBoot.status, 403, revokeBoot.text);
  assert.equal((await call(bootstrap, 'GET', '/v1/auth/whoami')).status, 200);
  assert.equal((await call(tok.carol, 'DELETE', `/v1/admin-tokens/${ci.id}`)).status, 403);

  // The creation is in the audit log, with olga as the actor.
  const audit = await call(bootstrap, 'GET', '/v1/audit?limit=1000');
  assert.equal(audit.status, 200, audit.text);
  const rec = audit.json.records.find((r: { action: string; target: string }) => r.action === 'admin-token.create' && r.target === `admin-token:${ci.id}`);
  assert.ok(rec, 'admin-token.create recorded');
  assert.equal(rec.actor, 'olga@example.com');
  assert.equal(rec.details.role, 'operator');
  assert.equal(rec.details.namespaces, 'orders');
  // Config changes made with the token are recorded as the token.
  assert.ok(audit.json.records.some((r: { action: string; target: string; actor: string }) => r.action === 'config.create' && r.target === 'MeshService/orders/ci-svc' && r.actor === `admin-token:${ci.id}`));

  // Revoked: the token no longer works.
  const revoked = await call(tok.olga, 'DELETE', `/v1/admin-tokens/${ci.id}`);
  assert.equal(revoked.status, 200, revoked.text);
  assert.deepEqual(revoked.json, { id: ci.id, revoked: true });
  const after = await call(ci.token, 'GET', '/v1/config');
  assert.equal(after.status, 401, after.text);
  assert.equal(errorOf(after), 'the bearer token is not valid');
  assert.equal((await call(tok.olga, 'DELETE', `/v1/admin-tokens/${ci.id}`)).status, 404);
  const audit2 = await call(bootstrap, 'GET', '/v1/audit?limit=1000');
  assert.ok(audit2.json.records.some((r: { action: string; target: string; actor: string }) => r.action === 'admin-token.revoke' && r.target === `admin-token:${ci.id}` && r.actor === 'olga@example.com'));

  // A one-second token works at once, and is refused as expired a moment later.
  const short = await call(tok.olga, 'POST', '/v1/admin-tokens', { role: 'viewer', namespaces: ['orders'], ttl: '1s' });
  assert.equal(short.status, 201, short.text);
  assert.equal((await call(short.json.token, 'GET', '/v1/config')).status, 200);
  await new Promise((r) => setTimeout(r, 1200));
  const expired = await call(short.json.token, 'GET', '/v1/config');
  assert.equal(expired.status, 401, expired.text);
  assert.equal(errorOf(expired), `the bearer token is not valid: admin token ${short.json.id} expired at ${short.json.expiresAt}`);
  // On the access routes too, the expired admin token is refused as a token, not read as a person's.
  const onAccess = await call(short.json.token, 'GET', '/v1/access/requests');
  assert.equal(onAccess.status, 401, onAccess.text);
  assert.match(errorOf(onAccess), /admin token is not valid/);

  // A token made by a token lives no longer than its maker.
  const parent = await call(tok.olga, 'POST', '/v1/admin-tokens', { role: 'admin', namespaces: ['orders'], ttl: '1h' });
  assert.equal(parent.status, 201, parent.text);
  const child = await call(parent.json.token, 'POST', '/v1/admin-tokens', { role: 'operator', namespaces: ['orders'], ttl: '90d' });
  assert.equal(child.status, 201, child.text);
  assert.equal(child.json.expiresAt, parent.json.expiresAt);
  // A grant over no namespace is refused, not vacuously allowed.
  const none = await call(tok.olga, 'POST', '/v1/admin-tokens', { role: 'viewer', namespaces: [] });
  assert.equal(none.status, 400, none.text);
});

test('access requests: the approver role over the target reviews without being in the policy\'s approvers; nobody their own', { skip }, async () => {
  const made = await call(tok.bob, 'POST', '/v1/access/requests', { target: { service: 'orders/inventory' }, reason: 'incident 12', duration: '10m' });
  assert.equal(made.status, 201, made.text);
  const id = made.json.id as string;
  assert.equal(made.json.state, 'pending');
  assert.equal(made.json.policy, 'orders/inventory-access');

  // carol is an operator in orders, not an approver, and not in inventory-owners.
  const byCarol = await call(tok.carol, 'POST', `/v1/access/requests/${id}/approve`, {});
  assert.equal(byCarol.status, 403, byCarol.text);
  assert.match(errorOf(byCarol), /^only members of inventory-owners \(or people with the approver role there\) review requests for/);
  // An approver elsewhere does not count: pat's operator role is in payments; dave is a viewer everywhere.
  assert.equal((await call(tok.dave, 'POST', `/v1/access/requests/${id}/approve`, {})).status, 403);
  // bob cannot approve his own request.
  const self = await call(tok.bob, 'POST', `/v1/access/requests/${id}/approve`, {});
  assert.equal(self.status, 403, self.text);
  assert.equal(errorOf(self), 'nobody reviews their own request');
  // The admin token is no person.
  assert.equal((await call(bootstrap, 'POST', `/v1/access/requests/${id}/approve`, {})).status, 403);

  // erin sees it (the approver role reads requests in orders) and approves as her role.
  const listed = await call(tok.erin, 'GET', '/v1/access/requests?state=pending');
  assert.equal(listed.status, 200, listed.text);
  assert.ok(listed.json.requests.some((r: { id: string }) => r.id === id));
  const byErin = await call(tok.erin, 'POST', `/v1/access/requests/${id}/approve`, { comment: 'ok for the incident' });
  assert.equal(byErin.status, 200, byErin.text);
  assert.equal(byErin.json.state, 'approved');
  assert.equal(byErin.json.active, true);
  assert.equal(byErin.json.reviews.length, 1);
  assert.equal(byErin.json.reviews[0].by, 'erin');
  assert.deepEqual(byErin.json.reviews[0].as, ['role approver (RoleBinding lockgate-system/orders-approvers)']);
  const audit = await call(bootstrap, 'GET', '/v1/audit?limit=1000');
  const rec = audit.json.records.find((r: { action: string; target: string }) => r.action === 'access.approve' && r.target === `access-request/${id}`);
  assert.equal(rec?.actor, 'erin@example.com');
  assert.equal(rec?.details?.as, 'role approver (RoleBinding lockgate-system/orders-approvers)');

  // A second request: the approver role lets erin deny, and revoke the approved one.
  const second = await call(tok.bob, 'POST', '/v1/access/requests', { target: { service: 'orders/inventory' }, reason: 'again', duration: '5m' });
  assert.equal(second.status, 201, second.text);
  const denied = await call(tok.erin, 'POST', `/v1/access/requests/${second.json.id}/deny`, {});
  assert.equal(denied.status, 200, denied.text);
  assert.equal(denied.json.state, 'denied');
  assert.equal((await call(tok.carol, 'POST', `/v1/access/requests/${id}/revoke`, { reason: 'no' })).status, 403, 'an operator does not revoke');
  const revoked = await call(tok.erin, 'POST', `/v1/access/requests/${id}/revoke`, { reason: 'incident over' });
  assert.equal(revoked.status, 200, revoked.text);
  assert.equal(revoked.json.state, 'revoked');
});

test('prune as an operator deletes only the documents the operator may write', { skip }, async () => {
  const before = await listed(bootstrap);
  const outside = before.filter((d) => !/ orders\//.test(d));
  const keep = meshService('orders', 'inventory');
  // What carol may write in orders, other than inventory, is pruned; olga's RoleBinding in orders is not carol's to delete.
  const expectDeleted = before.filter((d) => / orders\//.test(d) && d !== 'MeshService orders/inventory' && !d.startsWith('RoleBinding ')).sort();
  assert.ok(expectDeleted.includes('MeshService orders/shipping') && expectDeleted.includes('AccessPolicy orders/inventory-access'), expectDeleted.join(', '));
  assert.ok(before.includes('RoleBinding orders/orders-viewers'));

  const dry = await applyAs(tok.carol, keep, '?prune=true&dryRun=true');
  assert.equal(dry.status, 200, dry.text);
  const deletes = (r: { json: Json }): string[] => r.json.changes.filter((c: { action: string }) => c.action === 'delete').map((c: { kind: string; namespace: string; name: string }) => `${c.kind} ${c.namespace}/${c.name}`).sort();
  assert.deepEqual(deletes(dry), expectDeleted);
  assert.deepEqual(await listed(bootstrap), before, 'a dry run changes nothing');

  const pruned = await applyAs(tok.carol, keep, '?prune=true');
  assert.equal(pruned.status, 200, pruned.text);
  assert.deepEqual(deletes(pruned), expectDeleted);
  const afterPrune = await listed(bootstrap);
  assert.deepEqual(afterPrune.filter((d) => / orders\//.test(d)), ['MeshService orders/inventory', 'RoleBinding orders/orders-viewers']);
  assert.deepEqual(afterPrune.filter((d) => !/ orders\//.test(d)), outside, 'payments, lockgate-system and default are untouched');
  // Each deletion is audited with carol as the actor.
  const audit = await call(bootstrap, 'GET', '/v1/audit?limit=1000');
  for (const d of expectDeleted) {
    const target = d.replace(' ', '/');
    assert.ok(audit.json.records.some((r: { action: string; target: string; actor: string }) => r.action === 'config.delete' && r.target === target && r.actor === 'carol@example.com'), target);
  }
  // pat's prune (narrowed to payments-api) leaves every other payments document alone.
  const patPrune = await applyAs(tok.pat, `${HEAD}\nkind: Api\nmetadata: { name: payments-api, namespace: payments }\nspec: { path: /pay, backend: payments-backend }\n`, '?prune=true');
  assert.equal(patPrune.status, 200, patPrune.text);
  assert.deepEqual(deletes(patPrune), ['ApiPolicy payments/payments-api-headers']);
  assert.ok((await listed(bootstrap)).includes('ApiPolicy payments/refunds-headers'));
});

/** The CLI's environment: nothing from the developer's shell, the credentials in `configDir`. */
function cliEnv(configDir: string): Record<string, string> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => !k.startsWith('LOCKGATE_') && v !== undefined)) as Record<string, string>;
  return { ...env, NODE_COMPILE_CACHE: path.resolve(import.meta.dirname, '../.cache/node'), LOCKGATE_CONFIG_DIR: configDir };
}

test('lockgate login (device flow) as carol, then get with the stored sign-in; whoami; logout', { skip }, async () => {
  const configDir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-login-'));
  const conn = ['--control-plane', cp.url, '--ca-file', cp.info.caFile];
  const cli = (args: string[]): ReturnType<MeshWorld['cli']> => world.cli([...args, ...conn], { LOCKGATE_CONFIG_DIR: configDir });
  const proc = spawn(process.execPath, [BIN, 'login', ...conn], { stdio: ['ignore', 'pipe', 'pipe'], env: cliEnv(configDir) });
  try {
    const stderr: string[] = [];
    let stdout = '';
    proc.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const exited = once(proc, 'exit');
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no verification URL within 15 s:\n${stderr.join('\n')}`)), 15_000).unref();
      createInterface({ input: proc.stderr }).on('line', (l) => {
        stderr.push(l);
        const m = /^To sign in, open (\S+) and enter code (\S+)$/.exec(l);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      proc.once('exit', (code) => reject(new Error(`login exited (${code}) before printing a URL:\n${stderr.join('\n')}`)));
    });
    assert.ok(url.startsWith(`${idp.issuer}/`), url);
    assert.ok(stderr.some((l) => l === `Signing in to ${cp.url} with lockgate-system/corp (${idp.issuer})`), stderr.join('\n'));
    const hops = await approveDevice(new CookieJar(), url, 'carol');
    assert.match(hops.at(-1)!.body, /Signed in/, hops.map((h) => `${h.status} ${h.url}`).join('\n'));
    // The CLI polls the token endpoint every 5 s (the provider's interval): it exits within one interval or two.
    const [code] = (await Promise.race([exited, new Promise((_, reject) => setTimeout(() => reject(new Error(`login did not exit:\n${stderr.join('\n')}`)), 20_000).unref())])) as [number | null];
    assert.equal(code, 0, stderr.join('\n'));
    assert.match(stdout, /^subject {2}carol@example\.com$/m);
    assert.match(stdout, /^via {6}person \(from http:\/\/127\.0\.0\.1:\d+; groups orders-devs\)$/m);
    assert.match(stdout, /^operator +orders +\* +\* +RoleBinding lockgate-system\/orders-devs$/m);
    assert.ok(stderr.some((l) => l.startsWith(`Signed in; the sign-in is stored in ${path.join(configDir, 'credentials.json')}`)), stderr.join('\n'));
    const file = path.join(configDir, 'credentials.json');
    assert.equal(readFileSync(file, 'utf8').includes('"subject": "carol@example.com"'), true);
    if (process.platform !== 'win32') assert.equal(statSync(file).mode & 0o777, 0o600, 'credentials are readable by the user only');

    // No --token: the stored sign-in is used.
    const mine = await cli(['get', 'meshservices', '-n', 'orders']);
    assert.equal(mine.code, 0, mine.stderr);
    assert.match(mine.stdout, /\binventory\b/);
    const theirs = await cli(['get', 'meshservices', '-n', 'payments']);
    assert.equal(theirs.code, 1, theirs.stdout);
    assert.match(theirs.stderr, /carol@example\.com may not read on namespace payments: roles held: operator in orders/);
    const one = await cli(['get', 'meshservice', 'ledger', '-n', 'payments']);
    assert.equal(one.code, 1, one.stdout);
    assert.match(one.stderr, /carol@example\.com may not read on namespace payments \(service payments\/ledger\)/);
    // admin-token with the stored sign-in: carol is an operator, she hands out nothing.
    const noToken = await cli(['admin-token', 'create', '--role', 'viewer', '-n', 'orders']);
    assert.equal(noToken.code, 1, noToken.stdout);
    assert.match(noToken.stderr, /^lockgate admin-token: carol@example\.com may not hand out viewer in orders: making a token needs the admin role over everything the token covers/);
    const who = await cli(['whoami', '--json']);
    assert.equal(who.code, 0, who.stderr);
    const me = JSON.parse(who.stdout) as Json;
    assert.equal(me.subject, 'carol@example.com');
    assert.equal(me.via, 'person');
    assert.deepEqual(me.roles.map((g: { role: string; namespaces: string[] }) => [g.role, g.namespaces]), [['operator', ['orders']]]);
    // An explicit --token wins over the stored sign-in.
    const asAdmin = await cli(['whoami', '--json', '--token', bootstrap]);
    assert.equal(JSON.parse(asAdmin.stdout).via, 'token');
    // lockgate admin-token create, list and revoke with olga's token.
    const created = await cli(['admin-token', 'create', '--role', 'viewer', '-n', 'orders', '--ttl', '2h', '--description', 'dashboards', '--token', tok.olga]);
    assert.equal(created.code, 0, created.stderr);
    const made = created.stdout.trim();
    const madeId = made.split('.')[1];
    assert.match(made, /^lgadm\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/);
    assert.match(created.stderr, new RegExp(`^admin token ${madeId}: role viewer in namespaces orders, expires \\d{4}-`));
    const ls = await cli(['admin-token', 'list', '--token', tok.olga]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, new RegExp(`^${madeId} +viewer +orders +\\* +\\* +\\S+ +\\S+ +olga@example\\.com +dashboards$`, 'm'));
    assert.doesNotMatch(ls.stdout, new RegExp(bootstrap.split('.')[1]));
    const rv = await cli(['admin-token', 'revoke', madeId, '--token', tok.olga]);
    assert.equal(rv.code, 0, rv.stderr);
    assert.equal(rv.stdout, `admin token ${madeId} revoked\n`);
    assert.equal((await call(made, 'GET', '/v1/config')).status, 401);

    const out = await cli(['logout']);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /^signed out of https:\/\/127\.0\.0\.1:\d+ \(was carol@example\.com with lockgate-system\/corp\)$/m);
    assert.equal(existsSync(file), false, 'the only sign-in is gone, so is the file');
    const again = await cli(['get', 'meshservices', '-n', 'orders']);
    assert.equal(again.code, 1, again.stdout);
    assert.match(again.stderr, /authentication required/);
    assert.match(again.stderr, /lockgate login/);
    const whoAgain = await cli(['whoami']);
    assert.equal(whoAgain.code, 1);
    assert.match(whoAgain.stderr, /not signed in: run `lockgate login`/);
    const twice = await cli(['logout']);
    assert.equal(twice.code, 0);
    assert.match(twice.stderr, /not signed in to/);
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    rmSync(configDir, { recursive: true, force: true });
  }
});

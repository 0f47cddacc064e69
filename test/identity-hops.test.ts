// Identity at every hop (identity issue §2), across processes: a control plane, a joined gateway that validates the
// end user and asserts them to the mesh, sidecars that verify the assertion (audience = themselves, act = the mTLS
// peer), decide on its claims, hand the app plain user headers, and exchange it on the app's outbound calls; a
// replayed assertion is refused; the JWKS is public; a key rotation at the control plane fails no request.
import assert from 'node:assert/strict';
import { createPublicKey, randomBytes, verify, type JsonWebKey } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { hs256 } from './helpers/jwt.ts';
import {
  HEAD, MeshWorld, adminCall, apply, joinToken, startApp, startControlPlane, startSidecar, waitFor,
  type AppServer, type Child, type ControlPlaneProc, type SidecarProc,
} from './helpers/mesh-processes.ts';

const TD = 'lockgate.local';
const EDGE = `spiffe://${TD}/ns/default/sa/edge`;
const ORDERS = `spiffe://${TD}/ns/shop/sa/orders`;
const INVENTORY = `spiffe://${TD}/ns/shop/sa/inventory`;
const SECRET = randomBytes(32);

const CONFIG = `${HEAD}
kind: Mesh
metadata: { name: default }
spec: { trustDomain: ${TD}, defaultAccess: deny }
---
${HEAD}
kind: MeshService
metadata: { name: orders, namespace: shop }
spec: { ports: [{ name: http, port: 80, protocol: http }] }
---
${HEAD}
kind: MeshService
metadata: { name: inventory, namespace: shop }
spec: { ports: [{ name: http, port: 80, protocol: http }] }
---
${HEAD}
kind: AccessPolicy
metadata: { name: orders-from-edge, namespace: shop }
spec:
  target: { service: orders }
  allow:
    - { sources: ["${EDGE}"], authenticated: true }
---
# Defense in depth: the gateway lets staff in, inventory only lets orders-admins read, whoever calls it.
${HEAD}
kind: AccessPolicy
metadata: { name: inventory-admins, namespace: shop }
spec:
  target: { service: inventory }
  allow:
    - { sources: [orders], groups: [orders-admins], methods: [GET] }
---
${HEAD}
kind: Gateway
metadata: { name: edge }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  accessLog: { enabled: false }
---
${HEAD}
kind: Backend
metadata: { name: shop-orders }
spec: { type: mesh, meshService: shop/orders }
---
${HEAD}
kind: Api
metadata: { name: shop }
spec: { path: /shop, backend: shop-orders, stripPath: true }
---
${HEAD}
kind: ApiPolicy
metadata: { name: shop-users }
spec:
  scope: { api: shop }
  inbound:
    - validate-jwt: { issuerSigningKeys: [{ hmac: "${SECRET.toString('base64')}" }], issuers: ["https://idp.test"], audiences: [shop] }
---
${HEAD}
kind: AccessPolicy
metadata: { name: shop-staff }
spec:
  target: { api: shop }
  allow:
    - { groups: [staff, orders-admins] }
`;

const world = new MeshWorld('lockgate-e2e-identity-');
let cp: ControlPlaneProc;
let gw: Child;
let gwPort = 0;
let orders: SidecarProc;
let inventory: SidecarProc;
let ordersApp: AppServer;
let inventoryApp: AppServer;

after(() => world.close());

const token = (sub: string, groups: string[], ttl = 600): string => hs256(SECRET, {
  iss: 'https://idp.test', aud: 'shop', sub, email: `${sub}@example.com`, groups, iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + ttl,
});
const ALICE = token('alice', ['orders-admins']);
const BOB = token('bob', ['staff']);

interface Reply {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- bodies are read field by field
  json: any;
  text: string;
  /** The response's x-request-id (a string when it came once; joined or an array when repeated). */
  requestId?: string | string[];
}

function get(port: number, p: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: p, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        let json: unknown;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, json, text, requestId: res.headers['x-request-id'] });
      });
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

before(async () => {
  cp = await startControlPlane(world, world.dir('cp'));
  await apply(world, cp, CONFIG);
  // orders' app: /call/<path> calls inventory through its sidecar, passing on the assertion it was handed (as it does traceparent).
  let outbound = 0;
  ordersApp = await startApp(world, 'orders', (req, res) => {
    if (!req.url?.startsWith('/call/')) return false;
    const assertion = req.headers['x-lockgate-assertion'];
    const pass = typeof assertion === 'string' && req.headers['x-drop-assertion'] === undefined ? { 'x-lockgate-assertion': assertion } : {};
    const requestId = req.headers['x-request-id'];
    const id = typeof requestId === 'string' ? { 'x-request-id': requestId } : {};
    const up = http.request({ host: '127.0.0.1', port: outbound, path: req.url.slice('/call'.length), headers: { host: 'inventory', ...pass, ...id }, agent: false }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: r.statusCode, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') })));
    });
    up.on('error', (err) => res.writeHead(502).end(err.message));
    up.end();
    return true;
  });
  inventoryApp = await startApp(world, 'inventory');
  const [tOrders, tInv] = await Promise.all([joinToken(world, cp, 'orders', 'shop'), joinToken(world, cp, 'inventory', 'shop')]);
  [orders, inventory] = await Promise.all([
    startSidecar(world, { service: 'orders', namespace: 'shop', app: ordersApp.port, dataDir: world.dir('orders'), controlPlane: cp.url, token: tOrders }),
    startSidecar(world, { service: 'inventory', namespace: 'shop', app: inventoryApp.port, dataDir: world.dir('inventory'), controlPlane: cp.url, token: tInv }),
  ]);
  outbound = orders.outbound;
  const t = await world.cli(['token', 'create', '--service', 'edge', '-n', 'default', '--kind', 'gateway', '--data-dir', cp.dataDir, '--token', cp.token]);
  assert.equal(t.code, 0, t.stderr);
  gw = await world.spawn(['gateway', '--control-plane', cp.url, '--token', t.stdout.trim(), '--data-dir', world.dir('gw'), '--admin-port', '0', '--workers', '1'],
    (l) => l.startsWith('{"event":"listening"'), 'gateway');
  gwPort = (JSON.parse(gw.stdout.find((l) => l.startsWith('{"event":"listening"'))!) as { ports: Record<string, number> }).ports.http;
  // Every endpoint registered and in every snapshot: alice gets through end to end.
  await waitFor('alice through gateway, orders and inventory', async () => {
    const r = await get(gwPort, '/shop/call/stock/1', { authorization: `Bearer ${ALICE}` });
    return r.status === 200 && r.json?.status === 200;
  }, 30_000, 200);
});

test('alice (orders-admins): the gateway asserts her to orders, orders exchanges it, inventory decides on her groups', async () => {
  const before = inventoryApp.seen.length;
  const r = await get(gwPort, '/shop/call/stock/1', { authorization: `Bearer ${ALICE}` });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 200, r.text);
  assert.equal(r.json.body.url, '/stock/1');
  // What inventory's app was handed: the verified assertion (addressed to it, act = orders) and plain user headers.
  const seen = inventoryApp.seen.slice(before).find((s) => s.url === '/stock/1')!;
  // One request id from the edge to inventory's app (orders' app passes it on, as it does the assertion), and one in the response.
  assert.match(String(r.requestId), /^[0-9a-f]{32}$/);
  assert.equal(seen.headers['x-request-id'], r.requestId);
  assert.equal(seen.headers['x-lockgate-user'], 'alice');
  assert.equal(seen.headers['x-lockgate-email'], 'alice@example.com');
  assert.equal(seen.headers['x-lockgate-groups'], 'orders-admins');
  assert.equal(seen.headers['x-lockgate-client-id'], ORDERS);
  const claims = JSON.parse(Buffer.from(String(seen.headers['x-lockgate-assertion']).split('.')[1], 'base64url').toString()) as Record<string, unknown>;
  assert.equal(claims.aud, INVENTORY);
  assert.deepEqual(claims.act, { sub: ORDERS });
  assert.equal(claims.sub, 'alice');
  assert.equal(claims.idp, 'https://idp.test');
  assert.ok((claims.exp as number) - (claims.iat as number) <= 300);
  // What orders' app was handed: addressed to orders, act = the gateway.
  const o = ordersApp.seen.filter((s) => s.url === '/call/stock/1').at(-1)!;
  const oc = JSON.parse(Buffer.from(String(o.headers['x-lockgate-assertion']).split('.')[1], 'base64url').toString()) as Record<string, unknown>;
  assert.equal(oc.aud, ORDERS);
  assert.deepEqual(oc.act, { sub: EDGE });
  // The user's own bearer token stays at the edge: the assertion says who they are.
  assert.equal(o.headers.authorization, undefined);
  // The gateway mints once per user and audience: the next request carries the very same assertion.
  await get(gwPort, '/shop/call/stock/2', { authorization: `Bearer ${ALICE}` });
  const o2 = ordersApp.seen.filter((s) => s.url === '/call/stock/2').at(-1)!;
  assert.equal(o2.headers['x-lockgate-assertion'], o.headers['x-lockgate-assertion']);
  assert.notEqual(o2.headers['x-request-id'], o.headers['x-request-id'], 'the request id travels in its own header');
});

test('bob (staff): the gateway lets him in, inventory\'s sidecar denies him: 403 with the hop and the decision id', async () => {
  const r = await get(gwPort, '/shop/call/stock/1', { authorization: `Bearer ${BOB}` });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 403, r.text);
  const e = r.json.body.error;
  assert.equal(e.code, 'access_denied');
  assert.equal(e.hop, 'sidecar shop/inventory');
  assert.match(e.decision, /^[0-9a-z]+-[0-9a-z]+$/);
  assert.match(e.message, /inventory-admins/);
  // The denial is in the control plane's audit trail, reported by inventory's sidecar with bob as the user.
  const rec = await waitFor('the deny in the audit trail', async () => {
    const a = await adminCall(cp, 'GET', '/v1/audit?limit=500');
    return (a.json.records as Array<{ action: string; actor: string; target: string; requestId?: string; details: Record<string, string> }>)
      .find((x) => x.action === 'access.deny' && x.details.decision === e.decision);
  }, 10_000, 100);
  assert.equal(rec.actor, INVENTORY);
  assert.equal(rec.target, 'shop/inventory');
  assert.equal(rec.details.user, 'bob@example.com');
  assert.equal(rec.details.policy, 'shop/inventory-admins');
  assert.equal(rec.details.source, ORDERS);
  // A user the gateway refuses: the gateway's own deny is reported with its identity.
  const mallory = await get(gwPort, '/shop/call/stock/1', { authorization: `Bearer ${token('mallory', ['contractors'])}` });
  assert.equal(mallory.status, 403, mallory.text);
  assert.equal(mallory.json.error.hop, 'gateway edge');
  const gwRec = await waitFor('the gateway deny in the audit trail', async () => {
    const a = await adminCall(cp, 'GET', '/v1/audit?limit=500');
    return (a.json.records as Array<{ action: string; actor: string; details: Record<string, string> }>).find((x) => x.action === 'access.deny' && x.details.decision === mallory.json.error.decision);
  }, 10_000, 100);
  assert.equal(gwRec.actor, EDGE);
  assert.equal(gwRec.details.user, 'mallory@example.com');
  // Without the assertion passed on, inventory sees no end user: denied as well.
  const bare = await new Promise<Reply>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: gwPort, path: '/shop/call/stock/1', headers: { authorization: `Bearer ${ALICE}`, 'x-drop-assertion': '1' }, agent: false }, (res) => {
      const c: Buffer[] = [];
      res.on('data', (d: Buffer) => c.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(c).toString()), text: '' }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(bare.json.status, 403);
});

test('no token: 401 at the gateway; a client cannot bring its own assertion or user headers', async () => {
  const r = await get(gwPort, '/shop/call/stock/1');
  assert.equal(r.status, 401, r.text);
  assert.match(r.json.message, /JWT not present/, r.text);
  // bob smuggles alice's identity: the gateway drops the client's copies and asserts bob.
  const forged = ordersApp.seen.find((s) => s.headers['x-lockgate-assertion'])!.headers['x-lockgate-assertion'] as string;
  const before = ordersApp.seen.length;
  const s = await get(gwPort, '/shop/call/stock/1', { authorization: `Bearer ${BOB}`, 'x-lockgate-assertion': forged, 'x-lockgate-user': 'alice', 'x-lockgate-groups': 'orders-admins' });
  assert.equal(s.json.status, 403);
  const seen = ordersApp.seen.slice(before).find((x) => x.url === '/call/stock/1')!;
  assert.equal(seen.headers['x-lockgate-user'], 'bob');
  assert.equal(seen.headers['x-lockgate-groups'], 'staff');
});

test('an assertion replayed from another workload is refused (act must be the mTLS peer); one addressed elsewhere too', async () => {
  const stolen = inventoryApp.seen.find((s) => s.headers['x-lockgate-assertion'])!.headers['x-lockgate-assertion'] as string;
  const gwCerts = path.join(world.dir('gw'), 'certs');
  const direct = (assertion: string): Promise<Reply> => new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port: inventory.inbound, path: '/stock/1', servername: 'inventory', agent: false,
      cert: readFileSync(path.join(gwCerts, 'cert.pem')), key: readFileSync(path.join(gwCerts, 'key.pem')), ca: readFileSync(path.join(gwCerts, 'bundle.pem')),
      checkServerIdentity: () => undefined, headers: { 'x-lockgate-assertion': assertion },
    }, (res) => {
      const c: Buffer[] = [];
      res.on('data', (d: Buffer) => c.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(c).toString()), text: Buffer.concat(c).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
  // The gateway's own certificate, orders' assertion for inventory: the act is orders, the peer is the gateway.
  const r = await direct(stolen);
  assert.equal(r.status, 401, r.text);
  assert.match(r.json.message, /Invalid identity assertion: sidecar shop\/inventory: the assertion was issued to spiffe:\/\/lockgate\.local\/ns\/shop\/sa\/orders, but spiffe:\/\/lockgate\.local\/ns\/default\/sa\/edge presented it/);
  assert.ok(r.json.requestId);
  // The assertion the gateway gave orders, presented to inventory by the gateway itself: addressed to orders.
  const toOrders = ordersApp.seen.find((s) => s.headers['x-lockgate-assertion'])!.headers['x-lockgate-assertion'] as string;
  const e = await direct(toOrders);
  assert.equal(e.status, 401);
  assert.match(e.json.message, /addressed to spiffe:\/\/lockgate\.local\/ns\/shop\/sa\/orders, not spiffe:\/\/lockgate\.local\/ns\/shop\/sa\/inventory/);
  // orders' app cannot get inventory's assertion exchanged either (it is not addressed to orders).
  const x = await new Promise<Reply>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: orders.outbound, path: '/stock/1', headers: { host: 'inventory', 'x-lockgate-assertion': stolen }, agent: false }, (res) => {
      const c: Buffer[] = [];
      res.on('data', (d: Buffer) => c.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(c).toString()), text: '' }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(x.status, 401);
  assert.match(x.json.message, /outbound: the assertion is addressed to .*inventory, not .*orders/);
});

test('the JWKS is public and verifies what the sidecars handed the apps; a key rotation fails no request', async () => {
  const jwks = await new Promise<{ keys: Array<{ kid: string; kty: string; d?: string }> }>((resolve, reject) => {
    https.get(`${cp.url}/.well-known/lockgate/jwks.json`, { ca: readFileSync(cp.caFile), checkServerIdentity: () => undefined }, (res) => {
      const c: Buffer[] = [];
      res.on('data', (d: Buffer) => c.push(d));
      res.on('end', () => resolve(JSON.parse(Buffer.concat(c).toString())));
    }).on('error', reject);
  });
  assert.equal(jwks.keys.length, 1);
  assert.equal(jwks.keys[0].d, undefined);
  const seen = inventoryApp.seen.find((s) => s.headers['x-lockgate-assertion'])!.headers['x-lockgate-assertion'] as string;
  const [h, p, s] = seen.split('.');
  const kid = (JSON.parse(Buffer.from(h, 'base64url').toString()) as { kid: string }).kid;
  const jwk = jwks.keys.find((k) => k.kid === kid)!;
  assert.ok(verify('sha256', Buffer.from(`${h}.${p}`), { key: createPublicKey({ key: jwk as unknown as JsonWebKey, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url')));

  // Rotate while alice keeps calling: publish, then (after the publish delay) sign with the new key; nothing fails.
  let failures = 0;
  let calls = 0;
  const ac = new AbortController();
  const load = (async () => {
    while (!ac.signal.aborted) {
      const r = await get(gwPort, '/shop/call/stock/9', { authorization: `Bearer ${ALICE}` }).catch(() => ({ status: 0, json: undefined }));
      calls++;
      if (r.status !== 200 || r.json?.status !== 200) failures++;
    }
  })();
  try {
  const rot = await adminCall(cp, 'POST', '/v1/identity/keys/rotate');
  assert.equal(rot.status, 202, JSON.stringify(rot.json));
  const published = rot.json.published as string;
  const keys = await waitFor('the new key signing', async () => {
    const k = await adminCall(cp, 'GET', '/v1/identity/keys');
    return k.json.signing === published && k.json;
  }, 60_000, 500);
  assert.ok(keys.keys.includes(published));
  // Wait until the exchanged assertions inventory's app sees are signed with the new key (orders' snapshot has it).
  await waitFor('assertions signed with the new key', () => {
    const last = inventoryApp.seen.filter((x) => x.url === '/stock/9').at(-1);
    inventoryApp.seen.splice(0); // the app keeps only its first 2,000
    const hdr = last?.headers['x-lockgate-assertion'];
    return typeof hdr === 'string' && (JSON.parse(Buffer.from(hdr.split('.')[0], 'base64url').toString()) as { kid: string }).kid === published;
  }, 90_000, 200);
  } finally {
    ac.abort();
    await load;
  }
  assert.ok(calls > 5, `calls: ${calls}`);
  assert.equal(failures, 0, `${failures} of ${calls} calls failed during the rotation`);
});

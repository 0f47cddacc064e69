// Just-in-time access across processes (identity issue §4): a real OpenID provider, a control plane, a joined gateway
// (bearer tokens from the IdentityProvider, asserted to the mesh) and sidecars. bob is denied at inventory's sidecar;
// he asks with `lockgate access request` (his own token), alice approves with hers; within a second bob's calls pass
// at the sidecar; `lockgate access revoke` shuts him out again within a second; self-approval and non-approvers are refused.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import { OidcFixture, oidcProviderMissing } from './helpers/oidc-provider.ts';
import {
  HEAD, MeshWorld, adminCall, apply, joinToken, startApp, startControlPlane, startSidecar, waitFor,
  type AppServer, type Child, type ControlPlaneProc,
} from './helpers/mesh-processes.ts';

const TD = 'lockgate.local';
const EDGE = `spiffe://${TD}/ns/default/sa/edge`;
const API = 'https://api.local';

const world = new MeshWorld('lockgate-e2e-jit-');
let idp: OidcFixture;
let cp: ControlPlaneProc;
let gw: Child;
let gwPort = 0;
let ordersApp: AppServer;
let inventoryApp: AppServer;

after(async () => {
  await world.close();
  await idp?.close();
});

function config(issuer: string): string {
  return `${HEAD}
kind: Mesh
metadata: { name: default }
spec: { trustDomain: ${TD}, defaultAccess: deny }
---
${HEAD}
kind: MeshService
metadata: { name: orders, namespace: shop }
---
${HEAD}
kind: MeshService
metadata: { name: inventory, namespace: shop }
---
${HEAD}
kind: AccessPolicy
metadata: { name: orders-from-edge, namespace: shop }
spec:
  target: { service: orders }
  allow: [{ sources: ["${EDGE}"] }]
---
${HEAD}
kind: AccessPolicy
metadata: { name: inventory-access, namespace: shop }
spec:
  target: { service: inventory }
  allow:
    - { sources: [orders], groups: [orders-admins] }
    - { sources: [orders], grant: true }
  requests: { approvers: [orders-admins], maxDuration: 1h }
---
${HEAD}
kind: IdentityProvider
metadata: { name: corp }
spec: { issuer: ${issuer}, clientId: lockgate, audience: [${API}] }
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
spec: { path: /shop, backend: shop-orders, stripPath: true, authentication: { providers: [corp] } }
`;
}

const tokens: Record<string, string> = {};
function tokenFor(sub: string, groups: string[]): string {
  const now = Math.floor(Date.now() / 1000);
  return idp.sign({ typ: 'at+jwt' }, { iss: idp.issuer, aud: API, sub, email: `${sub}@example.com`, groups, iat: now, exp: now + 3600, client_id: 'lockgate' });
}

function call(token: string): Promise<{ status: number; inner: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: gwPort, path: '/shop/call/stock/1', headers: { authorization: `Bearer ${token}` }, agent: false }, (res) => {
      const c: Buffer[] = [];
      res.on('data', (d: Buffer) => c.push(d));
      res.on('end', () => {
        let inner = 0;
        try {
          inner = (JSON.parse(Buffer.concat(c).toString()) as { status: number }).status;
        } catch {
          inner = -1;
        }
        resolve({ status: res.statusCode ?? 0, inner });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** `lockgate access …` with a person's token, against the control plane's data dir. */
async function access(args: string[], token: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return world.cli(['access', ...args, '--data-dir', cp.dataDir, '--user-token', token]);
}

/** Polls every 25 ms until `ok`; returns how long it took (ms). */
async function within(what: string, ok: () => Promise<boolean>, limitMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await ok()) return performance.now() - t0;
    if (performance.now() - t0 > limitMs) throw new Error(`${what}: not within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

before(async () => {
  if (oidcProviderMissing) return;
  idp = await OidcFixture.start();
  tokens.alice = tokenFor('alice', ['orders-admins']);
  tokens.bob = tokenFor('bob', ['staff']);
  tokens.erin = tokenFor('erin', ['orders-admins']);
  cp = await startControlPlane(world, world.dir('cp'));
  await apply(world, cp, config(idp.issuer));
  let outbound = 0;
  ordersApp = await startApp(world, 'orders', (req, res) => {
    if (!req.url?.startsWith('/call/')) return false;
    const a = req.headers['x-lockgate-assertion'];
    const up = http.request({ host: '127.0.0.1', port: outbound, path: req.url.slice('/call'.length), headers: { host: 'inventory', ...(typeof a === 'string' ? { 'x-lockgate-assertion': a } : {}) }, agent: false }, (r) => {
      r.resume();
      r.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ status: r.statusCode })));
    });
    up.on('error', (err) => res.writeHead(502).end(err.message));
    up.end();
    return true;
  });
  inventoryApp = await startApp(world, 'inventory');
  const [tOrders, tInv] = await Promise.all([joinToken(world, cp, 'orders', 'shop'), joinToken(world, cp, 'inventory', 'shop')]);
  const [orders] = await Promise.all([
    startSidecar(world, { service: 'orders', namespace: 'shop', app: ordersApp.port, dataDir: world.dir('orders'), controlPlane: cp.url, token: tOrders }),
    startSidecar(world, { service: 'inventory', namespace: 'shop', app: inventoryApp.port, dataDir: world.dir('inventory'), controlPlane: cp.url, token: tInv }),
  ]);
  outbound = orders.outbound;
  const t2 = await world.cli(['token', 'create', '--service', 'edge', '-n', 'default', '--kind', 'gateway', '--data-dir', cp.dataDir, '--token', cp.token]);
  assert.equal(t2.code, 0, t2.stderr);
  gw = await world.spawn(['gateway', '--control-plane', cp.url, '--token', t2.stdout.trim(), '--data-dir', world.dir('gw'), '--admin-port', '0'], (l) => l.startsWith('{"event":"listening"'), 'gateway');
  gwPort = (JSON.parse(gw.stdout.find((l) => l.startsWith('{"event":"listening"'))!) as { ports: Record<string, number> }).ports.http;
  await waitFor('alice through to inventory', async () => (await call(tokens.alice)).inner === 200, 30_000, 200);
});

test('bob asks, alice approves: bob passes at inventory\'s sidecar within a second; revoked, he is out within a second', { skip: oidcProviderMissing }, async (t) => {
  assert.deepEqual(await call(tokens.bob), { status: 200, inner: 403 }, 'bob is denied at inventory (the gateway lets staff in)');
  // Not a request without a reason; not with an admin token.
  const noReason = await access(['request', '--service', 'inventory', '-n', 'shop'], tokens.bob);
  assert.equal(noReason.code, 1);
  assert.match(noReason.stderr, /--reason is required/);
  const asAdmin = await world.cli(['access', 'request', '--service', 'inventory', '-n', 'shop', '--reason', 'x', '--data-dir', cp.dataDir, '--token', cp.token]);
  assert.equal(asAdmin.code, 1);
  assert.match(asAdmin.stderr, /done by a person/);

  const req = await access(['request', '--service', 'inventory', '-n', 'shop', '--reason', 'incident 7: check stock', '--duration', '10m', '--method', 'GET', '--json'], tokens.bob);
  assert.equal(req.code, 0, req.stderr);
  const id = (JSON.parse(req.stdout) as { id: string; state: string }).id;
  assert.match(id, /^ar-[0-9a-f]{12}$/);

  // bob cannot approve his own request (he is not an approver either; the self check comes first).
  const self = await access(['approve', id], tokens.bob);
  assert.equal(self.code, 1);
  assert.match(self.stderr, /nobody reviews their own request/);
  const list = await access(['list', '--state', 'pending'], tokens.alice);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`${id}  pending`));
  assert.match(list.stdout, /requester  bob@example.com/);

  const approved = await access(['approve', id, '--comment', 'go ahead'], tokens.alice);
  assert.equal(approved.code, 0, approved.stderr);
  assert.match(approved.stdout, /approved \(active\)/);
  const inMs = await within('bob passing after the approval', async () => (await call(tokens.bob)).inner === 200, 1000);
  t.diagnostic(`grant effective at the sidecar ${Math.round(inMs)} ms after approve returned`);
  const show = await access(['show', id, '--json'], tokens.bob);
  const shown = JSON.parse(show.stdout) as { state: string; endsAt: string; reviews: Array<{ by: string }> };
  assert.equal(shown.state, 'approved');
  assert.deepEqual(shown.reviews.map((r) => r.by), ['alice']);
  assert.ok(Date.parse(shown.endsAt) - Date.now() > 9 * 60_000);

  const revoked = await access(['revoke', id, '--reason', 'done'], tokens.alice);
  assert.equal(revoked.code, 0, revoked.stderr);
  const outMs = await within('bob denied after the revocation', async () => (await call(tokens.bob)).inner === 403, 1000);
  t.diagnostic(`revocation effective at the sidecar ${Math.round(outMs)} ms after revoke returned`);

  // The audit trail has the request, the approval and the revocation, with actors.
  const audit = await adminCall(cp, 'GET', '/v1/audit?limit=100');
  const actions = (audit.json.records as Array<{ action: string; actor: string; target: string }>).filter((r) => r.target === `access-request/${id}`).map((r) => `${r.action} ${r.actor}`);
  assert.deepEqual(actions, ['access.request bob@example.com', 'access.approve alice@example.com', 'access.revoke alice@example.com']);
  // An approver's own request still needs someone else.
  const own = await access(['request', '--service', 'inventory', '-n', 'shop', '--reason', 'mine', '--json'], tokens.erin);
  const ownId = (JSON.parse(own.stdout) as { id: string }).id;
  const selfApprove = await access(['approve', ownId], tokens.erin);
  assert.equal(selfApprove.code, 1);
  assert.match(selfApprove.stderr, /nobody reviews their own request/);
  // A forged token (signed by another key) is refused by the control plane.
  const forged = tokens.bob.slice(0, tokens.bob.lastIndexOf('.') + 1) + Buffer.alloc(256, 1).toString('base64url');
  const bad = await access(['list'], forged);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /token is not valid/);
});

// Cross-process mesh: a control plane, sidecars joined with one-time tokens, config by `lockgate apply`; calls through
// the mesh, access policy in enforce, a change reaching every node, and an exact 90/10 version split (mesh.md §6.3 #1-3, #11).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import {
  HEAD, MeshWorld, adminCall, apply, callService, consistently, joinToken, meshDocs, startApp, startControlPlane, startSidecar, waitFor,
  type AppServer, type ControlPlaneProc, type SidecarProc,
} from './helpers/mesh-processes.ts';

const NS = 'shop';

const policy = (methods: string[]): string =>
  `${HEAD}\nkind: AccessPolicy\nmetadata: { name: inventory-readers, namespace: ${NS} }\nspec:\n  target: { service: inventory }\n  allow:\n    - { sources: [orders], methods: [${methods.join(', ')}] }\n`;

const world = new MeshWorld('lockgate-e2e-joined-');
let cp: ControlPlaneProc;
let orders: SidecarProc;
let inventory: SidecarProc[] = [];
let inventoryApps: AppServer[] = [];
let ordersApp: AppServer;

after(() => world.close());

/** Waits until the control plane's config version moved past `since` and every node ACKed it; returns it. */
async function converged(since: number, nodes: number): Promise<number> {
  return waitFor(`${nodes} nodes ACKing a config version after ${since}`, async () => {
    const r = await adminCall(cp, 'GET', '/v1/nodes');
    const v = r.json.configVersion as number;
    const acked = (r.json.nodes as Array<{ ackedVersion?: number; connected: boolean }>).filter((n) => n.connected && n.ackedVersion === v);
    return v > since && acked.length === nodes && v;
  }, 20_000, 100);
}

async function configVersion(): Promise<number> {
  return (await adminCall(cp, 'GET', '/v1/nodes')).json.configVersion as number;
}

before(async () => {
  cp = await startControlPlane(world, world.dir('cp'));
  await apply(world, cp, meshDocs({ namespace: NS, defaultAccess: 'deny', services: ['orders', 'inventory'], extra: [policy(['GET'])] }));

  // orders' app: GET /call/<path> calls inventory through its own sidecar's outbound, as an app in the mesh does.
  let outbound = 0;
  ordersApp = await startApp(world, 'orders', (req, res) => {
    if (!req.url?.startsWith('/call/')) return false;
    const up = http.request({ host: '127.0.0.1', port: outbound, path: req.url.slice('/call'.length), method: 'GET', headers: { host: 'inventory' }, agent: false }, (r) => {
      const chunks: Buffer[] = [];
      r.on('data', (c: Buffer) => chunks.push(c));
      r.on('end', () => {
        const text = JSON.stringify({ status: r.statusCode, body: JSON.parse(Buffer.concat(chunks).toString() || 'null') });
        res.writeHead(200, { 'content-type': 'application/json' }).end(text);
      });
    });
    up.on('error', (err) => res.writeHead(502).end(err.message));
    up.end();
    return true;
  });
  inventoryApps = [await startApp(world, 'inventory-v1'), await startApp(world, 'inventory-v2')];

  const [tOrders, tInv1, tInv2] = await Promise.all([joinToken(world, cp, 'orders', NS), joinToken(world, cp, 'inventory', NS), joinToken(world, cp, 'inventory', NS)]);
  [orders, ...inventory] = await Promise.all([
    startSidecar(world, { service: 'orders', namespace: NS, app: ordersApp.port, dataDir: world.dir('orders'), controlPlane: cp.url, token: tOrders }),
    startSidecar(world, { service: 'inventory', namespace: NS, app: inventoryApps[0].port, dataDir: world.dir('inventory-v1'), controlPlane: cp.url, token: tInv1, labels: { version: 'v1' } }),
    startSidecar(world, { service: 'inventory', namespace: NS, app: inventoryApps[1].port, dataDir: world.dir('inventory-v2'), controlPlane: cp.url, token: tInv2, labels: { version: 'v2' } }),
  ]);
  outbound = orders.outbound;
});

test('orders calls inventory through its sidecar: 200 from inventory\'s app, with a request id and a trace context', async () => {
  // The inventory endpoints reach orders' snapshot after they register: eventually consistent, then stable.
  await consistently('orders → inventory', () => callService(`http://127.0.0.1:${ordersApp.port}`, 'orders', '/call/items/7'), (r) => r.json?.status === 200, 20_000);
  const r = await callService(`http://127.0.0.1:${ordersApp.port}`, 'orders', '/call/items/7');
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.status, 200, r.text);
  assert.match(r.json.body.app, /^inventory-v[12]$/);
  assert.equal(r.json.body.url, '/items/7');
  const seen = [...inventoryApps[0].seen, ...inventoryApps[1].seen].filter((s) => s.url === '/items/7');
  assert.ok(seen.length > 0);
  for (const s of seen) {
    assert.match(String(s.headers['x-request-id']), /\S{8,}/, 'the request id travels to the app');
    assert.match(String(s.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/, 'a W3C trace context travels to the app');
  }
});

test('AccessPolicy in enforce: an unlisted method is 403 access_denied, and an applied change takes effect on every node', async () => {
  const denied = await callService(orders.origin, 'inventory', '/items/7', 'DELETE');
  assert.equal(denied.status, 403, denied.text);
  assert.equal(denied.json?.error?.code, 'access_denied', denied.text);
  const before = [...inventoryApps[0].seen, ...inventoryApps[1].seen].filter((s) => s.method === 'DELETE').length;
  assert.equal(before, 0, 'a denied call never reaches the app');

  // The change: DELETE allowed now, and the MeshService changed too, so every sidecar (not only inventory's) gets it.
  const v0 = await configVersion();
  const service = `${HEAD}\nkind: MeshService\nmetadata: { name: inventory, namespace: ${NS} }\nspec:\n  ports: [{ name: http, port: 80 }]\n  timeouts: { request: 5s }\n`;
  const started = Date.now();
  await apply(world, cp, [policy(['GET', 'DELETE']), service].join('---\n'));
  const took = await consistently('DELETE allowed after the apply', () => callService(orders.origin, 'inventory', '/items/7', 'DELETE'), (r) => r.status === 200, 15_000);
  assert.ok(Date.now() - started < 10_000, `the change took ${Date.now() - started} ms (3 consecutive 200s after ${took} ms)`);
  const v1 = await converged(v0, 3);
  const nodes = (await adminCall(cp, 'GET', '/v1/nodes')).json.nodes as Array<{ identity: { service: string }; ackedVersion: number }>;
  assert.deepEqual(nodes.map((n) => [n.identity.service, n.ackedVersion]).sort(), [['inventory', v1], ['inventory', v1], ['orders', v1]]);
  // And each sidecar says so itself: the version it serves, on its admin port.
  for (const s of [orders, ...inventory]) {
    const metrics = await (await fetch(`http://127.0.0.1:${s.admin}/metrics`)).text();
    assert.match(metrics, new RegExp(`^lockgate_config_version ${v1}$`, 'm'));
  }
  // GET still allowed, and another method still denied.
  assert.equal((await callService(orders.origin, 'inventory', '/items/7')).status, 200);
  const put = await callService(orders.origin, 'inventory', '/items/7', 'PUT');
  assert.equal(put.status, 403, put.text);
});

test('a MeshRoute splits 90/10 between inventory v1 and v2: 450/50 of 500 requests', async () => {
  const v0 = await configVersion();
  await apply(world, cp, `${HEAD}\nkind: MeshRoute\nmetadata: { name: inventory, namespace: ${NS} }\nspec:\n  service: inventory\n  rules:\n    - backends:\n        - { service: inventory, version: v1, weight: 90 }\n        - { service: inventory, version: v2, weight: 10 }\n`);
  await converged(v0, 3);
  const counts: Record<string, number> = {};
  let next = 0;
  const caller = async (): Promise<void> => {
    while (next < 500) {
      next++;
      const r = await callService(orders.origin, 'inventory', `/split/${next}`);
      const key = r.status === 200 ? String(r.json.app) : `status ${r.status}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: 10 }, caller));
  const v1 = counts['inventory-v1'] ?? 0;
  const v2 = counts['inventory-v2'] ?? 0;
  assert.equal(v1 + v2, 500, JSON.stringify(counts));
  // Gateway API's rule: each backend within ±5 % of its share; smooth weighted round-robin makes it exact.
  assert.ok(Math.abs(v1 - 450) <= 25 && Math.abs(v2 - 50) <= 25, JSON.stringify(counts));
  assert.deepEqual([v1, v2], [450, 50], `smooth WRR is exact: ${JSON.stringify(counts)}`);
});

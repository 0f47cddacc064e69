// Cross-process mesh: the control plane is killed — sidecars keep serving on their last snapshot, a sidecar restarted
// meanwhile serves from the one on disk — then it comes back on the same port and data dir and nodes converge (§6.3 #15).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  HEAD, MeshWorld, adminCall, apply, callService, consistently, joinToken, meshDocs, startApp, startControlPlane, startSidecar, waitFor,
  type AppServer, type ControlPlaneProc, type SidecarProc,
} from './helpers/mesh-processes.ts';

const NS = 'shop';

const world = new MeshWorld('lockgate-e2e-outage-');
let cp: ControlPlaneProc;
let orders: SidecarProc;
let inventory: SidecarProc;
let ordersApp: AppServer;
let inventoryApp: AppServer;

after(() => world.close());

before(async () => {
  cp = await startControlPlane(world, world.dir('cp'));
  await apply(world, cp, meshDocs({ namespace: NS, services: ['orders', 'inventory'] }));
  [ordersApp, inventoryApp] = await Promise.all([startApp(world, 'orders'), startApp(world, 'inventory')]);
  const [tOrders, tInv] = await Promise.all([joinToken(world, cp, 'orders', NS), joinToken(world, cp, 'inventory', NS)]);
  [orders, inventory] = await Promise.all([
    startSidecar(world, { service: 'orders', namespace: NS, app: ordersApp.port, dataDir: world.dir('orders'), controlPlane: cp.url, token: tOrders }),
    startSidecar(world, { service: 'inventory', namespace: NS, app: inventoryApp.port, dataDir: world.dir('inventory'), controlPlane: cp.url, token: tInv }),
  ]);
  await consistently('orders → inventory', () => callService(orders.origin, 'inventory', '/items/1'), (r) => r.status === 200, 20_000);
});

/** Calls orders → inventory every 50 ms for `ms`; returns the statuses that were not 200. */
async function steadily(ms: number): Promise<{ calls: number; bad: string[] }> {
  const bad: string[] = [];
  let calls = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    calls++;
    try {
      const r = await callService(orders.origin, 'inventory', `/steady/${calls}`);
      if (r.status !== 200) bad.push(`${r.status} ${r.text.slice(0, 200)}`);
    } catch (err) {
      bad.push((err as Error).message);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { calls, bad };
}

test('control plane killed: both sidecars keep serving, a restarted sidecar serves from its last snapshot, then all converge again', { timeout: 90_000 }, async () => {
  const { port, dataDir, token } = cp;
  await cp.child.kill(); // SIGKILL: no goodbye to the nodes

  // Both sidecars keep serving on their last snapshot.
  const during = await steadily(5000);
  assert.deepEqual(during.bad, [], `${during.bad.length} of ${during.calls} calls failed with the control plane down`);
  assert.ok(during.calls >= 20, `only ${during.calls} calls in 5 s`);

  // Both sidecars restarted while the control plane is down (inventory on its old inbound port, the address in orders'
  // snapshot): each starts from the snapshot and certificate on disk, no token needed, and serves.
  const invPort = inventory.inbound;
  assert.equal(await inventory.child.stop(), 0, `inventory drains and exits 0\n${inventory.child.tail()}`);
  inventory = await startSidecar(world, { service: 'inventory', namespace: NS, app: inventoryApp.port, dataDir: inventory.dataDir, controlPlane: cp.url, inbound: invPort });
  assert.equal(await orders.child.stop(), 0, `orders drains and exits 0\n${orders.child.tail()}`);
  orders = await startSidecar(world, { service: 'orders', namespace: NS, app: ordersApp.port, dataDir: orders.dataDir, controlPlane: cp.url });
  for (const s of [orders, inventory]) assert.ok(s.child.events.some((e) => e.event === 'serving_last_good_snapshot'), s.child.tail());
  await consistently('orders → inventory after both restarted without a control plane', () => callService(orders.origin, 'inventory', '/items/2'), (r) => r.status === 200, 10_000);
  const after = await steadily(1000);
  assert.deepEqual(after.bad, []);

  // The control plane comes back on the same port and data dir: the nodes reconnect, and a new apply reaches them.
  cp = await startControlPlane(world, dataDir, { port, token });
  assert.equal(cp.port, port);
  await waitFor('both nodes connected again', async () => {
    const nodes = (await adminCall(cp, 'GET', '/v1/nodes')).json.nodes as Array<{ connected: boolean }>;
    return nodes.filter((n) => n.connected).length === 2;
  }, 30_000, 200);
  const deny = `${HEAD}\nkind: AccessPolicy\nmetadata: { name: inventory-closed, namespace: ${NS} }\nspec:\n  target: { service: inventory }\n  deny:\n    - { paths: ["/closed/*"] }\n`;
  await apply(world, cp, deny);
  await consistently('the new policy served', () => callService(orders.origin, 'inventory', '/closed/1'), (r) => r.status === 403 && r.json?.error?.code === 'access_denied', 15_000);
  assert.equal((await callService(orders.origin, 'inventory', '/items/3')).status, 200);
  // Every node ACKed the config version the control plane has now.
  await waitFor('both nodes ACKing the new version', async () => {
    const r = await adminCall(cp, 'GET', '/v1/nodes');
    const nodes = r.json.nodes as Array<{ connected: boolean; ackedVersion?: number; identity: { service: string } }>;
    const inv = nodes.find((n) => n.identity.service === 'inventory');
    return nodes.every((n) => n.connected) && inv?.ackedVersion === r.json.configVersion;
  }, 15_000, 200);
});

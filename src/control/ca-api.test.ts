// Tests for the CA routes and the store-backed CA, over real loopback HTTPS with the node API and real ControlClients:
// root rotation pushed to nodes, finish refused while a node is on the old root (or forced), state saved and reloaded.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect as h2connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { ControlClient } from '../agent/control-client.ts';
import { CertificateAuthority } from '../ca/certificate-authority.ts';
import type { Snapshot } from '../model/snapshot.ts';
import { LocalKeyWrapper } from '../secrets/key-wrapper.ts';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import { CA_STATE_KEY, caApiRoutes, intermediateRenewalDue, nodesOnOldRoots, StoredCa, type CaChange } from './ca-api.ts';
import { ControlServer } from './control-server.ts';
import { openNodeApi, type NodeApi } from './node-api.ts';
import { bundleFingerprint, type NodeStatus } from './node-tracker.ts';

const TD = 'ca.test';
const ADMIN = 'admin-secret';
const CP_ID = `spiffe://${TD}/ns/lockgate-system/sa/control-plane`;
const DAY = 86_400_000;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are read field by field in assertions
type Json = any;

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Plane {
  url: string;
  store: MemoryConfigStore;
  wrapper: LocalKeyWrapper;
  stored: StoredCa;
  api: NodeApi;
  changes: CaChange[];
  /** An HTTP/2 request: as admin (bearer), as a node (client certificate), or anonymous. */
  call(method: string, path: string, o?: { body?: unknown; admin?: boolean; cert?: { chain: string; key: string } }): Promise<{ status: number; json: Json; text: string }>;
}

/** The pieces wired as the control plane wires them (reissuing its own certificate on every CA change). */
async function startPlane(t: TestContext, lifetimeMs: number): Promise<Plane> {
  const store = new MemoryConfigStore();
  const wrapper = new LocalKeyWrapper(randomBytes(32));
  const { stored, created } = await StoredCa.open({ store, wrapper, trustDomain: TD });
  assert.equal(created, true);
  const api = await openNodeApi({ store, ca: stored.view, heartbeatMs: 200, certificateLifetimeMs: () => lifetimeMs, log: () => {} });
  let own = await stored.ca.issueWithKey(CP_ID, 3600_000);
  const routes = [...api.routes, ...caApiRoutes({ ca: stored, nodes: () => api.tracker.list(), lifetimeMs: () => lifetimeMs, controlPlane: () => ({ notAfter: own.notAfter, issuedAt: own.notBefore + 60_000 }), log: () => {} })];
  const server = await ControlServer.listen({
    routes, trustDomain: TD, closeGraceMs: 200,
    tls: { cert: own.chainPem, key: own.keyPem, ca: stored.ca.trustBundle() },
    verifyAdminToken: async (token) => (token === ADMIN ? 'test-admin' : undefined),
    onError: (err) => process.stderr.write(`control plane error: ${(err as Error).stack}\n`),
  });
  const changes: CaChange[] = [];
  stored.onChange(async (change) => {
    changes.push(change);
    own = await stored.ca.issueWithKey(CP_ID, 3600_000);
    server.updateTls({ cert: own.chainPem, key: own.keyPem, ca: stored.ca.trustBundle() });
    api.compiler.trustBundleChanged();
  });
  t.after(async () => {
    await server.close();
    await api.close();
    await store.close();
  });
  const call: Plane['call'] = async (method, path, o = {}) => {
    const session = h2connect(server.url, { ca: stored.ca.trustBundle(), checkServerIdentity: () => undefined, ...(o.cert ? { cert: o.cert.chain, key: o.cert.key } : {}) });
    session.on('error', () => {});
    try {
      const text = o.body === undefined ? undefined : JSON.stringify(o.body);
      const req = session.request({ ':method': method, ':path': path, ...(o.admin ? { authorization: `Bearer ${ADMIN}` } : {}), ...(text ? { 'content-type': 'application/json' } : {}) });
      req.end(text);
      const [status, data] = await Promise.all([
        new Promise<number>((resolve, reject) => {
          req.once('response', (h) => resolve(Number(h[':status'])));
          req.once('error', reject);
        }),
        (async () => {
          const chunks: Buffer[] = [];
          for await (const c of req) chunks.push(c as Buffer);
          return Buffer.concat(chunks).toString();
        })(),
      ]);
      let json: Json;
      try {
        json = JSON.parse(data);
      } catch {
        json = undefined;
      }
      return { status, json, text: data };
    } finally {
      session.close();
    }
  };
  return { url: server.url, store, wrapper, stored, api, changes, call };
}

/** A ControlClient that records the snapshots it applied and its log events. */
async function joinNode(t: TestContext, p: Plane, service: string, nodeId: string) {
  const dir = await mkdtemp(join(tmpdir(), 'lg-ca-api-'));
  const applied: Snapshot[] = [];
  const events: string[] = [];
  const client = new ControlClient({
    url: p.url, dataDir: dir, reconnect: { initialMs: 50, maxMs: 300 }, heartbeatTimeoutMs: 2000,
    onSnapshot: async (s) => {
      applied.push(s);
      return { ok: true };
    },
    log: (event, fields) => events.push(`${event} ${JSON.stringify(fields)}`),
  });
  t.after(async () => {
    await client.close();
    await rm(dir, { recursive: true, force: true });
  });
  const token = await p.call('POST', '/v1/tokens', { admin: true, body: { service, namespace: 'shop', ttl: '10m' } });
  assert.equal(token.status, 201, token.text);
  await client.join(token.json.token, { node: nodeId });
  client.start();
  await waitFor('the first snapshot', () => applied.length > 0);
  return { client, applied, events, dir, last: (): Snapshot => applied.at(-1)! };
}

function activeRoot(p: Plane): string {
  return p.stored.ca.rotationStatus().roots.find((r) => r.active)!.fingerprint;
}

test('rotation: both roots pushed at start; finish refused while a node is on the old root, then forced; the state is saved and reloads', async (t) => {
  const p = await startPlane(t, 3600_000);
  const node = await joinNode(t, p, 'orders', 'orders-1');
  const oldRoot = activeRoot(p);
  assert.equal(node.last().trustBundle.length, 1);

  const shown = await p.call('GET', '/v1/ca', { admin: true });
  assert.equal(shown.status, 200);
  assert.deepEqual([shown.json.trustDomain, shown.json.rotation.phase, shown.json.roots.length, shown.json.nodesOnOldRoot], [TD, 'idle', 1, []]);
  assert.equal(shown.json.roots[0].fingerprint, oldRoot);
  assert.match(shown.json.roots[0].certPem, /BEGIN CERTIFICATE/);
  assert.equal(shown.json.bundleFingerprint, bundleFingerprint(p.stored.ca.trustBundle()));
  const tracked = p.api.tracker.get('orders-1')!;
  assert.equal(tracked.root, oldRoot, 'the tracker records the root the join certificate chains to');
  assert.equal(tracked.bundleFingerprint, shown.json.bundleFingerprint);
  assert.ok(tracked.certificateNotAfter! > Date.now() + 3000_000 && tracked.certificateIssuedAt! <= Date.now());
  const listed = await p.call('GET', '/v1/nodes', { admin: true });
  assert.equal(listed.json.nodes[0].root, oldRoot, 'GET /v1/nodes shows it');

  // Start: two roots, pushed to the node over its stream.
  const started = await p.call('POST', '/v1/ca/rotate/start', { admin: true });
  assert.equal(started.status, 200, started.text);
  assert.equal(started.json.rotation.phase, 'rotating');
  assert.deepEqual(started.json.roots.map((r: Json) => [r.fingerprint === oldRoot, r.active]), [[true, false], [false, true]]);
  assert.deepEqual(started.json.nodesOnOldRoot.map((n: Json) => n.id), ['orders-1']);
  const newRoot = activeRoot(p);
  await waitFor('a snapshot with both roots', () => node.last().trustBundle.length === 2);
  assert.deepEqual(node.last().trustBundle, p.stored.ca.trustBundle());
  await waitFor('the tracker to record the new bundle', () => p.api.tracker.get('orders-1')?.bundleFingerprint === started.json.bundleFingerprint);
  assert.deepEqual(p.changes, ['rotate-start']);
  assert.equal((await p.call('POST', '/v1/ca/rotate/start', { admin: true })).status, 409, 'one rotation at a time');
  // A node joining now, with a token made now, gets a certificate from the new root (and is not in anyone's way).
  const late = await joinNode(t, p, 'inventory', 'inventory-1');
  assert.equal(p.api.tracker.get('inventory-1')?.root, newRoot);
  assert.equal(late.last().trustBundle.length, 2);

  // Saved with both roots: a fresh load from the store sees the rotation.
  const saved = await CertificateAuthority.load((await p.store.get(CA_STATE_KEY))!.value, [p.wrapper]);
  assert.deepEqual(saved.trustBundle(), p.stored.ca.trustBundle());
  assert.equal(saved.rotationStatus().phase, 'rotating');

  // Finish: refused while orders-1 holds an old-root certificate; nothing changes.
  const refused = await p.call('POST', '/v1/ca/rotate/finish', { admin: true });
  assert.equal(refused.status, 409);
  assert.match(refused.json.error.message, /1 node still holds a certificate chaining to the old root.*orders-1 \(spiffe:\/\/ca\.test\/ns\/shop\/sa\/orders/);
  assert.deepEqual(refused.json.error.nodes.map((n: Json) => [n.id, n.root]), [['orders-1', oldRoot]]);
  assert.equal(p.stored.ca.trustBundle().length, 2);
  assert.equal((await p.call('POST', '/v1/ca/rotate/finish?force=maybe', { admin: true })).status, 400);

  // Forced: one root, pushed (over the stream already open), the node is named as cut off.
  const forced = await p.call('POST', '/v1/ca/rotate/finish?force=true', { admin: true });
  assert.equal(forced.status, 200, forced.text);
  assert.deepEqual(forced.json.roots.map((r: Json) => r.fingerprint), [newRoot]);
  assert.deepEqual(forced.json.cutOff.map((n: Json) => n.id), ['orders-1']);
  await waitFor('a snapshot with the new root only', () => node.last().trustBundle.length === 1);
  assert.deepEqual(node.last().trustBundle, p.stored.ca.trustBundle());
  // Its certificate chains to the retired root: from its next connection on, it is refused.
  await waitFor('the old-root node to be refused', () => /refused the stream: 401/.test(node.client.status.lastError ?? ''));
  assert.equal((await p.call('POST', '/v1/ca/rotate/finish', { admin: true })).status, 409, 'nothing to finish');

  // Reloadable: a second control plane on this store serves the same single root.
  const { stored: again, created } = await StoredCa.open({ store: p.store, wrapper: p.wrapper, trustDomain: TD });
  assert.equal(created, false);
  assert.deepEqual(again.ca.trustBundle(), p.stored.ca.trustBundle());
  assert.equal(again.ca.rotationStatus().phase, 'idle');
  assert.equal(again.revision, p.stored.revision);
  assert.deepEqual(p.changes, ['rotate-start', 'rotate-finish']);
});

test('rotation without force: the node renews onto the new root, finish is allowed, and the node stays connected', async (t) => {
  const p = await startPlane(t, 6_000);
  const node = await joinNode(t, p, 'orders', 'orders-1');
  const started = await p.call('POST', '/v1/ca/rotate/start', { admin: true });
  assert.equal(started.status, 200);
  const newRoot = activeRoot(p);
  const sinceStart = node.events.length;
  // 6-second certificates renew at about 3 s; the renewed one chains to the new root. Wait until the node has its
  // new certificate in place and has reconnected with it (the control plane records the root as soon as it issues).
  await waitFor('the node to renew onto the new root', () => p.api.tracker.get('orders-1')?.root === newRoot);
  await waitFor('the node to reconnect with its renewed certificate', () => {
    const renewedAt = node.events.findIndex((e, i) => i >= sinceStart && e.startsWith('renewed '));
    return renewedAt >= 0 && node.events.slice(renewedAt).some((e) => e.startsWith('connected ')) && node.client.status.connected;
  });
  assert.deepEqual((await p.call('GET', '/v1/ca', { admin: true })).json.nodesOnOldRoot, []);
  const connectedBefore = node.events.filter((e) => e.startsWith('connected ')).length;
  const sinceFinish = node.events.length;
  const finished = await p.call('POST', '/v1/ca/rotate/finish', { admin: true });
  assert.equal(finished.status, 200, finished.text);
  assert.equal(finished.json.cutOff, undefined);
  await waitFor('a snapshot with the new root only', () => node.last().trustBundle.length === 1 && node.last().trustBundle[0] === p.stored.ca.trustBundle()[0]);
  // The bundle changed, so the node reconnected: the control plane now presents a certificate from the new root.
  await waitFor('the node to reconnect', () => node.events.filter((e) => e.startsWith('connected ')).length > connectedBefore && node.client.status.connected);
  assert.deepEqual(node.events.slice(sinceFinish).filter((e) => /\b401\b|failed/.test(e)), [], 'never refused');
  const current = bundleFingerprint(p.stored.ca.trustBundle());
  await waitFor('the node to be tracked with the current bundle', () => p.api.tracker.get('orders-1')?.bundleFingerprint === current);
  assert.equal((await readFile(node.client.files.bundleFile, 'utf8')).trim(), p.stored.ca.trustBundle()[0].trim(), node.events.join('\n'));
});

test('intermediate renewal, the expiry gauge, auth, app addresses, and a lost compare-and-swap changing nothing', async (t) => {
  const p = await startPlane(t, 3600_000);
  assert.equal((await p.call('GET', '/v1/ca')).status, 401, 'admin only');
  assert.equal((await p.call('POST', '/v1/ca/rotate/start')).status, 401);

  const metrics = await p.call('GET', '/metrics');
  assert.equal(metrics.status, 200, 'no authentication for the gauge');
  const inter0 = p.stored.ca.intermediateInfo();
  const root0 = p.stored.ca.rotationStatus().roots[0];
  assert.ok(metrics.text.includes(`lockgate_certificate_expiry_timestamp_seconds{kind="root",fingerprint="${root0.fingerprint}",active="true"} ${root0.notAfter / 1000}\n`), metrics.text);
  assert.ok(metrics.text.includes(`lockgate_certificate_expiry_timestamp_seconds{kind="intermediate",fingerprint="${inter0.fingerprint}"} ${inter0.notAfter / 1000}\n`));
  assert.match(metrics.text, /^lockgate_certificate_expiry_timestamp_seconds\{kind="control-plane"\} \d+(\.\d+)?$/m);
  assert.match(metrics.text, /^# TYPE lockgate_certificate_expiry_timestamp_seconds gauge$/m);

  const renewed = await p.call('POST', '/v1/ca/intermediate/renew', { admin: true });
  assert.equal(renewed.status, 200, renewed.text);
  assert.notEqual(renewed.json.intermediate.fingerprint, inter0.fingerprint);
  assert.equal(renewed.json.intermediate.root, root0.fingerprint, 'same root, same bundle');
  assert.equal(p.stored.ca.trustBundle().length, 1);
  const saved = await CertificateAuthority.load((await p.store.get(CA_STATE_KEY))!.value, [p.wrapper]);
  assert.equal(saved.intermediateInfo().fingerprint, renewed.json.intermediate.fingerprint);

  // A node registers where its app listens; GET /v1/nodes shows it; a malformed one is refused.
  const node = await joinNode(t, p, 'inventory', 'inventory-1');
  const cert = { chain: await readFile(node.client.files.certFile, 'utf8'), key: await readFile(node.client.files.keyFile, 'utf8') };
  const put = await p.call('PUT', '/v1/endpoints', { cert, body: { node: 'inventory-1', address: '127.0.0.1:15001', app: { address: '127.0.0.1:8080', transport: 'tcp' } } });
  assert.equal(put.status, 200, put.text);
  const nodes = (await p.call('GET', '/v1/nodes', { admin: true })).json.nodes as NodeStatus[];
  assert.deepEqual(nodes.find((n) => n.id === 'inventory-1')?.app, { address: '127.0.0.1:8080', transport: 'tcp' });
  for (const app of [{ address: 'relative.sock', transport: 'unix' }, { address: '127.0.0.1', transport: 'tcp' }, { address: '/s', transport: 'udp' }, 'x']) {
    const bad = await p.call('PUT', '/v1/endpoints', { cert, body: { node: 'inventory-1', address: '127.0.0.1:15001', app } });
    assert.equal(bad.status, 400, JSON.stringify(app));
  }
  assert.equal((await p.call('PUT', '/v1/endpoints', { cert, body: { node: 'inventory-1', address: '127.0.0.1:15001', app: { address: '/run/inv.sock', transport: 'unix' } } })).status, 200);
  assert.deepEqual(p.api.tracker.get('inventory-1')?.app, { address: '/run/inv.sock', transport: 'unix' });

  // Someone else writes the state between our read and our write: ours is refused and nothing changes.
  const other = await CertificateAuthority.create({ trustDomain: TD });
  const before = p.stored.ca.intermediateInfo().fingerprint;
  await assert.rejects(p.stored.change('renew-intermediate', async (ca) => {
    await p.store.put(CA_STATE_KEY, await other.save(p.wrapper));
    await ca.renewIntermediate();
  }), (err: Error & { code?: string }) => err.code === 'conflict');
  assert.equal(p.stored.ca.intermediateInfo().fingerprint, before);
  // Following the store picks up the other state (a restore, another control plane).
  const ac = new AbortController();
  const following = p.stored.follow(ac.signal);
  await waitFor('the other state to be served', () => p.stored.ca.trustBundle()[0] === other.trustBundle()[0]);
  assert.equal(p.changes.at(-1), 'reload');
  assert.equal(p.stored.view.trustBundle()[0], other.trustBundle()[0], 'the view the node API holds follows');
  // A state of another trust domain is not served.
  const foreign = await CertificateAuthority.create({ trustDomain: 'elsewhere.test' });
  await p.store.put(CA_STATE_KEY, await foreign.save(p.wrapper));
  await assert.rejects(p.stored.refresh(), /trust domain "elsewhere\.test"/);
  assert.equal(p.stored.ca.trustDomain, TD);
  ac.abort();
  await following;
});

test('nodesOnOldRoots and intermediateRenewalDue', () => {
  const now = 1_000_000_000;
  const n = (id: string, o: Partial<NodeStatus>): NodeStatus => ({
    id, identity: { kind: 'sidecar', namespace: 'shop', service: id, spiffeId: `spiffe://t/ns/shop/sa/${id}` }, joinedAt: 0, connected: false, lastSeen: now, ...o,
  });
  const nodes = [
    n('on-new', { root: 'NEW', certificateNotAfter: now + 1000 }),
    n('on-old', { root: 'OLD', certificateNotAfter: now + 1000 }),
    n('old-expired', { root: 'OLD', certificateNotAfter: now }),
    n('unknown-recent', { lastSeen: now - 500 }),
    n('unknown-gone', { lastSeen: now - 5000 }),
    n('unknown-connected', { connected: true, lastSeen: now - 5000 }),
  ];
  assert.deepEqual(nodesOnOldRoots(nodes, 'NEW', now, 1000).map((h) => [h.id, h.root]), [['on-old', 'OLD'], ['unknown-recent', null], ['unknown-connected', null]]);

  const day = (d: number): number => now + d * DAY;
  const inter = (d: number, revoked = false) => ({ notAfter: day(d), revoked });
  assert.equal(intermediateRenewalDue(inter(31), day(3650), 3600_000, now), false);
  assert.equal(intermediateRenewalDue(inter(29), day(3650), 3600_000, now), true, 'under 30 days');
  assert.equal(intermediateRenewalDue(inter(29, true), day(3650), 3600_000, now), false, 'revoked: the operator decides');
  assert.equal(intermediateRenewalDue(inter(59), day(3650), 30 * DAY, now), true, 'under two leaf lifetimes');
  assert.equal(intermediateRenewalDue(inter(29), day(29), 3600_000, now), false, 'a new one could not outlive the root');
});

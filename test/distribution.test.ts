// Config distribution end to end, in one process over real loopback HTTPS: a real CA, the control plane's server with
// the node API, and ControlClients that join with tokens, stream snapshots, ACK/NACK, register, renew and reconnect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { connect as h2connect } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createInterface } from 'node:readline';
import { CertificateAuthority } from '../src/ca/certificate-authority.ts';
import { createKeyAndCsr } from '../src/ca/csr.ts';
import { spiffeIdOf } from '../src/ca/peer-identity.ts';
import { ControlClient, type ApplyResult } from '../src/agent/control-client.ts';
import { ControlServer } from '../src/control/control-server.ts';
import { EndpointRegistry } from '../src/control/registry.ts';
import { NodeStreams } from '../src/control/node-stream.ts';
import { NodeTracker, type NodeStatus } from '../src/control/node-tracker.ts';
import { SnapshotCompiler } from '../src/control/snapshot-compiler.ts';
import { nodeApiRoutes, openNodeApi, type NodeApi } from '../src/control/node-api.ts';
import { SNAPSHOT_SCHEMA } from '../src/model/snapshot.ts';
import { MemoryConfigStore } from '../src/store/memory-config-store.ts';
import type { NodeIdentity, Snapshot } from '../src/model/snapshot.ts';

const TD = 'mesh.test';
const ADMIN = 'admin-secret-token';

const doc = (kind: string, ns: string, name: string, spec: string): [string, string] =>
  [`/config/${kind}/${ns}/${name}`, `apiVersion: lockgate.dev/v1alpha1\nkind: ${kind}\nmetadata: { name: ${name}, namespace: ${ns} }\nspec:\n${spec}`];

async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- response bodies are read field by field in assertions
type Json = any;

/** A plain HTTP/2 call to the control plane, as an admin (bearer token) or anonymous. */
async function call(url: string, bundle: string[], method: string, path: string, body?: unknown, admin = false): Promise<{ status: number; headers: Record<string, unknown>; json: Json }> {
  const session = h2connect(url, { ca: bundle, checkServerIdentity: () => undefined });
  session.on('error', () => {});
  try {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = session.request({ ':method': method, ':path': path, ...(admin ? { authorization: `Bearer ${ADMIN}` } : {}), ...(text ? { 'content-type': 'application/json' } : {}) });
    req.end(text);
    const [headers, data] = await Promise.all([
      new Promise<Record<string, unknown>>((resolve, reject) => { req.once('response', resolve); req.once('error', reject); }),
      (async () => { const chunks: Buffer[] = []; for await (const c of req) chunks.push(c as Buffer); return Buffer.concat(chunks).toString(); })(),
    ]);
    return { status: Number(headers[':status']), headers, json: data ? JSON.parse(data) : undefined };
  } finally {
    session.close();
  }
}

interface Plane {
  url: string;
  port: number;
  api: Pick<NodeApi, 'registry' | 'tracker' | 'compiler' | 'streams'>;
  /** Snapshots of the future: the stream sends schema 2.0 while set. */
  futureSchema: { on: boolean; poke(): void };
  close(): Promise<void>;
}

/** The control plane's pieces as the app wires them, on a ControlServer; `port` to come back on the same address. */
async function startPlane(store: MemoryConfigStore, ca: CertificateAuthority, o: { port?: number; lifetimeMs?: number; manual?: boolean } = {}): Promise<Plane> {
  const own = await ca.issueWithKey(`spiffe://${TD}/ns/lockgate-system/sa/control-plane`, 3600_000);
  let api: Plane['api'];
  let closeApi: () => Promise<void>;
  let routes;
  const futureSchema = { on: false, poke: () => {} };
  if (o.manual) {
    // Wired by hand, so the stream can be made to send a snapshot of an unknown schema major.
    const registry = await EndpointRegistry.open({ store, graceMs: 2000 });
    const tracker = await NodeTracker.open({ store, flushDelayMs: 100 });
    const compiler = await SnapshotCompiler.open({ store, registry, trustBundle: () => ca.trustBundle() });
    const future = new WeakMap<Snapshot, Snapshot>();
    const listeners = new Set<() => void>();
    futureSchema.poke = () => listeners.forEach((l) => l());
    const view = {
      compile(id: NodeIdentity): Snapshot {
        const s = compiler.compile(id);
        if (!futureSchema.on) return s;
        if (!future.has(s)) future.set(s, { ...s, schema: '2.0', version: s.version + 1000 });
        return future.get(s)!;
      },
      onChange(l: () => void) {
        listeners.add(l);
        const off = compiler.onChange(l);
        return () => { listeners.delete(l); off(); };
      },
    };
    const streams = new NodeStreams({ compiler: view, registry, tracker, heartbeatMs: 200 });
    routes = nodeApiRoutes({ store, ca, registry, tracker, compiler, streams, certificateLifetimeMs: () => o.lifetimeMs ?? 3600_000, log: () => {} });
    api = { registry, tracker, compiler, streams };
    closeApi = async () => { streams.close(); compiler.close(); registry.close(); await tracker.close(); };
  } else {
    const opened = await openNodeApi({ store, ca, heartbeatMs: 200, endpointGraceMs: 2000, certificateLifetimeMs: o.lifetimeMs ? () => o.lifetimeMs! : undefined, log: () => {} });
    api = opened;
    routes = opened.routes;
    closeApi = () => opened.close();
  }
  const server = await ControlServer.listen({
    routes, port: o.port ?? 0, trustDomain: TD, closeGraceMs: 200,
    tls: { cert: own.chainPem, key: own.keyPem, ca: ca.trustBundle() },
    verifyAdminToken: async (t) => (t === ADMIN ? 'test-admin' : undefined),
    onError: (err) => process.stderr.write(`control plane error: ${(err as Error).stack}\n`),
  });
  return {
    url: server.url, port: server.port, api, futureSchema,
    async close() {
      await server.close();
      await closeApi();
    },
  };
}

async function newToken(p: Plane, bundle: string[], service: string, namespace = 'shop', kind = 'sidecar'): Promise<string> {
  const r = await call(p.url, bundle, 'POST', '/v1/tokens', { service, namespace, kind, ttl: '10m' }, true);
  assert.equal(r.status, 201, JSON.stringify(r.json));
  assert.equal(r.json.spiffeId, `spiffe://${TD}/ns/${namespace}/sa/${service}`);
  return r.json.token as string;
}

/** A node: a ControlClient whose onSnapshot records what it applied and refuses what `refuse` says. */
function node(url: string, dataDir: string, o: { refuse?: (s: Snapshot) => string | undefined; reconnectMaxMs?: number } = {}) {
  const applied: Snapshot[] = [];
  const certificates: number[] = [];
  const events: string[] = [];
  const client = new ControlClient({
    url, dataDir,
    reconnect: { initialMs: 50, maxMs: o.reconnectMaxMs ?? 300 },
    heartbeatTimeoutMs: 2000,
    validate: (s) => (s.config.includes('# BROKEN') ? ['line 4: this document is broken on purpose'] : []),
    onSnapshot: async (s): Promise<ApplyResult> => {
      const reason = o.refuse?.(s);
      if (reason) return { ok: false, reason };
      applied.push(s);
      return { ok: true };
    },
    onCertificate: () => void certificates.push(Date.now()),
    log: (event, fields) => events.push(`${event} ${JSON.stringify(fields)}`),
  });
  return { client, applied, certificates, events, last: () => applied.at(-1) };
}

function nodeStatus(p: Plane, id: string): NodeStatus | undefined {
  return p.api.tracker.get(id);
}

test('join with a token, stream snapshots, ACK and NACK, an unknown schema major, registration and drain', async (t) => {
  const store = new MemoryConfigStore();
  await store.putMany([
    doc('Mesh', 'default', 'default', `  trustDomain: ${TD}\n`),
    doc('MeshService', 'shop', 'orders', '  ports: [{ name: http, port: 8080 }]\n'),
    doc('MeshService', 'shop', 'inventory', '  ports: [{ name: http, port: 8080 }]\n'),
  ].map(([key, value]) => ({ key, value })));
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const bundle = ca.trustBundle();
  const plane = await startPlane(store, ca, { manual: true });
  const dirs = [await mkdtemp(join(tmpdir(), 'lg-dist-')), await mkdtemp(join(tmpdir(), 'lg-dist-'))];
  const orders = node(plane.url, dirs[0]);
  const inventory = node(plane.url, dirs[1]);
  t.after(async () => {
    await orders.client.close();
    await inventory.client.close();
    await plane.close();
    await store.close();
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  // Join: the identity comes from the token; key 0600; files in the cert dir.
  const joined = await orders.client.join(await newToken(plane, bundle, 'orders'), { node: 'orders-1', endpoint: { address: '127.0.0.1:15001', labels: { zone: 'a', version: 'v1' } } });
  assert.deepEqual([joined.nodeId, joined.spiffeId, joined.kind], ['orders-1', `spiffe://${TD}/ns/shop/sa/orders`, 'sidecar']);
  const files = orders.client.files;
  assert.equal((await stat(files.keyFile)).mode & 0o777, 0o600);
  assert.equal(spiffeIdOf(await readFile(files.certFile, 'utf8')), joined.spiffeId);
  assert.equal((await readFile(files.bundleFile, 'utf8')).trim(), bundle[0].trim());
  assert.deepEqual(plane.api.registry.endpoints('shop/orders').map((e) => [e.node, e.address, e.labels.zone]), [['orders-1', '127.0.0.1:15001', 'a']]);

  // The token is spent.
  const again = await call(plane.url, bundle, 'POST', '/v1/join', { token: 'lgj1.xxxxxxxxxxxx.' + 'y'.repeat(43) + '.' + 'z'.repeat(43), csr: (await createKeyAndCsr()).csrPem });
  assert.equal(again.status, 401);

  // The stream: the current snapshot at once, ACKed.
  orders.client.start();
  const first = await waitFor('the first snapshot', () => orders.last());
  assert.equal(first.node.spiffeId, joined.spiffeId);
  assert.match(first.config, /name: inventory/);
  assert.deepEqual(first.trustBundle, bundle);
  await waitFor('the ACK', () => nodeStatus(plane, 'orders-1')?.ackedVersion === first.version);
  assert.equal(nodeStatus(plane, 'orders-1')?.connected, true);
  assert.equal(nodeStatus(plane, 'orders-1')?.schema, SNAPSHOT_SCHEMA);

  // A store change: a new snapshot with the new revision.
  const w = await store.put(...doc('MeshService', 'shop', 'payments', '  ports: [{ name: http, port: 8080 }]\n'));
  const second = await waitFor('the second snapshot', () => orders.last()!.version === w.revision && orders.last());
  assert.match(second.config, /name: payments/);
  await waitFor('the second ACK', () => nodeStatus(plane, 'orders-1')?.ackedVersion === w.revision);

  // A burst of changes is coalesced, and the node converges on the last one.
  const before = orders.applied.length;
  let lastRev = 0;
  const burstStart = Date.now();
  for (let i = 0; i < 30; i++) {
    lastRev = (await store.put(...doc('MeshService', 'shop', `burst-${i}`, '  ports: [{ name: http, port: 8080 }]\n'))).revision;
    await new Promise((r) => setTimeout(r, 5)); // spread over time, so the stream (not the store watch) has to coalesce
  }
  const burstMs = Date.now() - burstStart;
  await waitFor('convergence after the burst', () => orders.last()!.version === lastRev);
  // At most one push per 50 ms (plus the leading one and the trailing one).
  assert.ok(orders.applied.length - before <= Math.ceil(burstMs / 50) + 2, `${orders.applied.length - before} snapshots for 30 changes in ${burstMs} ms`);
  assert.ok(orders.applied.length - before < 20, `${orders.applied.length - before} snapshots for 30 changes in ${burstMs} ms`);

  // A snapshot the node refuses: NACKed with the reason, the last good one kept (in memory and on disk).
  const good = orders.last()!;
  const bad = await store.put(...doc('AccessPolicy', 'shop', 'orders-broken', '  target: { service: orders }\n  # BROKEN\n'));
  await waitFor('the NACK', () => nodeStatus(plane, 'orders-1')?.lastAnswer?.version === bad.revision);
  const nack = nodeStatus(plane, 'orders-1')!.lastAnswer!;
  assert.equal(nack.ok, false);
  assert.match(nack.reason!, /line 4: this document is broken on purpose/);
  assert.match(nack.reason!, new RegExp(`keeping version ${good.version}`));
  assert.equal(nodeStatus(plane, 'orders-1')!.ackedVersion, good.version);
  assert.equal(orders.client.status.version, good.version);
  // On disk too (written after the ACK, at most once a second: the good one, never the refused one).
  await waitFor('the last good snapshot on disk', async () => JSON.parse(await readFile(join(dirs[0], 'snapshot.json'), 'utf8')).snapshot.version === good.version);
  const nodes = await call(plane.url, bundle, 'GET', '/v1/nodes', undefined, true);
  assert.match(nodes.json.policy, /schema major 1, any minor/);
  assert.equal(nodes.json.nodes.find((n: NodeStatus) => n.id === 'orders-1').lastAnswer.ok, false);
  assert.equal((await call(plane.url, bundle, 'GET', '/v1/nodes')).status, 401, 'the node list is for admins');
  await store.delete('/config/AccessPolicy/shop/orders-broken');
  const fixed = await waitFor('the fixed snapshot', () => nodeStatus(plane, 'orders-1')?.lastAnswer?.ok === true && nodeStatus(plane, 'orders-1')!.lastAnswer!.version > bad.revision && orders.last());

  // A snapshot of an unknown schema major: NACKed, the last good one kept.
  plane.futureSchema.on = true;
  plane.futureSchema.poke();
  await waitFor('the schema NACK', () => nodeStatus(plane, 'orders-1')?.lastAnswer?.version === fixed.version + 1000);
  assert.match(nodeStatus(plane, 'orders-1')!.lastAnswer!.reason!, /unsupported snapshot schema "2.0": this node reads schema 1.x/);
  assert.equal(orders.last(), fixed);
  assert.equal(orders.client.status.version, fixed.version);
  plane.futureSchema.on = false;
  plane.futureSchema.poke();

  // Another node sees orders' endpoint; orders drains (deregisters first) and it disappears from inventory's snapshot.
  await inventory.client.join(await newToken(plane, bundle, 'inventory'), { node: 'inventory-1' });
  inventory.client.start();
  const inv = await waitFor('inventory\'s snapshot', () => inventory.last());
  assert.deepEqual(inv.endpoints['shop/orders'].map((e) => [e.node, e.address, e.spiffeId]), [['orders-1', '127.0.0.1:15001', joined.spiffeId]]);
  assert.equal(await orders.client.deregister(), true);
  await waitFor('the endpoint gone from inventory\'s snapshot', () => inventory.last()!.endpoints['shop/orders'] === undefined);
  assert.equal(inventory.last()!.version, inv.version, 'an endpoint change keeps the config version');
  assert.ok(inventory.last()!.endpointsVersion > inv.endpointsVersion);

  // A node may speak only for its own node id.
  const stolen = await new Promise<number>((resolve, reject) => {
    void readFile(inventory.client.files.keyFile, 'utf8').then(async (key) => {
      const cert = await readFile(inventory.client.files.certFile, 'utf8');
      const s = h2connect(plane.url, { ca: bundle, cert, key, checkServerIdentity: () => undefined });
      s.on('error', reject);
      const req = s.request({ ':method': 'GET', ':path': '/v1/stream?node=orders-1' });
      req.on('response', (h) => { resolve(Number(h[':status'])); s.destroy(); });
      req.on('error', reject);
      req.end();
    }, reject);
  });
  assert.equal(stolen, 403);
});

test('joins are rate-limited, and the SPIFFE ID never comes from the CSR', async (t) => {
  const store = new MemoryConfigStore();
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const bundle = ca.trustBundle();
  const plane = await startPlane(store, ca);
  t.after(async () => {
    await plane.close();
    await store.close();
  });
  // A CSR asking for another identity gets the token's identity.
  const { x509 } = await import('../src/ca/ca-crypto.ts');
  const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=admin', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${TD}/ns/lockgate-system/sa/operator` }])],
  });
  const token = await newToken(plane, bundle, 'orders');
  const r = await call(plane.url, bundle, 'POST', '/v1/join', { token, csr: csr.toString('pem'), node: 'o-1' });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(spiffeIdOf(r.json.certificate), `spiffe://${TD}/ns/shop/sa/orders`);
  assert.ok(new X509Certificate(r.json.certificate).checkIssued(new X509Certificate(r.json.certificate.split(/(?<=-----END CERTIFICATE-----\n)/)[1])));
  // Beyond the per-address burst: 429 with a JSON error and Retry-After.
  const statuses: number[] = [];
  let limited: Awaited<ReturnType<typeof call>> | undefined;
  for (let i = 0; i < 30; i++) {
    const x = await call(plane.url, bundle, 'POST', '/v1/join', { token: 'nope', csr: 'nope' });
    statuses.push(x.status);
    if (x.status === 429) limited ??= x;
  }
  assert.ok(statuses.includes(400), 'the first ones are answered');
  assert.ok(limited, `statuses: ${statuses.join(',')}`);
  assert.equal(limited.json.error.code, 'too_many_requests');
  assert.ok(Number(limited.headers['retry-after']) >= 1);
  // A node that meets the limit waits as told and joins (a limited request does not spend its token).
  const dir = await mkdtemp(join(tmpdir(), 'lg-dist-'));
  const n = node(plane.url, dir);
  t.after(async () => {
    await n.client.close();
    await rm(dir, { recursive: true, force: true });
  });
  const tok = await newToken(plane, bundle, 'inventory');
  for (let i = 0; i < 25; i++) await call(plane.url, bundle, 'POST', '/v1/join', { token: 'nope', csr: 'nope' });
  assert.equal((await n.client.join(tok)).service, 'inventory');
});

test('the control plane stops: the node keeps its snapshot, restarts from disk; the control plane returns: it reconnects and converges', async (t) => {
  const store = new MemoryConfigStore();
  await store.putMany([doc('MeshService', 'shop', 'orders', '  ports: [{ name: http, port: 8080 }]\n')].map(([key, value]) => ({ key, value })));
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const bundle = ca.trustBundle();
  let plane = await startPlane(store, ca);
  const port = plane.port;
  const dir = await mkdtemp(join(tmpdir(), 'lg-dist-'));
  let n = node(plane.url, dir);
  t.after(async () => {
    await n.client.close();
    await plane.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  await n.client.join(await newToken(plane, bundle, 'orders'), { node: 'orders-1' });
  n.client.start();
  const v1 = await waitFor('the first snapshot', () => n.last());
  await waitFor('the ACK', () => nodeStatus(plane, 'orders-1')?.ackedVersion === v1.version);

  await plane.close();
  await waitFor('the node to notice', () => !n.client.status.connected);
  assert.equal(n.last(), v1, 'still on its snapshot');
  const w = await store.put(...doc('MeshService', 'shop', 'inventory', '  ports: [{ name: http, port: 8080 }]\n'));

  // The node restarts while the control plane is down: it starts from the snapshot on disk.
  await n.client.close();
  n = node(`https://127.0.0.1:${port}`, dir);
  assert.equal(await n.client.load(), true);
  const fromDisk = await n.client.loadLastGood();
  assert.deepEqual(fromDisk, v1);
  n.client.start();
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(n.client.status.connected, false);
  assert.match(n.client.status.lastError ?? '', /ECONNREFUSED|connect/);

  // The control plane comes back on the same address: the node reconnects and converges on the new version.
  plane = await startPlane(store, ca, { port });
  const v2 = await waitFor('the new snapshot', () => n.last()?.version === w.revision && n.last());
  assert.match(v2.config, /name: inventory/);
  await waitFor('the ACK to the new control plane', () => nodeStatus(plane, 'orders-1')?.ackedVersion === w.revision);
  // The file is written after the ACK (off the path to serving), and follows it.
  const onDisk = async (): Promise<number> => JSON.parse(await readFile(join(dir, 'snapshot.json'), 'utf8')).snapshot.version;
  for (let i = 0; i < 100 && (await onDisk()) !== w.revision; i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(await onDisk(), w.revision);
});

test('a 10-second certificate is renewed at half life; the stream moves to the new certificate', async (t) => {
  const store = new MemoryConfigStore();
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const bundle = ca.trustBundle();
  const plane = await startPlane(store, ca, { lifetimeMs: 10_000 });
  const dir = await mkdtemp(join(tmpdir(), 'lg-dist-'));
  const n = node(plane.url, dir);
  t.after(async () => {
    await n.client.close();
    await plane.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const joinedAt = Date.now();
  await n.client.join(await newToken(plane, bundle, 'orders'), { node: 'orders-1' });
  const firstCert = new X509Certificate(await readFile(n.client.files.certFile, 'utf8'));
  const firstKey = await readFile(n.client.files.keyFile, 'utf8');
  assert.ok(Date.parse(firstCert.validTo) - joinedAt <= 11_000);
  n.client.start();
  await waitFor('the first snapshot', () => n.last());
  await waitFor('the renewal', () => n.certificates.length > 0, 9000);
  const after = Date.now() - joinedAt;
  assert.ok(after >= 4000 && after <= 6500, `renewed ${after} ms after the join (half of 10 s ± 10 %)`);
  const renewed = new X509Certificate(await readFile(n.client.files.certFile, 'utf8'));
  assert.notEqual(renewed.serialNumber, firstCert.serialNumber);
  assert.notEqual(await readFile(n.client.files.keyFile, 'utf8'), firstKey, 'a new key with each certificate');
  assert.equal(spiffeIdOf(renewed.toString()), `spiffe://${TD}/ns/shop/sa/orders`);
  assert.ok(Date.parse(renewed.validTo) > Date.parse(firstCert.validTo));
  assert.equal(n.client.status.certificateNotAfter, Date.parse(renewed.validTo));
  // The stream works over a connection made with the new certificate.
  const w = await store.put(...doc('MeshService', 'shop', 'after-renewal', '  ports: [{ name: http, port: 8080 }]\n'));
  await waitFor('a snapshot after the renewal', () => n.last()!.version === w.revision);
  await waitFor('its ACK', () => nodeStatus(plane, 'orders-1')?.ackedVersion === w.revision);
});

test('`lockgate token create` prints a token a node can join with, once', async (t) => {
  const store = new MemoryConfigStore();
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const plane = await startPlane(store, ca);
  const dir = await mkdtemp(join(tmpdir(), 'lg-dist-'));
  const n = node(plane.url, join(dir, 'node'));
  t.after(async () => {
    await n.client.close();
    await plane.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, ca.trustBundle().join('\n'));
  const bin = new URL('../bin/lockgate.mjs', import.meta.url).pathname;
  const args = [bin, 'token', 'create', '--service', 'edge', '-n', 'infra', '--kind', 'gateway', '--ttl', '5m', '--control-plane', plane.url, '--ca-file', caFile];
  const refused = await promisify(execFile)(process.execPath, [...args, '--token', 'wrong'], { timeout: 20_000 }).then(() => 0, (e: { code: number; stderr: string }) => (assert.match(e.stderr, /token/), e.code));
  assert.equal(refused, 1);
  const { stdout, stderr } = await promisify(execFile)(process.execPath, [...args, '--token', ADMIN], { timeout: 20_000 });
  assert.match(stdout, /^lgj1\.[\w-]+\.[\w-]+\.[\w-]{43}\n$/);
  assert.match(stderr, new RegExp(`spiffe://${TD}/ns/infra/sa/edge \\(gateway\\)`));
  const joined = await n.client.join(stdout.trim());
  assert.deepEqual([joined.kind, joined.namespace, joined.service], ['gateway', 'infra', 'edge']);
  await assert.rejects(n.client.join(stdout.trim()), /401/);
});

test('after the first snapshot, a node that asks for deltas gets the changed documents only, and they rebuild the whole snapshot', async (t) => {
  const store = new MemoryConfigStore();
  const big = '  ports: [{ name: http, port: 8080 }]\n  # ' + 'x'.repeat(4000) + '\n';
  await store.putMany([
    doc('Mesh', 'default', 'default', `  trustDomain: ${TD}\n`),
    ...Array.from({ length: 20 }, (_, i) => doc('MeshService', 'shop', `svc-${i}`, big)),
  ].map(([key, value]) => ({ key, value })));
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const bundle = ca.trustBundle();
  const plane = await startPlane(store, ca);
  const dir = await mkdtemp(join(tmpdir(), 'lg-dist-'));
  const n = node(plane.url, dir);
  const sessions: Array<ReturnType<typeof h2connect>> = [];
  t.after(async () => {
    for (const s of sessions) s.destroy();
    await n.client.close();
    await plane.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  await n.client.join(await newToken(plane, bundle, 'orders'), { node: 'orders-1' });
  const cert = await readFile(n.client.files.certFile, 'utf8');
  const key = await readFile(n.client.files.keyFile, 'utf8');
  /** The raw NDJSON lines of one stream. */
  const open = (query: string): { lines: Array<Record<string, unknown>>; bytes: number[] } => {
    const s = h2connect(plane.url, { ca: bundle, cert, key, checkServerIdentity: () => undefined });
    sessions.push(s);
    s.on('error', () => {});
    const out = { lines: [] as Array<Record<string, unknown>>, bytes: [] as number[] };
    const req = s.request({ ':method': 'GET', ':path': `/v1/stream?node=orders-1&schema=1.0${query}` });
    // Streams are cut when the test ends: their errors (forwarded by readline too) are expected.
    createInterface({ input: req, crlfDelay: Infinity }).on('line', (text) => {
      const line = JSON.parse(text);
      // Heartbeats can come between snapshots: bytes[i] is the size of lines[i].
      if (line.type === 'heartbeat') return;
      out.lines.push(line);
      out.bytes.push(Buffer.byteLength(text));
    }).on('error', () => {});
    req.on('error', () => {});
    req.end();
    return out;
  };
  const withDelta = open('&delta=1');
  const whole = open('');
  await waitFor('the first snapshots', () => withDelta.lines.length === 1 && whole.lines.length === 1);
  assert.equal(withDelta.lines[0].type, 'snapshot', 'a stream starts with a whole snapshot');
  // One document changes.
  const w = await store.put(...doc('MeshService', 'shop', 'svc-7', big.replace('8080', '9090')));
  await waitFor('the change on both streams', () => withDelta.lines.length === 2 && whole.lines.length === 2);
  assert.equal(whole.lines[1].type, 'snapshot', 'a stream that did not ask gets whole snapshots');
  const next = whole.lines[1].snapshot as Snapshot;
  assert.equal(next.version, w.revision);
  const delta = withDelta.lines[1];
  assert.equal(delta.type, 'delta');
  const d = delta.delta as { docs: Array<number | string> };
  assert.equal(d.docs.filter((x) => typeof x === 'string').length, 1, 'only the changed document travels');
  assert.ok(withDelta.bytes[1] * 10 < whole.bytes[1], `delta ${withDelta.bytes[1]} bytes, whole ${whole.bytes[1]}`);
  const { applySnapshotDelta, configDocs } = await import('../src/model/snapshot-delta.ts');
  const base = withDelta.lines[0].snapshot as Snapshot;
  const built = applySnapshotDelta(base, configDocs(base.config), delta.delta as never);
  assert.ok(typeof built !== 'string', String(built));
  assert.deepEqual(built.snapshot, next);
  assert.deepEqual(JSON.parse(built.json().join('')), next, 'the JSON a node saves is that snapshot');

  // The ControlClient asks for deltas: it applies the same snapshot, and saves the same file, as from a whole one.
  n.client.start();
  await waitFor('the client on the current version', () => n.last()?.version === w.revision);
  const w2 = await store.put(...doc('MeshService', 'shop', 'svc-3', big.replace('8080', '7070')));
  const applied = await waitFor('the client on the next version (a delta)', () => n.last()?.version === w2.revision && n.last());
  const expected = await waitFor('the whole stream on it too', () => whole.lines.find((l) => (l.snapshot as Snapshot | undefined)?.version === w2.revision)?.snapshot as Snapshot | undefined);
  assert.deepEqual(applied, expected);
  await waitFor('the file', async () => JSON.parse(await readFile(join(dir, 'snapshot.json'), 'utf8')).snapshot.version === w2.revision);
  assert.deepEqual(JSON.parse(await readFile(join(dir, 'snapshot.json'), 'utf8')).snapshot, expected);
});

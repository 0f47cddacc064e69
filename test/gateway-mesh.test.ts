// The gateway joined to the mesh, across processes: an in-process control plane and sidecars, the real
// `lockgate gateway --control-plane` as a child process calling a mesh Backend over mTLS with its own identity.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Agent, request } from 'undici';
import { ControlPlane } from '../src/app/control-plane.ts';
import { SqliteConfigStore } from '../src/store/sqlite-config-store.ts';
import { GatewaySupervisor } from '../src/app/gateway-supervisor.ts';
import { formatProblems } from '../src/model/load-config.ts';
import { parseCheckedConfig } from '../src/policy/load-checked.ts';
import { startJoinedSidecar, type JoinedSidecar } from '../src/app/sidecar-node.ts';
import { checkServerSpiffeId } from '../src/ca/peer-identity.ts';
import type { NodeStatus } from '../src/control/node-tracker.ts';
import type { Exchange } from '../src/proxy/exchange.ts';
import type { AccessDecisionEvent } from '../src/telemetry/channels.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';

const BIN = resolve(import.meta.dirname, '../bin/lockgate.mjs');
const ENV: Record<string, string> = Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => !e[0].startsWith('LOCKGATE_') && e[1] !== undefined));
ENV.NODE_COMPILE_CACHE = resolve(import.meta.dirname, '../.cache/node');

const TD = 'lockgate.local';
const EDGE_ID = `spiffe://${TD}/ns/default/sa/edge`;
const H = 'apiVersion: lockgate.dev/v1alpha1';
const CONFIG = `${H}
kind: Mesh
metadata: { name: default }
spec: { defaultAccess: deny }
---
${H}
kind: MeshService
metadata: { name: orders, namespace: shop }
spec:
  ports: [{ name: http, port: 80, protocol: http }]
  retries: { attempts: 2 }
---
${H}
kind: MeshService
metadata: { name: client, namespace: shop }
spec:
  ports: [{ name: http, port: 80, protocol: http }]
---
${H}
kind: AccessPolicy
metadata: { name: orders-from-edge, namespace: shop }
spec:
  target: { service: orders }
  allow:
    - sources: ["${EDGE_ID}"]
---
${H}
kind: Gateway
metadata: { name: edge }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  accessLog: { enabled: false }
---
${H}
kind: Backend
metadata: { name: orders }
spec:
  type: mesh
  meshService: shop/orders
---
${H}
kind: Api
metadata: { name: orders }
spec:
  path: /orders
  backend: orders
`;

const children = new Set<ChildProcess>();
const root = mkdtempSync(join(tmpdir(), 'lockgate-gwmesh-'));
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

interface GatewayChild {
  proc: ChildProcess;
  port: number;
  admin: number;
  stderr: string[];
  stop(): Promise<void>;
}

/** `lockgate gateway --control-plane …` as a child process; resolves at its listening line. */
async function startGateway(args: string[], joined = true): Promise<GatewayChild> {
  const proc = spawn(process.execPath, [BIN, 'gateway', '--admin-port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: ENV });
  children.add(proc);
  const stderr: string[] = [];
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => stderr.push(c));
  const started = await new Promise<{ ports: Record<string, number>; admin: number; spiffeId: string }>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`the gateway did not start in time; stderr:\n${stderr.join('')}`)), 30_000);
    createInterface({ input: proc.stdout!, crlfDelay: Infinity }).on('line', (line) => {
      if (line.startsWith('{"event":"listening"')) {
        clearTimeout(timer);
        ok(JSON.parse(line));
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`the gateway exited with ${code}; stderr:\n${stderr.join('')}`));
    });
  }).catch((err: unknown) => {
    proc.kill('SIGKILL');
    throw err;
  });
  if (joined) assert.equal(started.spiffeId, EDGE_ID, 'the gateway joined with its own identity');
  return {
    proc, port: started.ports.http, admin: started.admin, stderr,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = once(proc, 'exit');
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

interface Mesh {
  cp: ControlPlane;
  /** POST a YAML body to /v1/config:apply. */
  apply(yaml: string): Promise<{ status: number; json: Record<string, unknown> }>;
  /** GET an admin path as JSON. */
  get(path: string): Promise<Record<string, unknown>>;
  token(service: string, namespace: string, kind: string): Promise<string>;
  sidecar(service: string, app: Upstream): Promise<JoinedSidecar>;
  app(): Promise<Upstream>;
  close(): Promise<void>;
}

/** A control plane with CONFIG applied (its Mesh spec replaced by `meshSpec`), and sidecars and apps closed with it. */
async function startMesh(meshSpec = '{ defaultAccess: deny }'): Promise<Mesh> {
  const lines: string[] = [];
  const cp = await ControlPlane.start({ dataDir: mkdtempSync(join(root, 'cp-')), host: '127.0.0.1', port: 0, version: 'test', env: {}, out: (l) => lines.push(l), log: () => {} });
  const bootstrap = /bootstrap admin token[^:]*: (\S+)$/.exec(lines.find((l) => l.startsWith('bootstrap admin token')) ?? '')?.[1];
  const agent = new Agent({ connect: { ca: readFileSync(cp.info.caFile), checkServerIdentity: checkServerSpiffeId([cp.info.spiffeId]) } });
  const apps: Upstream[] = [];
  const sidecars: JoinedSidecar[] = [];
  const call = async (path: string, body: string, type: string): Promise<{ status: number; json: Record<string, unknown> }> => {
    const r = await request(`${cp.url}${path}`, { method: 'POST', body, dispatcher: agent, headers: { authorization: `Bearer ${bootstrap}`, 'content-type': type }, headersTimeout: 10_000 });
    return { status: r.statusCode, json: (await r.body.json()) as Record<string, unknown> };
  };
  const mesh: Mesh = {
    cp,
    apply: (yaml) => call('/v1/config:apply', yaml, 'application/yaml'),
    async get(path) {
      const r = await request(`${cp.url}${path}`, { dispatcher: agent, headers: { authorization: `Bearer ${bootstrap}` }, headersTimeout: 10_000 });
      return (await r.body.json()) as Record<string, unknown>;
    },
    async token(service, namespace, kind) {
      const r = await call('/v1/tokens', JSON.stringify({ service, namespace, kind, ttl: '10m' }), 'application/json');
      assert.equal(r.status, 201, JSON.stringify(r.json));
      return r.json.token as string;
    },
    async sidecar(service, app) {
      const [ns, name] = service.split('/');
      const s = await startJoinedSidecar({
        service, appUrl: app.url, dataDir: mkdtempSync(join(root, `${name}-`)), controlPlane: cp.url, token: await mesh.token(name, ns, 'sidecar'),
        inbound: { address: '127.0.0.1', port: 0 }, outbound: { address: '127.0.0.1', port: 0 }, labels: {}, accessLog: 'off', drainMs: 200, log: () => {},
      });
      sidecars.push(s);
      return s;
    },
    async app() {
      const a = await startUpstream();
      apps.push(a);
      return a;
    },
    async close() {
      await Promise.all(sidecars.map((s) => s.stop()));
      await Promise.all(apps.map((a) => a.close()));
      await cp.close();
      await agent.close();
    },
  };
  try {
    assert.ok(bootstrap, lines.join('\n'));
    const applied = await mesh.apply(CONFIG.replace('{ defaultAccess: deny }', meshSpec));
    assert.equal(applied.status, 200, JSON.stringify(applied.json));
  } catch (err) {
    await mesh.close();
    throw err;
  }
  return mesh;
}

const viaGateway = async (gw: GatewayChild, path: string): Promise<{ status: number; body: string }> => {
  const r = await request(`http://127.0.0.1:${gw.port}${path}`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  return { status: r.statusCode, body: await r.body.text() };
};

interface ShownBackend {
  spec: { endpoints: Array<{ url: string }>; tls: { spiffeIds: string[]; certFile: string; generation: string }; retries: { attempts: number } };
}

async function shownBackend(gw: GatewayChild, key: string): Promise<ShownBackend['spec']> {
  const r = await request(`http://127.0.0.1:${gw.admin}/config`);
  return ((await r.body.json()) as { backends: Record<string, ShownBackend> }).backends[key].spec;
}

test('the gateway calls a mesh Backend over mTLS as itself, follows endpoint changes, and restarts from its last good snapshot', { timeout: 120_000 }, async () => {
  const seenByInbound: Array<{ api: string; peerId: string; status: number }> = [];
  const onEnd = (m: unknown): void => {
    const ex = m as Exchange;
    if (ex.listener === 'inbound') seenByInbound.push({ api: ex.api, peerId: ex.peerId, status: ex.status });
  };
  const denials: AccessDecisionEvent[] = [];
  const onDecision = (m: unknown): void => void denials.push(m as AccessDecisionEvent);
  diagnostics.subscribe('lockgate:request:end', onEnd);
  diagnostics.subscribe('lockgate:access:decision', onDecision);
  const mesh = await startMesh();
  let gw: GatewayChild | undefined;
  try {
    const gwDir = join(root, 'gateway');
    gw = await startGateway(['--control-plane', mesh.cp.url, '--token', await mesh.token('edge', 'default', 'gateway'), '--data-dir', gwDir]);

    // No endpoint registered yet: a fast 503, no hang.
    const t0 = performance.now();
    const empty = await viaGateway(gw, '/orders/1');
    assert.equal(empty.status, 503, empty.body);
    assert.ok(performance.now() - t0 < 2000, `503 took ${(performance.now() - t0).toFixed(0)} ms`);

    const app1 = await mesh.app();
    const orders1 = await mesh.sidecar('shop/orders', app1);
    // The registration reaches the gateway as a new snapshot: no restart.
    const first = await waitFor('the gateway to reach orders', async () => {
      const r = await viaGateway(gw!, '/orders/items/7');
      return r.status === 200 ? r : undefined;
    });
    assert.equal((JSON.parse(first.body) as { url: string }).url, '/orders/items/7');
    assert.ok(app1.seen.some((s) => s.url === '/orders/items/7'), 'the app saw the request');
    const inbound = seenByInbound.filter((s) => s.status === 200);
    assert.ok(inbound.length > 0, 'the sidecar inbound served it');
    assert.deepEqual([...new Set(inbound.map((s) => s.peerId))], [EDGE_ID], 'over mTLS, with the gateway\'s SPIFFE ID as the caller');

    // Another workload is refused by the same AccessPolicy (only the gateway's identity is allowed).
    const client = await mesh.sidecar('shop/client', await mesh.app());
    const before = app1.seen.length;
    const direct = await waitFor('a routed direct call', async () => {
      const r = await request(`http://127.0.0.1:${client.sidecar.ports.outbound}/orders/items/7`, { headers: { host: 'orders.shop' }, headersTimeout: 10_000 });
      const body = await r.body.text();
      return r.statusCode === 403 ? { status: r.statusCode, body } : undefined;
    });
    assert.equal(direct.status, 403, direct.body);
    assert.equal(app1.seen.length, before, 'a denied call never reaches the app');
    assert.ok(denials.some((d) => d.outcome === 'deny' && d.sourceId === `spiffe://${TD}/ns/shop/sa/client` && d.service === 'shop/orders'), JSON.stringify(denials));

    // A second orders sidecar registers: the gateway spreads over both, still the same process.
    const app2 = await mesh.app();
    await mesh.sidecar('shop/orders', app2);
    await waitFor('the second endpoint to take gateway traffic', async () => {
      const r = await viaGateway(gw!, '/orders/spread');
      assert.equal(r.status, 200, r.body);
      return app2.seen.length > 0;
    });
    assert.equal(gw.proc.exitCode, null);
    const orders = await shownBackend(gw, 'default/orders');
    assert.equal(orders.endpoints.length, 2, JSON.stringify(orders.endpoints));
    assert.ok(orders.endpoints.every((e) => e.url.startsWith('https://127.0.0.1:')));
    assert.deepEqual(orders.tls.spiffeIds, [`spiffe://${TD}/ns/shop/sa/orders`]);
    assert.equal(orders.tls.certFile, join(gwDir, 'certs', 'cert.pem'));
    assert.equal(orders.retries.attempts, 2, 'the MeshService\'s retries are inherited');

    // A snapshot the gateway cannot serve is NACKed with the reason; the running config keeps serving. The admin API
    // refuses such a document (a relative file path), so it goes into the store behind its back, as an older control
    // plane or a restore could have left it: the control plane's watch picks the write up and pushes it.
    const runningVersion = ((await (await request(`http://127.0.0.1:${gw.admin}/config`)).body.json()) as { version: string }).version;
    const behind = SqliteConfigStore.open(dirname(mesh.cp.info.caFile));
    try {
      await behind.put('/config/Backend/default/elsewhere', `${H}\nkind: Backend\nmetadata: { name: elsewhere }\nspec:\n  url: https://127.0.0.1:9\n  tls: { caFile: nowhere/ca.pem }\n`);
    } finally {
      await behind.close();
    }
    const nack = await waitFor('the gateway to NACK', async () => {
      const nodes = (await mesh.get('/v1/nodes')).nodes as NodeStatus[];
      const answer = nodes.find((n) => n.identity.kind === 'gateway')?.lastAnswer;
      return answer && !answer.ok ? answer : undefined;
    });
    assert.match(nack.reason ?? '', /file not found: .*ca\.pem \(spec\.tls\.caFile\)/);
    assert.equal(((await (await request(`http://127.0.0.1:${gw.admin}/config`)).body.json()) as { version: string }).version, runningVersion);
    assert.equal((await viaGateway(gw, '/orders/still')).status, 200);

    // The control plane goes away: a restarted gateway serves from its last good snapshot (and the sidecars from theirs).
    await gw.stop();
    await mesh.cp.close();
    gw = await startGateway(['--control-plane', mesh.cp.url, '--data-dir', gwDir]);
    const again = await viaGateway(gw, '/orders/offline');
    assert.equal(again.status, 200, again.body);
    assert.ok([...app1.seen, ...app2.seen].some((s) => s.url === '/orders/offline'));
    assert.ok(gw.stderr.join('').includes('serving_last_good_snapshot'), gw.stderr.join(''));
    await gw.stop();

    // Standalone: a mesh Backend with a static endpoint and the certificate files named in its own tls.
    const file = join(root, 'standalone.yaml');
    const certs = join(gwDir, 'certs');
    writeFileSync(file, CONFIG.split('---\n').filter((d) => !/kind: (Backend|AccessPolicy)\n/.test(d)).join('---\n') + `---
${H}
kind: Backend
metadata: { name: orders }
spec:
  type: mesh
  meshService: shop/orders
  endpoints: [{ url: "https://127.0.0.1:${orders1.sidecar.ports.inbound}" }]
  tls: { caFile: ${certs}/bundle.pem, certFile: ${certs}/cert.pem, keyFile: ${certs}/key.pem }
`);
    gw = await startGateway(['-c', file, '--no-watch'], false);
    seenByInbound.length = 0;
    const standalone = await viaGateway(gw, '/orders/standalone');
    assert.equal(standalone.status, 200, standalone.body);
    assert.deepEqual(seenByInbound.map((e) => e.peerId), [EDGE_ID]);
  } finally {
    diagnostics.unsubscribe('lockgate:request:end', onEnd);
    diagnostics.unsubscribe('lockgate:access:decision', onDecision);
    await gw?.stop();
    await mesh.close();
  }
});

test('a renewed gateway certificate moves the mesh Backend to new pools with no failed request', { timeout: 90_000 }, async () => {
  // 10 s certificates: renewed at about half life.
  const mesh = await startMesh('{ defaultAccess: deny, certificateLifetime: 10s }');
  let gw: GatewayChild | undefined;
  try {
    await mesh.sidecar('shop/orders', await mesh.app());
    gw = await startGateway(['--control-plane', mesh.cp.url, '--token', await mesh.token('edge', 'default', 'gateway'), '--data-dir', join(root, 'gateway-renew')]);
    await waitFor('the gateway to reach orders', async () => (await viaGateway(gw!, '/orders/x')).status === 200);
    const generation = (await shownBackend(gw, 'default/orders')).tls.generation;
    const failures: string[] = [];
    let sent = 0;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const r = await viaGateway(gw, `/orders/${sent++}`);
      if (r.status !== 200) failures.push(`${r.status} ${r.body}`);
      if (gw.stderr.join('').includes('"certificate_reloaded"') && sent > 20) {
        const now = (await shownBackend(gw, 'default/orders')).tls.generation;
        if (now !== generation) break;
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    assert.ok(gw.stderr.join('').includes('"certificate_reloaded"'), `no renewal within 20 s:\n${gw.stderr.join('')}`);
    assert.notEqual((await shownBackend(gw, 'default/orders')).tls.generation, generation, 'a new generation after the renewal');
    for (let i = 0; i < 10; i++) {
      const r = await viaGateway(gw, `/orders/after-${i}`);
      if (r.status !== 200) failures.push(`${r.status} ${r.body}`);
    }
    assert.deepEqual(failures, [], `${failures.length} of ${sent + 10} requests failed`);
  } finally {
    await gw?.stop();
    await mesh.close();
  }
});

test('config mode of the supervisor: a config the workers cannot build is refused with its problems, the running one serves on', { timeout: 60_000 }, async () => {
  const text = `${H}
kind: Gateway
metadata: { name: edge }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  admin: { enabled: false }
  accessLog: { enabled: false }
---
${H}
kind: Api
metadata: { name: ok }
spec:
  path: /ok
  backend: plain
---
${H}
kind: Backend
metadata: { name: plain }
spec:
  url: http://127.0.0.1:9
`;
  const parsed = parseCheckedConfig(text, join(root, 'config-mode.yaml'));
  assert.ok(parsed.config, formatProblems(parsed.problems));
  const good = parsed.config;
  const logs: string[] = [];
  const sup = new GatewaySupervisor({ files: [], workers: 2, log: (level, msg) => logs.push(`${level} ${msg}`), drainTimeoutMs: 500 });
  try {
    await sup.startWith(good);
    const url = `http://127.0.0.1:${sup.ports.http}/nowhere`;
    const status = async (): Promise<number> => {
      const r = await request(url, { headersTimeout: 5000 });
      await r.body.dump();
      return r.statusCode;
    };
    assert.equal(await status(), 404);
    // Valid for the model, refused by the router (an operation with no methods): every worker keeps the running one.
    const broken = { ...good, version: 'broken', apis: [{ ...good.apis[0], spec: { ...good.apis[0].spec, path: '/nowhere', operations: [{ name: 'x', methods: [], urlTemplate: '/', headers: [] }] } }] };
    const refused = await sup.apply(broken, 'test');
    assert.equal(refused.ok, false);
    assert.match(refused.problems, /no methods/);
    assert.equal(sup.config.version, good.version);
    assert.equal(await status(), 404);
    // A good one is taken by every worker (2), and an unchanged version is not sent again.
    const moved = { ...good, version: 'moved', apis: [{ ...good.apis[0], spec: { ...good.apis[0].spec, path: '/nowhere' } }] };
    assert.deepEqual(await sup.apply(moved, 'test'), { ok: true, problems: '' });
    assert.equal(sup.config.version, 'moved');
    for (let i = 0; i < 4; i++) assert.equal(await status(), 502, 'routed to the closed port');
    assert.deepEqual(await sup.apply(moved, 'again'), { ok: true, problems: '' });
    assert.equal(logs.filter((l) => l === 'info config applied').length, 1);
    // A reload (SIGHUP) re-applies the running config (listener certificates are read anew), not files.
    assert.equal((await sup.reload('SIGHUP')).ok, true);
    assert.equal(logs.filter((l) => l === 'info config applied').length, 2);
  } finally {
    await sup.drain();
  }
});

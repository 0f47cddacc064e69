// Cross-process: the real `lockgate control-plane` driven by `lockgate ca ...` and `lockgate check`, with a node joined
// in this process: root rotation start/status/finish (refused, then forced), the bundle file, restart, check exit codes.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as h2connect } from 'node:http2';
import { get as httpsGet } from 'node:https';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { runCli, startControlPlaneProcess, type ControlPlaneProcess } from './helpers/control-plane-process.ts';
import { ControlClient } from '../src/agent/control-client.ts';
import type { Snapshot } from '../src/model/snapshot.ts';


const children = new Set<ChildProcess>();
const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-ca-rotation-'));
const cleanups: Array<() => Promise<void>> = [];

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

async function startControlPlane(dataDir: string): Promise<ControlPlaneProcess> {
  return startControlPlaneProcess(dataDir, { children, startTimeoutMs: 20_000, stopGraceMs: 10_000 });
}

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(args, { children, env, timeoutMs: 20_000 });
}

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 8000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const certs = (pem: string): number => (pem.match(/BEGIN CERTIFICATE/g) ?? []).length;

/** PUT /v1/endpoints as the node (its client certificate), with where its app listens. */
async function registerApp(url: string, client: ControlClient, app: { address: string; transport: 'tcp' | 'unix' }): Promise<number> {
  const f = client.files;
  const session = h2connect(url, { ca: readFileSync(f.bundleFile, 'utf8'), cert: readFileSync(f.certFile, 'utf8'), key: readFileSync(f.keyFile, 'utf8'), checkServerIdentity: () => undefined });
  session.on('error', () => {});
  try {
    const req = session.request({ ':method': 'PUT', ':path': '/v1/endpoints', 'content-type': 'application/json' });
    req.end(JSON.stringify({ node: client.node!.nodeId, address: '127.0.0.1:15001', app }));
    const [[headers]] = await Promise.all([once(req, 'response'), (async () => { for await (const _ of req); })()]);
    return Number((headers as Record<string, unknown>)[':status']);
  } finally {
    session.close();
  }
}

function metricsText(url: string, ca: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    httpsGet(new URL('/metrics', url), { ca, checkServerIdentity: () => undefined, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    }).on('error', reject);
  });
}

test('lockgate ca rotate start/status/finish and lockgate check against a real control plane', async () => {
  const data = path.join(dir, 'data');
  const cp = await startControlPlane(data);
  cleanups.push(async () => void (await cp.stop()));
  const token = /(lgadm\.\S+)/.exec(cp.lines.find((l) => l.includes('bootstrap admin token'))!)![1];
  const conn = ['--data-dir', data];
  const auth = { LOCKGATE_TOKEN: token };
  const caFile = path.join(data, 'ca-bundle.pem');
  const firstRoot = readFileSync(caFile, 'utf8');
  assert.equal(certs(firstRoot), 1);

  // No nodes yet: everything is fine.
  const clean = await cli(['check', ...conn, '-o', 'json'], auth);
  assert.equal(clean.code, 0, clean.stdout + clean.stderr);
  const report = JSON.parse(clean.stdout);
  assert.equal(report.ok, true);
  assert.deepEqual(report.checks.filter((c: { status: string }) => c.status !== 'ok'), []);
  assert.match(report.checks.find((c: { name: string }) => c.name === 'clock-skew').message, /from the status time/);
  const gauge = await metricsText(cp.url, firstRoot);
  assert.equal(gauge.status, 200);
  assert.match(gauge.text, /^lockgate_certificate_expiry_timestamp_seconds\{kind="control-plane"\} \d/m);
  assert.equal((await cli(['check', ...conn])).code, 1, 'no token: the control plane cannot be asked');

  // A node joins (in this process) and says its app is on TCP loopback: a warning, still exit 0.
  const tok = await cli(['token', 'create', '--service', 'orders', '-n', 'shop', ...conn], auth);
  assert.equal(tok.code, 0, tok.stderr);
  const applied: Snapshot[] = [];
  const nodeDir = path.join(dir, 'node');
  const client = new ControlClient({
    url: cp.url, dataDir: nodeDir, reconnect: { initialMs: 50, maxMs: 300 }, heartbeatTimeoutMs: 3000,
    onSnapshot: async (s) => {
      applied.push(s);
      return { ok: true };
    },
  });
  cleanups.push(() => client.close());
  await client.join(tok.stdout.trim(), { node: 'orders-1' });
  client.start();
  await waitFor('the first snapshot', () => applied.length > 0);
  assert.equal(await registerApp(cp.url, client, { address: '127.0.0.1:8080', transport: 'tcp' }), 200);
  const warned = await cli(['check', ...conn], auth);
  assert.equal(warned.code, 0, warned.stdout + warned.stderr);
  assert.match(warned.stdout, /^warn {2}app-exposure +orders-1: app on TCP 127\.0\.0\.1:8080: other local processes can reach the app without mTLS; run it on a Unix socket$/m);
  assert.match(warned.stdout, /^ok {4}node-certificates +1 live node/m);

  // The app listens on every interface and this host reaches it: a failure, exit 1.
  const exposed: Server = createServer((s) => s.destroy()).listen(0, '0.0.0.0');
  await once(exposed, 'listening');
  cleanups.push(async () => void exposed.close());
  const port = (exposed.address() as { port: number }).port;
  assert.equal(await registerApp(cp.url, client, { address: `0.0.0.0:${port}`, transport: 'tcp' }), 200);
  const failed = await cli(['check', ...conn], auth);
  assert.equal(failed.code, 1, failed.stdout + failed.stderr);
  assert.match(failed.stdout, new RegExp(`^fail  app-exposure +orders-1: app on TCP 0\\.0\\.0\\.0:${port} accepts connections from this host`, 'm'));
  assert.equal(await registerApp(cp.url, client, { address: '/run/orders.sock', transport: 'unix' }), 200);

  // Start: two roots in the bundle file and pushed to the node.
  const started = await cli(['ca', 'rotate', 'start', ...conn], auth);
  assert.equal(started.code, 0, started.stderr);
  assert.match(started.stdout, /^root rotation started: new root [0-9A-F:]{95}/);
  assert.equal(certs(readFileSync(caFile, 'utf8')), 2);
  await waitFor('a snapshot with both roots', () => applied.at(-1)!.trustBundle.length === 2);
  const status = await cli(['ca', 'rotate', 'status', ...conn], auth);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /^phase {9}rotating since /m);
  assert.equal(status.stdout.match(/^root {10}[0-9A-F:]{95} {2}(active|old   )/gm)?.length, 2);
  assert.match(status.stdout, /^1 node still on the old root/m);
  assert.match(status.stdout, /^ {2}orders-1 {2}spiffe:\/\/lockgate\.local\/ns\/shop\/sa\/orders {2}connected/m);
  const during = await cli(['check', ...conn], auth);
  assert.equal(during.code, 0, during.stdout);
  assert.match(during.stdout, /^ok {4}node-bundles +every live node has the current trust bundle \(\w+…, 2 roots\)/m);

  // Finish: refused while orders-1 is on the old root (exit 1, named); forced: one root left.
  const refused = await cli(['ca', 'rotate', 'finish', ...conn], auth);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /1 node still holds a certificate chaining to the old root.*orders-1/);
  assert.equal(certs(readFileSync(caFile, 'utf8')), 2, 'nothing changed');
  const forced = await cli(['ca', 'rotate', 'finish', '--force', ...conn], auth);
  assert.equal(forced.code, 0, forced.stderr);
  assert.match(forced.stdout, /^root rotation finished: the trust bundle holds only [0-9A-F:]{95}\ncut off \(they must join again\):\n {2}orders-1 /);
  const bundle = readFileSync(caFile, 'utf8');
  assert.equal(certs(bundle), 1);
  assert.notEqual(bundle, firstRoot);
  await waitFor('a snapshot with the new root only', () => applied.at(-1)!.trustBundle.length === 1);

  // The CLI trusts the control plane through the rewritten file: its certificate now comes from the new root.
  const shown = await cli(['ca', 'show', ...conn, '-o', 'json'], auth);
  assert.equal(shown.code, 0, shown.stderr);
  const ca = JSON.parse(shown.stdout);
  assert.equal(ca.rotation.phase, 'idle');
  assert.equal(ca.roots[0].certPem.trim(), bundle.trim());

  // Restart: the same single root, the same bundle.
  await cp.stop();
  const again = await startControlPlane(data);
  cleanups.push(async () => void (await again.stop()));
  const after = await cli(['ca', 'show', ...conn, '-o', 'json'], auth);
  assert.equal(after.code, 0, after.stderr);
  assert.deepEqual(JSON.parse(after.stdout).roots.map((r: { fingerprint: string }) => r.fingerprint), ca.roots.map((r: { fingerprint: string }) => r.fingerprint));
  assert.equal(readFileSync(caFile, 'utf8'), bundle);
  const renewed = await cli(['ca', 'renew-intermediate', ...conn], auth);
  assert.equal(renewed.code, 0, renewed.stderr);
  assert.match(renewed.stdout, /^new intermediate [0-9A-F:]{95}, expires /);
  assert.equal((await cli(['ca', 'rotate', 'finish', ...conn], auth)).code, 1, 'no rotation to finish');
  assert.equal((await cli(['ca', 'rotate', 'sideways', ...conn], auth)).code, 1);
});

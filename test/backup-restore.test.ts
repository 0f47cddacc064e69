// Cross-process: back up a real control plane, wipe its data dir, restore, restart: the mesh keeps its identities.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { runCli, startControlPlaneProcess } from './helpers/control-plane-process.ts';
import { ControlClient } from '../src/agent/control-client.ts';
import type { Snapshot } from '../src/model/snapshot.ts';

const HEAD = 'apiVersion: lockgate.dev/v1alpha1';
const BACKEND = `${HEAD}\nkind: Backend\nmetadata:\n  name: orders\nspec:\n  url: http://127.0.0.1:9000\n`;

// The children's environment: no master key or admin settings leak in from the developer's shell.

const children = new Set<ChildProcess>();
const clients = new Set<ControlClient>();
const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-backup-test-'));

after(async () => {
  for (const c of clients) await c.close();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Started {
  lines: string[];
  url: string;
  stop(): Promise<number | null>;
}

async function startControlPlane(dataDir: string, env: Record<string, string> = {}): Promise<Started> {
  return startControlPlaneProcess(dataDir, { children, env, startTimeoutMs: 20_000, stopGraceMs: 10_000 });
}

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(args, { children, env, timeoutMs: 20_000 });
}

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A node of the mesh, in this process: it records the snapshots it is sent. */
function node(url: string, dataDir: string): { client: ControlClient; snapshots: Snapshot[] } {
  const snapshots: Snapshot[] = [];
  const client = new ControlClient({ url, dataDir, onSnapshot: async (s) => (snapshots.push(s), { ok: true }), reconnect: { initialMs: 50, maxMs: 200 } });
  clients.add(client);
  return { client, snapshots };
}

test('backup, wipe, restore: same CA and trust bundle, config and admin token back, the node\'s certificate still accepted', async () => {
  const data = path.join(dir, 'data');
  const cp = await startControlPlane(data);
  const token = /(lgadm\.\S+)/.exec(cp.lines.find((l) => l.includes('bootstrap admin token')) ?? '')?.[1];
  assert.ok(token, cp.lines.join('\n'));
  const auth = { LOCKGATE_TOKEN: token };
  const conn = ['--data-dir', data];
  const bundleBefore = readFileSync(path.join(data, 'ca-bundle.pem'), 'utf8');

  const file = path.join(dir, 'orders.yaml');
  writeFileSync(file, BACKEND);
  const applied = await cli(['apply', '-f', file, ...conn], auth);
  assert.equal(applied.code, 0, applied.stderr);

  // A node joins with a one-time token and gets its snapshot over its mTLS stream.
  const joinToken = await cli(['token', 'create', '--service', 'orders', ...conn], auth);
  assert.equal(joinToken.code, 0, joinToken.stderr);
  const nodeDir = path.join(dir, 'node');
  const first = node(cp.url, nodeDir);
  const joined = await first.client.join(joinToken.stdout.trim());
  first.client.start();
  await waitFor('the first snapshot', () => first.client.status.connected && first.snapshots.length > 0);
  const certBefore = readFileSync(path.join(nodeDir, 'certs', 'cert.pem'), 'utf8');

  // An offline backup of a running control plane is refused; without a token the live one is too.
  const offlineWhileRunning = await cli(['backup', '--offline', '-o', path.join(dir, 'no.json'), ...conn]);
  assert.equal(offlineWhileRunning.code, 1);
  assert.match(offlineWhileRunning.stderr, /is running \(pid \d+\)/);
  assert.equal((await cli(['backup', '-o', path.join(dir, 'no.json'), ...conn])).code, 1);
  assert.ok(!existsSync(path.join(dir, 'no.json')));

  // The live backup: 0600, and the output says the generated master key is not in it.
  const archive = path.join(dir, 'backup.json');
  const backup = await cli(['backup', '-o', archive, ...conn], auth);
  assert.equal(backup.code, 0, backup.stderr);
  assert.match(backup.stdout, /\(live, from https:\/\/127\.0\.0\.1:\d+\): \d+ keys at revision \d+/);
  assert.match(backup.stdout, /NOT in the archive/);
  assert.ok(backup.stdout.includes(`generated key ${path.join(data, 'master.key')}`), backup.stdout);
  assert.equal(statSync(archive).mode & 0o777, 0o600);
  const text = readFileSync(archive, 'utf8');
  assert.ok(!text.includes('BEGIN') && !text.includes('orders'), 'nothing readable outside the sealed payload');

  await first.client.close();
  assert.equal(await cp.stop(), 0);

  // Stopped: `backup --data-dir` reads the store directly.
  const offlineArchive = path.join(dir, 'offline.json');
  const offline = await cli(['backup', '-o', offlineArchive, ...conn]);
  assert.equal(offline.code, 0, offline.stderr);
  assert.match(offline.stdout, /\(offline, from /);

  // Wipe, keeping the master key aside.
  const keys = path.join(dir, 'keys');
  mkdirSync(keys, { mode: 0o700 });
  const keyFile = path.join(keys, 'master.key');
  copyFileSync(path.join(data, 'master.key'), keyFile);
  rmSync(data, { recursive: true });

  // Refused: no key, a wrong key, a tampered archive; the data dir is not even created.
  const noKey = await cli(['restore', '--data-dir', data, '-i', archive]);
  assert.equal(noKey.code, 1);
  assert.match(noKey.stderr, /no master key: the backup is sealed under master key local-[0-9a-f]{16}/);
  const wrongKey = await cli(['restore', '--data-dir', data, '-i', archive], { LOCKGATE_MASTER_KEY: randomBytes(32).toString('base64') });
  assert.equal(wrongKey.code, 1);
  assert.match(wrongKey.stderr, /sealed under master key local-[0-9a-f]{16}, but the master key given is local-[0-9a-f]{16}/);
  const parsed = JSON.parse(text);
  const tampered = path.join(dir, 'tampered.json');
  const env = JSON.parse(parsed.payload);
  const ct = Buffer.from(env.ciphertext, 'base64');
  ct[10] ^= 0x40;
  writeFileSync(tampered, JSON.stringify({ ...parsed, payload: JSON.stringify({ ...env, ciphertext: ct.toString('base64') }) }));
  const keyEnv = { LOCKGATE_MASTER_KEY_FILE: keyFile };
  const bad = await cli(['restore', '--data-dir', data, '-i', tampered], keyEnv);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /does not authenticate/);
  writeFileSync(tampered, JSON.stringify({ ...parsed, version: 2 }));
  assert.match((await cli(['restore', '--data-dir', data, '-i', tampered], keyEnv)).stderr, /format version 2; this Lockgate reads version 1/);
  assert.ok(!existsSync(data), 'nothing was written by a refused restore');

  const restored = await cli(['restore', '--data-dir', data, '-i', archive], keyEnv);
  assert.equal(restored.code, 0, restored.stderr);
  assert.match(restored.stdout, /restored \d+ keys .* the store is now at revision 1\)/);
  assert.match(restored.stdout, /start it with the same master key set/);

  const again = await startControlPlane(data, keyEnv);
  try {
    assert.ok(!again.lines.some((l) => l.includes('lgadm.')), 'no new bootstrap token: the old one came back');
    assert.equal(readFileSync(path.join(data, 'ca-bundle.pem'), 'utf8'), bundleBefore, 'the same trust bundle');
    const got = await cli(['get', 'backend', 'orders', '-o', 'yaml', ...conn], auth);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout, BACKEND, 'the config is back, read with the old admin token');

    // The node comes back with its old certificate and node id: no new join.
    const second = node(again.url, nodeDir);
    assert.equal(await second.client.load(), true);
    second.client.start();
    await waitFor('the reconnected stream', () => second.client.status.connected && second.snapshots.length > 0);
    assert.equal(second.client.node!.nodeId, joined.nodeId);
    assert.equal(readFileSync(path.join(dir, 'node', 'certs', 'cert.pem'), 'utf8'), certBefore, 'the same certificate');
    await second.client.close();

    // A restore over a data dir in use is refused.
    const busy = await cli(['restore', '--data-dir', data, '-i', offlineArchive, '--force'], keyEnv);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /is running on/);
  } finally {
    assert.equal(await again.stop(), 0);
  }

  // Not empty: refused without --force; with it, the offline archive replaces the store.
  const notEmpty = await cli(['restore', '--data-dir', data, '-i', offlineArchive], keyEnv);
  assert.equal(notEmpty.code, 1);
  assert.match(notEmpty.stderr, /is not empty \(.*config\.db/);
  const forced = await cli(['restore', '--data-dir', data, '-i', offlineArchive, '--force'], keyEnv);
  assert.equal(forced.code, 0, forced.stderr);
  const third = await startControlPlane(data, keyEnv);
  try {
    assert.equal(readFileSync(path.join(data, 'ca-bundle.pem'), 'utf8'), bundleBefore);
    assert.equal((await cli(['get', 'backend', 'orders', '-o', 'yaml', ...conn], auth)).stdout, BACKEND);
  } finally {
    await third.stop();
  }
});

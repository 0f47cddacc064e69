// Cross-process: the real `lockgate control-plane`, driven by `lockgate apply/get/diff/delete`, then restarted.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { runCli, startControlPlaneProcess } from './helpers/control-plane-process.ts';

const HEAD = 'apiVersion: lockgate.dev/v1alpha1';
const BACKEND = `${HEAD}\nkind: Backend\nmetadata:\n  name: orders\nspec:\n  url: http://127.0.0.1:9000\n`;
const API = `${HEAD}\nkind: Api\nmetadata:\n  name: orders\nspec:\n  path: /orders\n  backend: orders\n`;

// The child's environment: no master key or admin settings leak in from the developer's shell.

const children = new Set<ChildProcess>();
const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-cp-test-'));

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

interface Started {
  proc: ChildProcess;
  lines: string[];
  url: string;
  stop(): Promise<number | null>;
}

async function startControlPlane(dataDir: string): Promise<Started> {
  return startControlPlaneProcess(dataDir, { children, startTimeoutMs: 30_000, stopGraceMs: 15_000 });
}

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(args, { children, env, timeoutMs: 30_000 });
}

test('control plane: bootstrap token once, apply/get/diff/delete through the CLI, config survives a restart', async () => {
  const data = path.join(dir, 'data');
  const cp = await startControlPlane(data);
  const tokenLine = cp.lines.find((l) => l.includes('bootstrap admin token'));
  assert.ok(tokenLine, `the first start prints the token: ${cp.lines.join('\n')}`);
  const token = /(lgadm\.\S+)/.exec(tokenLine)![1];
  const info = JSON.parse(readFileSync(path.join(data, 'control-plane.json'), 'utf8'));
  assert.equal(info.url, cp.url);
  assert.match(readFileSync(info.caFile, 'utf8'), /BEGIN CERTIFICATE/);
  assert.equal(statSync(path.join(data, 'master.key')).mode & 0o777, 0o600);
  const conn = ['--data-dir', data];
  const auth = { LOCKGATE_TOKEN: token };

  // Without a token, and with a wrong one: refused.
  const anon = await cli(['get', ...conn]);
  assert.equal(anon.code, 1);
  assert.match(anon.stderr, /--token/);
  assert.equal((await cli(['get', ...conn, '--token', `${token.slice(0, -2)}xx`])).code, 1);

  // An invalid file: every problem as file:line:col, nothing stored.
  const files = path.join(dir, 'config');
  mkdirSync(files);
  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(bad, `${API.replace('backend: orders', 'backend: missing')}  timeoutt: 5s\n`);
  const invalid = await cli(['apply', '-f', bad, ...conn], auth);
  assert.equal(invalid.code, 1);
  assert.match(invalid.stderr, new RegExp(`^${bad.replaceAll('.', '\\.')}:7:12: Backend "missing" not found`, 'm'));
  assert.match(invalid.stderr, new RegExp(`^${bad.replaceAll('.', '\\.')}:8:3: `, 'm'));

  // A directory of two files: applied in one go.
  writeFileSync(path.join(files, '1-backend.yaml'), BACKEND);
  writeFileSync(path.join(files, '2-api.yml'), API);
  const applied = await cli(['apply', '-f', files, ...conn], auth);
  assert.equal(applied.code, 0, applied.stderr);
  assert.deepEqual(applied.stdout.trim().split('\n'), ['Backend default/orders created', 'Api default/orders created']);

  const table = await cli(['get', ...conn], auth);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^Api\s+default\s+orders\s+\d+$/m);
  assert.match(table.stdout, /^Backend\s+default\s+orders\s+\d+$/m);
  const yaml = await cli(['get', 'backends', 'orders', '-o', 'yaml', ...conn], auth);
  assert.equal(yaml.stdout, BACKEND);
  const json = await cli(['get', 'api', '-o', 'json', ...conn], auth);
  assert.equal(JSON.parse(json.stdout).items[0].spec.path, '/orders');

  // diff: nothing to change → 0; a changed file → 1 with a unified diff.
  assert.equal((await cli(['diff', '-f', files, ...conn], auth)).code, 0);
  writeFileSync(path.join(files, '1-backend.yaml'), BACKEND.replace('9000', '9001'));
  const diff = await cli(['diff', '-f', files, ...conn], auth);
  assert.equal(diff.code, 1, diff.stderr);
  assert.match(diff.stdout, /^--- Backend\/default\/orders \(stored\)$/m);
  assert.match(diff.stdout, /^-  url: http:\/\/127\.0\.0\.1:9000$/m);
  assert.match(diff.stdout, /^\+  url: http:\/\/127\.0\.0\.1:9001$/m);
  assert.match((await cli(['get', 'backend', 'orders', '-o', 'yaml', ...conn], auth)).stdout, /9000/, 'diff stored nothing');

  // delete: refused while referenced, then the Api goes.
  const refused = await cli(['delete', 'backend', 'orders', ...conn], auth);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^\/config\/Api\/default\/orders:\d+:\d+: Backend "orders" not found/m);
  const deleted = await cli(['delete', 'Api', 'orders', ...conn], auth);
  assert.equal(deleted.code, 0, deleted.stderr);
  assert.equal(deleted.stdout, 'Api default/orders deleted\n');
  assert.equal((await cli(['get', 'api', 'orders', ...conn], auth)).code, 1);

  // Restart: no new token, the old one still works, the config is still there.
  assert.equal(await cp.stop(), 0, 'SIGTERM is a clean exit');
  const again = await startControlPlane(data);
  try {
    assert.ok(!again.lines.some((l) => l.includes('lgadm.')), 'the token is printed only at the first start');
    const after = await cli(['get', 'backend', 'orders', '-o', 'yaml', '--control-plane', again.url, '--ca-file', info.caFile], auth);
    assert.equal(after.code, 0, after.stderr);
    assert.equal(after.stdout, BACKEND);
    assert.equal((await cli(['get', 'api', ...conn], auth)).stdout, '', 'the deleted Api stays deleted');
  } finally {
    await again.stop();
  }
});

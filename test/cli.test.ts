// The CLI as a user runs it: help for every verb, version, exit codes, validate and schema output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BIN = path.resolve(import.meta.dirname, '../bin/lockgate.mjs');
const EXAMPLE = path.resolve(import.meta.dirname, '../examples/lockgate.yaml');

function run(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('--help lists every verb; each verb has its own --help; --version prints the version', () => {
  const help = run(['--help']);
  assert.equal(help.code, 0);
  for (const verb of ['gateway', 'validate', 'schema', 'up', 'subscription']) {
    assert.match(help.out, new RegExp(`^  ${verb} `, 'm'));
    const v = run([verb, '--help']);
    assert.equal(v.code, 0, verb);
    assert.match(v.out, new RegExp(`Usage: lockgate ${verb}`));
  }
  const version = run(['--version']);
  assert.equal(version.code, 0);
  assert.match(version.out, /^lockgate \d+\.\d+\.\d+ \(node v24\./);
});

test('unknown verbs and bad options are user errors (exit 1)', () => {
  assert.equal(run(['frobnicate']).code, 1);
  assert.equal(run(['gateway', '--no-such-flag']).code, 1);
  assert.equal(run(['gateway']).code, 1);
});

test('validate: the example is valid; a broken file lists every problem with file:line:col and exits 1', () => {
  const ok = run(['validate', EXAMPLE]);
  assert.equal(ok.code, 0, ok.err);
  assert.match(ok.out, /^ok: 2 apis, 5 operations, 2 backends/);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-cli-'));
  const bad = path.join(dir, 'bad.yaml');
  writeFileSync(bad, 'apiVersion: lockgate.dev/v1alpha1\nkind: Gateway\nmetadata: { name: g }\nspec:\n  listners: []\n  admin: { port: 70000 }\n');
  const r = run(['validate', bad]);
  rmSync(dir, { recursive: true, force: true });
  assert.equal(r.code, 1);
  assert.match(r.err, new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:3: unknown field "listners".*did you mean "listeners"`));
  assert.match(r.err, /:6:18: must be between 0 and 65535, got 70000/);
  assert.match(r.err, /2 problems found/);
});

test('schema prints a JSON Schema that names every kind', () => {
  const r = run(['schema']);
  assert.equal(r.code, 0);
  const schema = JSON.parse(r.out) as Record<string, unknown>;
  assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
  for (const kind of ['Gateway', 'Api', 'Backend']) assert.ok(r.out.includes(`"${kind}"`), kind);
});

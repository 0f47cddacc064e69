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
  for (const verb of ['gateway', 'validate', 'schema', 'up', 'subscription', 'test']) {
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

test('lockgate test runs policy test cases in-process: the examples pass; a wrong expectation fails with a diff and the trace', () => {
  const ok = run(['test', path.resolve(import.meta.dirname, '../examples/policy-tests')]);
  assert.equal(ok.code, 0, ok.out + ok.err);
  assert.match(ok.out, /^5 passed, 0 failed$/m);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lg-cli-test-'));
  try {
    writeFileSync(
      path.join(dir, 'wrong.test.yaml'),
      `config: [${path.resolve(import.meta.dirname, '../examples/policy-tests/orders.yaml')}]
subscriptions: [{ name: bob, scope: "api:orders", primaryKey: bob-key-0001 }]
tests:
  - name: expects the wrong status
    request: { url: /orders/1, headers: { ocp-apim-subscription-key: bob-key-0001, x-tenant: t } }
    backend: { status: 200, body: { id: 1 } }
    expect: { status: 201, body: { id: 2 }, backend: { path: /v2/items/1 } }
`,
    );
    const bad = run(['test', dir]);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /FAIL .*expects the wrong status/);
    assert.match(bad.out, /status: expected 201, got 200/);
    assert.match(bad.out, /body\.id: expected 2, got 1/);
    assert.match(bad.out, /· inbound rewrite-uri \(orders\.yaml:\d+\)/);
    assert.match(bad.out, /^0 passed, 1 failed$/m);
    // An invalid config is reported with file:line:col and fails the run.
    writeFileSync(path.join(dir, 'broken.yaml'), 'apiVersion: lockgate.dev/v1alpha1\nkind: Api\nmetadata: { name: x }\nspec: { path: /x, backend: nowhere }\n');
    writeFileSync(path.join(dir, 'wrong.test.yaml'), `config: [broken.yaml]\ntests: [{ name: n, request: { url: /x }, expect: { status: 200 } }]\n`);
    const broken = run(['test', dir]);
    assert.equal(broken.code, 1);
    assert.match(broken.err, /broken\.yaml:4:\d+: Backend "nowhere" not found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Cross-process: `lockgate subscription` against a real data dir, as an operator would use it.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SubscriptionStore } from '../src/store/subscription-store.ts';
import { hashKey } from '../src/lib/subscription-keys.ts';

const BIN = path.resolve(import.meta.dirname, '../bin/lockgate.mjs');
const dir = mkdtempSync(path.join(tmpdir(), 'lg-subcli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function lg(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, 'subscription', ...args, '--data-dir', dir], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('create prints both keys once; list and show never print them', () => {
  const r = lg('create', 'alice', '--scope', 'product:starter', '--owner', 'alice@example.com', '--json');
  assert.equal(r.code, 0, r.err);
  const created = JSON.parse(r.out) as { name: string; scope: string; state: string; primaryKey: string; secondaryKey: string };
  assert.equal(created.scope, 'product:starter');
  assert.equal(created.state, 'active');
  assert.match(created.primaryKey, /^[0-9a-f]{32}$/);
  const list = lg('list');
  assert.equal(list.code, 0);
  assert.match(list.out, /^name\s+scope\s+state/m);
  assert.match(list.out, /alice\s+product:starter\s+active\s+alice@example\.com/);
  const show = lg('show', 'alice');
  for (const out of [list.out, show.out]) {
    assert.ok(!out.includes(created.primaryKey) && !out.includes(created.secondaryKey), 'a key leaked into list/show');
  }
  // The key opens the store's record (what the gateway will look up).
  const store = SubscriptionStore.open(dir);
  try {
    assert.equal(store.findByKeyHash(hashKey(created.primaryKey))?.name, 'alice');
  } finally {
    store.close();
  }
});

test('a migrated key is kept; regenerate replaces one key and prints it once', () => {
  assert.equal(lg('create', 'bob', '--scope', 'all', '--primary-key', 'fromApim-0123456789').code, 0);
  const r = lg('regenerate', 'bob', '--key', 'secondary', '--json');
  assert.equal(r.code, 0, r.err);
  const { key } = JSON.parse(r.out) as { key: string };
  assert.match(key, /^[0-9a-f]{32}$/);
  const store = SubscriptionStore.open(dir);
  try {
    assert.equal(store.findByKeyHash(hashKey('fromApim-0123456789'))?.name, 'bob');
    assert.equal(store.findByKeyHash(hashKey(key))?.name, 'bob');
  } finally {
    store.close();
  }
});

test('state changes, and every mistake is a clear message with exit code 1', () => {
  assert.match(lg('suspend', 'alice').out, /alice is now suspended/);
  assert.match(lg('resume', 'alice').out, /alice is now active/);
  assert.match(lg('cancel', 'alice').out, /alice is now cancelled/);
  const cases: Array<[string[], RegExp]> = [
    [['resume', 'alice'], /cannot resume subscription "alice": it is cancelled/],
    [['show', 'nobody'], /no subscription named "nobody"/],
    [['create', 'carol'], /--scope is required/],
    [['create', 'carol', '--scope', 'team:x'], /scope must be "all", "product:NAME" or "api:NAME"/],
    [['create', 'bob', '--scope', 'all'], /already exists/],
    [['regenerate', 'bob'], /--key primary or --key secondary is required/],
    [['fly', 'bob'], /unknown action "fly"/],
    [['create', 'dave', '--scope', 'all', '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    const r = lg(...args);
    assert.equal(r.code, 1, `${args.join(' ')}: ${r.out}${r.err}`);
    assert.match(r.err, message, args.join(' '));
  }
});

// Cross-process: a real control plane records admin changes in its audit trail; `lockgate audit verify` passes, then
// catches an edited, a deleted and a dropped newest record in the database file, and a restart does not hide the loss.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, test } from 'node:test';
import { runCli, startControlPlaneProcess } from './helpers/control-plane-process.ts';

const HEAD = 'apiVersion: lockgate.dev/v1alpha1';
const backend = (name: string, port: number): string => `${HEAD}\nkind: Backend\nmetadata:\n  name: ${name}\nspec:\n  url: http://127.0.0.1:${port}\n`;

const children = new Set<ChildProcess>();
const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-audit-test-'));

after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return runCli(args, { children, env, timeoutMs: 20_000 });
}

/** What an attacker with write access to the file would do: drop the append-only triggers, then change rows. */
function tamper(db: string, sql: string): void {
  const conn = new DatabaseSync(db);
  try {
    conn.exec('DROP TRIGGER IF EXISTS records_no_update; DROP TRIGGER IF EXISTS records_no_delete;');
    const changed = conn.prepare(sql).run().changes;
    assert.equal(changed, 1, `the tampering statement changed one row: ${sql}`);
  } finally {
    conn.close();
  }
}

test('audit verify passes on an untouched trail and catches an edited, a deleted and a truncated tail record', async () => {
  const data = path.join(dir, 'data');
  const cp = await startControlPlaneProcess(data, { children, startTimeoutMs: 20_000, stopGraceMs: 10_000 });
  let running = true;
  try {
    const token = /(lgadm\.\S+)/.exec(cp.lines.find((l) => l.includes('bootstrap admin token')) ?? '')?.[1];
    assert.ok(token, cp.lines.join('\n'));
    const auth = { LOCKGATE_TOKEN: token };
    const conn = ['--data-dir', data];
    const online = ['--online', ...conn];

    // Four changes through the admin API: two creates (one apply), an update, a delete.
    const file = path.join(dir, 'backends.yaml');
    writeFileSync(file, `${backend('orders', 9000)}---\n${backend('payments', 9001)}`);
    assert.equal((await cli(['apply', '-f', file, ...conn], auth)).code, 0);
    copyFileSync(path.join(data, 'audit-head.json'), path.join(dir, 'head-at-2.json'));
    writeFileSync(file, backend('orders', 9100));
    assert.equal((await cli(['apply', '-f', file, '--reason', 'move orders (OPS-7)', ...conn], auth)).code, 0);
    const deleted = await cli(['delete', 'Backend', 'payments', ...conn], auth);
    assert.equal(deleted.code, 0, deleted.stderr);

    // Through the API (the control plane's own head, held in memory) and straight from the files.
    const viaApi = await cli(['audit', 'verify', ...online], auth);
    assert.equal(viaApi.code, 0, viaApi.stdout + viaApi.stderr);
    assert.match(viaApi.stdout, /audit trail intact: 4 records; signed head: 4 records/);
    const viaFiles = await cli(['audit', 'verify', '--data-dir', data]);
    assert.equal(viaFiles.code, 0, viaFiles.stdout + viaFiles.stderr);
    assert.equal((await cli(['audit', 'verify', ...online])).code, 1, 'no token: could not check');

    const exported = await cli(['audit', 'export', ...online], auth);
    assert.equal(exported.code, 0, exported.stderr);
    const lines = exported.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.deepEqual(lines.map((r) => [r.seq, r.action, r.target]), [
      [1, 'config.create', 'Backend/default/orders'], [2, 'config.create', 'Backend/default/payments'],
      [3, 'config.update', 'Backend/default/orders'], [4, 'config.delete', 'Backend/default/payments'],
    ]);
    assert.ok(lines.every((r) => typeof r.actor === 'string' && r.actor !== 'anonymous' && typeof r.requestId === 'string' && typeof r.hash === 'string'));
    assert.match(String(lines[2].before), /127.0.0.1:9000/);
    assert.match(String(lines[2].after), /9100/);
    assert.equal(lines[2].reason, 'move orders (OPS-7)');
    assert.equal(lines[0].reason, '');
    const out = path.join(dir, 'after-2.jsonl');
    assert.equal((await cli(['audit', 'export', '--data-dir', data, '--after', '2', '--output', out])).code, 0);
    assert.deepEqual(readFileSync(out, 'utf8').trimEnd().split('\n').map((l) => (JSON.parse(l) as { seq: number }).seq), [3, 4]);

    assert.equal(await cp.stop(), 0);
    running = false;
  } finally {
    if (running) await cp.stop();
  }

  const db = path.join(data, 'audit.db');
  assert.ok(!existsSync(`${db}-wal`) || readFileSync(`${db}-wal`).length === 0, 'the WAL was checkpointed on close');
  const headFile = path.join(data, 'audit-head.json');
  const pristine = path.join(dir, 'pristine.db');
  copyFileSync(db, pristine);
  copyFileSync(headFile, `${pristine}.head`);
  const verifyFiles = (): ReturnType<typeof cli> => cli(['audit', 'verify', '--data-dir', data]);
  const cases: [string, string, RegExp][] = [
    ['an edited record', `UPDATE records SET record = replace(record, '"action":"config.update"', '"action":"config.create"') WHERE seq = 3`, /changed: record 3 was changed after it was written/],
    ['a deleted record', 'DELETE FROM records WHERE seq = 2', /missing: record 2 is missing/],
    ['the newest record dropped', 'DELETE FROM records WHERE seq = 4', /truncated: the signed head covers 4 records but the log ends at 3: the newest record was removed/],
  ];
  for (const [what, sql, expected] of cases) {
    copyFileSync(pristine, db);
    tamper(db, sql);
    const r = await verifyFiles();
    assert.equal(r.code, 3, `${what}: ${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /audit trail DAMAGED: 1 problem/, what);
    assert.match(r.stdout, expected, what);
  }

  // The limit of a head file: the database and the head rolled back together to an earlier state look like a trail
  // that ended there. A newer head kept elsewhere (a snapshot, a saved copy) catches it.
  copyFileSync(pristine, db);
  tamper(db, 'DELETE FROM records WHERE seq = 4');
  tamper(db, 'DELETE FROM records WHERE seq = 3');
  copyFileSync(path.join(dir, 'head-at-2.json'), headFile);
  assert.equal((await verifyFiles()).code, 0, 'a consistent rollback passes on its own');
  const withSaved = await cli(['audit', 'verify', '--data-dir', data, '--head', `${pristine}.head`]);
  assert.equal(withSaved.code, 3, withSaved.stdout + withSaved.stderr);
  assert.match(withSaved.stdout, /truncated: against .*: the signed head covers 4 records but the log ends at 2: the newest 2 records were removed/);
  copyFileSync(`${pristine}.head`, headFile);
  copyFileSync(pristine, db);
  tamper(db, 'DELETE FROM records WHERE seq = 4');

  // Truncated, then restarted: the control plane signs a new head, but first records what it found, so the loss
  // stays visible to verify after later changes (through the API and from the files).
  const again = await startControlPlaneProcess(data, { children, startTimeoutMs: 20_000, stopGraceMs: 10_000 });
  try {
    const r = await verifyFiles();
    assert.equal(r.code, 3, r.stdout + r.stderr);
    assert.match(r.stdout, /tail_mismatch: record 4: the control plane found the log's end changed: the last signed head covered 4 records .* but the log held 3/);
    assert.doesNotMatch(r.stdout, /truncated/);
  } finally {
    assert.equal(await again.stop(), 0);
  }
  const intact = await verifyFiles();
  assert.equal(intact.code, 3, 'still damaged after the restart');

  // The untouched copy still verifies: the failures above are the tampering, not the copying.
  copyFileSync(pristine, db);
  copyFileSync(`${pristine}.head`, headFile);
  const ok = await verifyFiles();
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
});

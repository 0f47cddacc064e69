// Cross-process: the bin/lockgate.mjs launcher. A sidecar re-executes itself (same PID) with a 16 MiB young-generation
// semi-space, which must be set before V8's heap exists; other commands, and a sidecar given its own size, run as they are.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BIN = path.resolve(import.meta.dirname, '../bin/lockgate.mjs');
const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-launcher-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Loaded into every Node process started with these NODE_OPTIONS (the re-executed one too): prints how it was started.
const probe = path.join(dir, 'probe.mjs');
writeFileSync(probe, "process.stderr.write(`PROBE ${process.pid} ${JSON.stringify(process.execArgv)}\\n`);\n");

/** The processes (pid, execArgv) a launcher run went through, in order. */
function run(args: string[], nodeOptions = ''): Array<{ pid: number; execArgv: string[] }> {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: `--import=${probe} ${nodeOptions}`.trim(), LOCKGATE_LAUNCHED: '' },
    timeout: 30_000,
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr.split('\n').filter((l) => l.startsWith('PROBE ')).map((l) => {
    const [, pid, argv] = /^PROBE (\d+) (.*)$/.exec(l)!;
    return { pid: Number(pid), execArgv: JSON.parse(argv) as string[] };
  });
}

test('lockgate sidecar re-executes itself in place with --max-semi-space-size=16', () => {
  const seen = run(['sidecar', '--help']);
  assert.equal(seen.length, 2, JSON.stringify(seen));
  assert.equal(seen[0].pid, seen[1].pid, 'the same process (execve), not a child');
  assert.ok(!seen[0].execArgv.some((a) => a.startsWith('--max-semi-space-size')));
  assert.ok(seen[1].execArgv.includes('--max-semi-space-size=16'), JSON.stringify(seen[1].execArgv));
});

test('a sidecar given its own semi-space size, and other commands, run as started', () => {
  const own = run(['sidecar', '--help'], '--max-semi-space-size=8');
  assert.equal(own.length, 1, JSON.stringify(own));
  const other = run(['validate', '--help']);
  assert.equal(other.length, 1, JSON.stringify(other));
  assert.ok(!other[0].execArgv.some((a) => a.startsWith('--max-semi-space-size')));
});

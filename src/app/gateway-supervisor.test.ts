import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatewaySupervisor } from './gateway-supervisor.ts';

const CONFIG = `apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  admin: { enabled: false }
`;

test('a crashed worker is restarted by the supervisor and becomes ready again', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-sup-'));
  const file = path.join(dir, 'gw.yaml');
  writeFileSync(file, CONFIG);
  process.env.LOCKGATE_CRASH_MARKER = path.join(dir, 'crashed');
  const logs: string[] = [];
  const sup = new GatewaySupervisor({
    files: [file],
    workers: 1,
    watch: false,
    workerUrl: new URL('../../test/fixtures/crash-once-worker.ts', import.meta.url),
    log: (level, msg) => logs.push(`${level} ${msg}`),
    drainTimeoutMs: 1000,
  });
  try {
    const started = await sup.start();
    assert.equal(started.ok, true);
    let stats = sup.workerStats();
    for (let i = 0; i < 100 && !(stats[0].restarts === 1 && stats[0].ready); i++) {
      await new Promise((r) => setTimeout(r, 50));
      stats = sup.workerStats();
    }
    assert.deepEqual(stats, [{ index: 0, ready: true, restarts: 1 }]);
    assert.ok(logs.some((l) => l.startsWith('error worker crashed')), logs.join('\n'));
    assert.ok(logs.some((l) => l.startsWith('warn worker exited; restarting')), logs.join('\n'));
  } finally {
    await sup.drain();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an invalid config is refused at start with every problem, nothing started', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-sup-'));
  const file = path.join(dir, 'gw.yaml');
  writeFileSync(file, CONFIG.replace('port: 0', 'port: 99999').replace('name: http', 'nmae: http'));
  const sup = new GatewaySupervisor({ files: [file], workers: 1, watch: false, log: () => {} });
  const r = await sup.start();
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.problems.includes(`${file}:5:`), !r.ok ? r.problems : '');
  assert.ok(!r.ok && /did you mean "name"/.test(r.problems));
  assert.ok(!r.ok && /99999/.test(r.problems));
  assert.deepEqual(sup.workerStats(), []);
  rmSync(dir, { recursive: true, force: true });
});

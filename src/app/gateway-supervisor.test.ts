import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GatewaySupervisor } from './gateway-supervisor.ts';
import { configMessage, configOf } from './config-message.ts';
import { parseConfigText } from '../model/load-config.ts';
import type { ApiResource, Config } from '../model/types.ts';

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

test('configMessage sends only the Apis that changed since the config a worker last received', () => {
  const api = (name: string, backend: string, ops = 12): string =>
    `apiVersion: lockgate.dev/v1alpha1\nkind: Api\nmetadata: { name: ${name} }\nspec:\n  path: /${name}\n  backend: ${backend}\n  operations:\n` +
    Array.from({ length: ops }, (_, i) => `    - { methods: [GET], urlTemplate: "/r${i}" }`).join('\n') + '\n';
  const backends = ['a', 'b'].map((n) => `apiVersion: lockgate.dev/v1alpha1\nkind: Backend\nmetadata: { name: ${n} }\nspec: { url: "http://127.0.0.1:9" }\n`);
  const load = (docs: string[]): Config => {
    // Apis first: each is longer than a parse piece (parse-documents.ts), so each is a piece, kept by its own text.
    const r = parseConfigText([...docs, CONFIG, ...backends].join('---\n'), 'c.yaml');
    assert.deepEqual(r.problems, []);
    return r.config!;
  };
  const v1 = load([api('one', 'a'), api('two', 'a'), api('three', 'a')]);
  // one and three are the same documents (three at another index), two's changed, four is new.
  const v2 = load([api('one', 'a'), api('three', 'a'), api('two', 'b'), api('four', 'b')]);
  const m = configMessage(v1, v2);
  assert.deepEqual(m.apis.map((a) => (Array.isArray(a) ? a[0] : a.metadata.name)), [0, 2, 'two', 'four']);
  // What the worker rebuilds (from its own copy of v1) is the config itself, positions included.
  const worker = structuredClone(v1);
  const rebuilt = configOf(structuredClone(m), worker);
  assert.deepEqual(rebuilt, structuredClone(v2));
  assert.equal(rebuilt.apis[0], worker.apis[0], 'an unchanged Api is the very object the worker had');
  assert.equal(rebuilt.apis[1], worker.apis[2], 'also when its document moved');
  assert.equal('apis' in m.config, false);
  // With nothing received before (a worker's first config), every Api goes.
  assert.ok(configMessage(undefined, v2).apis.every((a) => !Array.isArray(a)));
  // Same document, but a cross-resource value differs (the Backend it names moved namespace): sent again.
  const moved = load([api('one', 'a')]);
  const renamed = { ...moved, apis: moved.apis.map((a): ApiResource => ({ ...a, spec: { ...a.spec, backend: 'other/a' } })) };
  assert.equal(Array.isArray(configMessage(moved, renamed).apis[0]), false);
});

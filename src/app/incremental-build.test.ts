// A config change reaches a worker as a ConfigMessage and becomes a runtime: what did not change is taken over, what
// did is built anew, and the result routes exactly as a runtime built from nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { POLICY_REGISTRY } from '../filters/index.ts';
import { parseConfigText } from '../model/load-config.ts';
import type { Config } from '../model/types.ts';
import { buildRuntime, retireRuntime, type Runtime } from '../proxy/runtime.ts';
import { configMessage, configOf } from './config-message.ts';

const H = 'apiVersion: lockgate.dev/v1alpha1';
const GATEWAY = `${H}\nkind: Gateway\nmetadata: { name: g }\nspec:\n  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]\n  admin: { enabled: false }\n`;

function api(i: number, backend = 'a'): string {
  const ops = Array.from({ length: 15 }, (_, j) => `    - { methods: [GET], urlTemplate: "/r${j}/{id}" }`).join('\n');
  return `${H}\nkind: Api\nmetadata: { name: api-${i} }\nspec:\n  hostnames: [h${i}.example.com]\n  path: /svc${i}\n  backend: ${backend}\n  operations:\n${ops}\n`;
}

function backend(name: string, url = 'http://127.0.0.1:9'): string {
  return `${H}\nkind: Backend\nmetadata: { name: ${name} }\nspec: { url: "${url}" }\n`;
}

function policy(seq: string): string {
  return `${H}\nkind: ApiPolicy\nmetadata: { name: probe }\nspec:\n  scope: { api: api-0 }\n  inbound:\n    - return-response: { status: 200, headers: { x-seq: ["${seq}"] } }\n`;
}

function load(docs: string[]): Config {
  const r = parseConfigText(docs.join('---\n'), 'c.yaml');
  assert.deepEqual(r.problems, []);
  return r.config!;
}

const hooks = { registry: POLICY_REGISTRY, services: {} };

function build(config: Config, previous?: Runtime): Runtime {
  const r = buildRuntime(config, previous, {}, hooks);
  assert.deepEqual(r.problems, []);
  return r.runtime!;
}

const target = (r: Runtime, i: number, j = 3) => r.router.match(`h${i}.example.com`, `/svc${i}/r${j}/7`, 'GET', [])?.value;

test('a worker keeps unchanged Apis: their routes are taken over, changed ones rebuilt, and it routes as a fresh build', async () => {
  const docs = (seq: string, b1 = 'a', url = 'http://127.0.0.1:9') => [...[0, 1, 2, 3].map((i) => api(i, i === 1 ? b1 : 'a')), GATEWAY, backend('a'), backend('b', url), policy(seq)];
  const v1 = load(docs('one'));
  // The worker's side: its own copy (as a worker gets it), and the runtime built from it.
  const worker1 = structuredClone(v1);
  const r1 = build(worker1);
  // A router is rebound in place (the next version patches it), so each version's targets are read before the next.
  const targets = (r: Runtime) => [0, 1, 2, 3].map((i) => target(r, i));
  const t1 = targets(r1);
  // A policy changes: only api-0 (which it reaches) gets new targets; the router is rebound, not rebuilt.
  const v2 = load(docs('two'));
  const worker2 = configOf(structuredClone(configMessage(v1, v2)), worker1);
  const r2 = build(worker2, r1);
  const t2 = targets(r2);
  assert.equal(worker2.apis[2], worker1.apis[2], 'the worker kept its Api objects');
  for (const i of [1, 2, 3]) assert.equal(t2[i], t1[i], `api-${i}'s target is taken over`);
  assert.notEqual(t2[0], t1[0], "api-0's target has the new policy");
  assert.notEqual(target(r2, 0)!.policies, null);
  // api-1 moves to Backend b: its targets are new and point at b; the others stay.
  const v3 = load(docs('two', 'b'));
  const worker3 = configOf(structuredClone(configMessage(v2, v3)), worker2);
  const r3 = build(worker3, r2);
  const t3 = targets(r3);
  assert.notEqual(t3[1], t2[1]);
  assert.equal(t3[1]!.cluster.name, 'default/b');
  assert.equal(t3[2], t2[2]);
  // Backend b's address changes: a new cluster, so api-1's targets are made again; api-2's stay.
  const v4 = load(docs('two', 'b', 'http://127.0.0.1:10'));
  const worker4 = configOf(structuredClone(configMessage(v3, v4)), worker3);
  const r4 = build(worker4, r3);
  assert.notEqual(target(r4, 1)!.cluster, t3[1]!.cluster);
  assert.equal(target(r4, 2), t3[2]);
  // Whatever was taken over, every route resolves as in a runtime built from nothing.
  const fresh = build(structuredClone(v4));
  for (const i of [0, 1, 2, 3]) {
    for (const j of [0, 7, 14]) {
      const a = target(r4, i, j)!;
      const b = target(fresh, i, j)!;
      assert.deepEqual([a.api, a.operation, a.cluster.name, a.stripPrefix, a.prefixReplace, a.policies === null], [b.api, b.operation, b.cluster.name, b.stripPrefix, b.prefixReplace, b.policies === null]);
    }
  }
  assert.equal(r4.router.match('h2.example.com', '/svc2/nothing', 'GET', []), undefined);
  for (const [old, cur] of [[r1, r2], [r2, r3], [r3, r4]] as const) await retireRuntime(old, cur);
  await retireRuntime(r4, undefined);
  await retireRuntime(fresh, undefined);
});

// `lockgate explain` as a user runs it, and that it says what enforcement does: the same request through a gateway
// built from the same config gets the same verdict, policy and reasons.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hs256 } from './helpers/jwt.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { withGateway, call, GATEWAY } from './helpers/policy-gateway.ts';
import type { AccessDecisionEvent } from '../src/telemetry/channels.ts';
import { formatAccessDecisionLine } from '../src/telemetry/access-log.ts';

const BIN = path.resolve(import.meta.dirname, '../bin/lockgate.mjs');
const SECRET = Buffer.alloc(32, 5);
const doc = (kind: string, name: string, spec: string): string => `---\napiVersion: lockgate.dev/v1alpha1\nkind: ${kind}\nmetadata: { name: ${name} }\nspec:\n${spec}\n`;

let up: Upstream;
let dir: string;
let file: string;
let yaml: string;
before(async () => {
  up = await startUpstream();
  dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-explain-'));
  file = path.join(dir, 'config.yaml');
  yaml = GATEWAY +
    doc('Backend', 'up', `  url: "${up.url}"`) +
    doc('Api', 'orders', `  path: /orders
  backend: up
  operations:
    - { name: get-order, methods: [GET], urlTemplate: "/{id}" }
    - { name: delete-order, methods: [DELETE], urlTemplate: "/{id}" }`) +
    doc('ApiPolicy', 'jwt', `  scope: { api: orders }
  inbound:
    - validate-jwt: { issuerSigningKeys: [{ hmac: "${SECRET.toString('base64')}" }], audiences: [orders] }`) +
    doc('AccessPolicy', 'orders-access', `  target: { api: orders }
  allow:
    - groups: orders-admins
    - all: [{ groups: staff }, { method: GET }]
  deny:
    - domain: contractor.example`) +
    doc('MeshService', 'inventory', '  ports: [{ port: 8080 }]') +
    doc('MeshService', 'orders', '  ports: [{ port: 8080 }]') +
    doc('AccessPolicy', 'inventory-access', `  target: { service: inventory }
  allow:
    - { source: orders, groups: orders-admins }
    - { source: orders, method: GET, time: { after: "08:00", before: "18:00", days: mon-fri, timeZone: Europe/Berlin } }
    - { source: orders, path: /inventory/* }`);
  writeFileSync(file, yaml);
});
after(async () => {
  await up.close();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * The same, without blocking this process: a test that runs a gateway here must not stall its event loop (two stalls
 * in a row of a CLI start-up on a loaded machine trip the gateway's load shedder, and the next request gets 503).
 */
function explainAsync(args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'explain', '-c', file, ...args], { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, out: stdout, err: stderr });
    });
  });
}

function explain(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [BIN, 'explain', '-c', file, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function token(claims: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000);
  return hs256(SECRET, { aud: 'orders', iat: now, exp: now + 600, ...claims });
}

test('explain at a sidecar: the issue\'s example allows alice, denies bob with reasons, and time rules follow --at', () => {
  const alice = explain(['--user', 'alice@example.com', '--groups', 'orders-admins', '--from', 'orders', '--method', 'GET', '--path', '/inventory/1', '--to', 'inventory']);
  assert.equal(alice.code, 0, alice.err);
  assert.match(alice.out, /^allowed by default\/inventory-access \(decision [0-9a-f]{8}-[0-9a-f]+\)\n  - allow rule default\/inventory-access allow\[0\] matched \(source spiffe:\/\/lockgate\.local\/ns\/default\/sa\/orders, groups \[orders-admins\]\)/);
  // At a sidecar the end user is what the signed assertion carries (sub, email, groups, iss, sid): other claims are dropped, and said so.
  const extra = explain(['--claims', '{"sub":"alice","groups":["orders-admins"],"dept":"ops"}', '--from', 'orders', '--path', '/x', '--to', 'inventory']);
  assert.equal(extra.code, 0, extra.out + extra.err);
  assert.match(extra.out, /note: at a sidecar only sub, email, groups, iss and sid reach the decision \(the assertion carries those\); not used: dept/);
  const anonymous = explain(['--from', 'orders', '--method', 'DELETE', '--path', '/x', '--to', 'inventory']);
  assert.equal(anonymous.code, 3);
  assert.match(anonymous.out, /allow\[0\]: no end user/);
  // Bob is staff: the GET rule holds on a weekday morning in Berlin, not on a Saturday.
  const weekday = explain(['--user', 'bob@example.com', '--groups', 'staff', '--from', 'orders', '--path', '/x', '--to', 'inventory', '--at', '2026-11-27T09:00:00Z']);
  assert.equal(weekday.code, 0, weekday.out + weekday.err);
  const saturday = explain(['--user', 'bob@example.com', '--groups', 'staff', '--from', 'orders', '--path', '/x', '--to', 'inventory', '--at', '2026-11-28T09:00:00Z']);
  assert.equal(saturday.code, 3);
  assert.match(saturday.out, /^denied by default\/inventory-access/);
  assert.match(saturday.out, /allow\[1\]: time 2026-11-28 sat 10:00 Europe\/Berlin is not on one of the days/);
  // Another caller is not orders.
  const web = explain(['--user', 'alice@example.com', '--groups', 'orders-admins', '--from', 'web', '--to', 'inventory']);
  assert.equal(web.code, 3);
  assert.match(web.out, /source spiffe:\/\/lockgate\.local\/ns\/default\/sa\/web not in \[default\/orders\]/);
});

test('explain says what the gateway enforces: same verdict, policy and reasons for the same requests', async () => {
  const cases = [
    { claims: { sub: 'alice', email: 'alice@example.com', groups: ['orders-admins'] }, method: 'DELETE' },
    { claims: { sub: 'bob', email: 'bob@example.com', groups: ['staff'] }, method: 'GET' },
    { claims: { sub: 'bob', email: 'bob@example.com', groups: ['staff'] }, method: 'DELETE' },
    { claims: { sub: 'mallory', email: 'mallory@contractor.example', groups: ['orders-admins'] }, method: 'GET' },
  ];
  await withGateway(yaml, async (g) => {
    for (const c of cases) {
      const jwt = token(c.claims);
      const seen: AccessDecisionEvent[] = [];
      const onEvent = (m: unknown) => seen.push(m as AccessDecisionEvent);
      diagnostics.subscribe('lockgate:access:decision', onEvent);
      let status: number;
      try {
        status = (await call(`${g.url}/orders/1`, { method: c.method, headers: { authorization: `Bearer ${jwt}` } })).status;
      } finally {
        diagnostics.unsubscribe('lockgate:access:decision', onEvent);
      }
      const operation = c.method === 'GET' ? 'get-order' : 'delete-order';
      const r = await explainAsync(['--api', 'orders', '--operation', operation, '--token', jwt, '--method', c.method, '--path', '/orders/1', '--ip', '127.0.0.1', '--json']);
      const d = JSON.parse(r.out) as { allow: boolean; policy: string; reasons: string[] };
      assert.equal(r.code, d.allow ? 0 : 3);
      assert.equal(status === 200, d.allow, `${c.claims.sub} ${c.method}: gateway ${status}, explain ${d.allow}`);
      if (!d.allow) {
        // Denials are published: their policy and reasons are exactly explain's.
        assert.equal(status, 403, `${c.claims.sub} ${c.method}: explain denies (${d.policy}: ${d.reasons.join('; ')}), the gateway answered ${status}`);
        assert.equal(seen.length, 1);
        assert.equal(seen[0].policy, d.policy);
        assert.deepEqual(seen[0].reasons, d.reasons);
      }
    }
  });
});

test('explain --decision replays a logged denial with the same function: same verdict, policy and reasons', async () => {
  const jwt = token({ sub: 'bob', email: 'bob@example.com', groups: ['staff'] });
  const seen: AccessDecisionEvent[] = [];
  const onEvent = (m: unknown) => seen.push(m as AccessDecisionEvent);
  await withGateway(yaml, async (g) => {
    diagnostics.subscribe('lockgate:access:decision', onEvent);
    try {
      assert.equal((await call(`${g.url}/orders/7`, { method: 'DELETE', headers: { authorization: `Bearer ${jwt}` } })).status, 403);
    } finally {
      diagnostics.unsubscribe('lockgate:access:decision', onEvent);
    }
  });
  assert.equal(seen.length, 1);
  // The access log writes the decision as this line (with the request it saw); a foreign line and another id beside it.
  const log = path.join(dir, 'access.log');
  writeFileSync(log, `not json\n${formatAccessDecisionLine({ ...seen[0], decision: 'other-1' })}${formatAccessDecisionLine(seen[0])}`);
  const r = explain(['--decision', seen[0].decision, '--log', log]);
  assert.equal(r.code, 3, r.out + r.err);
  assert.match(r.out, new RegExp(`^logged: deny by default/orders-access \\(decision ${seen[0].decision}, request ${seen[0].requestId}`));
  assert.match(r.out, /replayed with this config: denied by default\/orders-access \(the same decision\)/);
  const j = JSON.parse(explain(['--decision', seen[0].decision, '--log', log, '--json']).out) as { same: boolean; reasons: string[]; request: { method: string; path: string; operation: string; claims: { sub: string } } };
  assert.equal(j.same, true);
  assert.deepEqual(j.reasons, seen[0].reasons);
  assert.deepEqual([j.request.method, j.request.path, j.request.operation, j.request.claims.sub], ['DELETE', '/orders/7', 'delete-order', 'bob']);
  // With a config where staff may delete, the replay says it differs.
  const changed = path.join(dir, 'changed.yaml');
  writeFileSync(changed, yaml.replace('- all: [{ groups: staff }, { method: GET }]', '- groups: staff'));
  const again = spawnSync(process.execPath, [BIN, 'explain', '-c', changed, '--decision', seen[0].decision, '--log', log], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(again.status, 0, again.stdout + again.stderr);
  assert.match(again.stdout, /replayed with this config: allowed by default\/orders-access \(DIFFERENT from the logged one\)/);
  assert.match(explain(['--decision', 'nope-1', '--log', log]).err, /no decision nope-1 in .*only denies and audit decisions are logged/);
  assert.match(explain(['--decision', 'x']).err, /--decision needs --log FILE/);
});

test('explain: usage and config errors exit 1 with a message', () => {
  assert.equal(explain(['--to', 'inventory', '--api', 'orders']).code, 1);
  assert.equal(explain([]).code, 1);
  const unknown = explain(['--to', 'nope']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.err, /MeshService "default\/nope" is not in the config/);
  assert.match(explain(['--api', 'orders', '--operation', 'x']).err, /Api default\/orders has no operation "x" \(get-order, delete-order\)/);
  assert.match(explain(['--api', 'orders', '--token', 'abc']).err, /not a JWS compact token/);
  assert.match(explain(['--api', 'orders', '--at', 'tuesday']).err, /is not a time/);
  assert.match(explain(['--to', 'inventory', '--from', 'a/b/c']).err, /--from "a\/b\/c": write a service as "name" or "namespace\/name"/);
  assert.match(explain(['--to', 'inventory', '--from', 'Bad Name']).err, /--from "Bad Name": cannot make a workload ID/);
  const broken = spawnSync(process.execPath, [BIN, 'explain', '-c', path.join(dir, 'missing.yaml'), '--api', 'orders'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(broken.status, 1);
});

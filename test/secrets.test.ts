// Secrets across processes: `lockgate secrets set` on a real control plane, a NamedValue that puts the secret into a
// set-header of a joined gateway, and a search of everything the test saw for the value: it must appear only in the
// header the backend received and in the one reveal response. Then a master-key rotation with traffic flowing.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'undici';
import { adminCall, apply, HEAD, MeshWorld, startApp, startControlPlane, waitFor, type Child } from './helpers/mesh-processes.ts';

const w = new MeshWorld('lockgate-secrets-');
after(() => w.close());

/** Everything the test captured, by where it came from: searched for the secret at the end. */
const captured: Array<{ where: string; text: string }> = [];
const keep = (where: string, text: unknown): void => void captured.push({ where, text: typeof text === 'string' ? text : JSON.stringify(text) });

test('a secret reaches the backend through a NamedValue and appears nowhere else', { timeout: 110_000 }, async () => {
  const secret = `sv-${randomBytes(18).toString('base64url')}`;
  const rotated = `sv2-${randomBytes(18).toString('base64url')}`;
  const cp = await startControlPlane(w, w.dir('cp'));
  const conn = ['--control-plane', cp.url, '--token', cp.token, '--ca-file', cp.caFile];
  const cli = async (args: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> => {
    const r = stdin === undefined ? await w.cli(args) : await withStdin(args, stdin);
    keep(`lockgate ${args[0]} ${args[1] ?? ''} stdout`, r.stdout);
    keep(`lockgate ${args[0]} ${args[1] ?? ''} stderr`, r.stderr);
    return r;
  };
  /** The CLI with `input` on stdin (execFile cannot write stdin before the child starts reading). */
  const withStdin = (args: string[], input: string): Promise<{ code: number; stdout: string; stderr: string }> => new Promise((resolve) => {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LOCKGATE_'))) as Record<string, string>;
    const p = spawn(process.execPath, [new URL('../bin/lockgate.mjs', import.meta.url).pathname, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    p.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    p.stdin.end(input);
  });

  // 1. The secret, from stdin (never argv).
  const set = await cli(['secrets', 'set', 'backend-password', ...conn], `${secret}\n`);
  assert.equal(set.code, 0, set.stderr);
  assert.match(set.stdout, /secret backend-password version 1 stored/);

  // 2. Config: a NamedValue naming the secret, and a set-header that uses it. An unknown name is refused with its place.
  const app = await startApp(w, 'orders');
  const config = (ref: string): string => `${HEAD}
kind: Gateway
metadata: { name: edge }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  admin: { enabled: true, address: 127.0.0.1, port: 0 }
---
${HEAD}
kind: Backend
metadata: { name: orders }
spec:
  url: http://127.0.0.1:${app.port}
---
${HEAD}
kind: Api
metadata: { name: orders }
spec:
  path: /orders
  backend: orders
  operations: [{ name: any, methods: [GET], urlTemplate: /* }]
---
${HEAD}
kind: NamedValue
metadata: { name: backend-auth }
spec:
  secret: backend-password
---
${HEAD}
kind: ApiPolicy
metadata: { name: orders-inbound }
spec:
  scope: { api: orders }
  inbound:
    - base: {}
    - set-header: { name: x-backend-auth, value: "Basic {{${ref}}}" }
`;
  const badFile = w.dir('bad.yaml');
  writeFileSync(badFile, config('backend-auht'));
  const bad = await cli(['apply', '-f', badFile, ...conn]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /bad\.yaml:\d+:\d+: \{\{backend-auht\}\}: NamedValue "backend-auht" not found in namespace "default" \(did you mean "backend-auth"\?\)/);
  keep('apply output', await apply(w, cp, config('backend-auth')));

  // 3. A joined gateway; the backend gets the secret in the header.
  const token = await cli(['token', 'create', '--service', 'edge', '-n', 'default', '--kind', 'gateway', '--data-dir', cp.dataDir, '--token', cp.token]);
  assert.equal(token.code, 0, token.stderr);
  const gw: Child = await w.spawn(['gateway', '--control-plane', cp.url, '--token', token.stdout.trim(), '--data-dir', w.dir('gw'), '--admin-port', '0'],
    (l) => l.startsWith('{"event":"listening"'), 'gateway');
  const listening = JSON.parse(gw.stdout.find((l) => l.startsWith('{"event":"listening"'))!) as { ports: { http: number }; admin: number };
  const call = async (): Promise<{ status: number; text: string }> => {
    const r = await request(`http://127.0.0.1:${listening.ports.http}/orders/1`, { reset: true, headersTimeout: 10_000, bodyTimeout: 10_000 });
    return { status: r.statusCode, text: await r.body.text() };
  };
  const first = await call();
  assert.equal(first.status, 200, first.text);
  assert.equal(app.seen.at(-1)!.headers['x-backend-auth'], `Basic ${secret}`, 'the backend received the resolved secret');
  // The client's response echoes what the backend saw: that is the backend's doing; kept out of the search below.

  // 4. A new version reaches the gateway with no config change.
  const set2 = await cli(['secrets', 'set', 'backend-password', '--from-file', writeTemp('v2', rotated), ...conn]);
  assert.equal(set2.code, 0, set2.stderr);
  await waitFor('the new secret version at the backend', async () => (await call()).status === 200 && app.seen.at(-1)!.headers['x-backend-auth'] === `Basic ${rotated}`, 20_000).catch((err: Error) => { throw new Error(`${err.message}\n${cp.child.tail(40)}\n${gw.tail(40)}`); });

  // 5. Everything an operator can look at without the reveal permission.
  const list = await cli(['secrets', 'list', ...conn]);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /backend-password\s+2\s+2\s/);
  const show = await cli(['secrets', 'get', 'backend-password', ...conn]);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /latest enabled version 2/);
  for (const args of [['get', '-o', 'yaml'], ['get', 'namedvalue', 'backend-auth', '-o', 'json'], ['get', 'apipolicy', '-o', 'yaml']]) {
    const r = await cli([...args, ...conn]);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  }
  for (const path of ['/v1/config', '/v1/secrets', '/v1/secrets/backend-password', '/v1/secrets/backend-password?version=1', '/v1/status', '/v1/nodes']) {
    const r = await adminCall(cp, 'GET', path);
    keep(`GET ${path} (${r.status})`, r.json);
  }
  // The node writes its last good snapshot after the ACK, at most once a second (the newest always): wait for it.
  let snapshotFile = '';
  await waitFor('the new secret version in the node\'s last good snapshot', async () => {
    snapshotFile = readFileSync(w.dir('gw/snapshot.json'), 'utf8');
    return snapshotFile.includes(rotated);
  }, 10_000).catch(() => undefined);
  assert.ok(snapshotFile.includes(rotated), 'the node keeps the values it needs in its last good snapshot (mode 0600)');
  keep('GET gateway admin /config', await (await request(`http://127.0.0.1:${listening.admin}/config`)).body.text());
  keep('GET gateway admin /metrics', await (await request(`http://127.0.0.1:${listening.admin}/metrics`)).body.text());
  const wrongVersion = await adminCall(cp, 'GET', '/v1/secrets/backend-password?reveal=true&version=9');
  assert.equal(wrongVersion.status, 404);
  keep('reveal of a missing version', wrongVersion.json);

  // 6. The reveal: the value, once, and an audit record without it.
  const reveal = await cli(['secrets', 'get', 'backend-password', '--reveal', '--version', '1', ...conn]);
  assert.equal(reveal.code, 0, reveal.stderr);
  assert.equal(reveal.stdout, `${secret}\n`);
  captured.pop(); // the reveal's stdout: the one place the value must be
  captured.pop();
  keep('reveal stderr', reveal.stderr);
  const audit = await adminCall(cp, 'GET', '/v1/audit?limit=1000');
  keep('audit', audit.json);
  const reveals = (audit.json.records as Array<{ action: string; target: string; actor: string; details?: { version?: number } }>).filter((r) => r.action === 'secret.reveal');
  assert.deepEqual(reveals.map((r) => [r.target, r.details?.version]), [['secret/backend-password', 1]], 'the reveal is audited (the 404 one revealed nothing)');

  // 7. Master-key rotation with the gateway serving; then a restart of the control plane with the new key only.
  const keyFile = writeTemp('new.key', `${randomBytes(32).toString('base64')}\n`);
  const rotate = await cli(['secrets', 'rotate-master', '--new-key-file', keyFile, ...conn]);
  assert.equal(rotate.code, 0, rotate.stderr);
  assert.match(rotate.stdout, /master key rotated from local-[0-9a-f]{16} to local-[0-9a-f]{16}: 2 secret version\(s\)/);
  assert.equal(readFileSync(w.dir('cp/master.key'), 'utf8'), readFileSync(keyFile, 'utf8'), 'the data dir holds the new key');
  assert.equal((await call()).status, 200);
  keep('control plane stdout', cp.child.stdout.join('\n'));
  keep('control plane stderr', cp.child.stderr.join('\n'));
  await cp.child.stop();
  const cp2 = await startControlPlane(w, w.dir('cp'), { port: cp.port, token: cp.token });
  const again = await adminCall(cp2, 'GET', '/v1/secrets/backend-password?reveal=true');
  assert.equal(again.status, 200, JSON.stringify(again.json));
  assert.equal(again.json.value, rotated, 'opened under the new key after the restart');
  await waitFor('the gateway to reconnect and serve', async () => (await call()).status === 200, 20_000);
  assert.equal(app.seen.at(-1)!.headers['x-backend-auth'], `Basic ${rotated}`);

  // 8. The search: no captured text holds either value (the backend's view and the reveals excepted above).
  keep('control plane (restarted) stdout', cp2.child.stdout.join('\n'));
  keep('control plane (restarted) stderr', cp2.child.stderr.join('\n'));
  keep('gateway stdout', gw.stdout.join('\n'));
  keep('gateway stderr', gw.stderr.join('\n'));
  await gw.stop();
  keep('gateway stderr after stop', gw.stderr.join('\n'));
  for (const c of captured) {
    for (const v of [secret, rotated]) assert.ok(!c.text.includes(v), `the secret appears in ${c.where}:\n${c.text.slice(0, 2000)}`);
  }
  assert.ok(captured.length > 30, `searched ${captured.length} captures`);
  await cp2.child.stop();
});

function writeTemp(name: string, text: string): string {
  const file = w.dir(name);
  writeFileSync(file, text, { mode: 0o600 });
  return file;
}

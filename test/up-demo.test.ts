// `lockgate up` (what `npm start` runs): the demo gateway and services come up and answer the printed curl commands,
// and every identity scenario it prints works as printed (tokens from the development provider, 200/403/401, an
// access request bob makes and alice approves, run as the printed commands, then revoked).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { request } from 'undici';
import { CookieJar, approveDevice } from './helpers/oidc-provider.ts';

const BIN = path.resolve(import.meta.dirname, '../bin/lockgate.mjs');

let proc: ChildProcess;
let out = '';
let urls: { gw: string; admin: string };

before(async () => {
  proc = spawn(process.execPath, [BIN, 'up', '--port', '0', '--admin-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  urls = await new Promise<{ gw: string; admin: string }>((resolve, reject) => {
    // The summary is printed once every part answers (the last line of it names the gateway's access log).
    const timer = setTimeout(() => reject(new Error(`no summary printed:\n${out}\n${err}`)), 90_000);
    proc.stdout!.on('data', () => {
      const gw = /gateway\s+(http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      const admin = /admin\s+(http:\/\/127\.0\.0\.1:\d+)\/healthz/.exec(out);
      if (gw && admin && out.includes('Ctrl-C stops everything')) {
        clearTimeout(timer);
        resolve({ gw: gw[1], admin: admin[1] });
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code}:\n${out}\n${err}`));
    });
  });
});

after(async () => {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill('SIGINT');
  const [code] = (await once(proc, 'exit')) as [number | null];
  assert.equal(code, 0, 'Ctrl-C stops everything cleanly');
});

test('lockgate up serves the demo: the mesh (mTLS identities, canary, denied call), the edge demo', async () => {
  assert.match(out, /curl -i http:\/\/127\.0\.0\.1:\d+\/orders\/1/);
  // The mesh: gateway → orders → inventory over mTLS; inventory saw orders' verified identity.
  const shop = await request(`${urls.gw}/shop/orders/1`);
  assert.equal(shop.statusCode, 200);
  const sb = (await shop.body.json()) as { inventory: { status: number; body: { caller: string; version: string } } };
  assert.equal(sb.inventory.status, 200);
  assert.equal(sb.inventory.body.caller, 'spiffe://lockgate.local/ns/shop/sa/orders');
  // The canary: 90/10 with smooth weighted round-robin is exact over any 10 consecutive calls of one caller.
  const versions: Record<string, number> = {};
  for (let i = 0; i < 20; i++) {
    const r = await request(`${urls.gw}/shop/orders/1`);
    const v = ((await r.body.json()) as { inventory: { body: { version: string } } }).inventory.body.version;
    versions[v] = (versions[v] ?? 0) + 1;
  }
  assert.deepEqual(versions, { v1: 18, v2: 2 });
  // The denied call: orders may only read stock; inventory's sidecar refuses the DELETE with a decision id.
  const cancel = await request(`${urls.gw}/shop/orders/1/cancel`, { method: 'POST' });
  const cb = (await cancel.body.json()) as { inventory: { status: number; body: { error: { code: string; decision: string } } } };
  assert.equal(cancel.statusCode, 403, 'orders passes inventory\'s refusal on as its own status');
  assert.equal(cb.inventory.status, 403);
  assert.equal(cb.inventory.body.error.code, 'access_denied');
  assert.ok(cb.inventory.body.error.decision);
  const order = await request(`${urls.gw}/orders/1`);
  assert.equal(order.statusCode, 200);
  assert.deepEqual(await order.body.json(), { id: '1', item: 'keyboard', quantity: 1, status: 'shipped' });
  const created = await request(`${urls.gw}/orders`, { method: 'POST', body: '{"item":"cable"}' });
  assert.equal(created.statusCode, 201);
  await created.body.dump();
  const echo = await request(`${urls.gw}/echo/anything?x=1`);
  assert.equal(((await echo.body.json()) as { url: string }).url, '/anything?x=1');
  const missing = await request(`${urls.gw}/nowhere`);
  assert.equal(missing.statusCode, 404);
  assert.equal(((await missing.body.json()) as { message: string }).message, 'Resource not found');
  // The protected demo Api: 401 without a key, 200 with the key printed in the curl command.
  const noKey = await request(`${urls.gw}/partners/hello`);
  assert.equal(noKey.statusCode, 401);
  await noKey.body.dump();
  const key = /Ocp-Apim-Subscription-Key: ([0-9a-f]{32})'/.exec(out)?.[1];
  assert.ok(key, `no key printed:\n${out}`);
  const withKey = await request(`${urls.gw}/partners/hello`, { headers: { 'ocp-apim-subscription-key': key } });
  assert.equal(withKey.statusCode, 200);
  assert.equal(((await withKey.body.json()) as { url: string }).url, '/hello');
  // The rate limit the printed curl loop trips: 5 calls a minute per subscription (one was made above).
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = await request(`${urls.gw}/partners/hello`, { headers: { 'ocp-apim-subscription-key': key } });
    await r.body.dump();
    statuses.push(r.statusCode);
  }
  assert.deepEqual(statuses, [200, 200, 200, 200, 429]);
  assert.match(out, /for i in 1 2 3 4 5 6 7; do curl/);
  // Two versions imported from OpenAPI: v1 answers from the document's example (mock-response), no version is v1.
  const v1 = await request(`${urls.gw}/catalog/v1/products/1`);
  assert.equal(v1.statusCode, 200);
  assert.deepEqual(await v1.body.json(), { id: 1, name: 'keyboard', price: 49.5 });
  const dflt = await request(`${urls.gw}/catalog/products`);
  assert.deepEqual(((await dflt.body.json()) as unknown[]).length, 2);
  const v2 = await request(`${urls.gw}/catalog/v2/products/7`);
  assert.equal(((await v2.body.json()) as { url: string }).url, '/products/7');
  const metrics = await (await request(`${urls.admin}/metrics`)).body.text();
  assert.match(metrics, /lockgate_requests_total\{api="orders",operation="get-order",backend="default\/orders",status="200"\} 1/);
});


interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- bodies are read field by field
  json: any;
  text: string;
}

async function call(url: string, token?: string): Promise<Reply> {
  const r = await request(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await r.body.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.statusCode, headers: r.headers, json, text };
}

/** Runs printed shell lines as printed, with `npx lockgate` meaning this checkout's CLI on this Node. */
function shell(lines: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = ['set -e', ...lines.map((l) => l.replaceAll('npx lockgate', `'${process.execPath}' '${BIN}'`))].join('\n');
  return new Promise((resolve) => {
    execFile('bash', ['-c', script], { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

/** Polls until `check` passes or the deadline; returns how long it took. */
async function within(ms: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) assert.fail(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return Date.now() - start;
}

/** The printed line that starts (after indentation) with `prefix`. */
function line(prefix: string): string {
  const l = out.split('\n').map((x) => x.trim()).find((x) => x.startsWith(prefix));
  assert.ok(l, `no line starting with ${JSON.stringify(prefix)} printed:\n${out}`);
  return l;
}

test('lockgate up demo: identity at every hop (alice 200, bob 403 at inventory, no token 401) and just-in-time access', async () => {
  // Tokens the way the printed commands get them: one GET of the development provider's token URL.
  const aliceUrl = /^ALICE=\$\(curl -s (\S+)\)$/.exec(line('ALICE='))?.[1];
  const bobUrl = /^BOB=\$\(curl -s (\S+)\)$/.exec(line('BOB='))?.[1];
  assert.ok(aliceUrl && bobUrl);
  const ALICE = (await call(aliceUrl)).text.trim();
  const BOB = (await call(bobUrl)).text.trim();
  const claims = (t: string): Record<string, unknown> => JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString()) as Record<string, unknown>;
  assert.deepEqual([claims(ALICE).sub, claims(ALICE).email, claims(ALICE).groups], ['alice', 'alice@example.com', ['orders-admins']]);
  assert.deepEqual([claims(BOB).sub, claims(BOB).email, claims(BOB).groups], ['bob', 'bob@example.com', ['staff']]);

  const url = /^curl -s -H "Authorization: Bearer \$ALICE" (\S+)$/.exec(line('curl -s -H "Authorization: Bearer $ALICE"'))?.[1];
  assert.ok(url);
  assert.equal(line('curl -s -H "Authorization: Bearer $BOB"'), `curl -s -H "Authorization: Bearer $BOB" ${url}`);
  assert.equal(line(`curl -i ${url}`), `curl -i ${url}`);

  // alice (orders-admins): through the gateway, orders and inventory, which saw her as the end user.
  const a = await call(url, ALICE);
  assert.equal(a.status, 200, a.text);
  assert.equal(a.json.inventory.status, 200, a.text);
  assert.equal(a.json.inventory.body.user, 'alice@example.com');
  assert.equal(a.json.inventory.body.caller, 'spiffe://lockgate.local/ns/shop/sa/orders');
  assert.ok(a.json.inventory.body.supplier);

  // bob (staff): the gateway lets him in, inventory's sidecar does not; the body names the hop and the decision.
  const denied = async (): Promise<Reply> => {
    const b = await call(url, BOB);
    assert.equal(b.status, 403, b.text);
    const e = b.json.inventory.body.error;
    assert.equal(e.code, 'access_denied', b.text);
    assert.equal(e.hop, 'sidecar shop/inventory');
    assert.match(e.decision, /^[0-9a-f]{8}-[0-9a-z]+$/);
    assert.match(e.message, /shop\/inventory-readers/);
    return b;
  };
  await denied();

  // No token: 401 at the gateway, with a challenge.
  const none = await call(url);
  assert.equal(none.status, 401, none.text);
  assert.match(String(none.headers['www-authenticate']), /^Bearer realm="lockgate"/);
  assert.match(none.json.message, /Authentication required/);

  // bob asks and alice approves with the printed commands; bob passes within a couple of seconds.
  const ask = line('REQ=$(npx lockgate access request');
  const approve = line('npx lockgate access approve "$REQ"');
  const jit = await shell([ask, approve, 'echo "REQ=$REQ"'], { ALICE, BOB });
  assert.equal(jit.code, 0, `${jit.stdout}\n${jit.stderr}`);
  const req = /^REQ=(ar-[0-9a-f]+)$/m.exec(jit.stdout)?.[1];
  assert.ok(req, jit.stdout);
  assert.match(jit.stdout, new RegExp(`^${req}  approved \\(active\\)$`, 'm'));
  assert.match(jit.stdout, /approved by alice@example\.com at /);
  assert.match(jit.stdout, /requester {2}bob@example\.com/);
  const took = await within(3000, 'bob passes after the approval', async () => (await call(url, BOB)).status === 200);
  const b = await call(url, BOB);
  assert.equal(b.json.inventory.body.user, 'bob@example.com', b.text);
  assert.ok(took < 3000);

  // The printed show, revoke and audit commands work as printed; after the revoke bob is denied again at once.
  const show = await shell([line('npx lockgate access show "$REQ"')], { REQ: req });
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /access {5}\S+ until \S+/);
  const revoke = await shell([line('npx lockgate access revoke "$REQ"')], { REQ: req });
  assert.equal(revoke.code, 0, revoke.stderr);
  assert.match(revoke.stdout, new RegExp(`^${req}  revoked$`, 'm'));
  await within(3000, 'bob denied after the revoke', async () => (await call(url, BOB)).status === 403);
  await denied();
  const audit = await shell([line('npx lockgate audit export --data-dir')], {});
  assert.equal(audit.code, 0, audit.stderr);
  const actions = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as { action: string; actor: string; target: string }).filter((r) => r.target === `access-request/${req}`);
  assert.deepEqual(actions.map((r) => r.action), ['access.request', 'access.approve', 'access.revoke']);
  assert.deepEqual(actions.slice(0, 2).map((r) => r.actor), ['bob@example.com', 'alice@example.com']);
});

test('lockgate up demo: alice signs in with the printed lockgate login (device code), then acts with her role in shop only', async () => {
  const configDir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-up-login-'));
  const env = { LOCKGATE_CONFIG_DIR: configDir };
  try {
    const login = line('npx lockgate login');
    const script = login.replaceAll('npx lockgate', `'${process.execPath}' '${BIN}'`);
    const child = spawn('bash', ['-c', script], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no sign-in URL printed:\n${stderr}`)), 15_000);
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        const m = /open (\S+)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    // The person's side: the demo provider's device pages, signing in as alice.
    await approveDevice(new CookieJar(), url, 'alice');
    const [code] = (await once(child, 'exit')) as [number];
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.match(stdout, /alice@example\.com/);
    const who = await shell([line('npx lockgate whoami')], env);
    assert.equal(who.code, 0, who.stderr);
    assert.match(who.stdout, /admin/);
    assert.match(who.stdout, /shop/);
    const get = await shell([line('npx lockgate get meshservices -n shop')], env);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, /inventory/);
    const elsewhere = await shell([line('npx lockgate get meshservices -n shop').replace('-n shop', '-n default')], env);
    assert.notEqual(elsewhere.code, 0, 'namespace default is not hers');
    assert.match(elsewhere.stderr, /403|may not/);
    const made = await shell([line('npx lockgate admin-token create')], env);
    assert.equal(made.code, 0, made.stderr);
    assert.match(made.stdout, /^lgadm\.[0-9a-f]{16}\./m);
  } finally {
    rmSync(configDir, { recursive: true, force: true });
  }
});

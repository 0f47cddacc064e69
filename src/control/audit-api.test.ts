// Tests for the audit routes and the admin API's records, over a real HTTPS server, an in-memory config store and a
// real AuditLog in a temporary directory.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { writeFileAtomic } from '../agent/atomic-file.ts';
import { CertificateAuthority } from '../ca/certificate-authority.ts';
import { LocalKeyWrapper } from '../secrets/key-wrapper.ts';
import { AuditLog } from '../store/audit-log.ts';
import type { AuditRecord } from '../store/audit-record.ts';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import { adminApiRoutes } from './admin-api.ts';
import { auditApiRoutes, redactDocument, REASON_HEADER, REDACTED } from './audit-api.ts';
import { caApiRoutes, StoredCa } from './ca-api.ts';
import { adminTokenVerifier, ensureBootstrapToken } from './bootstrap-token.ts';
import { ControlServer } from './control-server.ts';

const TD = 'test.local';
const HEAD = 'apiVersion: lockgate.dev/v1alpha1';
const backend = (name: string, port = 9000): string => `${HEAD}\nkind: Backend\nmetadata:\n  name: ${name}\nspec:\n  url: http://127.0.0.1:${port}\n`;

const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-audit-api-'));
let store: MemoryConfigStore;
let audit: AuditLog;
let server: ControlServer;
let token: string;
let bundle: string;
let t = Date.parse('2026-11-27T02:00:00Z');

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: () => any;
}

function call(method: string, p: string, body?: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: server.port, method, path: p, ca: bundle, agent: false, checkServerIdentity: () => undefined, headers: { authorization: `Bearer ${token}`, ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text, json: () => JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

before(async () => {
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const cp = await ca.issueWithKey(`spiffe://${TD}/ns/lockgate-system/sa/control-plane`, 3_600_000);
  bundle = ca.trustBundle().join('');
  store = new MemoryConfigStore();
  token = (await ensureBootstrapToken(store)).token!;
  const wrapper = new LocalKeyWrapper(randomBytes(32));
  audit = await AuditLog.open({ dataDir: dir, wrapper, writeFile: (p, text) => writeFileAtomic(p, text), now: () => (t += 1000) });
  const { stored } = await StoredCa.open({ store, wrapper, trustDomain: TD });
  const caRoutes = caApiRoutes({ ca: stored, nodes: () => [], lifetimeMs: () => 3_600_000, audit, log: () => {} });
  server = await ControlServer.listen({
    routes: [...adminApiRoutes({ store, version: '9.9.9', audit }), ...auditApiRoutes({ audit }), ...caRoutes], trustDomain: TD, verifyAdminToken: adminTokenVerifier(store),
    tls: { cert: cp.chainPem, key: cp.keyPem, ca: ca.trustBundle() },
  });
});

after(async () => {
  await server.close();
  await audit.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const records = async (after = 0): Promise<AuditRecord[]> => {
  const r = await call('GET', `/v1/audit?after=${after}`);
  assert.equal(r.status, 200, r.text);
  return r.json().records as AuditRecord[];
};

test('the audit routes refuse a caller without the admin token', async () => {
  for (const [m, p] of [['GET', '/v1/audit'], ['GET', '/v1/audit/head'], ['POST', '/v1/audit/verify']]) {
    assert.equal((await call(m, p, undefined, { authorization: '' })).status, 401, `${m} ${p}`);
  }
});

test('PUT, DELETE and apply are recorded with actor, reason, request id, before and after; no-ops and dry runs are not', async () => {
  const created = await call('PUT', '/v1/config/Backend/default/orders', backend('orders'), { [REASON_HEADER]: 'ticket OPS-1' });
  assert.equal(created.status, 201, created.text);
  const updated = await call('PUT', '/v1/config/Backend/default/orders', backend('orders', 9001));
  assert.equal(updated.status, 200);
  assert.equal((await call('PUT', '/v1/config/Backend/default/orders', backend('orders', 9001))).json().changed, false);
  assert.equal((await call('POST', '/v1/config:apply?dryRun=true', backend('dry'))).status, 200);
  const applied = await call('POST', '/v1/config:apply?prune=true', backend('payments'), { [REASON_HEADER]: 'replace\tall' });
  assert.equal(applied.status, 200, applied.text);
  const deleted = await call('DELETE', '/v1/config/Backend/default/payments');
  assert.equal(deleted.status, 200, deleted.text);

  const rs = await records();
  assert.deepEqual(rs.map((r) => [r.seq, r.action, r.target]), [
    [1, 'config.create', 'Backend/default/orders'],
    [2, 'config.update', 'Backend/default/orders'],
    [3, 'config.create', 'Backend/default/payments'],
    [4, 'config.delete', 'Backend/default/orders'],
    [5, 'config.delete', 'Backend/default/payments'],
  ]);
  assert.equal(rs[0].reason, 'ticket OPS-1');
  assert.equal(rs[0].requestId, created.headers['x-request-id']);
  assert.equal(rs[0].before, null);
  assert.equal(rs[0].after, backend('orders'));
  assert.equal(rs[1].before, backend('orders'));
  assert.equal(rs[1].after, backend('orders', 9001));
  assert.equal(rs[2].reason, 'replace all', 'control characters in a reason become spaces');
  assert.equal(rs[2].requestId, applied.headers['x-request-id']);
  assert.equal(rs[3].requestId, applied.headers['x-request-id'], 'one apply, one request id for each of its records');
  assert.equal(rs[4].after, null);
  assert.equal(rs[4].details?.revision, deleted.json().revision);
  assert.ok(rs.every((r) => r.actor !== '' && r.actor !== 'anonymous'), 'the admin subject is the actor');
  assert.deepEqual((await records(3)).map((r) => r.seq), [4, 5]);

  const head = (await call('GET', '/v1/audit/head')).json();
  assert.equal(head.head.count, 5);
  assert.equal(head.head.lastHash, rs[4].hash);
  assert.match(head.publicKey, /BEGIN PUBLIC KEY/);
  const verified = (await call('POST', '/v1/audit/verify')).json();
  assert.deepEqual([verified.ok, verified.records, verified.problems], [true, 5, []]);
});

test('CA rotation steps and renewals are recorded with the fingerprints before and after, never a key', async () => {
  const before = (await call('GET', '/v1/ca')).json();
  const renewed = await call('POST', '/v1/ca/intermediate/renew', undefined, { [REASON_HEADER]: 'yearly' });
  assert.equal(renewed.status, 200, renewed.text);
  assert.equal((await call('POST', '/v1/ca/rotate/start')).status, 200);
  assert.equal((await call('POST', '/v1/ca/rotate/finish')).status, 200);
  const rs = (await records()).filter((r) => r.action.startsWith('ca.'));
  assert.deepEqual(rs.map((r) => [r.action, r.target]), [['ca.renew-intermediate', 'ca'], ['ca.rotate-start', 'ca'], ['ca.rotate-finish', 'ca']]);
  assert.equal(rs[0].reason, 'yearly');
  assert.equal(rs[0].requestId, renewed.headers['x-request-id']);
  const [b, a] = [JSON.parse(rs[0].before!), JSON.parse(rs[0].after!)];
  assert.equal(b.intermediate, before.intermediate.fingerprint);
  assert.equal(a.intermediate, renewed.json().intermediate.fingerprint);
  assert.notEqual(a.intermediate, b.intermediate);
  assert.equal(JSON.parse(rs[1].after!).roots.length, 2);
  assert.equal(JSON.parse(rs[2].after!).roots.length, 1);
  assert.ok(rs.every((r) => !/PRIVATE|BEGIN/.test(`${r.before}${r.after}`)));
  assert.equal((await call('POST', '/v1/audit/verify')).json().ok, true);
});

test('bad paging parameters are 400', async () => {
  assert.equal((await call('GET', '/v1/audit?after=-1')).status, 400);
  assert.equal((await call('GET', '/v1/audit?limit=5000')).status, 400);
  assert.equal((await call('GET', '/v1/audit?since=yesterday')).status, 400);
  assert.equal((await call('GET', '/v1/audit?since=2026-11-27')).status, 200);
});

test('secret-valued fields are redacted from recorded documents; documents without any are kept as written', () => {
  const policy = `${HEAD}\nkind: ApiPolicy\nmetadata: { name: p }\nspec:\n  inbound:\n    - authentication-basic: { username: u, password: hunter2 }\n    - validate-jwt: { hmac: c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI= }\n`;
  const out = redactDocument(policy)!;
  assert.doesNotMatch(out, /hunter2|c2VjcmV0/);
  assert.equal(out.split(REDACTED).length - 1, 2);
  assert.match(out, /username: u/);
  assert.equal(redactDocument(backend('x')), backend('x'));
  assert.equal(redactDocument(undefined), null);
  assert.doesNotMatch(redactDocument('a: [password: x')!, /x/);
});

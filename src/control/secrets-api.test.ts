// Tests for the secrets routes over a real HTTPS server: metadata only without reveal, the reveal permission and its
// audit record, error bodies that never quote a value, and master-key rotation of secrets and the CA.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:https';
import { after, before, test } from 'node:test';
import { CertificateAuthority } from '../ca/certificate-authority.ts';
import { LocalKeyWrapper } from '../secrets/key-wrapper.ts';
import { MasterKeys } from '../secrets/master-keys.ts';
import { SecretStore } from '../secrets/secret-store.ts';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import { adminTokenVerifier, ensureBootstrapToken } from './bootstrap-token.ts';
import { envelopeCipher } from './backup-api.ts';
import { CA_STATE_KEY, StoredCa } from './ca-api.ts';
import type { Caller } from './control-routes.ts';
import { ControlServer } from './control-server.ts';
import { masterKeyRotation } from './master-key-rotation.ts';
import { secretsApiRoutes, type SecretAudit } from './secrets-api.ts';

const TD = 'test.local';
let store: MemoryConfigStore;
let server: ControlServer;
let token: string;
let bundle: string;
let keys: MasterKeys;
let stored: StoredCa;
const audited: SecretAudit[] = [];
let auditFails = false;
let revealAllowed = (caller: Caller): boolean => caller.kind === 'admin';
const logged: string[] = [];

interface Reply { status: number; text: string; headers: Record<string, string | string[] | undefined> }

function call(method: string, path: string, body?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = request(
      { host: '127.0.0.1', port: server.port, method, path, ca: bundle, agent: false, checkServerIdentity: () => undefined,
        headers: { authorization: `Bearer ${token}`, ...(text !== undefined ? { 'content-type': 'application/json' } : {}) } },
      (res) => {
        let out = '';
        res.setEncoding('utf8').on('data', (c: string) => (out += c)).on('end', () => resolve({ status: res.statusCode!, text: out, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end(text);
  });
}

before(async () => {
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const cp = await ca.issueWithKey(`spiffe://${TD}/ns/lockgate-system/sa/control-plane`, 3_600_000);
  bundle = ca.trustBundle().join('');
  store = new MemoryConfigStore();
  token = (await ensureBootstrapToken(store)).token!;
  keys = new MasterKeys(new LocalKeyWrapper(randomBytes(32)));
  stored = (await StoredCa.open({ store, wrapper: keys, openWith: () => keys.all(), trustDomain: TD })).stored;
  const secrets = new SecretStore({ store, keys });
  server = await ControlServer.listen({
    routes: secretsApiRoutes({
      secrets,
      mayReveal: (c) => revealAllowed(c),
      audit: { append: async (e) => {
        if (auditFails) throw new Error('audit store down');
        audited.push(e);
      } },
      log: (event, fields) => logged.push(JSON.stringify({ event, ...fields })),
      rotateMaster: masterKeyRotation({ keys, secrets, sealed: [{ what: 'ca', reseal: (signal) => stored.reseal(signal) }] }),
    }),
    trustDomain: TD, verifyAdminToken: adminTokenVerifier(store),
    tls: { cert: cp.chainPem, key: cp.keyPem, ca: ca.trustBundle() },
  });
});

after(async () => {
  await server.close();
  await store.close();
});

test('set, list and show answer metadata only; reveal answers the value and is audited without it', async () => {
  const value = `pw-${randomBytes(12).toString('hex')}`;
  const set = await call('PUT', '/v1/secrets/db-password', { value });
  assert.equal(set.status, 201, set.text);
  assert.deepEqual(JSON.parse(set.text).version, 1);
  await call('PUT', '/v1/secrets/db-password', { value: `${value}-2` });
  const seen = [set.text];
  for (const path of ['/v1/secrets', '/v1/secrets/db-password', '/v1/secrets/db-password?version=1', '/v1/secrets/db-password?reveal=false']) {
    const r = await call('GET', path);
    assert.equal(r.status, 200, `${path}: ${r.text}`);
    seen.push(r.text);
  }
  assert.match(seen[2], /"latest":2/);
  const reveal = await call('GET', '/v1/secrets/db-password?reveal=true&version=1');
  assert.equal(reveal.status, 200, reveal.text);
  assert.equal(JSON.parse(reveal.text).value, value);
  assert.equal(reveal.headers['cache-control'], 'no-store');
  assert.deepEqual(audited.map((a) => `${a.action} ${a.target} ${JSON.stringify(a.details)}`), [
    'secret.set secret/db-password {"version":1}', 'secret.set secret/db-password {"version":2}', 'secret.reveal secret/db-password {"version":1}',
  ]);
  const rec = audited[2];
  assert.match(rec.actor, /^admin-token:/);
  assert.equal(rec.requestId, reveal.headers['x-request-id']);
  for (const text of [...seen, JSON.stringify(audited), ...logged]) assert.ok(!text.includes(value), text);
});

test('reveal needs the permission; a reveal that cannot be audited is refused', async () => {
  const value = `tok-${randomBytes(12).toString('hex')}`;
  await call('PUT', '/v1/secrets/api-token', { value });
  const before = audited.length;
  revealAllowed = () => false;
  try {
    const r = await call('GET', '/v1/secrets/api-token?reveal=true');
    assert.equal(r.status, 403);
    assert.match(JSON.parse(r.text).error.message, /reveal permission/);
  } finally {
    revealAllowed = (caller) => caller.kind === 'admin';
  }
  auditFails = true;
  try {
    const r = await call('GET', '/v1/secrets/api-token?reveal=true');
    assert.equal(r.status, 503);
    assert.ok(!r.text.includes(value));
  } finally {
    auditFails = false;
  }
  assert.ok(!audited.slice(before).some((a) => a.action === 'secret.reveal'), 'neither refused reveal was recorded as one');
});

test('error bodies never quote what was sent', async () => {
  const value = `leak-${randomBytes(8).toString('hex')}`;
  const replies = [
    await call('PUT', '/v1/secrets/x', `{"value": "${value}"`), // not JSON
    await call('PUT', '/v1/secrets/x', { secret: value }),
    await call('PUT', '/v1/secrets/Bad_Name', { value }),
    await call('GET', '/v1/secrets/nope?reveal=true'),
    await call('GET', '/v1/secrets/x?version=abc'),
    await call('POST', '/v1/secrets:rotate-master', { key: value }),
  ];
  assert.deepEqual(replies.map((r) => r.status), [400, 400, 400, 404, 400, 400]);
  for (const r of replies) {
    assert.ok(!r.text.includes(value), r.text);
    assert.ok(JSON.parse(r.text).error.requestId);
  }
});

test('rotate-master re-wraps every secret and the CA under the new key; the old key is not needed after', async () => {
  const values = new Map<string, string>();
  for (let i = 0; i < 5; i++) {
    const v = `rot-${i}-${randomBytes(6).toString('hex')}`;
    await call('PUT', `/v1/secrets/rot-${i}`, { value: v });
    values.set(`rot-${i}`, v);
  }
  const oldKey = keys.current;
  const cipher = envelopeCipher(keys); // made at start, as the backup routes are
  const fresh = randomBytes(32);
  const newKey = new LocalKeyWrapper(Buffer.from(fresh));
  const r = await call('POST', '/v1/secrets:rotate-master', { key: fresh.toString('hex') });
  assert.equal(r.status, 200, r.text);
  const body = JSON.parse(r.text);
  assert.equal(body.previousKeyId, oldKey.keyId);
  assert.equal(body.keyId, newKey.keyId);
  assert.deepEqual(body.resealed, ['ca']);
  assert.ok(body.secretsRewrapped >= 5);
  assert.equal(keys.rotating, false, 'the old key was forgotten');
  assert.equal(cipher.keyId, newKey.keyId, 'backups made from now on name the key they are sealed under');
  // Everything opens with the new key alone, nothing with the old one.
  const onlyNew = new SecretStore({ store, keys: new MasterKeys(newKey) });
  for (const [name, v] of values) assert.equal((await onlyNew.get(name)).value, v);
  const caState = (await store.get(CA_STATE_KEY))!.value;
  await CertificateAuthority.load(caState, [newKey]);
  await assert.rejects(CertificateAuthority.load(caState, [oldKey]));
  await assert.rejects(new SecretStore({ store, keys: new MasterKeys(oldKey) }).get('rot-0'), /not among the configured keys/);
  // Reveal still works through the API, and the same key again is a conflict.
  assert.equal(JSON.parse((await call('GET', '/v1/secrets/rot-3?reveal=true')).text).value, values.get('rot-3'));
  assert.equal((await call('POST', '/v1/secrets:rotate-master', { key: fresh.toString('hex') })).status, 409);
});

test('disable and enable a version, delete a secret', async () => {
  await call('PUT', '/v1/secrets/flip', { value: 'one' });
  await call('PUT', '/v1/secrets/flip', { value: 'two' });
  const off = await call('PATCH', '/v1/secrets/flip/2', { enabled: false });
  assert.equal(off.status, 200, off.text);
  assert.equal(JSON.parse(off.text).enabled, false);
  assert.equal(JSON.parse((await call('GET', '/v1/secrets/flip?reveal=true')).text).value, 'one', 'the newest enabled version');
  assert.equal((await call('GET', '/v1/secrets/flip?reveal=true&version=2')).status, 400);
  assert.equal((await call('PATCH', '/v1/secrets/flip/2', { enabled: 'no' })).status, 400);
  assert.equal((await call('PATCH', '/v1/secrets/flip/9', { enabled: true })).status, 404);
  assert.equal(JSON.parse((await call('PATCH', '/v1/secrets/flip/2', { enabled: true })).text).enabled, true);
  assert.equal(JSON.parse((await call('GET', '/v1/secrets/flip?reveal=true')).text).value, 'two');
  const del = await call('DELETE', '/v1/secrets/flip');
  assert.deepEqual(JSON.parse(del.text), { name: 'flip', deletedVersions: 2 });
  assert.equal((await call('GET', '/v1/secrets/flip')).status, 404);
  assert.deepEqual(audited.filter((a) => a.target === 'secret/flip' && a.action !== 'secret.set' && a.action !== 'secret.reveal').map((a) => a.action), ['secret.disable', 'secret.enable', 'secret.delete']);
});

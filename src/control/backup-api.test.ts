// Tests for GET /v1/backup over a real HTTPS server: admin only, the archive opens with the control plane's key.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:https';
import { after, before, test } from 'node:test';
import { CertificateAuthority } from '../ca/certificate-authority.ts';
import { LocalKeyWrapper } from '../secrets/key-wrapper.ts';
import { openBackupArchive } from '../store/backup-archive.ts';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import { backupApiRoutes, envelopeCipher } from './backup-api.ts';
import { adminTokenVerifier, ensureBootstrapToken } from './bootstrap-token.ts';
import { ControlServer } from './control-server.ts';

const TD = 'backup.test';
let store: MemoryConfigStore;
let server: ControlServer;
let wrapper: LocalKeyWrapper;
let token: string;
let bundle: string;
const events: Array<Record<string, unknown>> = [];

function call(path: string, auth?: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: server.port, path, ca: bundle, agent: false, checkServerIdentity: () => undefined, headers: auth ? { authorization: `Bearer ${auth}` } : {} },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text }));
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end();
  });
}

before(async () => {
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const cp = await ca.issueWithKey(`spiffe://${TD}/ns/lockgate-system/sa/control-plane`, 3_600_000);
  bundle = ca.trustBundle().join('');
  wrapper = new LocalKeyWrapper(randomBytes(32));
  store = new MemoryConfigStore();
  token = (await ensureBootstrapToken(store)).token!;
  await store.put('/ca/state', await ca.save(wrapper));
  await store.put('/config/Backend/default/orders', 'kind: Backend\n');
  server = await ControlServer.listen({
    routes: backupApiRoutes({ store, wrapper, trustDomain: () => ca.trustDomain, now: () => Date.UTC(2025, 5, 1), log: (event, fields) => events.push({ event, ...fields }) }),
    trustDomain: TD, verifyAdminToken: adminTokenVerifier(store),
    tls: { cert: cp.chainPem, key: cp.keyPem, ca: ca.trustBundle() },
  });
});

after(async () => {
  await server.close();
  await store.close();
});

test('GET /v1/backup needs an admin', async () => {
  assert.equal((await call('/v1/backup')).status, 401);
  assert.equal((await call('/v1/backup', 'lgadm.0000000000000000.wrong')).status, 401);
});

test('GET /v1/backup answers the sealed archive of every key, which opens with the same master key only', async () => {
  const r = await call('/v1/backup', token);
  assert.equal(r.status, 200, r.text);
  assert.match(String(r.headers['content-type']), /^application\/json/);
  assert.equal(r.headers['cache-control'], 'no-store');
  assert.match(String(r.headers['content-disposition']), /filename="lockgate-backup-2025-06-01T00-00-00-000Z\.json"/);
  const { header, entries } = await openBackupArchive(r.text, envelopeCipher(wrapper));
  assert.equal(header.trustDomain, TD);
  assert.equal(header.keyId, wrapper.keyId);
  assert.equal(header.revision, await store.revision());
  assert.deepEqual(entries.map((e) => e.key), ['/ca/state', '/config/Backend/default/orders', (await store.range('/tokens/admin/')).kvs[0].key]);
  assert.equal(entries[0].value, (await store.get('/ca/state'))!.value, 'the CA state is copied as stored (its keys stay sealed)');
  assert.ok(!r.text.includes('BEGIN'), 'no PEM (not even the certificates) outside the sealed payload');
  await assert.rejects(openBackupArchive(r.text, envelopeCipher(new LocalKeyWrapper(randomBytes(32)))), /sealed under master key/);
  assert.deepEqual(events.map((e) => [e.event, e.revision, e.by]), [['backup_created', header.revision, token.split('.').slice(0, 2).join('.').replace('lgadm.', 'admin-token:')]]);
});

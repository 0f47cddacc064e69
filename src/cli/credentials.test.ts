// The credential store: where it lives, file modes, atomic writes, corrupt files, and renewing the ID token.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CookieJar, DEVICE_CLIENT, OidcFixture, approveDevice, jwtClaims, oidcProviderMissing } from '../../test/helpers/oidc-provider.ts';
import { AdminClientError, resolveTarget } from './admin-client.ts';
import { configDir, credentialsFile, freshIdToken, loadCredential, removeCredential, saveCredential, type Credential } from './credentials.ts';
import { DeviceFlowError, deviceLogin, type TokenSet } from './device-flow.ts';

const ORIGIN = 'https://127.0.0.1:9443';
const NOW = Date.parse('2030-01-01T00:00:00Z');

function cred(over: Partial<Credential> = {}): Credential {
  return {
    provider: 'lockgate-system/corp',
    issuer: 'http://127.0.0.1:1',
    clientId: 'lockgate-cli',
    tokenEndpoint: 'http://127.0.0.1:1/token',
    idToken: 'id-1',
    refreshToken: 'rt-1',
    expiresAt: new Date(NOW + 3_600_000).toISOString(),
    subject: 'alice@example.com',
    ...over,
  };
}

let root: string;
before(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'lockgate-credentials-'));
});
after(() => {
  rmSync(root, { recursive: true, force: true });
});

let seq = 0;
/** A fresh, not yet existing config directory under the temp root. */
function place(): { env: Record<string, string>; dir: string; file: string } {
  const dir = path.join(root, `c${++seq}`, 'lockgate');
  return { env: { LOCKGATE_CONFIG_DIR: dir }, dir, file: path.join(dir, 'credentials.json') };
}

const refuse = async (): Promise<TokenSet> => {
  throw new Error('no refresh expected');
};

test('the directory: $LOCKGATE_CONFIG_DIR, else $XDG_CONFIG_HOME/lockgate, else ~/.config/lockgate (%APPDATA%\\lockgate on Windows)', () => {
  assert.equal(configDir({ env: { LOCKGATE_CONFIG_DIR: '/a/b', XDG_CONFIG_HOME: '/x' } }), '/a/b');
  assert.equal(configDir({ env: { XDG_CONFIG_HOME: '/x' }, home: '/h' }), '/x/lockgate');
  assert.equal(configDir({ env: { XDG_CONFIG_HOME: 'relative' }, home: '/h' }), '/h/.config/lockgate');
  assert.equal(configDir({ env: {}, home: '/h' }), '/h/.config/lockgate');
  assert.equal(configDir({ env: { APPDATA: 'C:\\Users\\a\\AppData\\Roaming' }, platform: 'win32', home: 'C:\\Users\\a' }), 'C:\\Users\\a\\AppData\\Roaming\\lockgate');
  assert.equal(credentialsFile({ env: { LOCKGATE_CONFIG_DIR: '/a' } }), '/a/credentials.json');
});

test('save, load and remove per control plane origin; the file is 0600 in a 0700 directory', async () => {
  const { env, dir, file } = place();
  assert.equal(await loadCredential(ORIGIN, { env }), undefined);
  assert.equal(await saveCredential(`${ORIGIN}/v1/anything`, cred(), { env }), file);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(await loadCredential(new URL(ORIGIN), { env }), cred());
  await saveCredential('https://other.example', cred({ idToken: 'id-other', refreshToken: undefined }), { env });
  const doc = JSON.parse(readFileSync(file, 'utf8')) as { version: number; credentials: Record<string, Credential> };
  assert.equal(doc.version, 1);
  assert.deepEqual(Object.keys(doc.credentials), [ORIGIN, 'https://other.example']);
  assert.equal(doc.credentials['https://other.example'].refreshToken, undefined);
  assert.equal(await removeCredential(ORIGIN, { env }), true);
  assert.equal(await removeCredential(ORIGIN, { env }), false);
  assert.equal((await loadCredential('https://other.example', { env }))?.idToken, 'id-other');
  assert.equal(await removeCredential('https://other.example', { env }), true);
  assert.deepEqual(readdirSync(dir), [], 'the last removal deletes the file');
});

test('writes are atomic: a new file replaces the old one (0600 even if the old was wider), readers never see half a file', async () => {
  const { env, dir, file } = place();
  await saveCredential(ORIGIN, cred(), { env });
  chmodSync(file, 0o644);
  const before = statSync(file).ino;
  await saveCredential(ORIGIN, cred({ idToken: 'id-2' }), { env });
  assert.notEqual(statSync(file).ino, before, 'renamed over, not rewritten in place');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const big = 'x'.repeat(200_000);
  const ops: Array<Promise<unknown>> = [];
  for (let i = 0; i < 20; i++) {
    ops.push(saveCredential(ORIGIN, cred({ idToken: `${big}${i}` }), { env }));
    ops.push(loadCredential(ORIGIN, { env }).then((c) => assert.ok(c?.idToken.startsWith('id-2') || c?.idToken.startsWith(big))));
  }
  await Promise.all(ops);
  assert.deepEqual(readdirSync(dir), ['credentials.json'], 'no temporary files left');
  assert.ok((await loadCredential(ORIGIN, { env }))?.idToken.startsWith(big));
});

test('a corrupt file is an error naming the file (and is left alone), never a crash', async () => {
  const { env, dir, file } = place();
  await saveCredential(ORIGIN, cred(), { env });
  const bad = ['{ not json', '[]', '{"version":2,"credentials":{}}', JSON.stringify({ version: 1, credentials: { [ORIGIN]: { idToken: 1 } } })];
  for (const text of bad) {
    writeFileSync(file, text);
    for (const op of [() => loadCredential(ORIGIN, { env }), () => saveCredential(ORIGIN, cred(), { env }), () => removeCredential(ORIGIN, { env }), () => freshIdToken(ORIGIN, { env })]) {
      const err = await op().catch((e: unknown) => e);
      assert.ok(err instanceof AdminClientError, `${text}: ${String(err)}`);
      assert.ok(err.message.startsWith(`${file} is not a valid credentials file (`), err.message);
      assert.match(err.message, /delete it and run `lockgate login` again/);
    }
    assert.equal(readFileSync(file, 'utf8'), text);
  }
  const err = (await loadCredential(ORIGIN, { env }).catch((e: unknown) => e)) as Error;
  assert.match(err.message, new RegExp(`the entry for ${ORIGIN} lacks`));
  assert.deepEqual(readdirSync(dir), ['credentials.json']);
});

describe('freshIdToken', () => {
  const at = (ms: number) => () => ms;

  test('nothing stored: undefined; a token valid for more than a minute is returned as is', async () => {
    const { env } = place();
    assert.equal(await freshIdToken(ORIGIN, { env, refresh: refuse }), undefined);
    await saveCredential(ORIGIN, cred(), { env });
    assert.equal(await freshIdToken(ORIGIN, { env, now: at(NOW), refresh: refuse }), 'id-1');
  });

  test('expired with no refresh token: an error saying to run lockgate login; still valid for seconds: returned', async () => {
    const { env } = place();
    await saveCredential(ORIGIN, cred({ refreshToken: undefined, expiresAt: new Date(NOW + 30_000).toISOString() }), { env });
    assert.equal(await freshIdToken(ORIGIN, { env, now: at(NOW), refresh: refuse }), 'id-1');
    const err = await freshIdToken(ORIGIN, { env, now: at(NOW + 31_000), refresh: refuse }).catch((e: unknown) => e);
    assert.ok(err instanceof AdminClientError);
    assert.equal(err.message, `the sign-in to ${ORIGIN} (alice@example.com with lockgate-system/corp) expired at 2030-01-01T00:00:30.000Z: run \`lockgate login\` again`);
  });

  test('due: refreshed and saved; a refused refresh names lockgate login; an unreachable provider leaves a still-valid token in use', async () => {
    const { env } = place();
    await saveCredential(ORIGIN, cred({ expiresAt: new Date(NOW + 50_000).toISOString() }), { env });
    const calls: string[][] = [];
    const ok = async (endpoint: string, clientId: string, rt: string): Promise<TokenSet> => {
      calls.push([endpoint, clientId, rt]);
      return { idToken: 'id-2', refreshToken: 'rt-2', expiresAt: NOW + 600_000, claims: {} };
    };
    assert.equal(await freshIdToken(ORIGIN, { env, now: at(NOW), refresh: ok }), 'id-2');
    assert.deepEqual(calls, [['http://127.0.0.1:1/token', 'lockgate-cli', 'rt-1']]);
    assert.deepEqual(await loadCredential(ORIGIN, { env }), cred({ idToken: 'id-2', refreshToken: 'rt-2', expiresAt: new Date(NOW + 600_000).toISOString() }));

    const unreachable = async (): Promise<TokenSet> => {
      throw new DeviceFlowError('unreachable', 'cannot reach the token endpoint at http://127.0.0.1:1/token: ECONNREFUSED');
    };
    assert.equal(await freshIdToken(ORIGIN, { env, now: at(NOW + 550_000), refresh: unreachable }), 'id-2');
    let err = await freshIdToken(ORIGIN, { env, now: at(NOW + 600_000), refresh: unreachable }).catch((e: unknown) => e);
    assert.ok(err instanceof AdminClientError);
    assert.match(err.message, /has expired and could not be renewed \(cannot reach .*ECONNREFUSED\): run `lockgate login` again$/);

    const refused = async (): Promise<TokenSet> => {
      throw new DeviceFlowError('invalid_grant', 'the token refresh was refused: invalid_grant: grant request is invalid');
    };
    err = await freshIdToken(ORIGIN, { env, now: at(NOW + 550_000), refresh: refused }).catch((e: unknown) => e);
    assert.ok(err instanceof AdminClientError);
    assert.match(err.message, /^the sign-in to https:\/\/127\.0\.0\.1:9443 \(alice@example\.com with lockgate-system\/corp\) has expired and could not be renewed \(.*invalid_grant.*\): run `lockgate login` again$/);
  });

  test('a refresh token another process just used: its stored result is taken', async () => {
    const { env } = place();
    await saveCredential(ORIGIN, cred({ expiresAt: new Date(NOW + 10_000).toISOString() }), { env });
    const raced = async (): Promise<TokenSet> => {
      await saveCredential(ORIGIN, cred({ idToken: 'id-theirs', refreshToken: 'rt-theirs', expiresAt: new Date(NOW + 600_000).toISOString() }), { env });
      throw new DeviceFlowError('invalid_grant', 'the token refresh was refused: invalid_grant');
    };
    assert.equal(await freshIdToken(ORIGIN, { env, now: at(NOW), refresh: raced }), 'id-theirs');
  });
});

describe('with a real provider', { skip: oidcProviderMissing }, () => {
  let idp: OidcFixture;
  before(async () => {
    idp = await OidcFixture.start({ clients: [DEVICE_CLIENT] });
  });
  after(async () => {
    await idp?.close();
  });

  test('a token expiring within a minute is renewed with the refresh token at the provider, and the result stored', async () => {
    let browser: Promise<unknown> = Promise.resolve();
    const t = await deviceLogin(idp.issuer, 'lockgate-cli', {
      scopes: ['openid', 'email', 'groups', 'offline_access'],
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, Math.min(ms, 20))),
      deadline: Date.now() + 20_000,
      onCode: (a) => void (browser = approveDevice(new CookieJar(), a.verificationUriComplete!, 'alice')),
    });
    await browser;
    const { env } = place();
    const stored = cred({ issuer: idp.issuer, tokenEndpoint: t.endpoints.tokenEndpoint, idToken: t.idToken, refreshToken: t.refreshToken, expiresAt: new Date(Date.now() + 30_000).toISOString() });
    await saveCredential(ORIGIN, stored, { env });
    const refreshes = idp.grants.get('refresh_token') ?? 0;
    const fresh = await freshIdToken(ORIGIN, { env });
    assert.equal(idp.grants.get('refresh_token'), refreshes + 1);
    assert.ok(fresh);
    const claims = jwtClaims(fresh);
    assert.equal(claims.email, 'alice@example.com');
    assert.deepEqual(claims.groups, ['eng', 'admins']);
    const saved = await loadCredential(ORIGIN, { env });
    assert.equal(saved?.idToken, fresh);
    assert.notEqual(saved?.refreshToken, t.refreshToken, 'the rotated refresh token is kept');
    assert.equal(saved?.expiresAt, new Date((claims.exp as number) * 1000).toISOString());
    // Valid for minutes now: no second refresh.
    assert.equal(await freshIdToken(ORIGIN, { env }), fresh);
    assert.equal(idp.grants.get('refresh_token'), refreshes + 1);
  });
});

test('resolveTarget: no token by flag or environment → the stored sign-in for that origin; a flag or $LOCKGATE_TOKEN wins', async () => {
  const { env } = place();
  const caFile = path.join(root, 'ca.pem');
  writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n');
  const values = { 'control-plane': `${ORIGIN}/`, 'ca-file': caFile };
  assert.equal((await resolveTarget(values, env)).token, undefined, 'nothing stored: no token, as before');
  await saveCredential(ORIGIN, cred({ expiresAt: new Date(Date.now() + 3_600_000).toISOString() }), { env });
  assert.equal((await resolveTarget(values, env)).token, 'id-1');
  assert.equal((await resolveTarget({ ...values, token: 'flag' }, env)).token, 'flag');
  assert.equal((await resolveTarget(values, { ...env, LOCKGATE_TOKEN: 'from-env' })).token, 'from-env');
  assert.equal((await resolveTarget({ ...values, 'control-plane': 'https://127.0.0.1:9444' }, env)).token, undefined, 'another control plane');
  assert.equal((await resolveTarget(values, env, { storedToken: async () => undefined })).token, undefined);
  await saveCredential(ORIGIN, cred({ refreshToken: undefined, expiresAt: new Date(Date.now() - 1000).toISOString() }), { env });
  await assert.rejects(resolveTarget(values, env), /run `lockgate login` again/);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalKeyWrapper, parseMasterKey, SecretsError, MASTER_KEY_ENV, MASTER_KEY_FILE_ENV } from './key-wrapper.ts';

async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    assert.ok(err instanceof SecretsError, String(err));
    return err.code;
  }
  assert.fail('expected a SecretsError');
}

async function messageOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as Error).message;
  }
  assert.fail('expected an error');
}

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lg-keys-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('wrap and unwrap round-trip; each wrap is fresh; the key id names the key without revealing it', async () => {
  const master = randomBytes(32);
  const hex = master.toString('hex');
  const w = new LocalKeyWrapper(Buffer.from(master));
  assert.match(w.keyId, /^local-[0-9a-f]{16}$/);
  assert.ok(!hex.includes(w.keyId.slice(6)), 'the id is not a slice of the key');
  const dataKey = randomBytes(32);
  const a = await w.wrap(dataKey);
  const b = await w.wrap(dataKey);
  assert.notEqual(a, b);
  assert.deepEqual(Buffer.from(await w.unwrap(a, w.keyId)), dataKey);
  // Same key, same id (hex, base64 and base64url spellings of one key agree); another key, another id.
  const fromB64 = (await LocalKeyWrapper.fromEnv({ [MASTER_KEY_ENV]: master.toString('base64') }));
  const fromHex = (await LocalKeyWrapper.fromEnv({ [MASTER_KEY_ENV]: hex }));
  const fromUrl = (await LocalKeyWrapper.fromEnv({ [MASTER_KEY_ENV]: master.toString('base64url') }));
  assert.equal(fromB64.keyId, w.keyId);
  assert.equal(fromHex.keyId, w.keyId);
  assert.equal(fromUrl.keyId, w.keyId);
  assert.deepEqual(Buffer.from(await fromHex.unwrap(a, w.keyId)), dataKey);
  assert.notEqual(new LocalKeyWrapper(randomBytes(32)).keyId, w.keyId);
});

test('unwrap refuses another kid, a tampered or malformed wrapped key, and an aborted signal', async () => {
  const w = new LocalKeyWrapper(randomBytes(32));
  const other = new LocalKeyWrapper(randomBytes(32));
  const wrapped = await w.wrap(randomBytes(32));
  assert.equal(await code(w.unwrap(wrapped, other.keyId)), 'unknown_key');
  assert.equal(await code(other.unwrap(wrapped, other.keyId)), 'unwrap_failed');
  const raw = Buffer.from(wrapped, 'base64');
  for (const i of [0, 12, 28, raw.length - 1]) {
    const t = Buffer.from(raw);
    t[i] ^= 1;
    assert.equal(await code(w.unwrap(t.toString('base64'), w.keyId)), 'unwrap_failed', `byte ${i}`);
  }
  assert.equal(await code(w.unwrap('not base64!', w.keyId)), 'unwrap_failed');
  assert.equal(await code(w.unwrap(raw.subarray(0, 20).toString('base64'), w.keyId)), 'unwrap_failed');
  await assert.rejects(w.wrap(randomBytes(32), AbortSignal.abort()), { name: 'AbortError' });
});

test('master keys that are short, long, not encoded or patterned are refused without echoing them', async () => {
  const secretish = 'correct horse battery staple';
  const msg = await messageOf(LocalKeyWrapper.fromEnv({ [MASTER_KEY_ENV]: secretish }));
  assert.match(msg, /LOCKGATE_MASTER_KEY must be 32 random bytes/);
  assert.ok(!msg.includes('horse'));
  assert.equal(await code(LocalKeyWrapper.fromEnv({ [MASTER_KEY_ENV]: randomBytes(16).toString('hex') })), 'key_invalid');
  assert.equal(await code(LocalKeyWrapper.fromEnv({ [MASTER_KEY_ENV]: randomBytes(33).toString('base64') })), 'key_invalid');
  assert.equal(await code(LocalKeyWrapper.fromEnv({ [MASTER_KEY_ENV]: '0'.repeat(64) })), 'key_invalid');
  assert.match(await messageOf(LocalKeyWrapper.fromEnv({ [MASTER_KEY_ENV]: Buffer.from('abcd'.repeat(8)).toString('base64') })), /weak/);
  assert.equal(await code(() => new LocalKeyWrapper(randomBytes(31))), 'key_invalid');
  assert.equal(parseMasterKey(`  ${randomBytes(32).toString('hex')}\n`, 'x').length, 32);
});

test('exactly one of the two variables must be set', async () => {
  assert.match(await messageOf(LocalKeyWrapper.fromEnv({})), /no master key: set LOCKGATE_MASTER_KEY .* or LOCKGATE_MASTER_KEY_FILE/);
  assert.equal(await code(LocalKeyWrapper.fromEnv({ [MASTER_KEY_ENV]: '' })), 'key_missing');
  assert.equal(await code(LocalKeyWrapper.fromEnv({ [MASTER_KEY_ENV]: randomBytes(32).toString('hex'), [MASTER_KEY_FILE_ENV]: '/x' })), 'key_invalid');
});

test('key files: text or raw bytes with mode 600 load; readable by others, missing or bad ones are refused', { skip: process.platform === 'win32' }, withDir(async (dir) => {
  const master = randomBytes(32);
  const expected = new LocalKeyWrapper(Buffer.from(master)).keyId;
  const text = join(dir, 'master.key');
  writeFileSync(text, `${master.toString('base64')}\n`, { mode: 0o600 });
  assert.equal((await LocalKeyWrapper.fromEnv({ [MASTER_KEY_FILE_ENV]: text })).keyId, expected);
  const raw = join(dir, 'master.bin');
  writeFileSync(raw, master, { mode: 0o400 });
  assert.equal((await LocalKeyWrapper.fromFile(raw)).keyId, expected);
  chmodSync(text, 0o644);
  const msg = await messageOf(LocalKeyWrapper.fromFile(text));
  assert.match(msg, /accessible to other users \(mode 644\).*chmod 600/);
  assert.equal(await code(LocalKeyWrapper.fromFile(text)), 'key_file');
  assert.equal(await code(LocalKeyWrapper.fromFile(join(dir, 'absent'))), 'key_file');
  const bad = join(dir, 'bad.key');
  writeFileSync(bad, 'hunter2\n', { mode: 0o600 });
  const badMsg = await messageOf(LocalKeyWrapper.fromFile(bad));
  assert.match(badMsg, /the master key file .*bad\.key must be 32 random bytes/);
  assert.ok(!badMsg.includes('hunter2'));
  await assert.rejects(LocalKeyWrapper.fromFile(raw, AbortSignal.abort()), { name: 'AbortError' });
}));

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { LocalKeyWrapper, SecretsError } from './key-wrapper.ts';
import { open, reseal, seal, type Envelope } from './envelope.ts';

const wrapper = new LocalKeyWrapper(randomBytes(32));
const PEM = '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SecretsError, String(err));
    return err.code;
  }
  assert.fail('expected a SecretsError');
}

/** Flips one bit of a base64 field's bytes (or one character of the others). */
function tamper(text: string, field: keyof Envelope): string {
  const e = JSON.parse(text) as Record<string, unknown>;
  const v = e[field];
  if (field === 'v') e.v = 2;
  else if (field === 'alg') e.alg = 'A128GCM';
  else if (field === 'kid') e.kid = `${String(v).slice(0, -1)}${String(v).endsWith('0') ? '1' : '0'}`;
  else {
    const b = Buffer.from(String(v), 'base64');
    b[b.length - 1] ^= 1;
    e[field] = b.toString('base64');
  }
  return JSON.stringify(e);
}

test('seal and open round-trip text and bytes; each seal uses a fresh data key and iv', async () => {
  const a = await seal(PEM, wrapper, 'ca/root');
  const b = await seal(PEM, wrapper, 'ca/root');
  const ea = JSON.parse(a) as Envelope;
  const eb = JSON.parse(b) as Envelope;
  assert.deepEqual(Object.keys(ea).sort(), ['alg', 'ciphertext', 'iv', 'kid', 'tag', 'v', 'wrappedKey']);
  assert.equal(ea.v, 1);
  assert.equal(ea.kid, wrapper.keyId);
  assert.notEqual(ea.wrappedKey, eb.wrappedKey);
  assert.notEqual(ea.iv, eb.iv);
  assert.notEqual(ea.ciphertext, eb.ciphertext);
  assert.ok(!a.includes('PRIVATE KEY'));
  assert.equal((await open(a, [wrapper], 'ca/root')).toString('utf8'), PEM);
  const bytes = randomBytes(100);
  assert.deepEqual(await open(await seal(bytes, wrapper), [wrapper]), bytes);
  assert.equal((await open(await seal('', wrapper), [wrapper])).length, 0);
});

test('changing any field of the envelope makes it fail to open', async () => {
  const sealed = await seal(PEM, wrapper, 'ca/root');
  const expected: Record<keyof Envelope, string> = {
    v: 'envelope_invalid', alg: 'envelope_invalid', kid: 'unknown_key', wrappedKey: 'unwrap_failed',
    iv: 'decrypt_failed', tag: 'decrypt_failed', ciphertext: 'decrypt_failed',
  };
  for (const field of Object.keys(expected) as (keyof Envelope)[]) {
    assert.equal(await code(open(tamper(sealed, field), [wrapper], 'ca/root')), expected[field], field);
  }
  // A short iv, a missing field, non-JSON.
  const e = JSON.parse(sealed) as Record<string, unknown>;
  assert.equal(await code(open(JSON.stringify({ ...e, iv: 'AAAA' }), [wrapper], 'ca/root')), 'envelope_invalid');
  assert.equal(await code(open(JSON.stringify({ ...e, tag: undefined }), [wrapper], 'ca/root')), 'envelope_invalid');
  assert.equal(await code(open(JSON.stringify({ ...e, ciphertext: '***' }), [wrapper], 'ca/root')), 'envelope_invalid');
  assert.equal(await code(open('{nope', [wrapper])), 'envelope_invalid');
  assert.equal(await code(open('null', [wrapper])), 'envelope_invalid');
});

test('an envelope opens only for the record it was sealed for', async () => {
  const sealed = await seal(PEM, wrapper, 'ca/root');
  assert.equal(await code(open(sealed, [wrapper], 'ca/intermediate')), 'decrypt_failed');
  assert.equal(await code(open(sealed, [wrapper])), 'decrypt_failed');
  const unbound = await seal(PEM, wrapper);
  assert.equal(await code(open(unbound, [wrapper], 'ca/root')), 'decrypt_failed');
});

test('the wrapper is picked by kid: rotation opens old envelopes and reseals under the new key', async () => {
  const oldKey = new LocalKeyWrapper(randomBytes(32));
  const newKey = new LocalKeyWrapper(randomBytes(32));
  const old = await seal(PEM, oldKey, 'secret/a');
  assert.equal(await code(open(old, [newKey], 'secret/a')), 'unknown_key');
  assert.equal(await code(open(old, [], 'secret/a')), 'unknown_key');
  assert.equal((await open(old, [newKey, oldKey], 'secret/a')).toString(), PEM);
  const rotated = await reseal(old, [newKey, oldKey], newKey, 'secret/a');
  assert.equal((JSON.parse(rotated) as Envelope).kid, newKey.keyId);
  assert.equal((await open(rotated, [newKey], 'secret/a')).toString(), PEM);
  // A wrapper with the right id but the wrong key (a misconfiguration) fails loudly, not silently.
  const impostor = { keyId: oldKey.keyId, wrap: newKey.wrap.bind(newKey), unwrap: (w: string, _kid: string) => newKey.unwrap(w, newKey.keyId) };
  assert.equal(await code(open(old, [impostor], 'secret/a')), 'unwrap_failed');
  await assert.rejects(seal(PEM, newKey, '', AbortSignal.abort()), { name: 'AbortError' });
});

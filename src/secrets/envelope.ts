// Envelope encryption for secrets at rest: a fresh AES-256-GCM data key per seal, wrapped by a KeyWrapper, the
// whole bound to a caller-chosen context (e.g. the record name) so an envelope copied to another record fails to open.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SecretsError, type KeyWrapper } from './key-wrapper.ts';

export interface Envelope {
  v: 1;
  alg: 'A256GCM';
  /** The wrapping key's id: open() picks the wrapper by it. */
  kid: string;
  wrappedKey: string;
  /** base64 */
  iv: string;
  /** base64 */
  tag: string;
  /** base64 */
  ciphertext: string;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The GCM additional data: the header fields and the caller's context, unambiguously encoded. */
function additionalData(kid: string, wrappedKey: string, aad: string): Buffer {
  return Buffer.from(JSON.stringify(['lockgate-envelope', 1, 'A256GCM', kid, wrappedKey, aad]));
}

/** Encrypts `plaintext`; the returned JSON text is safe to store. `aad` must be given again to open it. */
export async function seal(plaintext: string | Uint8Array, wrapper: KeyWrapper, aad = '', signal?: AbortSignal): Promise<string> {
  signal?.throwIfAborted();
  const dataKey = randomBytes(32);
  try {
    const wrappedKey = await wrapper.wrap(dataKey, signal);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', dataKey, iv);
    cipher.setAAD(additionalData(wrapper.keyId, wrappedKey, aad));
    const ct = Buffer.concat([cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext), cipher.final()]);
    const envelope: Envelope = {
      v: 1, alg: 'A256GCM', kid: wrapper.keyId, wrappedKey,
      iv: iv.toString('base64'), tag: cipher.getAuthTag().toString('base64'), ciphertext: ct.toString('base64'),
    };
    return JSON.stringify(envelope);
  } finally {
    dataKey.fill(0);
  }
}

function parse(text: string): Envelope {
  let e: Partial<Record<keyof Envelope, unknown>>;
  try {
    e = JSON.parse(text) as typeof e;
  } catch (err) {
    throw new SecretsError('envelope_invalid', 'the envelope is not JSON', { cause: err });
  }
  if (e === null || typeof e !== 'object') throw new SecretsError('envelope_invalid', 'the envelope is not an object');
  if (e.v !== 1) throw new SecretsError('envelope_invalid', `unsupported envelope version ${JSON.stringify(e.v)}`);
  if (e.alg !== 'A256GCM') throw new SecretsError('envelope_invalid', `unsupported envelope algorithm ${JSON.stringify(e.alg)}`);
  for (const f of ['kid', 'wrappedKey', 'iv', 'tag', 'ciphertext'] as const) {
    if (typeof e[f] !== 'string' || (f !== 'kid' && f !== 'wrappedKey' && !B64.test(e[f]))) throw new SecretsError('envelope_invalid', `the envelope's ${f} is missing or malformed`);
  }
  return e as Envelope;
}

/**
 * Decrypts an envelope from seal(), with the wrapper whose keyId matches its kid (pass the current key and the
 * previous ones during a rotation) and the same `aad`. Throws SecretsError: envelope_invalid, unknown_key,
 * unwrap_failed or decrypt_failed (tampered, or a different aad).
 */
export async function open(text: string, wrappers: readonly KeyWrapper[], aad = '', signal?: AbortSignal): Promise<Buffer> {
  signal?.throwIfAborted();
  const e = parse(text);
  const wrapper = wrappers.find((w) => w.keyId === e.kid);
  if (wrapper === undefined) {
    throw new SecretsError('unknown_key', `sealed under key ${e.kid}, which is not among the configured keys (${wrappers.map((w) => w.keyId).join(', ') || 'none'})`);
  }
  const iv = Buffer.from(e.iv, 'base64');
  const tag = Buffer.from(e.tag, 'base64');
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new SecretsError('envelope_invalid', 'the envelope\'s iv or tag has the wrong length');
  const dataKey = Buffer.from(await wrapper.unwrap(e.wrappedKey, e.kid, signal));
  try {
    if (dataKey.length !== 32) throw new SecretsError('unwrap_failed', 'the unwrapped data key is not 32 bytes');
    const decipher = createDecipheriv('aes-256-gcm', dataKey, iv);
    decipher.setAAD(additionalData(e.kid, e.wrappedKey, aad));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(Buffer.from(e.ciphertext, 'base64')), decipher.final()]);
    } catch (err) {
      throw new SecretsError('decrypt_failed', 'the envelope does not authenticate: tampered, or opened for another record', { cause: err });
    }
  } finally {
    dataKey.fill(0);
  }
}

/** Seals again under `wrapper` (rotation): opens with any of `wrappers`, seals with the current one. */
export async function reseal(text: string, wrappers: readonly KeyWrapper[], wrapper: KeyWrapper, aad = '', signal?: AbortSignal): Promise<string> {
  const plain = await open(text, wrappers, aad, signal);
  try {
    return await seal(plain, wrapper, aad, signal);
  } finally {
    plain.fill(0);
  }
}

// Wraps the data keys of sealed secrets: the KeyWrapper interface (a cloud KMS or Key Vault can implement it later)
// and LocalKeyWrapper, which wraps with AES-256-GCM under a master key from LOCKGATE_MASTER_KEY(_FILE).
import { createCipheriv, createDecipheriv, createHash, createSecretKey, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';

export type SecretsErrorCode =
  | 'key_missing' | 'key_invalid' | 'key_file' | 'envelope_invalid' | 'unknown_key' | 'unwrap_failed' | 'decrypt_failed'
  | 'secret_not_found' | 'secret_invalid' | 'secret_conflict';

export class SecretsError extends Error {
  readonly code: SecretsErrorCode;
  constructor(code: SecretsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SecretsError';
    this.code = code;
  }
}

export interface KeyWrapper {
  /** Names the wrapping key (never the key itself); stored beside each wrapped data key. */
  readonly keyId: string;
  /** Encrypts a data key; the result is opaque text. */
  wrap(dataKey: Uint8Array, signal?: AbortSignal): Promise<string>;
  /** Decrypts what wrap() returned under `keyId`; throws SecretsError('unknown_key' | 'unwrap_failed'). */
  unwrap(wrapped: string, keyId: string, signal?: AbortSignal): Promise<Uint8Array>;
}

export const MASTER_KEY_ENV = 'LOCKGATE_MASTER_KEY';
export const MASTER_KEY_FILE_ENV = 'LOCKGATE_MASTER_KEY_FILE';
const HOW = 'generate one with `openssl rand -base64 32`';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** 32 bytes from 64 hex digits or (url-safe) base64 text; raw 32-byte files too. Never echoes the input. */
export function parseMasterKey(input: string | Uint8Array, source: string): Buffer {
  let key: Buffer | undefined;
  if (typeof input !== 'string' && input.length === 32) key = Buffer.from(input);
  else {
    const text = (typeof input === 'string' ? input : Buffer.from(input).toString('utf8')).trim();
    if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, 'hex');
    else if (/^[A-Za-z0-9+/]{43}=?$/.test(text)) key = Buffer.from(text, 'base64');
    else if (/^[A-Za-z0-9_-]{43}=?$/.test(text)) key = Buffer.from(text, 'base64url');
    if (key === undefined) {
      throw new SecretsError('key_invalid', `${source} must be 32 random bytes written as 64 hex digits or base64 (${HOW}); got ${text.length} characters of something else`);
    }
  }
  // A real random key has ~28 distinct byte values; very few means a pattern (zeros, a repeated phrase).
  if (new Set(key).size < 16) {
    key.fill(0);
    throw new SecretsError('key_invalid', `${source} looks weak (too few distinct bytes): use 32 random bytes (${HOW})`);
  }
  return key;
}

/** The key id: "local-" and 16 hex digits of a domain-separated SHA-256 of the key (an id, not a key). */
function localKeyId(key: Uint8Array): string {
  return `local-${createHash('sha256').update('lockgate master key id\0').update(key).digest('hex').slice(0, 16)}`;
}

export class LocalKeyWrapper implements KeyWrapper {
  readonly keyId: string;
  readonly #kek: KeyObject;

  /** Takes 32 master-key bytes (and zeroes them: the wrapper keeps only a derived KeyObject). */
  constructor(masterKey: Uint8Array) {
    if (masterKey.length !== 32) throw new SecretsError('key_invalid', 'the master key must be 32 bytes');
    this.keyId = localKeyId(masterKey);
    // A derived key-encryption key, so the master key itself never encrypts anything directly.
    this.#kek = createSecretKey(Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), 'lockgate key-wrap v1', 32)));
    masterKey.fill(0);
  }

  /**
   * From LOCKGATE_MASTER_KEY (hex or base64) or LOCKGATE_MASTER_KEY_FILE (a path; text or 32 raw bytes, not readable
   * by others). Exactly one must be set.
   */
  static async fromEnv(env: Record<string, string | undefined> = process.env, signal?: AbortSignal): Promise<LocalKeyWrapper> {
    const inline = env[MASTER_KEY_ENV];
    const file = env[MASTER_KEY_FILE_ENV];
    if (inline !== undefined && inline !== '' && file !== undefined && file !== '') {
      throw new SecretsError('key_invalid', `set ${MASTER_KEY_ENV} or ${MASTER_KEY_FILE_ENV}, not both`);
    }
    if (inline !== undefined && inline !== '') return new LocalKeyWrapper(parseMasterKey(inline, MASTER_KEY_ENV));
    if (file !== undefined && file !== '') return LocalKeyWrapper.fromFile(file, signal);
    throw new SecretsError('key_missing', `no master key: set ${MASTER_KEY_ENV} (${HOW}) or ${MASTER_KEY_FILE_ENV} to a file holding one`);
  }

  static async fromFile(path: string, signal?: AbortSignal): Promise<LocalKeyWrapper> {
    signal?.throwIfAborted();
    let mode: number;
    try {
      mode = (await stat(path)).mode;
    } catch (err) {
      throw new SecretsError('key_file', `cannot read the master key file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
    if (process.platform !== 'win32' && (mode & 0o007) !== 0) {
      throw new SecretsError('key_file', `the master key file ${path} is accessible to other users (mode ${(mode & 0o777).toString(8)}): run \`chmod 600 ${path}\` (in Kubernetes, defaultMode: 0400)`);
    }
    const bytes = await readFile(path, { signal });
    try {
      return new LocalKeyWrapper(parseMasterKey(bytes, `the master key file ${path}`));
    } finally {
      bytes.fill(0);
    }
  }

  async wrap(dataKey: Uint8Array, signal?: AbortSignal): Promise<string> {
    signal?.throwIfAborted();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#kek, iv);
    cipher.setAAD(Buffer.from(this.keyId)); // a wrapped key claims its kid: moving it under another kid fails
    const ct = Buffer.concat([cipher.update(dataKey), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), ct]).toString('base64');
  }

  async unwrap(wrapped: string, keyId: string, signal?: AbortSignal): Promise<Uint8Array> {
    signal?.throwIfAborted();
    if (keyId !== this.keyId) throw new SecretsError('unknown_key', `data key wrapped under ${keyId}, this wrapper is ${this.keyId}`);
    const raw = typeof wrapped === 'string' && /^[A-Za-z0-9+/]+={0,2}$/.test(wrapped) ? Buffer.from(wrapped, 'base64') : undefined;
    if (raw === undefined || raw.length <= IV_BYTES + TAG_BYTES) throw new SecretsError('unwrap_failed', 'the wrapped data key is malformed');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#kek, raw.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(keyId));
      decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
    } catch (err) {
      throw new SecretsError('unwrap_failed', `the data key does not unwrap under ${keyId} (tampered, or another key with the same id)`, { cause: err });
    }
  }
}

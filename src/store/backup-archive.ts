// The `lockgate backup` archive: a versioned JSON header, and sealed under the master key every store key at one revision.
//
// Format (version 1), one JSON object:
//   { format: 'lockgate-backup', version: 1, createdAt, revision, trustDomain, keyId, keys, payload }
// `payload` is an envelope (the caller's ArchiveCipher: AES-256-GCM with a data key wrapped by the master key) of
// gzip(JSON { entries: [{ key, value }] }), every key of the store as read at `revision`. The header fields are the
// envelope's additional data, so a header edited after the fact (another revision, trust domain or key count) does
// not open. Values are copied as stored: the CA's private keys inside `/ca/state` are sealed already and stay so.
// The cipher is passed in (the control plane and the CLI build it from src/secrets), so this file stays store-only.
import { gunzipSync, gzipSync } from 'node:zlib';
import type { ConfigStore } from './config-store.ts';

export const BACKUP_FORMAT = 'lockgate-backup';
export const BACKUP_VERSION = 1;

export interface BackupHeader {
  format: typeof BACKUP_FORMAT;
  version: typeof BACKUP_VERSION;
  /** ISO 8601. */
  createdAt: string;
  /** The store revision the entries were read at. */
  revision: number;
  trustDomain: string;
  /** The master key the payload's data key is wrapped under (an id, never the key). */
  keyId: string;
  /** How many store keys the payload holds. */
  keys: number;
}

export interface BackupArchive extends BackupHeader {
  payload: string;
}

export interface BackupEntry {
  key: string;
  value: string;
}

/** Envelope encryption as the archive needs it: seal under one master key, open with the same key and aad. */
export interface ArchiveCipher {
  readonly keyId: string;
  seal(plaintext: Uint8Array, aad: string, signal?: AbortSignal): Promise<string>;
  /** Throws an error whose `code` says why: unknown_key / unwrap_failed (another key), decrypt_failed (tampered). */
  open(sealed: string, aad: string, signal?: AbortSignal): Promise<Uint8Array>;
}

export type BackupErrorCode = 'not_an_archive' | 'unsupported_version' | 'wrong_key' | 'tampered' | 'not_empty';

export class BackupError extends Error {
  readonly code: BackupErrorCode;
  constructor(code: BackupErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BackupError';
    this.code = code;
  }
}

const KEY_HINT = 'the master key the control plane used when the backup was made (LOCKGATE_MASTER_KEY, LOCKGATE_MASTER_KEY_FILE, or <data-dir>/master.key)';

/** The additional data: every header field, unambiguously encoded. */
function additionalData(h: BackupHeader): string {
  return JSON.stringify([h.format, h.version, h.createdAt, h.revision, h.trustDomain, h.keyId, h.keys]);
}

/** Seals `entries` (read at `revision`) into the archive's JSON text. */
export async function createBackupArchive(
  entries: readonly BackupEntry[],
  o: { revision: number; trustDomain: string; cipher: ArchiveCipher; now?: () => number; signal?: AbortSignal },
): Promise<{ text: string; header: BackupHeader }> {
  const header: BackupHeader = {
    format: BACKUP_FORMAT, version: BACKUP_VERSION, createdAt: new Date(o.now?.() ?? Date.now()).toISOString(),
    revision: o.revision, trustDomain: o.trustDomain, keyId: o.cipher.keyId, keys: entries.length,
  };
  const plain = gzipSync(JSON.stringify({ entries: entries.map(({ key, value }) => ({ key, value })) }));
  try {
    const payload = await o.cipher.seal(plain, additionalData(header), o.signal);
    const archive: BackupArchive = { ...header, payload };
    return { text: JSON.stringify(archive, null, 2) + '\n', header };
  } finally {
    plain.fill(0);
  }
}

/** Every key of `store` from one consistent read (a single range at one revision), sealed into an archive. */
export async function backupStore(
  store: ConfigStore,
  o: { trustDomain: string; cipher: ArchiveCipher; now?: () => number; signal?: AbortSignal },
): Promise<{ text: string; header: BackupHeader }> {
  const read = await store.range('', { signal: o.signal });
  return createBackupArchive(read.kvs, { ...o, revision: read.revision });
}

/** Parses and checks the header (no key needed): what `lockgate restore` shows before it asks for the key. */
export function readBackupHeader(text: string): BackupArchive {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new BackupError('not_an_archive', 'this is not a Lockgate backup (not JSON)');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || (v as { format?: unknown }).format !== BACKUP_FORMAT) {
    throw new BackupError('not_an_archive', `this is not a Lockgate backup (no "format": "${BACKUP_FORMAT}")`);
  }
  const a = v as Record<string, unknown>;
  if (typeof a.version !== 'number' || !Number.isSafeInteger(a.version) || a.version < 1) {
    throw new BackupError('not_an_archive', `the backup's version ${JSON.stringify(a.version)} is not a format version`);
  }
  if (a.version !== BACKUP_VERSION) {
    throw new BackupError('unsupported_version', `this backup is format version ${a.version}; this Lockgate reads version ${BACKUP_VERSION} only: restore it with the Lockgate release that made it, or a newer one`);
  }
  const bad = (field: string): never => {
    throw new BackupError('not_an_archive', `the backup's header is damaged: "${field}" is missing or malformed`);
  };
  if (typeof a.createdAt !== 'string' || Number.isNaN(Date.parse(a.createdAt))) bad('createdAt');
  if (typeof a.revision !== 'number' || !Number.isSafeInteger(a.revision) || a.revision < 0) bad('revision');
  if (typeof a.trustDomain !== 'string') bad('trustDomain');
  if (typeof a.keyId !== 'string' || a.keyId === '') bad('keyId');
  if (typeof a.keys !== 'number' || !Number.isSafeInteger(a.keys) || a.keys < 0) bad('keys');
  if (typeof a.payload !== 'string' || a.payload === '') bad('payload');
  return {
    format: BACKUP_FORMAT, version: BACKUP_VERSION, createdAt: a.createdAt as string, revision: a.revision as number,
    trustDomain: a.trustDomain as string, keyId: a.keyId as string, keys: a.keys as number, payload: a.payload as string,
  };
}

/** Checks and decrypts an archive: its header and entries, or a BackupError saying what is wrong. */
export async function openBackupArchive(text: string, cipher: ArchiveCipher, signal?: AbortSignal): Promise<{ header: BackupHeader; entries: BackupEntry[] }> {
  const { payload, ...header } = readBackupHeader(text);
  if (header.keyId !== cipher.keyId) {
    throw new BackupError('wrong_key', `the backup is sealed under master key ${header.keyId}, but the master key given is ${cipher.keyId}: restore with ${KEY_HINT}`);
  }
  let plain: Uint8Array;
  try {
    plain = await cipher.open(payload, additionalData(header), signal);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'unknown_key' || code === 'unwrap_failed') {
      throw new BackupError('wrong_key', `the backup's data key does not unwrap under master key ${cipher.keyId} (the header names ${header.keyId}): restore with ${KEY_HINT}, or the archive was tampered with`, { cause: err });
    }
    if (code === 'decrypt_failed' || code === 'envelope_invalid') {
      throw new BackupError('tampered', `the backup does not authenticate under master key ${header.keyId}: its header or payload was changed after it was made (${(err as Error).message})`, { cause: err });
    }
    throw err;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(gunzipSync(plain).toString('utf8'));
  } catch (err) {
    throw new BackupError('tampered', 'the backup decrypts but its payload is not what `lockgate backup` writes', { cause: err });
  } finally {
    plain.fill(0);
  }
  const list = (doc as { entries?: unknown } | null)?.entries;
  if (!Array.isArray(list)) throw new BackupError('tampered', 'the backup\'s payload has no entries');
  const seen = new Set<string>();
  const entries: BackupEntry[] = [];
  for (const e of list as unknown[]) {
    const { key, value } = (e ?? {}) as { key?: unknown; value?: unknown };
    if (typeof key !== 'string' || key === '' || typeof value !== 'string' || seen.has(key)) {
      throw new BackupError('tampered', `the backup's payload holds a malformed or repeated entry${typeof key === 'string' ? ` (${JSON.stringify(key)})` : ''}`);
    }
    seen.add(key);
    entries.push({ key, value });
  }
  if (entries.length !== header.keys) throw new BackupError('tampered', `the backup's header says ${header.keys} keys but the payload holds ${entries.length}`);
  return { header, entries };
}

/**
 * Writes every entry into an empty store, in one batch (one revision: revisions restart, they are not carried
 * over). Refuses a store that has ever been written to. Returns the store's new revision.
 */
export async function restoreIntoStore(store: ConfigStore, entries: readonly BackupEntry[], signal?: AbortSignal): Promise<number> {
  const current = await store.revision({ signal });
  if (current !== 0) throw new BackupError('not_empty', `the store is not empty (revision ${current}): restore only into a new data dir`);
  if (entries.length === 0) return 0;
  const result = await store.putMany(entries.map((e) => ({ key: e.key, value: e.value, ifModRevision: 0 })), { signal });
  if (!result.ok) throw new BackupError('not_empty', `the store was written to during the restore (${result.conflicts.length} key(s) appeared)`);
  return result.revision;
}

// The audit log's signing key: Ed25519, made once, its private half sealed by the master key (KeyWrapper) and kept
// in audit.db's `meta` table beside the public half, which is checked against the private one on every open.
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { KeyWrapper } from '../secrets/key-wrapper.ts';
import { publicKeyId } from './audit-record.ts';

export class AuditError extends Error {
  readonly code: 'audit_key' | 'audit_closed' | 'audit_input';
  constructor(code: AuditError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AuditError';
    this.code = code;
  }
}

/** The signing key as stored: the public key in the clear (SPKI, base64), the private key (PKCS#8) sealed. */
export interface StoredAuditKey { algorithm: 'Ed25519'; keyId: string; publicKey: string; wrappedKey: string; wrapperKeyId: string }

export interface AuditKeyPair { privateKey: KeyObject; publicKey: KeyObject }

/** Seals `keys` under `wrapper` (a new key, or the same key again after a master-key rotation). */
export async function sealAuditKey(keys: AuditKeyPair, wrapper: KeyWrapper): Promise<StoredAuditKey> {
  const der = keys.privateKey.export({ type: 'pkcs8', format: 'der' });
  try {
    return {
      algorithm: 'Ed25519', keyId: publicKeyId(keys.publicKey), publicKey: keys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
      wrappedKey: await wrapper.wrap(der), wrapperKeyId: wrapper.keyId,
    };
  } finally {
    der.fill(0);
  }
}

export function newAuditKey(wrapper: KeyWrapper): Promise<StoredAuditKey> {
  return sealAuditKey(generateKeyPairSync('ed25519'), wrapper);
}

/** The stored key opened with one of `wrappers`; the stored public key must be the private key's. */
export async function openAuditKey(stored: StoredAuditKey, wrappers: readonly KeyWrapper[]): Promise<AuditKeyPair> {
  const wrapper = wrappers.find((w) => w.keyId === stored.wrapperKeyId);
  if (wrapper === undefined) {
    throw new AuditError('audit_key', `the audit signing key is sealed under master key ${stored.wrapperKeyId}, which is not loaded (loaded: ${wrappers.map((w) => w.keyId).join(', ')})`);
  }
  let der: Uint8Array;
  try {
    der = await wrapper.unwrap(stored.wrappedKey, stored.wrapperKeyId);
  } catch (err) {
    throw new AuditError('audit_key', `the audit signing key does not open with the master key (${(err as Error).message})`, { cause: err });
  }
  const privateKey = createPrivateKey({ key: Buffer.from(der), format: 'der', type: 'pkcs8' });
  Buffer.from(der.buffer, der.byteOffset, der.byteLength).fill(0);
  const publicKey = createPublicKey(privateKey);
  if (publicKey.export({ type: 'spki', format: 'der' }).toString('base64') !== stored.publicKey) {
    throw new AuditError('audit_key', 'the stored audit public key is not the sealed private key\'s (audit.db was tampered with)');
  }
  return { privateKey, publicKey };
}

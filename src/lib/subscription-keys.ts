// Subscription keys: generated like API Management's (32 hex characters, 128 random bits), stored only as hashes.
import { createHash, randomBytes } from 'node:crypto';

/** A new key: 32 lowercase hex characters, the format API Management generates. */
export function generateKey(): string {
  return randomBytes(16).toString('hex');
}

/** The stored form of a key: `sha256:` and the hex digest. The key itself is never stored. */
export function hashKey(key: string): string {
  return `sha256:${createHash('sha256').update(key, 'utf8').digest('hex')}`;
}

const KEY_HASH = /^sha256:[0-9a-f]{64}$/;

export function isKeyHash(v: string): boolean {
  return KEY_HASH.test(v);
}

/**
 * A key supplied by the operator (for example one migrated from API Management, whose keys may be set
 * through its REST API): 8–256 visible ASCII characters. Returns a problem, or null when acceptable.
 */
export function checkSuppliedKey(key: string): string | null {
  if (key.length < 8) return 'a subscription key needs at least 8 characters';
  if (key.length > 256) return 'a subscription key has at most 256 characters';
  if (!/^[\x21-\x7e]+$/.test(key)) return 'a subscription key holds visible ASCII characters only (no spaces)';
  return null;
}

// Admin bearer tokens: the bootstrap token made at first start, and automation tokens with a role and scope (made by
// `lockgate admin-token create`), stored only as hashes, checked in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ConfigStore } from '../store/config-store.ts';
import { AdminAccess, type AdminRole, type RoleGrant } from './admin-access.ts';
import type { AdminTokenVerifier } from './control-server.ts';

export const ADMIN_TOKEN_PREFIX = '/tokens/admin/';

/** What `/tokens/admin/<id>` holds: never the token, only the SHA-256 of its secret part. */
export interface AdminTokenRecord {
  hash: string;
  createdAt: string;
  /** Who or what the token stands for, shown as the admin subject. */
  description?: string;
  /** An automation token's role and scope; absent (the bootstrap token): everything. */
  role?: AdminRole;
  namespaces?: string[];
  apis?: string[];
  services?: string[];
  /** RFC 3339; absent: no expiry. */
  expiresAt?: string;
  /** Who made it. */
  createdBy?: string;
}

/** The subject an admin token acts as (in the audit trail and logs). */
export const adminTokenSubject = (id: string): string => `admin-token:${id}`;

// `lgadm.<id>.<secret>`: the id finds the record without scanning, the secret (256 bits) is what is hashed.
const TOKEN = /^lgadm\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

function hashSecret(secret: string): Buffer {
  return createHash('sha256').update('lockgate admin token\0').update(secret).digest();
}

/** Makes a token and its record (the caller stores the record and shows the token once). */
export function newAdminToken(now: Date = new Date(), description = 'bootstrap'): { id: string; token: string; record: AdminTokenRecord } {
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, token: `lgadm.${id}.${secret}`, record: { hash: hashSecret(secret).toString('hex'), createdAt: now.toISOString(), description } };
}

/**
 * At first start (no admin token stored) creates one and returns it, so the caller can print it once; afterwards
 * returns { token: undefined }. Only the hash is written.
 */
export async function ensureBootstrapToken(store: ConfigStore, options: { now?: () => number; signal?: AbortSignal } = {}): Promise<{ id: string; token?: string }> {
  const existing = await store.range(ADMIN_TOKEN_PREFIX, { limit: 1, signal: options.signal });
  if (existing.kvs.length > 0) return { id: existing.kvs[0].key.slice(ADMIN_TOKEN_PREFIX.length) };
  const made = newAdminToken(new Date(options.now?.() ?? Date.now()));
  // The compare makes the write a create: a racing second start cannot overwrite a token that was already printed.
  const result = await store.put(ADMIN_TOKEN_PREFIX + made.id, JSON.stringify(made.record), { ifModRevision: 0, signal: options.signal });
  if (!result.ok) throw new Error('an admin token with the same id appeared concurrently');
  return { id: made.id, token: made.token };
}

/** The role a stored token record holds (the bootstrap token: admin over everything). */
export function grantOfRecord(id: string, r: AdminTokenRecord): RoleGrant {
  const source = `admin token ${id}${r.description ? ` (${r.description})` : ''}`;
  if (r.role === undefined) return { role: 'admin', namespaces: ['*'], source };
  return { role: r.role, namespaces: r.namespaces ?? [], ...(r.apis?.length ? { apis: r.apis } : {}), ...(r.services?.length ? { services: r.services } : {}), source };
}

/** The access a stored token record gives. */
export function accessOfRecord(id: string, r: AdminTokenRecord): AdminAccess {
  return r.role === undefined ? AdminAccess.everything(adminTokenSubject(id)) : AdminAccess.of([grantOfRecord(id, r)]);
}

/**
 * A verifier over the store's admin tokens: `admin-token:<id>` for the bootstrap token, its role and scope for an
 * automation token (an expired one is refused, saying so), for a token whose secret hashes to the stored hash.
 */
export function adminTokenVerifier(store: ConfigStore, now: () => number = Date.now): AdminTokenVerifier {
  return async (token, signal) => {
    const m = TOKEN.exec(token);
    // Hash even a malformed token, so timing does not tell a badly shaped token from a wrong one.
    const presented = hashSecret(m ? m[2] : token);
    if (!m) return undefined;
    const kv = await store.get(ADMIN_TOKEN_PREFIX + m[1], { signal });
    if (!kv) return undefined;
    let record: AdminTokenRecord;
    let stored: Buffer;
    try {
      record = JSON.parse(kv.value) as AdminTokenRecord;
      stored = Buffer.from(record.hash, 'hex');
    } catch {
      return undefined;
    }
    if (stored.length !== presented.length || !timingSafeEqual(stored, presented)) return undefined;
    if (record.expiresAt !== undefined && Date.parse(record.expiresAt) <= now()) return { error: `admin token ${m[1]} expired at ${record.expiresAt}` };
    if (record.role === undefined) return adminTokenSubject(m[1]);
    const expiresAt = record.expiresAt === undefined ? undefined : Date.parse(record.expiresAt);
    return { subject: adminTokenSubject(m[1]), access: accessOfRecord(m[1], record), via: 'token', ...(expiresAt !== undefined ? { expiresAt } : {}) };
  };
}

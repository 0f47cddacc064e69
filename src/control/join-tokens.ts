// One-time join tokens: `lgj1.<id>.<secret>.<root fingerprint>`, bound to one workload identity, stored as a hash.
import { X509Certificate, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ConfigStore } from '../store/config-store.ts';
import type { NodeKind } from '../model/snapshot.ts';

export const JOIN_TOKEN_PREFIX = 'lgj1';
export const DEFAULT_JOIN_TOKEN_TTL_MS = 3600_000;
const KEY_PREFIX = '/tokens/join/';
const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** What `/tokens/join/<id>` holds: never the secret, only its SHA-256. */
export interface JoinTokenRecord {
  hash: string;
  service: string;
  namespace: string;
  kind: NodeKind;
  createdAt: number;
  expiresAt: number;
  used: boolean;
  usedAt?: number;
}

export interface CreateJoinTokenOptions {
  service: string;
  namespace?: string;
  kind?: NodeKind;
  ttlMs?: number;
  /** The trust bundle (PEM roots): the first root's fingerprint goes into the token. */
  bundle: readonly string[];
  now?: () => number;
  signal?: AbortSignal;
}

export interface CreatedJoinToken {
  token: string;
  id: string;
  expiresAt: number;
}

/** SHA-256 of a root certificate's DER, base64url: what a node pins before it trusts anything else. */
export function rootFingerprint(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url');
}

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

/** Why a token or its options are unusable, or undefined. */
export function checkTokenIdentity(o: { service: unknown; namespace?: unknown; kind?: unknown }): string | undefined {
  if (typeof o.service !== 'string' || !NAME.test(o.service)) return 'service must be a name of lower-case letters, digits and "-" (at most 63)';
  if (o.namespace !== undefined && (typeof o.namespace !== 'string' || !NAME.test(o.namespace))) return 'namespace must be a name of lower-case letters, digits and "-"';
  if (o.kind !== undefined && o.kind !== 'sidecar' && o.kind !== 'gateway') return 'kind must be "sidecar" or "gateway"';
  return undefined;
}

/** Creates and stores a token; the token text is returned once and cannot be recovered. */
export async function createJoinToken(store: ConfigStore, o: CreateJoinTokenOptions): Promise<CreatedJoinToken> {
  const problem = checkTokenIdentity(o);
  if (problem) throw new TypeError(problem);
  const ttlMs = o.ttlMs ?? DEFAULT_JOIN_TOKEN_TTL_MS;
  if (!Number.isFinite(ttlMs) || ttlMs <= 0 || ttlMs > 7 * 86_400_000) throw new TypeError('ttl must be between 1 ms and 7 days');
  if (o.bundle.length === 0) throw new TypeError('the trust bundle is empty');
  const now = (o.now ?? Date.now)();
  const id = randomBytes(9).toString('base64url');
  const secret = randomBytes(32).toString('base64url');
  const record: JoinTokenRecord = {
    hash: hashSecret(secret),
    service: o.service,
    namespace: o.namespace ?? 'default',
    kind: o.kind ?? 'sidecar',
    createdAt: now,
    expiresAt: now + ttlMs,
    used: false,
  };
  const r = await store.put(KEY_PREFIX + id, JSON.stringify(record), { ifModRevision: 0, signal: o.signal });
  if (!r.ok) throw new Error('join token id collision');
  await purgeExpired(store, now, o.signal);
  return { token: `${JOIN_TOKEN_PREFIX}.${id}.${secret}.${rootFingerprint(o.bundle[0])}`, id, expiresAt: record.expiresAt };
}

/** Spent and expired tokens are kept a day (so "already used" is told apart from "unknown"), then dropped. */
async function purgeExpired(store: ConfigStore, now: number, signal?: AbortSignal): Promise<void> {
  const { kvs } = await store.range(KEY_PREFIX, { signal });
  for (const kv of kvs) {
    const rec = JSON.parse(kv.value) as JoinTokenRecord;
    if (rec.expiresAt + 86_400_000 < now) await store.delete(kv.key, { ifModRevision: kv.modRevision, signal });
  }
}

export interface ParsedJoinToken {
  id: string;
  secret: string;
  fingerprint: string;
}

export function parseJoinToken(token: unknown): ParsedJoinToken | undefined {
  if (typeof token !== 'string') return undefined;
  const parts = token.split('.');
  if (parts.length !== 4 || parts[0] !== JOIN_TOKEN_PREFIX) return undefined;
  const [, id, secret, fingerprint] = parts;
  if (!/^[\w-]{8,64}$/.test(id) || !/^[\w-]{16,128}$/.test(secret) || !/^[\w-]{43}$/.test(fingerprint)) return undefined;
  return { id, secret, fingerprint };
}

export type ConsumeResult =
  | { ok: true; identity: { service: string; namespace: string; kind: NodeKind }; id: string }
  | { ok: false; reason: 'malformed' | 'unknown' | 'expired' | 'used' };

/**
 * Spends a token: compare-and-swap on the record's modRevision, so of two concurrent uses exactly one succeeds.
 * Every failure looks the same to the caller (401), the reason is for logs.
 */
export async function consumeJoinToken(store: ConfigStore, token: unknown, now: number, signal?: AbortSignal): Promise<ConsumeResult> {
  const parsed = parseJoinToken(token);
  if (!parsed) return { ok: false, reason: 'malformed' };
  const kv = await store.get(KEY_PREFIX + parsed.id, { signal });
  if (!kv) return { ok: false, reason: 'unknown' };
  const rec = JSON.parse(kv.value) as JoinTokenRecord;
  const given = Buffer.from(hashSecret(parsed.secret));
  const stored = Buffer.from(rec.hash);
  if (given.length !== stored.length || !timingSafeEqual(given, stored)) return { ok: false, reason: 'unknown' };
  if (rec.used) return { ok: false, reason: 'used' };
  if (now >= rec.expiresAt) return { ok: false, reason: 'expired' };
  const spent: JoinTokenRecord = { ...rec, used: true, usedAt: now };
  const r = await store.put(kv.key, JSON.stringify(spent), { ifModRevision: kv.modRevision, signal });
  if (!r.ok) return { ok: false, reason: 'used' };
  return { ok: true, identity: { service: rec.service, namespace: rec.namespace, kind: rec.kind }, id: parsed.id };
}

// The audit trail's data: records chained by SHA-256, the Ed25519-signed head, and verification (pure; node:crypto).
//
// A record's hash covers the canonical JSON of every other field, prevHash included, so changing any byte of a record
// breaks its own hash and removing one breaks the next record's prevHash (and leaves a gap in seq). Neither catches
// the newest records being dropped: the signed head ({count, lastHash}) kept outside the store does.
import { createHash, sign, verify, type KeyObject } from 'node:crypto';

/** The prevHash of record 1. */
export const GENESIS_HASH = '0'.repeat(64);
/** The action the log itself appends when it finds its end is not where its last signed head put it. */
export const TAIL_MISMATCH_ACTION = 'audit.tail-mismatch';

/** What a caller appends; the log adds seq, time and the hashes. Never put a secret value in here. */
export interface AuditInput {
  /** Who: the admin subject, a workload's SPIFFE ID, or `lockgate:control-plane` for the system itself. */
  actor: string;
  /** What, as `area.verb`: `config.update`, `ca.rotate-start`, `access.approve`, `secret.reveal`, … */
  action: string;
  /** What it was done to: `Backend/shop/orders`, `ca/root`, a request id, … */
  target: string;
  reason?: string;
  /** The request that caused it (`x-request-id`), when there was one. */
  requestId?: string;
  /** Admin changes: the document before and after (null for a create or a delete). */
  before?: string | null;
  after?: string | null;
  /** A few more facts (fingerprints, counts); flat, small. */
  details?: Record<string, string | number | boolean | null>;
}

export interface AuditRecord {
  seq: number;
  /** ISO 8601, UTC. */
  time: string;
  actor: string;
  action: string;
  target: string;
  reason: string;
  requestId: string | null;
  before: string | null;
  after: string | null;
  details?: Record<string, string | number | boolean | null>;
  prevHash: string;
  hash: string;
}

/** Where later code (access requests, denies, secret reveals) sends its records; the control plane's AuditLog is one. */
export interface AuditSink {
  append(input: AuditInput, signal?: AbortSignal): Promise<AuditRecord>;
}

export interface AuditHead {
  /** How many records the log held (= the newest seq). */
  count: number;
  /** The newest record's hash (GENESIS_HASH when empty). */
  lastHash: string;
  time: string;
}

export interface SignedAuditHead extends AuditHead {
  version: 1;
  algorithm: 'Ed25519';
  /** Names the signing key: 16 hex digits of the SHA-256 of its SPKI. */
  keyId: string;
  /** base64url Ed25519 signature over headPayload(). */
  signature: string;
}

export type AuditProblemKind =
  | 'malformed' | 'changed' | 'missing' | 'out_of_order' | 'chain_broken'
  | 'truncated' | 'head_mismatch' | 'unsigned_records' | 'no_head' | 'bad_signature' | 'tail_mismatch';

export interface AuditProblem {
  kind: AuditProblemKind;
  /** The record it is about, when it is about one. */
  seq?: number;
  message: string;
}

export interface AuditVerification {
  ok: boolean;
  /** Records read. */
  records: number;
  problems: AuditProblem[];
}

/** JSON with object keys sorted at every level and no whitespace; undefined fields are left out. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/** SHA-256 (hex) of the record without its `hash` field, domain-separated. */
export function recordHash(record: Omit<AuditRecord, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...rest } = record;
  return createHash('sha256').update('lockgate audit record v1\n').update(canonicalJson(rest)).digest('hex');
}

/** The record for `input` at `seq` after a record whose hash is `prevHash`. */
export function sealRecord(input: AuditInput, seq: number, time: string, prevHash: string): AuditRecord {
  const body: Omit<AuditRecord, 'hash'> = {
    seq, time, actor: input.actor, action: input.action, target: input.target, reason: input.reason ?? '',
    requestId: input.requestId ?? null, before: input.before ?? null, after: input.after ?? null,
    ...(input.details !== undefined ? { details: input.details } : {}), prevHash,
  };
  return { ...body, hash: recordHash(body) };
}

/** The bytes a head signature covers. */
export function headPayload(h: Omit<SignedAuditHead, 'signature'>): Buffer {
  const { version, algorithm, keyId, count, lastHash, time } = h;
  return Buffer.from(`lockgate audit head v1\n${canonicalJson({ version, algorithm, keyId, count, lastHash, time })}`);
}

export function publicKeyId(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

export function signHead(head: AuditHead, privateKey: KeyObject, publicKey: KeyObject): SignedAuditHead {
  const unsigned = { version: 1 as const, algorithm: 'Ed25519' as const, keyId: publicKeyId(publicKey), count: head.count, lastHash: head.lastHash, time: head.time };
  return { ...unsigned, signature: sign(null, headPayload(unsigned), privateKey).toString('base64url') };
}

/** Whether `head` is well-formed and signed by `publicKey`. */
export function headSignatureValid(head: SignedAuditHead, publicKey: KeyObject): boolean {
  if (typeof head !== 'object' || head === null || head.version !== 1 || head.algorithm !== 'Ed25519' || typeof head.signature !== 'string') return false;
  if (!Number.isSafeInteger(head.count) || head.count < 0 || typeof head.lastHash !== 'string' || typeof head.time !== 'string') return false;
  if (head.keyId !== publicKeyId(publicKey)) return false;
  try {
    return verify(null, headPayload(head), publicKey, Buffer.from(head.signature, 'base64url'));
  } catch {
    return false;
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
const STRINGS = ['time', 'actor', 'action', 'target', 'reason'] as const;

function malformed(r: unknown): string | undefined {
  if (typeof r !== 'object' || r === null) return 'not an object';
  const x = r as Record<string, unknown>;
  if (!Number.isSafeInteger(x.seq) || (x.seq as number) < 1) return 'seq is not a positive integer';
  for (const f of STRINGS) if (typeof x[f] !== 'string') return `${f} is not a string`;
  for (const f of ['requestId', 'before', 'after'] as const) if (x[f] !== null && typeof x[f] !== 'string') return `${f} is not a string or null`;
  if (typeof x.prevHash !== 'string' || !HEX64.test(x.prevHash)) return 'prevHash is not a SHA-256';
  if (typeof x.hash !== 'string' || !HEX64.test(x.hash)) return 'hash is not a SHA-256';
  return undefined;
}

/**
 * Checks records (in seq order) against each other and against the signed head: every record's own hash, seq without
 * gaps from 1, each prevHash, the head's signature, and that the log ends exactly where the head says. `head`
 * undefined means no head could be found. Returns every problem, never throws on bad input.
 */
export function verifyAudit(records: readonly unknown[], head: SignedAuditHead | undefined, publicKey: KeyObject): AuditVerification {
  const problems: AuditProblem[] = [];
  let expectedSeq = 1;
  let prev = GENESIS_HASH;
  const hashAt = new Map<number, string>();
  let lastSeq = 0;
  for (const [i, raw] of records.entries()) {
    const why = malformed(raw);
    if (why !== undefined) {
      const seq = (raw as { seq?: unknown } | null)?.seq;
      problems.push({ kind: 'malformed', ...(Number.isSafeInteger(seq) ? { seq: seq as number } : {}), message: `record #${i + 1} is malformed: ${why}` });
      continue;
    }
    const r = raw as AuditRecord;
    let gap = false;
    if (r.seq > expectedSeq) {
      gap = true;
      const n = r.seq - expectedSeq;
      problems.push({ kind: 'missing', seq: expectedSeq, message: n === 1 ? `record ${expectedSeq} is missing (removed)` : `records ${expectedSeq}–${r.seq - 1} are missing (removed)` });
    } else if (r.seq < expectedSeq) {
      problems.push({ kind: 'out_of_order', seq: r.seq, message: `record ${r.seq} appears after record ${expectedSeq - 1} (duplicated or reordered)` });
    }
    if (!gap && r.prevHash !== prev) {
      problems.push({ kind: 'chain_broken', seq: r.seq, message: `record ${r.seq} does not follow the record before it (its prevHash differs: that record was changed or replaced)` });
    }
    if (recordHash(r) !== r.hash) problems.push({ kind: 'changed', seq: r.seq, message: `record ${r.seq} was changed after it was written (its content does not match its hash)` });
    if (r.action === TAIL_MISMATCH_ACTION) problems.push({ kind: 'tail_mismatch', seq: r.seq, message: `record ${r.seq}: the control plane found the log's end changed: ${r.reason}` });
    prev = r.hash;
    expectedSeq = Math.max(expectedSeq, r.seq + 1);
    lastSeq = Math.max(lastSeq, r.seq);
    hashAt.set(r.seq, r.hash);
  }
  if (head === undefined) {
    if (records.length > 0) problems.push({ kind: 'no_head', message: 'there is no signed head: the newest records cannot be checked (was audit-head.json removed?)' });
  } else if (!headSignatureValid(head, publicKey)) {
    problems.push({ kind: 'bad_signature', message: 'the signed head does not verify with the audit key (the head was forged or edited, or signed by another key)' });
  } else if (head.count > lastSeq) {
    const n = head.count - lastSeq;
    problems.push({ kind: 'truncated', seq: lastSeq + 1, message: `the signed head covers ${head.count} records but the log ends at ${lastSeq}: the newest ${n === 1 ? 'record was' : `${n} records were`} removed` });
  } else {
    const at = head.count === 0 ? GENESIS_HASH : hashAt.get(head.count);
    if (at !== head.lastHash) {
      problems.push({ kind: 'head_mismatch', seq: head.count, message: `record ${head.count} is not the one the signed head names (it was changed or replaced)` });
    }
    if (lastSeq > head.count) {
      const which = lastSeq === head.count + 1 ? `record ${lastSeq} is` : `records ${head.count + 1}–${lastSeq} are`;
      problems.push({ kind: 'unsigned_records', seq: head.count + 1, message: `${which} not covered by the signed head (written after it: a crash before the head was saved, or a write without the key)` });
    }
  }
  return { ok: problems.length === 0, records: records.length, problems };
}

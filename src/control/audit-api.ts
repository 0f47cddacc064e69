// The audit trail's admin routes (read, head, verify) and what every other route module needs to record into it.
import type { KeyObject } from 'node:crypto';
import { isScalar, parseDocument, visit } from 'yaml';
import type { AuditInput, AuditRecord, AuditSink, AuditVerification, SignedAuditHead } from '../store/audit-record.ts';
import { ControlError, sendJson } from './control-server.ts';
import type { Caller, ControlRequest, ControlRoute } from './control-routes.ts';

/** The request header a client gives its reason for a change in (`lockgate apply|delete|ca … --reason TEXT` sets it). */
export const REASON_HEADER = 'x-lockgate-reason';
const MAX_REASON = 500;

/** What the routes read; AuditLog is one. */
export interface AuditReader {
  readonly keyId: string;
  readonly publicKey: KeyObject;
  readonly publicKeyPem: string;
  read(o: { after?: number; since?: string; limit?: number }): { records: AuditRecord[]; more: boolean };
  currentHead(): SignedAuditHead | undefined;
  verify(o?: { fromDisk?: boolean }): Promise<AuditVerification>;
}

/** Who the caller is, as an audit actor. */
export function callerActor(caller: Caller): string {
  if (caller.kind === 'admin') return caller.subject;
  if (caller.kind === 'node') return caller.spiffeId;
  return 'anonymous';
}

/** The reason the client gave (printable text, at most 500 characters), or ''. */
export function reasonOf(req: ControlRequest): string {
  const v = req.headers[REASON_HEADER];
  const text = Array.isArray(v) ? v.join(', ') : (v ?? '');
  return text.replace(/[\u0000-\u001f\u007f]/g, ' ').trim().slice(0, MAX_REASON);
}

/** Fields whose values are secrets wherever they appear (validate-jwt's hmac, basic auth, OIDC); a NamedValue's `secret` only names one. */
const SECRET_FIELD = /^(password|passphrase|hmac|clientSecret|privateKey|apiKey|token|accessToken|refreshToken)$/i;
export const REDACTED = '<redacted>';

/**
 * A config document as the audit trail keeps it: secret-valued fields replaced by "<redacted>" (the text is kept as
 * written when there are none). A document that does not parse is not kept at all: it might hold anything.
 */
export function redactDocument(text: string | null | undefined): string | null {
  if (text === null || text === undefined) return null;
  const doc = parseDocument(text, { version: '1.2' });
  if (doc.errors.length > 0) return '<document not recorded: it does not parse>';
  let redacted = false;
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && SECRET_FIELD.test(String(pair.key.value)) && pair.value !== null) {
        pair.value = doc.createNode(REDACTED);
        redacted = true;
      }
    },
  });
  return redacted ? doc.toString() : text;
}

/**
 * An append that never fails its caller: the change it records has already been made, so a failing audit write is
 * logged loudly (event `audit_append_failed`) rather than turned into an error for a request that succeeded.
 */
export function auditRecorder(sink: AuditSink | undefined, log?: (event: string, fields: Record<string, unknown>) => void): (input: AuditInput) => Promise<void> {
  if (sink === undefined) return async () => {};
  const report = log ?? ((event, fields) => process.stderr.write(`${JSON.stringify({ event, ...fields })}\n`));
  return async (input) => {
    try {
      await sink.append(input);
    } catch (err) {
      report('audit_append_failed', { action: input.action, target: input.target, actor: input.actor, requestId: input.requestId, error: (err as Error).message });
    }
  };
}

function intParam(query: URLSearchParams, name: string, fallback: number, max: number): number {
  const v = query.get(name);
  if (v === null) return fallback;
  if (!/^\d{1,15}$/.test(v) || Number(v) > max) throw new ControlError('bad_request', `?${name} must be an integer from 0 to ${max}`);
  return Number(v);
}

export function auditApiRoutes(deps: { audit: AuditReader }): ControlRoute[] {
  const { audit } = deps;
  const headView = (): Record<string, unknown> => ({ head: audit.currentHead() ?? null, keyId: audit.keyId, publicKey: audit.publicKeyPem });
  return [
    {
      // ?after=SEQ (exclusive) &since=ISO-TIME &limit=N (1..1000, default 100): records in seq order, and the head now.
      method: 'GET', path: '/v1/audit', auth: 'admin', cluster: 'read',
      handle: async (_req, res, cx) => {
        const after = intParam(cx.query, 'after', 0, Number.MAX_SAFE_INTEGER);
        const limit = Math.max(1, intParam(cx.query, 'limit', 100, 1000));
        const sinceText = cx.query.get('since');
        let since: string | undefined;
        if (sinceText !== null) {
          const t = Date.parse(sinceText);
          if (Number.isNaN(t)) throw new ControlError('bad_request', '?since must be a date or time, e.g. 2026-11-27T00:00:00Z');
          since = new Date(t).toISOString();
        }
        const page = audit.read({ after, limit, ...(since !== undefined ? { since } : {}) });
        sendJson(res, 200, { ...page, head: audit.currentHead() ?? null });
      },
    },
    { method: 'GET', path: '/v1/audit/head', auth: 'admin', cluster: 'read', handle: async (_req, res) => sendJson(res, 200, headView()) },
    {
      // The stored records against the head this process signed last and against the head file: either may be the one
      // an attacker changed (the file can be rolled back to an older signed head; the memory cannot).
      method: 'POST', path: '/v1/audit/verify', auth: 'admin', cluster: 'read',
      handle: async (_req, res) => {
        const [memory, disk] = [await audit.verify(), await audit.verify({ fromDisk: true })];
        const seen = new Set<string>();
        const problems = [...memory.problems, ...disk.problems.map((p) => ({ ...p, message: `head file: ${p.message}` }))]
          .filter((p) => !seen.has(p.message.replace(/^head file: /, '')) && seen.add(p.message.replace(/^head file: /, '')));
        sendJson(res, 200, { ok: problems.length === 0, records: memory.records, problems, ...headView() });
      },
    },
  ];
}

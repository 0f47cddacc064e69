// Just-in-time access (identity issue §4): AccessRequests and their lifecycle, kept in the control plane's store.
//
//   pending ──approve (enough approvals, or one force approval)──▶ approved ──until──▶ expired
//      │                                                             └──revoke──▶ revoked
//      ├──deny──▶ denied
//      └──not reviewed within reviewWithin──▶ expired
//
// The AccessPolicy whose target the request names decides who reviews (`spec.requests`): approvers' groups, how many
// approvals, which groups may force-approve, the longest access. Nobody reviews their own request. An approved
// request becomes an AccessGrant in the snapshots of the nodes that enforce its target (within a push, well under a
// second); the nodes read the clock against the grant's end, so access ends exactly then, not when a snapshot says so.
import { randomBytes } from 'node:crypto';
import type { AccessGrantSpec, AccessRequestSettings } from '../model/types.ts';
import type { AuditSink } from '../store/audit-record.ts';
import type { ConfigStore } from '../store/config-store.ts';

export const ACCESS_REQUEST_PREFIX = '/access/requests/';
/** Ended requests (denied, expired, revoked) are kept this long for `lockgate access list|show`; the audit trail keeps them for good. */
export const ENDED_RETENTION_MS = 30 * 86_400_000;

export type AccessRequestState = 'pending' | 'approved' | 'denied' | 'expired' | 'revoked';

/** A person, as their validated token says. */
export interface Person {
  sub: string;
  email?: string;
  groups: string[];
  /** The token's issuer (an IdentityProvider). */
  issuer: string;
  /** The IdentityProviders ("namespace/name") that validated the token (RoleBindings name one). */
  providers?: string[];
  /** When the token the person presented expires (ms since the epoch). */
  tokenExpiresAt?: number;
}

export interface AccessTarget {
  /** Qualified `namespace/name` of a MeshService, or of an Api. */
  service?: string;
  api?: string;
  operation?: string;
}

export interface Review {
  by: string;
  email?: string;
  decision: 'approve' | 'deny';
  at: string;
  comment?: string;
  /** The reviewer's groups that made them an approver. */
  as: string[];
  /** A force approval (one is enough): flagged in the audit trail. */
  forced: boolean;
}

export interface AccessRequestRecord {
  id: string;
  requester: Person;
  target: AccessTarget;
  methods: string[];
  paths: string[];
  reason: string;
  /** What was asked for and what was granted (capped by the policy's maxDuration), ms. */
  requestedMs: number;
  durationMs: number;
  /** `namespace/name` of the AccessPolicy whose `requests` settings govern it. */
  policy: string;
  settings: AccessRequestSettings;
  state: AccessRequestState;
  createdAt: string;
  /** Expires unless reviewed by then. */
  reviewBy: string;
  reviews: Review[];
  /** Approved: access from … until (exclusive). */
  startsAt?: string;
  endsAt?: string;
  endedAt?: string;
  endedBy?: string;
  endReason?: string;
}

/** Where a request's review settings come from: the AccessPolicies with `requests` for a target. */
export type SettingsLookup = (target: AccessTarget) => Promise<{ policy: string; settings: AccessRequestSettings } | { error: string }>;

export class AccessRequestError extends Error {
  readonly code: 'bad_request' | 'not_found' | 'forbidden' | 'conflict';
  constructor(code: AccessRequestError['code'], message: string) {
    super(message);
    this.name = 'AccessRequestError';
    this.code = code;
  }
}

export interface AccessRequestsOptions {
  store: ConfigStore;
  settings: SettingsLookup;
  audit?: AuditSink;
  now?: () => number;
  log?: (event: string, fields: Record<string, unknown>) => void;
}

const iso = (ms: number): string => new Date(ms).toISOString();
const METHOD = /^[A-Z]{1,16}$/;

export class AccessRequests {
  readonly #o: AccessRequestsOptions;
  readonly #now: () => number;
  readonly #records = new Map<string, AccessRequestRecord>();
  readonly #listeners = new Set<() => void>();
  #revision = 0;
  /** One change at a time: a review and the sweep never interleave. */
  #chain: Promise<unknown> = Promise.resolve();

  private constructor(o: AccessRequestsOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  static async open(o: AccessRequestsOptions): Promise<AccessRequests> {
    const a = new AccessRequests(o);
    const { kvs } = await o.store.range(ACCESS_REQUEST_PREFIX);
    for (const kv of kvs) {
      const r = JSON.parse(kv.value) as AccessRequestRecord;
      a.#records.set(r.id, r);
    }
    return a;
  }

  /** Moves with every change to what grants there are (nodes' snapshots carry them). */
  get revision(): number {
    return this.#revision;
  }

  onChange(f: () => void): () => void {
    this.#listeners.add(f);
    return () => this.#listeners.delete(f);
  }

  get(id: string): AccessRequestRecord | undefined {
    return this.#records.get(id);
  }

  /** Newest first; `visible` narrows (a person sees their own requests and those they may review). */
  list(filter: { state?: AccessRequestState; visible?: (r: AccessRequestRecord) => boolean } = {}): AccessRequestRecord[] {
    return [...this.#records.values()]
      .filter((r) => filter.state === undefined || r.state === filter.state)
      .filter((r) => filter.visible === undefined || filter.visible(r))
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : 0));
  }

  /** The groups that make `p` a reviewer of `r` (empty: not one), and whether one of them forces approval. */
  reviewerGroups(r: AccessRequestRecord, p: Person): { as: string[]; forced: boolean } {
    const forcing = p.groups.filter((g) => r.settings.forceApprovers.includes(g));
    const as = [...new Set([...p.groups.filter((g) => r.settings.approvers.includes(g)), ...forcing])];
    return { as, forced: forcing.length > 0 };
  }

  /** The active grants (approved, not ended), as AccessGrant specs with their namespace. */
  grants(at = this.#now()): Array<{ id: string; namespace: string; spec: AccessGrantSpec }> {
    const out: Array<{ id: string; namespace: string; spec: AccessGrantSpec }> = [];
    for (const r of this.#records.values()) {
      if (r.state !== 'approved' || r.endsAt === undefined || Date.parse(r.endsAt) <= at) continue;
      const name = r.target.service ?? r.target.api ?? '';
      const [namespace] = name.split('/');
      out.push({
        id: r.id,
        namespace,
        spec: {
          request: r.id,
          user: r.requester.sub,
          target: r.target.service !== undefined ? { service: r.target.service } : { api: r.target.api!.split('/')[1], ...(r.target.operation ? { operation: r.target.operation } : {}) },
          methods: r.methods,
          paths: r.paths,
          from: r.startsAt!,
          until: r.endsAt,
          approvedBy: r.reviews.filter((v) => v.decision === 'approve').map((v) => v.email ?? v.by),
        },
      });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** A new request from `requester`; pending until reviewed. */
  create(requester: Person, input: { target: AccessTarget; methods?: string[]; paths?: string[]; reason?: string; durationMs?: number }, requestId?: string): Promise<AccessRequestRecord> {
    return this.#serial(async () => {
      const t = input.target;
      if ((t.service === undefined) === (t.api === undefined)) throw new AccessRequestError('bad_request', 'name exactly one target: a service or an api');
      if (t.operation !== undefined && t.api === undefined) throw new AccessRequestError('bad_request', 'operation needs api');
      const reason = (input.reason ?? '').trim();
      if (reason === '') throw new AccessRequestError('bad_request', 'a reason is required (who approves needs to know why)');
      if (reason.length > 1000) throw new AccessRequestError('bad_request', 'the reason is longer than 1000 characters');
      const methods = (input.methods ?? []).map((m) => m.toUpperCase());
      for (const m of methods) if (!METHOD.test(m)) throw new AccessRequestError('bad_request', `method ${JSON.stringify(m)} is not an HTTP method`);
      const paths = input.paths ?? [];
      for (const p of paths) if (typeof p !== 'string' || !p.startsWith('/') || p.length > 512) throw new AccessRequestError('bad_request', `path ${JSON.stringify(p)} must start with "/"`);
      const found = await this.#o.settings(t);
      if ('error' in found) throw new AccessRequestError('bad_request', found.error);
      const requestedMs = input.durationMs ?? Math.min(3_600_000, found.settings.maxDuration);
      if (!Number.isFinite(requestedMs) || requestedMs < 60_000) throw new AccessRequestError('bad_request', 'duration must be at least 1m');
      const now = this.#now();
      const r: AccessRequestRecord = {
        id: `ar-${randomBytes(6).toString('hex')}`,
        requester, target: { ...t }, methods, paths, reason, requestedMs,
        durationMs: Math.min(requestedMs, found.settings.maxDuration),
        policy: found.policy, settings: found.settings,
        state: 'pending', createdAt: iso(now), reviewBy: iso(now + found.settings.reviewWithin), reviews: [],
      };
      await this.#save(r);
      await this.#audit(requester.email ?? requester.sub, 'access.request', r, reason, requestId, {
        durationMs: r.durationMs, capped: r.durationMs < requestedMs, state: r.state,
      });
      this.#o.log?.('access_requested', { id: r.id, requester: requester.sub, target: targetText(r.target), requestId });
      return r;
    });
  }

  /**
   * `role`: the reviewer holds a role that reviews requests for this target (approver or admin at the admin API, e.g.
   * "approver (RoleBinding x/y)"), which lets them review without being in the policy's approver groups.
   */
  approve(id: string, reviewer: Person, comment?: string, requestId?: string, role?: string): Promise<AccessRequestRecord> {
    return this.#review(id, reviewer, 'approve', comment, requestId, role);
  }

  deny(id: string, reviewer: Person, comment?: string, requestId?: string, role?: string): Promise<AccessRequestRecord> {
    return this.#review(id, reviewer, 'deny', comment, requestId, role);
  }

  #review(id: string, reviewer: Person, decision: 'approve' | 'deny', comment: string | undefined, requestId: string | undefined, role: string | undefined): Promise<AccessRequestRecord> {
    return this.#serial(async () => {
      const r = this.#pending(id);
      if (reviewer.sub === r.requester.sub && reviewer.issuer === r.requester.issuer) throw new AccessRequestError('forbidden', 'nobody reviews their own request');
      const groups = this.reviewerGroups(r, reviewer);
      const forced = groups.forced;
      const as = groups.as.length === 0 && role !== undefined ? [`role ${role}`] : groups.as;
      if (as.length === 0) throw new AccessRequestError('forbidden', `only members of ${[...r.settings.approvers, ...r.settings.forceApprovers].join(', ')} (or people with the approver role there) review requests for ${targetText(r.target)} (${r.policy})`);
      if (r.reviews.some((v) => v.by === reviewer.sub)) throw new AccessRequestError('conflict', `${reviewer.sub} already reviewed ${id}`);
      const now = this.#now();
      const review: Review = { by: reviewer.sub, ...(reviewer.email ? { email: reviewer.email } : {}), decision, at: iso(now), ...(comment ? { comment } : {}), as, forced: decision === 'approve' && forced };
      const next: AccessRequestRecord = { ...r, reviews: [...r.reviews, review] };
      const approvals = next.reviews.filter((v) => v.decision === 'approve');
      let action = `access.${decision}`;
      if (decision === 'deny') {
        next.state = 'denied';
        next.endedAt = iso(now);
        next.endedBy = reviewer.sub;
      } else if (review.forced || approvals.length >= r.settings.minApprovals) {
        next.state = 'approved';
        next.startsAt = iso(now);
        next.endsAt = iso(now + r.durationMs);
        if (review.forced && approvals.length < r.settings.minApprovals) action = 'access.force-approve';
      }
      await this.#save(next);
      await this.#audit(reviewer.email ?? reviewer.sub, action, next, comment ?? '', requestId, {
        reviewer: reviewer.sub, as: as.join(','), forced: review.forced, approvals: approvals.length, needed: r.settings.minApprovals, state: next.state,
        ...(next.endsAt ? { until: next.endsAt } : {}),
      });
      this.#o.log?.(`access_${decision === 'approve' ? (next.state === 'approved' ? 'approved' : 'approval_recorded') : 'denied'}`, { id, reviewer: reviewer.sub, forced: review.forced, requestId });
      if (next.state === 'approved') this.#changed();
      return next;
    });
  }

  /** Ends an approved request's access now (the requester, a reviewer of it, or an administrator). */
  revoke(id: string, actor: { sub: string; person?: Person; admin?: boolean }, reason = '', requestId?: string): Promise<AccessRequestRecord> {
    return this.#serial(async () => {
      const r = this.#records.get(id);
      if (r === undefined) throw new AccessRequestError('not_found', `no access request ${id}`);
      if (r.state !== 'approved' && r.state !== 'pending') throw new AccessRequestError('conflict', `${id} is ${r.state}`);
      const p = actor.person;
      const allowed = actor.admin === true || (p !== undefined && (p.sub === r.requester.sub || this.reviewerGroups(r, p).as.length > 0));
      if (!allowed) throw new AccessRequestError('forbidden', 'only the requester, a reviewer of the request or an administrator revokes it');
      const now = this.#now();
      const wasGranted = r.state === 'approved';
      const next: AccessRequestRecord = { ...r, state: 'revoked', endedAt: iso(now), endedBy: actor.sub, ...(reason ? { endReason: reason } : {}) };
      if (wasGranted && next.endsAt !== undefined && Date.parse(next.endsAt) > now) next.endsAt = iso(now);
      await this.#save(next);
      await this.#audit(actor.sub, 'access.revoke', next, reason, requestId, { state: next.state });
      this.#o.log?.('access_revoked', { id, by: actor.sub, requestId });
      if (wasGranted) this.#changed();
      return next;
    });
  }

  /** Expires what is due: pending requests past their review time, approved ones past their end. Returns how many. */
  sweep(): Promise<number> {
    return this.#serial(async () => {
      const now = this.#now();
      let n = 0;
      let grantsChanged = false;
      for (const r of [...this.#records.values()]) {
        const pendingDue = r.state === 'pending' && Date.parse(r.reviewBy) <= now;
        const grantDue = r.state === 'approved' && r.endsAt !== undefined && Date.parse(r.endsAt) <= now;
        if (!pendingDue && !grantDue) continue;
        const next: AccessRequestRecord = { ...r, state: 'expired', endedAt: iso(now), endedBy: 'lockgate:control-plane', endReason: pendingDue ? 'not reviewed in time' : 'access ended' };
        await this.#save(next);
        await this.#audit('lockgate:control-plane', 'access.expire', next, next.endReason!, undefined, { was: r.state, ...(r.endsAt ? { until: r.endsAt } : {}) });
        n++;
        if (grantDue) grantsChanged = true;
      }
      // Ended long ago: out of the store (and of every list); the audit trail holds their whole story.
      for (const r of [...this.#records.values()]) {
        if (r.state === 'pending' || r.state === 'approved' || r.endedAt === undefined) continue;
        if (Date.parse(r.endedAt) + ENDED_RETENTION_MS > now) continue;
        await this.#o.store.delete(`${ACCESS_REQUEST_PREFIX}${r.id}`);
        this.#records.delete(r.id);
      }
      if (grantsChanged) this.#changed();
      return n;
    });
  }

  /** The earliest time sweep() has work (for a timer), or undefined. */
  nextDue(): number | undefined {
    let next: number | undefined;
    for (const r of this.#records.values()) {
      const t = r.state === 'pending' ? Date.parse(r.reviewBy) : r.state === 'approved' && r.endsAt !== undefined ? Date.parse(r.endsAt) : undefined;
      if (t !== undefined && (next === undefined || t < next)) next = t;
    }
    return next;
  }

  #pending(id: string): AccessRequestRecord {
    const r = this.#records.get(id);
    if (r === undefined) throw new AccessRequestError('not_found', `no access request ${id}`);
    if (r.state === 'pending' && Date.parse(r.reviewBy) <= this.#now()) throw new AccessRequestError('conflict', `${id} was not reviewed in time and has expired`);
    if (r.state !== 'pending') throw new AccessRequestError('conflict', `${id} is ${r.state}, not pending`);
    return r;
  }

  async #save(r: AccessRequestRecord): Promise<void> {
    await this.#o.store.put(`${ACCESS_REQUEST_PREFIX}${r.id}`, JSON.stringify(r));
    this.#records.set(r.id, r);
  }

  async #audit(actor: string, action: string, r: AccessRequestRecord, reason: string, requestId: string | undefined, details: Record<string, string | number | boolean | null>): Promise<void> {
    await this.#o.audit?.append({
      actor, action, target: `access-request/${r.id}`, reason, ...(requestId ? { requestId } : {}),
      details: { requester: r.requester.sub, target: targetText(r.target), methods: r.methods.join(',') || '*', policy: r.policy, ...details },
    }).catch((err: unknown) => this.#o.log?.('audit_append_failed', { action, error: (err as Error).message }));
  }

  #changed(): void {
    this.#revision++;
    for (const f of this.#listeners) f();
  }

  #serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(f, f);
    this.#chain = run.catch(() => {});
    return run;
  }
}

export function targetText(t: AccessTarget): string {
  if (t.service !== undefined) return `service ${t.service}`;
  return `api ${t.api}${t.operation ? ` operation ${t.operation}` : ''}`;
}

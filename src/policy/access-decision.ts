// The access decision of sidecars and the gateway: AccessPolicy resources compiled once per config, then one call decided with its reasons.
/**
 * Semantics (issue 4 §6; identity issue §3):
 * - A policy applies to its target service (qualified `namespace/name`) and, when `target.ports` is
 *   non-empty, to those ports only; or to its target Api (gateway), all operations or the one named.
 *   An Api no policy covers is allowed (the gateway's access is opt-in).
 * - Deny rules win: if any deny rule of an applicable enforcing policy matches, the verdict is deny.
 * - Else if any allow rule of an applicable enforcing policy matches: allow.
 * - Else if at least one applicable enforcing policy has allow rules: deny (as Istio and Linkerd: once a
 *   service has an allow policy, unlisted callers are refused).
 * - Else the mesh default: `allow` allows, `audit` allows with `wouldDeny`, `deny` denies.
 * - Audit-mode policies never change that verdict (as Istio's AUDIT): when it allows, they are decided
 *   the same way together with the enforcing ones, and a deny there is reported as `wouldDeny` (mode audit).
 * - A rule matches when every non-empty field matches (AND), each list matching any entry (OR):
 *   - sources: `*` = any authenticated caller (non-empty sourceId, any trust domain); `spiffe://…` is
 *     compared exactly; a service name (`orders` = the policy's namespace, `shop/orders` explicit)
 *     matches when parseWorkloadId(sourceId) is (mesh trust domain, ns, service). Names are turned into
 *     that workload ID at compile time: parseWorkloadId accepts one spelling per identity (lower-case
 *     scheme and trust domain, no percent-encoding, no dot segments), so a Set lookup is the same test
 *     and allocates nothing. A plaintext caller (sourceId '') matches no source condition.
 *   - methods: exact, case-sensitive. ports: exact.
 *   - paths: exact, or a prefix when ending in `*`; `/x/*` is segment-aware (matches `/x` and `/x/…`,
 *     not `/xy`), `/x*` is a plain string prefix.
 *   - end-user criteria (user, email, domain, groups, claim/…) read `claims`; without claims they never match.
 *   - all / any / none hold nested rules: and, or, and "none of them matches".
 * - A rule that cannot be evaluated (a `cel` runtime error) fails closed in its own policy: a deny rule counts
 *   as matched, an allow rule as not matched.
 * decideAccess allocates only the result (decision, reasons, id) unless a `time` or `cel` rule is evaluated.
 */
import type { AccessDefault, AccessGrantResource, AccessPolicyResource, AccessRule, ListMatch, StringMatch, TimeWindow } from '../model/types.ts';
import { compileCidrs } from '../lib/cidr.ts';
import { parseWorkloadId } from '../lib/spiffe-id.ts';
import { randomHex } from '../lib/trace-context.ts';
import { compileExpression, type CompiledExpression } from './expression.ts';
import { buildExpressionContext, type ExpressionContext, type ExpressionSource } from './expression-context.ts';

export interface AccessRequest {
  /** The calling workload's SPIFFE ID ('' = none: plaintext or no client certificate). */
  sourceId: string;
  /** Qualified `namespace/service` of the destination (mesh); '' at the gateway. */
  service: string;
  /** Qualified `namespace/name` of the Api (gateway); absent in the mesh. */
  api?: string;
  /** The operation's name (gateway). */
  operation?: string;
  port: number;
  method: string;
  /** Canonical path without query. */
  path: string;
  /** The end user's verified claims (validate-jwt at the gateway, an assertion at a sidecar); null/absent = none. */
  claims?: Readonly<Record<string, unknown>> | null;
  /** The client's address ('' = unknown). */
  sourceIp?: string;
  /** Decision time (ms since the epoch); now when absent. */
  now?: number;
  /** Request headers, flat [name, value, …] (for `cel`). */
  headers?: readonly string[];
  requestId?: string;
  /** The `context` for `cel` rules, when the caller has a richer one (the gateway's pipeline); else built from the fields here. */
  expression?: () => ExpressionContext;
}

export interface AccessDecision {
  /** What happens (audit mode: true even when `wouldDeny`). */
  allow: boolean;
  /** The rules' verdict was deny. */
  wouldDeny: boolean;
  mode: 'enforce' | 'audit';
  /** Short id for logs, unique per decision: `<hash of the deciding rule>-<process tag><counter>`. */
  id: string;
  /** Human-readable reasons in order: which policy and rule matched, or why nothing did. */
  reasons: string[];
  /** `namespace/name` of the deciding policy, or `mesh-default`. */
  policy: string;
}

/** One test of a rule. */
interface Condition {
  test(req: AccessRequest): boolean;
  /** What the request had, when it matched: `method GET`. */
  fact(req: AccessRequest): string;
  /** Why it did not match: `method DELETE not in [GET, HEAD]`. */
  miss(req: AccessRequest): string;
}

interface CompiledRule {
  /** `shop/inventory-lockdown deny[0]`. */
  readonly label: string;
  /** Hash of the label: the first part of the ids of the decisions this rule makes. */
  readonly tag: string;
  /** `deny[0]`. */
  readonly index: string;
  readonly conditions: readonly Condition[];
}

interface CompiledPolicy {
  readonly name: string;
  readonly mode: 'enforce' | 'audit';
  readonly ports: readonly number[];
  /** Gateway policies: the operation it is limited to ('' = the whole Api). */
  readonly operation: string;
  /** Id tag of the deny this policy causes when it has allow rules and none matched. */
  readonly noAllowTag: string;
  readonly allow: readonly CompiledRule[];
  readonly deny: readonly CompiledRule[];
  /** What its rules read beyond the request line and identities (decides whether and how long a decision is cached). */
  readonly traits: RuleTraits;
}

/** What some rule of a policy reads: `cel` (anything: never cached), the client address, the clock, grants. */
interface RuleTraits {
  cel: boolean;
  ip: boolean;
  time: boolean;
  grant: boolean;
}

/** Opaque to callers: applicable policies indexed by qualified target service or Api. */
export interface CompiledAccess {
  readonly byService: ReadonlyMap<string, readonly CompiledPolicy[]>;
  readonly byApi: ReadonlyMap<string, readonly CompiledPolicy[]>;
  readonly defaultAccess: AccessDefault;
  /** Decisions already made (see decideAccess); per config version, so a policy or grant change starts afresh. */
  readonly cache: DecisionCache;
  readonly grants: GrantIndex;
}

const PLAINTEXT = '(none: plaintext or no client certificate)';
const AUDIT_NOTE = 'audit mode: would be denied, allowed';
const NO_USER = 'no end user (no validated token or assertion)';

export function compileAccessPolicies(
  policies: readonly AccessPolicyResource[],
  defaults: { defaultAccess: AccessDefault; trustDomain: string },
  grants: readonly AccessGrantResource[] = [],
): CompiledAccess {
  const byService = new Map<string, CompiledPolicy[]>();
  const byApi = new Map<string, CompiledPolicy[]>();
  const index = compileGrants(grants);
  const sorted = [...policies].sort((a, b) => cmp(qualified(a.metadata.namespace, a.metadata.name), qualified(b.metadata.namespace, b.metadata.name)));
  for (const p of sorted) {
    const ns = p.metadata.namespace;
    const name = qualified(ns, p.metadata.name);
    const t = p.spec.target;
    const rules = (kind: 'allow' | 'deny', list: readonly AccessRule[]) =>
      list.map((r, i) => ({ label: `${name} ${kind}[${i}]`, tag: tagOf(`${name} ${kind}[${i}]`), index: `${kind}[${i}]`, conditions: compileRule(r, ns, defaults.trustDomain, index) }));
    const traits: RuleTraits = { cel: false, ip: false, time: false, grant: false };
    for (const r of [...p.spec.allow, ...p.spec.deny]) traitsOf(r, traits);
    const compiled: CompiledPolicy = {
      name, mode: p.spec.mode, ports: [...(t.ports ?? [])], operation: t.operation ?? '', noAllowTag: tagOf(`${name} no-allow`),
      allow: rules('allow', p.spec.allow), deny: rules('deny', p.spec.deny), traits,
    };
    const [byTarget, key] = t.api !== undefined
      ? [byApi, t.api.includes('/') ? t.api : qualified(ns, t.api)]
      : [byService, (t.service ?? '').includes('/') ? (t.service ?? '') : qualified(ns, t.service ?? '')];
    const list = byTarget.get(key);
    if (list === undefined) byTarget.set(key, [compiled]);
    else list.push(compiled);
  }
  return { byService, byApi, defaultAccess: defaults.defaultAccess, cache: new DecisionCache(), grants: index };
}

function traitsOf(r: AccessRule, t: RuleTraits): void {
  if (r.cel !== undefined) t.cel = true;
  if (r.sourceIp !== undefined && r.sourceIp.length > 0) t.ip = true;
  if (r.time !== undefined) t.time = true;
  if (r.grant !== undefined) t.grant = true;
  for (const sub of [...(r.all ?? []), ...(r.any ?? []), ...(r.none ?? [])]) traitsOf(sub, t);
}

/** A cached verdict and when it holds: [from, until). */
interface CachedVerdict {
  verdict: Verdict;
  from: number;
  until: number;
}

/** Longest a cached decision is trusted without anything else ending it sooner. */
const DECISION_TTL_MS = 60_000;
const PER_USER_ENTRIES = 256;
const ANONYMOUS_ENTRIES = 10_000;

/**
 * Decisions by (end user, source workload, target, port or operation, method, canonical path, client address when a
 * rule reads it). The end user is the claims object itself: the JWT validator and the assertion verifier hand out the
 * same object for the same token while they cache it, so a WeakMap keyed by it is a cache by token that needs no
 * hashing and ends with the token's cache entry. Requests without an end user share one bounded map.
 *
 * Each end user also keeps the last decision with its request fields: a user repeating a call (the common case) is
 * answered by comparing those fields, without building and hashing the key string (~1 µs per request at each hop).
 */
class DecisionCache {
  readonly #byUser = new WeakMap<object, UserDecisions>();
  readonly #anonymous = new UserDecisions(false);

  /** The end user's decisions (created on first use). */
  of(claims: object | null): UserDecisions {
    if (claims === null) return this.#anonymous;
    let u = this.#byUser.get(claims);
    if (u === undefined) this.#byUser.set(claims, (u = new UserDecisions()));
    return u;
  }
}

/** The request fields a decision depends on (the cache key, field by field). */
interface DecisionFields {
  /** Api (gateway) or service (mesh). */
  target: string;
  /** Operation (gateway); '' in the mesh. */
  operation: string;
  port: number;
  sourceId: string;
  method: string;
  path: string;
  /** The client address when a rule reads it, else ''. */
  ip: string;
}

/**
 * One end user's decisions: the last one inline (its request fields, verdict and window: one object to read on a
 * repeated call, which matters when a thousand users' state competes for the CPU caches), the rest in a map made on
 * first need.
 */
class UserDecisions implements DecisionFields {
  target = '';
  operation = '';
  port = 0;
  sourceId = '';
  method = '';
  path = '';
  ip = '';
  /** The last decision's verdict (null: none) and when it holds: [from, until). */
  verdict: Verdict | null = null;
  from = 0;
  until = 0;
  #map: Map<string, CachedVerdict> | null = null;
  /** False for the shared anonymous entry: many clients take turns there, so it only uses the map. */
  readonly #keepLast: boolean;

  constructor(keepLast = true) {
    this.#keepLast = keepLast;
  }

  get(f: DecisionFields, gateway: boolean, now: number): Verdict | undefined {
    if (this.verdict !== null && this.path === f.path && this.method === f.method && this.sourceId === f.sourceId && this.target === f.target
      && this.operation === f.operation && this.port === f.port && this.ip === f.ip) {
      if (now >= this.from && now < this.until) return this.verdict;
      this.verdict = null;
    }
    const m = this.#map;
    if (m === null) return undefined;
    const key = keyOf(f, gateway);
    const e = m.get(key);
    if (e === undefined) return undefined;
    if (now >= e.from && now < e.until) {
      this.#remember(f, e);
      return e.verdict;
    }
    m.delete(key);
    return undefined;
  }

  set(f: DecisionFields, gateway: boolean, entry: CachedVerdict): void {
    const m = (this.#map ??= new Map());
    // Bounded by clearing: a map that fills up (a scan over many paths) starts again, it never grows without limit.
    if (m.size >= (this.#keepLast ? PER_USER_ENTRIES : ANONYMOUS_ENTRIES)) m.clear();
    m.set(keyOf(f, gateway), entry);
    this.#remember(f, entry);
  }

  #remember(f: DecisionFields, e: CachedVerdict): void {
    if (!this.#keepLast) return;
    this.target = f.target;
    this.operation = f.operation;
    this.port = f.port;
    this.sourceId = f.sourceId;
    this.method = f.method;
    this.path = f.path;
    this.ip = f.ip;
    this.verdict = e.verdict;
    this.from = e.from;
    this.until = e.until;
  }
}

function keyOf(f: DecisionFields, gateway: boolean): string {
  return `${gateway ? `a${f.target}\0${f.operation}` : `s${f.target}\0${f.port}`}\0${f.sourceId}\0${f.method}\0${f.path}\0${f.ip}`;
}

/** Until when a verdict for `req` from `policies` holds, or 0 when it must not be cached. */
function cacheUntil(compiled: CompiledAccess, policies: readonly CompiledPolicy[], req: AccessRequest, now: number): number {
  let until = now + DECISION_TTL_MS;
  let time = false;
  let grant = false;
  for (const p of policies) {
    if (p.traits.cel) return 0;
    if (p.traits.time) time = true;
    if (p.traits.grant) grant = true;
  }
  const exp = req.claims?.exp;
  if (typeof exp === 'number') until = Math.min(until, exp * 1000);
  // Time rules are written to the minute (HH:MM, days, dates): every boundary is a whole minute.
  if (time) until = Math.min(until, (Math.floor(now / 60_000) + 1) * 60_000);
  if (grant) {
    const list = req.api !== undefined ? compiled.grants.byApi.get(req.api) : compiled.grants.byService.get(req.service);
    for (const g of list ?? []) {
      if (g.from > now) until = Math.min(until, g.from);
      else if (g.until > now) until = Math.min(until, g.until);
    }
  }
  return until > now ? until : 0;
}

function usesIp(policies: readonly CompiledPolicy[]): boolean {
  for (const p of policies) if (p.traits.ip) return true;
  return false;
}

/** The Api has AccessPolicies (the gateway checks its requests; others pay nothing). */
export function apiHasAccessPolicies(compiled: CompiledAccess, api: string, operation: string): boolean {
  const list = compiled.byApi.get(api);
  return list !== undefined && list.some((p) => p.operation === '' || p.operation === operation);
}

export function decideAccess(compiled: CompiledAccess, req: AccessRequest): AccessDecision {
  const gateway = req.api !== undefined;
  const all = gateway ? compiled.byApi.get(req.api ?? '') : compiled.byService.get(req.service);
  const policies = all === undefined ? [] : applicable(all, req, gateway);
  if (policies.length === 0) {
    if (gateway) return withId({ allow: true, wouldDeny: false, mode: 'enforce', policy: 'gateway-default', tag: GATEWAY_DEFAULT_TAG, reasons: [`no AccessPolicy targets ${targetText(req)}: allowed`] });
    return withId(meshDefault(compiled, all === undefined ? `no AccessPolicy targets ${req.service}` : `no AccessPolicy of ${req.service} applies to port ${req.port}`));
  }
  // Cached by end user (the claims object), workload, target, method, path (and address when a rule reads it).
  const claims = req.claims ?? null;
  const now = req.now ?? Date.now();
  const fields: DecisionFields = {
    target: gateway ? (req.api ?? '') : req.service,
    operation: gateway ? (req.operation ?? '') : '',
    port: gateway ? 0 : req.port,
    sourceId: req.sourceId,
    method: req.method,
    path: req.path,
    ip: usesIp(policies) ? (req.sourceIp ?? '') : '',
  };
  const user = compiled.cache.of(claims);
  const hit = user.get(fields, gateway, now);
  if (hit !== undefined) return withId(hit);
  const v = decideWith(compiled, policies, req, gateway);
  const until = cacheUntil(compiled, policies, req, now);
  if (until > 0) user.set(fields, gateway, { verdict: v, from: now, until });
  return withId(v);
}

/** The same decision without the cache (tests compare the two; `lockgate explain` has nothing to reuse). */
export function decideAccessUncached(compiled: CompiledAccess, req: AccessRequest): AccessDecision {
  const gateway = req.api !== undefined;
  const all = gateway ? compiled.byApi.get(req.api ?? '') : compiled.byService.get(req.service);
  const policies = all === undefined ? [] : applicable(all, req, gateway);
  if (policies.length === 0) return decideAccess(compiled, req);
  return withId(decideWith(compiled, policies, req, gateway));
}

/** The policies of the target that apply to this port (mesh) or operation (gateway); the list itself when all do (no copy per call). */
function applicable(list: readonly CompiledPolicy[], req: AccessRequest, gateway: boolean): readonly CompiledPolicy[] {
  let out: CompiledPolicy[] | null = null;
  for (let i = 0; i < list.length; i++) {
    const p = list[i];
    const applies = gateway ? p.operation === '' || p.operation === req.operation : appliesToPort(p, req.port);
    if (applies) out?.push(p);
    else out ??= list.slice(0, i);
  }
  return out ?? list;
}

function targetText(req: AccessRequest): string {
  return req.api === undefined ? req.service : `Api ${req.api}${req.operation ? ` operation ${req.operation}` : ''}`;
}

/** A decision before it gets its id. */
type Verdict = Omit<AccessDecision, 'id'> & { tag: string };

/**
 * Audit-mode policies never change whether a call goes through (as Istio's AUDIT): the verdict is the enforcing
 * policies' (the default when none applies); the audit policies only say, when it allows, that the call would be
 * denied were every policy enforcing.
 */
function decideWith(compiled: CompiledAccess, policies: readonly CompiledPolicy[], req: AccessRequest, gateway: boolean): Verdict {
  let audits = 0;
  for (const p of policies) if (p.mode === 'audit') audits++;
  if (audits === 0) return strict(compiled, policies, req, gateway);
  const enforced = strict(compiled, audits === policies.length ? [] : policies.filter((p) => p.mode === 'enforce'), req, gateway);
  if (!enforced.allow) return enforced;
  const would = strict(compiled, policies, req, gateway);
  if (!would.wouldDeny) return enforced.wouldDeny ? would : enforced;
  // Allowed, but denied were the audit policies enforcing (or by the default's own audit mode).
  return would.allow ? would : { ...would, allow: true, mode: 'audit', reasons: [...would.reasons, AUDIT_NOTE] };
}

/**
 * The verdict as if every policy given were enforcing (the mesh or gateway default when none decides). A rule that
 * cannot be evaluated (a `cel` runtime error) fails closed: an erroring deny rule counts as matched, an erroring
 * allow rule as not matched.
 */
function strict(compiled: CompiledAccess, policies: readonly CompiledPolicy[], req: AccessRequest, gateway: boolean): Verdict {
  for (const p of policies) {
    for (const r of p.deny) {
      const m = evaluate(r, req);
      if (m === false) continue;
      const why = m === true ? matchedReason('deny', r, req) : `deny rule ${r.label} could not be evaluated (${m.message}): counted as matched`;
      return { allow: false, wouldDeny: true, mode: p.mode, policy: p.name, tag: r.tag, reasons: [why] };
    }
  }
  let denier: CompiledPolicy | undefined;
  for (const p of policies) {
    for (const r of p.allow) {
      if (evaluate(r, req) === true) return { allow: true, wouldDeny: false, mode: p.mode, policy: p.name, tag: r.tag, reasons: [matchedReason('allow', r, req)] };
    }
    if (p.allow.length > 0) denier ??= p;
  }
  if (denier === undefined) {
    const why = policies.length === 0 ? `no enforcing AccessPolicy of ${targetText(req)} applies` : `no deny rule matched and no AccessPolicy of ${targetText(req)} has allow rules`;
    if (gateway) return { allow: true, wouldDeny: false, mode: 'enforce', policy: 'gateway-default', tag: GATEWAY_DEFAULT_TAG, reasons: [why, 'allowed'] };
    return meshDefault(compiled, why);
  }
  const reasons: string[] = [];
  for (const p of policies) if (p.allow.length > 0) reasons.push(noAllowReason(p, req));
  return { allow: false, wouldDeny: true, mode: denier.mode, policy: denier.name, tag: denier.noAllowTag, reasons };
}

/** Whether the rule matches, or the error that kept it from being evaluated. */
function evaluate(rule: CompiledRule, req: AccessRequest): boolean | Error {
  try {
    return matches(rule, req);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

function meshDefault(compiled: CompiledAccess, why: string): Verdict {
  const policy = 'mesh-default';
  switch (compiled.defaultAccess) {
    case 'allow': return { allow: true, wouldDeny: false, mode: 'enforce', policy, tag: DEFAULT_TAGS.allow, reasons: [why, 'mesh default allow: allowed'] };
    case 'audit': return { allow: true, wouldDeny: true, mode: 'audit', policy, tag: DEFAULT_TAGS.audit, reasons: [why, 'mesh default audit: would be denied, allowed'] };
    default: return { allow: false, wouldDeny: true, mode: 'enforce', policy, tag: DEFAULT_TAGS.deny, reasons: [why, 'mesh default deny: denied'] };
  }
}

function appliesToPort(p: CompiledPolicy, port: number): boolean {
  return p.ports.length === 0 || p.ports.includes(port);
}

function matches(rule: CompiledRule, req: AccessRequest): boolean {
  for (const c of rule.conditions) if (!c.test(req)) return false;
  return true;
}

function matchedReason(kind: 'allow' | 'deny', rule: CompiledRule, req: AccessRequest): string {
  return `${kind} rule ${rule.label} matched (${factsOf(rule.conditions, req)})`;
}

function factsOf(conditions: readonly Condition[], req: AccessRequest): string {
  if (conditions.length === 0) return 'any request';
  let facts = '';
  for (const c of conditions) facts += (facts === '' ? '' : ', ') + c.fact(req);
  return facts;
}

/** The first condition that fails, or null when all hold. */
function firstMiss(conditions: readonly Condition[], req: AccessRequest): string | null {
  for (const c of conditions) if (!c.test(req)) return c.miss(req);
  return null;
}

/** Why each allow rule of `p` failed: its first failing condition. */
function noAllowReason(p: CompiledPolicy, req: AccessRequest): string {
  let text = `no allow rule of ${p.name} matched: `;
  for (let i = 0; i < p.allow.length; i++) {
    const r = p.allow[i];
    let why: string;
    try {
      why = firstMiss(r.conditions, req) ?? 'matched';
    } catch (err) {
      why = `could not be evaluated (${(err as Error).message})`;
    }
    text += p.allow.length === 1 ? why : `${i === 0 ? '' : '; '}${r.index}: ${why}`;
  }
  return text;
}

// Decision ids: `<hash of the deciding rule>-<process tag><counter>`. The hash groups a rule's decisions in logs
// and is computed at compile time (hashing the request per call cost more than the rest of the decision);
// the random per-process tag and the counter make every id unique.
const PROCESS_TAG = randomHex(6);
let counter = 0;
const DEFAULT_TAGS = { allow: tagOf('mesh-default allow'), audit: tagOf('mesh-default audit'), deny: tagOf('mesh-default deny') };
const GATEWAY_DEFAULT_TAG = tagOf('gateway-default allow');

function withId(v: Verdict): AccessDecision {
  counter++;
  return { allow: v.allow, wouldDeny: v.wouldDeny, mode: v.mode, id: `${v.tag}-${PROCESS_TAG}${counter.toString(36)}`, reasons: v.reasons, policy: v.policy };
}

/** 8 hex digits of FNV-1a over the UTF-16 units. */
function tagOf(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

function compileRule(rule: AccessRule, policyNamespace: string, trustDomain: string, grants: GrantIndex): Condition[] {
  const out: Condition[] = [];
  if (rule.sources.length > 0) out.push(sourceCondition(rule.sources, policyNamespace, trustDomain));
  if (rule.methods.length > 0) {
    const methods = [...rule.methods];
    out.push(listed(list(methods), (r) => methods.includes(r.method), (r) => `method ${r.method}`));
  }
  if (rule.paths.length > 0) out.push(pathCondition(rule.paths));
  if (rule.ports.length > 0) {
    const ports = [...rule.ports];
    out.push(listed(list(ports), (r) => ports.includes(r.port), (r) => `port ${r.port}`));
  }
  if (rule.authenticated !== undefined) {
    const want = rule.authenticated;
    out.push({
      test: (r) => (hasUser(r)) === want,
      fact: (r) => (hasUser(r) ? `end user ${userText(r)}` : NO_USER),
      miss: (r) => (want ? NO_USER : `end user ${userText(r)}, but the rule wants none`),
    });
  }
  if (rule.grant !== undefined) out.push(grantCondition(grants, rule.grant));
  if (rule.user !== undefined) out.push(claimString('user', rule.user, (c) => c.sub));
  if (rule.email !== undefined) out.push(claimString('email', rule.email, (c) => c.email));
  if (rule.domain !== undefined) out.push(claimString('domain', lowerMatch(rule.domain), (c) => (typeof c.email === 'string' && c.email.includes('@') ? c.email.slice(c.email.lastIndexOf('@') + 1).toLowerCase() : undefined)));
  if (rule.groups !== undefined) out.push(claimList('groups', rule.groups, (c) => c.groups));
  for (const [path, m] of Object.entries(rule.claims ?? {})) out.push(claimList(`claim/${path}`, m, (c) => claimAt(c, path)));
  if (rule.sourceIp !== undefined && rule.sourceIp.length > 0) {
    const set = compileCidrs(rule.sourceIp);
    out.push(listed(list(rule.sourceIp), (r) => r.sourceIp !== undefined && r.sourceIp !== '' && set.contains(r.sourceIp), (r) => `source address ${r.sourceIp || '(unknown)'}`));
  }
  if (rule.time !== undefined) out.push(timeCondition(rule.time));
  if (rule.cel !== undefined) out.push(celCondition(rule.cel));
  const nested = (rules: readonly AccessRule[]) => rules.map((r) => compileRule(r, policyNamespace, trustDomain, grants));
  if (rule.all !== undefined) {
    const subs = nested(rule.all);
    out.push({
      test: (r) => subs.every((c) => firstMiss(c, r) === null),
      fact: (r) => `all of (${subs.map((c) => factsOf(c, r)).join('; ')})`,
      miss: (r) => {
        const i = subs.findIndex((c) => firstMiss(c, r) !== null);
        return `all[${i}]: ${firstMiss(subs[i], r)}`;
      },
    });
  }
  if (rule.any !== undefined) {
    const subs = nested(rule.any);
    out.push({
      test: (r) => subs.some((c) => firstMiss(c, r) === null),
      fact: (r) => {
        const i = subs.findIndex((c) => firstMiss(c, r) === null);
        return `any[${i}] (${factsOf(subs[i], r)})`;
      },
      miss: (r) => `none of any matched (${subs.map((c, i) => `any[${i}]: ${firstMiss(c, r)}`).join('; ')})`,
    });
  }
  if (rule.none !== undefined) {
    const subs = nested(rule.none);
    out.push({
      test: (r) => subs.every((c) => firstMiss(c, r) !== null),
      fact: () => `none of ${subs.length} rule${subs.length === 1 ? '' : 's'} matched`,
      miss: (r) => {
        const i = subs.findIndex((c) => firstMiss(c, r) === null);
        return `none[${i}] matched (${factsOf(subs[i], r)})`;
      },
    });
  }
  return out;
}

/** A list condition in the mesh's reason style: `method DELETE not in [GET, HEAD]`. */
function listed(expected: string, test: (r: AccessRequest) => boolean, actual: (r: AccessRequest) => string): Condition {
  return { test, fact: actual, miss: (r) => `${actual(r)} not in ${expected}` };
}

function hasUser(r: AccessRequest): boolean {
  return r.claims !== null && r.claims !== undefined;
}

function userText(r: AccessRequest): string {
  const c = r.claims;
  if (c === null || c === undefined) return '(none)';
  return typeof c.email === 'string' ? c.email : typeof c.sub === 'string' ? c.sub : '(no sub)';
}

interface Matcher {
  test(value: string): boolean;
  /** `"alice"`, `any of [a, b]`, `startsWith "@corp"`. */
  readonly text: string;
}

function stringMatcher(m: StringMatch): Matcher {
  if (typeof m === 'string') return { test: (v) => v === m, text: JSON.stringify(m) };
  if (Array.isArray(m)) {
    const set = new Set(m);
    return { test: (v) => set.has(v), text: `any of ${list(m)}` };
  }
  if (m.is !== undefined) return stringMatcher(m.is);
  if (m.in !== undefined) return stringMatcher(m.in);
  if (m.startsWith !== undefined) {
    const x = m.startsWith;
    return { test: (v) => v.startsWith(x), text: `startsWith ${JSON.stringify(x)}` };
  }
  if (m.endsWith !== undefined) {
    const x = m.endsWith;
    return { test: (v) => v.endsWith(x), text: `endsWith ${JSON.stringify(x)}` };
  }
  const x = m.contains ?? '';
  return { test: (v) => v.includes(x), text: `contains ${JSON.stringify(x)}` };
}

/** Domains compare case-insensitively: the configured values are lower-cased like the request's. */
function lowerMatch(m: StringMatch): StringMatch {
  if (typeof m === 'string') return m.toLowerCase();
  if (Array.isArray(m)) return m.map((v) => v.toLowerCase());
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, Array.isArray(v) ? v.map((x: string) => x.toLowerCase()) : (v as string).toLowerCase()]));
}

function claimString(name: string, m: StringMatch, pick: (claims: Readonly<Record<string, unknown>>) => unknown): Condition {
  const matcher = stringMatcher(m);
  const value = (r: AccessRequest): string | undefined => {
    const c = r.claims;
    if (c === null || c === undefined) return undefined;
    const v = pick(c);
    return typeof v === 'string' ? v : undefined;
  };
  return {
    test: (r) => {
      const v = value(r);
      return v !== undefined && matcher.test(v);
    },
    fact: (r) => `${name} ${value(r)}`,
    miss: (r) => {
      if (!hasUser(r)) return NO_USER;
      const v = value(r);
      return v === undefined ? `no ${name} in the end user's claims (want ${matcher.text})` : `${name} ${v} is not ${matcher.text}`;
    },
  };
}

/** A claim as a list of strings: a string is a list of one, numbers and booleans are written out, other values are skipped. */
function claimValues(v: unknown): string[] | undefined {
  if (typeof v === 'string') return [v];
  if (typeof v === 'number' || typeof v === 'boolean') return [String(v)];
  if (!Array.isArray(v)) return undefined;
  const out: string[] = [];
  for (const x of v) if (typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean') out.push(String(x));
  return out;
}

function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  let v: unknown = claims;
  for (const key of path.split('.')) {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

function claimList(name: string, m: ListMatch, pick: (claims: Readonly<Record<string, unknown>>) => unknown): Condition {
  let test: (values: readonly string[]) => boolean;
  let text: string;
  if (typeof m === 'string') {
    test = (vs) => vs.includes(m);
    text = `has ${JSON.stringify(m)}`;
  } else if (Array.isArray(m) || m.hasAny !== undefined) {
    const want = Array.isArray(m) ? m : (m.hasAny ?? []);
    test = (vs) => vs.some((v) => want.includes(v));
    text = `has any of ${list(want)}`;
  } else if (m.hasAll !== undefined) {
    const want = m.hasAll;
    test = (vs) => want.every((w) => vs.includes(w));
    text = `has all of ${list(want)}`;
  } else {
    const one = m.has ?? '';
    test = (vs) => vs.includes(one);
    text = `has ${JSON.stringify(one)}`;
  }
  const values = (r: AccessRequest): string[] | undefined => (r.claims === null || r.claims === undefined ? undefined : claimValues(pick(r.claims)));
  return {
    test: (r) => {
      const vs = values(r);
      return vs !== undefined && test(vs);
    },
    fact: (r) => `${name} ${list(values(r) ?? [])}`,
    miss: (r) => {
      if (!hasUser(r)) return NO_USER;
      const vs = values(r);
      return vs === undefined ? `no ${name} in the end user's claims (want ${text})` : `${name} ${list(vs)} does not ${text.replace(/^has/, 'have')}`;
    },
  };
}

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const zoneFormats = new Map<string, Intl.DateTimeFormat>();

/** Wall-clock parts of `ms` in `zone`: date `YYYY-MM-DD`, minutes since midnight, day of week 0 (sun)…6. */
function zonedParts(ms: number, zone: string): { date: string; minutes: number; day: number } {
  let f = zoneFormats.get(zone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', weekday: 'short' });
    zoneFormats.set(zone, f);
  }
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(ms)) p[part.type] = part.value;
  return { date: `${p.year}-${p.month}-${p.day}`, minutes: Number(p.hour) * 60 + Number(p.minute), day: DAYS.indexOf(p.weekday.slice(0, 3).toLowerCase()) };
}

function minutesOf(hhmm: string): number {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

function timeCondition(w: TimeWindow): Condition {
  const zone = w.timeZone ?? 'UTC';
  const days = new Set<number>();
  for (const d of w.days ?? []) {
    const [a, b] = d.toLowerCase().split('-');
    const from = DAYS.indexOf(a);
    const to = b === undefined ? from : DAYS.indexOf(b);
    for (let i = from; ; i = (i + 1) % 7) {
      days.add(i);
      if (i === to) break;
    }
  }
  const after = w.after === undefined ? -1 : minutesOf(w.after);
  const before = w.before === undefined ? -1 : minutesOf(w.before);
  const spec = [
    w.days?.length ? `days ${w.days.join(',')}` : '',
    w.after !== undefined || w.before !== undefined ? `${w.after ?? '00:00'}–${w.before ?? '24:00'}` : '',
    w.from !== undefined || w.until !== undefined ? `dates ${w.from ?? '…'} to ${w.until ?? '…'}` : '',
  ].filter((x) => x !== '').join(' ') + ` ${zone}`;
  const check = (r: AccessRequest): string | null => {
    const t = zonedParts(r.now ?? Date.now(), zone);
    if (w.from !== undefined && t.date < w.from) return 'before the first date';
    if (w.until !== undefined && t.date >= w.until) return 'past the last date';
    if (days.size > 0 && !days.has(t.day)) return 'not on one of the days';
    if (after >= 0 && before >= 0) {
      const inside = after < before ? t.minutes >= after && t.minutes < before : t.minutes >= after || t.minutes < before;
      if (!inside) return 'outside the hours';
    } else if (after >= 0 && t.minutes < after) return 'outside the hours';
    else if (before >= 0 && t.minutes >= before) return 'outside the hours';
    return null;
  };
  const now = (r: AccessRequest): string => {
    const t = zonedParts(r.now ?? Date.now(), zone);
    return `${t.date} ${DAYS[t.day]} ${String(Math.floor(t.minutes / 60)).padStart(2, '0')}:${String(t.minutes % 60).padStart(2, '0')} ${zone}`;
  };
  return { test: (r) => check(r) === null, fact: (r) => `time ${now(r)}`, miss: (r) => `time ${now(r)} is ${check(r)} (${spec})` };
}

function celCondition(source: string): Condition {
  const r = compileExpression(source);
  // Validation compiled it already; a config that skipped validation still fails closed.
  const expr: CompiledExpression | null = r.ok ? r.expr : null;
  const run = (req: AccessRequest): boolean => {
    if (expr === null) throw new Error(`cel ${JSON.stringify(source)} does not compile`);
    return expr.evaluate(req.expression?.() ?? buildExpressionContext(accessSource(req))) === true;
  };
  return { test: run, fact: () => `cel ${JSON.stringify(source)} true`, miss: () => `cel ${JSON.stringify(source)} is false` };
}

const NO_PARAMS: ReadonlyMap<string, string> = new Map();
const NO_VARIABLES: ReadonlyMap<string, unknown> = new Map();

/** The expression `context` of a request decided outside a policy pipeline (a sidecar, `lockgate explain`). */
function accessSource(r: AccessRequest): ExpressionSource {
  return {
    method: r.method,
    path: r.path,
    queryString: '',
    headers: r.headers ?? [],
    clientIp: r.sourceIp ?? '',
    matchedParameters: () => NO_PARAMS,
    originalPath: r.path,
    originalQueryString: '',
    requestBody: () => null,
    response: null,
    variables: NO_VARIABLES,
    subscription: null,
    product: null,
    api: { name: r.api ?? r.service, path: '', version: '' },
    operation: { id: r.operation ?? '', method: r.method, urlTemplate: '' },
    claims: r.claims ?? null,
    lastError: null,
    requestId: r.requestId ?? '',
    deployment: { region: '', gatewayId: '' },
  };
}

function sourceCondition(sources: readonly string[], policyNamespace: string, trustDomain: string): Condition {
  let anyAuthenticated = false;
  const ids = new Set<string>();
  for (const s of sources) {
    if (s === '*') anyAuthenticated = true;
    else if (s.startsWith('spiffe://')) ids.add(s);
    else {
      const slash = s.indexOf('/');
      const namespace = slash < 0 ? policyNamespace : s.slice(0, slash);
      const service = slash < 0 ? s : s.slice(slash + 1);
      // Only a name that makes a valid workload ID can match (`a/b/c` or `Bad Name` match nothing).
      const id = `spiffe://${trustDomain}/ns/${namespace}/sa/${service}`;
      const w = parseWorkloadId(id);
      if (w !== null && w.trustDomain === trustDomain && w.namespace === namespace && w.service === service) ids.add(id);
    }
  }
  return listed(list(sources), (r) => r.sourceId !== '' && (anyAuthenticated || ids.has(r.sourceId)), (r) => `source ${r.sourceId === '' ? PLAINTEXT : r.sourceId}`);
}

/** `/x/*` becomes exact `/x` plus prefix `/x/`; `/x*` prefix `/x`; so matching is Set.has + startsWith. */
/** An approved AccessRequest as a decision reads it. */
interface CompiledGrant {
  request: string;
  user: string;
  operation: string;
  methods: readonly string[];
  path: Condition | null;
  from: number;
  until: number;
  approvedBy: readonly string[];
}

/** Grants by qualified target service and by qualified Api. */
interface GrantIndex {
  byService: Map<string, CompiledGrant[]>;
  byApi: Map<string, CompiledGrant[]>;
}

function compileGrants(grants: readonly AccessGrantResource[]): GrantIndex {
  const index: GrantIndex = { byService: new Map(), byApi: new Map() };
  for (const g of grants) {
    const s = g.spec;
    const ns = g.metadata.namespace;
    const c: CompiledGrant = {
      request: s.request, user: s.user, operation: s.target.operation ?? '', methods: [...s.methods],
      path: s.paths.length > 0 ? pathCondition(s.paths) : null, from: Date.parse(s.from), until: Date.parse(s.until), approvedBy: [...s.approvedBy],
    };
    const [map, key] = s.target.api !== undefined
      ? [index.byApi, s.target.api.includes('/') ? s.target.api : qualified(ns, s.target.api)]
      : [index.byService, (s.target.service ?? '').includes('/') ? (s.target.service ?? '') : qualified(ns, s.target.service ?? '')];
    const list = map.get(key);
    if (list === undefined) map.set(key, [c]);
    else list.push(c);
  }
  return index;
}

/** The grant that covers this request now, or why none does. */
function activeGrant(index: GrantIndex, r: AccessRequest): { grant: CompiledGrant } | { why: string } {
  const sub = r.claims?.sub;
  if (typeof sub !== 'string') return { why: NO_USER };
  const list = r.api !== undefined ? index.byApi.get(r.api) : index.byService.get(r.service);
  const now = r.now ?? Date.now();
  let why = `no approved grant for ${sub} on ${targetText(r)}`;
  for (const g of list ?? []) {
    if (g.user !== sub) continue;
    if (g.operation !== '' && g.operation !== r.operation) continue;
    if (g.methods.length > 0 && !g.methods.includes(r.method)) {
      why = `grant ${g.request} does not cover method ${r.method}`;
      continue;
    }
    if (g.path !== null && !g.path.test(r)) {
      why = `grant ${g.request} does not cover path ${r.path}`;
      continue;
    }
    if (now < g.from) {
      why = `grant ${g.request} starts at ${new Date(g.from).toISOString()}`;
      continue;
    }
    // Exact at the end: the decision reads the clock, it does not wait for a snapshot to drop the grant.
    if (now >= g.until) {
      why = `grant ${g.request} ended at ${new Date(g.until).toISOString()}`;
      continue;
    }
    return { grant: g };
  }
  return { why };
}

function grantCondition(index: GrantIndex, want: boolean): Condition {
  const held = (r: AccessRequest): boolean => 'grant' in activeGrant(index, r);
  const text = (r: AccessRequest): string => {
    const a = activeGrant(index, r);
    return 'grant' in a ? `grant ${a.grant.request} (approved by ${a.grant.approvedBy.join(', ') || 'nobody'}, until ${new Date(a.grant.until).toISOString()})` : a.why;
  };
  return {
    test: (r) => held(r) === want,
    fact: text,
    miss: (r) => (want ? text(r) : `${text(r)}, but the rule wants none`),
  };
}

function pathCondition(paths: readonly string[]): Condition {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const p of paths) {
    if (!p.endsWith('*')) {
      exact.add(p);
    } else if (p.endsWith('/*')) {
      exact.add(p.slice(0, -2));
      prefixes.push(p.slice(0, -1));
    } else {
      prefixes.push(p.slice(0, -1));
    }
  }
  return listed(
    list(paths),
    (r) => {
      if (exact.has(r.path)) return true;
      for (const pre of prefixes) if (r.path.startsWith(pre)) return true;
      return false;
    },
    (r) => `path ${r.path}`,
  );
}

function list(values: readonly (string | number)[]): string {
  return `[${values.join(', ')}]`;
}

function qualified(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

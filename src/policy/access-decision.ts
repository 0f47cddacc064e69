// The mesh's access decision: AccessPolicy resources compiled once per config, then one call decided with its reasons.
/**
 * Semantics (issue 4 §6; the identity issue adds end-user claims as further conditions):
 * - A policy applies to its target service (qualified `namespace/name`) and, when `target.ports` is
 *   non-empty, to those ports only.
 * - Deny rules win: if any deny rule of any applicable policy matches, the verdict is deny, in that
 *   policy's mode (`audit`: allowed, `wouldDeny`); an enforcing match beats an auditing one.
 * - Else if any allow rule of an applicable policy matches: allow.
 * - Else if at least one applicable policy has allow rules: deny (as Istio and Linkerd: once a
 *   service has an allow policy, unlisted callers are refused), in that policy's mode; enforce
 *   wins when several.
 * - Else the mesh default: `allow` allows, `audit` allows with `wouldDeny`, `deny` denies.
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
 * decideAccess uses no regex and allocates only the result (decision, reasons, id).
 */
import type { AccessDefault, AccessPolicyResource, AccessRule } from '../model/mesh-types.ts';
import { parseWorkloadId } from '../lib/spiffe-id.ts';
import { randomHex } from '../lib/trace-context.ts';

export interface AccessRequest {
  /** The calling workload's SPIFFE ID ('' = none: plaintext or no client certificate). */
  sourceId: string;
  /** Qualified `namespace/service` of the destination. */
  service: string;
  port: number;
  method: string;
  /** Canonical path without query. */
  path: string;
  /** End-user claims (the identity issue fills them); absent today. */
  claims?: Readonly<Record<string, unknown>>;
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

/** One test of a rule; claim, group and time conditions of the identity issue are more of these. */
interface Condition {
  /** The rule's list as written, for reasons: `[orders, shop/web]`. */
  readonly expected: string;
  test(req: AccessRequest): boolean;
  /** The request's value, for reasons: `method DELETE`. */
  actual(req: AccessRequest): string;
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
  /** Id tag of the deny this policy causes when it has allow rules and none matched. */
  readonly noAllowTag: string;
  readonly allow: readonly CompiledRule[];
  readonly deny: readonly CompiledRule[];
}

/** Opaque to callers: applicable policies indexed by qualified target service. */
export interface CompiledAccess {
  readonly byService: ReadonlyMap<string, readonly CompiledPolicy[]>;
  readonly defaultAccess: AccessDefault;
}

const PLAINTEXT = '(none: plaintext or no client certificate)';
const AUDIT_NOTE = 'audit mode: would be denied, allowed';

export function compileAccessPolicies(
  policies: readonly AccessPolicyResource[],
  defaults: { defaultAccess: AccessDefault; trustDomain: string },
): CompiledAccess {
  const byService = new Map<string, CompiledPolicy[]>();
  const sorted = [...policies].sort((a, b) => cmp(qualified(a.metadata.namespace, a.metadata.name), qualified(b.metadata.namespace, b.metadata.name)));
  for (const p of sorted) {
    const ns = p.metadata.namespace;
    const name = qualified(ns, p.metadata.name);
    const target = p.spec.target.service.includes('/') ? p.spec.target.service : qualified(ns, p.spec.target.service);
    const rules = (kind: 'allow' | 'deny', list: readonly AccessRule[]) =>
      list.map((r, i) => ({ label: `${name} ${kind}[${i}]`, tag: tagOf(`${name} ${kind}[${i}]`), index: `${kind}[${i}]`, conditions: compileRule(r, ns, defaults.trustDomain) }));
    const compiled: CompiledPolicy = {
      name, mode: p.spec.mode, ports: [...p.spec.target.ports], noAllowTag: tagOf(`${name} no-allow`),
      allow: rules('allow', p.spec.allow), deny: rules('deny', p.spec.deny),
    };
    const list = byService.get(target);
    if (list === undefined) byService.set(target, [compiled]);
    else list.push(compiled);
  }
  return { byService, defaultAccess: defaults.defaultAccess };
}

export function decideAccess(compiled: CompiledAccess, req: AccessRequest): AccessDecision {
  const policies = compiled.byService.get(req.service);
  if (policies === undefined) return meshDefault(compiled, `no AccessPolicy targets ${req.service}`);

  let auditDeny: CompiledRule | undefined;
  let auditPolicy: CompiledPolicy | undefined;
  for (const p of policies) {
    if (!appliesToPort(p, req.port)) continue;
    for (const r of p.deny) {
      if (!matches(r, req)) continue;
      if (p.mode === 'enforce') return decision(false, true, 'enforce', p.name, r.tag, [matchedReason('deny', r, req)]);
      if (auditDeny === undefined) {
        auditDeny = r;
        auditPolicy = p;
      }
    }
  }
  if (auditDeny !== undefined && auditPolicy !== undefined) {
    return decision(true, true, 'audit', auditPolicy.name, auditDeny.tag, [matchedReason('deny', auditDeny, req), AUDIT_NOTE]);
  }

  let applicable = 0;
  let denier: CompiledPolicy | undefined;
  for (const p of policies) {
    if (!appliesToPort(p, req.port)) continue;
    applicable++;
    for (const r of p.allow) {
      if (matches(r, req)) return decision(true, false, p.mode, p.name, r.tag, [matchedReason('allow', r, req)]);
    }
    if (p.allow.length > 0 && (denier === undefined || (denier.mode === 'audit' && p.mode === 'enforce'))) denier = p;
  }
  if (denier === undefined) {
    return meshDefault(compiled, applicable === 0
      ? `no AccessPolicy of ${req.service} applies to port ${req.port}`
      : `no deny rule matched and no AccessPolicy of ${req.service} has allow rules`);
  }
  const reasons: string[] = [];
  for (const p of policies) if (p.allow.length > 0 && appliesToPort(p, req.port)) reasons.push(noAllowReason(p, req));
  if (denier.mode === 'audit') reasons.push(AUDIT_NOTE);
  return decision(denier.mode === 'audit', true, denier.mode, denier.name, denier.noAllowTag, reasons);
}

function meshDefault(compiled: CompiledAccess, why: string): AccessDecision {
  switch (compiled.defaultAccess) {
    case 'allow': return decision(true, false, 'enforce', 'mesh-default', DEFAULT_TAGS.allow, [why, 'mesh default allow: allowed']);
    case 'audit': return decision(true, true, 'audit', 'mesh-default', DEFAULT_TAGS.audit, [why, 'mesh default audit: would be denied, allowed']);
    default: return decision(false, true, 'enforce', 'mesh-default', DEFAULT_TAGS.deny, [why, 'mesh default deny: denied']);
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
  if (rule.conditions.length === 0) return `${kind} rule ${rule.label} matched (any request)`;
  let facts = '';
  for (const c of rule.conditions) facts += (facts === '' ? '' : ', ') + c.actual(req);
  return `${kind} rule ${rule.label} matched (${facts})`;
}

/** Why each allow rule of `p` failed: its first failing condition. */
function noAllowReason(p: CompiledPolicy, req: AccessRequest): string {
  let text = `no allow rule of ${p.name} matched: `;
  for (let i = 0; i < p.allow.length; i++) {
    const r = p.allow[i];
    let why = 'matched';
    for (const c of r.conditions) {
      if (c.test(req)) continue;
      why = `${c.actual(req)} not in ${c.expected}`;
      break;
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

function decision(allow: boolean, wouldDeny: boolean, mode: 'enforce' | 'audit', policy: string, tag: string, reasons: string[]): AccessDecision {
  counter++;
  return { allow, wouldDeny, mode, id: `${tag}-${PROCESS_TAG}${counter.toString(36)}`, reasons, policy };
}

/** 8 hex digits of FNV-1a over the UTF-16 units. */
function tagOf(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(16).padStart(8, '0');
}

function compileRule(rule: AccessRule, policyNamespace: string, trustDomain: string): Condition[] {
  const out: Condition[] = [];
  if (rule.sources.length > 0) out.push(sourceCondition(rule.sources, policyNamespace, trustDomain));
  if (rule.methods.length > 0) {
    const methods = [...rule.methods];
    out.push({ expected: list(methods), test: (r) => methods.includes(r.method), actual: (r) => `method ${r.method}` });
  }
  if (rule.paths.length > 0) out.push(pathCondition(rule.paths));
  if (rule.ports.length > 0) {
    const ports = [...rule.ports];
    out.push({ expected: list(ports), test: (r) => ports.includes(r.port), actual: (r) => `port ${r.port}` });
  }
  return out;
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
  return {
    expected: list(sources),
    test: (r) => r.sourceId !== '' && (anyAuthenticated || ids.has(r.sourceId)),
    actual: (r) => `source ${r.sourceId === '' ? PLAINTEXT : r.sourceId}`,
  };
}

/** `/x/*` becomes exact `/x` plus prefix `/x/`; `/x*` prefix `/x`; so matching is Set.has + startsWith. */
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
  return {
    expected: list(paths),
    test: (r) => {
      if (exact.has(r.path)) return true;
      for (const pre of prefixes) if (r.path.startsWith(pre)) return true;
      return false;
    },
    actual: (r) => `path ${r.path}`,
  };
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

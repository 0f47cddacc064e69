// Tests for the mesh access decision: precedence, defaults, audit mode, source/path/port matching, reasons, ids, properties.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileAccessPolicies, decideAccess, type AccessRequest, type AccessDecision } from './access-decision.ts';
import { parseWorkloadId } from '../lib/spiffe-id.ts';
import type { AccessDefault, AccessPolicyResource, AccessPolicySpec, AccessRule } from '../model/mesh-types.ts';

const TD = 'lockgate.local';
const wid = (ns: string, svc: string, td = TD) => `spiffe://${td}/ns/${ns}/sa/${svc}`;
const ORDERS = wid('shop', 'orders');
const WEB = wid('shop', 'web');

function rule(r: Partial<AccessRule> = {}): AccessRule {
  return { sources: [], methods: [], paths: [], ports: [], ...r };
}

function policy(name: string, spec: Partial<Omit<AccessPolicySpec, 'target'>> & { target?: Partial<AccessPolicySpec['target']> }, namespace = 'shop'): AccessPolicyResource {
  return {
    apiVersion: 'lockgate.dev/v1alpha1',
    kind: 'AccessPolicy',
    metadata: { name, namespace, labels: {} },
    spec: {
      target: { service: 'shop/inventory', ports: [], ...spec.target },
      mode: spec.mode ?? 'enforce',
      allow: spec.allow ?? [],
      deny: spec.deny ?? [],
    },
  };
}

function req(r: Partial<AccessRequest> = {}): AccessRequest {
  return { sourceId: ORDERS, service: 'shop/inventory', port: 8080, method: 'GET', path: '/items/1', ...r };
}

function decide(policies: AccessPolicyResource[], r: Partial<AccessRequest> = {}, defaultAccess: AccessDefault = 'deny'): AccessDecision {
  return decideAccess(compileAccessPolicies(policies, { defaultAccess, trustDomain: TD }), req(r));
}

const writers = policy('inventory-writers', { allow: [rule({ sources: ['orders'] })] });
const lockdown = policy('inventory-lockdown', { deny: [rule({ methods: ['DELETE'] })] });

test('an allow rule that matches allows, naming the policy and rule index', () => {
  const d = decide([writers], {}, 'deny');
  assert.deepEqual([d.allow, d.wouldDeny, d.mode, d.policy], [true, false, 'enforce', 'shop/inventory-writers']);
  assert.deepEqual(d.reasons, [`allow rule shop/inventory-writers allow[0] matched (source ${ORDERS})`]);
});

test('deny rules win over a matching allow rule', () => {
  const d = decide([writers, lockdown], { method: 'DELETE' }, 'allow');
  assert.deepEqual([d.allow, d.wouldDeny, d.mode, d.policy], [false, true, 'enforce', 'shop/inventory-lockdown']);
  assert.deepEqual(d.reasons, ['deny rule shop/inventory-lockdown deny[0] matched (method DELETE)']);
  // The same deny rule not matching leaves the allow in charge.
  assert.equal(decide([writers, lockdown], { method: 'POST' }, 'deny').allow, true);
});

test('once a service has allow rules, unlisted callers are denied whatever the mesh default', () => {
  for (const def of ['allow', 'audit', 'deny'] as const) {
    const d = decide([writers], { sourceId: WEB }, def);
    assert.deepEqual([d.allow, d.wouldDeny, d.mode, d.policy], [false, true, 'enforce', 'shop/inventory-writers'], def);
    assert.deepEqual(d.reasons, [`no allow rule of shop/inventory-writers matched: source ${WEB} not in [orders]`]);
  }
});

test('every allow rule that failed is explained with its index', () => {
  const p = policy('two', { allow: [rule({ sources: ['orders'] }), rule({ sources: ['web'], methods: ['POST'] })] });
  const d = decide([p], { sourceId: WEB, method: 'GET' });
  assert.deepEqual(d.reasons, [`no allow rule of shop/two matched: allow[0]: source ${WEB} not in [orders]; allow[1]: method GET not in [POST]`]);
});

test('each mesh default applies when no policy targets the service', () => {
  const allow = decide([writers], { service: 'shop/other' }, 'allow');
  assert.deepEqual([allow.allow, allow.wouldDeny, allow.mode, allow.policy], [true, false, 'enforce', 'mesh-default']);
  const audit = decide([], {}, 'audit');
  assert.deepEqual([audit.allow, audit.wouldDeny, audit.mode, audit.policy], [true, true, 'audit', 'mesh-default']);
  const deny = decide([], {}, 'deny');
  assert.deepEqual([deny.allow, deny.wouldDeny, deny.mode, deny.policy], [false, true, 'enforce', 'mesh-default']);
  assert.deepEqual(deny.reasons, ['no AccessPolicy targets shop/inventory', 'mesh default deny: denied']);
});

test('a policy with only deny rules that do not match falls through to the mesh default', () => {
  const d = decide([lockdown], { method: 'GET' }, 'audit');
  assert.deepEqual([d.allow, d.wouldDeny, d.mode, d.policy], [true, true, 'audit', 'mesh-default']);
  assert.match(d.reasons[0], /no deny rule matched and no AccessPolicy of shop\/inventory has allow rules/);
});

test('audit mode: a matching deny rule allows the call and says it would be denied', () => {
  const p = policy('watch', { mode: 'audit', deny: [rule({ sources: ['web'] })] });
  const d = decide([p], { sourceId: WEB }, 'audit');
  assert.deepEqual([d.allow, d.wouldDeny, d.mode, d.policy], [true, true, 'audit', 'shop/watch']);
  assert.deepEqual(d.reasons, [`deny rule shop/watch deny[0] matched (source ${WEB})`, 'audit mode: would be denied, allowed']);
  // An audit policy never opens what is closed: under a deny default the call is denied by the default.
  const closed = decide([p], { sourceId: WEB }, 'deny');
  assert.deepEqual([closed.allow, closed.wouldDeny, closed.mode, closed.policy], [false, true, 'enforce', 'mesh-default']);
});

test('audit mode: unlisted callers of an auditing allow policy are allowed with wouldDeny', () => {
  const p = policy('onboarding', { mode: 'audit', allow: [rule({ sources: ['orders'] })] });
  const d = decide([p], { sourceId: WEB }, 'audit');
  assert.deepEqual([d.allow, d.wouldDeny, d.mode, d.policy], [true, true, 'audit', 'shop/onboarding']);
  const listed = decide([p], {}, 'audit');
  assert.deepEqual([listed.allow, listed.wouldDeny, listed.mode], [true, false, 'audit']);
  // Under a deny default, onboarding in audit mode opens nothing: both callers are denied by the default.
  for (const sourceId of [WEB, ORDERS]) {
    const closed = decide([p], { sourceId }, 'deny');
    assert.deepEqual([closed.allow, closed.mode, closed.policy], [false, 'enforce', 'mesh-default']);
  }
});

test('audit mode never lets through what the enforcing policies refuse (an audit deny or allow beside an enforcing allow)', () => {
  const watchDeletes = policy('a-watch-deletes', { mode: 'audit', deny: [rule({ methods: ['DELETE'] })] });
  const allowWeb = policy('a-trial-web', { mode: 'audit', allow: [rule({ sources: ['web'] })] });
  const onlyOrders = policy('b-only-orders', { allow: [rule({ sources: ['orders'] })] });
  for (const audit of [watchDeletes, allowWeb]) {
    for (const method of ['GET', 'DELETE']) {
      const d = decide([audit, onlyOrders], { sourceId: WEB, method }, 'allow');
      assert.deepEqual([d.allow, d.mode, d.policy], [false, 'enforce', 'shop/b-only-orders'], `${audit.metadata.name} ${method}`);
    }
  }
  // What the enforcing policy allows, the audit deny only marks.
  const marked = decide([watchDeletes, onlyOrders], { sourceId: ORDERS, method: 'DELETE' }, 'allow');
  assert.deepEqual([marked.allow, marked.wouldDeny, marked.mode, marked.policy], [true, true, 'audit', 'shop/a-watch-deletes']);
  const clean = decide([watchDeletes, onlyOrders], { sourceId: ORDERS, method: 'GET' }, 'allow');
  assert.deepEqual([clean.allow, clean.wouldDeny, clean.mode, clean.policy], [true, false, 'enforce', 'shop/b-only-orders']);
});

test('enforce wins over audit, both for deny rules and for the default deny of allow policies', () => {
  const auditDeny = policy('a-audit', { mode: 'audit', deny: [rule({ methods: ['DELETE'] })] });
  const enforceDeny = policy('z-enforce', { deny: [rule({ methods: ['DELETE'] })] });
  const d = decide([auditDeny, enforceDeny], { method: 'DELETE' }, 'allow');
  assert.deepEqual([d.allow, d.mode, d.policy], [false, 'enforce', 'shop/z-enforce']);

  const auditAllow = policy('a-audit', { mode: 'audit', allow: [rule({ sources: ['orders'] })] });
  const enforceAllow = policy('z-enforce', { allow: [rule({ sources: ['orders'] })] });
  const e = decide([auditAllow, enforceAllow], { sourceId: WEB }, 'allow');
  assert.deepEqual([e.allow, e.mode, e.policy], [false, 'enforce', 'shop/z-enforce']);
  assert.deepEqual(e.reasons, [`no allow rule of shop/z-enforce matched: source ${WEB} not in [orders]`], 'the enforcing policy decides and explains');
});

test('target ports scope a policy; rule ports scope a rule', () => {
  const p = policy('admin-port', { target: { ports: [9090] }, allow: [rule({ sources: ['orders'] })] });
  const other = decide([p], { sourceId: WEB, port: 8080 }, 'allow');
  assert.deepEqual([other.allow, other.policy], [true, 'mesh-default']);
  assert.match(other.reasons[0], /no AccessPolicy of shop\/inventory applies to port 8080/);
  assert.equal(decide([p], { sourceId: WEB, port: 9090 }, 'allow').allow, false);

  const r = policy('rule-port', { allow: [rule({ ports: [8080] })] });
  assert.equal(decide([r], { port: 8080 }).allow, true);
  assert.equal(decide([r], { port: 8081 }).allow, false);
});

test('sources: service names in the policy namespace, explicit namespaces, SPIFFE IDs, and *', () => {
  const byName = policy('n', { allow: [rule({ sources: ['orders'] })] });
  assert.equal(decide([byName], { sourceId: ORDERS }).allow, true);
  assert.equal(decide([byName], { sourceId: wid('billing', 'orders') }).allow, false, 'a bare name means the policy namespace');
  for (const sourceId of [`${ORDERS}/x`, `${ORDERS}/`, 'SPIFFE://lockgate.local/ns/shop/sa/orders', 'spiffe://Lockgate.local/ns/shop/sa/orders']) {
    assert.equal(decide([byName], { sourceId }).allow, false, `other spellings do not match a name: ${sourceId}`);
  }
  const invalid = policy('bad', { allow: [rule({ sources: ['shop/a/b', 'Bad Name'] })] });
  assert.equal(decide([invalid], { sourceId: wid('shop', 'a/b') }).allow, false, 'a name that makes no workload ID matches nothing');

  const crossNs = policy('x', { allow: [rule({ sources: ['billing/orders'] })] });
  assert.equal(decide([crossNs], { sourceId: wid('billing', 'orders') }).allow, true);
  assert.equal(decide([crossNs], { sourceId: ORDERS }).allow, false);
  // A policy in another namespace resolves a bare name against its own namespace.
  const fromBilling = policy('b', { allow: [rule({ sources: ['orders'] })] }, 'billing');
  assert.equal(decide([fromBilling], { sourceId: wid('billing', 'orders') }).allow, true);
  assert.equal(decide([fromBilling], { sourceId: ORDERS }).allow, false);

  const foreign = wid('shop', 'orders', 'other.example');
  assert.equal(decide([byName], { sourceId: foreign }).allow, false, 'a name matches only the mesh trust domain');
  const exact = policy('e', { allow: [rule({ sources: [foreign] })] });
  assert.equal(decide([exact], { sourceId: foreign }).allow, true, 'a full SPIFFE ID matches exactly, any trust domain');
  assert.equal(decide([exact], { sourceId: ORDERS }).allow, false);

  const any = policy('any', { allow: [rule({ sources: ['*'] })] });
  assert.equal(decide([any], { sourceId: foreign }).allow, true);
  assert.equal(decide([any], { sourceId: WEB }).allow, true);
});

test('a plaintext caller matches no source condition, only rules without sources', () => {
  for (const sources of [['*'], ['orders'], [ORDERS]]) {
    const d = decide([policy('p', { allow: [rule({ sources })] })], { sourceId: '' });
    assert.equal(d.allow, false, sources.join());
    assert.match(d.reasons[0], /source \(none: plaintext or no client certificate\) not in/);
  }
  const deny = policy('deny-plain', { deny: [rule({ sources: ['*'] })] });
  assert.equal(decide([deny], { sourceId: '' }, 'allow').allow, true, 'a deny on * does not catch plaintext either');
  const open = policy('open', { allow: [rule({ paths: ['/health'] })] });
  assert.equal(decide([open], { sourceId: '', path: '/health' }).allow, true);
});

test('paths: exact, segment-aware /x/*, plain prefix /x*, and *', () => {
  const check = (pattern: string, yes: string[], no: string[]) => {
    const p = policy('p', { allow: [rule({ paths: [pattern] })] });
    for (const path of yes) assert.equal(decide([p], { path }).allow, true, `${pattern} should match ${path}`);
    for (const path of no) assert.equal(decide([p], { path }).allow, false, `${pattern} should not match ${path}`);
  };
  check('/x', ['/x'], ['/x/', '/xy', '/x/y', '/']);
  check('/x/*', ['/x', '/x/', '/x/y', '/x/y/z'], ['/xy', '/', '/y/x']);
  check('/x*', ['/x', '/xy', '/x/y'], ['/', '/y']);
  check('/*', ['/', '/x', '/x/y'], []);
  check('*', ['/', '/anything'], []);
});

test('methods are exact and case-sensitive', () => {
  const p = policy('m', { allow: [rule({ methods: ['POST', 'PUT'] })] });
  assert.equal(decide([p], { method: 'PUT' }).allow, true);
  assert.equal(decide([p], { method: 'put' }).allow, false);
  assert.equal(decide([p], { method: 'GET' }).allow, false);
});

test('matched reasons list every condition of the rule; an empty rule matches any request', () => {
  const p = policy('full', { deny: [rule(), rule({ sources: ['orders'], methods: ['GET'], paths: ['/items/*'], ports: [8080] })] });
  const d = decide([p], {}, 'allow');
  assert.deepEqual(d.reasons, ['deny rule shop/full deny[0] matched (any request)']);
  const q = policy('full', { deny: [rule({ sources: ['orders'], methods: ['GET'], paths: ['/items/*'], ports: [8080] })] });
  assert.deepEqual(decide([q], {}, 'allow').reasons, [`deny rule shop/full deny[0] matched (source ${ORDERS}, method GET, path /items/1, port 8080)`]);
});

test('an unqualified target is qualified with the policy namespace; input order does not change the deciding policy', () => {
  const p = policy('short', { target: { service: 'inventory' }, allow: [rule({ sources: ['orders'] })] });
  assert.equal(decide([p]).policy, 'shop/short');
  const a = policy('a', { deny: [rule()] });
  const b = policy('b', { deny: [rule()] });
  assert.equal(decide([a, b], {}, 'allow').policy, 'shop/a');
  assert.equal(decide([b, a], {}, 'allow').policy, 'shop/a');
});

test('decision ids are unique; the hash part names the deciding rule', () => {
  const compiled = compileAccessPolicies([writers], { defaultAccess: 'deny', trustDomain: TD });
  const ids = new Set<string>();
  const hashes = new Set<string>();
  for (let i = 0; i < 10_000; i++) {
    const d = decideAccess(compiled, req());
    assert.match(d.id, /^[0-9a-f]{8}-[0-9a-f]{6}[0-9a-z]+$/);
    ids.add(d.id);
    hashes.add(d.id.slice(0, 8));
  }
  assert.equal(ids.size, 10_000);
  assert.equal(hashes.size, 1);
  assert.notEqual(decideAccess(compiled, req({ sourceId: WEB })).id.slice(0, 8), [...hashes][0]);
});

test('sanity bound: 100k decisions on a service with a handful of policies take well under 2 s', () => {
  const policies = [writers, lockdown, policy('reads', { allow: [rule({ methods: ['GET'], paths: ['/items/*'] })] }), policy('admin', { target: { ports: [9090] }, allow: [rule({ sources: ['ops/admin'] })] })];
  const compiled = compileAccessPolicies(policies, { defaultAccess: 'deny', trustDomain: TD });
  const requests = [req(), req({ sourceId: WEB, method: 'POST', path: '/other' }), req({ method: 'DELETE' })];
  const start = performance.now();
  let allowed = 0;
  for (let i = 0; i < 100_000; i++) if (decideAccess(compiled, requests[i % 3]).allow) allowed++;
  const ms = performance.now() - start;
  assert.equal(allowed, 33_334);
  assert.ok(ms < 2000, `${ms} ms`);
});

// ---------- properties: the compiled engine against a direct reading of the semantics ----------

/** The semantics read literally: parseWorkloadId on the caller, compare fields, scan every rule. */
function reference(policies: AccessPolicyResource[], def: AccessDefault, r: AccessRequest): Pick<AccessDecision, 'allow' | 'wouldDeny' | 'mode' | 'policy'> {
  const sourceOk = (s: string, ns: string) => {
    if (r.sourceId === '') return false;
    if (s === '*') return true;
    if (s.startsWith('spiffe://')) return s === r.sourceId;
    const w = parseWorkloadId(r.sourceId);
    const [sns, svc] = s.includes('/') ? s.split('/') : [ns, s];
    return w !== null && w.trustDomain === TD && w.namespace === sns && w.service === svc;
  };
  const pathOk = (p: string) => !p.endsWith('*') ? r.path === p
    : p.endsWith('/*') ? r.path === p.slice(0, -2) || r.path.startsWith(p.slice(0, -1)) : r.path.startsWith(p.slice(0, -1));
  const ruleOk = (x: AccessRule, ns: string) => (x.sources.length === 0 || x.sources.some((s) => sourceOk(s, ns)))
    && (x.methods.length === 0 || x.methods.includes(r.method)) && (x.paths.length === 0 || x.paths.some(pathOk))
    && (x.ports.length === 0 || x.ports.includes(r.port));
  const name = (p: AccessPolicyResource) => `${p.metadata.namespace}/${p.metadata.name}`;
  const applicable = [...policies].sort((a, b) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0))
    .filter((p) => p.spec.target.service === r.service && (p.spec.target.ports.length === 0 || p.spec.target.ports.includes(r.port)));
  type Ref = Pick<AccessDecision, 'allow' | 'wouldDeny' | 'mode' | 'policy'>;
  const dflt: Ref = { allow: def !== 'deny', wouldDeny: def !== 'allow', mode: def === 'audit' ? 'audit' : 'enforce', policy: 'mesh-default' };
  // Every policy in `ps` read as enforcing: deny wins, then allow, then "has allow rules" closes, then the default.
  const strictRef = (ps: AccessPolicyResource[]): Ref => {
    const denied = ps.find((p) => p.spec.deny.some((x) => ruleOk(x, p.metadata.namespace)));
    if (denied !== undefined) return { allow: false, wouldDeny: true, mode: denied.spec.mode, policy: name(denied) };
    const allowed = ps.find((p) => p.spec.allow.some((x) => ruleOk(x, p.metadata.namespace)));
    if (allowed !== undefined) return { allow: true, wouldDeny: false, mode: allowed.spec.mode, policy: name(allowed) };
    const closed = ps.find((p) => p.spec.allow.length > 0);
    return closed === undefined ? dflt : { allow: false, wouldDeny: true, mode: closed.spec.mode, policy: name(closed) };
  };
  // The enforcing policies decide; audit ones only mark an allowed call that would be denied with them all enforcing.
  const enforced = strictRef(applicable.filter((p) => p.spec.mode === 'enforce'));
  if (!applicable.some((p) => p.spec.mode === 'audit') || !enforced.allow) return enforced;
  const would = strictRef(applicable);
  if (!would.wouldDeny) return enforced.wouldDeny ? would : enforced;
  return { ...would, allow: true, mode: 'audit' };
}

const SERVICES = ['shop/inventory', 'billing/ledger'];
const arbRule = fc.record({
  sources: fc.subarray(['*', 'orders', 'shop/orders', 'billing/orders', 'web', ORDERS, wid('shop', 'orders', 'other.example')], { maxLength: 2 }),
  methods: fc.subarray(['GET', 'POST', 'DELETE'], { maxLength: 2 }),
  paths: fc.subarray(['/a', '/a/*', '/a*', '/*', '*', '/b/c'], { maxLength: 2 }),
  ports: fc.subarray([80, 8080], { maxLength: 1 }),
});
const arbPolicy = fc.record({
  name: fc.constantFrom('p1', 'p2', 'p3'),
  namespace: fc.constantFrom('shop', 'billing'),
  service: fc.constantFrom(...SERVICES),
  ports: fc.subarray([80, 8080], { maxLength: 1 }),
  mode: fc.constantFrom('enforce' as const, 'audit' as const),
  allow: fc.array(arbRule, { maxLength: 2 }),
  deny: fc.array(arbRule, { maxLength: 2 }),
}).map((p) => policy(p.name, { target: { service: p.service, ports: p.ports }, mode: p.mode, allow: p.allow, deny: p.deny }, p.namespace));
const arbRequest = fc.record({
  sourceId: fc.constantFrom('', ORDERS, WEB, wid('billing', 'orders'), wid('shop', 'orders', 'other.example'), 'SPIFFE://lockgate.local/ns/shop/sa/orders', `${ORDERS}/`),
  service: fc.constantFrom(...SERVICES, 'shop/unknown'),
  port: fc.constantFrom(80, 8080),
  method: fc.constantFrom('GET', 'POST', 'DELETE', 'get'),
  path: fc.constantFrom('/a', '/a/', '/a/x', '/ab', '/b/c', '/b', '/', ''),
});
const arbDefault = fc.constantFrom('allow' as const, 'audit' as const, 'deny' as const);

test('property: the compiled engine agrees with the literal semantics', () => {
  fc.assert(fc.property(fc.array(arbPolicy, { maxLength: 5 }), arbDefault, arbRequest, (policies, def, r) => {
    const d = decideAccess(compileAccessPolicies(policies, { defaultAccess: def, trustDomain: TD }), r);
    assert.deepEqual({ allow: d.allow, wouldDeny: d.wouldDeny, mode: d.mode, policy: d.policy }, reference(policies, def, r));
    assert.ok(d.reasons.length > 0);
    assert.equal(d.allow, !d.wouldDeny || d.mode === 'audit');
  }), { numRuns: 2000 });
});

test('property: a matching enforcing deny always wins', () => {
  fc.assert(fc.property(fc.array(arbPolicy, { maxLength: 5 }), arbDefault, arbRequest, (policies, def, r) => {
    const blocker = policy('zz-block', { target: { service: r.service }, deny: [rule({ methods: [r.method] })] }, 'ops');
    const d = decideAccess(compileAccessPolicies([...policies, blocker], { defaultAccess: def, trustDomain: TD }), r);
    assert.equal(d.allow, false);
    assert.equal(d.mode, 'enforce');
  }), { numRuns: 500 });
});

test('property: audit-mode policies never change whether a call is allowed', () => {
  fc.assert(fc.property(fc.array(arbPolicy, { maxLength: 5 }), arbDefault, arbRequest, (policies, def, r) => {
    const d = decideAccess(compileAccessPolicies(policies, { defaultAccess: def, trustDomain: TD }), r);
    const enforcingOnly = decideAccess(compileAccessPolicies(policies.filter((p) => p.spec.mode === 'enforce'), { defaultAccess: def, trustDomain: TD }), r);
    assert.equal(d.allow, enforcingOnly.allow);
  }), { numRuns: 1000 });
});

test('property: adding an allow rule to a policy that has allow rules never removes access', () => {
  fc.assert(fc.property(fc.array(arbPolicy, { minLength: 1, maxLength: 5 }), fc.nat(), arbRule, arbDefault, arbRequest, (policies, at, extra, def, r) => {
    const i = at % policies.length;
    fc.pre(policies[i].spec.allow.length > 0);
    const before = decideAccess(compileAccessPolicies(policies, { defaultAccess: def, trustDomain: TD }), r);
    const widened = policies.map((p, j) => (j === i ? { ...p, spec: { ...p.spec, allow: [...p.spec.allow, extra] } } : p));
    const after = decideAccess(compileAccessPolicies(widened, { defaultAccess: def, trustDomain: TD }), r);
    if (before.allow && !before.wouldDeny) assert.equal(after.allow && !after.wouldDeny, true);
    if (before.allow) assert.equal(after.allow, true);
  }), { numRuns: 1000 });
});

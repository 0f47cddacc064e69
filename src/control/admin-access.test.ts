// Tests for admin roles and scopes: the role table, namespace and API/service narrowing, who may hand out what, which
// documents concern what, and properties (more grants never take access away; narrowing never widens; whoever may
// grant a role may do everything it allows).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseConfigText as loadConfigText } from '../model/load-config.ts';
import { AdminAccess, documentTarget, roleGrantsOf, type AdminAction, type AdminRole, type AdminTarget, type RoleGrant } from './admin-access.ts';

const g = (role: AdminRole, namespaces: string[], more: Partial<RoleGrant> = {}): RoleGrant => ({ role, namespaces, source: 'test', ...more });

test('the role table: viewer reads, operator writes, approver reviews, admin also reveals and manages', () => {
  const at = { namespace: 'orders' };
  const table: Record<AdminRole, AdminAction[]> = {
    viewer: ['read'], operator: ['read', 'write'], approver: ['read', 'review'], admin: ['read', 'write', 'review', 'reveal', 'manage'],
  };
  for (const [role, yes] of Object.entries(table) as Array<[AdminRole, AdminAction[]]>) {
    const a = AdminAccess.of([g(role, ['orders'])]);
    for (const action of ['read', 'write', 'review', 'reveal', 'manage'] as AdminAction[]) {
      assert.equal(a.allows(action, at), yes.includes(action), `${role} ${action}`);
      assert.equal(a.allows(action, { namespace: 'payments' }), false, `${role} ${action} elsewhere`);
      assert.equal(a.allows(action, 'cluster'), false, `${role} ${action} on the installation`);
    }
  }
  assert.equal(AdminAccess.of([g('viewer', ['*'])]).allows('read', 'cluster'), true);
  assert.equal(AdminAccess.of([g('viewer', ['*'])]).allows('write', 'cluster'), false);
  assert.equal(AdminAccess.everything('bootstrap').allows('reveal', 'cluster'), true);
  assert.equal(AdminAccess.of([]).allows('read', { namespace: 'x' }), false);
  assert.match(AdminAccess.of([]).denial('bob', 'read', { namespace: 'x' }), /bob has no role/);
  assert.match(AdminAccess.of([g('operator', ['orders'])]).denial('carol', 'write', { namespace: 'payments' }), /carol may not write on namespace payments: roles held: operator in orders/);
});

test('narrowed roles reach only documents that concern nothing but their APIs or services', () => {
  const a = AdminAccess.of([g('operator', ['payments'], { apis: ['payments-api'], services: ['payments/ledger'] })]);
  assert.equal(a.allows('write', { namespace: 'payments', apis: ['payments/payments-api'] }), true);
  assert.equal(a.allows('write', { namespace: 'payments', services: ['payments/ledger'] }), true);
  assert.equal(a.allows('write', { namespace: 'payments', apis: ['payments/payments-api'], services: ['payments/ledger'] }), true);
  assert.equal(a.allows('write', { namespace: 'payments', apis: ['payments/payments-api', 'payments/other'] }), false, 'all of it must be listed');
  assert.equal(a.allows('write', { namespace: 'payments' }), false, 'a Backend concerns no API: not reachable narrowed');
  assert.equal(a.allows('write', { namespace: 'orders', apis: ['orders/payments-api'] }), false, 'a bare name binds only in the role\'s namespaces');
  assert.equal(a.allows('write', 'cluster'), false);
  assert.equal(a.reaches('read', 'payments'), true);
  assert.equal(a.reaches('read', 'orders'), false);
});

test('documentTarget: what each kind concerns, references qualified with the document\'s namespace', () => {
  assert.deepEqual(documentTarget('Api', 'shop', 'orders', {}), { namespace: 'shop', apis: ['shop/orders'], services: [] });
  assert.deepEqual(documentTarget('MeshService', 'shop', 'inventory', {}), { namespace: 'shop', apis: [], services: ['shop/inventory'] });
  assert.deepEqual(documentTarget('ApiPolicy', 'shop', 'p', { spec: { scope: { api: 'orders' } } }).apis, ['shop/orders']);
  assert.deepEqual(documentTarget('ApiPolicy', 'shop', 'p', { spec: { scope: { product: 'gold' } } }).apis, []);
  assert.deepEqual(documentTarget('Product', 'shop', 'gold', { spec: { apis: ['orders', 'other/catalog'] } }).apis, ['shop/orders', 'other/catalog']);
  assert.deepEqual(documentTarget('MeshRoute', 'shop', 'r', { spec: { service: 'inventory' } }).services, ['shop/inventory']);
  assert.deepEqual(documentTarget('AccessPolicy', 'shop', 'a', { spec: { target: { service: 'inventory' } } }).services, ['shop/inventory']);
  assert.deepEqual(documentTarget('AccessPolicy', 'shop', 'a', { spec: { target: { api: 'orders' } } }).apis, ['shop/orders']);
  assert.deepEqual(documentTarget('Backend', 'shop', 'b', undefined), { namespace: 'shop', apis: [], services: [] });
});

test('mayGrant: a team admin hands out roles inside its scope only; others hand out nothing', () => {
  const teamAdmin = AdminAccess.of([g('admin', ['orders'])]);
  assert.equal(teamAdmin.mayGrant([g('operator', ['orders'])]), true);
  assert.equal(teamAdmin.mayGrant([g('admin', ['orders'], { apis: ['orders-api'] })]), true);
  assert.equal(teamAdmin.mayGrant([g('viewer', ['orders', 'payments'])]), false);
  assert.equal(teamAdmin.mayGrant([g('viewer', ['*'])]), false);
  assert.equal(teamAdmin.mayGrant([g('viewer', ['*'], { apis: ['payments/x'] })]), false);
  assert.equal(AdminAccess.of([g('operator', ['orders'])]).mayGrant([g('viewer', ['orders'])]), false, 'operators do not manage roles');
  assert.equal(AdminAccess.of([g('admin', ['*'])]).mayGrant([g('admin', ['*'])]), true);
  const narrowAdmin = AdminAccess.of([g('admin', ['orders'], { apis: ['orders-api'] })]);
  assert.equal(narrowAdmin.mayGrant([g('operator', ['orders'], { apis: ['orders-api'] })]), true);
  assert.equal(narrowAdmin.mayGrant([g('operator', ['orders'])]), false, 'not the whole namespace');
});

test('roleGrantsOf: bindings match by group or user (sub or email, any case), only for the provider named', () => {
  const yaml = (doc: string): string => `apiVersion: lockgate.dev/v1alpha1\n${doc}`;
  const text = [
    yaml('kind: IdentityProvider\nmetadata: { name: corp, namespace: lockgate-system }\nspec: { issuer: "https://corp.example", clientId: c }'),
    yaml('kind: IdentityProvider\nmetadata: { name: partner }\nspec: { issuer: "https://partner.example", clientId: p }'),
    yaml('kind: RoleBinding\nmetadata: { name: a, namespace: lockgate-system }\nspec: { role: operator, provider: corp, groups: [orders-devs], namespaces: [orders] }'),
    yaml('kind: RoleBinding\nmetadata: { name: b }\nspec: { role: admin, provider: lockgate-system/corp, users: [Carol@Example.com], namespaces: ["*"] }'),
    yaml('kind: RoleBinding\nmetadata: { name: c }\nspec: { role: viewer, provider: partner, groups: [orders-devs], namespaces: [orders], apis: [orders-api] }'),
  ].join('\n---\n');
  const { config, problems } = loadConfigText(text, 'roles.yaml');
  assert.deepEqual(problems, []);
  const person = (o: { sub: string; email?: string; groups: string[]; providers: string[] }) => roleGrantsOf(config, o).map((x) => `${x.role}:${x.namespaces.join(',')}:${x.source}`);
  assert.deepEqual(person({ sub: 'u1', groups: ['orders-devs'], providers: ['lockgate-system/corp'] }), ['operator:orders:RoleBinding lockgate-system/a']);
  assert.deepEqual(person({ sub: 'u2', email: 'carol@example.com', groups: [], providers: ['lockgate-system/corp'] }), ['admin:*:RoleBinding default/b']);
  assert.deepEqual(person({ sub: 'u1', groups: ['orders-devs'], providers: ['default/partner'] }), ['viewer:orders:RoleBinding default/c'], 'the same group name at another provider is another group');
  assert.deepEqual(person({ sub: 'u3', groups: ['staff'], providers: ['lockgate-system/corp'] }), []);
});

test('RoleBinding problems: unknown provider (with a suggestion), nobody bound, "*" with others, a narrowed name outside the namespaces', () => {
  const text = `apiVersion: lockgate.dev/v1alpha1
kind: IdentityProvider
metadata: { name: corp }
spec: { issuer: "https://corp.example", clientId: c }
---
apiVersion: lockgate.dev/v1alpha1
kind: RoleBinding
metadata: { name: x }
spec:
  role: boss
  provider: crop
  namespaces: ["*", orders]
  apis: [payments/api]
`;
  const { problems } = loadConfigText(text, 'rb.yaml');
  const lines = problems.map((p) => `${p.line}:${p.col} ${p.message}`);
  assert.ok(lines.some((l) => /^10:9 .*boss/.test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => l.includes('bind at least one group or user')), lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith('12:') && l.includes('"*" already means every namespace')), lines.join('\n'));
  const text2 = text.replace('role: boss', 'role: viewer').replace('["*", orders]', '[orders]').replace('  apis', '  groups: [g]\n  apis');
  const lines2 = loadConfigText(text2, 'rb.yaml').problems.map((p) => `${p.line}:${p.col} ${p.message}`);
  assert.ok(lines2.some((l) => l.startsWith('11:13 ') && l.includes('IdentityProvider "crop" not found') && l.includes('corp')), lines2.join('\n'));
  assert.ok(lines2.some((l) => l.includes('namespace "payments" is not one of the namespaces')), lines2.join('\n'));
});

const roleArb = fc.constantFrom<AdminRole>('viewer', 'operator', 'approver', 'admin');
const nsArb = fc.constantFrom('a', 'b', 'c');
const grantArb = fc.record({
  role: roleArb,
  namespaces: fc.oneof(fc.constant(['*']), fc.uniqueArray(nsArb, { minLength: 1, maxLength: 3 })),
  apis: fc.option(fc.uniqueArray(fc.constantFrom('x', 'y', 'a/x', 'b/y'), { maxLength: 2 }), { nil: undefined }),
  services: fc.option(fc.uniqueArray(fc.constantFrom('s', 'a/s'), { maxLength: 1 }), { nil: undefined }),
  source: fc.constant('p'),
});
const targetArb: fc.Arbitrary<AdminTarget> = fc.oneof(
  fc.constant('cluster' as const),
  fc.record({ namespace: nsArb, apis: fc.uniqueArray(fc.constantFrom('a/x', 'a/y', 'b/y', 'c/x'), { maxLength: 2 }), services: fc.uniqueArray(fc.constantFrom('a/s', 'b/s'), { maxLength: 1 }) }),
);
const actionArb = fc.constantFrom<AdminAction>('read', 'write', 'review', 'reveal', 'manage');

test('properties: more grants never take access away; narrowing never widens; a granter may manage whatever the granted role reaches', () => {
  fc.assert(fc.property(fc.array(grantArb, { maxLength: 3 }), grantArb, actionArb, targetArb, (grants, extra, action, target) => {
    if (AdminAccess.of(grants).allows(action, target)) assert.ok(AdminAccess.of([...grants, extra]).allows(action, target));
    const wide = { ...extra, apis: undefined, services: undefined };
    if (AdminAccess.of([extra]).allows(action, target)) assert.ok(AdminAccess.of([wide]).allows(action, target), 'the un-narrowed role allows at least as much');
  }), { numRuns: 2000 });
  fc.assert(fc.property(fc.array(grantArb, { maxLength: 3 }), grantArb, actionArb, targetArb, (grants, granted, action, target) => {
    const granter = AdminAccess.of(grants);
    if (!granter.mayGrant([granted])) return;
    if (!AdminAccess.of([granted]).allows(action, target)) return;
    assert.ok(granter.allows('manage', target), `granted ${JSON.stringify(granted)} reaches ${JSON.stringify(target)}, which the granter does not manage`);
  }), { numRuns: 3000 });
});

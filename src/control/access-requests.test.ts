import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseConfigText } from '../model/load-config.ts';
import { compileAccessPolicies, decideAccess } from '../policy/access-decision.ts';
import { LocalKeyWrapper } from '../secrets/key-wrapper.ts';
import { AuditLog } from '../store/audit-log.ts';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import { settingsFromConfig, grantSource } from './access-api.ts';
import { AccessRequests, ENDED_RETENTION_MS, type Person } from './access-requests.ts';

const H = 'apiVersion: lockgate.dev/v1alpha1';
const POLICY = `${H}
kind: MeshService
metadata: { name: inventory, namespace: shop }
---
${H}
kind: MeshService
metadata: { name: orders, namespace: shop }
---
${H}
kind: AccessPolicy
metadata: { name: inventory-access, namespace: shop }
spec:
  target: { service: inventory }
  allow:
    - { sources: [orders], groups: [orders-admins] }
    - { sources: [orders], grant: true }
  requests: { approvers: [orders-admins], minApprovals: 2, forceApprovers: [sre-oncall], maxDuration: 2h, reviewWithin: 30m }
`;

const alice: Person = { sub: 'alice', email: 'alice@example.com', groups: ['orders-admins'], issuer: 'https://idp' };
const carol: Person = { sub: 'carol', email: 'carol@example.com', groups: ['orders-admins'], issuer: 'https://idp' };
const bob: Person = { sub: 'bob', email: 'bob@example.com', groups: ['staff'], issuer: 'https://idp' };
const dave: Person = { sub: 'dave', groups: ['sre-oncall'], issuer: 'https://idp' };
const selfApprover: Person = { sub: 'erin', groups: ['orders-admins'], issuer: 'https://idp' };

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function world(): Promise<{ requests: AccessRequests; audit: AuditLog; clock: { t: number }; store: MemoryConfigStore }> {
  const dir = mkdtempSync(join(tmpdir(), 'lockgate-access-'));
  dirs.push(dir);
  const clock = { t: Date.UTC(2026, 10, 27, 9, 0, 0) };
  const now = (): number => clock.t;
  const audit = await AuditLog.open({ dataDir: dir, wrapper: new LocalKeyWrapper(randomBytes(32)), writeFile: async (p, t) => writeFileSync(p, t), now });
  const store = new MemoryConfigStore();
  await store.put('/config/AccessPolicy/shop/inventory-access', POLICY);
  const config = async () => parseConfigText(POLICY, 'store').config;
  const requests = await AccessRequests.open({ store, settings: settingsFromConfig(config), audit, now });
  return { requests, audit, clock, store };
}

/** What inventory's sidecar decides for a user, with the grants the control plane would send it. */
function decide(requests: AccessRequests, user: string, at: number, method = 'GET', groups: string[] = []): { allow: boolean; reasons: string[] } {
  const grantText = grantSource(requests).docsFor({ kind: 'sidecar', namespace: 'shop', service: 'inventory', spiffeId: 'spiffe://t/ns/shop/sa/inventory' });
  const { config, problems } = parseConfigText(`${POLICY}${grantText === '' ? '' : `---\n${grantText}`}`, 'snapshot');
  assert.ok(config, JSON.stringify(problems));
  const compiled = compileAccessPolicies(config.accessPolicies, { defaultAccess: 'deny', trustDomain: 't' }, config.accessGrants ?? []);
  return decideAccess(compiled, { sourceId: 'spiffe://t/ns/shop/sa/orders', service: 'shop/inventory', port: 80, method, path: '/stock/1', claims: { sub: user, groups }, now: at });
}

test('request → two approvals → access until the end, exact to the millisecond; audited at each step', async () => {
  const { requests, audit, clock } = await world();
  assert.equal(decide(requests, 'bob', clock.t).allow, false);
  const r = await requests.create(bob, { target: { service: 'shop/inventory' }, methods: ['GET'], reason: 'incident 42: read stock', durationMs: 3 * 3_600_000 }, 'req-1');
  assert.equal(r.state, 'pending');
  assert.equal(r.durationMs, 2 * 3_600_000, 'capped by maxDuration');
  assert.equal(r.policy, 'shop/inventory-access');
  await assert.rejects(requests.approve(r.id, bob), /nobody reviews their own request/);
  await assert.rejects(requests.approve(r.id, { ...bob, sub: 'mallory' }), /only members of orders-admins, sre-oncall \(or people with the approver role there\) review/);
  const one = await requests.approve(r.id, alice, 'ok by me');
  assert.equal(one.state, 'pending', 'one of two approvals');
  await assert.rejects(requests.approve(r.id, alice), /already reviewed/);
  assert.equal(decide(requests, 'bob', clock.t).allow, false);
  clock.t += 5_000;
  const two = await requests.approve(r.id, carol);
  assert.equal(two.state, 'approved');
  assert.equal(two.startsAt, new Date(clock.t).toISOString());
  const end = Date.parse(two.endsAt!);
  assert.equal(end - clock.t, 2 * 3_600_000);
  const d = decide(requests, 'bob', clock.t);
  assert.equal(d.allow, true);
  assert.match(d.reasons.join(' '), new RegExp(`grant ${r.id} \\(approved by alice@example.com, carol@example.com`));
  assert.equal(decide(requests, 'bob', clock.t, 'DELETE').allow, false, 'the grant covers GET only');
  assert.match(decide(requests, 'bob', clock.t, 'DELETE').reasons.join(' '), /does not cover method DELETE/);
  assert.equal(decide(requests, 'carol', clock.t, 'DELETE', ['orders-admins']).allow, true, 'carol is allowed by group anyway');
  // The last millisecond in, the first one out: nodes read the clock, not the snapshot.
  assert.equal(decide(requests, 'bob', end - 1).allow, true);
  const out = decide(requests, 'bob', end);
  assert.equal(out.allow, false);
  assert.match(out.reasons.join(' '), /ended at/);
  clock.t = end;
  assert.equal(await requests.sweep(), 1);
  assert.equal(requests.get(r.id)!.state, 'expired');
  assert.equal(grantSource(requests).docsFor({ kind: 'sidecar', namespace: 'shop', service: 'inventory', spiffeId: '' }), '');
  const actions = audit.read().records.map((x) => x.action);
  assert.deepEqual(actions, ['access.request', 'access.approve', 'access.approve', 'access.expire']);
  const approve = audit.read().records[2];
  assert.equal(approve.actor, 'carol@example.com');
  assert.equal(approve.details?.state, 'approved');
  assert.equal(audit.read().records[0].requestId, 'req-1');
  await audit.close();
});

test('a force approver alone approves (flagged); a deny ends it; a pending request expires at its review deadline', async () => {
  const { requests, audit, clock, store } = await world();
  const a = await requests.create(bob, { target: { service: 'shop/inventory' }, reason: 'deploy' });
  const forced = await requests.approve(a.id, dave);
  assert.equal(forced.state, 'approved');
  assert.equal(forced.reviews[0].forced, true);
  assert.equal(audit.read().records.at(-1)!.action, 'access.force-approve');

  const b = await requests.create(bob, { target: { service: 'shop/inventory' }, reason: 'again' });
  const denied = await requests.deny(b.id, alice, 'use the runbook');
  assert.equal(denied.state, 'denied');
  await assert.rejects(requests.approve(b.id, carol), /is denied, not pending/);

  const c = await requests.create(bob, { target: { service: 'shop/inventory' }, reason: 'later' });
  clock.t = Date.parse(c.reviewBy) - 1;
  assert.equal(await requests.sweep(), 0);
  clock.t += 1;
  await assert.rejects(requests.approve(c.id, alice), /not reviewed in time/);
  assert.equal(await requests.sweep(), 1);
  assert.equal(requests.get(c.id)!.state, 'expired');
  assert.equal(requests.get(c.id)!.endReason, 'not reviewed in time');
  // Ended requests stay listable for 30 days, then leave the store (the audit trail keeps their story).
  clock.t += ENDED_RETENTION_MS - 1;
  await requests.sweep();
  assert.ok(requests.get(c.id) !== undefined);
  clock.t += 1;
  await requests.sweep();
  assert.equal(requests.get(c.id), undefined);
  assert.equal(requests.get(b.id), undefined, 'the denied one too');
  assert.equal(requests.list().some((r) => r.id === c.id), false);
  assert.equal(await store.get(`/access/requests/${c.id}`), undefined, 'gone from the store too');
  await audit.close();
});

test('revoke: the requester, a reviewer or an admin; access ends at once', async () => {
  const { requests, audit, clock } = await world();
  const r = await requests.create(bob, { target: { service: 'shop/inventory' }, reason: 'x' });
  await requests.approve(r.id, dave);
  assert.equal(decide(requests, 'bob', clock.t).allow, true);
  await assert.rejects(requests.revoke(r.id, { sub: 'mallory', person: { ...bob, sub: 'mallory' } }), /only the requester, a reviewer/);
  let changed = 0;
  requests.onChange(() => changed++);
  const v = await requests.revoke(r.id, { sub: 'alice@example.com', person: alice }, 'done');
  assert.equal(v.state, 'revoked');
  assert.equal(changed, 1, 'nodes are told');
  assert.equal(decide(requests, 'bob', clock.t).allow, false);
  await assert.rejects(requests.revoke(r.id, { sub: 'admin', admin: true }), /is revoked/);
  // Self-approval is refused even for an approver asking for themselves.
  const s = await requests.create(selfApprover, { target: { service: 'shop/inventory' }, reason: 'mine' });
  await assert.rejects(requests.approve(s.id, selfApprover), /nobody reviews their own request/);
  await audit.close();
});

test('bad requests are refused with the reason; a target without request settings cannot be asked for', async () => {
  const { requests, audit, store } = await world();
  await assert.rejects(requests.create(bob, { target: { service: 'shop/inventory' } }), /a reason is required/);
  await assert.rejects(requests.create(bob, { target: {}, reason: 'x' }), /exactly one target/);
  await assert.rejects(requests.create(bob, { target: { service: 'shop/orders' }, reason: 'x' }), /no AccessPolicy for service shop\/orders accepts access requests/);
  await assert.rejects(requests.create(bob, { target: { service: 'shop/inventory' }, reason: 'x', methods: ['get it'] }), /not an HTTP method/);
  await assert.rejects(requests.create(bob, { target: { service: 'shop/inventory' }, reason: 'x', durationMs: 1000 }), /at least 1m/);
  // Reopened from the store: the same requests.
  const r = await requests.create(bob, { target: { service: 'shop/inventory' }, reason: 'persisted' });
  const again = await AccessRequests.open({ store, settings: async () => ({ error: 'unused' }) });
  assert.equal(again.get(r.id)?.reason, 'persisted');
  await audit.close();
});

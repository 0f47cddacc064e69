// Tests for the end-user criteria of the access decision: authenticated, user/email/domain, groups and claims,
// sourceIp, time windows, cel, the all/any/none combinators, gateway (Api) targets, and properties over rule trees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { apiHasAccessPolicies, compileAccessPolicies, decideAccess, decideAccessUncached, type AccessDecision, type AccessRequest } from './access-decision.ts';
import type { AccessDefault, AccessGrantResource, AccessPolicyResource, AccessPolicySpec, AccessRule } from '../model/types.ts';

const TD = 'lockgate.local';
const WEB = `spiffe://${TD}/ns/shop/sa/web`;

function rule(r: Partial<AccessRule> = {}): AccessRule {
  return { sources: [], methods: [], paths: [], ports: [], ...r };
}

function policy(name: string, spec: Partial<Omit<AccessPolicySpec, 'target'>> & { target?: AccessPolicySpec['target'] }, namespace = 'shop'): AccessPolicyResource {
  return {
    apiVersion: 'lockgate.dev/v1alpha1',
    kind: 'AccessPolicy',
    metadata: { name, namespace, labels: {} },
    spec: {
      target: spec.target ?? { service: 'shop/app', ports: [] },
      mode: spec.mode ?? 'enforce',
      allow: spec.allow ?? [],
      deny: spec.deny ?? [],
    },
  };
}

function req(r: Partial<AccessRequest> = {}): AccessRequest {
  return { sourceId: WEB, service: 'shop/app', port: 8080, method: 'GET', path: '/items', ...r };
}

function decide(policies: AccessPolicyResource[], r: Partial<AccessRequest> = {}, defaultAccess: AccessDefault = 'deny'): AccessDecision {
  return decideAccess(compileAccessPolicies(policies, { defaultAccess, trustDomain: TD }), req(r));
}

/** One allow rule in policy shop/p, decided for `r`. */
const allowOnly = (x: Partial<AccessRule>, r: Partial<AccessRequest> = {}) => decide([policy('p', { allow: [rule(x)] })], r);

/** allow, policy, and a reason that contains `reason`. */
function expect(d: AccessDecision, allow: boolean, pol: string, reason: string, label = ''): void {
  assert.equal(d.allow, allow, `${label} allow: ${d.reasons.join(' | ')}`);
  assert.equal(d.policy, pol, `${label} policy`);
  assert.ok(d.reasons.some((x) => x.includes(reason)), `${label} reasons ${JSON.stringify(d.reasons)} should contain ${JSON.stringify(reason)}`);
}

const NO_USER = 'no end user (no validated token or assertion)';

// ---------- authenticated ----------

test('authenticated: true needs an end user; false needs none', () => {
  const d = allowOnly({ authenticated: true }, { claims: { sub: 'alice' } });
  expect(d, true, 'shop/p', 'allow rule shop/p allow[0] matched (end user alice)');
  assert.deepEqual(d.reasons, ['allow rule shop/p allow[0] matched (end user alice)']);
  // The email names the user when there is one.
  expect(allowOnly({ authenticated: true }, { claims: { sub: 'alice', email: 'alice@example.com' } }), true, 'shop/p', '(end user alice@example.com)');
  // Empty claims are still a verified end user (a token with no claims of interest).
  expect(allowOnly({ authenticated: true }, { claims: {} }), true, 'shop/p', 'end user (no sub)');
  for (const claims of [undefined, null]) {
    const no = allowOnly({ authenticated: true }, { claims });
    expect(no, false, 'shop/p', NO_USER, String(claims));
    assert.deepEqual(no.reasons, [`no allow rule of shop/p matched: ${NO_USER}`]);
  }

  expect(allowOnly({ authenticated: false }), true, 'shop/p', `matched (${NO_USER})`);
  expect(allowOnly({ authenticated: false }, { claims: null }), true, 'shop/p', NO_USER);
  const some = allowOnly({ authenticated: false }, { claims: { sub: 'bob' } });
  expect(some, false, 'shop/p', 'end user bob, but the rule wants none');
});

test('authenticated as a deny: anonymous callers are refused, users pass to the allow rules', () => {
  const p = policy('p', { deny: [rule({ authenticated: false })], allow: [rule({ methods: ['GET'] })] });
  expect(decide([p]), false, 'shop/p', `deny rule shop/p deny[0] matched (${NO_USER})`);
  expect(decide([p], { claims: { sub: 'u' } }), true, 'shop/p', 'allow rule shop/p allow[0] matched (method GET)');
});

// ---------- user, email, domain ----------

test('user matches sub, with every StringMatch form', () => {
  const cases: Array<[AccessRule['user'], string, boolean, string]> = [
    ['alice', 'alice', true, 'user alice'],
    ['alice', 'bob', false, 'user bob is not "alice"'],
    ['alice', 'Alice', false, 'user Alice is not "alice"'],
    [['alice', 'carol'], 'carol', true, 'user carol'],
    [['alice', 'carol'], 'bob', false, 'user bob is not any of [alice, carol]'],
    [{ is: 'alice' }, 'alice', true, 'user alice'],
    [{ is: 'alice' }, 'alicia', false, 'user alicia is not "alice"'],
    [{ in: ['a1', 'a2'] }, 'a2', true, 'user a2'],
    [{ in: ['a1', 'a2'] }, 'a3', false, 'user a3 is not any of [a1, a2]'],
    [{ startsWith: 'svc-' }, 'svc-backup', true, 'user svc-backup'],
    [{ startsWith: 'svc-' }, 'my-svc-x', false, 'user my-svc-x is not startsWith "svc-"'],
    [{ endsWith: '@clients' }, 'batch@clients', true, 'user batch@clients'],
    [{ endsWith: '@clients' }, 'batch@clients.x', false, 'user batch@clients.x is not endsWith "@clients"'],
    [{ contains: 'admin' }, 'x-admin-y', true, 'user x-admin-y'],
    [{ contains: 'admin' }, 'adm-in', false, 'user adm-in is not contains "admin"'],
  ];
  for (const [m, sub, allow, reason] of cases) {
    expect(allowOnly({ user: m }, { claims: { sub } }), allow, 'shop/p', reason, `${JSON.stringify(m)} vs ${sub}`);
  }
  expect(allowOnly({ user: 'alice' }, { claims: { email: 'alice@example.com' } }), false, 'shop/p', 'no user in the end user\'s claims (want "alice")');
  expect(allowOnly({ user: '42' }, { claims: { sub: 42 } }), false, 'shop/p', 'no user in the end user\'s claims', 'a non-string sub is no sub');
  expect(allowOnly({ user: 'alice' }), false, 'shop/p', NO_USER);
});

test('email, with every StringMatch form', () => {
  const cases: Array<[AccessRule['email'], string, boolean, string]> = [
    ['a@example.com', 'a@example.com', true, 'email a@example.com'],
    ['a@example.com', 'A@example.com', false, 'email A@example.com is not "a@example.com"'],
    [['a@x.io', 'b@x.io'], 'b@x.io', true, 'email b@x.io'],
    [['a@x.io', 'b@x.io'], 'c@x.io', false, 'email c@x.io is not any of [a@x.io, b@x.io]'],
    [{ is: 'a@x.io' }, 'a@x.io', true, 'email a@x.io'],
    [{ in: ['a@x.io'] }, 'z@x.io', false, 'email z@x.io is not any of [a@x.io]'],
    [{ startsWith: 'ops-' }, 'ops-1@x.io', true, 'email ops-1@x.io'],
    [{ startsWith: 'ops-' }, 'dev@x.io', false, 'email dev@x.io is not startsWith "ops-"'],
    [{ endsWith: '@example.com' }, 'a@example.com', true, 'email a@example.com'],
    [{ endsWith: '@example.com' }, 'a@example.com.evil', false, 'email a@example.com.evil is not endsWith "@example.com"'],
    [{ contains: '+admin' }, 'a+admin@x.io', true, 'email a+admin@x.io'],
    [{ contains: '+admin' }, 'a@x.io', false, 'email a@x.io is not contains "+admin"'],
  ];
  for (const [m, email, allow, reason] of cases) {
    expect(allowOnly({ email: m }, { claims: { sub: 's', email } }), allow, 'shop/p', reason, `${JSON.stringify(m)} vs ${email}`);
  }
  expect(allowOnly({ email: { endsWith: '@x.io' } }, { claims: { sub: 's' } }), false, 'shop/p', 'no email in the end user\'s claims (want endsWith "@x.io")');
  expect(allowOnly({ email: 'a@x.io' }, { claims: null }), false, 'shop/p', NO_USER);
});

test('domain is the part after the last @, compared case-insensitively, with every StringMatch form', () => {
  const cases: Array<[AccessRule['domain'], string, boolean, string]> = [
    ['Example.COM', 'a@example.com', true, 'domain example.com'],
    ['example.com', 'A@EXAMPLE.Com', true, 'domain example.com'],
    ['example.com', 'a@example.org', false, 'domain example.org is not "example.com"'],
    ['example.com', 'a@sub.example.com', false, 'domain sub.example.com is not "example.com"'],
    ['example.com', '"a@b"@example.com', true, 'domain example.com'],
    [['Corp.Example', 'example.com'], 'x@corp.example', true, 'domain corp.example'],
    [['Corp.Example', 'example.com'], 'x@corp.example.net', false, 'domain corp.example.net is not any of [corp.example, example.com]'],
    [{ is: 'EXAMPLE.com' }, 'x@example.com', true, 'domain example.com'],
    [{ in: ['A.io', 'B.io'] }, 'x@b.IO', true, 'domain b.io'],
    [{ in: ['A.io', 'B.io'] }, 'x@c.io', false, 'domain c.io is not any of [a.io, b.io]'],
    [{ startsWith: 'EU.' }, 'x@eu.example.com', true, 'domain eu.example.com'],
    [{ startsWith: 'EU.' }, 'x@us.example.com', false, 'domain us.example.com is not startsWith "eu."'],
    [{ endsWith: '.Example.com' }, 'x@eu.example.com', true, 'domain eu.example.com'],
    [{ endsWith: '.Example.com' }, 'x@example.com', false, 'domain example.com is not endsWith ".example.com"'],
    [{ contains: 'Corp' }, 'x@mycorp.io', true, 'domain mycorp.io'],
    [{ contains: 'Corp' }, 'x@my.io', false, 'domain my.io is not contains "corp"'],
  ];
  for (const [m, email, allow, reason] of cases) {
    expect(allowOnly({ domain: m }, { claims: { sub: 's', email } }), allow, 'shop/p', reason, `${JSON.stringify(m)} vs ${email}`);
  }
  for (const claims of [{ sub: 's' }, { sub: 's', email: 'no-at-sign' }, { sub: 's', email: 7 }]) {
    expect(allowOnly({ domain: 'example.com' }, { claims }), false, 'shop/p', 'no domain in the end user\'s claims (want "example.com")', JSON.stringify(claims));
  }
  expect(allowOnly({ domain: 'example.com' }), false, 'shop/p', NO_USER);
});

// ---------- groups and claims ----------

test('groups, with every ListMatch form', () => {
  const cases: Array<[AccessRule['groups'], unknown, boolean, string]> = [
    ['admins', ['dev', 'admins'], true, 'groups [dev, admins]'],
    ['admins', ['dev'], false, 'groups [dev] does not have "admins"'],
    ['admins', 'admins', true, 'groups [admins]'],
    ['admins', [], false, 'groups [] does not have "admins"'],
    [['admins', 'ops'], ['ops'], true, 'groups [ops]'],
    [['admins', 'ops'], ['dev'], false, 'groups [dev] does not have any of [admins, ops]'],
    [{ has: 'ops' }, ['ops', 'x'], true, 'groups [ops, x]'],
    [{ has: 'ops' }, ['Ops'], false, 'groups [Ops] does not have "ops"'],
    [{ hasAny: ['a', 'b'] }, ['b', 'c'], true, 'groups [b, c]'],
    [{ hasAny: ['a', 'b'] }, ['c'], false, 'groups [c] does not have any of [a, b]'],
    [{ hasAll: ['a', 'b'] }, ['c', 'b', 'a'], true, 'groups [c, b, a]'],
    [{ hasAll: ['a', 'b'] }, ['a'], false, 'groups [a] does not have all of [a, b]'],
  ];
  for (const [m, groups, allow, reason] of cases) {
    expect(allowOnly({ groups: m }, { claims: { sub: 's', groups } }), allow, 'shop/p', reason, `${JSON.stringify(m)} vs ${JSON.stringify(groups)}`);
  }
  expect(allowOnly({ groups: 'admins' }, { claims: { sub: 's' } }), false, 'shop/p', 'no groups in the end user\'s claims (want has "admins")');
  expect(allowOnly({ groups: 'admins' }, { claims: { sub: 's', groups: { admins: true } } }), false, 'shop/p', 'no groups in the end user\'s claims', 'an object is not a list');
  expect(allowOnly({ groups: 'admins' }), false, 'shop/p', NO_USER);
});

test('claims by dotted path: strings, numbers, booleans and arrays', () => {
  const team = (v: unknown) => ({ sub: 's', org: { team: v } });
  const cases: Array<[Record<string, NonNullable<AccessRule['groups']>>, Record<string, unknown>, boolean, string]> = [
    [{ 'org.team': 'eng' }, team('eng'), true, 'claim/org.team [eng]'],
    [{ 'org.team': 'eng' }, team('ops'), false, 'claim/org.team [ops] does not have "eng"'],
    [{ 'org.team': 'eng' }, team(['ops', 'eng']), true, 'claim/org.team [ops, eng]'],
    [{ 'org.team': ['eng', 'sre'] }, team(['sre']), true, 'claim/org.team [sre]'],
    [{ 'org.team': { has: 'eng' } }, team('eng'), true, 'claim/org.team [eng]'],
    [{ 'org.team': { hasAny: ['a', 'eng'] } }, team(['x', 'eng']), true, 'claim/org.team [x, eng]'],
    [{ 'org.team': { hasAll: ['a', 'eng'] } }, team(['eng']), false, 'claim/org.team [eng] does not have all of [a, eng]'],
    // Numbers and booleans are written out; arrays keep their scalars and skip the rest.
    [{ level: '3' }, { level: 3 }, true, 'claim/level [3]'],
    [{ level: { hasAny: ['4', '5'] } }, { level: 3 }, false, 'claim/level [3] does not have any of [4, 5]'],
    [{ email_verified: 'true' }, { email_verified: true }, true, 'claim/email_verified [true]'],
    [{ email_verified: 'true' }, { email_verified: false }, false, 'claim/email_verified [false] does not have "true"'],
    [{ mixed: { hasAll: ['1', 'a', 'true'] } }, { mixed: [1, 'a', true, { x: 1 }, null] }, true, 'claim/mixed [1, a, true]'],
    // Several claims are ANDed.
    [{ 'org.team': 'eng', 'org.site': 'berlin' }, { org: { team: 'eng', site: 'berlin' } }, true, 'claim/org.team [eng], claim/org.site [berlin]'],
    [{ 'org.team': 'eng', 'org.site': 'berlin' }, { org: { team: 'eng', site: 'paris' } }, false, 'claim/org.site [paris] does not have "berlin"'],
    // The path reads nested objects, not a key with a dot in it.
    [{ 'org.team': 'eng' }, { 'org.team': 'eng' }, false, 'no claim/org.team in the end user\'s claims (want has "eng")'],
  ];
  for (const [claimRules, claims, allow, reason] of cases) {
    expect(allowOnly({ claims: claimRules }, { claims }), allow, 'shop/p', reason, `${JSON.stringify(claimRules)} vs ${JSON.stringify(claims)}`);
  }
  for (const claims of [{ sub: 's' }, { org: {} }, { org: 'eng' }, { org: ['team'] }, { org: null }, { org: { team: { name: 'eng' } } }]) {
    expect(allowOnly({ claims: { 'org.team': 'eng' } }, { claims }), false, 'shop/p', 'no claim/org.team in the end user\'s claims (want has "eng")', JSON.stringify(claims));
  }
  // Inherited properties are not claims.
  expect(allowOnly({ claims: { 'constructor.name': 'Object' } }, { claims: { sub: 's' } }), false, 'shop/p', 'no claim/constructor.name in the end user\'s claims');
  expect(allowOnly({ claims: { 'org.team': 'eng' } }), false, 'shop/p', NO_USER);
});

// ---------- sourceIp ----------

test('sourceIp: IPv4 and IPv6 CIDRs and addresses; an unknown address matches none', () => {
  const nets = ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'];
  const cases: Array<[string | undefined, boolean, string]> = [
    ['10.1.2.3', true, 'allow rule shop/p allow[0] matched (source address 10.1.2.3)'],
    ['11.0.0.1', false, 'source address 11.0.0.1 not in [10.0.0.0/8, 2001:db8::/32, 192.0.2.7]'],
    ['2001:db8:ffff::1', true, 'source address 2001:db8:ffff::1'],
    ['2001:db9::1', false, 'source address 2001:db9::1 not in'],
    ['192.0.2.7', true, 'source address 192.0.2.7'],
    ['192.0.2.8', false, 'source address 192.0.2.8 not in'],
    ['::ffff:10.9.9.9', true, 'source address ::ffff:10.9.9.9'],
    ['not-an-ip', false, 'source address not-an-ip not in'],
    [undefined, false, 'source address (unknown) not in [10.0.0.0/8, 2001:db8::/32, 192.0.2.7]'],
    ['', false, 'source address (unknown) not in'],
  ];
  for (const [sourceIp, allow, reason] of cases) expect(allowOnly({ sourceIp: nets }, { sourceIp }), allow, 'shop/p', reason, String(sourceIp));
  // A deny on a network does not catch a request whose address is unknown.
  const p = policy('p', { deny: [rule({ sourceIp: ['0.0.0.0/0', '::/0'] })] });
  expect(decide([p], {}, 'allow'), true, 'mesh-default', 'no deny rule matched');
  expect(decide([p], { sourceIp: '203.0.113.9' }, 'allow'), false, 'shop/p', 'deny rule shop/p deny[0] matched (source address 203.0.113.9)');
});

// ---------- time ----------

const at = (iso: string) => Date.parse(iso);

test('time: after/before inside and outside (after inclusive, before exclusive)', () => {
  const w = { after: '09:00', before: '17:00', timeZone: 'UTC' };
  const cases: Array<[string, boolean, string]> = [
    ['2024-06-05T12:00:00Z', true, 'matched (time 2024-06-05 wed 12:00 UTC)'],
    ['2024-06-05T09:00:00Z', true, 'time 2024-06-05 wed 09:00 UTC'],
    ['2024-06-05T08:59:59Z', false, 'time 2024-06-05 wed 08:59 UTC is outside the hours (09:00–17:00 UTC)'],
    ['2024-06-05T16:59:59Z', true, 'time 2024-06-05 wed 16:59 UTC'],
    ['2024-06-05T17:00:00Z', false, 'time 2024-06-05 wed 17:00 UTC is outside the hours (09:00–17:00 UTC)'],
  ];
  for (const [iso, allow, reason] of cases) expect(allowOnly({ time: w }, { now: at(iso) }), allow, 'shop/p', reason, iso);
  // One bound alone.
  expect(allowOnly({ time: { after: '09:00', timeZone: 'UTC' } }, { now: at('2024-06-05T23:59:00Z') }), true, 'shop/p', 'time 2024-06-05 wed 23:59 UTC');
  expect(allowOnly({ time: { after: '09:00', timeZone: 'UTC' } }, { now: at('2024-06-05T08:00:00Z') }), false, 'shop/p', 'is outside the hours (09:00–24:00 UTC)');
  expect(allowOnly({ time: { before: '09:00', timeZone: 'UTC' } }, { now: at('2024-06-05T00:00:00Z') }), true, 'shop/p', 'time 2024-06-05 wed 00:00 UTC');
  expect(allowOnly({ time: { before: '09:00', timeZone: 'UTC' } }, { now: at('2024-06-05T09:00:00Z') }), false, 'shop/p', 'is outside the hours (00:00–09:00 UTC)');
});

test('time: a window that spans midnight', () => {
  const w = { after: '22:00', before: '06:00', timeZone: 'UTC' };
  const cases: Array<[string, boolean]> = [
    ['2024-06-05T22:00:00Z', true],
    ['2024-06-05T23:30:00Z', true],
    ['2024-06-06T00:00:00Z', true],
    ['2024-06-06T05:59:00Z', true],
    ['2024-06-06T06:00:00Z', false],
    ['2024-06-06T12:00:00Z', false],
    ['2024-06-05T21:59:00Z', false],
  ];
  for (const [iso, allow] of cases) {
    expect(allowOnly({ time: w }, { now: at(iso) }), allow, 'shop/p', allow ? 'matched (time ' : 'is outside the hours (22:00–06:00 UTC)', iso);
  }
});

test('time: days, ranges and a range that wraps around the week', () => {
  // 2024-06-03 is a Monday.
  const day = (d: number) => at(`2024-06-${String(2 + d).padStart(2, '0')}T12:00:00Z`); // 0 = sun 2024-06-02 … 6 = sat
  const names = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
  const check = (days: string[], yes: string[]) => {
    for (let d = 0; d < 7; d++) {
      const want = yes.includes(names[d]);
      const got = allowOnly({ time: { days, timeZone: 'UTC' } }, { now: day(d) });
      expect(got, want, 'shop/p', want ? `time 2024-06-0${2 + d} ${names[d]} 12:00 UTC` : `is not on one of the days (days ${days.join(',')} UTC)`, `${days} on ${names[d]}`);
    }
  };
  check(['mon-fri'], ['mon', 'tue', 'wed', 'thu', 'fri']);
  check(['fri-mon'], ['fri', 'sat', 'sun', 'mon']);
  check(['sat-sun'], ['sat', 'sun']);
  check(['tue', 'thu'], ['tue', 'thu']);
  check(['Mon', 'wed-Thu'], ['mon', 'wed', 'thu']);
  check(['sun-sat'], names);
  // Days and hours together: both must hold.
  const w = { days: ['mon-fri'], after: '09:00', before: '17:00', timeZone: 'UTC' };
  expect(allowOnly({ time: w }, { now: at('2024-06-08T12:00:00Z') }), false, 'shop/p', 'time 2024-06-08 sat 12:00 UTC is not on one of the days (days mon-fri 09:00–17:00 UTC)');
  expect(allowOnly({ time: w }, { now: at('2024-06-07T18:00:00Z') }), false, 'shop/p', 'is outside the hours');
});

test('time: from (inclusive) and until (exclusive) dates', () => {
  const w = { from: '2024-06-01', until: '2024-06-10', timeZone: 'UTC' };
  const cases: Array<[string, boolean, string]> = [
    ['2024-05-31T23:59:59Z', false, 'time 2024-05-31 fri 23:59 UTC is before the first date (dates 2024-06-01 to 2024-06-10 UTC)'],
    ['2024-06-01T00:00:00Z', true, 'time 2024-06-01 sat 00:00 UTC'],
    ['2024-06-09T23:59:59Z', true, 'time 2024-06-09 sun 23:59 UTC'],
    ['2024-06-10T00:00:00Z', false, 'time 2024-06-10 mon 00:00 UTC is past the last date (dates 2024-06-01 to 2024-06-10 UTC)'],
  ];
  for (const [iso, allow, reason] of cases) expect(allowOnly({ time: w }, { now: at(iso) }), allow, 'shop/p', reason, iso);
  expect(allowOnly({ time: { until: '2024-06-10', timeZone: 'UTC' } }, { now: at('2020-01-01T00:00:00Z') }), true, 'shop/p', 'time 2020-01-01');
  expect(allowOnly({ time: { from: '2024-06-10', timeZone: 'UTC' } }, { now: at('2030-01-01T00:00:00Z') }), true, 'shop/p', 'time 2030-01-01');
  expect(allowOnly({ time: { until: '2024-06-10', timeZone: 'UTC' } }, { now: at('2024-06-10T00:00:00Z') }), false, 'shop/p', '(dates … to 2024-06-10 UTC)');
});

test('time: a non-UTC time zone decides on the local day, hour and date (DST included)', () => {
  const NY = 'America/New_York';
  // 2024-06-08T02:30Z is Saturday in UTC but Friday 22:30 (EDT, UTC-4) in New York.
  const summer = at('2024-06-08T02:30:00Z');
  // 2024-01-15T03:30Z is Monday in UTC but Sunday 22:30 (EST, UTC-5) in New York.
  const winter = at('2024-01-15T03:30:00Z');
  expect(allowOnly({ time: { days: ['fri'], timeZone: NY } }, { now: summer }), true, 'shop/p', 'time 2024-06-07 fri 22:30 America/New_York');
  expect(allowOnly({ time: { days: ['fri'], timeZone: 'UTC' } }, { now: summer }), false, 'shop/p', 'time 2024-06-08 sat 02:30 UTC is not on one of the days (days fri UTC)');
  expect(allowOnly({ time: { days: ['mon-fri'], timeZone: NY } }, { now: winter }), false, 'shop/p', 'time 2024-01-14 sun 22:30 America/New_York is not on one of the days (days mon-fri America/New_York)');
  expect(allowOnly({ time: { days: ['mon-fri'], timeZone: 'UTC' } }, { now: winter }), true, 'shop/p', 'time 2024-01-15 mon 03:30 UTC');
  // The same local hours in summer and winter.
  for (const now of [summer, winter]) {
    expect(allowOnly({ time: { after: '22:00', before: '23:00', timeZone: NY } }, { now }), true, 'shop/p', '22:30 America/New_York');
    expect(allowOnly({ time: { after: '02:00', before: '04:00', timeZone: 'UTC' } }, { now }), true, 'shop/p', 'UTC');
    expect(allowOnly({ time: { after: '02:00', before: '04:00', timeZone: NY } }, { now }), false, 'shop/p', 'is outside the hours (02:00–04:00 America/New_York)');
  }
  // Dates are local too: until 2024-06-08 in New York still holds at 02:30Z on the 8th.
  expect(allowOnly({ time: { until: '2024-06-08', timeZone: NY } }, { now: summer }), true, 'shop/p', 'time 2024-06-07 fri 22:30 America/New_York');
  expect(allowOnly({ time: { until: '2024-06-08', timeZone: 'UTC' } }, { now: summer }), false, 'shop/p', 'is past the last date (dates … to 2024-06-08 UTC)');
  expect(allowOnly({ time: { from: '2024-06-08', timeZone: NY } }, { now: summer }), false, 'shop/p', 'is before the first date (dates 2024-06-08 to … America/New_York)');
});

// ---------- cel ----------

test('cel: expressions over the request and the end user', () => {
  const method = 'context.Request.Method == "GET"';
  expect(allowOnly({ cel: method }), true, 'shop/p', `matched (cel ${JSON.stringify(method)} true)`);
  expect(allowOnly({ cel: method }, { method: 'POST' }), false, 'shop/p', `no allow rule of shop/p matched: cel ${JSON.stringify(method)} is false`);

  const team = 'context.User["team"] == "eng" && "admins" in context.User.groups';
  expect(allowOnly({ cel: team }, { claims: { team: 'eng', groups: ['dev', 'admins'] } }), true, 'shop/p', `cel ${JSON.stringify(team)} true`);
  expect(allowOnly({ cel: team }, { claims: { team: 'eng', groups: ['dev'] } }), false, 'shop/p', `cel ${JSON.stringify(team)} is false`);
  expect(allowOnly({ cel: team }, { claims: { team: 'ops', groups: ['admins'] } }), false, 'shop/p', 'is false');
  // cel combines with the other criteria of its rule (AND).
  expect(allowOnly({ cel: method, groups: 'x' }, { claims: { groups: ['x'] } }), true, 'shop/p', 'groups [x], cel');
});

test('cel: a runtime error fails closed within its policy: an erroring allow rule does not match, an erroring deny rule does', () => {
  const expr = 'context.User["team"] == "eng"';
  const enforce = decide([policy('p', { allow: [rule({ cel: expr })] })], { claims: { sub: 'alice' } });
  expect(enforce, false, 'shop/p', 'could not be evaluated');
  assert.deepEqual([enforce.wouldDeny, enforce.mode], [true, 'enforce']);
  assert.equal(enforce.reasons.length, 1);
  assert.match(enforce.reasons[0], /^no allow rule of shop\/p matched: could not be evaluated \(.*team/);
  // The same expression evaluates when the claim is there.
  expect(decide([policy('p', { allow: [rule({ cel: expr })] })], { claims: { team: 'eng' } }), true, 'shop/p', 'true');

  // A failing deny rule denies (it does not just "not match"), even where the mesh default allows.
  const denyErr = decide([policy('p', { deny: [rule({ cel: expr })] })], { claims: {} }, 'allow');
  expect(denyErr, false, 'shop/p', 'deny rule shop/p deny[0] could not be evaluated');
  assert.match(denyErr.reasons[0], /counted as matched$/);

  const audit = decide([policy('p', { mode: 'audit', allow: [rule({ cel: expr })] })], { claims: { sub: 'alice' } }, 'audit');
  expect(audit, true, 'shop/p', 'could not be evaluated');
  assert.deepEqual([audit.wouldDeny, audit.mode], [true, 'audit']);
  assert.equal(audit.reasons.at(-1), 'audit mode: would be denied, allowed');
  // An audit policy opens nothing: under a deny default the default decides.
  const closed = decide([policy('p', { mode: 'audit', allow: [rule({ cel: expr })] })], { claims: { sub: 'alice' } }, 'deny');
  assert.deepEqual([closed.allow, closed.policy], [false, 'mesh-default']);

  // A cel rule that does not compile (a config that skipped validation) fails closed too.
  const broken = decide([policy('p', { allow: [rule({ cel: '1 +' })] })]);
  expect(broken, false, 'shop/p', 'could not be evaluated (cel "1 +" does not compile)');
});

test('cel: a runtime error in an audit policy is that policy\'s audit deny, not a denial for another policy', () => {
  const open = policy('a-open', { allow: [rule()] });
  const trial = policy('b-trial', { mode: 'audit', deny: [rule({ cel: 'context.User["team"] == "x"' })] });
  const d = decide([open, trial], { claims: {} });
  // Audit mode logs what would be denied and allows it: the failing rule is b-trial's, in audit mode.
  assert.deepEqual([d.allow, d.wouldDeny, d.mode, d.policy], [true, true, 'audit', 'shop/b-trial']);
  assert.ok(d.reasons.some((x) => x.includes('could not be evaluated')));
});

// ---------- combinators ----------

test('all, any and none nest, and their reasons say which branch decided', () => {
  // any of: an admin, or (a GET that is not under /admin/).
  const nested = rule({
    any: [
      rule({ groups: 'admins' }),
      rule({ all: [rule({ methods: ['GET'] }), rule({ none: [rule({ paths: ['/admin/*'] })] })] }),
    ],
  });
  const p = policy('p', { allow: [nested] });
  const dev = { sub: 'dev1', groups: ['dev'] };

  const admin = decide([p], { method: 'DELETE', path: '/admin/x', claims: { sub: 'root', groups: ['admins'] } });
  expect(admin, true, 'shop/p', 'allow rule shop/p allow[0] matched (any[0] (groups [admins]))');

  const reader = decide([p], { method: 'GET', path: '/items', claims: dev });
  expect(reader, true, 'shop/p', 'any[1] (all of (method GET; none of 1 rule matched))');

  const adminPath = decide([p], { method: 'GET', path: '/admin/x', claims: dev });
  expect(adminPath, false, 'shop/p', 'none of any matched (any[0]: groups [dev] does not have "admins"; any[1]: all[1]: none[0] matched (path /admin/x))');

  const writer = decide([p], { method: 'POST', path: '/items', claims: dev });
  expect(writer, false, 'shop/p', 'any[1]: all[0]: method POST not in [GET]');

  const anonymous = decide([p], { method: 'POST', path: '/items' });
  expect(anonymous, false, 'shop/p', `any[0]: ${NO_USER}`);
});

test('a combinator ANDs with the other criteria of its rule; none in a deny rule', () => {
  const r = rule({ methods: ['POST'], all: [rule({ authenticated: true }), rule({ any: [rule({ domain: 'example.com' }), rule({ groups: 'partners' })] })] });
  const p = policy('p', { allow: [r] });
  expect(decide([p], { method: 'POST', claims: { email: 'a@example.com' } }), true, 'shop/p', 'method POST, all of (end user a@example.com; any[0] (domain example.com))');
  expect(decide([p], { method: 'POST', claims: { email: 'a@other.org', groups: ['partners'] } }), true, 'shop/p', 'any[1] (groups [partners])');
  expect(decide([p], { method: 'GET', claims: { email: 'a@example.com' } }), false, 'shop/p', 'method GET not in [POST]');
  expect(decide([p], { method: 'POST', claims: { email: 'a@other.org' } }), false, 'shop/p', 'all[1]: none of any matched (any[0]: domain other.org is not "example.com"; any[1]: no groups in the end user\'s claims (want has "partners"))');
  expect(decide([p], { method: 'POST' }), false, 'shop/p', `all[0]: ${NO_USER}`);

  // Deny anyone who is neither in eng nor an admin.
  const gate = policy('gate', { deny: [rule({ none: [rule({ claims: { 'org.team': 'eng' } }), rule({ groups: 'admins' })] })] });
  expect(decide([gate], { claims: { org: { team: 'ops' } } }, 'allow'), false, 'shop/gate', 'deny rule shop/gate deny[0] matched (none of 2 rules matched)');
  expect(decide([gate], { claims: { groups: ['admins'] } }, 'allow'), true, 'mesh-default', 'no deny rule matched');
  // When none does not match, the allow policy explains which entry matched.
  const only = policy('only', { allow: [rule({ none: [rule({ claims: { 'org.team': 'eng' } }), rule({ groups: 'admins' })] })] });
  expect(decide([only], { claims: { groups: ['admins'] } }), false, 'shop/only', 'no allow rule of shop/only matched: none[1] matched (groups [admins])');
});

// ---------- gateway targets ----------

test('gateway: Api-wide and operation policies; an Api without policies is allowed', () => {
  const whole = policy('whole', { target: { api: 'default/orders', ports: [] }, allow: [rule({ authenticated: true })] }, 'default');
  const getOrder = policy('get-only', { target: { api: 'default/orders', operation: 'get-order', ports: [] }, deny: [rule({ none: [rule({ groups: 'admins' })] })] }, 'default');
  const compiled = compileAccessPolicies([whole, getOrder], { defaultAccess: 'deny', trustDomain: TD });
  const gw = (r: Partial<AccessRequest>) => decideAccess(compiled, { sourceId: '', service: '', port: 443, method: 'GET', path: '/orders', api: 'default/orders', ...r });
  const user = { sub: 'u', groups: ['dev'] };

  // The list operation sees the Api-wide policy only.
  expect(gw({ operation: 'list', claims: user }), true, 'default/whole', 'allow rule default/whole allow[0] matched (end user u)');
  expect(gw({ operation: 'list' }), false, 'default/whole', `no allow rule of default/whole matched: ${NO_USER}`);
  // get-order sees both: the deny of get-only wins for a non-admin.
  expect(gw({ operation: 'get-order', claims: user }), false, 'default/get-only', 'deny rule default/get-only deny[0] matched (none of 1 rule matched)');
  expect(gw({ operation: 'get-order', claims: { sub: 'a', groups: ['admins'] } }), true, 'default/whole', 'allow rule default/whole allow[0] matched');
  // No operation on the request: only Api-wide policies.
  expect(gw({ claims: user }), true, 'default/whole', 'matched');

  const other = gw({ api: 'default/payments', operation: 'pay' });
  expect(other, true, 'gateway-default', 'no AccessPolicy targets Api default/payments operation pay: allowed');
  assert.deepEqual([other.wouldDeny, other.mode], [false, 'enforce']);
  // The gateway default is allow whatever the mesh default (that is for east-west calls).
  expect(gw({ api: 'default/payments', operation: undefined }), true, 'gateway-default', 'no AccessPolicy targets Api default/payments: allowed');

  // Only the get-order policy, on another operation: it does not apply.
  const opOnly = compileAccessPolicies([getOrder], { defaultAccess: 'deny', trustDomain: TD });
  const listOnly = decideAccess(opOnly, { sourceId: '', service: '', port: 443, method: 'GET', path: '/orders', api: 'default/orders', operation: 'list' });
  expect(listOnly, true, 'gateway-default', 'no AccessPolicy targets Api default/orders operation list: allowed');
  // Applicable but only deny rules that do not match: allowed by the gateway default.
  const admin = decideAccess(opOnly, { sourceId: '', service: '', port: 443, method: 'GET', path: '/o/1', api: 'default/orders', operation: 'get-order', claims: { groups: ['admins'] } });
  expect(admin, true, 'gateway-default', 'no deny rule matched and no AccessPolicy of Api default/orders operation get-order has allow rules');

  // Gateway policies are not mesh policies: a mesh call to a service named like the Api is not affected.
  const mesh = decideAccess(compiled, req({ service: 'default/orders' }));
  expect(mesh, false, 'mesh-default', 'no AccessPolicy targets default/orders');

  assert.equal(apiHasAccessPolicies(compiled, 'default/orders', 'list'), true);
  assert.equal(apiHasAccessPolicies(compiled, 'default/payments', 'list'), false);
  assert.equal(apiHasAccessPolicies(opOnly, 'default/orders', 'list'), false);
  assert.equal(apiHasAccessPolicies(opOnly, 'default/orders', 'get-order'), true);
  assert.equal(apiHasAccessPolicies(opOnly, 'orders', 'get-order'), false, 'the Api is looked up qualified');
});

test('gateway: an unqualified target Api is qualified with the policy namespace', () => {
  const p = policy('p', { target: { api: 'orders', ports: [] }, deny: [rule({ methods: ['DELETE'] })] }, 'shop');
  const compiled = compileAccessPolicies([p], { defaultAccess: 'allow', trustDomain: TD });
  assert.equal(apiHasAccessPolicies(compiled, 'shop/orders', 'x'), true);
  const d = decideAccess(compiled, { sourceId: '', service: '', port: 443, method: 'DELETE', path: '/', api: 'shop/orders', operation: 'x' });
  expect(d, false, 'shop/p', 'deny rule shop/p deny[0] matched (method DELETE)');
});

// ---------- properties over random rule trees ----------

const LEAVES: Partial<AccessRule>[] = [
  { authenticated: true },
  { authenticated: false },
  { user: 'alice' },
  { user: ['alice', 'bob'] },
  { email: { endsWith: '@example.com' } },
  { domain: 'EXAMPLE.com' },
  { groups: 'admins' },
  { groups: { hasAll: ['dev', 'ops'] } },
  { claims: { 'org.team': 'eng' } },
  { methods: ['GET'] },
  { methods: ['POST', 'DELETE'] },
  { paths: ['/admin/*'] },
  { sourceIp: ['10.0.0.0/8'] },
  { time: { after: '09:00', before: '17:00', timeZone: 'UTC' } },
  { sources: ['web'] },
  { ports: [8080] },
];
const arbLeaves = fc.array(fc.constantFrom(...LEAVES), { maxLength: 2 }).map((ls) => Object.assign({}, ...ls) as Partial<AccessRule>);
const { node: arbRule } = fc.letrec<{ node: AccessRule }>((tie) => ({
  node: fc.oneof(
    { maxDepth: 3, depthIdentifier: 'rule' },
    arbLeaves.map((l) => rule(l)),
    fc.tuple(arbLeaves, fc.constantFrom('all' as const, 'any' as const, 'none' as const), fc.array(tie('node'), { minLength: 1, maxLength: 2 })).map(([l, k, subs]) => rule({ ...l, [k]: subs })),
  ),
}));
const arbClaims = fc.option(
  fc.record({
    sub: fc.constantFrom('alice', 'bob', 'carol'),
    email: fc.constantFrom('a@example.com', 'b@EXAMPLE.COM', 'c@other.org', 'no-at'),
    groups: fc.subarray(['admins', 'dev', 'ops']),
    org: fc.constantFrom({ team: 'eng' }, { team: ['ops', 'eng'] }, { team: 'ops' }, {}),
  }, { requiredKeys: ['sub'] }),
  { nil: null },
);
const arbReq = fc.record({
  claims: arbClaims,
  method: fc.constantFrom('GET', 'POST', 'DELETE'),
  path: fc.constantFrom('/', '/items', '/admin', '/admin/x'),
  sourceIp: fc.constantFrom(undefined, '10.1.2.3', '192.168.1.1'),
  now: fc.constantFrom(at('2024-06-05T12:00:00Z'), at('2024-06-05T20:00:00Z')),
}).map((r) => req(r));

/** Whether one rule matches: alone as the allow rule of an enforcing policy. */
const ruleMatches = (r: AccessRule, q: AccessRequest) => decideAccess(compileAccessPolicies([policy('solo', { allow: [r] })], { defaultAccess: 'deny', trustDomain: TD }), q).allow;

const arbPolicy = fc.record({
  name: fc.constantFrom('p1', 'p2', 'p3'),
  mode: fc.constantFrom('enforce' as const, 'audit' as const),
  allow: fc.array(arbRule, { maxLength: 2 }),
  deny: fc.array(arbRule, { maxLength: 2 }),
}).map((p) => policy(p.name, { mode: p.mode, allow: p.allow, deny: p.deny }));

test('property: a matching deny rule of an enforcing policy always denies', () => {
  fc.assert(fc.property(fc.array(arbPolicy, { minLength: 1, maxLength: 3 }), arbReq, fc.constantFrom<AccessDefault>('allow', 'audit', 'deny'), (policies, q, def) => {
    const d = decideAccess(compileAccessPolicies(policies, { defaultAccess: def, trustDomain: TD }), q);
    const blocking = policies.filter((p) => p.spec.mode === 'enforce' && p.spec.deny.some((r) => ruleMatches(r, q)));
    if (blocking.length > 0) {
      assert.deepEqual([d.allow, d.wouldDeny, d.mode], [false, true, 'enforce']);
      assert.ok(blocking.some((p) => d.policy === `shop/${p.metadata.name}`), `${d.policy} should be one of the blocking policies`);
      assert.match(d.reasons[0], /^deny rule shop\/p\d deny\[\d\] matched \(/);
    }
    // Conversely, an allow by a rule (not a default) means no enforcing deny matched.
    if (d.allow && !d.wouldDeny && d.policy.startsWith('shop/')) assert.equal(blocking.length, 0);
  }), { numRuns: 300 });
});

test('property: adding an allow rule to a policy that has allow rules never turns allow into deny', () => {
  fc.assert(fc.property(fc.array(arbPolicy, { minLength: 1, maxLength: 3 }), fc.nat(), arbRule, arbReq, (policies, i, extra, q) => {
    const k = i % policies.length;
    fc.pre(policies[k].spec.allow.length > 0);
    const before = decideAccess(compileAccessPolicies(policies, { defaultAccess: 'deny', trustDomain: TD }), q);
    const widened = policies.map((p, j) => (j === k ? { ...p, spec: { ...p.spec, allow: [...p.spec.allow, extra] } } : p));
    const after = decideAccess(compileAccessPolicies(widened, { defaultAccess: 'deny', trustDomain: TD }), q);
    if (before.allow) assert.equal(after.allow, true);
    if (before.allow && !before.wouldDeny) assert.equal(after.wouldDeny, false);
  }), { numRuns: 300 });
});

test('property: { none: [R] } matches exactly when R does not', () => {
  fc.assert(fc.property(arbRule, arbReq, (r, q) => {
    assert.equal(ruleMatches(rule({ none: [r] }), q), !ruleMatches(r, q));
  }), { numRuns: 300 });
});

test('property: all: [A, B] is A and B; any: [A, B] is A or B; all: [A, B] is A and B merged when they share no criterion', () => {
  const present = (r: AccessRule) => Object.entries(r).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0)).map(([k]) => k);
  let merged = 0;
  fc.assert(fc.property(arbRule, arbRule, arbReq, (a, b, q) => {
    const ma = ruleMatches(a, q);
    const mb = ruleMatches(b, q);
    assert.equal(ruleMatches(rule({ all: [a, b] }), q), ma && mb);
    assert.equal(ruleMatches(rule({ any: [a, b] }), q), ma || mb);
    const ka = present(a);
    if (present(b).some((k) => ka.includes(k))) return;
    merged++;
    const both: AccessRule = { ...a };
    for (const k of present(b)) Object.assign(both, { [k]: b[k as keyof AccessRule] });
    assert.equal(ruleMatches(both, q), ma && mb, JSON.stringify(both));
  }), { numRuns: 300 });
  assert.ok(merged > 30, `the merged form was checked ${merged} times`);
});

// The decision cache: requests that share claims objects (as cached tokens and assertions do), at times on both sides
// of the time rules' boundaries, decided by one compiled set (the cache in play) and without it: always the same.
const CLAIMS_POOL: Array<Record<string, unknown> | null> = [
  null,
  { sub: 'alice', email: 'a@example.com', groups: ['admins'], org: { team: 'eng' } },
  { sub: 'bob', email: 'b@EXAMPLE.COM', groups: ['dev', 'ops'], org: { team: 'ops' } },
  { sub: 'carol', email: 'c@other.org', groups: [], exp: at('2024-06-05T17:00:30Z') / 1000 },
];
const arbCachedReq = fc.record({
  who: fc.nat({ max: CLAIMS_POOL.length - 1 }),
  method: fc.constantFrom('GET', 'POST'),
  path: fc.constantFrom('/items', '/admin/x'),
  sourceIp: fc.constantFrom(undefined, '10.1.2.3', '192.168.1.1'),
  sourceId: fc.constantFrom(WEB, `spiffe://${TD}/ns/shop/sa/batch`, ''),
  port: fc.constantFrom(8080, 9090),
  now: fc.constantFrom(
    at('2024-06-05T08:59:59.999Z'), at('2024-06-05T09:00:00Z'), at('2024-06-05T12:00:00Z'),
    at('2024-06-05T16:59:59.999Z'), at('2024-06-05T17:00:00Z'), at('2024-06-05T17:00:30Z'), at('2024-06-05T17:00:31Z'),
  ),
}).map((r) => req({ claims: CLAIMS_POOL[r.who], method: r.method, path: r.path, sourceIp: r.sourceIp, sourceId: r.sourceId, port: r.port, now: r.now }));

test('property: cached and uncached decisions agree (same claims objects, times across rule boundaries)', () => {
  fc.assert(fc.property(fc.array(arbPolicy, { minLength: 1, maxLength: 3 }), fc.array(arbCachedReq, { minLength: 1, maxLength: 12 }), (policies, seq) => {
    const compiled = compileAccessPolicies(policies, { defaultAccess: 'deny', trustDomain: TD });
    for (const q of [...seq, ...seq]) {
      const a = decideAccess(compiled, q);
      const b = decideAccessUncached(compiled, q);
      assert.deepEqual([a.allow, a.wouldDeny, a.mode, a.policy, a.reasons], [b.allow, b.wouldDeny, b.mode, b.policy, b.reasons]);
      assert.notEqual(a.id, b.id, 'a cached decision still gets its own id');
    }
  }), { numRuns: 300 });
});

test('a cached decision ends at the next time-rule boundary and at the end of a grant', () => {
  const compiled = compileAccessPolicies([policy('p', { allow: [rule({ time: { after: '09:00', before: '17:00', timeZone: 'UTC' } as AccessRule['time'] })] })], { defaultAccess: 'deny', trustDomain: TD });
  const claims = { sub: 'alice' };
  assert.equal(decideAccess(compiled, req({ claims, now: at('2024-06-05T16:59:59.999Z') })).allow, true);
  assert.equal(decideAccess(compiled, req({ claims, now: at('2024-06-05T17:00:00Z') })).allow, false, 'not the cached allow');
  const until = at('2024-06-05T12:30:00Z');
  const grant: AccessGrantResource = {
    apiVersion: 'lockgate.dev/v1alpha1', kind: 'AccessGrant', metadata: { name: 'ar-1', namespace: 'shop', labels: {} },
    spec: { request: 'ar-1', user: 'alice', target: { service: 'shop/app' }, methods: [], paths: [], from: '2024-06-05T12:00:00Z', until: new Date(until).toISOString(), approvedBy: ['bob'] },
  };
  const granted = compileAccessPolicies([policy('p', { allow: [rule({ grant: true })] })], { defaultAccess: 'deny', trustDomain: TD }, [grant]);
  assert.equal(decideAccess(granted, req({ claims, now: at('2024-06-05T11:59:59.999Z') })).allow, false, 'not yet');
  assert.equal(decideAccess(granted, req({ claims, now: at('2024-06-05T12:00:00Z') })).allow, true, 'from its start, not the cached deny');
  assert.equal(decideAccess(granted, req({ claims, now: until - 1 })).allow, true);
  const after = decideAccess(granted, req({ claims, now: until }));
  assert.equal(after.allow, false, 'exactly at its end, not the cached allow');
  assert.match(after.reasons.join(' '), /grant ar-1 ended at 2024-06-05T12:30:00\.000Z/);
});

test('a user repeating a call reuses the last decision only when every field of the request is the same', () => {
  const claims = { sub: 'alice', groups: ['dev'] };
  const now = at('2024-06-05T12:00:00Z');
  const base: AccessRequest = { sourceId: WEB, service: 'shop/app', port: 8080, method: 'GET', path: '/items', claims, sourceIp: '10.1.2.3', now };
  const other: Array<[string, AccessRule, Partial<AccessRequest>]> = [
    ['sourceId', rule({ sources: ['web'] }), { sourceId: `spiffe://${TD}/ns/shop/sa/batch` }],
    ['port', rule({ ports: [8080] }), { port: 9090 }],
    ['method', rule({ methods: ['GET'] }), { method: 'POST' }],
    ['path', rule({ paths: ['/items'] }), { path: '/admin' }],
    ['sourceIp', rule({ sourceIp: ['10.0.0.0/8'] }), { sourceIp: '192.168.1.1' }],
  ];
  for (const [field, allow, change] of other) {
    const compiled = compileAccessPolicies([policy('p', { allow: [allow] })], { defaultAccess: 'deny', trustDomain: TD });
    // Alternate, so each call follows one that differs only in `field`.
    for (let i = 0; i < 4; i++) {
      assert.equal(decideAccess(compiled, base).allow, true, `${field}: the matching request (round ${i})`);
      assert.equal(decideAccess(compiled, { ...base, ...change }).allow, false, `${field}: changed, not the cached allow (round ${i})`);
    }
  }
  // Gateway: the Api and the operation are part of it too.
  const gw = compileAccessPolicies([
    policy('orders', { target: { ports: [], api: 'shop/orders' }, allow: [rule({ groups: 'dev' })] }),
    policy('admin', { target: { ports: [], api: 'shop/admin' }, allow: [rule({ groups: 'admins' })] }),
    policy('op', { target: { ports: [], api: 'shop/ops', operation: 'read' }, allow: [rule({ groups: 'dev' })] }),
    policy('op2', { target: { ports: [], api: 'shop/ops', operation: 'write' }, allow: [rule({ groups: 'admins' })] }),
  ], { defaultAccess: 'deny', trustDomain: TD });
  const g = (api: string, operation: string) => decideAccess(gw, { sourceId: '', service: '', port: 443, method: 'GET', path: '/x', api, operation, claims, now }).allow;
  for (let i = 0; i < 3; i++) {
    assert.deepEqual([g('shop/orders', ''), g('shop/admin', ''), g('shop/ops', 'read'), g('shop/ops', 'write')], [true, false, true, false]);
  }
});

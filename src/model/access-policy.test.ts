// Tests for AccessPolicy validation: the rule grammar's conveniences folded into one shape, end-user criteria,
// gateway (Api) targets, and every problem reported with file:line:col and path (through the checked loader, for cel).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblems } from './load-config.ts';
import { parseCheckedConfig } from '../policy/load-checked.ts';
import { apiHasAccessPolicies, compileAccessPolicies, decideAccess } from '../policy/access-decision.ts';

const HEAD = 'apiVersion: lockgate.dev/v1alpha1';
/** One document; `spec` lines are given without indentation and indented by two. */
const doc = (kind: string, meta: string, ...spec: string[]) =>
  [HEAD, `kind: ${kind}`, `metadata: ${meta}`, ...(spec.length ? ['spec:', ...spec.map((l) => `  ${l}`)] : [])].join('\n') + '\n';
/** A Backend, an Api with two operations and a MeshService: 19 lines, so the first AccessPolicy starts on line 21. */
const BASE = [
  doc('Backend', '{ name: up }', 'url: http://127.0.0.1:9'),
  doc('Api', '{ name: orders }', 'path: /orders', 'backend: up', 'operations:', '  - { name: get-order, methods: [GET], urlTemplate: "/{id}" }', '  - { name: list-orders, methods: [GET], urlTemplate: "/" }'),
  doc('MeshService', '{ name: inventory }'),
];
/** An AccessPolicy `p` whose spec starts on line 25 (its first spec line). */
const ap = (...spec: string[]) => doc('AccessPolicy', '{ name: p }', ...spec);
const load = (...docs: string[]) => parseCheckedConfig([...BASE, ...docs].join('---\n'), 'a.yaml');
const lines = (...docs: string[]) => formatProblems(load(...docs).problems).split('\n').filter(Boolean);

test('the base config is valid and the first AccessPolicy spec line is line 25', () => {
  const text = [...BASE, ap('target: { service: inventory }')].join('---\n');
  assert.equal(text.split('\n')[24], '  target: { service: inventory }');
  assert.deepEqual(load(ap('target: { service: inventory }')).problems, []);
});

test('singular source, method and path, claim/<path> keys, sourceIp and days fold into the normalized rule, nested rules too', () => {
  const { config, problems } = load(
    ap(
      'target: { service: inventory }',
      'mode: audit',
      'allow:',
      '  - source: orders',
      '    method: GET',
      '    path: /x/*',
      '    claim/org.team: eng',
      '    claim/level: { hasAny: ["3", "4"] }',
      '    sourceIp: 10.0.0.0/8',
      '    time: { days: mon-fri, after: "09:00", before: "17:00" }',
      '  - method: [GET, HEAD]',
      '    sourceIp: [10.0.0.0/8, "2001:db8::/32"]',
      '    time: { days: [sat, sun], from: 2024-06-01, until: 2024-07-01, timeZone: Europe/Berlin }',
      '    authenticated: true',
      '    user: { startsWith: svc- }',
      '    email: [a@example.com, b@example.com]',
      '    domain: Example.COM',
      '    groups: { hasAll: [dev, ops] }',
      'deny:',
      '  - all:',
      '      - source: shop/web',
      '        claim/org.site: berlin',
      '      - any: [{ path: /admin/* }, { none: [{ groups: admins, method: DELETE }] }]',
    ),
  );
  assert.deepEqual(problems, []);
  const spec = config!.accessPolicies[0].spec;
  assert.deepEqual(spec.target, { service: 'default/inventory', ports: [] });
  assert.equal(spec.mode, 'audit');
  assert.deepEqual(spec.allow[0], {
    sources: ['default/orders'],
    methods: ['GET'],
    paths: ['/x/*'],
    ports: [],
    claims: { 'org.team': 'eng', level: { hasAny: ['3', '4'] } },
    sourceIp: ['10.0.0.0/8'],
    time: { days: ['mon-fri'], after: '09:00', before: '17:00', timeZone: 'UTC' },
  });
  assert.deepEqual(spec.allow[1], {
    sources: [],
    methods: ['GET', 'HEAD'],
    paths: [],
    ports: [],
    sourceIp: ['10.0.0.0/8', '2001:db8::/32'],
    time: { days: ['sat', 'sun'], from: '2024-06-01', until: '2024-07-01', timeZone: 'Europe/Berlin' },
    authenticated: true,
    user: { startsWith: 'svc-' },
    email: ['a@example.com', 'b@example.com'],
    domain: 'Example.COM',
    groups: { hasAll: ['dev', 'ops'] },
  });
  const empty = { sources: [], methods: [], paths: [], ports: [] };
  assert.deepEqual(spec.deny, [
    {
      ...empty,
      all: [
        { ...empty, sources: ['shop/web'], claims: { 'org.site': 'berlin' } },
        {
          ...empty,
          any: [
            { ...empty, paths: ['/admin/*'] },
            { ...empty, none: [{ ...empty, methods: ['DELETE'], groups: 'admins' }] },
          ],
        },
      ],
    },
  ]);
  // No singular or claim/ key is left behind, at any depth.
  const keys = JSON.stringify(spec);
  for (const k of ['"source"', '"method"', '"path"', '"claim/']) assert.ok(!keys.includes(k), `${k} left in ${keys}`);
  assert.equal(spec.expressions, undefined, 'no cel rule, no expression sites');
});

test('the validated config decides as written: the folded rules reach the engine', () => {
  const { config, problems } = load(
    ap('target: { api: orders, operation: get-order }', 'allow:', '  - claim/org.team: eng', '    domain: Example.COM', '    method: GET'),
  );
  assert.deepEqual(problems, []);
  const spec = config!.accessPolicies[0].spec;
  assert.deepEqual(spec.target, { api: 'default/orders', operation: 'get-order', ports: [] });
  const compiled = compileAccessPolicies(config!.accessPolicies, { defaultAccess: config!.mesh.spec.defaultAccess, trustDomain: config!.mesh.spec.trustDomain });
  assert.equal(apiHasAccessPolicies(compiled, 'default/orders', 'get-order'), true);
  assert.equal(apiHasAccessPolicies(compiled, 'default/orders', 'list-orders'), false);
  const gw = { sourceId: '', service: '', port: 443, method: 'GET', path: '/orders/1', api: 'default/orders', operation: 'get-order' };
  const ok = decideAccess(compiled, { ...gw, claims: { email: 'a@example.com', org: { team: 'eng' } } });
  assert.deepEqual([ok.allow, ok.policy], [true, 'default/p']);
  const no = decideAccess(compiled, { ...gw, claims: { email: 'a@example.com', org: { team: 'ops' } } });
  assert.deepEqual([no.allow, no.policy], [false, 'default/p']);
  assert.match(no.reasons[0], /claim\/org\.team \[ops\] does not have "eng"/);
});

test('cel rules are collected with their positions, nested ones included', () => {
  const { config, problems } = load(
    ap('target: { service: inventory }', 'allow:', '  - cel: context.Request.Method == "GET"', '  - any:', '      - cel: "\\"admins\\" in context.User.groups"'),
  );
  assert.deepEqual(problems, []);
  assert.deepEqual(config!.accessPolicies[0].spec.expressions, [
    { source: 'context.Request.Method == "GET"', file: 'a.yaml', line: 27, col: 12, path: 'spec.allow[0].cel' },
    { source: '"admins" in context.User.groups', file: 'a.yaml', line: 29, col: 16, path: 'spec.allow[1].any[0].cel' },
  ]);
});

test('rule problems: unknown criteria, claim keys, time, sourceIp, match maps, singular with plural', () => {
  assert.deepEqual(
    lines(
      ap(
        'target: { service: inventory }',
        'allow:',
        '  - usr: alice',
        '  - claim/: x',
        '  - claim/a..b: x',
        '  - time: { after: "25:00", timeZone: Mars/Base, from: 2024-02-30 }',
        '  - time: { from: 2024-06-10, until: 2024-06-01 }',
        '  - sourceIp: 10.0.0.0/33',
        '  - sourceIp: { cidr: 10.0.0.0/8 }',
        '  - user: { is: a, startsWith: b }',
        '  - method: GET',
        '    methods: [POST]',
        '  - groups: {}',
        '  - time: { after: "09:00", before: "09:00", days: funday }',
        '  - { source: orders, sources: [web] }',
        '  - { path: /a, paths: [/b] }',
        '  - { method: get, domain: [] }',
        '  - { email: 5, claim/x: { has: a, hasAny: [b] } }',
        '  - { all: [{ domian: x }], none: [] }',
      ),
    ),
    [
      'a.yaml:27:7: unknown field "usr" in AccessPolicy.spec.allow[0] (did you mean "user"?) (spec.allow[0].usr)',
      'a.yaml:28:7: "claim/": write claim/<name> or claim/<name>.<name> (a dotted path into the claims) (spec.allow[1]["claim/"])',
      'a.yaml:29:7: "claim/a..b": write claim/<name> or claim/<name>.<name> (a dotted path into the claims) (spec.allow[2]["claim/a..b"])',
      'a.yaml:30:22: "25:00" is not a time of day "HH:MM" (24 h, e.g. "08:30") (spec.allow[3].time.after)',
      'a.yaml:30:41: "Mars/Base" is not a time zone (IANA names such as "UTC", "Europe/Berlin", "America/New_York") (spec.allow[3].time.timeZone)',
      'a.yaml:30:58: "2024-02-30" is not a date "YYYY-MM-DD" (spec.allow[3].time.from)',
      'a.yaml:31:40: until must be after from (spec.allow[4].time.until)',
      'a.yaml:32:17: "10.0.0.0/33" is not an IP address or CIDR ("10.0.0.0/8", "2001:db8::/32") (spec.allow[5].sourceIp)',
      'a.yaml:33:17: expected a string or a list, got a mapping (spec.allow[6].sourceIp)',
      'a.yaml:34:13: AccessPolicy.spec.allow[7].user needs exactly one of "is" or "in" or "startsWith" or "endsWith" or "contains", got 2 (spec.allow[7].user)',
      'a.yaml:35:7: use either method or methods, not both (spec.allow[8].method)',
      'a.yaml:37:15: AccessPolicy.spec.allow[9].groups needs exactly one of "has" or "hasAny" or "hasAll" (spec.allow[9].groups)',
      'a.yaml:38:39: before equals after: the window is empty (spec.allow[10].time.before)',
      'a.yaml:38:54: "funday" is not a day ("mon"…"sun") or a range of days ("mon-fri") (spec.allow[10].time.days)',
      'a.yaml:39:9: use either source or sources, not both (spec.allow[11].source)',
      'a.yaml:40:9: use either path or paths, not both (spec.allow[12].path)',
      'a.yaml:41:17: "get": methods are upper-case; write "GET" (spec.allow[13].method)',
      'a.yaml:41:30: needs at least 1 item (spec.allow[13].domain)',
      'a.yaml:42:16: expected a string, got 5 (spec.allow[14].email)',
      'a.yaml:42:28: AccessPolicy.spec.allow[14]["claim/x"] needs exactly one of "has" or "hasAny" or "hasAll", got 2 (spec.allow[14]["claim/x"])',
      'a.yaml:43:17: unknown field "domian" in AccessPolicy.spec.allow[15].all[0] (did you mean "domain"?) (spec.allow[15].all[0].domian)',
      'a.yaml:43:37: needs at least 1 item (spec.allow[15].none)',
    ],
  );
});

test('target problems: service and api, neither, unknown Api or operation, ports or operation where they do not apply', () => {
  const one = (target: string) => lines(ap(`target: ${target}`));
  assert.deepEqual(one('{ service: inventory, api: orders }'), ['a.yaml:25:11: AccessPolicy.spec.target needs exactly one of "service" or "api", got 2 (spec.target)']);
  assert.deepEqual(one('{ ports: [80] }'), ['a.yaml:25:11: AccessPolicy.spec.target needs exactly one of "service" or "api" (spec.target)']);
  assert.deepEqual(one('{ api: ordrs }'), ['a.yaml:25:18: Api "ordrs" not found in namespace "default" (did you mean "orders"?) (spec.target.api)']);
  assert.deepEqual(one('{ api: orders, operation: get-ordr }'), ['a.yaml:25:37: operation "get-ordr" not found in Api "default/orders" (did you mean "get-order"?) (spec.target.operation)']);
  assert.deepEqual(one('{ api: orders, ports: [80] }'), ['a.yaml:25:33: ports apply to a MeshService target; an Api target has operations (spec.target.ports)']);
  assert.deepEqual(one('{ service: inventory, operation: get-order }'), ['a.yaml:25:44: operation needs api (the Api it belongs to) (spec.target.operation)']);
  // An Api of another namespace is not found from the policy's namespace.
  assert.deepEqual(lines(doc('AccessPolicy', '{ name: p, namespace: shop }', 'target: { api: orders }')), [
    'a.yaml:25:18: Api "orders" not found in namespace "shop" (spec.target.api)',
  ]);
  // A valid Api target: qualified, with no ports.
  const { config, problems } = load(ap('target: { api: orders }', 'deny: [{ method: DELETE }]'));
  assert.deepEqual(problems, []);
  assert.deepEqual(config!.accessPolicies[0].spec.target, { api: 'default/orders', ports: [] });
});

test('cel problems: must compile and be a condition, at the position of the error', () => {
  assert.deepEqual(
    lines(
      ap(
        'target: { service: inventory }',
        'allow:',
        '  - cel: "1 +"',
        '  - cel: "1 + 2"',
        '  - all:',
        '      - cel: context.Request.Method',
        '  - cel: true && nope(1)',
        '  - cel: context.User["team"] == "eng"',
      ),
    ),
    [
      'a.yaml:27:15: expression: Unexpected token: EOF (spec.allow[0].cel)',
      'a.yaml:28:12: expression: a cel rule must be a condition (bool), this one is int (spec.allow[1].cel)',
      'a.yaml:30:16: expression: a cel rule must be a condition (bool), this one is string (spec.allow[2].all[0].cel)',
      "a.yaml:31:20: expression: found no matching overload for 'nope(int)' (spec.allow[3].cel)",
    ],
  );
});

test('cel in a block scalar (| and >-): problems point into the content, on the line and column of the error', () => {
  assert.deepEqual(
    lines(
      ap(
        'target: { service: inventory }',
        'allow:',
        '  - cel: |',
        '      context.Request.Method == "GET" &&',
        '',
        '        nope(1)',
        '  - cel: >-',
        '      1 +',
      ),
    ),
    [
      // Line 27 is the `|` header: the content starts on 28 at column 9 (indented 8); `nope` is on 30, column 11.
      "a.yaml:30:11: expression: found no matching overload for 'nope(int)' (spec.allow[0].cel)",
      // After `1 +` (column 9 to 11): the end of the expression, column 12 of line 32.
      'a.yaml:32:12: expression: Unexpected token: EOF (spec.allow[1].cel)',
    ],
  );
});

test('a criterion with no value is a problem, not an empty rule that allows everyone; rule ports need a MeshService target', () => {
  const out = lines(ap('target: { api: orders }', 'allow:', '  - sources:', '  - claim/groups:', '  - any: [{ email: }]', '  - { ports: [8080] }'));
  assert.deepEqual(out.map((l) => l.replace(/^a\.yaml:\d+:\d+: /, '')), [
    'sources has no value (remove it, or give the value to match) (spec.allow[0].sources)',
    'claim/groups has no value (remove it, or give the value to match) (spec.allow[1]["claim/groups"])',
    'email has no value (remove it, or give the value to match) (spec.allow[2].any[0].email)',
    'ports apply to MeshService targets; the gateway decides by Api and operation (spec.allow[3].ports)',
  ]);
});

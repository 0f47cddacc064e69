import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblems, parseConfigText } from './load-config.ts';

const doc = (kind: string, name: string, spec: string): string => `apiVersion: lockgate.dev/v1alpha1\nkind: ${kind}\nmetadata: { name: ${name} }\nspec:\n${spec}\n`;
const base = [
  doc('Backend', 'up', '  url: "http://127.0.0.1:9"'),
  doc('Api', 'orders', '  path: /orders\n  backend: up\n  operations:\n    - { name: get-order, methods: [GET], urlTemplate: "/{id}" }'),
  doc('Product', 'gold', '  apis: [orders]'),
];
const load = (policies: string[]) => parseConfigText([...base, ...policies].join('---\n'), 'c.yaml');

test('an ApiPolicy decodes into entries with positions, expressions and nested lists', () => {
  const r = load([
    doc('ApiPolicy', 'p', `  scope: { api: orders, operation: get-order }
  inbound:
    - base: {}
    - set-header: { name: x-ip, value: "@(context.Request.IpAddress)" }
    - choose:
        when:
          - condition: context.Request.Method == "GET"
            policies:
              - set-header: { name: x-get, value: "1" }
        otherwise:
          - return-response: { status: 405 }`),
  ]);
  assert.deepEqual(r.problems, []);
  const p = r.config!.apiPolicies[0];
  assert.equal(p.spec.scope.api, 'default/orders');
  const inbound = p.spec.inbound!;
  assert.deepEqual(inbound.map((e) => e.name), ['base', 'set-header', 'choose']);
  assert.equal(inbound[1].line, 29);
  assert.equal(inbound[1].path, 'spec.inbound[1]');
  const when = (inbound[2].attrs.when as Array<{ policies: Array<{ name: string; path: string }> }>)[0];
  assert.equal(when.policies[0].name, 'set-header');
  assert.equal(when.policies[0].path, 'spec.inbound[2].choose.when[0].policies[0]');
  assert.equal((inbound[2].attrs.otherwise as Array<{ name: string }>)[0].name, 'return-response');
  // Every expression is found with its place: the @(…) value and the bare condition.
  assert.deepEqual(
    p.spec.expressions.map((e) => e.source),
    ['context.Request.IpAddress', 'context.Request.Method == "GET"'],
  );
  assert.ok(p.spec.expressions.every((e) => e.file === 'c.yaml' && e.line > 0 && e.col > 0));
});

test('placement rules: section, base once and only at the top, scope shape', () => {
  const out = formatProblems(
    load([
      doc('ApiPolicy', 'p', `  scope: { api: orders, global: true }
  inbound:
    - base: {}
    - base: {}
  outbound:
    - rewrite-uri: { template: /x }
    - retry:
        condition: "true"
        count: 2
        interval: 1s
        policies:
          - base: {}`),
    ]).problems,
  );
  assert.match(out, /scope needs exactly one of global: true, product or api \(got global and api\)/);
  assert.match(out, /c\.yaml:\d+:\d+: "base" may appear once per section/);
  assert.match(out, /rewrite-uri is not allowed in outbound \(allowed in inbound\)/);
  assert.match(out, /"base" belongs directly in a section, not inside another policy/);
});

test('unknown policies, attributes and references get suggestions', () => {
  const out = formatProblems(
    load([
      doc('ApiPolicy', 'p', `  scope: { api: orders, operation: get-ordr }
  inbound:
    - set-headr: { name: x }
    - set-header: { nme: x }`),
      doc('ApiPolicy', 'q', '  scope: { product: gol }'),
    ]).problems,
  );
  assert.match(out, /unknown field "set-headr" .*did you mean "set-header"/);
  assert.match(out, /unknown field "nme" .*did you mean "name"/);
  assert.match(out, /operation "get-ordr" not found in Api "default\/orders" \(did you mean "get-order"\?\)/);
  assert.match(out, /Product "gol" not found in namespace "default" \(did you mean "gold"\?\)/);
  // The misspelt policy name is one problem, not also a list of every policy.
  assert.doesNotMatch(out, /needs exactly one of "base"/);
});

test('two ApiPolicies at one scope are a problem; different scopes are fine', () => {
  const dup = formatProblems(load([doc('ApiPolicy', 'a', '  scope: { global: true }'), doc('ApiPolicy', 'b', '  scope: { global: true }')]).problems);
  assert.match(dup, /another ApiPolicy already attaches at global \(c\.yaml:\d+:\d+\); merge them into one/);
  const ok = load([
    doc('ApiPolicy', 'a', '  scope: { global: true }'),
    doc('ApiPolicy', 'b', '  scope: { product: gold }'),
    doc('ApiPolicy', 'c', '  scope: { api: orders }'),
    doc('ApiPolicy', 'd', '  scope: { api: orders, operation: get-order }'),
  ]);
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.config!.apiPolicies.length, 4);
});

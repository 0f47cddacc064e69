import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblems, parseConfigText } from './load-config.ts';
import { asWritten, redactSubstituted } from './named-values.ts';
import type { Config } from './types.ts';

const doc = (kind: string, name: string, spec: string): string => `apiVersion: lockgate.dev/v1alpha1\nkind: ${kind}\nmetadata: { name: ${name} }\nspec:\n${spec}\n`;
const base = [
  doc('Backend', 'up', '  url: "http://127.0.0.1:9"'),
  doc('Api', 'orders', '  path: /orders\n  backend: up\n  operations:\n    - { name: get-order, methods: [GET], urlTemplate: "/{id}" }'),
];
const policy = (inbound: string): string => doc('ApiPolicy', 'p', `  scope: { api: orders }\n  inbound:\n${inbound}`);
const text = (...docs: string[]): string => [...base, ...docs].join('---\n');
const header = (config: Config, i = 0): unknown => config.apiPolicies[0].spec.inbound![i].attrs.value;

test('an unknown {{name}} is a problem at its file, line and column, with a suggestion', () => {
  const r = parseConfigText(text(
    doc('NamedValue', 'api-key', '  value: plain'),
    policy('    - set-header: { name: x-key, value: "{{api-kee}}" }'),
  ), 'c.yaml');
  // Line 28 of the joined text: the set-header entry; column 41: the quoted scalar holding the reference.
  assert.equal(formatProblems(r.problems), 'c.yaml:28:41: {{api-kee}}: NamedValue "api-kee" not found in namespace "default" (did you mean "api-key"?)');
});

test('plain, env and secret values are substituted on load; views show what was written', () => {
  const written = text(
    doc('NamedValue', 'plain', '  value: hello'),
    doc('NamedValue', 'from-env', '  env: UPSTREAM_TOKEN'),
    doc('NamedValue', 'from-secret', '  secret: backend-password'),
    doc('NamedValue', 'pinned', '  secret: backend-password\n  version: 1'),
    policy([
      '    - set-header: { name: x-a, value: "{{plain}}-{{plain}}" }',
      '    - set-header: { name: x-b, value: "Bearer {{from-env}}" }',
      '    - set-header: { name: x-c, value: "{{from-secret}}" }',
      '    - set-header: { name: x-d, value: "{{default/pinned}}" }',
    ].join('\n')),
  );
  // Without inputs (validate, the admin API): references are checked, nothing is substituted.
  const checked = parseConfigText(written, 'c.yaml');
  assert.deepEqual(checked.problems, []);
  assert.equal(header(checked.config!), '{{plain}}-{{plain}}');
  const inputs = { env: { UPSTREAM_TOKEN: 'tok-123' }, secrets: { 'backend-password': 's3cret-v2', 'backend-password@1': 's3cret-v1' } };
  const r = parseConfigText(written, 'c.yaml', inputs);
  assert.deepEqual(r.problems, []);
  const c = r.config!;
  assert.deepEqual([0, 1, 2, 3].map((i) => header(c, i)), ['hello-hello', 'Bearer tok-123', 's3cret-v2', 's3cret-v1']);
  // The admin port's view of the running config: the written form only.
  const view = JSON.stringify(asWritten(c, { apiPolicies: c.apiPolicies, backends: c.backends }));
  assert.ok(!view.includes('s3cret') && !view.includes('tok-123'), view);
  assert.ok(view.includes('{{from-secret}}'));
  // A changed secret value is a new config version (so a node reloads), though the text is the same.
  const again = parseConfigText(written, 'c.yaml', inputs).config!;
  const rotated = parseConfigText(written, 'c.yaml', { ...inputs, secrets: { ...inputs.secrets, 'backend-password': 's3cret-v3' } }).config!;
  assert.equal(again.version, c.version);
  assert.notEqual(rotated.version, c.version);
  assert.ok(!c.version.includes('s3cret'));
});

test('a value that cannot be had is a problem at the NamedValue, never quoting a value', () => {
  const written = text(
    doc('NamedValue', 'from-env', '  env: NOT_SET_HERE'),
    doc('NamedValue', 'from-secret', '  secret: missing'),
    doc('NamedValue', 'multi-line', '  secret: pem'),
    policy('    - set-header: { name: x-a, value: "{{from-env}}{{from-secret}}{{multi-line}}" }'),
  );
  const r = parseConfigText(written, 'c.yaml', { env: {}, secrets: { pem: 'line-one\nline-two' } });
  assert.deepEqual(formatProblems(r.problems).split('\n'), [
    'c.yaml:20:8: environment variable NOT_SET_HERE is not set on this node (spec.env)',
    'c.yaml:26:11: secret "missing" is not available from the control plane (missing, disabled, or not readable there) (spec.secret)',
    'c.yaml:32:11: the value of NamedValue "default/multi-line" holds a control character (a line break, NUL, …); only tab is allowed (spec.secret)',
  ]);
  assert.ok(!JSON.stringify(r.problems).includes('line-one'));
  // A standalone gateway has no secret store.
  const standalone = parseConfigText(written, 'c.yaml', { env: { NOT_SET_HERE: 'x' } });
  assert.match(formatProblems(standalone.problems), /secret "missing" needs a control plane .* use spec\.env here/);
});

test('references inside expressions and in kinds that are not substituted are problems', () => {
  const r = parseConfigText(text(
    doc('NamedValue', 'k', '  value: v'),
    policy('    - set-header: { name: x-a, value: "@(\'{{k}}\')" }'),
  ).replace('path: /orders', 'path: /orders/{{k}}'), 'c.yaml');
  const out = formatProblems(r.problems);
  assert.match(out, /c\.yaml:\d+:\d+: \{\{k\}\}: named values are substituted only in ApiPolicy, PolicyFragment, Backend, IdentityProvider documents/);
  assert.match(out, /named values \(\{\{name\}\}\) cannot be used inside @\(\.\.\.\) expressions/);
});

test('NamedValue documents: exactly one source, version only with secret', () => {
  const r = parseConfigText([
    doc('NamedValue', 'two', '  value: a\n  env: B'),
    doc('NamedValue', 'ver', '  value: a\n  version: 2'),
  ].join('---\n'), 'n.yaml');
  const out = formatProblems(r.problems);
  assert.match(out, /NamedValue\.spec needs exactly one of "value" or "secret" or "env", got 2/);
  assert.match(out, /`version` goes with `secret`/);
});

test('data-plane messages that quote a substituted env or secret value are redacted to its {{name}}', () => {
  const written = text(
    doc('NamedValue', 'plain', '  value: plain-value'),
    doc('NamedValue', 'token', '  env: TOKEN'),
    policy('    - set-header: { name: x-a, value: "{{plain}} {{token}}" }'),
  );
  const c = parseConfigText(written, 'c.yaml', { env: { TOKEN: 'tok-SECRET-42' } }).config!;
  assert.equal(header(c), 'plain-value tok-SECRET-42');
  const message = 'c.yaml:20:5: set-header: "tok-SECRET-42" is not allowed here (also plain-value)';
  assert.equal(redactSubstituted(message, undefined, c), 'c.yaml:20:5: set-header: "{{default/token}}" is not allowed here (also plain-value)');
  // Another config (no substitution) changes nothing.
  assert.equal(redactSubstituted(message, parseConfigText(written, 'c.yaml').config), message);
});

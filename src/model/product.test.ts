import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblems, parseConfigText } from './load-config.ts';

const doc = (kind: string, name: string, spec: string): string => `apiVersion: lockgate.dev/v1alpha1\nkind: ${kind}\nmetadata: { name: ${name} }\nspec: ${spec}\n`;
const base = [
  doc('Backend', 'up', '{ url: "http://127.0.0.1:9" }'),
  doc('Api', 'orders', '{ path: /orders, backend: up, subscriptionRequired: true }'),
  doc('Api', 'users', '{ path: /users, backend: up }'),
];

test('a Product gets API Management\'s defaults and qualified Api references', () => {
  const r = parseConfigText([...base, doc('Product', 'starter', '{ apis: [orders, default/users] }')].join('---\n'), 'c.yaml');
  assert.deepEqual(r.problems, []);
  const p = r.config!.products[0];
  assert.deepEqual(p.spec.apis, ['default/orders', 'default/users']);
  assert.equal(p.spec.subscriptionRequired, true);
  assert.equal(p.spec.approvalRequired, false);
  assert.equal(p.spec.state, 'published');
  const api = r.config!.apis.find((a) => a.metadata.name === 'users')!;
  assert.equal(api.spec.subscriptionRequired, false, 'Lockgate Apis are open until they opt in');
  assert.deepEqual(api.spec.subscriptionKeyParameterNames, { header: 'Ocp-Apim-Subscription-Key', query: 'subscription-key' });
});

test('an unknown Api in a product is reported at its position, with a suggestion', () => {
  const text = [...base, doc('Product', 'starter', '{ apis: [order] }')].join('---\n');
  const out = formatProblems(parseConfigText(text, 'c.yaml').problems);
  assert.match(out, /^c\.yaml:\d+:\d+: .*Api "order" not found in namespace "default".*orders/m);
});

test('an Api can be in at most one open product', () => {
  const text = [...base, doc('Product', 'free', '{ apis: [orders], subscriptionRequired: false }'), doc('Product', 'trial', '{ apis: [orders], subscriptionRequired: false }')].join('---\n');
  const out = formatProblems(parseConfigText(text, 'c.yaml').problems);
  assert.match(out, /Api "orders" is already in open product "free"; an Api can be in at most one open product/);
  // One open and one protected product is fine.
  const ok = [...base, doc('Product', 'free', '{ apis: [orders], subscriptionRequired: false }'), doc('Product', 'paid', '{ apis: [orders] }')].join('---\n');
  assert.deepEqual(parseConfigText(ok, 'c.yaml').problems, []);
});

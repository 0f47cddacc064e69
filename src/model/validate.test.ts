// Tests for checks across fields and resources: duplicates, references, route conflicts, port clashes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblems, parseConfigText } from './load-config.ts';

const HEAD = 'apiVersion: lockgate.dev/v1alpha1';
const doc = (kind: string, meta: string, spec: string) => `${HEAD}\nkind: ${kind}\nmetadata: ${meta}\nspec:\n${spec}\n`;
const backend = (name: string, ns = 'default') => doc('Backend', `{ name: ${name}, namespace: ${ns} }`, '  url: http://127.0.0.1:1');
const lines = (...docs: string[]) => formatProblems(parseConfigText(docs.join('---\n'), 'c.yaml').problems).split('\n');

test('duplicate names within a kind and namespace; the same name in another namespace or kind is fine', () => {
  const out = lines(
    backend('orders'),
    backend('orders', 'shop'),
    backend('orders'),
    doc('Api', '{ name: orders }', '  backend: orders'),
  );
  assert.deepEqual(out, ['c.yaml:15:19: duplicate Backend "default/orders" (first defined at c.yaml:2:1) (metadata.name)']);
});

test('at most one Gateway', () => {
  const out = lines(doc('Gateway', '{ name: a }', '  maxHops: 3'), doc('Gateway', '{ name: b }', '  maxHops: 3'));
  assert.deepEqual(out, ['c.yaml:8:7: only one Gateway is allowed (first defined at c.yaml:2:1) (kind)']);
});

test('Backend references resolve in the Api namespace or as namespace/name, with suggestions', () => {
  const out = lines(
    backend('orders', 'shop'),
    backend('billing', 'finance'),
    doc('Api', '{ name: a, namespace: shop }', '  backend: order\n  operations:\n    - { urlTemplate: /pay, backend: finance/billing }\n    - { urlTemplate: /x, backend: billing }'),
  );
  assert.deepEqual(out, [
    'c.yaml:17:12: Backend "order" not found in namespace "shop" (did you mean "orders"?) (spec.backend)',
    'c.yaml:20:35: Backend "billing" not found in namespace "shop" (spec.operations[1].backend)',
  ]);
  const ok = parseConfigText(
    [backend('orders', 'shop'), backend('billing', 'finance'), doc('Api', '{ name: a, namespace: shop }', '  backend: orders\n  operations: [{ urlTemplate: /pay, backend: finance/billing }]')].join('---\n'),
    'c.yaml',
  );
  assert.equal(ok.config?.apis[0].spec.backend, 'shop/orders');
  assert.equal(ok.config?.apis[0].spec.operations[0].backend, 'finance/billing');
});

test('two Apis claiming the same host, path, method and template conflict, whatever the parameter names', () => {
  const out = lines(
    backend('b'),
    doc('Api', '{ name: one }', '  hostnames: [api.example.com]\n  path: /orders\n  backend: b\n  operations: [{ urlTemplate: "/items/{id}", methods: [GET, POST] }]'),
    doc('Api', '{ name: two }', '  hostnames: [API.example.com, other.example.com]\n  path: /orders/items\n  backend: b\n  operations: [{ urlTemplate: "/{itemId}", methods: [POST] }]'),
  );
  assert.deepEqual(out, [
    'c.yaml:23:31: route conflict: POST api.example.com/orders/items/{itemId} is already claimed by Api "default/one" operation "get-post-items-id" (c.yaml:8) (spec.operations[0].urlTemplate)',
  ]);
});

test('no conflict for different methods, hosts or templates; Apis without operations claim their whole path', () => {
  const clean = lines(
    backend('b'),
    doc('Api', '{ name: one }', '  path: /a\n  backend: b\n  operations: [{ urlTemplate: /x, methods: [GET] }, { urlTemplate: /x, methods: [PUT] }, { urlTemplate: /x/*, methods: [GET] }]'),
    doc('Api', '{ name: two }', '  hostnames: [h.example.com]\n  path: /a\n  backend: b\n  operations: [{ urlTemplate: /x, methods: [GET] }]'),
    doc('Api', '{ name: three }', '  path: /b\n  backend: b'),
  );
  assert.deepEqual(clean, ['']);
  const whole = lines(backend('b'), doc('Api', '{ name: one }', '  path: /b\n  backend: b'), doc('Api', '{ name: two }', '  path: /b\n  backend: b'));
  assert.deepEqual(whole, ['c.yaml:18:9: route conflict: any method (any host)/b/* is already claimed by Api "default/one" (c.yaml:8) (spec.path)']);
});

test('operations inside one Api: duplicate names, duplicate routes, "*" mixed with methods, header matches', () => {
  const out = lines(
    backend('b'),
    doc(
      'Api',
      '{ name: a }',
      [
        '  backend: b',
        '  operations:',
        '    - { name: read, urlTemplate: /x, methods: [GET] }',
        '    - { name: read, urlTemplate: /y, methods: ["*", GET] }',
        '    - { urlTemplate: /x, methods: [get], headers: [{ name: X-A, exact: "1", prefix: "2" }] }',
        '    - { name: again, urlTemplate: /x, methods: [GET] }',
      ].join('\n'),
    ),
  );
  // GET /x with a header condition is a different route (the router tries it first); GET /x again is a conflict.
  assert.deepEqual(out, [
    'c.yaml:14:15: duplicate operation name "read" (spec.operations[1].name)',
    'c.yaml:14:47: "*" already matches every method; list it alone (spec.operations[1].methods)',
    'c.yaml:15:52: header match sets exact and prefix; set at most one of exact, prefix, present (spec.operations[2].headers[0])',
    'c.yaml:16:35: route conflict: GET (any host)/x is already claimed by Api "default/a" operation "read" (c.yaml:8) (spec.operations[3].urlTemplate)',
  ]);
});

test('Gateway: duplicate listener ports, https without tls, admin port clash, bad CIDR, bad address', () => {
  const out = lines(
    doc(
      'Gateway',
      '{ name: g }',
      [
        '  listeners:',
        '    - { port: 8080 }',
        '    - { port: 8080, name: other }',
        '    - { port: 9901, protocol: https }',
        '    - { port: 0 }',
        '    - { port: 0, name: zero2, address: "not an address" }',
        '  trustedProxies: [10.0.0.0/8, "fd00::/8", 192.168.1.1, 10.0.0.0/33]',
      ].join('\n'),
    ),
  );
  assert.deepEqual(out, [
    'c.yaml:7:15: port 8080 is already used by listener "http-8080" (spec.listeners[1].port)',
    'c.yaml:8:15: port 9901 is also the admin port (spec.admin.port); change one of them (spec.listeners[2].port)',
    'c.yaml:8:31: protocol "https" needs a tls block with certificates (spec.listeners[2].protocol)',
    'c.yaml:10:40: "not an address" is not an IP address or hostname to listen on (spec.listeners[4].address)',
    'c.yaml:11:57: "10.0.0.0/33" is not a CIDR such as "10.0.0.0/8", "2001:db8::/32" or a single address (spec.trustedProxies[3])',
  ]);
});

test('Backend: url and endpoints together, zero weights, hashOn, timeouts, breaker rules, TLS pairs', () => {
  const both = lines(doc('Backend', '{ name: b }', '  url: http://h:1\n  endpoints: [{ url: "http://h:2" }]'));
  assert.deepEqual(both, ['c.yaml:5:3: Backend.spec needs exactly one of "url" or "endpoints", got 2 (spec)']);
  const out = lines(
    doc(
      'Backend',
      '{ name: b }',
      [
        '  endpoints: [{ url: "http://h:1", weight: 0 }, { url: "http://h:1/", weight: 0 }, { url: "ftp://h:2" }, { url: "http://h:3/base" }]',
        '  loadBalancing: { hashOn: { header: x-user } }',
        '  healthCheck: { interval: 1s, timeout: 1s }',
        '  circuitBreaker:',
        '    rules: [{ count: 5, percentage: 50 }, { percentage: 50 }, { name: rule-1, count: 1 }]',
        '  tls: { certFile: /nonexistent/c.pem }',
      ].join('\n'),
    ),
  );
  assert.deepEqual(out, [
    'c.yaml:5:91: URL "ftp://h:2" must use http or https (spec.endpoints[2].url)',
    'c.yaml:5:113: URL "http://h:3/base" must be an origin like "http://host:port" (no path, query or fragment) (spec.endpoints[3].url)',
    'c.yaml:5:56: endpoint http://h:1 is listed twice (spec.endpoints[1].url)',
    'c.yaml:6:28: hashOn only applies to algorithm "consistent-hash", not "round-robin" (spec.loadBalancing.hashOn)',
    'c.yaml:7:41: timeout (1000ms) must be less than interval (1000ms) (spec.healthCheck.timeout)',
    'c.yaml:9:13: Backend.spec.circuitBreaker.rules[0] needs exactly one of "count" or "percentage", got 2 (spec.circuitBreaker.rules[0])',
    'c.yaml:9:71: duplicate rule name "rule-1" (spec.circuitBreaker.rules[2].name)',
    'c.yaml:10:20: certFile and keyFile go together (spec.tls.certFile)',
    'c.yaml:10:20: file not found: /nonexistent/c.pem (spec.tls.certFile)',
    'c.yaml:10:8: tls is set but no endpoint uses https (spec.tls)',
  ].sort(byPosition));
  const drained = lines(doc('Backend', '{ name: b }', '  endpoints: [{ url: "http://h:1", weight: 0 }, { url: "http://h:2", weight: 0 }]'));
  assert.deepEqual(drained, ['c.yaml:5:14: every endpoint has weight 0; at least one must take traffic (spec.endpoints)']);
});

function byPosition(a: string, b: string): number {
  const pos = (s: string) => s.split(':').slice(1, 3).map(Number);
  const [la, ca] = pos(a);
  const [lb, cb] = pos(b);
  return la - lb || ca - cb;
}

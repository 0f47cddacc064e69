// Tests for the single-value checks: names, CIDRs, URLs, hostnames, base paths and URL templates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkApiPath,
  checkBackendRef,
  checkCidr,
  checkHostPattern,
  checkName,
  checkOriginUrl,
  checkUrlTemplate,
} from './value-checks.ts';

const ok = (check: (v: string) => string | undefined, values: string[]) => {
  for (const v of values) assert.equal(check(v), undefined, v);
};
const bad = (check: (v: string) => string | undefined, values: string[]) => {
  for (const v of values) assert.equal(typeof check(v), 'string', v);
};

test('names are DNS labels', () => {
  ok(checkName, ['a', 'orders', 'orders-v2', '0x', 'a'.repeat(63)]);
  bad(checkName, ['', 'Orders', 'a_b', '-a', 'a-', 'a.b', 'a'.repeat(64)]);
  ok(checkBackendRef, ['orders', 'shop/orders']);
  bad(checkBackendRef, ['shop/', '/orders', 'a/b/c', 'Shop/orders']);
});

test('CIDRs and single addresses, IPv4 and IPv6', () => {
  ok(checkCidr, ['10.0.0.0/8', '0.0.0.0/0', '192.168.1.1', '192.168.1.1/32', 'fd00::/8', '::1', '2001:db8::/128']);
  bad(checkCidr, ['10.0.0.0/33', '10.0.0/8', '300.0.0.0/8', 'fd00::/129', '10.0.0.0/8/1', '10.0.0.0/', '10.0.0.0/x', 'example.com/8']);
});

test('origin URLs are http(s) with no path, query, fragment or credentials', () => {
  ok(checkOriginUrl, ['http://h:1', 'https://example.com', 'http://127.0.0.1:8080/', 'http://[::1]:80']);
  bad(checkOriginUrl, ['ftp://h', 'h:1', 'http://h/x', 'http://h/?a=1', 'http://h/#x', 'http://u:p@h', 'not a url']);
});

test('host patterns: exact names and one leading wildcard label', () => {
  ok(checkHostPattern, ['api.example.com', '*.example.com', 'localhost', 'API.Example.com']);
  bad(checkHostPattern, ['*', 'a.*.com', 'api..example.com', '-a.com', 'a b.com', 'api.example.com:443']);
});

test('Api base paths: leading slash, no trailing slash, literal segments', () => {
  ok(checkApiPath, ['/', '/orders', '/orders/v1', '/a-b_c.d~e']);
  bad(checkApiPath, ['', 'orders', '/orders/', '//', '/a//b', '/orders/{id}', '/orders/*', '/a b']);
});

test('URL templates: {name} whole segments, * only last, no empty or duplicate parts', () => {
  ok(checkUrlTemplate, ['/', '/items', '/items/{id}', '/items/*', '/a/{x}/b/*', '/{a}/{b}', '/v1:batch', '/%7Euser']);
  assert.equal(checkUrlTemplate('/items/*/x'), '"/items/*/x": "*" is only allowed as the last segment');
  assert.equal(checkUrlTemplate('/items/{id'), '"/items/{id": bad parameter segment "{id"; use "{name}" as a whole segment');
  assert.equal(checkUrlTemplate('/a/{x}/b/{x}'), '"/a/{x}/b/{x}": parameter {x} appears twice');
  bad(checkUrlTemplate, ['items', '/items/', '/a//b', '/items/x{id}', '/items/{id}.json', '/items/{1d}', '/a*', '/a?b=1', '/%zz']);
});

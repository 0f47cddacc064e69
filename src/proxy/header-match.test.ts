// Tests for route header conditions against rawHeaders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileHeaderMatches, headersMatch } from './header-match.ts';
import type { HeaderMatch } from '../model/types.ts';

function holds(matches: HeaderMatch[], raw: string[]): boolean {
  const compiled = compileHeaderMatches(matches);
  assert.notEqual(typeof compiled, 'string');
  return headersMatch(compiled as Exclude<typeof compiled, string>, raw);
}

test('exact, prefix, present and absent conditions; names are case-insensitive', () => {
  const raw = ['Host', 'a', 'X-Version', '2', 'X-Tenant', 'acme-eu'];
  assert.equal(holds([{ name: 'x-version', exact: '2' }], raw), true);
  assert.equal(holds([{ name: 'X-VERSION', exact: '3' }], raw), false);
  assert.equal(holds([{ name: 'x-version', exact: '2 ' }], raw), false);
  assert.equal(holds([{ name: 'x-tenant', prefix: 'acme-' }], raw), true);
  assert.equal(holds([{ name: 'x-tenant', prefix: 'ACME' }], raw), false);
  assert.equal(holds([{ name: 'x-tenant', present: true }], raw), true);
  assert.equal(holds([{ name: 'x-tenantt' }], raw), false);
  assert.equal(holds([{ name: 'x-debug', present: false }], raw), true);
  assert.equal(holds([{ name: 'x-tenant', present: false }], raw), false);
  assert.equal(holds([], raw), true);
});

test('all conditions must hold; any repeat of a header may satisfy one', () => {
  const raw = ['x-v', '1', 'X-V', '2'];
  assert.equal(holds([{ name: 'x-v', exact: '2' }], raw), true);
  assert.equal(holds([{ name: 'x-v', exact: '2' }, { name: 'x-w' }], raw), false);
});

test('case folding covers letters only', () => {
  assert.equal(holds([{ name: 'x^' }], ['X~', '1']), false);
  assert.equal(holds([{ name: 'x^' }], ['X^', '1']), true);
});

test('a match without a name is a problem', () => {
  assert.equal(typeof compileHeaderMatches([{ name: '' }]), 'string');
});

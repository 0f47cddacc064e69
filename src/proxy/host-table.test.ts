// Tests for hostname lookup: exact, wildcard suffixes longest first, any-host last.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ANY_HOST, createHostTable, hostTableEntry, normalizeHostPattern, resolveHosts, suffixHash } from './host-table.ts';

test('normalizeHostPattern lower-cases, drops a trailing dot and rejects malformed names', () => {
  assert.equal(normalizeHostPattern('API.Example.com.'), 'api.example.com');
  assert.equal(normalizeHostPattern('*.Example.com'), '*.example.com');
  assert.equal(normalizeHostPattern('*'), ANY_HOST);
  for (const bad of ['', '*.', 'a.*.com', '*example.com', '*..com', 'a b.com', 'a/b', 'x'.repeat(254)]) {
    assert.equal(normalizeHostPattern(bad), undefined, bad);
  }
});

function table(keys: string[]) {
  const t = createHostTable<string>();
  for (const k of keys) hostTableEntry(t, normalizeHostPattern(k) as string, () => k);
  return t;
}
function resolve(t: ReturnType<typeof table>, host: string): string[] {
  const out: string[] = ['stale', 'stale', 'stale', 'stale', 'stale'];
  return out.slice(0, resolveHosts(t, host, out));
}

test('resolveHosts orders exact, then wildcards by longest suffix, then any-host', () => {
  const t = table(['*.example.com', 'a.b.example.com', '*.b.example.com', '*']);
  assert.deepEqual(resolve(t, 'a.b.example.com'), ['a.b.example.com', '*.b.example.com', '*.example.com', '*']);
  assert.deepEqual(resolve(t, 'x.y.b.example.com'), ['*.b.example.com', '*.example.com', '*']);
  assert.deepEqual(resolve(t, 'b.example.com'), ['*.example.com', '*']);
  assert.deepEqual(resolve(t, 'other.org'), ['*']);
});

test('a wildcard needs at least one label before its suffix', () => {
  const t = table(['*.example.com']);
  assert.deepEqual(resolve(t, 'example.com'), []);
  assert.deepEqual(resolve(t, 'notexample.com'), []);
  assert.deepEqual(resolve(t, 'deep.sub.example.com'), ['*.example.com']);
});

test('entries are created once per key and shared', () => {
  const t = createHostTable<object>();
  const a = hostTableEntry(t, 'a.com', () => ({}));
  assert.equal(hostTableEntry(t, 'a.com', () => ({})), a);
  assert.equal(hostTableEntry(t, ANY_HOST, () => a), a);
  const out: object[] = [];
  assert.equal(resolveHosts(t, 'a.com', out), 2);
});

test('wildcard suffixes whose hashes collide are told apart by their text', () => {
  // Found once by brute force over `s<i>.com`; the assertion keeps the test honest if the hash changes.
  const [a, b] = ['s8908.com', 's120934.com'];
  assert.equal(suffixHash(a), suffixHash(b));
  const t = table([`*.${a}`, `*.${b}`]);
  assert.deepEqual(resolve(t, `x.${a}`), [`*.${a}`]);
  assert.deepEqual(resolve(t, `x.${b}`), [`*.${b}`]);
  assert.deepEqual(resolve(t, 'x.zzz.com'), []);
});

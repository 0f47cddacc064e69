import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { endpointStates } from '../endpoint-state.ts';
import type { EndpointState } from '../endpoint-state.ts';
import { consistentHash, fnv1a32, hashString } from './consistent-hash.ts';

const make = (n: number, weight = 1) =>
  endpointStates(Array.from({ length: n }, (_, i) => ({ url: `http://10.0.0.${i + 1}:8080`, weight })));
const keys = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
const assign = (b: { pick(now: number, k?: string): EndpointState | undefined }) => keys.map((k) => b.pick(0, k)?.url);

function fnvReference(s: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(s, 'utf8')) h = Math.imul(h ^ byte, 0x01000193);
  return h >>> 0;
}

test('FNV-1a matches the published vectors and hashes UTF-8 like Buffer does', () => {
  assert.equal(fnv1a32(''), 0x811c9dc5);
  assert.equal(fnv1a32('a'), 0xe40c292c);
  assert.equal(fnv1a32('foobar'), 0xbf9cf968);
  for (const s of ['é', '€', '😀', 'a\ud800b', '\udc00', 'x\ud83d']) assert.equal(fnv1a32(s), fnvReference(s), JSON.stringify(s));
  const unit = fc.oneof(fc.string({ unit: 'binary', maxLength: 1 }), fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)));
  fc.assert(fc.property(fc.string({ unit }), (s) => fnv1a32(s) === fnvReference(s)));
  assert.notEqual(hashString('url#1') >>> 24, hashString('url#2') >>> 24, 'the mix spreads neighbouring keys');
});

test('the same key always lands on the same endpoint, and keys spread evenly', () => {
  const b = consistentHash(make(10));
  const first = assign(b);
  assert.deepEqual(assign(consistentHash(make(10))), first, 'a rebuilt ring agrees');
  assert.deepEqual(assign(b), first);
  const counts = new Map<string | undefined, number>();
  for (const u of first) counts.set(u, (counts.get(u) ?? 0) + 1);
  assert.equal(counts.size, 10);
  for (const c of counts.values()) assert.ok(c > 600 && c < 1500, String([...counts.values()]));
});

test('removing 1 of 10 endpoints moves only that endpoint\'s keys (~10%)', () => {
  const ten = make(10);
  const before = assign(consistentHash(ten));
  const nine = endpointStates(ten.filter((_, i) => i !== 4).map((e) => ({ url: e.url, weight: e.weight })));
  const after = assign(consistentHash(nine));
  let moved = 0;
  for (let i = 0; i < keys.length; i++) {
    if (before[i] === after[i]) continue;
    moved++;
    assert.equal(before[i], ten[4].url, 'only keys of the removed endpoint move');
  }
  assert.ok(moved / keys.length < 0.2 && moved > 0, `moved ${moved}`);
});

test('unavailable endpoints are skipped, and their keys come back when they return', () => {
  const list = make(10);
  const b = consistentHash(list);
  const before = assign(b);
  list[2].healthy = false;
  list[7].ejectedUntil = 10;
  const during = assign(b);
  for (let i = 0; i < keys.length; i++) {
    if (before[i] === list[2].url || before[i] === list[7].url) assert.ok(during[i] !== list[2].url && during[i] !== list[7].url);
    else assert.equal(during[i], before[i]);
  }
  list[2].healthy = true;
  assert.deepEqual(keys.map((k) => b.pick(10, k)?.url), before);
  for (const ep of list) ep.healthy = false;
  assert.equal(b.pick(10, 'user-1'), undefined);
});

test('weights scale an endpoint\'s share; weight 0 takes none; no key picks at random', () => {
  const list = endpointStates([{ url: 'http://a', weight: 3 }, { url: 'http://b', weight: 1 }, { url: 'http://c', weight: 0 }]);
  const counts = new Map<string | undefined, number>();
  for (const u of assign(consistentHash(list))) counts.set(u, (counts.get(u) ?? 0) + 1);
  assert.equal(counts.get('http://c'), undefined);
  const ratio = counts.get('http://a')! / counts.get('http://b')!;
  assert.ok(ratio > 2 && ratio < 4.5, String(ratio));
  let r = 0;
  const b = consistentHash(list, () => (r = (r + 0.37) % 1));
  const seen = new Set(Array.from({ length: 50 }, () => b.pick(0)?.url));
  assert.deepEqual([...seen].sort(), ['http://a', 'http://b']);
  assert.equal(consistentHash([]).pick(0, 'k'), undefined);
});

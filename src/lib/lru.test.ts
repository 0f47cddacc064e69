import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lru } from './lru.ts';

test('evicts the least recently used entry when full', () => {
  const lru = new Lru<string, number>(2);
  lru.set('a', 1);
  lru.set('b', 2);
  lru.set('c', 3);
  assert.equal(lru.size, 2);
  assert.equal(lru.get('a'), undefined);
  assert.deepEqual([...lru.keys()], ['b', 'c']);
});

test('get refreshes an entry, peek does not', () => {
  const lru = new Lru<string, number>(2);
  lru.set('a', 1);
  lru.set('b', 2);
  assert.equal(lru.get('a'), 1); // a is now the newest
  lru.set('c', 3);
  assert.deepEqual([...lru.keys()], ['a', 'c']);
  assert.equal(lru.peek('a'), 1);
  lru.set('d', 4); // peek did not refresh a: a goes
  assert.deepEqual([...lru.keys()], ['c', 'd']);
});

test('set on an existing key replaces and refreshes without growing', () => {
  const lru = new Lru<string, number>(2);
  lru.set('a', 1);
  lru.set('b', 2);
  lru.set('a', 10);
  assert.equal(lru.size, 2);
  lru.set('c', 3);
  assert.equal(lru.get('a'), 10);
  assert.equal(lru.has('b'), false);
});

test('delete and clear', () => {
  const lru = new Lru<number, string>(3);
  lru.set(1, 'x');
  lru.set(2, 'y');
  assert.equal(lru.delete(1), true);
  assert.equal(lru.delete(1), false);
  assert.equal(lru.size, 1);
  lru.clear();
  assert.equal(lru.size, 0);
});

test('never holds more than max entries over many inserts', () => {
  const lru = new Lru<number, number>(100);
  for (let i = 0; i < 10_000; i++) lru.set(i, i);
  assert.equal(lru.size, 100);
  assert.equal(lru.get(9_899), undefined);
  assert.equal(lru.get(9_900), 9_900);
});

test('a hot set survives a stream of one-off keys (scan resistance of the second chance)', () => {
  const lru = new Lru<string, number>(4);
  for (const k of ['h1', 'h2']) lru.set(k, 0);
  for (let i = 0; i < 100; i++) {
    lru.get('h1');
    lru.get('h2');
    lru.set(`once${i}`, i);
    assert.ok(lru.size <= 4);
  }
  assert.equal(lru.peek('h1'), 0);
  assert.equal(lru.peek('h2'), 0);
});

test('when every entry was used, the new entry still goes in and the flags reset', () => {
  const lru = new Lru<string, number>(2);
  lru.set('a', 1);
  lru.set('b', 2);
  lru.get('a');
  lru.get('b');
  lru.set('c', 3);
  assert.equal(lru.has('c'), true);
  assert.equal(lru.size, 2);
  lru.set('d', 4); // nobody was used since: the oldest goes
  assert.equal(lru.has('d'), true);
  assert.equal(lru.size, 2);
});

test('rejects a non-positive bound', () => {
  assert.throws(() => new Lru(0), RangeError);
  assert.throws(() => new Lru(1.5), RangeError);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointStates } from '../endpoint-state.ts';
import { roundRobin } from './round-robin.ts';

const eps = () => endpointStates(['a', 'b', 'c'].map((h) => ({ url: `http://${h}`, weight: 1 })));

test('visits endpoints in turn, evenly, ignoring weights', () => {
  const list = eps();
  list[0].weight = 9;
  const rr = roundRobin(list);
  assert.deepEqual(Array.from({ length: 6 }, () => rr.pick(0)?.url), ['http://a', 'http://b', 'http://c', 'http://a', 'http://b', 'http://c']);
  const counts = new Map<string, number>();
  for (let i = 0; i < 300; i++) {
    const u = rr.pick(0)!.url;
    counts.set(u, (counts.get(u) ?? 0) + 1);
  }
  assert.deepEqual([...counts.values()], [100, 100, 100]);
});

test('starts where told, so workers do not all begin at endpoint 0', () => {
  assert.equal(roundRobin(eps(), 2).pick(0)?.url, 'http://c');
  assert.equal(roundRobin(eps(), 7).pick(0)?.url, 'http://b');
});

test('skips unavailable and drained endpoints; undefined when none is left', () => {
  const list = eps();
  list[1].healthy = false;
  list[2].weight = 0;
  const rr = roundRobin(list);
  assert.deepEqual([rr.pick(0)?.url, rr.pick(0)?.url], ['http://a', 'http://a']);
  list[0].ejectedUntil = 100;
  assert.equal(rr.pick(50), undefined);
  assert.equal(rr.pick(100)?.url, 'http://a');
  assert.equal(roundRobin([]).pick(0), undefined);
});

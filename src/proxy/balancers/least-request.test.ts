import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointStates } from '../endpoint-state.ts';
import { leastRequest, powerOfTwoChoices } from './least-request.ts';

/** mulberry32: a seeded random so the statistics below are reproducible. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const make = (n: number) => endpointStates(Array.from({ length: n }, (_, i) => ({ url: `http://e${i}`, weight: 1 })));

test('spreads evenly when loads are equal', () => {
  const b = leastRequest(make(5), seeded(1));
  const counts = [0, 0, 0, 0, 0];
  for (let i = 0; i < 10_000; i++) counts[b.pick(0)!.index]++;
  for (const c of counts) assert.ok(c > 1600 && c < 2400, String(counts));
});

test('prefers endpoints with fewer requests in flight, and never picks the busiest', () => {
  const list = make(10);
  list.forEach((ep, i) => (ep.inflight = i));
  const b = leastRequest(list, seeded(2));
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 10_000; i++) counts[b.pick(0)!.index]++;
  assert.equal(counts[9], 0, 'the busiest loses every pairing');
  for (let i = 1; i < 10; i++) assert.ok(counts[i - 1] > counts[i], String(counts));
  // P2C: P(pick i) = 2(n-1-i)/(n(n-1)); for i = 0 that is 0.2.
  assert.ok(Math.abs(counts[0] / 10_000 - 0.2) < 0.02, String(counts));
});

test('never returns an unavailable endpoint; one left is always the answer', () => {
  const list = make(6);
  for (let i = 0; i < 5; i++) list[i].healthy = false;
  const b = leastRequest(list, seeded(3));
  for (let i = 0; i < 100; i++) assert.equal(b.pick(0)?.index, 5);
  list[5].ejectedUntil = 10;
  assert.equal(b.pick(0), undefined);
  assert.equal(leastRequest([], seeded(4)).pick(0), undefined);
});

test('the second choice is uniform over the others (cost sees every pair)', () => {
  const list = make(4);
  const seen = new Set<string>();
  const b = powerOfTwoChoices(list, seeded(5), (ep) => {
    seen.add(String(ep.index));
    return ep.index;
  });
  for (let i = 0; i < 200; i++) b.pick(0);
  assert.deepEqual([...seen].sort(), ['0', '1', '2', '3']);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointStates } from '../endpoint-state.ts';
import { smoothWeightedRoundRobin } from './smooth-weighted-round-robin.ts';

const make = (weights: number[]) =>
  endpointStates(weights.map((weight, i) => ({ url: `http://${String.fromCharCode(97 + i)}`, weight })));
const name = (u: string | undefined) => (u === undefined ? '-' : u.slice(7));

test('weights 5:1:1 give nginx\'s sequence a a b a c a a, repeated', () => {
  const b = smoothWeightedRoundRobin(make([5, 1, 1]));
  const seq = Array.from({ length: 14 }, () => name(b.pick(0)?.url)).join('');
  assert.equal(seq, 'aabacaa' + 'aabacaa');
});

test('counts match the weights exactly over whole cycles', () => {
  const b = smoothWeightedRoundRobin(make([3, 2, 1, 4]));
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 1000; i++) counts[b.pick(0)!.index]++;
  assert.deepEqual(counts, [300, 200, 100, 400]);
});

test('an unavailable endpoint drops out and the rest keep their proportions', () => {
  const list = make([5, 1, 1]);
  const b = smoothWeightedRoundRobin(list);
  list[0].healthy = false;
  const counts = [0, 0, 0];
  for (let i = 0; i < 100; i++) counts[b.pick(0)!.index]++;
  assert.deepEqual(counts, [0, 50, 50]);
  list[1].weight = 0;
  list[2].ejectedUntil = 10;
  assert.equal(b.pick(5), undefined);
});

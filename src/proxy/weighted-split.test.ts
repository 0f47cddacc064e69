import { test } from 'node:test';
import assert from 'node:assert/strict';
import { smoothWeighted, registerSplit, splitOf, type SplitLeg } from './weighted-split.ts';
import type { UpstreamCluster } from './upstream-cluster.ts';

function counts(weights: number[], picks: number): number[] {
  const s = smoothWeighted(weights.map((_w, i) => i), weights);
  const out = weights.map(() => 0);
  for (let i = 0; i < picks; i++) out[s.pick()!]++;
  return out;
}

test('90/10 over 1000 picks is exactly 900/100, and the light leg is spread one per ten', () => {
  const s = smoothWeighted(['a', 'b'], [90, 10]);
  const seq = Array.from({ length: 1000 }, () => s.pick());
  assert.deepEqual([seq.filter((x) => x === 'a').length, seq.filter((x) => x === 'b').length], [900, 100]);
  for (let w = 0; w < 1000; w += 10) {
    assert.equal(seq.slice(w, w + 10).filter((x) => x === 'b').length, 1, `window ${w}: ${seq.slice(w, w + 10).join('')}`);
  }
});

test('three legs 50/30/20 give exactly 500/300/200 over 1000 picks', () => {
  assert.deepEqual(counts([50, 30, 20], 1000), [500, 300, 200]);
});

test("weights 5:1:1 interleave as nginx's a a b a c a a", () => {
  const s = smoothWeighted(['a', 'b', 'c'], [5, 1, 1]);
  assert.equal(Array.from({ length: 14 }, () => s.pick()).join(''), 'aabacaa'.repeat(2));
});

test('a weight-0 leg is never picked; all zero picks nothing', () => {
  assert.deepEqual(counts([1, 0, 3], 1000), [250, 0, 750]);
  assert.deepEqual(counts([0, 100], 500), [0, 500]);
  assert.equal(smoothWeighted(['a', 'b'], [0, 0]).pick(), undefined);
  assert.equal(smoothWeighted([], []).pick(), undefined);
});

test('registerSplit keeps the running state for the same legs and replaces it for new ones', () => {
  const parent = { name: 'p' } as unknown as UpstreamCluster;
  const a = { name: 'a' } as unknown as UpstreamCluster;
  const b = { name: 'b' } as unknown as UpstreamCluster;
  const legs: SplitLeg[] = [{ cluster: a, weight: 3 }, { cluster: b, weight: 1 }];
  const first = registerSplit(parent, legs);
  assert.equal(splitOf(parent), first);
  const seq = [first.pick(), first.pick()].map((c) => c?.name);
  // Same legs (new array, same clusters and weights): the cycle continues where it was.
  const again = registerSplit(parent, [{ cluster: a, weight: 3 }, { cluster: b, weight: 1 }]);
  assert.equal(again, first);
  seq.push(again.pick()?.name, again.pick()?.name);
  assert.deepEqual(seq.sort(), ['a', 'a', 'a', 'b']);
  const changed = registerSplit(parent, [{ cluster: a, weight: 1 }, { cluster: b, weight: 1 }]);
  assert.notEqual(changed, first);
  assert.equal(splitOf(parent), changed);
  assert.equal(splitOf(a), undefined);
});

// The contract every balancer meets, run against each algorithm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointStates } from '../endpoint-state.ts';
import { createBalancer } from './create-balancer.ts';
import type { LbAlgorithm } from '../../model/types.ts';

const algorithms: LbAlgorithm[] = ['round-robin', 'weighted-round-robin', 'least-request', 'ewma', 'consistent-hash'];
const make = (n: number) => endpointStates(Array.from({ length: n }, (_, i) => ({ url: `http://e${i}`, weight: 1 + (i % 3) })));
let seed = 1;
const random = () => ((seed = (seed * 16807) % 2147483647) - 1) / 2147483646;

for (const algorithm of algorithms) {
  test(`${algorithm}: picks only available endpoints and reaches all of them`, () => {
    const list = make(8);
    list[1].healthy = false;
    list[5].ejectedUntil = 1000;
    list[6].weight = 0;
    const b = createBalancer({ algorithm }, list, random);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) {
      const ep = b.pick(500, `key-${i}`);
      assert.ok(ep !== undefined && ep.available(500) && ep.weight > 0, `${algorithm} picked ${ep?.index}`);
      seen.add(ep.index);
    }
    assert.deepEqual([...seen].sort(), [0, 2, 3, 4, 7]);
    assert.ok(b.pick(1000, 'k') !== undefined);
  });

  test(`${algorithm}: undefined when nothing is available or nothing exists`, () => {
    const list = make(4);
    for (const ep of list) ep.healthy = false;
    assert.equal(createBalancer({ algorithm }, list, random).pick(0, 'k'), undefined);
    assert.equal(createBalancer({ algorithm }, [], random).pick(0, 'k'), undefined);
    const one = make(1);
    assert.equal(createBalancer({ algorithm }, one, random).pick(0)?.index, 0);
  });
}

test('an unknown algorithm is an error, not a silent default', () => {
  assert.throws(() => createBalancer({ algorithm: 'random' as LbAlgorithm }, make(2)), /unknown load-balancing algorithm/);
});

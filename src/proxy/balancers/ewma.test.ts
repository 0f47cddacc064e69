import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointStates } from '../endpoint-state.ts';
import { ewmaBalancer } from './ewma.ts';

function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const make = (n: number) => endpointStates(Array.from({ length: n }, (_, i) => ({ url: `http://e${i}`, weight: 1 })), 0);

test('prefers low latency', () => {
  const list = make(4);
  // Endpoint i answers in 10·(i+1) ms, long enough after start that the default RTT is forgotten.
  const t = 100_000;
  list.forEach((ep, i) => {
    ep.onStart();
    ep.onEnd(t, 10 * (i + 1), false);
  });
  assert.ok(Math.abs(list[0].latency.value - 10) < 0.01);
  const b = ewmaBalancer(list, seeded(7));
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) counts[b.pick(t)!.index]++;
  assert.equal(counts[3], 0);
  assert.ok(counts[0] > counts[1] && counts[1] > counts[2], String(counts));
  assert.ok(counts[0] > 1800, String(counts)); // P2C: 3/6 of pairs contain endpoint 0
});

test('a fast endpoint with a queue loses to a slower idle one', () => {
  const list = make(2);
  list[0].latency.value = 10;
  list[1].latency.value = 40;
  list[0].inflight = 5; // cost 10 × 6 = 60 > 40 × 1
  const b = ewmaBalancer(list, seeded(8));
  for (let i = 0; i < 50; i++) assert.equal(b.pick(0)?.index, 1);
  list[0].inflight = 2; // 10 × 3 = 30 < 40
  for (let i = 0; i < 50; i++) assert.equal(b.pick(0)?.index, 0);
});

test('a slow endpoint left alone is tried again once its estimate decays', () => {
  const list = make(2);
  list[0].latency.value = 5000;
  list[1].latency.value = 20;
  list[1].latency.at = 60_000;
  list[1].inflight = 1; // busy endpoints do not decay
  const b = ewmaBalancer(list, seeded(9));
  assert.equal(b.pick(1000)?.index, 1);
  assert.equal(b.pick(60_000)?.index, 0, '5000 ms decayed over 60 s is below 20 × 2');
});

test('skips unavailable endpoints', () => {
  const list = make(3);
  list[0].latency.value = 1;
  list[0].healthy = false;
  const b = ewmaBalancer(list, seeded(10));
  for (let i = 0; i < 100; i++) assert.notEqual(b.pick(0)?.index, 0);
});

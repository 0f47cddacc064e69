import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointStates } from './endpoint-state.ts';
import { OutlierDetector, isOutlierFailure, MAX_EJECTION_MS } from './outlier-detector.ts';
import type { OutlierDetection } from '../model/types.ts';

const cfg: OutlierDetection = { enabled: true, consecutiveErrors: 3, baseEjectionTime: 30_000, maxEjectionPercent: 50 };
function setup(n: number, over: Partial<OutlierDetection> = {}) {
  const clock = { now: 1000 };
  const eps = endpointStates(Array.from({ length: n }, (_, i) => ({ url: `http://e${i}`, weight: 1 })));
  const ejected: Array<[number, number]> = [];
  const d = new OutlierDetector(eps, { ...cfg, ...over }, () => clock.now, { onEject: (ep, until) => ejected.push([ep.index, until]) });
  const fail = (i: number, times = 1) => {
    let r = false;
    for (let k = 0; k < times; k++) r = d.record(eps[i], true);
    return r;
  };
  return { d, eps, clock, ejected, fail };
}

test('what counts: 5xx and no response', () => {
  assert.deepEqual([500, 503, undefined, 404, 200, 499].map(isOutlierFailure), [true, true, true, false, false, false]);
});

test('ejects after N consecutive failures; a success in between resets the count', () => {
  const { d, eps, clock, ejected, fail } = setup(4);
  fail(0, 2);
  d.record(eps[0], false);
  assert.equal(fail(0, 2), false);
  assert.equal(eps[0].available(clock.now), true);
  assert.equal(fail(0), true);
  assert.equal(eps[0].available(clock.now), false);
  assert.deepEqual(ejected, [[0, 31_000]]);
  assert.equal(d.ejectedCount(), 1);
  clock.now = 31_000;
  assert.equal(eps[0].available(clock.now), true, 'ejection ends by time alone');
  assert.equal(d.ejectedCount(), 0);
});

test('each ejection lasts base × times ejected, capped at 300 s', () => {
  const { eps, clock, fail } = setup(2, { maxEjectionPercent: 100, baseEjectionTime: 100_000 });
  const lengths: number[] = [];
  for (let k = 0; k < 5; k++) {
    fail(0, 3);
    lengths.push(eps[0].ejectedUntil - clock.now);
    clock.now = eps[0].ejectedUntil; // back in, and failing again at once
  }
  assert.deepEqual(lengths, [100_000, 200_000, MAX_EJECTION_MS, MAX_EJECTION_MS, MAX_EJECTION_MS]);
});

test('good behaviour after an ejection winds the multiplier back down', () => {
  const { d, eps, clock, fail } = setup(2, { maxEjectionPercent: 100, baseEjectionTime: 10_000 });
  fail(0, 3);
  clock.now = eps[0].ejectedUntil;
  fail(0, 3);
  assert.equal(eps[0].ejectedUntil - clock.now, 20_000);
  clock.now = eps[0].ejectedUntil + 10_000 * 3; // three base periods in good standing
  d.record(eps[0], false);
  fail(0, 3);
  assert.equal(eps[0].ejectedUntil - clock.now, 10_000, 'back to the first step');
});

test('never ejects more than maxEjectionPercent', () => {
  const { eps, clock, fail } = setup(10, { maxEjectionPercent: 20 });
  for (let i = 0; i < 10; i++) fail(i, 3);
  assert.equal(eps.filter((e) => !e.available(clock.now)).length, 2);
  const small = setup(3, { maxEjectionPercent: 10 });
  small.fail(0, 5);
  assert.equal(small.d.ejectedCount(), 0, '1 of 3 would be 33%');
});

test('the last available endpoint stays in, whatever the percentage', () => {
  const { eps, clock, fail } = setup(3, { maxEjectionPercent: 100 });
  eps[1].healthy = false; // taken out by active health checks
  fail(0, 3);
  assert.equal(eps[0].available(clock.now), false);
  fail(2, 10);
  assert.equal(eps[2].available(clock.now), true);
});

test('results while ejected are ignored; disabled does nothing', () => {
  const { d, eps, clock, fail } = setup(4);
  fail(0, 3);
  const until = eps[0].ejectedUntil;
  assert.equal(fail(0, 10), false);
  assert.equal(eps[0].ejectedUntil, until);
  clock.now = until;
  assert.equal(fail(0, 2), false, 'counting starts afresh after an ejection');
  assert.equal(d.record(eps[0], true), true);
  const off = setup(2, { enabled: false });
  assert.equal(off.fail(0, 100), false);
  assert.equal(off.eps[0].ejectedUntil, 0);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPeakEwma, observePeakEwma, peakEwmaValue, DEFAULT_RTT_MS } from './ewma.ts';

test('starts at the default RTT and jumps to a higher sample at once', () => {
  const e = createPeakEwma(0);
  assert.equal(e.value, DEFAULT_RTT_MS);
  observePeakEwma(e, 5, 500);
  assert.equal(e.value, 500);
});

test('lower samples blend in by elapsed time, not by how many arrive', () => {
  const e = createPeakEwma(0, 100, 1000);
  for (let i = 0; i < 1000; i++) observePeakEwma(e, 0, 1); // all at the same instant: no weight
  assert.equal(e.value, 100);
  observePeakEwma(e, 1000, 0); // one time constant later: old weight is 1/e
  assert.ok(Math.abs(e.value - 100 / Math.E) < 1e-9, String(e.value));
  observePeakEwma(e, 1000 + 1000 * 20, 10); // long after: the new sample dominates
  assert.ok(Math.abs(e.value - 10) < 1e-3, String(e.value));
});

test('reading decays towards zero while idle without changing the estimate', () => {
  const e = createPeakEwma(0, 200, 1000);
  assert.equal(peakEwmaValue(e, 0), 200);
  assert.ok(Math.abs(peakEwmaValue(e, 1000) - 200 / Math.E) < 1e-9);
  assert.ok(peakEwmaValue(e, 60_000) < 1e-6);
  assert.equal(e.value, 200);
  assert.equal(e.at, 0);
  assert.equal(peakEwmaValue(e, -5), 200, 'a clock going backwards does not inflate the value');
});

test('a clock going backwards neither inflates nor moves the timestamp back', () => {
  const e = createPeakEwma(100, 50, 1000);
  observePeakEwma(e, 50, 10);
  assert.equal(e.value, 50);
  assert.equal(e.at, 100);
});

test('rejects a non-positive decay', () => {
  assert.throws(() => createPeakEwma(0, 30, 0), RangeError);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RetryBudget } from './retry-budget.ts';

function drain(b: RetryBudget): number {
  let n = 0;
  while (b.tryAcquireRetry()) if (++n > 10_000) break;
  return n;
}

test('with no traffic only the reserve (minPerSecond × 10 s) is available', () => {
  const clock = { now: 0 };
  const b = new RetryBudget({ budgetPercent: 20, minPerSecond: 1 }, () => clock.now);
  assert.equal(drain(b), 10);
  assert.equal(b.tryAcquireRetry(), false);
});

test('retries are capped at the percentage of recent requests plus the reserve', () => {
  const clock = { now: 50_000 };
  const b = new RetryBudget({ budgetPercent: 20, minPerSecond: 0 }, () => clock.now);
  for (let i = 0; i < 100; i++) b.recordRequest();
  assert.equal(drain(b), 20);
  for (let i = 0; i < 10; i++) b.recordRequest();
  assert.equal(drain(b), 2, 'each 5 more requests earn one retry');
});

test('an exhausted budget refills as the 10 s window slides on', () => {
  const clock = { now: 0 };
  const b = new RetryBudget({ budgetPercent: 10, minPerSecond: 1 }, () => clock.now);
  for (let i = 0; i < 100; i++) b.recordRequest();
  assert.equal(drain(b), 20);
  clock.now = 5000;
  assert.equal(b.tryAcquireRetry(), false, 'half a window later the retries still count');
  clock.now = 10_000;
  assert.equal(drain(b), 10, 'requests and retries of the first second have expired; the reserve is back');
  clock.now = 30_000;
  for (let i = 0; i < 50; i++) b.recordRequest();
  assert.equal(drain(b), 15);
});

test('zero percent and zero reserve: never retry', () => {
  const b = new RetryBudget({ budgetPercent: 0, minPerSecond: 0 }, () => 0);
  for (let i = 0; i < 1000; i++) b.recordRequest();
  assert.equal(b.tryAcquireRetry(), false);
});

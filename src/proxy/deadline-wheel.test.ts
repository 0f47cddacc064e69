import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeadlineWheel } from './deadline-wheel.ts';

test('deadlines fire at their tick, in order, and cancelled ones never fire', () => {
  let now = 1000;
  const wheel = new DeadlineWheel(10, 64, () => now);
  const fired: string[] = [];
  wheel.add(25, () => fired.push('a'));
  const b = wheel.add(15, () => fired.push('b'));
  wheel.add(100, () => fired.push('c'));
  wheel.cancel(b);
  now = 1020;
  wheel.advance(now);
  assert.deepEqual(fired, []);
  now = 1030;
  wheel.advance(now);
  assert.deepEqual(fired, ['a']);
  now = 1100;
  wheel.advance(now);
  assert.deepEqual(fired, ['a', 'c']);
  wheel.close();
});

test('a deadline never fires early, even when added between ticks', () => {
  let now = 0;
  const wheel = new DeadlineWheel(10, 64, () => now);
  now = 7;
  wheel.advance(now);
  let firedAt = -1;
  wheel.add(20, () => (firedAt = now));
  for (now = 8; now <= 60 && firedAt < 0; now++) wheel.advance(now);
  assert.ok(firedAt >= 27, `fired at ${firedAt}`);
  assert.ok(firedAt <= 40, `fired at ${firedAt}`);
  wheel.close();
});

test('the interval runs only while deadlines are pending (no timer left behind)', async () => {
  const wheel = new DeadlineWheel(5, 64);
  let fired = 0;
  wheel.add(20, () => fired++);
  await new Promise((r) => setTimeout(r, 60));
  assert.equal(fired, 1);
  const d = wheel.add(1000, () => fired++);
  wheel.cancel(d);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(fired, 1);
  wheel.close();
});

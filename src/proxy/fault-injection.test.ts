import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFaultInjector, WheelTimer } from './fault-injection.ts';
import { DeadlineWheel } from './deadline-wheel.ts';

/** mulberry32: a small seeded PRNG, so a run can be replayed draw for draw. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Evenly spaced draws: exactly `p` of every 100 fall below `p` percent. */
function stepped(): () => number {
  let i = 0;
  return () => ((i++ % 100) + 0.5) / 100;
}

test('abort percentage from a seeded source: the exact count of a replay, and close to the percentage', () => {
  const inj = createFaultInjector({ abort: { percent: 25, status: 503 } }, seeded(42));
  let aborted = 0;
  for (let i = 0; i < 10_000; i++) if (inj.decide()?.abortStatus === 503) aborted++;
  const replay = seeded(42);
  let expected = 0;
  for (let i = 0; i < 10_000; i++) if (replay() * 100 < 25) expected++;
  assert.equal(aborted, expected);
  assert.ok(Math.abs(aborted - 2500) < 150, String(aborted));
});

test('evenly spaced draws give exactly the percentage; delay and abort draw separately', () => {
  const inj = createFaultInjector({ delay: { percent: 30, duration: 50 }, abort: { percent: 10, status: 500 } }, stepped());
  let delayed = 0;
  let aborted = 0;
  for (let i = 0; i < 1000; i++) {
    const v = inj.decide();
    if (v === null) continue;
    if (v.delayMs > 0) {
      assert.equal(v.delayMs, 50);
      delayed++;
    }
    if (v.abortStatus > 0) {
      assert.equal(v.abortStatus, 500);
      aborted++;
    }
  }
  // Two draws per request: the delay sees draws 0,2,4,… and the abort 1,3,5,… of the stepped source.
  assert.equal(delayed, 300);
  assert.equal(aborted, 100);
});

test('100 % always and 0 % never, whatever the source', () => {
  for (const r of [() => 0, () => 0.999999, seeded(7)]) {
    const all = createFaultInjector({ abort: { percent: 100, status: 418 } }, r);
    const none = createFaultInjector({ abort: { percent: 0, status: 418 }, delay: { percent: 0, duration: 10 } }, r);
    for (let i = 0; i < 100; i++) {
      assert.deepEqual(all.decide(), { delayMs: 0, abortStatus: 418 });
      assert.equal(none.decide(), null);
    }
  }
});

test('WheelTimer fires no earlier than asked, past the wheel horizon, and cancel stops it', async () => {
  // Horizon 8 × 5 ms = 40 ms; steps of 30 ms carry a 100 ms timer across it.
  const wheel = new DeadlineWheel(5, 8);
  try {
    const t0 = performance.now();
    const fired = await new Promise<number>((resolve) => new WheelTimer(wheel, 100, () => resolve(performance.now()), 30));
    assert.ok(fired - t0 >= 99, `fired after ${fired - t0} ms`);
    assert.ok(fired - t0 < 1000, `fired after ${fired - t0} ms`);
    let late = false;
    const t = new WheelTimer(wheel, 60, () => (late = true), 30);
    await new Promise((r) => setTimeout(r, 20));
    t.cancel();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(late, false);
  } finally {
    wheel.close();
  }
});

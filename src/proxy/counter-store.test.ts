import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  MAX_COUNT,
  gcraSpec,
  gcraTake,
  isPromise,
  newResult,
  normalizeCost,
  windowEndMs,
  windowIndex,
  windowPeek,
  windowSpec,
  windowStartMs,
  windowTake,
} from './counter-store.ts';

test('windows are aligned to origin + k × period, not to the first call', () => {
  const w = windowSpec(60_000);
  assert.equal(windowIndex(59_999, w), 0);
  assert.equal(windowIndex(60_000, w), 1);
  assert.equal(windowStartMs(windowIndex(119_999, w), w), 60_000);
  assert.equal(windowEndMs(windowIndex(119_999, w), w), 120_000);
  // first-period-start: origin 10 s; normalised modulo the period, so an origin far in the past aligns the same.
  const a = windowSpec(60_000, { originMs: 10_000 });
  const b = windowSpec(60_000, { originMs: 10_000 - 60_000 * 1_000_000 });
  assert.equal(a.originMs, 10_000);
  assert.equal(b.originMs, 10_000);
  assert.equal(windowStartMs(windowIndex(65_000, a), a), 10_000);
  assert.equal(windowEndMs(windowIndex(65_000, a), a), 70_000);
  assert.equal(windowIndex(9_999, a), -1);
  // Before the epoch too.
  assert.equal(windowStartMs(windowIndex(-1, w), w), -60_000);
});

test('period 0 is a lifetime window that never ends', () => {
  const life = windowSpec(0, { originMs: 123, durable: true });
  assert.equal(life.originMs, 0);
  assert.equal(windowIndex(1e13, life), 0);
  assert.equal(windowEndMs(0, life), Infinity);
});

test('specs reject values the table cannot hold', () => {
  assert.throws(() => windowSpec(-1), RangeError);
  assert.throws(() => windowSpec(1.5), RangeError);
  assert.throws(() => windowSpec(1000, { originMs: Number.NaN }), RangeError);
  assert.throws(() => gcraSpec(10, 0), RangeError);
  assert.throws(() => gcraSpec(-1, 1000), RangeError);
  assert.throws(() => gcraSpec(MAX_COUNT + 1, 1000), RangeError);
  assert.throws(() => gcraSpec(10, 1000, 2.5), RangeError);
});

test('normalizeCost: integers in [0, MAX_COUNT], NaN and negatives are 0', () => {
  assert.equal(normalizeCost(3.9), 3);
  assert.equal(normalizeCost(-2), 0);
  assert.equal(normalizeCost(Number.NaN), 0);
  assert.equal(normalizeCost(Infinity), MAX_COUNT);
});

test('windowTake admits up to the limit exactly and reports remaining, reset and retry-after', () => {
  const out = newResult();
  let count = 0;
  for (let i = 1; i <= 3; i++) {
    count = windowTake(count, 1, 3, 40_000, out);
    assert.equal(count, i);
    assert.deepEqual(out, { admitted: true, count: i, remaining: 3 - i, resetMs: 40_000, retryAfterMs: 0, status: 'ok' });
  }
  assert.equal(windowTake(count, 1, 3, 39_000, out), -1);
  assert.deepEqual(out, { admitted: false, count: 3, remaining: 0, resetMs: 39_000, retryAfterMs: 39_000, status: 'ok' });
  // A cost larger than what is left is refused whole, and does not count.
  assert.equal(windowTake(1, 5, 5, 1000, out), -1);
  assert.equal(out.count, 1);
  assert.equal(out.remaining, 4);
  assert.equal(windowTake(1, 4, 5, 1000, out), 5);
});

test('windowTake without a limit counts everything and saturates at MAX_COUNT', () => {
  const out = newResult();
  assert.equal(windowTake(10, 1_000_000, Infinity, 5, out), 1_000_010);
  assert.equal(out.remaining, Infinity);
  assert.equal(windowTake(MAX_COUNT - 1, 10, Infinity, 5, out), MAX_COUNT);
  assert.equal(out.admitted, true);
});

test('windowPeek says whether the counter is below its limit and changes nothing', () => {
  const out = newResult();
  windowPeek(4, 5, 100, out);
  assert.deepEqual(out, { admitted: true, count: 4, remaining: 1, resetMs: 100, retryAfterMs: 0, status: 'ok' });
  windowPeek(5, 5, 100, out);
  assert.deepEqual(out, { admitted: false, count: 5, remaining: 0, resetMs: 100, retryAfterMs: 100, status: 'ok' });
});

test('fixed window property: whatever the costs, the admitted total never exceeds the limit and a refusal means it would have', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 50 }), fc.array(fc.integer({ min: 0, max: 7 }), { maxLength: 60 }), (limit, costs) => {
      const out = newResult();
      let count = 0;
      let admitted = 0;
      for (const c of costs) {
        const next = windowTake(count, c, limit, 1, out);
        if (next >= 0) {
          admitted += c;
          count = next;
        } else {
          assert.ok(count + c > limit);
        }
      }
      assert.ok(admitted <= limit);
      assert.equal(count, admitted);
    }),
  );
});

test('gcraSpec: T rounded to whole µs, τ = burst × T, burst defaults to calls', () => {
  const g = gcraSpec(3, 1000);
  assert.equal(g.emissionUs, 333_333);
  assert.equal(g.burst, 3);
  assert.equal(g.toleranceUs, 999_999);
  assert.equal(gcraSpec(10, 1000, 2).toleranceUs, 200_000);
});

test('GCRA from an idle key: exactly `burst` calls at one instant, then one every T', () => {
  const g = gcraSpec(10, 1000); // T = 100 ms, burst 10
  const out = newResult();
  const now = 1_000_000_000;
  let tat = 0;
  for (let i = 1; i <= 10; i++) {
    tat = gcraTake(tat, now, 1, g, out);
    assert.ok(tat > 0, `call ${i} admitted`);
    assert.equal(out.remaining, 10 - i);
    assert.equal(out.count, i);
  }
  assert.equal(out.resetMs, 1000);
  assert.equal(gcraTake(tat, now, 1, g, out), -1);
  assert.equal(out.retryAfterMs, 100);
  assert.equal(out.remaining, 0);
  // 99.999 ms later: still refused; at 100 ms exactly one passes.
  assert.equal(gcraTake(tat, now + 99_999, 1, g, out), -1);
  assert.equal(out.retryAfterMs, 1);
  tat = gcraTake(tat, now + 100_000, 1, g, out);
  assert.ok(tat > 0);
  assert.equal(gcraTake(tat, now + 100_000, 1, g, out), -1);
});

test('GCRA with burst smaller than calls, and calls 0 refusing everything', () => {
  const g = gcraSpec(100, 1000, 5);
  const out = newResult();
  let tat = 0;
  let n = 0;
  for (let next = gcraTake(tat, 5_000_000, 1, g, out); next >= 0 && n < 100; next = gcraTake(tat, 5_000_000, 1, g, out)) {
    tat = next;
    n++;
  }
  assert.equal(n, 5);
  const none = gcraSpec(0, 1000);
  assert.equal(gcraTake(0, 5_000_000, 1, none, out), -1);
  assert.equal(out.admitted, false);
  // cost 0 still answers (a peek).
  assert.ok(gcraTake(0, 5_000_000, 0, none, out) >= 0);
});

test('GCRA property: over any interval of length L, at most burst + L / T calls pass', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20 }),
      fc.integer({ min: 1, max: 20 }),
      fc.array(fc.integer({ min: 0, max: 300_000 }), { minLength: 1, maxLength: 80 }),
      (calls, burst, gaps) => {
        const g = gcraSpec(calls, 1000, burst);
        const out = newResult();
        let tat = 0;
        let now = 10_000_000;
        const admittedAt: number[] = [];
        for (const gap of gaps) {
          now += gap;
          const next = gcraTake(tat, now, 1, g, out);
          if (next >= 0) {
            tat = next;
            admittedAt.push(now);
          } else {
            assert.ok(out.retryAfterMs > 0);
          }
        }
        for (let i = 0; i < admittedAt.length; i++) {
          for (let j = i; j < admittedAt.length; j++) {
            const span = admittedAt[j] - admittedAt[i];
            assert.ok(j - i + 1 <= burst + Math.floor(span / g.emissionUs), `${j - i + 1} calls in ${span} µs`);
          }
        }
      },
    ),
  );
});

test('isPromise tells a Redis-style reply from an in-memory one', () => {
  assert.equal(isPromise(newResult()), false);
  assert.equal(isPromise(Promise.resolve(newResult())), true);
});

test('a finite limit above MAX_COUNT is clamped to it: a saturated counter is refused, not admitted forever', () => {
  const out = newResult();
  assert.equal(windowTake(MAX_COUNT, 1, 1e12, 5, out), -1);
  assert.equal(out.admitted, false);
  assert.equal(windowTake(MAX_COUNT - 1, 1, 1e12, 5, out), MAX_COUNT);
});

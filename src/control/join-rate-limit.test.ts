import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRateLimiter } from './join-rate-limit.ts';

test('a source gets its burst, then its rate; others are not affected', () => {
  let t = 0;
  const l = createRateLimiter({ ratePerSecond: 10, burst: 20, now: () => t });
  for (let i = 0; i < 20; i++) assert.equal(l.allow('10.0.0.1').ok, true, `request ${i}`);
  const d = l.allow('10.0.0.1');
  assert.equal(d.ok, false);
  assert.ok(!d.ok && d.scope === 'source' && d.retryAfterMs > 0 && d.retryAfterMs <= 100);
  assert.equal(l.allow('10.0.0.2').ok, true);
  t += 100; // one token back
  assert.equal(l.allow('10.0.0.1').ok, true);
  assert.equal(l.allow('10.0.0.1').ok, false);
});

test('the global bucket caps all sources together', () => {
  let t = 0;
  const l = createRateLimiter({ ratePerSecond: 10, burst: 20, globalRatePerSecond: 5, globalBurst: 30, now: () => t });
  let ok = 0;
  for (let i = 0; i < 100; i++) if (l.allow(`10.0.1.${i}`).ok) ok++;
  assert.equal(ok, 30);
  const d = l.allow('10.9.9.9');
  assert.ok(!d.ok && d.scope === 'global');
  t += 1000;
  ok = 0;
  for (let i = 0; i < 100; i++) if (l.allow(`10.0.2.${i}`).ok) ok++;
  assert.equal(ok, 5);
});

test('remembered sources stay bounded', () => {
  let t = 0;
  const l = createRateLimiter({ ratePerSecond: 1, burst: 2, globalRatePerSecond: 1e9, globalBurst: 1e9, maxSources: 50, now: () => t });
  for (let i = 0; i < 1000; i++) {
    l.allow(`s${i}`);
    t += 1;
  }
  // The first source was forgotten (bounded memory), so it starts with a full burst again.
  assert.equal(l.allow('s0').ok, true);
  assert.equal(l.allow('s0').ok, true);
  assert.equal(l.allow('s0').ok, false);
});

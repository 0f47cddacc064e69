import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from './backoff.ts';
import { RenewalLoop, renewalDelay } from './renewal.ts';

test('renewal is at half the life from receipt, within ±10 %', () => {
  const t = { receivedAt: 1000, notAfter: 1000 + 24 * 3600_000 };
  assert.equal(renewalDelay(t, 1000, () => 0.5), 12 * 3600_000);
  assert.equal(renewalDelay(t, 1000, () => 0), 0.9 * 12 * 3600_000);
  assert.ok(Math.abs(renewalDelay(t, 1000, () => 0.999999) - 1.1 * 12 * 3600_000) < 100);
  assert.equal(renewalDelay(t, 1000 + 20 * 3600_000, () => 0.5), 0, 'overdue: at once');
});

test('reconnect backoff doubles, is jittered, and is capped at 10 s', () => {
  assert.equal(backoffDelay(0, { random: () => 1 }), 200);
  assert.equal(backoffDelay(3, { random: () => 1 }), 1600);
  assert.equal(backoffDelay(3, { random: () => 0 }), 800);
  assert.equal(backoffDelay(40, { random: () => 1 }), 10_000);
  assert.equal(backoffDelay(40, { random: () => 0 }), 5000);
});

test('a failed renewal is retried with backoff, keeping the current certificate, until it works', async () => {
  const start = Date.now();
  let current = { receivedAt: start, notAfter: start + 200 }; // renews after ~100 ms
  const calls: number[] = [];
  const errors: number[] = [];
  const loop = new RenewalLoop({
    current: () => current,
    random: () => 0.5,
    retryCapMs: 50,
    onError: (_err, attempt) => errors.push(attempt),
    renew: async () => {
      calls.push(Date.now() - start);
      if (calls.length < 3) throw new Error('control plane unreachable');
      current = { receivedAt: Date.now(), notAfter: Date.now() + 60_000 };
      return current;
    },
  });
  loop.start();
  const deadline = Date.now() + 5000;
  while (calls.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await loop.close();
  assert.equal(calls.length, 3);
  assert.deepEqual(errors, [0, 1]);
  assert.ok(calls[0] >= 90, `first attempt at half life (${calls[0]} ms)`);
  assert.ok(calls[2] - calls[0] < 1000, 'retries are quick while the certificate is about to expire');
});

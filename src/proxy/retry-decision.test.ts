import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shouldRetry, backoffMs, REQUEST_NOT_SENT_CODES } from './retry-decision.ts';
import type { RetryPolicy } from '../model/types.ts';

const policy: RetryPolicy = {
  attempts: 2,
  statuses: [502, 503, 504],
  methods: ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS'],
  budgetPercent: 20,
  minPerSecond: 10,
  backoff: 25,
};

test('listed statuses are retried for listed methods, up to the attempt limit', () => {
  assert.equal(shouldRetry(policy, 'GET', 1, 503, undefined, true), true);
  assert.equal(shouldRetry(policy, 'GET', 2, 503, undefined, true), true);
  assert.equal(shouldRetry(policy, 'GET', 3, 503, undefined, true), false, 'attempts = 2 extra');
  assert.equal(shouldRetry(policy, 'GET', 1, 500, undefined, true), false);
  assert.equal(shouldRetry(policy, 'GET', 1, 200, undefined, true), false);
  assert.equal(shouldRetry(policy, 'POST', 1, 503, undefined, true), false);
  assert.equal(shouldRetry(policy, 'PATCH', 1, 502, undefined, true), false);
});

test('resets and timeouts are retried only for listed methods', () => {
  for (const code of ['ECONNRESET', 'UND_ERR_SOCKET', 'UND_ERR_HEADERS_TIMEOUT', 'upstream_reset']) {
    assert.equal(shouldRetry(policy, 'GET', 1, undefined, code, true), true, code);
    assert.equal(shouldRetry(policy, 'POST', 1, undefined, code, true), false, code);
  }
  assert.equal(shouldRetry(policy, 'GET', 1, undefined, 'HPE_INVALID_CHUNK_SIZE', true), false);
  assert.equal(shouldRetry(policy, 'GET', 1, undefined, undefined, true), false);
});

test('a request that was never sent may be retried even for POST', () => {
  for (const code of REQUEST_NOT_SENT_CODES) assert.equal(shouldRetry(policy, 'POST', 1, undefined, code, true), true, code);
  assert.ok(REQUEST_NOT_SENT_CODES.has('ECONNREFUSED') && REQUEST_NOT_SENT_CODES.has('UND_ERR_CONNECT_TIMEOUT'));
  assert.ok(!REQUEST_NOT_SENT_CODES.has('ECONNRESET'), 'a reset may come after the backend acted');
  assert.equal(shouldRetry(policy, 'POST', 3, undefined, 'ECONNREFUSED', true), false, 'still bounded by attempts');
});

test('never when the body was streamed and is gone', () => {
  assert.equal(shouldRetry(policy, 'PUT', 1, 503, undefined, false), false);
  assert.equal(shouldRetry(policy, 'POST', 1, undefined, 'ECONNREFUSED', false), false);
});

test('backoff doubles, is capped at 10 × base, and is jittered within [half, full]', () => {
  assert.equal(backoffMs(policy, 1, () => 1), 25);
  assert.equal(backoffMs(policy, 1, () => 0), 13);
  assert.equal(backoffMs(policy, 3, () => 1), 100);
  assert.equal(backoffMs(policy, 4, () => 1), 200);
  assert.equal(backoffMs(policy, 5, () => 1), 250, 'capped');
  assert.equal(backoffMs(policy, 50, () => 0), 125);
  assert.equal(backoffMs({ ...policy, backoff: 0 }, 3, () => 1), 0);
  for (let i = 0; i < 100; i++) {
    const d = backoffMs(policy, 2, Math.random);
    assert.ok(d >= 25 && d <= 50, String(d));
  }
});

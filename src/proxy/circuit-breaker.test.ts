import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker, parseRetryAfter } from './circuit-breaker.ts';
import type { BreakerState } from './circuit-breaker.ts';
import type { BreakerRule } from '../model/types.ts';

function rule(over: Partial<BreakerRule> = {}): BreakerRule {
  return {
    name: 'r',
    minRequests: 1,
    interval: 10_000,
    statusCodeRanges: [{ min: 500, max: 599 }],
    errorReasons: true,
    tripDuration: 30_000,
    acceptRetryAfter: false,
    ...over,
  };
}
function setup(rules: BreakerRule[], opts: { wallClock?: () => number; maxRetryAfterMs?: number } = {}) {
  const clock = { now: 1_000_000 };
  const changes: BreakerState[] = [];
  const b = new CircuitBreaker(rules, () => clock.now, { ...opts, onStateChange: (s) => changes.push(s) });
  return { b, clock, changes };
}

test('count rule: trips on the Nth failure in the interval; successes and other statuses do not count', () => {
  const { b } = setup([rule({ count: 3 })]);
  b.record(500);
  b.record(200);
  b.record(404);
  b.record(undefined);
  assert.equal(b.state, 'closed');
  assert.equal(b.allow(), true);
  b.record(503);
  assert.equal(b.state, 'open');
  assert.equal(b.allow(), false);
});

test('failures older than the interval slide out of the window', () => {
  const { b, clock } = setup([rule({ count: 3 })]);
  b.record(500);
  b.record(500);
  clock.now += 10_500;
  b.record(500);
  assert.equal(b.state, 'closed');
  clock.now += 4000;
  b.record(500);
  assert.equal(b.state, 'closed', 'two in the window');
  b.record(500);
  assert.equal(b.state, 'open');
});

test('status ranges and errorReasons decide what a failure is', () => {
  const { b } = setup([rule({ count: 2, statusCodeRanges: [{ min: 429, max: 429 }, { min: 502, max: 504 }], errorReasons: false })]);
  for (const s of [500, 501, 505, 400, undefined, undefined]) b.record(s);
  assert.equal(b.state, 'closed');
  b.record(429);
  b.record(503);
  assert.equal(b.state, 'open');
});

test('percentage rule: needs minRequests, then trips at the percentage', () => {
  const { b } = setup([rule({ percentage: 50, minRequests: 10 })]);
  for (let i = 0; i < 4; i++) b.record(500);
  assert.equal(b.state, 'closed', '4 of 4 failed, but fewer than 10 requests');
  for (let i = 0; i < 5; i++) b.record(200);
  assert.equal(b.state, 'closed', '4 of 9');
  b.record(500);
  assert.equal(b.state, 'open', '5 of 10 = 50%');
});

test('closed → open → half-open (one probe) → closed, and → open again on a failed probe', () => {
  const { b, clock, changes } = setup([rule({ count: 1, tripDuration: 5000 })]);
  b.record(500);
  assert.equal(b.allow(), false);
  assert.equal(b.retryAfterSeconds(), 5);
  clock.now += 4999;
  assert.equal(b.allow(), false);
  b.record(200); // a late answer from before the trip: ignored
  assert.equal(b.state, 'open');
  clock.now += 1;
  assert.equal(b.state, 'half-open');
  assert.equal(b.allow(), true, 'the probe');
  assert.equal(b.allow(), false, 'only one probe at a time');
  assert.equal(b.retryAfterSeconds(), 1);
  b.record(502);
  assert.equal(b.state, 'open', 'failed probe reopens');
  assert.equal(b.allow(), false);
  clock.now += 5000;
  assert.equal(b.allow(), true);
  b.record(200);
  assert.equal(b.state, 'closed');
  assert.equal(b.retryAfterSeconds(), 0);
  assert.deepEqual(changes, ['open', 'half-open', 'open', 'half-open', 'closed']);
  b.record(500);
  assert.equal(b.state, 'open', 'a closed breaker counts afresh');
});

test('a probe that never reports back stops blocking after the probe timeout', () => {
  const { b, clock } = setup([rule({ count: 1, tripDuration: 2000 })]);
  b.record(undefined);
  clock.now += 2000;
  assert.equal(b.allow(), true);
  clock.now += 1999;
  assert.equal(b.allow(), false);
  clock.now += 1;
  assert.equal(b.allow(), true);
});

test('Retry-After sets the trip length when the rule accepts it', () => {
  const accept = setup([rule({ count: 1, acceptRetryAfter: true, statusCodeRanges: [{ min: 429, max: 429 }] })]);
  accept.b.record(429, '120');
  assert.equal(accept.b.retryAfterSeconds(), 120);
  accept.clock.now += 119_000;
  assert.equal(accept.b.allow(), false, 'longer than the 30 s tripDuration');
  accept.clock.now += 1000;
  assert.equal(accept.b.allow(), true);

  const ignore = setup([rule({ count: 1 })]);
  ignore.b.record(503, '120');
  assert.equal(ignore.b.retryAfterSeconds(), 30);

  const wall = Date.parse('2025-01-01T00:00:00Z');
  const date = setup([rule({ count: 1, acceptRetryAfter: true })], { wallClock: () => wall });
  date.b.record(503, 'Wed, 01 Jan 2025 00:00:45 GMT');
  assert.equal(date.b.retryAfterSeconds(), 45);

  const capped = setup([rule({ count: 1, acceptRetryAfter: true })], { maxRetryAfterMs: 60_000 });
  capped.b.record(503, '86400');
  assert.equal(capped.b.retryAfterSeconds(), 60);

  const junk = setup([rule({ count: 1, acceptRetryAfter: true })]);
  junk.b.record(503, 'soon');
  assert.equal(junk.b.retryAfterSeconds(), 30, 'unparseable: the rule\'s tripDuration');
});

test('several rules: whichever holds first trips, with its own duration', () => {
  const { b } = setup([
    rule({ name: 'errors', count: 5 }),
    rule({ name: 'throttled', count: 2, statusCodeRanges: [{ min: 429, max: 429 }], tripDuration: 7000 }),
  ]);
  b.record(429);
  b.record(500);
  b.record(429);
  assert.equal(b.state, 'open');
  assert.equal(b.trippedBy, 'throttled');
  assert.equal(b.retryAfterSeconds(), 7);
});

test('no rules: always allows', () => {
  const { b } = setup([]);
  for (let i = 0; i < 100; i++) b.record(500);
  assert.equal(b.allow(), true);
  assert.equal(b.state, 'closed');
});

test('parseRetryAfter reads delay-seconds and HTTP-dates', () => {
  const now = Date.parse('2025-06-01T12:00:00Z');
  assert.equal(parseRetryAfter('5', now), 5000);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
  assert.equal(parseRetryAfter('Sun, 01 Jun 2025 12:00:10 GMT', now), 10_000);
  assert.equal(parseRetryAfter('Sun, 01 Jun 2025 11:00:00 GMT', now), 0, 'a past date means now');
  assert.equal(parseRetryAfter('-5', now), undefined);
  assert.equal(parseRetryAfter('later', now), undefined);
  assert.equal(parseRetryAfter(undefined, now), undefined);
});

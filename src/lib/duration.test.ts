// Tests for duration and size parsing/formatting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DURATION_PATTERN, SIZE_PATTERN, formatDuration, formatSize, parseDuration, parseSize } from './duration.ts';

test('parseDuration reads simple units, compounds and fractions', () => {
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('10s'), 10_000);
  assert.equal(parseDuration('5m'), 300_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('1d'), 86_400_000);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('1.1s'), 1100);
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('1h1m1s1ms'), 3_661_001);
  assert.equal(parseDuration('0'), 0);
  assert.equal(parseDuration('0s'), 0);
});

test('parseDuration reads ISO 8601 days and times', () => {
  assert.equal(parseDuration('PT1H'), 3_600_000);
  assert.equal(parseDuration('PT0.5S'), 500);
  assert.equal(parseDuration('PT1M30S'), 90_000);
  assert.equal(parseDuration('P1D'), 86_400_000);
  assert.equal(parseDuration('P1DT2M'), 86_400_000 + 120_000);
});

test('parseDuration takes numbers as milliseconds', () => {
  assert.equal(parseDuration(250), 250);
  assert.equal(parseDuration(0), 0);
  assert.equal(parseDuration(-1), undefined);
  assert.equal(parseDuration(Number.NaN), undefined);
  assert.equal(parseDuration(Infinity), undefined);
});

test('parseDuration refuses bad values', () => {
  for (const bad of ['', '10', '10 s', '-5s', '1.s', '.5s', 's', '5sec', '1M', 'P', 'PT', 'P1M', 'P1Y', 'PT1D', 'pt1h', '1e3ms', '10s ']) {
    assert.equal(parseDuration(bad), undefined, bad);
    assert.equal(new RegExp(DURATION_PATTERN).test(bad), false, bad);
  }
  assert.equal(parseDuration('99999999999999999h'), undefined);
});

test('parseSize reads binary and decimal units and plain integers', () => {
  assert.equal(parseSize('512B'), 512);
  assert.equal(parseSize('64KiB'), 65_536);
  assert.equal(parseSize('1MiB'), 1_048_576);
  assert.equal(parseSize('1GiB'), 1024 ** 3);
  assert.equal(parseSize('1.5KiB'), 1536);
  assert.equal(parseSize('2KB'), 2000);
  assert.equal(parseSize('0.3KB'), 300);
  assert.equal(parseSize('10MB'), 10_000_000);
  assert.equal(parseSize('1024'), 1024);
  assert.equal(parseSize(4096), 4096);
});

test('parseSize refuses bad values', () => {
  for (const bad of ['', '1.5B', '10 KiB', '1kb', '1K', '-1', 'KiB', '1.2.3KB']) {
    assert.equal(parseSize(bad), undefined, bad);
  }
  assert.equal(parseSize(1.5), undefined);
  assert.equal(parseSize(-1), undefined);
  assert.equal(new RegExp(SIZE_PATTERN).test('1kb'), false);
});

test('formatDuration picks a readable form', () => {
  assert.equal(formatDuration(0), '0s');
  assert.equal(formatDuration(250), '250ms');
  assert.equal(formatDuration(1500), '1.5s');
  assert.equal(formatDuration(10_000), '10s');
  assert.equal(formatDuration(90_000), '1m30s');
  assert.equal(formatDuration(3_600_000), '1h');
  assert.equal(formatDuration(75_000), '1m15s');
});

test('formatSize picks the largest exact binary unit', () => {
  assert.equal(formatSize(16_384), '16KiB');
  assert.equal(formatSize(10 * 1024 * 1024), '10MiB');
  assert.equal(formatSize(512), '512B');
  assert.equal(formatSize(1000), '1000B');
  assert.equal(formatSize(0), '0B');
});

test('format and parse round-trip', () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 10 * 86_400_000 }), (ms) => parseDuration(formatDuration(ms)) === ms));
  fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 40 }), (b) => parseSize(formatSize(b)) === b));
});

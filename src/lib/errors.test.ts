import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_TABLE, LockgateError, statusFor, upstreamErrorCode } from './errors.ts';

test('every code maps to a 4xx/5xx status and a message', () => {
  for (const [code, info] of Object.entries(ERROR_TABLE)) {
    assert.ok(info.status >= 400 && info.status < 600, code);
    assert.ok(info.message.length > 0, code);
  }
  assert.equal(statusFor('no_route'), 404);
  assert.equal(ERROR_TABLE.no_route.message, 'Resource not found');
});

test('LockgateError keeps code, detail and cause', () => {
  const cause = new Error('boom');
  const e = new LockgateError('upstream_timeout', 'slow', { cause });
  assert.equal(e.code, 'upstream_timeout');
  assert.equal(e.detail, 'slow');
  assert.equal(e.cause, cause);
  assert.equal(new LockgateError('no_route').message, 'Resource not found');
});

test('upstream errors map to 502/504 codes', () => {
  assert.equal(upstreamErrorCode({ code: 'ECONNREFUSED' }), 'upstream_connect');
  assert.equal(upstreamErrorCode({ code: 'UND_ERR_HEADERS_TIMEOUT' }), 'upstream_timeout');
  assert.equal(upstreamErrorCode({ code: 'HPE_INVALID_CHUNK_SIZE' }), 'upstream_bad_response');
  assert.equal(upstreamErrorCode(new Error('x')), 'upstream_reset');
});

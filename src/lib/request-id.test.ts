// Tests for request id generation and validation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newRequestId, isValidRequestId } from './request-id.ts';
import { createRandomHex } from './trace-context.ts';

test('newRequestId: 32 lowercase hex, distinct, valid', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const id = newRequestId();
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.equal(isValidRequestId(id), true);
    seen.add(id);
  }
  assert.equal(seen.size, 5000);
  assert.equal(newRequestId(createRandomHex((b) => b.fill(0x5a), 128)), '5a'.repeat(16));
});

test('isValidRequestId accepts 1-128 chars of [A-Za-z0-9._:-]', () => {
  for (const s of ['a', 'Z', '0', 'abc-DEF_1.2:3', '123e4567-e89b-12d3-a456-426614174000', 'x'.repeat(128), '._:-']) {
    assert.equal(isValidRequestId(s), true, s);
  }
  for (const s of ['', 'x'.repeat(129), 'a b', 'a/b', 'a\r\nb', 'a\x00', 'é', 'a+b', 'a,b', 'a;b', '"a"', 'a\t', '\u0661']) {
    assert.equal(isValidRequestId(s), false, s);
  }
});

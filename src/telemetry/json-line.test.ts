import { test } from 'node:test';
import assert from 'node:assert/strict';
import { q } from './json-line.ts';

test('plain strings are quoted as-is; anything else is valid ASCII-only JSON', () => {
  assert.equal(q('/orders/1'), '"/orders/1"');
  for (const s of ['a"b', 'a\\b', 'line\nbreak', 'café', '\u0000x', '日本', '\u007f']) {
    const out = q(s);
    assert.equal(JSON.parse(out), s, s);
    assert.match(out, /^[\x20-\x7e]*$/, `ASCII only for ${JSON.stringify(s)}`);
  }
});

// Tests for the RE2-backed regex compiler: syntax, flags, rejection of non-linear features, linear time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRe2, compileRegex, MAX_PATTERN_LENGTH } from './regex.ts';

function ok(pattern: string, flags?: string) {
  const r = compileRegex(pattern, flags);
  assert.ok(r.ok, r.ok ? '' : r.message);
  return r.regex;
}

test('test() finds a match anywhere, like RegExp.prototype.test', () => {
  const re = ok('b+c');
  assert.equal(re.test('abbbcd'), true);
  assert.equal(re.test('acd'), false);
  assert.equal(ok('^abc$').test('xabc'), false);
  assert.equal(ok('\\d{3}-\\w+\\s').test('id 123-ab_9 '), true);
});

test('flags i, m, s behave as in JavaScript; unknown flags are rejected', () => {
  assert.equal(ok('abc').test('ABC'), false);
  assert.equal(ok('abc', 'i').test('ABC'), true);
  assert.equal(ok('^b$').test('a\nb'), false);
  assert.equal(ok('^b$', 'm').test('a\nb'), true);
  assert.equal(ok('a.b').test('a\nb'), false);
  assert.equal(ok('a.b', 's').test('a\nb'), true);
  assert.equal(ok('é', 'u').test('café'), true);
  const bad = compileRegex('a', 'g');
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? '' : bad.message, /flag "g"/);
});

test('ECMAScript \\u escapes are accepted (converted for RE2)', () => {
  assert.equal(ok('^\\u0041\\u{1F600}$').test('A😀'), true);
});

test('backreferences and lookahead are rejected with a clear message', () => {
  for (const p of ['(a)\\1', '(?=a)b', 'a(?!b)', '(']) {
    const r = compileRegex(p);
    assert.equal(r.ok, false, p);
    assert.match(r.ok ? '' : r.message, /not supported by the linear-time engine \(RE2\)/);
    assert.ok((r.ok ? '' : r.message).includes(JSON.stringify(p)), 'the message names the pattern');
  }
});

test('over-long patterns are rejected', () => {
  const r = compileRegex('a'.repeat(MAX_PATTERN_LENGTH + 1));
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.message, /over the limit/);
  assert.equal(compileRegex('a'.repeat(MAX_PATTERN_LENGTH)).ok, true);
});

test('exec returns the match, numbered and named groups', () => {
  const re = ok('(?<year>\\d{4})-(\\d+)(x)?');
  const m = re.exec('on 2024-05!');
  assert.deepEqual(m, { index: 3, groups: ['2024-05', '2024', '05', null], named: { year: '2024' } });
  assert.equal(re.exec('nothing'), null);
});

test('a catastrophic backtracking pattern runs in linear time', () => {
  const re = ok('(a+)+$');
  const input = `${'a'.repeat(30)}!`;
  const t0 = performance.now();
  assert.equal(re.test(input), false);
  const small = performance.now() - t0;
  // A backtracking engine needs ~2^30 steps here; RE2 needs a few hundred.
  assert.ok(small < 100, `took ${small} ms`);
  const big = `${'a'.repeat(100_000)}!`;
  const t1 = performance.now();
  assert.equal(re.test(big), false);
  assert.ok(performance.now() - t1 < 2000, 'linear in the input length');
  for (const p of ['(a|aa)+$', '(a*)*b', '(x+x+)+y']) assert.equal(ok(p).test(input), false);
});

test('compileRe2 takes RE2 syntax as CEL does', () => {
  const r = compileRe2('^\\pL+$');
  assert.ok(r.ok);
  assert.equal(r.regex.test('héllo'), true);
  assert.equal(r.regex.test('h3llo'), false);
  assert.equal(compileRe2('(?=x)').ok, false);
});

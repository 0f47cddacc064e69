// Tests for canonicalPath: the reliability.md §3.3 vector table plus properties against two reference models.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalPath } from './canonical-path.ts';
import type { CanonicalPathOptions } from './canonical-path.ts';

const DEFAULTS: CanonicalPathOptions = { escapedSlashes: 'reject', backslash: 'reject', semicolon: 'keep' };
const LENIENT: CanonicalPathOptions = { escapedSlashes: 'decode', backslash: 'slash', semicolon: 'strip' };

function pathOf(raw: string, opts: CanonicalPathOptions = DEFAULTS): string {
  const r = canonicalPath(raw, opts);
  if ('error' in r) throw new Error(`unexpected error for ${JSON.stringify(raw)}: ${r.error}`);
  return r.path;
}

function isError(raw: string, opts: CanonicalPathOptions = DEFAULTS): boolean {
  return 'error' in canonicalPath(raw, opts);
}

test('§3.3: dot segments, raw and percent-encoded, resolve to /admin/x', () => {
  for (const raw of ['/public/../admin/x', '/public/%2e%2e/admin/x', '/public/%2E%2e/admin/x', '/public/.%2e/admin/x']) {
    assert.equal(pathOf(raw), '/admin/x', raw);
  }
});

test('§3.3: escaped slashes are rejected by default and merged under decode', () => {
  for (const raw of ['/public/..%2fadmin/x', '/public/..%2Fadmin/x']) {
    assert.ok(isError(raw), raw);
    assert.equal(pathOf(raw, { ...DEFAULTS, escapedSlashes: 'decode' }), '/admin/x', raw);
  }
  assert.ok(isError('/public%2f..%2fadmin'));
  assert.equal(pathOf('/public%2f..%2fadmin', { ...DEFAULTS, escapedSlashes: 'decode' }), '/admin');
});

test('§3.3: no double decoding of %25', () => {
  assert.equal(pathOf('/public/%252e%252e/admin'), '/public/%252e%252e/admin');
  assert.equal(pathOf('/public/%252E%252E/admin'), '/public/%252E%252E/admin');
});

test('§3.3: backslashes, raw or escaped, are rejected by default and become / on request', () => {
  for (const raw of ['/public/..\\admin', '/public\\..\\admin', '/public/%5c../admin']) {
    assert.ok(isError(raw), raw);
  }
  assert.equal(pathOf('/public/..\\admin', { ...DEFAULTS, backslash: 'slash' }), '/admin');
  assert.equal(pathOf('/public\\..\\admin', { ...DEFAULTS, backslash: 'slash' }), '/admin');
  // %5C needs both options: it is an escaped slash first, then a backslash.
  assert.ok(isError('/public/%5c../admin', { ...DEFAULTS, backslash: 'slash' }));
  assert.ok(isError('/public/%5c../admin', { ...DEFAULTS, escapedSlashes: 'decode' }));
  assert.equal(pathOf('/public/%5c../admin', LENIENT), '/admin');
});

test('§3.3: repeated slashes merge', () => {
  assert.equal(pathOf('//admin/x'), '/admin/x');
  assert.equal(pathOf('/public//..//admin'), '/admin');
  assert.equal(pathOf('/a///b//'), '/a/b/');
  assert.equal(pathOf('//'), '/');
});

test('§3.3: semicolon params: strip, keep or reject', () => {
  const strip = { ...DEFAULTS, semicolon: 'strip' } as const;
  for (const raw of ['/admin;/x', '/public/..;/admin/x', '/admin;jsessionid=1/x']) {
    assert.equal(pathOf(raw, strip), '/admin/x', raw);
    assert.ok(isError(raw, { ...DEFAULTS, semicolon: 'reject' }), raw);
  }
  assert.equal(pathOf('/admin;jsessionid=1/x'), '/admin;jsessionid=1/x');
  assert.equal(pathOf('/public/..;/admin/x'), '/public/..;/admin/x');
  assert.equal(pathOf('/a/b;v=1', strip), '/a/b');
  assert.equal(pathOf('/a/b;v=1?q=;', strip), '/a/b');
  // %3B is data, not a parameter delimiter.
  assert.equal(pathOf('/a%3bb/c', strip), '/a%3Bb/c');
});

test('§3.3: no case folding', () => {
  assert.equal(pathOf('/ADMIN/x'), '/ADMIN/x');
  assert.equal(pathOf('/Admin/x'), '/Admin/x');
});

test('§3.3: %00, fragments and non-ASCII after decode are rejected', () => {
  for (const raw of ['/admin%00/x', '/admin%00.json', '/admin#/x', '/admin/x#', '/admin%c0%af..', '/admin%ef%bc%8f', '/caf%C3%A9']) {
    assert.ok(isError(raw), raw);
    assert.ok(isError(raw, LENIENT), raw);
  }
});

test('§3.3: unreserved escapes decode once; others are upper-cased', () => {
  assert.equal(pathOf('/%61dmin/x'), '/admin/x');
  assert.equal(pathOf('/%7euser/%2D%5f%30'), '/~user/-_0');
  assert.equal(pathOf('/a%20b/%3a%40'), '/a%20b/%3A%40');
  assert.equal(pathOf('/admin%20/x'), '/admin%20/x');
  assert.equal(pathOf('/admin./x'), '/admin./x');
  assert.equal(pathOf('/administrator'), '/administrator');
});

test('malformed escapes, control characters, space, DEL and raw non-ASCII are rejected', () => {
  for (const raw of ['/a%', '/a%2', '/a%zz', '/a%2g/b', '/a b', '/a\tb', '/a\x7f', '/a\x01', '/caf\u00e9', '/\u2215admin', '/a\r\nX: y']) {
    assert.ok(isError(raw), JSON.stringify(raw));
  }
});

test('the target must be origin-form; * passes through for the caller to check the method', () => {
  for (const raw of ['', 'admin', 'http://evil/admin', '**', '*/x', '?x']) assert.ok(isError(raw), raw);
  assert.deepEqual(canonicalPath('*', DEFAULTS), { path: '*', query: '' });
  // `//evil` is origin-form with an empty first segment, not authority-form.
  assert.equal(pathOf('//evil'), '/evil');
});

test('dot segments clamp at the root and keep a trailing slash as RFC 3986 does', () => {
  const cases: Array<[string, string]> = [
    ['/', '/'], ['/..', '/'], ['/../..', '/'], ['/.', '/'], ['/a/..', '/'], ['/a/.', '/a/'], ['/a/b/..', '/a/'],
    ['/a/./b', '/a/b'], ['/a/b/', '/a/b/'], ['/../../etc/passwd', '/etc/passwd'], ['/.well-known/x', '/.well-known/x'],
    ['/a/...', '/a/...'], ['/a/..b/.c', '/a/..b/.c'], ['/v1.2/index.html', '/v1.2/index.html'],
  ];
  for (const [raw, want] of cases) assert.equal(pathOf(raw), want, raw);
});

test('the query is kept verbatim with its "?" and validated', () => {
  assert.deepEqual(canonicalPath('/a/b?x=1&y=%2f', DEFAULTS), { path: '/a/b', query: '?x=1&y=%2f' });
  assert.deepEqual(canonicalPath('/a?', DEFAULTS), { path: '/a', query: '?' });
  assert.deepEqual(canonicalPath('/a', DEFAULTS), { path: '/a', query: '' });
  assert.deepEqual(canonicalPath('/x/../a?../b', DEFAULTS), { path: '/a', query: '?../b' });
  assert.deepEqual(canonicalPath('/a?id=%00', DEFAULTS), { path: '/a', query: '?id=%00' });
  assert.deepEqual(canonicalPath('/a?b?c', DEFAULTS), { path: '/a', query: '?b?c' });
  for (const raw of ['/a?x#y', '/a?x y', '/a?%zz', '/a?%', '/a?\u00e9', '/../a?#']) assert.ok(isError(raw), raw);
});

// ---- properties ----

/** Plain reference model, written for clarity rather than speed. */
function reference(raw: string, opts: CanonicalPathOptions): { path: string; query: string } | 'error' {
  if (raw === '*') return { path: '*', query: '' };
  if (!raw.startsWith('/')) return 'error';
  if (/[^\x21-\x7e]|#/.test(raw) || /%(?![0-9A-Fa-f]{2})/.test(raw)) return 'error';
  const qi = raw.indexOf('?');
  let p = qi < 0 ? raw : raw.slice(0, qi);
  const query = qi < 0 ? '' : raw.slice(qi);
  if (opts.semicolon === 'reject' && p.includes(';')) return 'error';
  if (opts.backslash === 'reject' && p.includes('\\')) return 'error';
  let bad = false;
  p = p.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => {
    const v = parseInt(h, 16);
    const ch = String.fromCharCode(v);
    if (v === 0 || v >= 0x80) bad = true;
    else if (ch === '/' || ch === '\\') {
      if (opts.escapedSlashes === 'reject' || (ch === '\\' && opts.backslash === 'reject')) bad = true;
      return '/';
    } else if (/[A-Za-z0-9._~-]/.test(ch)) return ch;
    return '%' + h.toUpperCase();
  });
  if (bad) return 'error';
  p = p.replaceAll('\\', '/');
  if (opts.semicolon === 'strip') p = p.replace(/;[^/]*/g, '');
  const out: string[] = [];
  const segs = p.split('/').slice(1);
  for (const s of segs) {
    if (s === '..') out.pop();
    else if (s !== '' && s !== '.') out.push(s);
  }
  const last = segs[segs.length - 1];
  const trailing = last === '' || last === '.' || last === '..';
  return { path: out.length === 0 ? '/' : '/' + out.join('/') + (trailing ? '/' : ''), query };
}

const piece = fc.constantFrom(
  '/', '/', '/', '.', '..', 'a', 'B', '~', '-', '%2e', '%2E', '%2f', '%2F', '%5c', '%5C', '%41', '%7e', '%25', '%3b', '%20',
  '%00', '%c0', '%zz', '%', '%4', '\\', ';', ';x=1', '?', '?q=%', '#', ' ', '\u00e9', '\t', ':', '@', '*',
);
const target = fc.array(piece, { maxLength: 14 }).map((parts) => '/' + parts.join(''));
const options = fc.record({
  escapedSlashes: fc.constantFrom('reject', 'decode'),
  backslash: fc.constantFrom('reject', 'slash'),
  semicolon: fc.constantFrom('keep', 'strip', 'reject'),
}) as fc.Arbitrary<CanonicalPathOptions>;
const anyTarget = fc.oneof(target, fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 }).map((s) => '/' + s));

test('property: agrees with the reference model (error or same path and query)', () => {
  fc.assert(fc.property(anyTarget, options, (raw, opts) => {
    const got = canonicalPath(raw, opts);
    const want = reference(raw, opts);
    if (want === 'error') assert.ok('error' in got, `expected an error for ${JSON.stringify(raw)}`);
    else assert.deepEqual(got, want, JSON.stringify(raw));
  }), { numRuns: 5000 });
});

test('property: idempotent, and the path never holds a dot segment, //, %2e or a backslash', () => {
  fc.assert(fc.property(target, options, (raw, opts) => {
    const r = canonicalPath(raw, opts);
    if ('error' in r) return;
    const again = canonicalPath(r.path + r.query, opts);
    assert.deepEqual(again, r);
    const p = r.path;
    assert.ok(p.startsWith('/'));
    for (const bad of ['/../', '/./', '//', '%2e', '%2E', '\\']) assert.ok(!p.includes(bad), `${p} holds ${bad}`);
    assert.ok(!p.endsWith('/..') && !p.endsWith('/.'), p);
    if (opts.semicolon === 'strip') assert.ok(!p.includes(';'), p);
  }), { numRuns: 5000 });
});

test('property: dot-segment resolution matches the WHATWG URL parser after merging slashes', () => {
  const dotty = fc.array(fc.constantFrom('/', '.', '..', 'a', 'b', '%2e', '%2E', '.%2e', 'x.'), { maxLength: 12 })
    .map((parts) => '/' + parts.join(''));
  fc.assert(fc.property(dotty, (raw) => {
    const merged = raw.replace(/\/+/g, '/');
    const whatwg = new URL(merged, 'http://h').pathname.replace(/%2e/gi, '.');
    assert.equal(pathOf(raw), whatwg, raw);
  }), { numRuns: 3000 });
});

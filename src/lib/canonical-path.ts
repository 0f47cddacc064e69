// Canonical request path (reliability.md §3.2): the one string that routing, auth, rate-limit keys and the upstream all see.

export interface CanonicalPathOptions {
  /** `%2F` / `%5C`: 400, or decode and treat as a separator. */
  escapedSlashes: 'reject' | 'decode';
  /** Raw `\`: 400, or map to `/` (IIS-style upstreams). */
  backslash: 'reject' | 'slash';
  /** `;params`: keep verbatim, strip from each segment (servlet upstreams), or 400. */
  semicolon: 'keep' | 'strip' | 'reject';
}

/** `query` is '' when there was no `?`, else the verbatim substring starting at `?` (so `/a?` round-trips). */
export type CanonicalPath = { path: string; query: string } | { error: string };

const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const PERCENT = 0x25;
const DOT = 0x2e;
const SEMI = 0x3b;
const HASH = 0x23;
const QMARK = 0x3f;

const HEX = '0123456789ABCDEF';

/** Errors are shared frozen constants: a flood of bad targets allocates nothing. */
function fail(error: string): { error: string } {
  return Object.freeze({ error });
}

const E_FORM = fail('request target must start with "/"');
const E_CHAR = fail('control character, space, non-ASCII or "#" in request target');
const E_PCT = fail('malformed percent-encoding in request target');
const E_NUL = fail('%00 in path');
const E_HIGH = fail('non-ASCII byte after percent-decoding the path');
const E_ESC_SLASH = fail('escaped slash (%2F or %5C) in path');
const E_BACKSLASH = fail('backslash in path');
const E_SEMI = fail('";" in path');

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x57;
  return -1;
}

/** Value of the `%HH` escape at `i`, or -1 when malformed. */
function escapeAt(s: string, i: number, end: number): number {
  if (i + 2 >= end) return -1;
  const hi = hexValue(s.charCodeAt(i + 1));
  const lo = hexValue(s.charCodeAt(i + 2));
  return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo;
}

function isUnreserved(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) ||
    c === 0x2d || c === DOT || c === 0x5f || c === 0x7e;
}

/** Appends one decoded segment to `out`, resolving merge-slashes (empty) and dot segments. */
function pushSegment(out: string, seg: string): string {
  if (seg === '' || seg === '.') return out;
  if (seg === '..') return out === '' ? out : out.slice(0, out.lastIndexOf('/'));
  return out + '/' + seg;
}

/**
 * Slow path from index `from` (where `raw[from]` is `/`) to `end`; `out` is the already-canonical prefix.
 * One pass: validate, decode unreserved escapes once, split on separators, drop `;params`, resolve segments.
 */
function canonicalize(raw: string, from: number, end: number, out: string, opts: CanonicalPathOptions): string | { error: string } {
  let seg = '';
  let runStart = from + 1;
  let inParams = false;
  let i = from + 1;
  while (i < end) {
    const c = raw.charCodeAt(i);
    if (c === SLASH || c === BACKSLASH) {
      if (c === BACKSLASH && opts.backslash === 'reject') return E_BACKSLASH;
      if (!inParams) seg += raw.slice(runStart, i);
      out = pushSegment(out, seg);
      seg = '';
      inParams = false;
      runStart = ++i;
      continue;
    }
    if (c === PERCENT) {
      const v = escapeAt(raw, i, end);
      if (v < 0) return E_PCT;
      if (v === 0) return E_NUL;
      if (v >= 0x80) return E_HIGH;
      if (!inParams) seg += raw.slice(runStart, i);
      runStart = i += 3;
      if (v === SLASH || v === BACKSLASH) {
        if (opts.escapedSlashes === 'reject') return E_ESC_SLASH;
        if (v === BACKSLASH && opts.backslash === 'reject') return E_BACKSLASH;
        out = pushSegment(out, seg);
        seg = '';
        inParams = false;
      } else if (!inParams) {
        seg += isUnreserved(v) ? String.fromCharCode(v) : '%' + HEX[v >> 4] + HEX[v & 15];
      }
      continue;
    }
    if (c <= 0x20 || c >= 0x7f || c === HASH) return E_CHAR;
    if (c === SEMI && opts.semicolon !== 'keep') {
      if (opts.semicolon === 'reject') return E_SEMI;
      if (!inParams) seg += raw.slice(runStart, i);
      inParams = true;
    }
    i++;
  }
  if (!inParams) seg += raw.slice(runStart, end);
  // A path ending in `/`, `.` or `..` keeps a trailing slash (RFC 3986 §5.2.4).
  if (seg === '' || seg === '.' || seg === '..') return pushSegment(out, seg) + '/';
  return out + '/' + seg;
}

/** Validates the query verbatim: same byte rules as the path, but `%00` is data here, not a truncation trick. */
function queryError(raw: string, from: number): { error: string } | undefined {
  const n = raw.length;
  for (let i = from; i < n; i++) {
    const c = raw.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === HASH) return E_CHAR;
    if (c === PERCENT && escapeAt(raw, i, n) < 0) return E_PCT;
  }
  return undefined;
}

/**
 * Canonicalizes an origin-form request target. `*` is returned as path `*`: only the caller
 * knows the method, and it must allow `*` for OPTIONS alone.
 */
export function canonicalPath(rawTarget: string, opts: CanonicalPathOptions): CanonicalPath {
  const n = rawTarget.length;
  if (n === 0 || rawTarget.charCodeAt(0) !== SLASH) {
    return rawTarget === '*' ? { path: '*', query: '' } : E_FORM;
  }
  // Fast scan: find the query and the start of the first segment that needs work.
  const keepSemi = opts.semicolon === 'keep';
  let q = n;
  let dirtySeg = -1;
  let segStart = 0;
  for (let i = 1; i < n; i++) {
    const c = rawTarget.charCodeAt(i);
    if (c === QMARK) { q = i; break; }
    if (c === SLASH) {
      if (segStart === i - 1) { dirtySeg = segStart; break; }
      segStart = i;
    } else if (c === DOT) {
      if (segStart === i - 1) { dirtySeg = segStart; break; }
    } else if (c <= 0x20 || c >= 0x7f || c === PERCENT || c === BACKSLASH || c === HASH || (c === SEMI && !keepSemi)) {
      dirtySeg = segStart;
      break;
    }
  }
  let path: string;
  if (dirtySeg < 0) {
    path = q === n ? rawTarget : rawTarget.slice(0, q);
  } else {
    if (q === n) q = rawTarget.indexOf('?', dirtySeg);
    if (q < 0) q = n;
    const r = canonicalize(rawTarget, dirtySeg, q, rawTarget.slice(0, dirtySeg), opts);
    if (typeof r !== 'string') return r;
    path = r;
  }
  if (q === n) return { path, query: '' };
  const bad = queryError(rawTarget, q + 1);
  return bad ?? { path, query: rawTarget.slice(q) };
}

// Strict request checks (reliability.md §2) on what the HTTP parser hands over, and the framing facts found in one pass.

export interface RequestLimits {
  maxHeaderCount: number;
  maxUrlLength: number;
}

export interface RequestFacts {
  readonly ok: true;
  /** The single Host (or HTTP/2 `:authority`) value, lowercased; '' for an HTTP/1.0 request without one. */
  host: string;
  /** `host` without the port and without a trailing dot; IPv6 literals keep their brackets. */
  hostname: string;
  /** CL > 0 or chunked. Under HTTP/2 also true when CL is absent: DATA frames may follow (check `endAfterHeaders`). */
  hasBody: boolean;
  /** -1 when absent. */
  contentLength: number;
  chunked: boolean;
  expectContinue: boolean;
  /** HTTP/1.1 GET with `Connection: upgrade` and `Upgrade: websocket`. */
  upgrade: boolean;
  /** Lowercased names listed in Connection besides keep-alive/close (to strip before forwarding), or null. */
  connectionTokens: string[] | null;
}

export interface StrictError {
  readonly ok: false;
  readonly status: 400 | 414 | 431 | 501;
  readonly error: string;
}

export type StrictResult = RequestFacts | StrictError;

function fail(status: StrictError['status'], error: string): StrictError {
  return Object.freeze({ ok: false, status, error });
}

// Shared constants: a flood of bad requests allocates nothing.
const E_METHOD_LONG = fail(501, 'method longer than 32 characters');
const E_METHOD = fail(400, 'method is not a token');
const E_VERSION = fail(400, 'unsupported HTTP version');
const E_URL_LONG = fail(414, 'request target too long');
const E_ABSOLUTE = fail(400, 'absolute-form request target is not accepted on this listener');
const E_TARGET = fail(400, 'request target must start with "/" ("*" only with OPTIONS)');
const E_FRAGMENT = fail(400, '"#" in request target');
const E_TOO_MANY = fail(431, 'too many header fields');
const E_NAME = fail(400, 'invalid header field name');
const E_VALUE = fail(400, 'CR, LF or NUL in a header field value');
const E_HOST_DUP = fail(400, 'more than one Host header');
const E_HOST_MISSING = fail(400, 'missing Host header');
const E_HOST = fail(400, 'invalid Host header');
const E_HOST_MISMATCH = fail(400, ':authority and Host differ');
const E_CL_DUP = fail(400, 'more than one Content-Length header');
const E_CL = fail(400, 'invalid Content-Length');
const E_TE_DUP = fail(400, 'more than one Transfer-Encoding header');
const E_TE = fail(400, 'Transfer-Encoding other than "chunked"');
const E_TE_CL = fail(400, 'both Transfer-Encoding and Content-Length');
const E_TE_10 = fail(400, 'Transfer-Encoding in an HTTP/1.0 request');
const E_CONNECTION = fail(400, 'invalid Connection header');
const E_H2_HOP = fail(400, 'connection-specific header in an HTTP/2 request');

/** RFC 9110 tchar. */
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = TCHAR[c + 0x20] = 1;

function isToken(s: string, from: number, to: number): boolean {
  if (from >= to) return false;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f || TCHAR[c] === 0) return false;
  }
  return true;
}

/** 0 invalid, 1 a plain token, 2 a token holding `_` or `%` (worth a look-alike check). */
function nameKind(name: string): number {
  const n = name.length;
  if (n === 0) return 0;
  let kind = 1;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    if (c > 0x7f || TCHAR[c] === 0) return 0;
    if (c === 0x5f || c === 0x25) kind = 2;
  }
  return kind;
}

/**
 * `Transfer_Encoding`, `Content%2DLength`…: valid tokens, but CGI-style servers map `_` to `-` and
 * some decode escapes, so a framing header could reach them under another name (§2.3 names).
 */
function looksLikeFraming(name: string): boolean {
  let s: string;
  try {
    s = decodeURIComponent(name);
  } catch {
    s = name;
  }
  s = s.replaceAll('_', '-').toLowerCase();
  return s === 'transfer-encoding' || s === 'content-length';
}

/** Case-insensitive compare of s[from..to) with a lowercase literal. */
function eqi(s: string, from: number, to: number, lit: string): boolean {
  if (to - from !== lit.length) return false;
  for (let j = 0; j < lit.length; j++) {
    const c = s.charCodeAt(from + j);
    const t = lit.charCodeAt(j);
    if (c !== t && !(t >= 0x61 && t <= 0x7a && c === t - 0x20)) return false;
  }
  return true;
}

const isOws = (c: number): boolean => c === 0x20 || c === 0x09;

/** eqi after trimming OWS on both sides (the parser usually trimmed already). */
function eqiTrim(s: string, lit: string): boolean {
  let a = 0;
  let b = s.length;
  while (a < b && isOws(s.charCodeAt(a))) a++;
  while (b > a && isOws(s.charCodeAt(b - 1))) b--;
  return eqi(s, a, b, lit);
}

function hasBadValueChar(v: string): boolean {
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c < 0x0e && (c === 0 || c === 0x0a || c === 0x0d)) return true;
  }
  return false;
}

/** 1*DIGIT, no leading zero unless exactly "0", at most 2^53-1; -1 when invalid. */
function parseContentLength(v: string): number {
  let a = 0;
  let b = v.length;
  while (a < b && isOws(v.charCodeAt(a))) a++;
  while (b > a && isOws(v.charCodeAt(b - 1))) b--;
  if (a === b || b - a > 16 || (v.charCodeAt(a) === 0x30 && b - a > 1)) return -1;
  let n = 0;
  for (let i = a; i < b; i++) {
    const d = v.charCodeAt(i) - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n <= Number.MAX_SAFE_INTEGER ? n : -1;
}

/** reg-name characters we accept in Host: unreserved only (no sub-delims, no pct-encoding). */
const HOSTCHAR = new Uint8Array(128);
for (let c = 0; c < 128; c++) HOSTCHAR[c] = TCHAR[c] & Number(!"!#$%&'*+^`|".includes(String.fromCharCode(c)));

/** Index where the hostname ends (before `:port` and a trailing dot), or -1 if `h` is no valid uri-host[:port]. */
function hostnameEnd(h: string): number {
  const n = h.length;
  let i = 0;
  if (h.charCodeAt(0) === 0x5b) { // IP-literal: hex, ':' and '.' (embedded IPv4) inside brackets
    for (i = 1; i < n; i++) {
      const c = h.charCodeAt(i);
      if (c === 0x5d) break;
      const l = c | 0x20;
      if (!((c >= 0x30 && c <= 0x3a) || (l >= 0x61 && l <= 0x66) || c === 0x2e)) return -1;
    }
    if (i === n || i < 3) return -1;
    i++;
  } else {
    for (; i < n; i++) {
      const c = h.charCodeAt(i);
      if (c === 0x3a) break;
      if (c > 0x7f || HOSTCHAR[c] === 0) return -1;
    }
    if (i === 0 || h.charCodeAt(0) === 0x2e) return -1;
  }
  let end = i;
  if (i < n) { // ':' port, 1*5DIGIT <= 65535
    if (n - i < 2 || n - i > 6) return -1;
    let port = 0;
    for (let j = i + 1; j < n; j++) {
      const d = h.charCodeAt(j) - 0x30;
      if (d < 0 || d > 9) return -1;
      port = port * 10 + d;
    }
    if (port > 65535) return -1;
  }
  if (h.charCodeAt(end - 1) === 0x2e) end--;
  return end === 0 ? -1 : end;
}

/** Lowercased tokens of a Connection value other than keep-alive/close, appended to `into`; undefined when malformed. */
function connectionTokens(v: string, into: string[] | null): string[] | null | undefined {
  if (eqiTrim(v, 'keep-alive') || eqiTrim(v, 'close')) return into;
  let start = 0;
  for (let i = 0; i <= v.length; i++) {
    if (i < v.length && v.charCodeAt(i) !== 0x2c) continue;
    let a = start;
    let b = i;
    start = i + 1;
    while (a < b && isOws(v.charCodeAt(a))) a++;
    while (b > a && isOws(v.charCodeAt(b - 1))) b--;
    if (a === b) continue; // empty list elements are allowed (RFC 9110 §5.6.1)
    if (!isToken(v, a, b)) return undefined;
    if (eqi(v, a, b, 'keep-alive') || eqi(v, a, b, 'close')) continue;
    (into ??= []).push(v.slice(a, b).toLowerCase());
  }
  return into;
}

/** True when a comma-separated list holds `lit` (case-insensitive). */
function listHas(v: string, lit: string): boolean {
  let start = 0;
  for (let i = 0; i <= v.length; i++) {
    if (i < v.length && v.charCodeAt(i) !== 0x2c) continue;
    let a = start;
    let b = i;
    start = i + 1;
    while (a < b && isOws(v.charCodeAt(a))) a++;
    while (b > a && isOws(v.charCodeAt(b - 1))) b--;
    if (eqi(v, a, b, lit)) return true;
  }
  return false;
}

/**
 * Checks a request as Node's parser delivered it (req.method, req.httpVersion, req.url, req.rawHeaders).
 * llhttp already rejects much of §2.3; this re-checks what it lets through and anything a future parser might.
 * HTTP/2 (version '2.0', pseudo-headers in rawHeaders): `authority` may pass `:authority` when the caller
 * has it apart; a `:authority` in rawHeaders is used as well.
 */
export function checkRequest(
  method: string, httpVersion: string, rawTarget: string, rawHeaders: string[], limits: RequestLimits, authority?: string,
): StrictResult {
  if (method.length > 32) return E_METHOD_LONG;
  if (!isToken(method, 0, method.length)) return E_METHOD;
  const h2 = httpVersion === '2.0';
  if (httpVersion !== '1.1' && httpVersion !== '1.0' && !h2) return E_VERSION;

  if (rawTarget.length > limits.maxUrlLength) return E_URL_LONG;
  if (rawTarget.charCodeAt(0) !== 0x2f) {
    if (rawTarget !== '*' || method !== 'OPTIONS') return rawTarget.includes('://') ? E_ABSOLUTE : E_TARGET;
  } else if (rawTarget.indexOf('#') !== -1) return E_FRAGMENT;

  const n = rawHeaders.length;
  if (n > limits.maxHeaderCount * 2) return E_TOO_MANY;
  let host: string | undefined;
  let contentLength = -1;
  let chunked = false;
  let expectContinue = false;
  let connUpgrade = false;
  let upgradeWebsocket = false;
  let tokens: string[] | null = null;
  for (let i = 0; i < n; i += 2) {
    const name = rawHeaders[i];
    const value = rawHeaders[i + 1];
    if (hasBadValueChar(value)) return E_VALUE;
    const len = name.length;
    if (h2 && name.charCodeAt(0) === 0x3a) { // pseudo-header; nghttp2 already checked the set and order
      if (name === ':authority') {
        if (authority !== undefined && authority !== value) return E_HOST_MISMATCH;
        authority = value;
      }
      continue;
    }
    const kind = nameKind(name);
    if (kind === 0 || (kind === 2 && looksLikeFraming(name))) return E_NAME;
    switch (len) {
      case 2:
        if (h2 && eqi(name, 0, 2, 'te') && !eqiTrim(value, 'trailers')) return E_H2_HOP;
        break;
      case 4:
        if (eqi(name, 0, 4, 'host')) {
          if (host !== undefined) return E_HOST_DUP;
          host = value;
        }
        break;
      case 6:
        if (eqi(name, 0, 6, 'expect') && eqiTrim(value, '100-continue')) expectContinue = true;
        break;
      case 7:
        if (eqi(name, 0, 7, 'upgrade')) {
          if (h2) return E_H2_HOP;
          if (listHas(value, 'websocket')) upgradeWebsocket = true;
        }
        break;
      case 10:
        if (eqi(name, 0, 10, 'connection')) {
          if (h2) return E_H2_HOP;
          const t = connectionTokens(value, tokens);
          if (t === undefined) return E_CONNECTION;
          tokens = t;
          if (!connUpgrade && t !== null && t.includes('upgrade')) connUpgrade = true;
        } else if (h2 && eqi(name, 0, 10, 'keep-alive')) return E_H2_HOP;
        break;
      case 14:
        if (eqi(name, 0, 14, 'content-length')) {
          if (contentLength !== -1) return E_CL_DUP;
          contentLength = parseContentLength(value);
          if (contentLength === -1) return E_CL;
        }
        break;
      case 16:
        if (h2 && eqi(name, 0, 16, 'proxy-connection')) return E_H2_HOP;
        break;
      case 17:
        if (eqi(name, 0, 17, 'transfer-encoding')) {
          if (h2) return E_H2_HOP;
          if (chunked) return E_TE_DUP;
          if (!eqiTrim(value, 'chunked')) return E_TE;
          chunked = true;
        }
        break;
    }
  }
  if (chunked) {
    if (contentLength !== -1) return E_TE_CL;
    if (httpVersion === '1.0') return E_TE_10;
  }

  if (h2 && authority !== undefined) {
    if (host !== undefined && host.toLowerCase() !== authority.toLowerCase()) return E_HOST_MISMATCH;
    host = authority;
  }
  let hostname = '';
  if (host === undefined) {
    if (httpVersion !== '1.0') return E_HOST_MISSING;
    host = '';
  } else {
    const end = hostnameEnd(host);
    if (end < 0) return E_HOST;
    host = host.toLowerCase();
    hostname = end === host.length ? host : host.slice(0, end);
  }
  return {
    ok: true,
    host,
    hostname,
    hasBody: contentLength > 0 || chunked || (h2 && contentLength === -1),
    contentLength,
    chunked,
    expectContinue,
    upgrade: connUpgrade && upgradeWebsocket && httpVersion === '1.1' && method === 'GET',
    connectionTokens: tokens,
  };
}

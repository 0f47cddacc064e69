// Strict request checks (reliability.md §2) on what the HTTP parser hands over, and the framing facts found in one pass.
import { connectionTokens, eqi, eqiTrim, hasBadValueChar, hostnameEnd, isToken, listHas, looksLikeFraming, nameKind, parseContentLength } from './field-syntax.ts';

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
  /** Connection lists `close` / `keep-alive` (HTTP/1 persistence, RFC 9112 §9.3). */
  connectionClose: boolean;
  connectionKeepAlive: boolean;
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

/**
 * Checks a request as Node's parser delivered it (req.method, req.httpVersion, req.url, req.rawHeaders).
 * llhttp already rejects much of §2.3; this re-checks what it lets through and anything a future parser might.
 * HTTP/2 (version '2.0', pseudo-headers in rawHeaders): `authority` may pass `:authority` when the caller
 * has it apart; a `:authority` in rawHeaders is used as well. `valuesChecked`: the caller's parser already refused
 * CR, LF and NUL in field values (the h1 engine's parseHead does: no control character in the head, no CR or LF
 * inside a line), so the per-value scan is skipped; it is a pass over every byte of every value (a JWT is ~300).
 */
export function checkRequest(
  method: string, httpVersion: string, rawTarget: string, rawHeaders: string[], limits: RequestLimits, authority?: string, valuesChecked = false,
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
  let connClose = false;
  let connKeepAlive = false;
  let upgradeWebsocket = false;
  let tokens: string[] | null = null;
  for (let i = 0; i < n; i += 2) {
    const name = rawHeaders[i];
    const value = rawHeaders[i + 1];
    if (!valuesChecked && hasBadValueChar(value)) return E_VALUE;
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
          if (listHas(value, 'close')) connClose = true;
          if (listHas(value, 'keep-alive')) connKeepAlive = true;
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
          // Exactly `chunked`: the parsers already dropped leading OWS and trailing SP; a trailing HTAB is refused.
          if (!eqi(value, 0, value.length, 'chunked')) return E_TE;
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
    connectionClose: connClose,
    connectionKeepAlive: connKeepAlive,
  };
}

// Checks for single string values (names, CIDRs, URLs, hostnames, paths, templates); each returns a message or undefined.
import { isIP } from 'node:net';
import type { Check } from './field.ts';

const DNS_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const HOST_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;
const LABEL_KEY = /^(?:[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?\/)?[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const PARAM = /^\{[A-Za-z_][A-Za-z0-9_]*\}$/;
// RFC 3986 pchar, minus the characters the template syntax gives meaning to.
const LITERAL = /^(?:[A-Za-z0-9\-._~!$&'()+,;=:@]|%[0-9A-Fa-f]{2})+$/;

export const checkName: Check = (v) =>
  DNS_LABEL.test(v)
    ? undefined
    : `${JSON.stringify(v)} is not a valid name: use lower-case letters, digits and "-", start and end with a letter or digit, at most 63 characters`;

export const checkLabelKey: Check = (v) =>
  LABEL_KEY.test(v) ? undefined : `${JSON.stringify(v)} is not a valid label key (optional "prefix/" then name)`;

export const checkCidr: Check = (v) => {
  const bad = `${JSON.stringify(v)} is not a CIDR such as "10.0.0.0/8", "2001:db8::/32" or a single address`;
  const [addr, bits, ...rest] = v.split('/');
  const family = isIP(addr);
  if (!family || rest.length > 0) return bad;
  if (bits === undefined) return undefined;
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) return bad;
  return undefined;
};

function parseHttpUrl(v: string): URL | string {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    return `${JSON.stringify(v)} is not a URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `URL ${JSON.stringify(v)} must use http or https`;
  if (url.username || url.password) return `URL ${JSON.stringify(v)} must not carry credentials`;
  return url;
}

/** Longest Unix socket path the kernel takes (sun_path holds 108 bytes on Linux, 104 on macOS, with the NUL). */
const MAX_UNIX_PATH = 103;

/** The socket path of a `unix:/absolute/path` address, or undefined when `v` is not one (see checkUnixAddress). */
export function unixSocketPath(v: string): string | undefined {
  return v.startsWith('unix:') ? v.slice(5) : undefined;
}

/** `unix:/absolute/path`: a Unix domain socket (an absolute path, short enough for sun_path, no NUL). */
function checkUnixAddress(v: string): string | undefined {
  const path = v.slice(5);
  if (!path.startsWith('/')) return `${JSON.stringify(v)}: a Unix socket address is "unix:" and an absolute path`;
  if (path.includes('\0') || path.endsWith('/')) return `${JSON.stringify(v)} is not a socket file path`;
  if (Buffer.byteLength(path) > MAX_UNIX_PATH) return `${JSON.stringify(v)}: a Unix socket path may have at most ${MAX_UNIX_PATH} bytes`;
  return undefined;
}

/** An upstream origin: scheme, host and port only; or `unix:/path` (plaintext HTTP over a Unix domain socket). */
export const checkOriginUrl: Check = (v) => {
  if (unixSocketPath(v) !== undefined) return checkUnixAddress(v);
  const url = parseHttpUrl(v);
  if (typeof url === 'string') return url;
  if (url.pathname !== '/' || url.search || url.hash) {
    return `URL ${JSON.stringify(v)} must be an origin like "http://host:port" (no path, query or fragment)`;
  }
  return undefined;
};

export const checkHttpUrl: Check = (v) => {
  const url = parseHttpUrl(v);
  return typeof url === 'string' ? url : undefined;
};

function isHostname(v: string): boolean {
  return v.length <= 253 && v.split('.').every((l) => HOST_LABEL.test(l));
}

/** `api.example.com` or `*.example.com`. */
export const checkHostPattern: Check = (v) => {
  const host = v.startsWith('*.') ? v.slice(2) : v;
  return isHostname(host) ? undefined : `${JSON.stringify(v)} is not a hostname such as "api.example.com" or "*.example.com"`;
};

/** An IP address or hostname, or `unix:/path` (a Unix domain socket). */
export const checkBindAddress: Check = (v) => {
  if (unixSocketPath(v) !== undefined) return checkUnixAddress(v);
  return isIP(v) || isHostname(v) ? undefined : `${JSON.stringify(v)} is not an IP address or hostname to listen on`;
};

export const checkHeaderName: Check = (v) => (TOKEN.test(v) ? undefined : `${JSON.stringify(v)} is not a valid header name`);

export const checkMethod: Check = (v) =>
  v === '*' || /^[A-Za-z]+$/.test(v) ? undefined : `${JSON.stringify(v)} is not an HTTP method (or "*")`;

export const checkNotEmpty: Check = (v) => (v.length > 0 ? undefined : 'must not be empty');

function checkSegments(v: string, allowParams: boolean): string | undefined {
  if (!v.startsWith('/')) return `${JSON.stringify(v)} must start with "/"`;
  if (v === '/') return undefined;
  const segments = v.slice(1).split('/');
  const params = new Set<string>();
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    if (s === '') return `${JSON.stringify(v)} has an empty segment ("//" or a trailing "/")`;
    if (allowParams && s === '*') {
      if (i !== segments.length - 1) return `${JSON.stringify(v)}: "*" is only allowed as the last segment`;
    } else if (allowParams && s.startsWith('{')) {
      if (!PARAM.test(s)) return `${JSON.stringify(v)}: bad parameter segment ${JSON.stringify(s)}; use "{name}" as a whole segment`;
      if (params.has(s)) return `${JSON.stringify(v)}: parameter ${s} appears twice`;
      params.add(s);
    } else if (!LITERAL.test(s)) {
      return allowParams
        ? `${JSON.stringify(v)}: segment ${JSON.stringify(s)} has characters not allowed in a path; "{name}" and "*" must be whole segments`
        : `${JSON.stringify(v)}: segment ${JSON.stringify(s)} has characters not allowed in a base path (no templates or "*")`;
    }
  }
  return undefined;
}

/** An operation template: `/items`, `/items/{id}`, `/a/{x}/b/*`. */
export const checkUrlTemplate: Check = (v) => checkSegments(v, true);

/** An Api base path: `/` or `/orders/v1`, literal segments, no trailing slash. */
export const checkApiPath: Check = (v) => {
  if (v.length > 1 && v.endsWith('/')) return `${JSON.stringify(v)} must not end with "/"`;
  return checkSegments(v, false);
};

/** A Backend reference: `name` (in the referring resource's namespace) or `namespace/name`. */
export const checkBackendRef: Check = (v) => {
  const parts = v.split('/');
  const ok = parts.length <= 2 && parts.every((p) => DNS_LABEL.test(p));
  return ok ? undefined : `${JSON.stringify(v)} is not a Backend reference ("name" or "namespace/name")`;
};

/** A request path sent by health checks: `/healthz`, optionally with a query. */
export const checkRequestPath: Check = (v) =>
  /^\/[^\s#]*$/.test(v) ? undefined : `${JSON.stringify(v)} is not a request path such as "/healthz"`;

/** `200` → 200..200, `"500-599"`, `"5xx"`. */
export function parseStatusRange(v: unknown): { min: number; max: number } | undefined {
  let min: number;
  let max: number;
  if (typeof v === 'number') min = max = v;
  else if (typeof v !== 'string') return undefined;
  else if (/^[1-5]xx$/.test(v)) [min, max] = [Number(v[0]) * 100, Number(v[0]) * 100 + 99];
  else {
    const m = /^(\d{3})-(\d{3})$/.exec(v);
    if (!m) return undefined;
    [min, max] = [Number(m[1]), Number(m[2])];
  }
  const ok = Number.isInteger(min) && Number.isInteger(max) && min >= 100 && max <= 599 && min <= max;
  return ok ? { min, max } : undefined;
}

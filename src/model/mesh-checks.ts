// Checks for the mesh's single string values: trust domains, SPIFFE IDs, access sources, paths and methods.
import type { Check } from './field.ts';
import { isValidCidr } from '../lib/cidr.ts';
import { checkBackendRef } from './value-checks.ts';

const DNS_LIKE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const SPIFFE_TD = /^[a-z0-9._-]+$/;
const SPIFFE_SEGMENT = /^[A-Za-z0-9._-]+$/;
const UPPER_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Z]+$/;

/** A SPIFFE trust domain as this mesh accepts it: lower-case DNS-like (`lockgate.local`, `prod.example.com`). */
export const checkTrustDomain: Check = (v) =>
  v.length <= 255 && DNS_LIKE.test(v)
    ? undefined
    : `${JSON.stringify(v)} is not a trust domain: use lower-case DNS-like labels such as "lockgate.local"`;

/** A SPIFFE ID (spiffe.io SPIFFE-ID standard §2): `spiffe://trust-domain/path`, no port, user info, query or fragment. */
export const checkSpiffeId: Check = (v) => {
  const bad = (why: string) => `${JSON.stringify(v)} is not a SPIFFE ID (${why}); expected "spiffe://<trust-domain>/ns/<namespace>/sa/<service>"`;
  if (!v.startsWith('spiffe://')) return bad('must start with "spiffe://"');
  if (v.length > 2048) return bad('longer than 2048 bytes');
  const rest = v.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const td = slash < 0 ? rest : rest.slice(0, slash);
  if (td === '') return bad('empty trust domain');
  if (!SPIFFE_TD.test(td)) return bad(`trust domain ${JSON.stringify(td)} may only hold lower-case letters, digits, ".", "-" and "_"`);
  if (slash < 0) return undefined;
  const segments = rest.slice(slash + 1).split('/');
  for (const s of segments) {
    if (s === '') return bad('empty path segment or trailing "/"');
    if (s === '.' || s === '..') return bad('"." and ".." segments are not allowed');
    if (!SPIFFE_SEGMENT.test(s)) return bad(`path segment ${JSON.stringify(s)} may only hold letters, digits, ".", "-" and "_"`);
  }
  return undefined;
};

/** An AccessPolicy source: `*`, a service (`orders`, `shop/orders`) or a SPIFFE ID. */
export const checkAccessSource: Check = (v) => {
  if (v === '*') return undefined;
  if (v.startsWith('spiffe:')) return checkSpiffeId(v);
  return checkBackendRef(v) === undefined
    ? undefined
    : `${JSON.stringify(v)} is not a source: use "*", a service ("orders" or "namespace/orders") or a SPIFFE ID ("spiffe://…")`;
};

/** A MeshService reference: `name` or `namespace/name`. */
export const checkServiceRef: Check = (v) =>
  checkBackendRef(v) === undefined ? undefined : `${JSON.stringify(v)} is not a MeshService reference ("name" or "namespace/name")`;

/** An AccessPolicy path: exact (`/health`) or a prefix ending in `*` (`/admin/*`). */
export const checkAccessPath: Check = (v) => {
  if (!v.startsWith('/')) return `${JSON.stringify(v)} must start with "/"`;
  if (/[\s?#]/.test(v)) return `${JSON.stringify(v)} must be a path without spaces, query or fragment`;
  const star = v.indexOf('*');
  if (star >= 0 && star !== v.length - 1) return `${JSON.stringify(v)}: "*" is only allowed at the end (a prefix such as "/admin/*")`;
  return undefined;
};

/** A MeshRoute path: starts with `/`, no spaces, query or fragment. */
export const checkRoutePath: Check = (v) => {
  if (!v.startsWith('/')) return `${JSON.stringify(v)} must start with "/"`;
  return /[\s?#]/.test(v) ? `${JSON.stringify(v)} must be a path without spaces, query or fragment` : undefined;
};

/** Upper-case method tokens, so that rules compare byte for byte with the request line. */
export const checkUpperMethod: Check = (v) => {
  if (UPPER_TOKEN.test(v)) return undefined;
  const upper = v.toUpperCase();
  return UPPER_TOKEN.test(upper) ? `${JSON.stringify(v)}: methods are upper-case; write ${JSON.stringify(upper)}` : `${JSON.stringify(v)} is not an HTTP method`;
};

/** A `claim/<path>` criterion key: dotted names after `claim/`. */
export const checkClaimKey: Check = (v) =>
  /^claim\/[^.\s]+(\.[^.\s]+)*$/.test(v) ? undefined : `${JSON.stringify(v)}: write claim/<name> or claim/<name>.<name> (a dotted path into the claims)`;

/** `HH:MM`, 24-hour. */
export const checkTimeOfDay: Check = (v) => (/^([01][0-9]|2[0-3]):[0-5][0-9]$/.test(v) ? undefined : `${JSON.stringify(v)} is not a time of day "HH:MM" (24 h, e.g. "08:30")`);

const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

/** `mon`…`sun` or a range `mon-fri`. */
export const checkDays: Check = (v) => {
  const parts = v.toLowerCase().split('-');
  if (parts.length <= 2 && parts.every((p) => DAY_NAMES.includes(p))) return undefined;
  return `${JSON.stringify(v)} is not a day ("mon"…"sun") or a range of days ("mon-fri")`;
};

/** `YYYY-MM-DD`, a real date. */
export const checkDate: Check = (v) => {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(v);
  if (m !== null) {
    const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
    if (d.getUTCFullYear() === Number(m[1]) && d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3])) return undefined;
  }
  return `${JSON.stringify(v)} is not a date "YYYY-MM-DD"`;
};

/** An IANA time zone this Node knows. */
export const checkTimeZone: Check = (v) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: v });
    return undefined;
  } catch {
    return `${JSON.stringify(v)} is not a time zone (IANA names such as "UTC", "Europe/Berlin", "America/New_York")`;
  }
};

/** An address or CIDR. */
export const checkCidr: Check = (v) => (isValidCidr(v) ? undefined : `${JSON.stringify(v)} is not an IP address or CIDR ("10.0.0.0/8", "2001:db8::/32")`);

// The JWT checks `jose` leaves to the caller (RFC 8725 and APIM's claim rules): pure functions over decoded segments.
import { Buffer } from 'node:buffer';

/** Short machine reasons for `context.LastError.Reason`; APIM's names where reference/apim.md §2.1 gives them. */
export type JwtReason =
  | 'TokenNotPresent'
  | 'JwtInvalid'
  | 'TokenSignatureInvalid'
  | 'TokenSignatureKeyNotFound'
  | 'TokenAlgorithmNotAllowed'
  | 'TokenExpired'
  | 'TokenNotYetValid'
  | 'TokenAudienceNotAllowed'
  | 'TokenIssuerNotAllowed'
  | 'TokenClaimNotFound'
  | 'TokenClaimValueNotAllowed'
  | 'TokenTypeNotAllowed';

/** A failed check: the reason and a log-safe sentence (APIM's LastError.Message texts where it has them). */
export interface RuleFailure {
  reason: JwtReason;
  detail: string;
}

/** Every JWS algorithm we verify. `none` is deliberately absent and can never be allowed. */
export const SUPPORTED_ALGORITHMS: readonly string[] = [
  'HS256', 'HS384', 'HS512',
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
  'EdDSA', 'Ed25519',
];

/** RFC 7518 §3.2: an HMAC key must be at least as long as the hash output. */
export function minHmacKeyBytes(alg: string): number | undefined {
  switch (alg) {
    case 'HS256': return 32;
    case 'HS384': return 48;
    case 'HS512': return 64;
    default: return undefined;
  }
}

/** What we know of a key, as node:crypto's KeyObject reports it. */
export interface KeyFacts {
  type: 'secret' | 'public' | 'private';
  /** Secret keys: length in bytes. */
  secretBytes?: number;
  asymmetricKeyType?: string;
  namedCurve?: string;
  modulusLength?: number;
}

const RSA_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];

/**
 * The algorithms a key may verify: its type decides (RFC 8725 §3.1), so an HMAC algorithm is never
 * paired with a public key (algorithm confusion), HMAC keys shorter than the hash are excluded,
 * RSA keys under 2048 bits verify nothing, and a JWK `alg` narrows the set to exactly that value.
 */
export function algorithmsForKey(facts: KeyFacts, jwkAlg?: string): string[] {
  let algs: string[];
  if (facts.type === 'secret') {
    const n = facts.secretBytes ?? 0;
    algs = ['HS256', 'HS384', 'HS512'].filter((a) => n >= (minHmacKeyBytes(a) ?? Infinity));
  } else {
    switch (facts.asymmetricKeyType) {
      case 'rsa':
        algs = (facts.modulusLength ?? 0) >= 2048 ? RSA_ALGS.slice() : [];
        break;
      case 'rsa-pss':
        algs = (facts.modulusLength ?? 0) >= 2048 ? ['PS256', 'PS384', 'PS512'] : [];
        break;
      case 'ec':
        algs = facts.namedCurve === 'prime256v1' || facts.namedCurve === 'P-256' ? ['ES256']
          : facts.namedCurve === 'secp384r1' || facts.namedCurve === 'P-384' ? ['ES384']
            : facts.namedCurve === 'secp521r1' || facts.namedCurve === 'P-521' ? ['ES512'] : [];
        break;
      case 'ed25519':
        algs = ['EdDSA', 'Ed25519'];
        break;
      default:
        algs = [];
    }
  }
  return jwkAlg === undefined ? algs : algs.filter((a) => a === jwkAlg);
}

const B64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Strict base64url (RFC 7515 §2): URL alphabet only, no padding, no whitespace, and canonical
 * (the unused low bits of the last character are zero), so one byte string has one encoding.
 */
export function decodeBase64url(s: string): Uint8Array | undefined {
  if (!B64URL.test(s) || s.length % 4 === 1) return undefined;
  const bytes = Buffer.from(s, 'base64url');
  if (bytes.toString('base64url') !== s) return undefined;
  return bytes;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parse one segment as a JSON object, rejecting bad UTF-8 and duplicate member names (RFC 8725 §2.6, RFC 7519 §4). */
export function parseJsonObject(bytes: Uint8Array, what: string): Record<string, unknown> | RuleFailure {
  let text: string;
  let value: unknown;
  try {
    text = utf8.decode(bytes);
    value = JSON.parse(text);
  } catch {
    return { reason: 'JwtInvalid', detail: `${what} is not valid UTF-8 JSON` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { reason: 'JwtInvalid', detail: `${what} is not a JSON object` };
  }
  const dup = findDuplicateKey(text);
  if (dup !== undefined) return { reason: 'JwtInvalid', detail: `${what} repeats the member name ${JSON.stringify(dup)}` };
  return value as Record<string, unknown>;
}

/**
 * The first member name that occurs twice in one object, at any depth (after unescaping, so
 * "a" and "\u0061" collide). JSON.parse silently keeps the last one; we refuse the token instead.
 * Precondition: `json` is valid JSON. Iterative, so deep nesting cannot overflow the stack.
 */
export function findDuplicateKey(json: string): string | undefined {
  const stack: Array<Set<string> | null> = []; // null marks an array
  let expectKey = false;
  const n = json.length;
  for (let i = 0; i < n; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      let escaped = false;
      while (j < n) {
        const d = json.charCodeAt(j);
        if (d === 0x5c) {
          escaped = true;
          j += 2;
        } else if (d === 0x22) {
          break;
        } else {
          j++;
        }
      }
      const top = stack.length > 0 ? stack[stack.length - 1] : null;
      if (expectKey && top !== null) {
        const key = escaped ? (JSON.parse(json.slice(i, j + 1)) as string) : json.slice(i + 1, j);
        if (top.has(key)) return key;
        top.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b) {
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = stack.length > 0 && stack[stack.length - 1] !== null;
    }
  }
  return undefined;
}

/** The decoded compact JWS: the three encoded segments plus the parsed protected header. */
export interface CompactJws {
  header: Record<string, unknown>;
  alg: string;
  kid: string | undefined;
  payload: Uint8Array;
}

/**
 * Split and decode a compact JWS and apply the header rules that need no key: exactly three
 * segments (five is a JWE, which we do not decrypt), strict base64url, a non-empty signature,
 * `alg` a string and never `none` (RFC 8725 §3.1), no `crit` or `b64` (we implement no extension,
 * so RFC 7515 §4.1.11 says reject), `kid` a string when present.
 */
export function parseCompactJws(token: string): CompactJws | RuleFailure {
  const parts = token.split('.');
  if (parts.length === 5) return { reason: 'JwtInvalid', detail: 'encrypted tokens (JWE) are not supported' };
  if (parts.length !== 3) return { reason: 'JwtInvalid', detail: 'a JWT has three dot-separated segments' };
  const [h, p, s] = parts;
  if (h === '') return { reason: 'JwtInvalid', detail: 'the header segment is empty' };
  const headerBytes = decodeBase64url(h);
  const payload = decodeBase64url(p);
  const sig = decodeBase64url(s);
  if (headerBytes === undefined || payload === undefined || sig === undefined) {
    return { reason: 'JwtInvalid', detail: 'a segment is not canonical base64url' };
  }
  const header = parseJsonObject(headerBytes, 'the JOSE header');
  if (isFailure(header)) return header;
  const alg = header.alg;
  if (typeof alg !== 'string' || alg === '') return { reason: 'JwtInvalid', detail: 'the header has no "alg"' };
  if (alg.toLowerCase() === 'none' || sig.length === 0) {
    return { reason: 'TokenSignatureInvalid', detail: 'unsigned tokens are never accepted' };
  }
  if (Object.hasOwn(header, 'crit')) return { reason: 'JwtInvalid', detail: 'critical header extensions are not supported' };
  if (Object.hasOwn(header, 'b64')) return { reason: 'JwtInvalid', detail: 'unencoded payloads (b64) are not allowed in a JWT' };
  const kid = header.kid;
  if (kid !== undefined && typeof kid !== 'string') return { reason: 'JwtInvalid', detail: '"kid" is not a string' };
  return { header, alg, kid, payload };
}

export function isFailure(x: object): x is RuleFailure {
  return typeof (x as { reason?: unknown }).reason === 'string' && typeof (x as { detail?: unknown }).detail === 'string';
}

/** The interval (ms since the epoch) in which the token is valid: notBefore ≤ now < notAfter. */
export interface Validity {
  notBefore: number;
  notAfter: number;
  /** `exp` in ms, when present. */
  expiresAt: number | undefined;
}

export interface TimeRules {
  clockSkew: number;
  maxTokenAge: number | undefined;
  requireExpirationTime: boolean;
}

function numericDate(claims: Record<string, unknown>, name: string): number | undefined | RuleFailure {
  const v = claims[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) return { reason: 'JwtInvalid', detail: `"${name}" is not a NumericDate` };
  return v * 1000;
}

/**
 * Turn exp/nbf/iat into a validity window, once per token: exp (required unless turned off),
 * nbf, an iat in the future beyond the skew is refused like nbf (RFC 8725 has no iat rule, but a
 * token from the future is forged or from a broken clock), and `maxTokenAge` caps the age via iat.
 */
export function validityWindow(claims: Record<string, unknown>, rules: TimeRules): Validity | RuleFailure {
  const exp = numericDate(claims, 'exp');
  const nbf = numericDate(claims, 'nbf');
  const iat = numericDate(claims, 'iat');
  for (const v of [exp, nbf, iat]) if (typeof v === 'object') return v;
  const e = exp as number | undefined;
  const nb = nbf as number | undefined;
  const ia = iat as number | undefined;
  const missing: string[] = [];
  if (e === undefined && rules.requireExpirationTime) missing.push('exp');
  if (ia === undefined && rules.maxTokenAge !== undefined) missing.push('iat');
  if (missing.length > 0) return missingClaims(missing);
  const skew = rules.clockSkew;
  let notBefore = -Infinity;
  if (nb !== undefined) notBefore = nb - skew;
  if (ia !== undefined && ia - skew > notBefore) notBefore = ia - skew;
  let notAfter = Infinity;
  if (e !== undefined) notAfter = e + skew;
  if (ia !== undefined && rules.maxTokenAge !== undefined && ia + rules.maxTokenAge + skew < notAfter) {
    notAfter = ia + rules.maxTokenAge + skew;
  }
  return { notBefore, notAfter, expiresAt: e };
}

/** The check run on first verification and on every cache hit. */
export function checkValidity(v: Validity, now: number): RuleFailure | undefined {
  if (now >= v.notAfter) {
    return { reason: 'TokenExpired', detail: v.expiresAt !== undefined && now >= v.expiresAt ? 'the token has expired' : 'the token is older than the maximum token age' };
  }
  if (now < v.notBefore) return { reason: 'TokenNotYetValid', detail: 'the token is not valid yet (nbf or iat in the future)' };
  return undefined;
}

export function missingClaims(names: readonly string[]): RuleFailure {
  return { reason: 'TokenClaimNotFound', detail: `JWT token is missing the following claims: ${names.join(', ')}` };
}

/** `aud` may be a string or an array of strings; one configured audience must match (APIM: at least one). */
export function checkAudience(aud: unknown, audiences: readonly string[]): RuleFailure | undefined {
  if (audiences.length === 0) return undefined;
  const list = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  for (const a of list) if (typeof a === 'string' && audiences.includes(a)) return undefined;
  return { reason: 'TokenAudienceNotAllowed', detail: 'the token audience is not allowed' };
}

export function checkIssuer(iss: unknown, issuers: readonly string[]): RuleFailure | undefined {
  if (issuers.length === 0) return undefined;
  if (typeof iss === 'string' && issuers.includes(iss)) return undefined;
  return { reason: 'TokenIssuerNotAllowed', detail: 'the token issuer is not allowed' };
}

export interface RequiredClaim {
  name: string;
  /** `all` (APIM's default): every listed value must be present; `any`: one is enough. */
  match: 'all' | 'any';
  /** Splits a multi-valued claim such as "read,write". */
  separator?: string;
  /** Empty: the claim only has to be present. */
  values: string[];
}

function claimValues(v: unknown, separator: string | undefined): string[] {
  const out: string[] = [];
  const add = (x: unknown): void => {
    if (typeof x === 'string') {
      if (separator !== undefined && separator !== '') out.push(...x.split(separator));
      else out.push(x);
    } else if (typeof x === 'number' || typeof x === 'boolean') {
      out.push(String(x));
    }
  };
  if (Array.isArray(v)) for (const x of v) add(x);
  else add(v);
  return out;
}

function display(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'string' ? x : JSON.stringify(x))).join(',');
  return JSON.stringify(v) ?? String(v);
}

/** APIM's required-claims: all missing claims are named at once, then values are matched claim by claim. */
export function checkRequiredClaims(claims: Record<string, unknown>, required: readonly RequiredClaim[]): RuleFailure | undefined {
  if (required.length === 0) return undefined;
  const missing = required.filter((r) => !Object.hasOwn(claims, r.name) || claims[r.name] === null).map((r) => r.name);
  if (missing.length > 0) return missingClaims(missing);
  for (const r of required) {
    if (r.values.length === 0) continue;
    const have = new Set(claimValues(claims[r.name], r.separator));
    const ok = r.match === 'any' ? r.values.some((v) => have.has(v)) : r.values.every((v) => have.has(v));
    if (!ok) {
      return { reason: 'TokenClaimValueNotAllowed', detail: `Claim ${r.name} value of ${display(claims[r.name])} is not allowed. Access denied.` };
    }
  }
  return undefined;
}

/** RFC 8725 §3.11 explicit typing: compare `typ` without the optional "application/" prefix, case-insensitively. */
export function checkTokenType(typ: unknown, expected: string | undefined): RuleFailure | undefined {
  if (expected === undefined) return undefined;
  const norm = (t: string): string => t.toLowerCase().replace(/^application\//, '');
  if (typeof typ === 'string' && norm(typ) === norm(expected)) return undefined;
  return { reason: 'TokenTypeNotAllowed', detail: `the token type is not ${expected}` };
}

/** Deep-freeze parsed JSON so that a cached result can be shared by every request. Iterative. */
export function deepFreeze<T>(value: T): T {
  const todo: unknown[] = [value];
  while (todo.length > 0) {
    const v = todo.pop();
    if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
      Object.freeze(v);
      for (const k of Object.keys(v)) todo.push((v as Record<string, unknown>)[k]);
    }
  }
  return value;
}

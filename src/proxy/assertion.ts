// The end user between hops (identity issue §2): a short-lived ES256 assertion, minted once per user and audience,
// verified once per token, exchanged hop by hop with `act` = the workload that holds it.
//
// Shape (a JWT; header {alg: ES256, kid}):
//   iss    the control plane's SPIFFE ID (the signing keys are its own: created, rotated and published by it)
//   aud    the destination's SPIFFE ID (the service the assertion may be presented to)
//   sub, email, groups   the end user, as the gateway validated them
//   idp    the end user's original issuer (the IdentityProvider or validate-jwt issuer)
//   sid    the end user's session id, when there is one
//   act    { sub: <SPIFFE ID of the workload presenting it> } (RFC 8693): a receiver requires it to equal the mTLS peer
//   jti, iat, exp   exp - iat ≤ 5 minutes, and never past the end user's token (or the inbound assertion) expiry
// The request id travels in its own header, so one assertion serves every request of that user for up to a minute.
import { createPrivateKey, createPublicKey, sign, verify, randomBytes, type KeyObject } from 'node:crypto';
import { Lru } from '../lib/lru.ts';
import { tokenKey } from '../lib/token-key.ts';
import type { AssertionKeys, PublicJwk } from '../model/snapshot.ts';

export type { AssertionKeys, PublicJwk };

export const ASSERTION_HEADER = 'x-lockgate-assertion';
/** Plain copies for the app, set only by the inbound sidecar from a verified assertion (never passed from a client). */
export const USER_HEADER = 'x-lockgate-user';
export const EMAIL_HEADER = 'x-lockgate-email';
export const GROUPS_HEADER = 'x-lockgate-groups';

/** Longest life of an assertion (seconds). */
export const ASSERTION_LIFETIME_S = 300;
/**
 * A minted assertion is reused for up to this long (ms), while at least MIN_REMAINING_S of its life is left; each for a
 * random part of the last quarter less, so assertions minted together (a burst of users) are not all minted again in
 * the same second a minute later.
 */
export const REUSE_MS = 60_000;
export const REUSE_MIN_MS = 45_000;
const MIN_REMAINING_S = 60;
/** Clock skew allowed between hops (seconds). */
export const SKEW_S = 30;
/** Longest assertion accepted (bytes of header value): a bigger one is refused before any parsing. */
export const MAX_ASSERTION_BYTES = 8192;
const CACHE_SIZE = 10_000;

/** The end user an assertion speaks for. */
export interface AssertionUser {
  sub: string;
  email?: string;
  groups?: string[];
  /** The original issuer. */
  idp?: string;
  sid?: string;
  /** Expiry of what the user was validated from (epoch seconds): the assertion never outlives it. */
  exp?: number;
}

/** A verified assertion's content. */
export interface VerifiedAssertion {
  token: string;
  user: AssertionUser;
  aud: string;
  act: string;
  jti: string;
  iat: number;
  exp: number;
  /** The user as AccessPolicies see them (claimsOfUser), made once: the same object while the assertion is cached. */
  claims: Readonly<Record<string, unknown>>;
}

export type VerifyResult = { ok: true; assertion: VerifiedAssertion } | { ok: false; error: string };

const b64u = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

/** Parses and checks a keys document (the node's keys file); throws with what is wrong. */
export function parseAssertionKeys(text: string, source: string): AssertionKeys {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`${source}: not JSON: ${(err as Error).message}`);
  }
  const o = v as Partial<AssertionKeys>;
  if (typeof o !== 'object' || o === null || typeof o.issuer !== 'string' || o.issuer === '' || !Array.isArray(o.keys)) {
    throw new Error(`${source}: expected {"issuer": "...", "keys": [JWK, ...], "signing"?: JWK}`);
  }
  for (const k of o.keys) checkJwk(k, source, false);
  if (o.signing !== undefined) {
    checkJwk(o.signing, source, true);
    if (!o.keys.some((k) => k.kid === o.signing!.kid)) throw new Error(`${source}: the signing key ${o.signing.kid} is not among the published keys`);
  }
  return { issuer: o.issuer, keys: o.keys, ...(o.signing ? { signing: o.signing } : {}) };
}

function checkJwk(k: unknown, source: string, priv: boolean): void {
  const j = k as Record<string, unknown>;
  const ok = typeof j === 'object' && j !== null && j.kty === 'EC' && j.crv === 'P-256' && typeof j.x === 'string' && typeof j.y === 'string' && typeof j.kid === 'string' && j.kid !== '';
  if (!ok || (priv && typeof j.d !== 'string')) throw new Error(`${source}: every key must be an EC P-256 JWK with a kid${priv ? ' (and d, for the signing key)' : ''}`);
}

/** The user fields of validated claims (validate-jwt, an IdentityProvider): sub required, the rest when present. */
export function userFromClaims(claims: Readonly<Record<string, unknown>>, groupsClaim = 'groups'): AssertionUser | null {
  const sub = claims.sub;
  if (typeof sub !== 'string' || sub === '') return null;
  const u: AssertionUser = { sub };
  if (typeof claims.email === 'string') u.email = claims.email;
  const g = claims[groupsClaim];
  if (Array.isArray(g)) u.groups = g.filter((x): x is string => typeof x === 'string');
  else if (typeof g === 'string') u.groups = [g];
  if (typeof claims.iss === 'string') u.idp = claims.iss;
  if (typeof claims.sid === 'string') u.sid = claims.sid;
  if (typeof claims.exp === 'number') u.exp = claims.exp;
  return u;
}

/** The claims an AccessPolicy sees for an asserted user (what the assertion carries; `iss` = the original issuer). */
export function claimsOfUser(u: AssertionUser): Record<string, unknown> {
  const c: Record<string, unknown> = { sub: u.sub };
  if (u.email !== undefined) c.email = u.email;
  if (u.groups !== undefined) c.groups = u.groups;
  if (u.idp !== undefined) c.iss = u.idp;
  if (u.sid !== undefined) c.sid = u.sid;
  return c;
}

interface Minted {
  token: string;
  /** Handed out again until then (ms since the epoch). */
  reuseUntil: number;
}

/**
 * One node's assertion service: mints (gateway) and exchanges (outbound sidecar) with the signing key, verifies
 * (inbound and outbound sidecar) with the published keys. Per thread; its caches live as long as the config version.
 */
export class AssertionService {
  readonly issuer: string;
  /** This node's SPIFFE ID: `act` of what it mints, the required `aud` of what it accepts. */
  readonly self: string;
  readonly #keys = new Map<string, KeyObject>();
  readonly #signKey: KeyObject | null;
  readonly #signKid: string;
  readonly #header: string;
  readonly #now: () => number;
  readonly #minted = new Lru<string, Minted>(CACHE_SIZE);
  readonly #verified = new Lru<string, VerifiedAssertion>(CACHE_SIZE);
  readonly #bySource = new WeakMap<object, UserAssertion>();

  /** Calls that carry an assertion minted here keep the end user's `Authorization: Bearer` token (default: dropped). */
  readonly forwardBearer: boolean;

  constructor(keys: AssertionKeys, self: string, now: () => number = Date.now, o: { forwardBearer?: boolean } = {}) {
    this.forwardBearer = o.forwardBearer === true;
    this.issuer = keys.issuer;
    this.self = self;
    this.#now = now;
    for (const k of keys.keys) this.#keys.set(k.kid, createPublicKey({ key: { kty: k.kty, crv: k.crv, x: k.x, y: k.y }, format: 'jwk' }));
    const s = keys.signing;
    this.#signKey = s ? createPrivateKey({ key: { kty: s.kty, crv: s.crv, x: s.x, y: s.y, d: s.d }, format: 'jwk' }) : null;
    this.#signKid = s?.kid ?? '';
    // No `typ`: the assertion travels on every call, and nothing reads it (verification takes only this shape).
    this.#header = b64u(JSON.stringify({ alg: 'ES256', kid: this.#signKid }));
  }

  get canMint(): boolean {
    return this.#signKey !== null;
  }

  /**
   * The assertion for `user` addressed to `audience`, acting as this node: reused for up to a minute while it has
   * a minute of life left. `cap` (epoch seconds) caps the expiry (the inbound assertion's, on an exchange).
   */
  mint(user: AssertionUser, audience: string, cap?: number): string {
    return this.minted(user, audience, cap).token;
  }

  /** mint(), with until when the assertion may be handed out again (ms since the epoch). */
  minted(user: AssertionUser, audience: string, cap?: number): { token: string; reuseUntil: number } {
    const nowMs = this.#now();
    const key = `${audience}\0${user.idp ?? ''}\0${user.sub}\0${user.sid ?? ''}\0${user.email ?? ''}\0${user.groups?.join('\u0001') ?? ''}\0${user.exp ?? ''}\0${cap ?? ''}`;
    const hit = this.#minted.get(key);
    if (hit !== undefined && nowMs < hit.reuseUntil) return { token: hit.token, reuseUntil: hit.reuseUntil };
    if (this.#signKey === null) throw new Error('this node has no assertion signing key');
    const iat = Math.floor(nowMs / 1000);
    let exp = iat + ASSERTION_LIFETIME_S;
    if (user.exp !== undefined && user.exp < exp) exp = user.exp;
    if (cap !== undefined && cap < exp) exp = cap;
    const payload: Record<string, unknown> = { iss: this.issuer, aud: audience, sub: user.sub };
    if (user.email !== undefined) payload.email = user.email;
    if (user.groups !== undefined) payload.groups = user.groups;
    if (user.idp !== undefined) payload.idp = user.idp;
    if (user.sid !== undefined) payload.sid = user.sid;
    payload.act = { sub: this.self };
    payload.jti = b64u(randomBytes(12));
    payload.iat = iat;
    payload.exp = exp;
    const input = `${this.#header}.${b64u(JSON.stringify(payload))}`;
    const sig = sign('sha256', Buffer.from(input), { key: this.#signKey, dsaEncoding: 'ieee-p1363' });
    const token = `${input}.${b64u(sig)}`;
    const reuse = REUSE_MIN_MS + Math.floor(Math.random() * (REUSE_MS - REUSE_MIN_MS));
    const entry: Minted = { token, reuseUntil: Math.min(nowMs + reuse, exp * 1000 - MIN_REMAINING_S * 1000) };
    this.#minted.set(key, entry);
    return { token, reuseUntil: entry.reuseUntil };
  }

  /**
   * The source for an end user whose claims a validator handed out: one per claims object (validators hand out the
   * same object for the same token while they cache it), so a request costs a WeakMap lookup, not a user to build.
   */
  sourceFor(claims: Readonly<Record<string, unknown>>): UserAssertion | null {
    let u = this.#bySource.get(claims);
    if (u !== undefined) return u;
    const user = userFromClaims(claims);
    if (user === null) return null;
    u = new UserAssertion(this, user, undefined, !this.forwardBearer);
    this.#bySource.set(claims, u);
    return u;
  }

  /** The exchange source for a verified inbound assertion (one per verified assertion, cached with it). */
  exchangeFor(a: VerifiedAssertion): UserAssertion {
    let u = this.#bySource.get(a);
    if (u === undefined) this.#bySource.set(a, (u = new UserAssertion(this, a.user, a.exp)));
    return u;
  }

  get now(): () => number {
    return this.#now;
  }

  /**
   * Checks signature, issuer, algorithm and times (cached by the token until it expires). The caller checks `aud`
   * and `act` against what it knows (accept() does both for an inbound hop).
   */
  verify(token: string): VerifyResult {
    const nowS = this.#now() / 1000;
    const cacheKey = tokenKey(token);
    const found = this.#verified.get(cacheKey);
    const hit = found !== undefined && found.token === token ? found : undefined;
    if (hit !== undefined) {
      if (hit.exp + SKEW_S > nowS) return { ok: true, assertion: hit };
      return { ok: false, error: 'the assertion has expired' };
    }
    if (token.length > MAX_ASSERTION_BYTES) return { ok: false, error: `the assertion is longer than ${MAX_ASSERTION_BYTES} bytes` };
    const parts = token.split('.');
    if (parts.length !== 3) return { ok: false, error: 'the assertion is not a JWS compact serialization' };
    let header: Record<string, unknown>;
    let p: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8')) as Record<string, unknown>;
      p = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as Record<string, unknown>;
    } catch {
      return { ok: false, error: 'the assertion is not valid base64url JSON' };
    }
    if (typeof header !== 'object' || header === null || typeof p !== 'object' || p === null) return { ok: false, error: 'the assertion is not a JWT' };
    // Only our own shape: no alg other than ES256, no embedded or remote keys, nothing critical we would ignore.
    if (header.alg !== 'ES256') return { ok: false, error: `algorithm ${JSON.stringify(header.alg)} is not accepted (ES256 only)` };
    for (const k of Object.keys(header)) if (k !== 'alg' && k !== 'typ' && k !== 'kid') return { ok: false, error: `header parameter "${k}" is not accepted` };
    const key = typeof header.kid === 'string' ? this.#keys.get(header.kid) : undefined;
    if (key === undefined) return { ok: false, error: `unknown signing key ${JSON.stringify(header.kid)}` };
    const sig = Buffer.from(parts[2], 'base64url');
    if (sig.length !== 64 || !verify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`), { key, dsaEncoding: 'ieee-p1363' }, sig)) {
      return { ok: false, error: 'bad signature' };
    }
    if (p.iss !== this.issuer) return { ok: false, error: `issuer ${JSON.stringify(p.iss)} is not ${this.issuer}` };
    const { iat, exp } = p;
    if (typeof iat !== 'number' || typeof exp !== 'number') return { ok: false, error: 'iat and exp are required' };
    if (exp - iat > ASSERTION_LIFETIME_S) return { ok: false, error: `lifetime ${exp - iat} s is longer than ${ASSERTION_LIFETIME_S} s` };
    if (iat > nowS + SKEW_S) return { ok: false, error: 'issued in the future' };
    if (exp + SKEW_S <= nowS) return { ok: false, error: 'the assertion has expired' };
    const act = (p.act as { sub?: unknown } | undefined)?.sub;
    if (typeof p.aud !== 'string' || typeof act !== 'string' || typeof p.sub !== 'string' || typeof p.jti !== 'string') {
      return { ok: false, error: 'aud, act.sub, sub and jti are required' };
    }
    const user: AssertionUser = { sub: p.sub, exp };
    if (typeof p.email === 'string') user.email = p.email;
    if (Array.isArray(p.groups)) user.groups = p.groups.filter((g): g is string => typeof g === 'string');
    if (typeof p.idp === 'string') user.idp = p.idp;
    if (typeof p.sid === 'string') user.sid = p.sid;
    const assertion: VerifiedAssertion = { token, user, aud: p.aud, act, jti: p.jti, iat, exp, claims: claimsOfUser(user) };
    this.#verified.set(cacheKey, assertion);
    return { ok: true, assertion };
  }

  /**
   * An inbound hop: valid, addressed to this node, and presented by the workload it names (`act` = the mTLS
   * peer), so an assertion taken off one connection is useless from any other workload.
   */
  accept(token: string, peerId: string): VerifyResult {
    const r = this.verify(token);
    if (!r.ok) return r;
    if (r.assertion.aud !== this.self) return { ok: false, error: `the assertion is addressed to ${r.assertion.aud}, not ${this.self}` };
    if (peerId === '') return { ok: false, error: 'an assertion needs a caller with a workload certificate (mutual TLS)' };
    if (r.assertion.act !== peerId) return { ok: false, error: `the assertion was issued to ${r.assertion.act}, but ${peerId} presented it` };
    return r;
  }

  /**
   * An outbound hop: the app passes on the assertion this node received (addressed to it); the result is one for
   * `audience`, acting as this node, for the same user, expiring no later than the inbound one.
   */
  exchange(token: string, audience: string): { ok: true; token: string } | { ok: false; error: string } {
    const r = this.exchangeSource(token);
    return r.ok ? { ok: true, token: r.source.headerFor(audience) } : r;
  }

  /**
   * What an outbound hop forwards for the app's assertion: a source that mints one per audience (the forwarder asks
   * per attempt), once the assertion verifies and is addressed to this node.
   */
  exchangeSource(token: string): { ok: true; source: UserAssertion } | { ok: false; error: string } {
    const r = this.verify(token);
    if (!r.ok) return r;
    if (r.assertion.aud !== this.self) return { ok: false, error: `the assertion is addressed to ${r.assertion.aud}, not ${this.self}` };
    return { ok: true, source: this.exchangeFor(r.assertion) };
  }
}

/** Where a forwarder gets the assertion for the cluster it picked (its audience), once per attempt. */
export interface AssertionSource {
  /** The header value for `audience` (a destination SPIFFE ID). */
  headerFor(audience: string): string;
  /** A call that carries this assertion drops the end user's `Authorization: Bearer` token (the gateway's mints). */
  readonly dropsBearer: boolean;
}

/**
 * An end user as the next hop should see them (minted or exchanged by `service`). Remembers the last assertion it
 * handed out, so a request to the same audience while it may be reused costs one comparison and a clock read.
 */
export class UserAssertion implements AssertionSource {
  readonly #service: AssertionService;
  readonly #user: AssertionUser;
  readonly #cap: number | undefined;
  #audience = '';
  #token = '';
  #reuseUntil = 0;
  readonly dropsBearer: boolean;

  constructor(service: AssertionService, user: AssertionUser, cap?: number, dropsBearer = false) {
    this.#service = service;
    this.#user = user;
    this.#cap = cap;
    this.dropsBearer = dropsBearer;
  }

  headerFor(audience: string): string {
    if (audience === this.#audience && this.#service.now() < this.#reuseUntil) return this.#token;
    const m = this.#service.minted(this.#user, audience, this.#cap);
    this.#audience = audience;
    this.#token = m.token;
    this.#reuseUntil = m.reuseUntil;
    return m.token;
  }
}

/** The source for a request whose end user the gateway validated (null without a sub or a signing key). */
export function assertionFromClaims(service: AssertionService | null, claims: Readonly<Record<string, unknown>> | null): AssertionSource | null {
  if (service === null || claims === null || !service.canMint) return null;
  return service.sourceFor(claims);
}

const plainHeaders = new WeakMap<VerifiedAssertion, string[]>();

/**
 * `x-lockgate-user`, `-email`, `-groups` for the app, flat [name, value, …], made once per verified assertion (it is
 * cached with it). Values that are not safe in a header are left out.
 */
export function userHeadersOf(a: VerifiedAssertion): readonly string[] {
  let h = plainHeaders.get(a);
  if (h !== undefined) return h;
  h = [];
  const u = a.user;
  const sub = headerSafe(u.sub);
  if (sub !== undefined) h.push(USER_HEADER, sub);
  const email = u.email === undefined ? undefined : headerSafe(u.email);
  if (email !== undefined) h.push(EMAIL_HEADER, email);
  const groups = u.groups === undefined || u.groups.length === 0 ? undefined : headerSafe(u.groups.join(','));
  if (groups !== undefined) h.push(GROUPS_HEADER, groups);
  plainHeaders.set(a, h);
  return h;
}

/** A header value safe to hand on (visible ASCII, space, tab), else undefined: claims come from outside. */
export function headerSafe(v: string): string | undefined {
  return /^[\t\x20-\x7e]*$/.test(v) ? v : undefined;
}

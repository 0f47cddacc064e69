// Server-side login sessions and pending logins: the interface the data plane uses, and the in-memory implementation.
import { createHash, randomBytes } from 'node:crypto';

/** One signed-in browser. The cookie holds only the opaque id; records are stored under its SHA-256. */
export interface SessionRecord {
  /** The IdentityProvider's qualified name. */
  provider: string;
  /** The claims AccessPolicies see (the verified ID token's, with the groups claim mapped). */
  claims: Record<string, unknown>;
  idToken: string;
  accessToken: string;
  refreshToken: string | undefined;
  /** ms since the epoch: the earlier of the access token's and the ID token's expiry. */
  tokenExpiresAt: number;
  /** ms: that token lifetime when issued (the refresh margin is capped at half of it). */
  tokenLifetime: number;
  createdAt: number;
  lastSeenAt: number;
  /** ms: the session ends at this time whatever happens (maxAge). */
  expiresAt: number;
}

/** A login between the redirect to the provider and the callback, keyed by the `state` it sent. */
export interface PendingLogin {
  provider: string;
  codeVerifier: string;
  nonce: string;
  /** Path and query to go back to after the callback (always a local path). */
  returnTo: string;
  redirectUri: string;
  expiresAt: number;
}

/**
 * Synchronous on purpose: both implementations answer from memory or a local SQLite page cache in microseconds, and a
 * session lookup is on the request path of login routes. Every worker of a gateway must see the same store.
 */
export interface SessionStore {
  get(id: string, now: number): SessionRecord | undefined;
  put(id: string, record: SessionRecord): void;
  /** Records use; a session idle past the provider's idleTimeout ends (checked by the caller). */
  touch(id: string, now: number): void;
  delete(id: string): void;
  /**
   * Claims the right to refresh `id` until `until` (ms). false: another request (on any worker) refreshes now; the
   * caller serves with the tokens it has, which are still valid since refresh happens ahead of expiry.
   */
  claimRefresh(id: string, now: number, until: number): boolean;
  putLogin(state: string, login: PendingLogin): void;
  /** Returns and deletes the pending login: a `state` is good for one callback. */
  takeLogin(state: string, now: number): PendingLogin | undefined;
  close(): void;
}

/** A fresh opaque id (256 random bits, base64url): the cookie value. */
export function newSessionId(): string {
  return randomBytes(32).toString('base64url');
}

/** What the store keys a session by: a stolen store does not hold live cookies. */
export function sessionKey(id: string): string {
  return createHash('sha256').update(id).digest('base64url');
}

/** One worker only (tests, a single-thread gateway without a data dir). Bounded: the oldest sessions go first. */
export class MemorySessionStore implements SessionStore {
  readonly #sessions = new Map<string, { record: SessionRecord; refreshingUntil: number }>();
  readonly #logins = new Map<string, PendingLogin>();
  readonly #max: number;

  constructor(maxSessions = 100_000) {
    this.#max = maxSessions;
  }

  get(id: string, now: number): SessionRecord | undefined {
    const k = sessionKey(id);
    const r = this.#sessions.get(k);
    if (r === undefined) return undefined;
    if (now >= r.record.expiresAt) {
      this.#sessions.delete(k);
      return undefined;
    }
    return structuredClone(r.record);
  }

  put(id: string, record: SessionRecord): void {
    const k = sessionKey(id);
    this.#sessions.delete(k);
    if (this.#sessions.size >= this.#max) this.#sessions.delete(this.#sessions.keys().next().value!);
    this.#sessions.set(k, { record: structuredClone(record), refreshingUntil: 0 });
  }

  touch(id: string, now: number): void {
    const r = this.#sessions.get(sessionKey(id));
    if (r !== undefined) r.record.lastSeenAt = now;
  }

  delete(id: string): void {
    this.#sessions.delete(sessionKey(id));
  }

  claimRefresh(id: string, now: number, until: number): boolean {
    const r = this.#sessions.get(sessionKey(id));
    if (r === undefined || r.refreshingUntil > now) return false;
    r.refreshingUntil = until;
    return true;
  }

  putLogin(state: string, login: PendingLogin): void {
    if (this.#logins.size >= this.#max) this.#logins.delete(this.#logins.keys().next().value!);
    this.#logins.set(sessionKey(state), login);
  }

  takeLogin(state: string, now: number): PendingLogin | undefined {
    const k = sessionKey(state);
    const l = this.#logins.get(k);
    this.#logins.delete(k);
    return l !== undefined && now < l.expiresAt ? l : undefined;
  }

  close(): void {
    this.#sessions.clear();
    this.#logins.clear();
  }
}

// Login sessions every worker thread (and a restarted gateway) shares: <data-dir>/sessions.db, node:sqlite in WAL mode.
//
// Why SQLite and not the supervisor's shared table or messages: a callback and the next request may land on different
// workers a millisecond apart, so a write must be visible to every worker before the redirect leaves, which a posted
// message cannot promise; a session (tokens, claims) is kilobytes of variable size, which the fixed-slot
// SharedArrayBuffer table does not hold. One row lookup by primary key in WAL mode is a few microseconds from the page
// cache, and only requests carrying a session cookie on a login route pay it. Sessions also survive a restart.
// Redis (for several gateway hosts) is another implementation of the same interface.
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import { sessionKey, type PendingLogin, type SessionRecord, type SessionStore } from '../proxy/session-store.ts';

export const SESSIONS_DB = 'sessions.db';

export class SqliteSessionStore implements SessionStore {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #get: StatementSync;
  readonly #put: StatementSync;
  readonly #touch: StatementSync;
  readonly #delete: StatementSync;
  readonly #claim: StatementSync;
  readonly #putLogin: StatementSync;
  readonly #takeLogin: StatementSync;
  readonly #prune: StatementSync;
  readonly #pruneLogins: StatementSync;
  #writes = 0;

  private constructor(db: DatabaseSync, path: string) {
    this.#db = db;
    this.path = path;
    this.#get = db.prepare('SELECT data, expires_at FROM sessions WHERE key = ?');
    this.#put = db.prepare(`INSERT INTO sessions (key, data, expires_at, refreshing_until) VALUES (?, ?, ?, 0)
      ON CONFLICT (key) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at, refreshing_until = 0`);
    this.#touch = db.prepare("UPDATE sessions SET data = json_set(data, '$.lastSeenAt', ?) WHERE key = ?");
    this.#delete = db.prepare('DELETE FROM sessions WHERE key = ?');
    this.#claim = db.prepare('UPDATE sessions SET refreshing_until = ? WHERE key = ? AND refreshing_until <= ?');
    this.#putLogin = db.prepare('INSERT OR REPLACE INTO logins (key, data, expires_at) VALUES (?, ?, ?)');
    this.#takeLogin = db.prepare('DELETE FROM logins WHERE key = ? RETURNING data, expires_at');
    this.#prune = db.prepare('DELETE FROM sessions WHERE expires_at <= ?');
    this.#pruneLogins = db.prepare('DELETE FROM logins WHERE expires_at <= ?');
  }

  /** Opens (creating) `<dir>/sessions.db`; every worker opens its own connection to the same file. */
  static open(dir: string): SqliteSessionStore {
    mkdirSync(dir, { recursive: true });
    const path = join(dir, SESSIONS_DB);
    const db = new DatabaseSync(path);
    db.exec('PRAGMA busy_timeout = 2000');
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = NORMAL');
    db.exec(`CREATE TABLE IF NOT EXISTS sessions (key TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at INTEGER NOT NULL, refreshing_until INTEGER NOT NULL DEFAULT 0) STRICT;
      CREATE INDEX IF NOT EXISTS sessions_expiry ON sessions (expires_at);
      CREATE TABLE IF NOT EXISTS logins (key TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at INTEGER NOT NULL) STRICT;`);
    // Refresh tokens are in here: readable by the gateway's user only.
    try {
      chmodSync(path, 0o600);
    } catch {
      // another worker created it first; its mode is already set
    }
    return new SqliteSessionStore(db, path);
  }

  get(id: string, now: number): SessionRecord | undefined {
    const row = this.#get.get(sessionKey(id)) as { data: string; expires_at: number } | undefined;
    if (row === undefined || now >= row.expires_at) return undefined;
    return JSON.parse(row.data) as SessionRecord;
  }

  put(id: string, record: SessionRecord): void {
    this.#put.run(sessionKey(id), JSON.stringify(record), record.expiresAt);
    this.#maybePrune(record.lastSeenAt);
  }

  touch(id: string, now: number): void {
    this.#touch.run(now, sessionKey(id));
  }

  delete(id: string): void {
    this.#delete.run(sessionKey(id));
  }

  claimRefresh(id: string, now: number, until: number): boolean {
    return Number(this.#claim.run(until, sessionKey(id), now).changes) === 1;
  }

  putLogin(state: string, login: PendingLogin): void {
    this.#putLogin.run(sessionKey(state), JSON.stringify(login), login.expiresAt);
    this.#maybePrune(login.expiresAt - 600_000);
  }

  takeLogin(state: string, now: number): PendingLogin | undefined {
    const row = this.#takeLogin.get(sessionKey(state)) as { data: string; expires_at: number } | undefined;
    if (row === undefined || now >= row.expires_at) return undefined;
    return JSON.parse(row.data) as PendingLogin;
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  /** Expired rows go every 100 writes, so the table stays the size of the live sessions. */
  #maybePrune(now: number): void {
    if (++this.#writes % 100 !== 0) return;
    this.#prune.run(now);
    this.#pruneLogins.run(now);
  }
}

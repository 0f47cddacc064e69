// The embedded ConfigStore: one node:sqlite file (WAL, synchronous = FULL), off the request path.
//
// Tables: `kv` holds each live key; `history` holds every change (rev, seq within the batch) since the last
// compaction, plus, for each key alive at the compaction revision, the put that set it, so range({ revision }) works
// back to the compaction revision and watch replays from any later revision, across restarts.
// Writers: every write is one BEGIN IMMEDIATE transaction (SQLite's single writer lock; busy_timeout 5 s), and the
// compare runs inside it, so two stores on one file (two processes, or two connections) never lose an update.
// Watchers of this instance are woken on commit; changes committed by another connection are noticed by polling
// `PRAGMA data_version` every `pollIntervalMs` (default 100 ms) while at least one watch is open, never otherwise.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import {
  checkBatch, checkKey, checkRangeOptions, checkRevision, ConfigStoreError, prefixEnd, watchLoop,
  type BatchOp, type ChangeEvent, type ConfigStore, type Conflict, type KeyValue, type RangeOptions, type RangeResult,
  type ReadOptions, type WatchBatch, type WatchEvent, type WriteOptions, type WriteResult,
} from './config-store.ts';

export const CONFIG_DB = 'config.db';

export interface SqliteConfigStoreOptions {
  /** How often open watches look for commits by other connections or processes (PRAGMA data_version). */
  pollIntervalMs?: number;
}

interface KvRow { key: string; value: string; create_rev: number; mod_rev: number; version: number }
interface HistoryRow { rev: number; key: string; type: 'PUT' | 'DELETE'; value: string | null; create_rev: number; version: number }

const toKv = (r: KvRow): KeyValue => ({ key: r.key, value: r.value, createRevision: r.create_rev, modRevision: r.mod_rev, version: r.version });
const IN_PREFIX = 'key >= :start AND (:end IS NULL OR key < :end)';

export class SqliteConfigStore implements ConfigStore {
  readonly path: string;
  readonly #db: DatabaseSync;
  readonly #pollIntervalMs: number;
  readonly #wakers = new Set<() => void>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #dataVersion = 0;
  #closed = false;
  readonly #s: Record<'meta' | 'setMeta' | 'getKv' | 'putKv' | 'delKv' | 'addHistory' | 'rangeNow' | 'rangeAt' | 'events' | 'dropSuperseded' | 'dropTombstones' | 'dataVersion', StatementSync>;

  private constructor(db: DatabaseSync, path: string, pollIntervalMs: number) {
    this.#db = db;
    this.path = path;
    this.#pollIntervalMs = pollIntervalMs;
    this.#s = {
      meta: db.prepare('SELECT value FROM meta WHERE name = ?'),
      setMeta: db.prepare('UPDATE meta SET value = ? WHERE name = ?'),
      getKv: db.prepare('SELECT key, value, create_rev, mod_rev, version FROM kv WHERE key = ?'),
      putKv: db.prepare(`INSERT INTO kv (key, value, create_rev, mod_rev, version) VALUES (?, ?, ?, ?, ?)
        ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_rev = excluded.mod_rev, version = excluded.version`),
      delKv: db.prepare('DELETE FROM kv WHERE key = ?'),
      addHistory: db.prepare('INSERT INTO history (rev, seq, key, type, value, create_rev, version) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      rangeNow: db.prepare(`SELECT key, value, create_rev, mod_rev, version FROM kv WHERE ${IN_PREFIX} ORDER BY key LIMIT :limit`),
      // SQLite takes the bare columns from the row holding MAX(rev): each key's last change at or before :at.
      rangeAt: db.prepare(`SELECT key, value, create_rev, rev AS mod_rev, version FROM (
          SELECT key, type, value, create_rev, MAX(rev) AS rev, version FROM history WHERE rev <= :at AND ${IN_PREFIX} GROUP BY key)
        WHERE type = 'PUT' ORDER BY key LIMIT :limit`),
      events: db.prepare(`SELECT rev, key, type, value, create_rev, version FROM history WHERE rev >= :from AND ${IN_PREFIX} ORDER BY rev, seq`),
      dropSuperseded: db.prepare(`DELETE FROM history WHERE rev <= :at
        AND (key, rev) NOT IN (SELECT key, MAX(rev) FROM history WHERE rev <= :at GROUP BY key)`),
      dropTombstones: db.prepare("DELETE FROM history WHERE rev <= :at AND type = 'DELETE'"),
      dataVersion: db.prepare('PRAGMA data_version'),
    };
  }

  /** Opens (creating when needed) `<dataDir>/config.db`. */
  static open(dataDir: string, options: SqliteConfigStoreOptions = {}): SqliteConfigStore {
    const pollIntervalMs = options.pollIntervalMs ?? 100;
    if (!Number.isFinite(pollIntervalMs) || pollIntervalMs < 1) throw new ConfigStoreError('invalid', 'pollIntervalMs must be at least 1');
    mkdirSync(dataDir, { recursive: true });
    const path = join(dataDir, CONFIG_DB);
    const db = new DatabaseSync(path);
    try {
      db.exec(`PRAGMA journal_mode = WAL;
        PRAGMA synchronous = FULL;
        PRAGMA busy_timeout = 5000;
        BEGIN IMMEDIATE;
        CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
        INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compact_revision', 0);
        CREATE TABLE IF NOT EXISTS kv (
          key TEXT PRIMARY KEY, value TEXT NOT NULL,
          create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL, version INTEGER NOT NULL);
        CREATE TABLE IF NOT EXISTS history (
          rev INTEGER NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL,
          type TEXT NOT NULL CHECK (type IN ('PUT', 'DELETE')), value TEXT,
          create_rev INTEGER NOT NULL, version INTEGER NOT NULL,
          PRIMARY KEY (rev, seq));
        CREATE UNIQUE INDEX IF NOT EXISTS history_key_rev ON history (key, rev);
        COMMIT;`);
      return new SqliteConfigStore(db, path, pollIntervalMs);
    } catch (err) {
      if (db.isOpen) db.close();
      throw err;
    }
  }

  async revision(options?: ReadOptions): Promise<number> {
    this.#check(options);
    return this.#meta('revision');
  }

  async compactRevision(options?: ReadOptions): Promise<number> {
    this.#check(options);
    return this.#meta('compact_revision');
  }

  async get(key: string, options?: ReadOptions): Promise<KeyValue | undefined> {
    this.#check(options);
    checkKey(key);
    const row = this.#s.getKv.get(key) as KvRow | undefined;
    return row === undefined ? undefined : toKv(row);
  }

  async range(prefix: string, options?: RangeOptions): Promise<RangeResult> {
    this.#check(options);
    checkRangeOptions(prefix, options);
    return this.#read(() => {
      const current = this.#meta('revision');
      const at = options?.revision ?? current;
      if (at > current) throw new ConfigStoreError('future_revision', `revision ${at} is after the current revision ${current}`);
      const compacted = this.#meta('compact_revision');
      if (at < compacted) throw new ConfigStoreError('compacted', `revision ${at} has been compacted (history starts at ${compacted})`);
      const limit = options?.limit ?? -1;
      const params = { start: prefix, end: prefixEnd(prefix) ?? null, limit: limit === -1 ? -1 : limit + 1 };
      const rows = (at === current ? this.#s.rangeNow.all(params) : this.#s.rangeAt.all({ ...params, at })) as unknown as KvRow[];
      const more = limit !== -1 && rows.length > limit;
      return { kvs: (more ? rows.slice(0, limit) : rows).map(toKv), revision: at, more };
    });
  }

  put(key: string, value: string, options?: WriteOptions): Promise<WriteResult> {
    return this.putMany([{ key, value, ifModRevision: options?.ifModRevision }], options);
  }

  delete(key: string, options?: WriteOptions): Promise<WriteResult> {
    return this.putMany([{ key, delete: true, ifModRevision: options?.ifModRevision }], options);
  }

  async putMany(ops: readonly BatchOp[], options?: ReadOptions): Promise<WriteResult> {
    this.#check(options);
    checkBatch(ops);
    const result = this.#write((): WriteResult => {
      const current = this.#meta('revision');
      const found = new Map<string, KvRow | undefined>();
      const conflicts: Conflict[] = [];
      for (const op of ops) {
        const row = this.#s.getKv.get(op.key) as KvRow | undefined;
        found.set(op.key, row);
        const actual = row?.mod_rev ?? 0;
        if (op.ifModRevision !== undefined && op.ifModRevision !== actual) conflicts.push({ key: op.key, expected: op.ifModRevision, actual });
      }
      if (conflicts.length > 0) return { ok: false, revision: current, conflicts };
      const effective = ops.filter((op) => op.delete !== true || found.get(op.key) !== undefined);
      if (effective.length === 0) return { ok: true, revision: current, changed: 0 };
      const rev = current + 1;
      effective.forEach((op, seq) => {
        const cur = found.get(op.key);
        if (op.delete === true) {
          this.#s.delKv.run(op.key);
          this.#s.addHistory.run(rev, seq, op.key, 'DELETE', null, cur!.create_rev, 0);
        } else {
          const createRev = cur?.create_rev ?? rev;
          const version = (cur?.version ?? 0) + 1;
          this.#s.putKv.run(op.key, op.value, createRev, rev, version);
          this.#s.addHistory.run(rev, seq, op.key, 'PUT', op.value, createRev, version);
        }
      });
      this.#s.setMeta.run(rev, 'revision');
      return { ok: true, revision: rev, changed: effective.length };
    });
    if (result.ok && result.changed > 0) this.#wakeAll();
    return result;
  }

  watch(prefix: string, fromRevision: number, signal: AbortSignal): AsyncIterable<WatchEvent> {
    return watchLoop({
      read: (p, from): WatchBatch => this.#read(() => ({
        compactRevision: this.#meta('compact_revision'),
        revision: this.#meta('revision'),
        events: (this.#s.events.all({ from, start: p, end: prefixEnd(p) ?? null }) as unknown as HistoryRow[]).map((r): ChangeEvent => ({
          type: r.type, key: r.key, value: r.value, modRevision: r.rev, createRevision: r.create_rev, version: r.version,
        })),
      })),
      currentRevision: () => this.#meta('revision'),
      closed: () => this.#closed,
      subscribe: (wake) => this.#subscribe(wake),
    }, prefix, fromRevision, signal);
  }

  async compact(revision: number, options?: ReadOptions): Promise<void> {
    this.#check(options);
    checkRevision('revision', revision);
    const changed = this.#write(() => {
      const current = this.#meta('revision');
      if (revision > current) throw new ConfigStoreError('future_revision', `cannot compact at ${revision}: the current revision is ${current}`);
      if (revision <= this.#meta('compact_revision')) return false;
      this.#s.dropSuperseded.run({ at: revision });
      this.#s.dropTombstones.run({ at: revision });
      this.#s.setMeta.run(revision, 'compact_revision');
      return true;
    });
    if (changed) this.#wakeAll();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopPolling();
    this.#wakeAll();
    this.#db.close();
  }

  #check(options: ReadOptions | undefined): void {
    options?.signal?.throwIfAborted();
    if (this.#closed) throw new ConfigStoreError('closed', 'the config store is closed');
  }

  #meta(name: 'revision' | 'compact_revision'): number {
    return (this.#s.meta.get(name) as { value: number }).value;
  }

  /** One read snapshot (WAL readers see one commit throughout a transaction). */
  #read<T>(fn: () => T): T {
    this.#db.exec('BEGIN');
    try {
      return fn();
    } finally {
      this.#db.exec('COMMIT');
    }
  }

  /** One write transaction holding SQLite's writer lock for the compare and the writes; rolled back unless ok. */
  #write<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      const failed = typeof result === 'object' && result !== null && (result as { ok?: boolean }).ok === false;
      this.#db.exec(failed ? 'ROLLBACK' : 'COMMIT');
      return result;
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  #wakeAll(): void {
    for (const wake of [...this.#wakers]) wake();
  }

  #subscribe(wake: () => void): () => void {
    this.#wakers.add(wake);
    if (this.#timer === undefined && !this.#closed) {
      this.#dataVersion = this.#readDataVersion();
      this.#timer = setInterval(() => this.#poll(), this.#pollIntervalMs);
    }
    return () => {
      this.#wakers.delete(wake);
      if (this.#wakers.size === 0) this.#stopPolling();
    };
  }

  #poll(): void {
    if (this.#closed) return;
    const v = this.#readDataVersion();
    if (v === this.#dataVersion) return;
    this.#dataVersion = v;
    this.#wakeAll();
  }

  #readDataVersion(): number {
    return (this.#s.dataVersion.get() as { data_version: number }).data_version;
  }

  #stopPolling(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

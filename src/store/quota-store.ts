// Quota counters that survive a restart: durable slots of the shared counter table, in <data-dir>/quotas.db
// (node:sqlite, WAL). Only the main thread touches the database, never the request path: workers count in the
// SharedArrayBuffer, and the main thread flushes the slots that changed every `intervalMs` (default 1 s) and once
// more when it stops (drain).
//
// What a crash can lose: the counts added after the last completed flush, i.e. at most one flush interval of
// traffic (plus the few ms a flush takes). After such a crash a client can exceed its quota by at most what it sent
// in that last interval. Each flush is one transaction with synchronous = FULL, so a flush that completed survives
// a power loss too; a clean stop loses nothing. Rate-limit (non-durable) counters are not persisted.
//
// Rows are keyed by the table's 64-bit key hash (the key string is not stored), which depends on the table's seed:
// the seed lives in the database, and the composition root creates the table with `store.seed`.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { DurableCounter, SharedCounterTable } from '../proxy/shared-counter-table.ts';

export const QUOTAS_DB = 'quotas.db';

export interface LoadResult {
  restored: number;
  /** Rows whose window had ended: not restored (the window starts from zero) and deleted. */
  expired: number;
  /** Rows the table had no room for (status full or busy): those keys start from zero. */
  refused: number;
}

export interface FlushResult {
  written: number;
  /** Rows of ended windows deleted. */
  pruned: number;
}

interface Row {
  hash: string;
  period_ms: number;
  origin_ms: number;
  window_start_ms: number;
  count: number;
}

export class QuotaStore {
  readonly #db: DatabaseSync;
  readonly path: string;
  /** The hash seed the counter table must be created with for these rows to match its keys. */
  readonly seed: number;
  readonly #upsert: StatementSync;
  readonly #prune: StatementSync;
  #prunedAt = -Infinity;

  private constructor(db: DatabaseSync, path: string, seed: number) {
    this.#db = db;
    this.path = path;
    this.seed = seed;
    this.#upsert = db.prepare(`INSERT INTO quota_counters (hash, period_ms, origin_ms, window_start_ms, count, expires_at_ms, updated_at_ms)
      VALUES (?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (hash) DO UPDATE SET period_ms = excluded.period_ms, origin_ms = excluded.origin_ms,
        window_start_ms = excluded.window_start_ms, count = excluded.count, expires_at_ms = excluded.expires_at_ms,
        updated_at_ms = excluded.updated_at_ms`);
    this.#prune = db.prepare('DELETE FROM quota_counters WHERE expires_at_ms IS NOT NULL AND expires_at_ms <= ?');
  }

  /** Opens (creating when needed) `<dataDir>/quotas.db`; a new database gets a random hash seed. */
  static open(dataDir: string): QuotaStore {
    mkdirSync(dataDir, { recursive: true });
    const path = join(dataDir, QUOTAS_DB);
    const db = new DatabaseSync(path);
    try {
      db.exec(`PRAGMA journal_mode = WAL;
        PRAGMA synchronous = FULL;
        PRAGMA busy_timeout = 5000;
        CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE IF NOT EXISTS quota_counters (
          hash TEXT PRIMARY KEY,
          period_ms INTEGER NOT NULL,
          origin_ms INTEGER NOT NULL,
          window_start_ms INTEGER NOT NULL,
          count INTEGER NOT NULL,
          expires_at_ms INTEGER,
          updated_at_ms INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS quota_counters_expiry ON quota_counters (expires_at_ms);`);
      db.prepare("INSERT OR IGNORE INTO meta (name, value) VALUES ('hash_seed', ?)").run(String(randomInt(0, 2 ** 31)));
      const seed = Number((db.prepare("SELECT value FROM meta WHERE name = 'hash_seed'").get() as { value: string }).value);
      return new QuotaStore(db, path, seed);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  #checkSeed(table: SharedCounterTable): void {
    if (table.seed !== this.seed) {
      throw new Error(`the counter table has hash seed ${table.seed} but ${this.path} was written with seed ${this.seed}: create the table with the store's seed`);
    }
  }

  /** At start: puts every counter whose window has not ended back into `table`; deletes the rows of ended windows. */
  load(table: SharedCounterTable, nowMs = Date.now()): LoadResult {
    this.#checkSeed(table);
    const result: LoadResult = { restored: 0, expired: 0, refused: 0 };
    const rows = this.#db.prepare('SELECT hash, period_ms, origin_ms, window_start_ms, count FROM quota_counters').all() as unknown as Row[];
    for (const r of rows) {
      const status = table.restore({ hash: r.hash, periodMs: r.period_ms, originMs: r.origin_ms, windowStartMs: r.window_start_ms, count: r.count }, nowMs);
      if (status === 'restored') result.restored++;
      else if (status === 'expired') result.expired++;
      else result.refused++;
    }
    this.#prune.run(nowMs);
    return result;
  }

  /**
   * Writes the durable counters that changed since the last flush (one transaction) and deletes rows of ended
   * windows. On failure nothing is lost: the counters are flagged again for the next flush, and the error is thrown.
   */
  flush(table: SharedCounterTable, nowMs = Date.now()): FlushResult {
    this.#checkSeed(table);
    const dirty = table.collectDirty(nowMs);
    // Nothing changed: no transaction (a write to the database every second on every idle gateway), but rows of
    // ended windows are still deleted now and then.
    if (dirty.length === 0 && nowMs - this.#prunedAt < PRUNE_INTERVAL_MS) return { written: 0, pruned: 0 };
    this.#prunedAt = nowMs;
    let written = 0;
    try {
      this.#db.exec('BEGIN IMMEDIATE');
      for (const c of dirty) {
        const end = c.periodMs === 0 ? null : c.windowStartMs + c.periodMs;
        if (end !== null && end <= nowMs) continue;
        this.#upsert.run(c.hash, c.periodMs, c.originMs, c.windowStartMs, c.count, end, nowMs);
        written++;
      }
      const pruned = Number(this.#prune.run(nowMs).changes);
      this.#db.exec('COMMIT');
      return { written, pruned };
    } catch (err) {
      for (const c of dirty) table.markDirty(c.slot);
      if (this.#db.isOpen && this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw err;
    }
  }

  /** Every stored counter (inspection and tests). */
  rows(): DurableCounter[] {
    const rows = this.#db.prepare('SELECT hash, period_ms, origin_ms, window_start_ms, count FROM quota_counters ORDER BY hash').all() as unknown as Row[];
    return rows.map((r) => ({ hash: r.hash, periodMs: r.period_ms, originMs: r.origin_ms, windowStartMs: r.window_start_ms, count: r.count }));
  }

  close(): void {
    this.#db.close();
  }
}

/** With nothing to write, rows of ended windows are deleted at most this often. */
const PRUNE_INTERVAL_MS = 60_000;

export interface QuotaFlusher {
  /** Flushes now (throws on a database error; the counters stay flagged). */
  flushNow(): FlushResult;
  /** Stops the timer and flushes once more (drain); later calls do nothing and return null. */
  stop(): FlushResult | null;
}

export interface FlusherOptions {
  /** Default 1000: the most a crash can lose is this much traffic. */
  intervalMs?: number;
  /** Wall clock in ms since the epoch (tests inject one). */
  now?: () => number;
  /** A failed periodic flush (the next one retries); default: a process warning. */
  onError?: (err: Error) => void;
}

/** Main thread: flushes `table`'s durable counters into `store` every `intervalMs` until stop(). */
export function startQuotaFlusher(table: SharedCounterTable, store: QuotaStore, opts: FlusherOptions = {}): QuotaFlusher {
  const intervalMs = opts.intervalMs ?? 1000;
  if (!(intervalMs > 0 && Number.isFinite(intervalMs))) throw new RangeError(`intervalMs must be a positive number, got ${intervalMs}`);
  const now = opts.now ?? Date.now;
  const onError = opts.onError ?? ((err: Error) => process.emitWarning(`quota flush failed: ${err.message}`, 'LockgateQuotaWarning'));
  const timer = setInterval(() => {
    try {
      store.flush(table, now());
    } catch (err) {
      onError(err as Error);
    }
  }, intervalMs);
  timer.unref();
  let stopped = false;
  return {
    flushNow: () => store.flush(table, now()),
    stop: () => {
      if (stopped) return null;
      stopped = true;
      clearInterval(timer);
      return store.flush(table, now());
    },
  };
}

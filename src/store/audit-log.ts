// The control plane's append-only audit log: `<data-dir>/audit.db` (node:sqlite) plus the signed head file beside it.
//
// Its own file, not a table of config.db: the config store may be etcd, is compacted, backed up and restored as a
// whole; the trail must outlive all of that and be read with the control plane stopped (`lockgate audit verify
// --data-dir`). Rows are written in one BEGIN IMMEDIATE transaction each (SQLite's writer lock), after reading the tail
// inside it, so two writers (even two processes) can never fork the chain; triggers refuse UPDATE and DELETE, which
// stops mistakes, not an attacker (the hash chain and the signed head are what catch one).
// The head is signed with an Ed25519 key made on first open and sealed by the KeyWrapper (so a KMS wrapper works, and
// the master key never signs anything itself); its public key is published, so anyone can check a head without the
// master key. After each commit the head is signed and written to `<data-dir>/audit-head.json` by `writeFile` (atomic).
import type { KeyObject } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { KeyWrapper } from '../secrets/key-wrapper.ts';
import { AUDIT_DB, AUDIT_HEAD_FILE, parseRows, readHeadFile } from './audit-files.ts';
import { AuditError, newAuditKey, openAuditKey, sealAuditKey, type StoredAuditKey } from './audit-key.ts';
import {
  GENESIS_HASH, headSignatureValid, publicKeyId, sealRecord, signHead, TAIL_MISMATCH_ACTION, verifyAudit,
  type AuditHead, type AuditInput, type AuditRecord, type AuditSink, type AuditVerification, type SignedAuditHead,
} from './audit-record.ts';

export { AUDIT_DB, AUDIT_HEAD_FILE, readAuditFiles, readHeadFile } from './audit-files.ts';
export { AuditError } from './audit-key.ts';
export const SYSTEM_ACTOR = 'lockgate:control-plane';

export interface AuditLogOptions {
  dataDir: string;
  /** Seals a new signing key (and re-seals on reseal()). */
  wrapper: KeyWrapper;
  /** Every master key the stored signing key may be sealed under (mid-rotation: the new and the old); default [wrapper]. */
  openWith?: () => readonly KeyWrapper[];
  /** Writes the head file so readers see the old one or the new one (the composition root passes writeFileAtomic). */
  writeFile: (path: string, text: string) => Promise<void>;
  now?: () => number;
  log?: (event: string, fields: Record<string, unknown>) => void;
}

const SCHEMA = `PRAGMA journal_mode = WAL;
  PRAGMA synchronous = FULL;
  PRAGMA busy_timeout = 5000;
  BEGIN IMMEDIATE;
  CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS records (seq INTEGER PRIMARY KEY, time TEXT NOT NULL, hash TEXT NOT NULL, record TEXT NOT NULL);
  CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
  COMMIT;`;

export class AuditLog implements AuditSink {
  readonly publicKey: KeyObject;
  readonly keyId: string;
  readonly #o: AuditLogOptions;
  readonly #db: DatabaseSync;
  readonly #privateKey: KeyObject;
  readonly #s: Record<'tail' | 'insert' | 'page' | 'all', StatementSync>;
  readonly #now: () => number;
  /** The last head this process signed or found valid on disk: the log must still end there at the next append. */
  #expected: AuditHead & { why?: string };
  #signed: SignedAuditHead | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  readonly #headListeners = new Set<(head: SignedAuditHead) => void>();

  private constructor(o: AuditLogOptions, db: DatabaseSync, keys: { privateKey: KeyObject; publicKey: KeyObject }, onDisk: SignedAuditHead | undefined) {
    this.#o = o;
    this.#db = db;
    this.#now = o.now ?? Date.now;
    this.#privateKey = keys.privateKey;
    this.publicKey = keys.publicKey;
    this.keyId = publicKeyId(keys.publicKey);
    this.#s = {
      tail: db.prepare('SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1'),
      insert: db.prepare('INSERT INTO records (seq, time, hash, record) VALUES (?, ?, ?, ?)'),
      page: db.prepare('SELECT record FROM records WHERE seq > :after AND time >= :since ORDER BY seq LIMIT :limit'),
      all: db.prepare('SELECT record FROM records ORDER BY seq'),
    };
    if (onDisk === undefined) this.#expected = { count: 0, lastHash: GENESIS_HASH, time: '', why: 'there was no signed head' };
    else if (!headSignatureValid(onDisk, keys.publicKey)) this.#expected = { count: 0, lastHash: GENESIS_HASH, time: '', why: 'the signed head on disk did not verify' };
    else {
      this.#expected = onDisk;
      this.#signed = onDisk;
    }
  }

  /**
   * Opens (creating when needed) `<dataDir>/audit.db` and its signing key. When the log does not end where the signed
   * head on disk says (a crash between commit and head write, a record dropped or added while we were down, a missing
   * or forged head), a `audit.tail-mismatch` record saying so is appended and signed: the evidence stays in the chain.
   */
  static async open(o: AuditLogOptions): Promise<AuditLog> {
    mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
    const db = new DatabaseSync(join(o.dataDir, AUDIT_DB));
    try {
      db.exec(SCHEMA);
      const row = db.prepare("SELECT value FROM meta WHERE name = 'signing_key'").get() as { value: string } | undefined;
      let stored: StoredAuditKey;
      if (row !== undefined) stored = JSON.parse(row.value) as StoredAuditKey;
      else {
        // Two first opens racing: one key wins, and both use it.
        db.prepare("INSERT OR IGNORE INTO meta (name, value) VALUES ('signing_key', ?)").run(JSON.stringify(await newAuditKey(o.wrapper)));
        stored = JSON.parse((db.prepare("SELECT value FROM meta WHERE name = 'signing_key'").get() as { value: string }).value) as StoredAuditKey;
      }
      const log = new AuditLog(o, db, await openAuditKey(stored, o.openWith?.() ?? [o.wrapper]), await readHeadFile(o.dataDir));
      await log.#reconcile();
      return log;
    } catch (err) {
      if (db.isOpen) db.close();
      throw err;
    }
  }

  /** Appends one record (and signs the new head); appends run one at a time, in call order. */
  append(input: AuditInput, signal?: AbortSignal): Promise<AuditRecord> {
    return this.#exclusive(async () => {
      signal?.throwIfAborted();
      if (typeof input.actor !== 'string' || input.actor === '' || typeof input.action !== 'string' || input.action === '' || typeof input.target !== 'string') {
        throw new AuditError('audit_input', 'an audit record needs an actor, an action and a target');
      }
      const written = this.#write((tail) => [...this.#mismatchRecord(tail), input]);
      return written[written.length - 1];
    });
  }

  /** Records after `after` (seq), from `since` (ISO time) on, at most `limit`; `more` when there are further ones. */
  read(o: { after?: number; since?: string; limit?: number } = {}): { records: AuditRecord[]; more: boolean } {
    this.#check();
    const limit = o.limit ?? 1000;
    const rows = this.#s.page.all({ after: o.after ?? 0, since: o.since ?? '', limit: limit + 1 }) as unknown as { record: string }[];
    const records = parseRows(rows.slice(0, limit)) as AuditRecord[];
    return { records, more: rows.length > limit };
  }

  /** The newest signed head, for /v1/audit/head and for publishing in snapshots. */
  currentHead(): SignedAuditHead | undefined {
    return this.#signed;
  }

  /** Called with each newly signed head, after its file was written (e.g. to publish it in the next snapshot). */
  onHead(listener: (head: SignedAuditHead) => void): () => void {
    this.#headListeners.add(listener);
    return () => this.#headListeners.delete(listener);
  }

  /** The public key (PEM) heads verify with. */
  get publicKeyPem(): string {
    return this.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }

  /** Every record checked against the head this process last signed (or, with `fromDisk`, the head file). */
  async verify(o: { fromDisk?: boolean } = {}): Promise<AuditVerification> {
    this.#check();
    const records = parseRows(this.#s.all.all() as unknown as { record: string }[]);
    const head = o.fromDisk === true ? await readHeadFile(this.#o.dataDir) : this.#signed;
    return verifyAudit(records, head, this.publicKey);
  }

  /** Seals the signing key again under the current master key (master-key rotation); the key itself does not change. */
  reseal(): Promise<void> {
    return this.#exclusive(async () => {
      this.#check();
      const stored = await sealAuditKey({ privateKey: this.#privateKey, publicKey: this.publicKey }, this.#o.wrapper);
      this.#db.prepare("UPDATE meta SET value = ? WHERE name = 'signing_key'").run(JSON.stringify(stored));
    });
  }

  /** Waits for appends in flight, then closes the database. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    this.#db.close();
  }

  async #reconcile(): Promise<void> {
    await this.#exclusive(async () => {
      this.#write((tail) => this.#mismatchRecord(tail));
    });
  }

  /** The `audit.tail-mismatch` record to write first when the log's end is not the expected one (else nothing). */
  #mismatchRecord(tail: AuditHead): AuditInput[] {
    const e = this.#expected;
    if (tail.count === e.count && tail.lastHash === e.lastHash) return [];
    const why = e.why ?? `the last signed head covered ${e.count} record${e.count === 1 ? '' : 's'} ending in ${e.lastHash.slice(0, 12)}…`;
    const reason = `${why}, but the log held ${tail.count} ending in ${tail.lastHash.slice(0, 12)}…`;
    this.#o.log?.('audit_tail_mismatch', { expectedCount: e.count, expectedHash: e.lastHash, foundCount: tail.count, foundHash: tail.lastHash, reason });
    return [{
      actor: SYSTEM_ACTOR, action: TAIL_MISMATCH_ACTION, target: 'audit', reason,
      details: { expectedCount: e.count, expectedHash: e.lastHash, foundCount: tail.count, foundHash: tail.lastHash },
    }];
  }

  /** One transaction: reads the tail, appends what `make` returns after it, commits; then signs and saves the head. */
  #write(make: (tail: AuditHead) => AuditInput[]): AuditRecord[] {
    this.#check();
    const written: AuditRecord[] = [];
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const t = this.#s.tail.get() as { seq: number; hash: string } | undefined;
      let tail: AuditHead = { count: t?.seq ?? 0, lastHash: t?.hash ?? GENESIS_HASH, time: '' };
      const inputs = make(tail);
      const time = inputs.length > 0 ? new Date(this.#now()).toISOString() : '';
      for (const input of inputs) {
        const r = sealRecord(input, tail.count + 1, time, tail.lastHash);
        this.#s.insert.run(r.seq, r.time, r.hash, JSON.stringify(r));
        written.push(r);
        tail = { count: r.seq, lastHash: r.hash, time };
      }
      this.#db.exec('COMMIT');
      if (written.length > 0) this.#expected = tail;
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw err;
    }
    return written;
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn).then(async (result) => {
      await this.#saveHead();
      return result;
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Signs the expected head (what we last committed) when it is newer than the one signed, and writes the file. */
  async #saveHead(): Promise<void> {
    const e = this.#expected;
    if (this.#signed !== undefined && this.#signed.count === e.count && this.#signed.lastHash === e.lastHash) return;
    if (e.why !== undefined) return; // nothing committed yet and the disk head was unusable: nothing to sign
    const head = signHead(e, this.#privateKey, this.publicKey);
    await this.#o.writeFile(join(this.#o.dataDir, AUDIT_HEAD_FILE), JSON.stringify(head, null, 2) + '\n');
    this.#signed = head;
    for (const l of this.#headListeners) {
      try {
        l(head);
      } catch (err) {
        this.#o.log?.('audit_head_listener_failed', { error: (err as Error).message });
      }
    }
  }

  #check(): void {
    if (this.#closed) throw new AuditError('audit_closed', 'the audit log is closed');
  }
}

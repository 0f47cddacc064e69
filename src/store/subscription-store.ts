// Gateway-local subscription store: one node:sqlite database under --data-dir (WAL, one writer).
// Never on the request path: the gateway loads all records into memory and reloads on change.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import { generateKey, hashKey, checkSuppliedKey } from '../lib/subscription-keys.ts';
import { formatScope, isValidSubscriptionName, parseScope, type SubscriptionRecord, type SubscriptionScope, type SubscriptionState } from '../model/subscription.ts';

export const SUBSCRIPTIONS_DB = 'subscriptions.db';

export class SubscriptionError extends Error {
  readonly code: 'not_found' | 'exists' | 'invalid' | 'conflict';
  constructor(code: SubscriptionError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

export interface CreateOptions {
  name: string;
  scope: SubscriptionScope;
  owner?: string;
  /** Supplied keys (migrating consumers keep theirs); generated when absent. */
  primaryKey?: string;
  secondaryKey?: string;
  expiresAt?: string | null;
}

/** Keys in clear exist only in the return value of create() and regenerate(): shown once. */
export interface IssuedKeys {
  primaryKey?: string;
  secondaryKey?: string;
}

interface Row {
  id: string;
  name: string;
  scope: string;
  owner: string;
  state: string;
  primary_hash: string;
  secondary_hash: string;
  created_at: string;
  expires_at: string | null;
}

function toRecord(r: Row): SubscriptionRecord {
  return {
    id: r.id,
    name: r.name,
    scope: parseScope(r.scope) as SubscriptionScope,
    owner: r.owner,
    state: r.state as SubscriptionState,
    primaryKeyHash: r.primary_hash,
    secondaryKeyHash: r.secondary_hash,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
  };
}

/** Allowed operator transitions; `cancelled` is final, as in API Management. */
const TRANSITIONS: Record<string, SubscriptionState[]> = {
  suspend: ['active'],
  resume: ['suspended'],
  cancel: ['active', 'suspended'],
};

export class SubscriptionStore {
  readonly #db: DatabaseSync;
  readonly path: string;

  private constructor(db: DatabaseSync, path: string) {
    this.#db = db;
    this.path = path;
  }

  /** Opens (creating when needed) `<dataDir>/subscriptions.db`. */
  static open(dataDir: string): SubscriptionStore {
    mkdirSync(dataDir, { recursive: true });
    const path = join(dataDir, SUBSCRIPTIONS_DB);
    const db = new DatabaseSync(path);
    db.exec(`PRAGMA journal_mode = WAL;
      PRAGMA busy_timeout = 5000;
      CREATE TABLE IF NOT EXISTS subscriptions (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        scope TEXT NOT NULL,
        owner TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL CHECK (state IN ('active', 'suspended', 'cancelled')),
        primary_hash TEXT NOT NULL UNIQUE,
        secondary_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        expires_at TEXT,
        updated_at TEXT NOT NULL
      );`);
    return new SubscriptionStore(db, path);
  }

  create(o: CreateOptions, now = new Date()): { record: SubscriptionRecord; keys: IssuedKeys } {
    if (!isValidSubscriptionName(o.name)) throw new SubscriptionError('invalid', `invalid subscription name "${o.name}" (lowercase letters, digits, "-"; at most 63)`);
    for (const k of [o.primaryKey, o.secondaryKey]) {
      const problem = k === undefined ? null : checkSuppliedKey(k);
      if (problem !== null) throw new SubscriptionError('invalid', problem);
    }
    if (o.primaryKey !== undefined && o.primaryKey === o.secondaryKey) throw new SubscriptionError('invalid', 'the primary and secondary keys must differ');
    const expiresAt = o.expiresAt ?? null;
    if (expiresAt !== null && Number.isNaN(Date.parse(expiresAt))) throw new SubscriptionError('invalid', `invalid expiry date "${expiresAt}"`);
    const primary = o.primaryKey ?? generateKey();
    const secondary = o.secondaryKey ?? generateKey();
    const record: SubscriptionRecord = {
      id: `sub_${randomBytes(8).toString('hex')}`,
      name: o.name,
      scope: o.scope,
      owner: o.owner ?? '',
      state: 'active',
      primaryKeyHash: hashKey(primary),
      secondaryKeyHash: hashKey(secondary),
      createdAt: now.toISOString(),
      expiresAt: expiresAt === null ? null : new Date(expiresAt).toISOString(),
    };
    this.#assertKeysUnused([record.primaryKeyHash, record.secondaryKeyHash]);
    try {
      this.#db
        .prepare('INSERT INTO subscriptions (id, name, scope, owner, state, primary_hash, secondary_hash, created_at, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(record.id, record.name, formatScope(record.scope), record.owner, record.state, record.primaryKeyHash, record.secondaryKeyHash, record.createdAt, record.expiresAt, record.createdAt);
    } catch (err) {
      if (String((err as Error).message).includes('UNIQUE') && this.get(o.name) !== undefined) {
        throw new SubscriptionError('exists', `a subscription named "${o.name}" already exists`);
      }
      throw err;
    }
    const keys: IssuedKeys = {};
    if (o.primaryKey === undefined) keys.primaryKey = primary;
    if (o.secondaryKey === undefined) keys.secondaryKey = secondary;
    return { record, keys };
  }

  get(name: string): SubscriptionRecord | undefined {
    const row = this.#db.prepare('SELECT * FROM subscriptions WHERE name = ?').get(name) as Row | undefined;
    return row === undefined ? undefined : toRecord(row);
  }

  list(): SubscriptionRecord[] {
    return (this.#db.prepare('SELECT * FROM subscriptions ORDER BY name').all() as unknown as Row[]).map(toRecord);
  }

  /** The record whose primary or secondary key hashes to `keyHash`. */
  findByKeyHash(keyHash: string): SubscriptionRecord | undefined {
    const row = this.#db.prepare('SELECT * FROM subscriptions WHERE primary_hash = ? OR secondary_hash = ?').get(keyHash, keyHash) as Row | undefined;
    return row === undefined ? undefined : toRecord(row);
  }

  /** Replaces one key; the other keeps working (rotation without downtime). Returns the new key in clear. */
  regenerate(name: string, which: 'primary' | 'secondary', supplied?: string, now = new Date()): string {
    const r = this.#require(name);
    if (r.state === 'cancelled') throw new SubscriptionError('conflict', `subscription "${name}" is cancelled`);
    if (supplied !== undefined) {
      const problem = checkSuppliedKey(supplied);
      if (problem !== null) throw new SubscriptionError('invalid', problem);
    }
    const key = supplied ?? generateKey();
    const hash = hashKey(key);
    const other = which === 'primary' ? r.secondaryKeyHash : r.primaryKeyHash;
    if (hash === other) throw new SubscriptionError('invalid', 'the primary and secondary keys must differ');
    this.#assertKeysUnused([hash]);
    const column = which === 'primary' ? 'primary_hash' : 'secondary_hash';
    this.#db.prepare(`UPDATE subscriptions SET ${column} = ?, updated_at = ? WHERE name = ?`).run(hash, now.toISOString(), name);
    return key;
  }

  setState(name: string, action: 'suspend' | 'resume' | 'cancel', now = new Date()): SubscriptionRecord {
    const r = this.#require(name);
    if (!TRANSITIONS[action].includes(r.state)) {
      throw new SubscriptionError('conflict', `cannot ${action} subscription "${name}": it is ${r.state}`);
    }
    const state: SubscriptionState = action === 'suspend' ? 'suspended' : action === 'resume' ? 'active' : 'cancelled';
    this.#db.prepare('UPDATE subscriptions SET state = ?, updated_at = ? WHERE name = ?').run(state, now.toISOString(), name);
    return { ...r, state };
  }

  /** Changes when another connection (the CLI, another process) commits: cheap to poll. */
  dataVersion(): number {
    return (this.#db.prepare('PRAGMA data_version').get() as { data_version: number }).data_version;
  }

  close(): void {
    this.#db.close();
  }

  #require(name: string): SubscriptionRecord {
    const r = this.get(name);
    if (r === undefined) throw new SubscriptionError('not_found', `no subscription named "${name}"`);
    return r;
  }

  /** A key already in use by any subscription (either slot) must not be issued again. */
  #assertKeysUnused(hashes: string[]): void {
    for (const h of hashes) {
      if (this.findByKeyHash(h) !== undefined) throw new SubscriptionError('conflict', 'that key is already in use by another subscription');
    }
  }
}

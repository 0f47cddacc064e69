// The control plane's config store, shaped like etcd v3: one global revision, compare-and-swap, watch from a revision.
//
// Semantics every backend keeps (the contract suite in config-store.contract.ts checks them):
// - The store revision starts at 0 (nothing written) and grows by one per committed write; a batch is one revision.
// - Each key has createRevision (the revision that created its current life), modRevision (its last write) and
//   version (writes since creation, 1 after the first put); a delete ends the life, a later put starts a new one.
// - `ifModRevision` is the compare: the key's modRevision must equal it, 0 meaning "must not exist". A failed
//   compare is a result ({ ok: false, conflicts }), never an exception, and writes nothing.
// - Deleting an absent key is not a change: it does not bump the revision (as in etcd).
// - History: every change after the last compaction is kept, so range({ revision }) works for any revision from the
//   compaction revision to the current one, and watch(fromRevision) works for any fromRevision after it.

/** One key's current value and its bookkeeping. */
export interface KeyValue {
  key: string;
  /** A JSON document, as far as the store cares just a string. */
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
}

export interface ReadOptions {
  signal?: AbortSignal;
}

export interface RangeOptions extends ReadOptions {
  /** At most this many keys (in key order); `more` says whether some were left off. */
  limit?: number;
  /**
   * Read as of this past revision. Allowed from the compaction revision to the current revision; older ones throw
   * ConfigStoreError('compacted'), newer ones ConfigStoreError('future_revision').
   */
  revision?: number;
}

export interface RangeResult {
  kvs: KeyValue[];
  /** The revision this read reflects (the store revision, or `options.revision`). Watch from `revision + 1`. */
  revision: number;
  more: boolean;
}

export interface WriteOptions {
  /** Compare: the key's modRevision must be this; 0 means the key must not exist. */
  ifModRevision?: number;
  signal?: AbortSignal;
}

/** One operation of an atomic batch: a put, or a delete when `delete: true`. */
export type BatchOp =
  | { key: string; value: string; ifModRevision?: number; delete?: false }
  | { key: string; delete: true; ifModRevision?: number };

export interface Conflict {
  key: string;
  expected: number;
  /** The key's modRevision when the compare ran; 0 when it did not exist. */
  actual: number;
}

export interface Committed {
  ok: true;
  /** The new store revision (unchanged when nothing changed, e.g. deleting an absent key). */
  revision: number;
  /** Keys written or deleted. */
  changed: number;
}

export interface Conflicted {
  ok: false;
  /** The store revision when the compare failed. */
  revision: number;
  /** Every failing compare (so `lockgate apply` can name them all). */
  conflicts: Conflict[];
}

export type WriteResult = Committed | Conflicted;

export interface ChangeEvent {
  type: 'PUT' | 'DELETE';
  key: string;
  /** The new value for PUT, null for DELETE. */
  value: string | null;
  /** The revision of the change; events of one batch share it. */
  modRevision: number;
  /** For PUT: the key's createRevision and version after the put; for DELETE: the ended life's createRevision and 0. */
  createRevision: number;
  version: number;
}

/** The watch could not start (or fell behind) because history before `compactRevision` is gone: re-range and re-watch. */
export interface CompactedEvent {
  type: 'COMPACTED';
  compactRevision: number;
}

export type WatchEvent = ChangeEvent | CompactedEvent;

export interface ConfigStore {
  /** The current store revision. */
  revision(options?: ReadOptions): Promise<number>;
  get(key: string, options?: ReadOptions): Promise<KeyValue | undefined>;
  /** Keys starting with `prefix` ('' = all), in key order (by code point, i.e. UTF-8 byte order, as etcd). */
  range(prefix: string, options?: RangeOptions): Promise<RangeResult>;
  put(key: string, value: string, options?: WriteOptions): Promise<WriteResult>;
  delete(key: string, options?: WriteOptions): Promise<WriteResult>;
  /** All or nothing: every compare must hold, then every op is applied at one new revision. A key may appear once. */
  putMany(ops: readonly BatchOp[], options?: ReadOptions): Promise<WriteResult>;
  /**
   * Changes to keys under `prefix` with modRevision >= fromRevision (0 = from the next change): history first, then
   * live changes, in revision order. Ends (without throwing) when `signal` aborts or the store closes. When
   * fromRevision is at or before the compaction revision, yields one COMPACTED event and ends.
   */
  watch(prefix: string, fromRevision: number, signal: AbortSignal): AsyncIterable<WatchEvent>;
  /** Drops history before `revision`: reads at older revisions and watches from them then report compaction. */
  compact(revision: number, options?: ReadOptions): Promise<void>;
  /** The compaction revision (0 when never compacted). */
  compactRevision(options?: ReadOptions): Promise<number>;
  close(): Promise<void>;
}

export type ConfigStoreErrorCode = 'invalid' | 'compacted' | 'future_revision' | 'closed';

export class ConfigStoreError extends Error {
  readonly code: ConfigStoreErrorCode;
  constructor(code: ConfigStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigStoreError';
    this.code = code;
  }
}

/** Orders keys by code point (= UTF-8 byte order, SQLite's BINARY collation and etcd's byte order). */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/** The smallest string greater than every string starting with `prefix`; undefined when there is none ('' = all). */
export function prefixEnd(prefix: string): string | undefined {
  const cps = [...prefix].map((c) => c.codePointAt(0)!);
  while (cps.length > 0) {
    const last = cps.pop()!;
    if (last === 0x10ffff) continue;
    const next = last === 0xd7ff ? 0xe000 : last + 1;
    return String.fromCodePoint(...cps, next);
  }
  return undefined;
}

export function checkKey(key: unknown): void {
  if (typeof key !== 'string' || key.length === 0 || !key.isWellFormed()) {
    throw new ConfigStoreError('invalid', 'a key must be a non-empty, well-formed string');
  }
}

export function checkRevision(name: string, rev: unknown): void {
  if (typeof rev !== 'number' || !Number.isSafeInteger(rev) || rev < 0) {
    throw new ConfigStoreError('invalid', `${name} must be a non-negative integer`);
  }
}

/** Validates a batch (programming errors throw; conflicts are the backend's to report). */
export function checkBatch(ops: readonly BatchOp[]): void {
  const seen = new Set<string>();
  for (const op of ops) {
    checkKey(op.key);
    if (seen.has(op.key)) throw new ConfigStoreError('invalid', `key "${op.key}" appears twice in one batch`);
    seen.add(op.key);
    if (op.ifModRevision !== undefined) checkRevision('ifModRevision', op.ifModRevision);
    if (op.delete !== true && (typeof op.value !== 'string' || !op.value.isWellFormed())) {
      throw new ConfigStoreError('invalid', `the value of "${op.key}" must be a well-formed string`);
    }
  }
}

export function checkRangeOptions(prefix: string, options: RangeOptions | undefined): void {
  if (typeof prefix !== 'string' || !prefix.isWellFormed()) throw new ConfigStoreError('invalid', 'a prefix must be a well-formed string');
  if (options?.limit !== undefined && (!Number.isSafeInteger(options.limit) || options.limit < 1)) {
    throw new ConfigStoreError('invalid', 'limit must be a positive integer');
  }
  if (options?.revision !== undefined) checkRevision('revision', options.revision);
}

/** One consistent read of what a watcher needs. */
export interface WatchBatch {
  compactRevision: number;
  /** The store revision the read reflects: every change up to it is in `events` (when at or after fromRevision). */
  revision: number;
  /** Events under the prefix with modRevision >= fromRevision, in (revision, op) order. */
  events: ChangeEvent[];
}

/** What a backend offers the shared watch loop. */
export interface WatchSource {
  /** Reads compaction revision, store revision and events from one snapshot (nothing else may commit in between). */
  read(prefix: string, fromRevision: number): WatchBatch;
  currentRevision(): number;
  closed(): boolean;
  /** Calls `wake` after changes may have been committed (here or elsewhere); returns the unsubscribe. */
  subscribe(wake: () => void): () => void;
}

/**
 * The watch loop both embedded backends share: replay from `fromRevision`, then sleep until woken, re-reading the
 * history after each wake. Re-checks the compaction revision on every pass, so a watcher that falls behind a
 * compaction is told so rather than silently skipping changes.
 */
export async function* watchLoop(source: WatchSource, prefix: string, fromRevision: number, signal: AbortSignal): AsyncGenerator<WatchEvent> {
  checkRangeOptions(prefix, undefined);
  checkRevision('fromRevision', fromRevision);
  if (signal.aborted || source.closed()) return;
  let next = fromRevision === 0 ? source.currentRevision() + 1 : fromRevision;
  let pending = true; // read once before sleeping
  let wakeUp: (() => void) | undefined;
  const wake = (): void => {
    pending = true;
    wakeUp?.();
  };
  const unsubscribe = source.subscribe(wake);
  signal.addEventListener('abort', wake, { once: true });
  try {
    while (!signal.aborted && !source.closed()) {
      if (!pending) {
        await new Promise<void>((resolve) => (wakeUp = resolve));
        wakeUp = undefined;
        continue;
      }
      pending = false;
      const batch = source.read(prefix, next);
      if (next <= batch.compactRevision) {
        yield { type: 'COMPACTED', compactRevision: batch.compactRevision };
        return;
      }
      for (const event of batch.events) {
        if (signal.aborted || source.closed()) return;
        next = event.modRevision + 1;
        yield event;
      }
      // Changes outside the prefix move the watcher on too, so a quiet prefix is not reported compacted later.
      next = Math.max(next, batch.revision + 1);
    }
  } finally {
    unsubscribe();
    signal.removeEventListener('abort', wake);
  }
}

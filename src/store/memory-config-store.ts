// In-memory ConfigStore for tests and single-process experiments: the etcd semantics, nothing survives close().
// History: every change since the last compact() is kept in an array (plus, for each key alive at the compaction
// revision, the put that set it), so memory grows with writes until the owner compacts.
import {
  checkBatch, checkKey, checkRangeOptions, checkRevision, compareKeys, ConfigStoreError, watchLoop,
  type BatchOp, type ChangeEvent, type ConfigStore, type KeyValue, type RangeOptions, type RangeResult, type ReadOptions,
  type WatchBatch, type WatchEvent, type WriteOptions, type WriteResult,
} from './config-store.ts';

export class MemoryConfigStore implements ConfigStore {
  #revision = 0;
  #compactRevision = 0;
  readonly #kv = new Map<string, KeyValue>();
  #history: ChangeEvent[] = [];
  readonly #wakers = new Set<() => void>();
  #closed = false;

  async revision(options?: ReadOptions): Promise<number> {
    this.#check(options);
    return this.#revision;
  }

  async compactRevision(options?: ReadOptions): Promise<number> {
    this.#check(options);
    return this.#compactRevision;
  }

  async get(key: string, options?: ReadOptions): Promise<KeyValue | undefined> {
    this.#check(options);
    checkKey(key);
    const kv = this.#kv.get(key);
    return kv === undefined ? undefined : { ...kv };
  }

  async range(prefix: string, options?: RangeOptions): Promise<RangeResult> {
    this.#check(options);
    checkRangeOptions(prefix, options);
    const at = options?.revision ?? this.#revision;
    if (at > this.#revision) throw new ConfigStoreError('future_revision', `revision ${at} is after the current revision ${this.#revision}`);
    if (at < this.#compactRevision) throw new ConfigStoreError('compacted', `revision ${at} has been compacted (history starts at ${this.#compactRevision})`);
    let all: KeyValue[];
    if (at === this.#revision) {
      all = [...this.#kv.values()].filter((kv) => kv.key.startsWith(prefix)).map((kv) => ({ ...kv }));
    } else {
      const last = new Map<string, ChangeEvent>();
      for (const e of this.#history) if (e.modRevision <= at && e.key.startsWith(prefix)) last.set(e.key, e);
      all = [...last.values()]
        .filter((e) => e.type === 'PUT')
        .map((e) => ({ key: e.key, value: e.value!, createRevision: e.createRevision, modRevision: e.modRevision, version: e.version }));
    }
    all.sort((a, b) => compareKeys(a.key, b.key));
    const limit = options?.limit ?? Infinity;
    return { kvs: all.slice(0, limit), revision: at, more: all.length > limit };
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
    const conflicts = [];
    for (const op of ops) {
      const actual = this.#kv.get(op.key)?.modRevision ?? 0;
      if (op.ifModRevision !== undefined && op.ifModRevision !== actual) conflicts.push({ key: op.key, expected: op.ifModRevision, actual });
    }
    if (conflicts.length > 0) return { ok: false, revision: this.#revision, conflicts };
    const effective = ops.filter((op) => op.delete !== true || this.#kv.has(op.key));
    if (effective.length === 0) return { ok: true, revision: this.#revision, changed: 0 };
    const rev = this.#revision + 1;
    for (const op of effective) {
      const cur = this.#kv.get(op.key);
      if (op.delete === true) {
        this.#kv.delete(op.key);
        this.#history.push({ type: 'DELETE', key: op.key, value: null, modRevision: rev, createRevision: cur!.createRevision, version: 0 });
      } else {
        const kv = { key: op.key, value: op.value, createRevision: cur?.createRevision ?? rev, modRevision: rev, version: (cur?.version ?? 0) + 1 };
        this.#kv.set(op.key, kv);
        this.#history.push({ type: 'PUT', ...kv });
      }
    }
    this.#revision = rev;
    for (const wake of this.#wakers) wake();
    return { ok: true, revision: rev, changed: effective.length };
  }

  watch(prefix: string, fromRevision: number, signal: AbortSignal): AsyncIterable<WatchEvent> {
    return watchLoop({
      read: (p, from): WatchBatch => ({
        compactRevision: this.#compactRevision,
        revision: this.#revision,
        events: this.#history.filter((e) => e.modRevision >= from && e.key.startsWith(p)).map((e) => ({ ...e })),
      }),
      currentRevision: () => this.#revision,
      closed: () => this.#closed,
      subscribe: (wake) => {
        this.#wakers.add(wake);
        return () => this.#wakers.delete(wake);
      },
    }, prefix, fromRevision, signal);
  }

  async compact(revision: number, options?: ReadOptions): Promise<void> {
    this.#check(options);
    checkRevision('revision', revision);
    if (revision > this.#revision) throw new ConfigStoreError('future_revision', `cannot compact at ${revision}: the current revision is ${this.#revision}`);
    if (revision <= this.#compactRevision) return;
    // Keep what range({ revision }) needs at the compaction revision: the last put of each key alive then.
    const lastAtOrBefore = new Map<string, ChangeEvent>();
    for (const e of this.#history) if (e.modRevision <= revision) lastAtOrBefore.set(e.key, e);
    const keep = new Set([...lastAtOrBefore.values()].filter((e) => e.type === 'PUT'));
    this.#history = this.#history.filter((e) => e.modRevision > revision || keep.has(e));
    this.#compactRevision = revision;
    for (const wake of this.#wakers) wake();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const wake of this.#wakers) wake();
  }

  #check(options: ReadOptions | undefined): void {
    options?.signal?.throwIfAborted();
    if (this.#closed) throw new ConfigStoreError('closed', 'the config store is closed');
  }
}

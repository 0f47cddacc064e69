// The in-memory cache behind the caching policies: a least-recently-used map bounded by total bytes, whose
// entries expire. One per worker, shared by every route and config version (kept in the policy services).
import { performance } from 'node:perf_hooks';
import type { PolicyServices } from './policy-pipeline.ts';

export interface ResponseCacheOptions {
  /** Most bytes all entries may hold together (64 MiB by default). */
  maxBytes?: number;
  /** Most bytes one entry may hold (2 MiB by default, API Management's cap on a cached response). */
  maxEntryBytes?: number;
  /** Monotonic milliseconds (tests pass a fake clock). */
  now?: () => number;
}

export const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;
export const DEFAULT_MAX_ENTRY_BYTES = 2 * 1024 * 1024;

/** What one entry costs besides the bytes its owner declares: the key, the Map slot, the entry object. */
const OVERHEAD = 96;

interface Entry<V> {
  value: V;
  bytes: number;
  expiresAt: number;
}

export interface CacheHit<V> {
  value: V;
  /** Monotonic ms when the entry expires (same clock as `now()`). */
  expiresAt: number;
}

/**
 * A Map whose insertion order is the recency queue: a hit moves the entry to the back, eviction takes
 * from the front. `set` evicts until the new entry fits, so `bytes` never passes `maxBytes`. Expired
 * entries are dropped when read and when they reach the front; no timers, nothing to close.
 */
export class ResponseCache<V = unknown> {
  readonly maxBytes: number;
  readonly maxEntryBytes: number;
  readonly now: () => number;
  readonly #map = new Map<string, Entry<V>>();
  #bytes = 0;

  constructor(opts: ResponseCacheOptions = {}) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
    this.maxEntryBytes = Math.min(opts.maxEntryBytes ?? DEFAULT_MAX_ENTRY_BYTES, this.maxBytes);
    if (!(this.maxBytes > 0) || !(this.maxEntryBytes > 0)) throw new RangeError('cache sizes must be positive');
    this.now = opts.now ?? (() => performance.now());
  }

  /** Bytes held now (entries plus their overhead). */
  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#map.size;
  }

  /** The live entry for `key` (it becomes the most recently used), or undefined. */
  get(key: string): CacheHit<V> | undefined {
    const map = this.#map;
    const e = map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= this.now()) {
      this.#remove(key, e);
      return undefined;
    }
    map.delete(key);
    map.set(key, e);
    return { value: e.value, expiresAt: e.expiresAt };
  }

  /** Like get, without touching recency. */
  peek(key: string): CacheHit<V> | undefined {
    const e = this.#map.get(key);
    return e === undefined || e.expiresAt <= this.now() ? undefined : { value: e.value, expiresAt: e.expiresAt };
  }

  /**
   * Stores `value`, declared to cost `bytes`, for `ttlMs`. Returns false (and drops any previous value
   * of the key) when it cannot be kept: too big for one entry, or already expired.
   */
  set(key: string, value: V, bytes: number, ttlMs: number): boolean {
    const old = this.#map.get(key);
    if (old !== undefined) this.#remove(key, old);
    const cost = Math.ceil(bytes) + key.length * 2 + OVERHEAD;
    if (!(ttlMs > 0) || !Number.isFinite(cost) || cost > this.maxEntryBytes) return false;
    const now = this.now();
    this.#evict(this.maxBytes - cost, now);
    this.#map.set(key, { value, bytes: cost, expiresAt: now + ttlMs });
    this.#bytes += cost;
    return true;
  }

  delete(key: string): boolean {
    const e = this.#map.get(key);
    if (e === undefined) return false;
    this.#remove(key, e);
    return true;
  }

  clear(): void {
    this.#map.clear();
    this.#bytes = 0;
  }

  #remove(key: string, e: Entry<V>): void {
    this.#map.delete(key);
    this.#bytes -= e.bytes;
  }

  /** Drops expired entries at the front, then least recently used ones until at most `budget` bytes remain. */
  #evict(budget: number, now: number): void {
    for (const [key, e] of this.#map) {
      if (this.#bytes <= budget && e.expiresAt > now) return;
      this.#remove(key, e);
    }
  }
}

/** The worker's cache, created on first use and kept across config versions (services outlive them). */
export function responseCacheOf(services: PolicyServices): ResponseCache {
  let c = services.responseCache as ResponseCache | undefined;
  if (c === undefined) {
    c = new ResponseCache();
    services.responseCache = c;
  }
  return c;
}

// A bounded least-recently-used map (second-chance approximation) over one Map, whose insertion order is the queue.

interface Node<V> {
  value: V;
  /** Read since it last reached the head of the queue. */
  used: boolean;
}

/**
 * A hit only sets a flag (no Map delete + set: that reordering cost ~10x a lookup); eviction walks
 * from the oldest entry and gives each used entry a second chance by moving it to the back. So an
 * entry read since the last pass survives, which is the LRU property callers rely on, and a full
 * eviction pass is bounded by the size. Plain data structure: no timers, nothing to close.
 */
export class Lru<K, V> {
  readonly #map = new Map<K, Node<V>>();
  readonly #max: number;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) throw new RangeError('Lru max must be a positive integer');
    this.#max = max;
  }

  get size(): number {
    return this.#map.size;
  }

  get max(): number {
    return this.#max;
  }

  get(key: K): V | undefined {
    const node = this.#map.get(key);
    if (node === undefined) return undefined;
    node.used = true;
    return node.value;
  }

  /** Read without marking the entry as used. */
  peek(key: K): V | undefined {
    return this.#map.get(key)?.value;
  }

  has(key: K): boolean {
    return this.#map.has(key);
  }

  set(key: K, value: V): void {
    const map = this.#map;
    const node = map.get(key);
    if (node !== undefined) {
      node.value = value;
      node.used = true;
      return;
    }
    // Evict before inserting, so the new entry is never its own victim.
    if (map.size >= this.#max) this.#evict();
    map.set(key, { value, used: false });
  }

  delete(key: K): boolean {
    return this.#map.delete(key);
  }

  clear(): void {
    this.#map.clear();
  }

  /** Keys in queue order (oldest first, second chances aside). */
  keys(): IterableIterator<K> {
    return this.#map.keys();
  }

  #evict(): void {
    const map = this.#map;
    // Each used entry moves to the back once with its flag cleared, so this ends within size + 1 steps.
    for (const [k, node] of map) {
      map.delete(k);
      if (!node.used) return;
      node.used = false;
      map.set(k, node);
    }
  }
}

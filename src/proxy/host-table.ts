// Hostname → value lookup: exact names, `*.suffix` wildcards (longest suffix first), then the any-host value.

export interface HostTable<V> {
  exact: Map<string, V>;
  /** Keyed by the suffix after `*.`: `*.example.com` → `example.com`. */
  wildcard: Map<string, V>;
  any: V | undefined;
  /** wildcardLengths[n] is 1 when some wildcard suffix has n characters: skips slicing hopeless labels. */
  wildcardLengths: Uint8Array;
}

/** Key of the any-host entry, as returned by normalizeHostPattern for `*` or an empty list. */
export const ANY_HOST = '';

const MAX_HOST = 253;
const BAD_EXACT = /[\s/*]/;

export function createHostTable<V>(): HostTable<V> {
  return { exact: new Map(), wildcard: new Map(), any: undefined, wildcardLengths: new Uint8Array(MAX_HOST + 1) };
}

/**
 * Lower-cases a configured hostname and drops a trailing dot. Returns the key used by
 * hostTableEntry: `api.example.com`, `*.example.com`, or ANY_HOST for `*`; undefined if invalid.
 */
export function normalizeHostPattern(pattern: string): string | undefined {
  let p = pattern.trim().toLowerCase();
  if (p === '*') return ANY_HOST;
  if (p.endsWith('.')) p = p.slice(0, -1);
  if (p.length === 0 || p.length > MAX_HOST) return undefined;
  if (p.startsWith('*.')) {
    const suffix = p.slice(2);
    return suffix.length === 0 || BAD_EXACT.test(suffix) || suffix.startsWith('.') ? undefined : p;
  }
  return BAD_EXACT.test(p) ? undefined : p;
}

/** Returns (creating it with `create`) the value for a key from normalizeHostPattern. */
export function hostTableEntry<V>(table: HostTable<V>, key: string, create: () => V): V {
  if (key === ANY_HOST) return (table.any ??= create());
  const wildcard = key.startsWith('*.');
  const map = wildcard ? table.wildcard : table.exact;
  const name = wildcard ? key.slice(2) : key;
  let v = map.get(name);
  if (v === undefined) {
    v = create();
    map.set(name, v);
    if (wildcard) table.wildcardLengths[name.length] = 1;
  }
  return v;
}

/**
 * Writes into `out` the values that apply to `hostname` (lower-case, no port, no trailing dot),
 * most specific first: the exact name, then each matching wildcard from the longest suffix to
 * the shortest (a wildcard matches one or more labels: `*.example.com` takes `a.b.example.com`
 * but not `example.com`), then the any-host value. Returns how many were written. Walks the
 * label boundaries of `hostname`, never the list of wildcards; `out` is reused by the caller.
 */
export function resolveHosts<V>(table: HostTable<V>, hostname: string, out: V[]): number {
  let n = 0;
  if (table.exact.size !== 0) {
    const v = table.exact.get(hostname);
    if (v !== undefined) out[n++] = v;
  }
  if (table.wildcard.size !== 0) {
    const len = hostname.length;
    for (let dot = hostname.indexOf('.'); dot !== -1; dot = hostname.indexOf('.', dot + 1)) {
      const rest = len - dot - 1;
      if (rest > MAX_HOST || table.wildcardLengths[rest] === 0) continue;
      const v = table.wildcard.get(hostname.slice(dot + 1));
      if (v !== undefined) out[n++] = v;
    }
  }
  if (table.any !== undefined) out[n++] = table.any;
  return n;
}

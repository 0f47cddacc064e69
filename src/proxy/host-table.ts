// Hostname → value lookup: exact names, `*.suffix` wildcards (longest suffix first), then the any-host value.

/** A wildcard's suffix (after `*.`) and value; `next` chains suffixes whose hashes collide. */
interface WildcardSlot<V> {
  suffix: string;
  value: V;
  next: WildcardSlot<V> | null;
}

export interface HostTable<V> {
  exact: Map<string, V>;
  /** Keyed by suffixHash of the part after `*.`: `*.example.com` → hash of `example.com`. */
  wildcard: Map<number, WildcardSlot<V>>;
  any: V | undefined;
  /** suffixLengths[n] is 1 when some wildcard suffix has n characters: other dots need no lookup. */
  suffixLengths: Uint8Array;
  /** Length of the longest wildcard suffix: the backward walk stops past it. */
  maxSuffix: number;
}

/** Key of the any-host entry, as returned by normalizeHostPattern for `*` or an empty list. */
export const ANY_HOST = '';

const MAX_HOST = 253;
const BAD_EXACT = /[\s/*]/;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const SMI_MASK = 0x3fffffff;

export function createHostTable<V>(): HostTable<V> {
  return { exact: new Map(), wildcard: new Map(), any: undefined, suffixLengths: new Uint8Array(MAX_HOST + 1), maxSuffix: 0 };
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
  if (!key.startsWith('*.')) {
    let v = table.exact.get(key);
    if (v === undefined) table.exact.set(key, (v = create()));
    return v;
  }
  const suffix = key.slice(2);
  const h = suffixHash(suffix);
  const head = table.wildcard.get(h);
  for (let s: WildcardSlot<V> | null | undefined = head; s !== undefined && s !== null; s = s.next) if (s.suffix === suffix) return s.value;
  const slot: WildcardSlot<V> = { suffix, value: create(), next: head ?? null };
  table.wildcard.set(h, slot);
  table.suffixLengths[suffix.length] = 1;
  table.maxSuffix = Math.max(table.maxSuffix, suffix.length);
  return slot.value;
}

/** FNV-1a over the characters from last to first, so a backward walk has every suffix's hash on the way. */
export function suffixHash(s: string): number {
  let h = FNV_OFFSET;
  for (let i = s.length - 1; i >= 0; i--) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  return h & SMI_MASK;
}

/**
 * Writes into `out` the values that apply to `hostname` (lower-case, no port, no trailing dot),
 * most specific first: the exact name, then each matching wildcard from the longest suffix to
 * the shortest, then the any-host value. Returns how many were written.
 */
export function resolveHosts<V>(table: HostTable<V>, hostname: string, out: V[]): number {
  let n = 0;
  const v = table.exact.size === 0 ? undefined : table.exact.get(hostname);
  if (v !== undefined) out[n++] = v;
  n = resolveWildcards(table, hostname, out, n);
  if (table.any !== undefined) out[n++] = table.any;
  return n;
}

/**
 * Writes into `out` from index `n` the wildcard values matching `hostname`, longest suffix
 * first (a wildcard matches one or more labels: `*.example.com` takes `a.b.example.com` but
 * not `example.com`); returns the new count. One backward pass hashes each suffix on the way
 * to its dot, stopping past the longest configured suffix: no slicing, no scan over wildcards.
 */
export function resolveWildcards<V>(table: HostTable<V>, hostname: string, out: V[], n: number): number {
  if (table.wildcard.size === 0) return n;
  const first = n;
  const len = hostname.length;
  const stop = Math.max(0, len - table.maxSuffix - 1);
  let h = FNV_OFFSET;
  // i > 0: the label before the suffix may not be empty.
  for (let i = len - 1; i > 0 && i >= stop; i--) {
    const c = hostname.charCodeAt(i);
    if (c === 46 && table.suffixLengths[len - i - 1] !== 0) {
      for (let s: WildcardSlot<V> | null | undefined = table.wildcard.get(h & SMI_MASK); s !== undefined && s !== null; s = s.next) {
        if (s.suffix.length === len - i - 1 && endsWith(hostname, s.suffix)) {
          out[n++] = s.value;
          break;
        }
      }
    }
    h = Math.imul(h ^ c, FNV_PRIME);
  }
  // Found shortest suffix first; the contract is longest first.
  for (let lo = first, hi = n - 1; lo < hi; lo++, hi--) {
    const t = out[lo];
    out[lo] = out[hi];
    out[hi] = t;
  }
  return n;
}

/** A char loop: for these short strings it is cheaper than the String.prototype.endsWith call. */
function endsWith(s: string, suffix: string): boolean {
  const off = s.length - suffix.length;
  for (let i = suffix.length - 1; i >= 0; i--) if (s.charCodeAt(off + i) !== suffix.charCodeAt(i)) return false;
  return true;
}

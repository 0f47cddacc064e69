// Consistent hashing on a ring of virtual nodes: one key keeps its endpoint, and losing 1 of N endpoints moves ~1/N keys.
import type { EndpointState } from '../endpoint-state.ts';
import { seed32 } from './least-request.ts';

const FNV_OFFSET = 0x811c9dc5 | 0; // as int32, so `h` is a small integer from the start
const FNV_PRIME = 0x01000193;

/** 32-bit FNV-1a over the UTF-8 bytes of `s`, unsigned (as the published test vectors). */
export function fnv1a32(s: string): number {
  return fnv1a(s) >>> 0;
}

/**
 * FNV-1a as a signed int32: UTF-8 is encoded on the fly so hashing allocates nothing, and an
 * int32 stays an unboxed small integer in V8 where an unsigned value above 2^31 would not.
 */
function fnv1a(s: string): number {
  let h = FNV_OFFSET;
  const len = s.length;
  let i = 0;
  // Keys are nearly always ASCII: a tight loop for that, the general encoder only past it.
  for (; i < len; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return fnv1aUtf8(s, i, h);
    h = Math.imul(h ^ c, FNV_PRIME);
  }
  return h;
}

function fnv1aUtf8(s: string, from: number, h: number): number {
  const len = s.length;
  for (let i = from; i < len; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      h = Math.imul(h ^ c, FNV_PRIME);
      continue;
    }
    if (c < 0x800) {
      h = Math.imul(h ^ (0xc0 | (c >> 6)), FNV_PRIME);
    } else {
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < len) {
        const lo = s.charCodeAt(i + 1);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          i++;
          c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
          h = Math.imul(h ^ (0xf0 | (c >> 18)), FNV_PRIME);
          h = Math.imul(h ^ (0x80 | ((c >> 12) & 63)), FNV_PRIME);
          h = Math.imul(h ^ (0x80 | ((c >> 6) & 63)), FNV_PRIME);
          h = Math.imul(h ^ (0x80 | (c & 63)), FNV_PRIME);
          continue;
        }
      }
      // A lone surrogate is encoded as U+FFFD, as TextEncoder and Buffer do.
      if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
      h = Math.imul(h ^ (0xe0 | (c >> 12)), FNV_PRIME);
      h = Math.imul(h ^ (0x80 | ((c >> 6) & 63)), FNV_PRIME);
    }
    h = Math.imul(h ^ (0x80 | (c & 63)), FNV_PRIME);
  }
  return h;
}

/**
 * murmur3's finaliser: FNV-1a alone clusters keys that differ only in their last characters
 * (`url#1`, `url#2`). Returns a signed int32.
 */
export function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** The ring's hash: signed int32, so the ring is ordered as signed numbers (any fixed order works). */
export function hashString(s: string): number {
  return mix32(fnv1a(s));
}

/** Virtual nodes for the lightest endpoint; 160 as ketama, which keeps load within ~10%. */
const VNODES = 160;
const MAX_RING = 65_536;

/**
 * Points are hashed from the endpoint URL (not its position), so an endpoint keeps its points
 * when others come or go. Unavailable endpoints are skipped by walking on clockwise, which moves
 * only their keys. With no key, a random point is used.
 */
export function consistentHash(endpoints: readonly EndpointState[], random: () => number = Math.random) {
  if (endpoints.length > 65_536) throw new RangeError('consistent-hash supports at most 65536 endpoints');
  let minWeight = Infinity;
  let totalWeight = 0;
  for (const ep of endpoints) {
    if (ep.weight > 0) {
      totalWeight += ep.weight;
      if (ep.weight < minWeight) minWeight = ep.weight;
    }
  }
  let scale = totalWeight > 0 ? VNODES / minWeight : 0;
  if (totalWeight * scale > MAX_RING) scale = MAX_RING / totalWeight;

  // (hash + 2^31) × 2^16 + position is a non-negative integer below 2^48: exact in a double,
  // sorting by hash with ties broken by position.
  const entries: number[] = [];
  for (let p = 0; p < endpoints.length; p++) {
    const ep = endpoints[p];
    if (!(ep.weight > 0)) continue;
    const count = Math.max(1, Math.round(ep.weight * scale));
    for (let v = 0; v < count; v++) entries.push((hashString(`${ep.url}#${v}`) + 2 ** 31) * 65_536 + p);
  }
  const sorted = Float64Array.from(entries).sort();
  const size = sorted.length;
  const points = new Int32Array(size);
  const owners = new Uint16Array(size);
  for (let k = 0; k < size; k++) {
    points[k] = Math.floor(sorted[k] / 65_536) - 2 ** 31;
    owners[k] = sorted[k] % 65_536;
  }
  let s = seed32(random);

  return {
    pick(now: number, hashKey?: string): EndpointState | undefined {
      if (size === 0) return undefined;
      let k: number;
      if (hashKey === undefined) {
        s ^= s << 13;
        s ^= s >>> 17;
        s ^= s << 5;
        k = (s >>> 1) % size;
      } else {
        const h = hashString(hashKey);
        let lo = 0;
        let hi = size;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (points[mid] < h) lo = mid + 1;
          else hi = mid;
        }
        k = lo === size ? 0 : lo;
      }
      for (let step = 0; step < size; step++) {
        const ep = endpoints[owners[k]];
        if (ep.weight > 0 && ep.available(now)) return ep;
        k = k + 1 === size ? 0 : k + 1;
      }
      return undefined;
    },
  };
}

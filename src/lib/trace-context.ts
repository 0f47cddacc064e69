// W3C Trace Context `traceparent`: strict parsing, formatting, and cheap random trace/span ids from a pooled buffer.
import { randomFillSync } from 'node:crypto';

export interface TraceParent {
  /** 32 lowercase hex, not all zeros. */
  traceId: string;
  /** 16 lowercase hex, not all zeros: the caller's span, our parent. */
  parentId: string;
  /** trace-flags as a number; bit 0 is `sampled`. */
  flags: number;
}

/** Fills `buf` with random bytes; injectable so tests can be deterministic. */
export type RandomFill = (buf: Uint8Array) => void;

const CHUNK_BYTES = 128;

/**
 * A source of random lowercase hex. Random bytes come in `blockBytes` blocks (one crypto call per
 * block) and are hex-encoded 128 bytes at a time; ids are slices of that 256-char string. Slicing
 * costs a few ns; a retained id pins at most its 256-char chunk (a whole-block string would pin 8 KB).
 */
export function createRandomHex(fill: RandomFill = randomFillSync, blockBytes = 4096): (chars: number) => string {
  if (blockBytes < CHUNK_BYTES || blockBytes % CHUNK_BYTES !== 0) throw new RangeError('blockBytes must be a multiple of 128');
  const block = Buffer.allocUnsafeSlow(blockBytes);
  let blockPos = blockBytes;
  let chunk = '';
  let chunkPos = 0;
  return (chars: number): string => {
    if (chunkPos + chars > chunk.length) {
      if (chars > CHUNK_BYTES * 2) throw new RangeError('at most 256 hex chars at a time');
      if (blockPos === blockBytes) {
        fill(block);
        blockPos = 0;
      }
      chunk = block.toString('hex', blockPos, blockPos + CHUNK_BYTES);
      blockPos += CHUNK_BYTES;
      chunkPos = 0;
    }
    return chunk.slice(chunkPos, (chunkPos += chars));
  };
}

const STATE = new Uint32Array(4);
let blocksSinceSeed = Infinity;

/**
 * Fills a block with xorshift128 output, reseeded from the CSPRNG every 64 blocks. Trace, span and request
 * ids must be unique and unguessable enough to correlate, not secret; the CSPRNG alone cost ~0.2 µs per
 * request in profiles, this costs a few ns.
 */
export function fastRandomFill(buf: Uint8Array): void {
  if (blocksSinceSeed++ >= 64) {
    randomFillSync(STATE);
    STATE[0] |= 1; // xorshift128 must not start from all zeros
    blocksSinceSeed = 0;
  }
  let x = STATE[0];
  let y = STATE[1];
  let z = STATE[2];
  let w = STATE[3];
  const words = new Uint32Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 2);
  for (let i = 0; i < words.length; i++) {
    const t = x ^ (x << 11);
    x = y;
    y = z;
    z = w;
    w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    words[i] = w;
  }
  STATE[0] = x;
  STATE[1] = y;
  STATE[2] = z;
  STATE[3] = w;
}

/** The process-wide pool that trace, span and request ids draw from. */
export const randomHex: (chars: number) => string = createRandomHex(fastRandomFill);

const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** A new 32-hex trace id (never the invalid all-zero id); `hex` is for tests. */
export function newTraceId(hex: (chars: number) => string = randomHex): string {
  const id = hex(32);
  return id === ZERO_TRACE ? id.slice(0, 31) + '1' : id;
}

/** A new 16-hex span id (never the invalid all-zero id); `hex` is for tests. */
export function newSpanId(hex: (chars: number) => string = randomHex): string {
  const id = hex(16);
  return id === ZERO_SPAN ? id.slice(0, 15) + '1' : id;
}

/** 0-15 for a lowercase hex digit, else -1 (uppercase is invalid in traceparent). */
function lowerHex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  return c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
}

/** True when value[from..to) is lowercase hex and not all zeros. */
function nonZeroHex(value: string, from: number, to: number): boolean {
  let any = 0;
  for (let i = from; i < to; i++) {
    const d = lowerHex(value.charCodeAt(i));
    if (d < 0) return false;
    any |= d;
  }
  return any !== 0;
}

/**
 * Parses a `traceparent` header. Version 00 must be exactly 55 chars; a higher version (not ff)
 * is parsed by its 00 prefix and may carry more fields after a `-`, as the spec asks.
 */
export function parseTraceparent(value: string): TraceParent | undefined {
  const n = value.length;
  if (n < 55) return undefined;
  const v1 = lowerHex(value.charCodeAt(0));
  const v2 = lowerHex(value.charCodeAt(1));
  if (v1 < 0 || v2 < 0 || (v1 === 15 && v2 === 15)) return undefined;
  if (v1 === 0 && v2 === 0 ? n !== 55 : n > 55 && value.charCodeAt(55) !== 0x2d) return undefined;
  if (value.charCodeAt(2) !== 0x2d || value.charCodeAt(35) !== 0x2d || value.charCodeAt(52) !== 0x2d) return undefined;
  if (!nonZeroHex(value, 3, 35) || !nonZeroHex(value, 36, 52)) return undefined;
  const f1 = lowerHex(value.charCodeAt(53));
  const f2 = lowerHex(value.charCodeAt(54));
  if (f1 < 0 || f2 < 0) return undefined;
  return { traceId: value.slice(3, 35), parentId: value.slice(36, 52), flags: (f1 << 4) | f2 };
}

const FLAGS_HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** Version-00 `traceparent` for the span we start (spanId) in trace traceId. */
export function formatTraceparent(traceId: string, spanId: string, flags: number): string {
  return '00-' + traceId + '-' + spanId + '-' + FLAGS_HEX[flags & 0xff];
}

/** The threshold sampledByRatio compares against: ratio × 2^32, clamped. */
export function sampleThreshold(ratio: number): number {
  return ratio >= 1 ? 2 ** 32 : ratio > 0 ? Math.floor(ratio * 2 ** 32) : 0;
}

/**
 * Deterministic on the trace id, so every hop that applies the same ratio to the same trace agrees.
 * Uses the last 8 hex: W3C Trace Context level 2 guarantees randomness only in the rightmost bytes
 * (some generators put a timestamp first, as X-Ray does). A malformed id parses as NaN: not sampled.
 */
export function sampledByRatio(traceId: string, threshold: number): boolean {
  return Number.parseInt(traceId.slice(24, 32), 16) < threshold;
}

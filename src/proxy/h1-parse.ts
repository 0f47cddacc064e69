// HTTP/1.1 request-head and chunked-body parsing for the h1 engine: strict RFC 9112 syntax, no leniency flags.
// Field semantics (names, values, framing headers, Host) are checked afterwards by strict-request.

export interface ParsedHead {
  readonly method: string;
  readonly target: string;
  /** '1.1' or '1.0'. */
  readonly version: string;
  /** Names and values alternating; values without leading OWS or trailing SP (as Node's rawHeaders). */
  readonly rawHeaders: string[];
  /** Offset just past the blank line that ends the head. */
  readonly end: number;
}

export interface HeadError {
  readonly status: 400 | 414 | 431 | 501;
  readonly message: string;
}

const E = (status: HeadError['status'], message: string): HeadError => Object.freeze({ status, message });
const E_LINE = E(400, 'line not ended by CRLF');
const E_CTL = E(400, 'control character in the request head');
const E_REQUEST_LINE = E(400, 'malformed request line');
const E_VERSION = E(400, 'unsupported HTTP version');
const E_TARGET = E(400, 'invalid character in the request target');
const E_FOLD = E(400, 'obsolete line folding or whitespace before a field name');
const E_FIELD = E(400, 'field line without a name and colon');
const E_WS_NAME = E(400, 'whitespace between a field name and the colon');
const E_TOO_MANY = E(431, 'too many header fields');
const E_TOO_LARGE = E(431, 'request header fields too large');
const E_URI_LONG = E(414, 'URI too long');
const E_METHOD_LONG = E(501, 'method longer than 32 characters');

/** Controls other than HTAB, CR and LF (CR and LF are checked by position), and DEL. */
const CTL = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/;
/** The same set as a byte table: CTL_BYTE[b] === 1 for a byte CTL matches. */
const CTL_BYTE = new Uint8Array(256);
for (let c = 0; c < 0x20; c++) if (c !== 0x09 && c !== 0x0a && c !== 0x0d) CTL_BYTE[c] = 1;
CTL_BYTE[0x7f] = 1;

/**
 * A byte CTL matches in buf[start, end): a loop over a lookup table. Irregexp steps through a class of ranges at ~1.8
 * ns a character here (0.8 µs for a head carrying a JWT, on every request); this loop takes ~0.5 ns a byte.
 */
export function hasCtlByte(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (CTL_BYTE[buf[i]] === 1) return true;
  return false;
}

/**
 * A response head's bad bytes in buf[start, end): a byte CTL matches, a CR not followed by LF, or an LF not preceded
 * by CR (what /[CTL]|\r(?!\n)|(?<!\r)\n/ finds in the same text, without its per-character cost).
 */
export function hasBadHeadByte(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (CTL_BYTE[c] === 1) return true;
    if (c === 0x0d) {
      if (i + 1 >= end || buf[i + 1] !== 0x0a) return true;
    } else if (c === 0x0a && (i === start || buf[i - 1] !== 0x0d)) return true;
  }
  return false;
}
/** Request target: visible ASCII only. */
const BAD_TARGET = /[^\x21-\x7e]/;
const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Buffer#latin1Slice: the undocumented fast path under toString('latin1'), without its argument handling. */
export function latin1(buf: Buffer, start: number, end: number): string {
  return (buf as unknown as { latin1Slice(start: number, end: number): string }).latin1Slice(start, end);
}

/**
 * A request head that has not ended yet: fails early on bytes that can never become a valid head
 * (a bare LF or CR, a control character) or on a head already over `maxSize`; otherwise null (wait for more).
 */
function incomplete(buf: Buffer, start: number, maxSize: number): HeadError | null {
  const n = buf.length;
  for (let i = start; i < n; i++) {
    const c = buf[i];
    if (c === 0x0a) {
      if (i === start || buf[i - 1] !== 0x0d) return E_LINE;
    } else if (c === 0x0d) {
      if (i + 1 < n && buf[i + 1] !== 0x0a) return E_LINE;
    } else if ((c < 0x20 && c !== 0x09) || c === 0x7f) return E_CTL;
  }
  if (n - start > maxSize) return overflow(buf, start, maxSize);
  return null;
}

/** Which limit an over-long head broke: an over-long method (501), the request line alone (414), or the fields (431). */
function overflow(buf: Buffer, start: number, maxSize: number): HeadError {
  const lf = buf.indexOf(0x0a, start);
  const lineEnd = lf === -1 ? buf.length : lf;
  const sp = buf.indexOf(0x20, start);
  // The method is the request line's text before its first SP (or all of it, when it has none yet).
  if ((sp === -1 || sp > lineEnd ? lineEnd : sp) - start > 32) return E_METHOD_LONG;
  return lineEnd - start >= maxSize ? E_URI_LONG : E_TOO_LARGE;
}

const isOws = (c: number): boolean => c === 0x20 || c === 0x09;

/**
 * Parses the request head starting at `start`. Returns null when more bytes are needed, a HeadError when the
 * head can never be valid. Empty lines before the request line are skipped (RFC 9112 §2.2) by the caller.
 */
export function parseHead(buf: Buffer, start: number, maxSize: number, maxFields: number): ParsedHead | HeadError | null {
  const endAt = buf.indexOf(CRLFCRLF, start);
  if (endAt === -1 || endAt + 4 - start > maxSize) {
    return endAt === -1 ? incomplete(buf, start, maxSize) : overflow(buf, start, maxSize);
  }
  if (hasCtlByte(buf, start, endAt + 2)) return E_CTL;
  const s = latin1(buf, start, endAt + 2);

  // Request line: method SP request-target SP HTTP-version.
  let eol = s.indexOf('\n');
  if (s.charCodeAt(eol - 1) !== 0x0d) return E_LINE;
  const sp1 = s.indexOf(' ');
  if (sp1 <= 0 || sp1 > eol) return E_REQUEST_LINE;
  if (sp1 > 32) return E_METHOD_LONG;
  const sp2 = s.indexOf(' ', sp1 + 1);
  if (sp2 === -1 || sp2 > eol || sp2 === sp1 + 1) return E_REQUEST_LINE;
  const method = s.slice(0, sp1);
  const target = s.slice(sp1 + 1, sp2);
  if (eol - 1 - sp2 - 1 !== 8 || !s.startsWith('HTTP/1.', sp2 + 1)) return s.startsWith('HTTP/', sp2 + 1) ? E_VERSION : E_REQUEST_LINE;
  const minor = s.charCodeAt(sp2 + 8);
  if (minor !== 0x31 && minor !== 0x30) return E_VERSION;
  if (BAD_TARGET.test(target)) return E_TARGET;
  const cr = s.indexOf('\r');
  if (cr !== eol - 1) return E_LINE;

  const rawHeaders: string[] = [];
  let pos = eol + 1;
  const last = s.length;
  while (pos < last) {
    eol = s.indexOf('\n', pos);
    if (s.charCodeAt(eol - 1) !== 0x0d) return E_LINE;
    const lineEnd = eol - 1;
    const first = s.charCodeAt(pos);
    if (isOws(first)) return E_FOLD;
    const colon = s.indexOf(':', pos);
    if (colon <= pos || colon > lineEnd) return E_FIELD;
    if (isOws(s.charCodeAt(colon - 1))) return E_WS_NAME;
    let a = colon + 1;
    let b = lineEnd;
    while (a < b && isOws(s.charCodeAt(a))) a++;
    // Trailing SP is trimmed, a trailing HTAB kept (as llhttp does): `Transfer-Encoding: chunked\t` must not
    // read as chunked (reliability.md §2.3), and for other fields the tab is harmless.
    while (b > a && s.charCodeAt(b - 1) === 0x20) b--;
    const value = s.slice(a, b);
    // A CR inside the line (not its CRLF) is a bare CR.
    if (value.indexOf('\r') !== -1) return E_LINE;
    if (rawHeaders.length === maxFields * 2) return E_TOO_MANY;
    rawHeaders.push(s.slice(pos, colon), value);
    pos = eol + 1;
  }
  return { method, target, version: minor === 0x31 ? '1.1' : '1.0', rawHeaders, end: endAt + 4 };
}

export function isHeadError(r: ParsedHead | HeadError): r is HeadError {
  return (r as HeadError).status !== undefined;
}

// ---------------------------------------------------------------------------------------------
// Chunked transfer coding (RFC 9112 §7.1), strict: 1–16 hex digits, well-formed extensions, CRLF only.

const CHUNK_LINE_MAX = 4096;
/** chunk-size then *( BWS ";" BWS token [ BWS "=" BWS ( token / quoted-string ) ] ). */
const CHUNK_LINE = /^([0-9A-Fa-f]{1,16})((?:[ \t]*;[ \t]*[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*=[ \t]*(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"))?)*)$/;

/** Decoder states. */
const St = { Size: 0, Data: 1, DataCr: 2, DataLf: 3, Trailer: 4, Done: 5 } as const;

export class ChunkError extends Error {
  readonly status: 400 | 413 | 431;
  constructor(status: 400 | 413 | 431, message: string) {
    super(message);
    this.status = status;
  }
}

/**
 * Incremental decoder. `push(buf, from)` consumes bytes, calls `onData` for each slice of body data (returning
 * false from it stops the push right after that slice, for a consumer that paused) and
 * returns the offset where it stopped: at `buf.length`, or just past the final CRLF once `done`.
 * Throws ChunkError on malformed input.
 */
export class ChunkedDecoder {
  #st: number = St.Size;
  #remaining = 0;
  /** Partial size or trailer line carried over between packets. */
  #line = '';
  #trailerBytes = 0;
  readonly #maxTrailer: number;
  readonly #onData: (chunk: Buffer) => boolean | void;

  constructor(onData: (chunk: Buffer) => boolean | void, maxTrailerSize: number) {
    this.#onData = onData;
    this.#maxTrailer = maxTrailerSize;
  }

  get done(): boolean {
    return this.#st === St.Done;
  }

  push(buf: Buffer, from: number): number {
    let i = from;
    const n = buf.length;
    while (i < n) {
      switch (this.#st) {
        case St.Size:
        case St.Trailer: {
          const lf = buf.indexOf(0x0a, i);
          const end = lf === -1 ? n : lf;
          this.#line += latin1(buf, i, end);
          if (this.#line.length > CHUNK_LINE_MAX + 1 || (this.#st === St.Trailer && this.#trailerBytes + this.#line.length > this.#maxTrailer + 1)) {
            throw new ChunkError(this.#st === St.Size ? 400 : 431, this.#st === St.Size ? 'chunk line too long' : 'trailer section too large');
          }
          if (lf === -1) {
            // A CR may only be the last byte so far (its LF still to come).
            const cr = this.#line.indexOf('\r');
            if (cr !== -1 && cr !== this.#line.length - 1) throw new ChunkError(400, 'bare CR in a chunk line');
            return n;
          }
          i = lf + 1;
          const line = this.#line;
          this.#line = '';
          if (line.charCodeAt(line.length - 1) !== 0x0d) throw new ChunkError(400, 'chunk line not ended by CRLF');
          const body = line.slice(0, -1);
          if (this.#st === St.Size) this.#sizeLine(body);
          else this.#trailerLine(body);
          if ((this.#st as number) === St.Done) return i;
          break;
        }
        case St.Data: {
          const take = Math.min(this.#remaining, n - i);
          const more = this.#onData(take === n - i && i === 0 ? buf : buf.subarray(i, i + take));
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) this.#st = St.DataCr;
          if (more === false) return i;
          break;
        }
        case St.DataCr:
          if (buf[i++] !== 0x0d) throw new ChunkError(400, 'chunk data longer than its size');
          this.#st = St.DataLf;
          break;
        case St.DataLf:
          if (buf[i++] !== 0x0a) throw new ChunkError(400, 'chunk data not ended by CRLF');
          this.#st = St.Size;
          break;
        default:
          return i;
      }
    }
    return i;
  }

  #sizeLine(line: string): void {
    const m = CHUNK_LINE.exec(line);
    if (m === null) throw new ChunkError(400, 'malformed chunk size line');
    const size = Number.parseInt(m[1], 16);
    if (!Number.isSafeInteger(size)) throw new ChunkError(400, 'chunk size too large');
    if (size === 0) {
      this.#st = St.Trailer;
    } else {
      this.#remaining = size;
      this.#st = St.Data;
    }
  }

  #trailerLine(line: string): void {
    if (line.length === 0) {
      this.#st = St.Done;
      return;
    }
    this.#trailerBytes += line.length + 2;
    // Trailer fields are read and dropped (not forwarded): they still have to be well-formed.
    const colon = line.indexOf(':');
    if (colon <= 0 || isOws(line.charCodeAt(0)) || isOws(line.charCodeAt(colon - 1)) || line.indexOf('\r') !== -1 || CTL.test(line)) {
      throw new ChunkError(400, 'malformed trailer field');
    }
  }
}

// Test helper: a raw-socket HTTP/1.1 client that sends exact bytes and parses whatever responses come back.
import net from 'node:net';

/** Request bytes: a string is sent as latin1, so `\xa0` or `\xff` in a literal is one byte on the wire. */
export type Bytes = string | Buffer;

export interface RawResponse {
  status: number;
  reason: string;
  /** Names lowercased, in wire order. */
  headers: Array<[string, string]>;
  body: Buffer;
}

export interface RawResult {
  responses: RawResponse[];
  /** Status of the first response (interim or final), undefined when none arrived. */
  status: number | undefined;
  /** The peer closed (FIN or reset) before we gave up waiting. */
  closed: boolean;
  /** Milliseconds from the last write to the close; undefined when not closed. */
  closeMs: number | undefined;
  /** Bytes after the last complete response that did not parse as one (a partial or garbled response). */
  rest: Buffer;
  /** Socket error code seen, if any (ECONNRESET, EPIPE…). */
  error: string | undefined;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');

export function toBuffer(data: Bytes): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
}

/** First value of a response header (name in any case). */
export function header(res: RawResponse, name: string): string | undefined {
  const n = name.toLowerCase();
  return res.headers.find(([k]) => k === n)?.[1];
}

/** Parses one chunked body starting at `at`; returns the decoded body and the end offset, or null when incomplete or malformed. */
function parseChunked(buf: Buffer, at: number): { body: Buffer; end: number } | null {
  const parts: Buffer[] = [];
  let i = at;
  for (;;) {
    const eol = buf.indexOf('\r\n', i);
    if (eol < 0) return null;
    const size = Number.parseInt(buf.toString('latin1', i, eol).split(';')[0], 16);
    if (!Number.isFinite(size)) return null;
    i = eol + 2;
    if (size === 0) break;
    if (buf.length < i + size + 2) return null;
    parts.push(buf.subarray(i, i + size));
    i += size + 2;
  }
  // Trailer section: lines until an empty one.
  for (;;) {
    const eol = buf.indexOf('\r\n', i);
    if (eol < 0) return null;
    const empty = eol === i;
    i = eol + 2;
    if (empty) return { body: Buffer.concat(parts), end: i };
  }
}

/** Splits `buf` into complete responses; `eof` lets a response without framing end at the close. */
export function parseResponses(buf: Buffer, eof: boolean): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = [];
  let i = 0;
  while (i < buf.length) {
    const end = buf.indexOf(CRLFCRLF, i);
    if (end < 0) break;
    const lines = buf.toString('latin1', i, end).split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
    if (!m) break;
    const status = Number(m[1]);
    const headers: Array<[string, string]> = [];
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) return { responses, rest: buf.subarray(i) };
      headers.push([line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]);
    }
    const res: RawResponse = { status, reason: m[2] ?? '', headers, body: Buffer.alloc(0) };
    let next = end + 4;
    if (status >= 200 && status !== 204 && status !== 304) {
      const te = header(res, 'transfer-encoding');
      const cl = header(res, 'content-length');
      if (te !== undefined && /chunked\s*$/i.test(te)) {
        const c = parseChunked(buf, next);
        if (!c) break;
        res.body = c.body;
        next = c.end;
      } else if (cl !== undefined) {
        const n = Number(cl);
        if (buf.length < next + n) break;
        res.body = buf.subarray(next, next + n);
        next += n;
      } else {
        if (!eof) break;
        res.body = buf.subarray(next);
        next = buf.length;
      }
    }
    responses.push(res);
    i = next;
  }
  return { responses, rest: buf.subarray(i) };
}

/** One client connection; records everything received and when the peer closed. */
export class RawConnection {
  readonly #socket: net.Socket;
  readonly #chunks: Buffer[] = [];
  #closedAt = 0;
  #lastWriteAt = 0;
  #error: string | undefined;
  #wake: (() => void) | null = null;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', (c: Buffer) => {
      this.#chunks.push(c);
      this.#notify();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.#error ??= err.code ?? err.message;
    });
    socket.on('close', () => {
      this.#closedAt = performance.now();
      this.#notify();
    });
  }

  static open(port: number, host = '127.0.0.1'): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host, noDelay: true });
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.#closedAt !== 0;
  }

  get received(): Buffer {
    return Buffer.concat(this.#chunks);
  }

  /** Sends bytes as they are; a write after the peer closed is recorded as an error, not thrown. */
  write(data: Bytes): void {
    this.#lastWriteAt = performance.now();
    if (this.#socket.destroyed || !this.#socket.writable) {
      this.#error ??= 'EPIPE';
      return;
    }
    this.#socket.write(toBuffer(data));
  }

  /** Resolves true once `cond()` holds, false after `timeoutMs`; re-checked on every data or close event. */
  async waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!cond()) {
      const left = deadline - performance.now();
      if (left <= 0 || (this.closed && !cond())) return cond();
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#wake = null;
    }
    return true;
  }

  /** Waits until `n` complete responses (interim ones count) have arrived. */
  waitForResponses(n: number, timeoutMs: number): Promise<boolean> {
    return this.waitFor(() => this.result().responses.length >= n, timeoutMs);
  }

  waitForClose(timeoutMs: number): Promise<boolean> {
    return this.waitFor(() => this.closed, timeoutMs);
  }

  result(): RawResult {
    const closed = this.closed;
    const { responses, rest } = parseResponses(this.received, closed);
    return {
      responses,
      status: responses[0]?.status,
      closed,
      closeMs: closed ? Math.max(0, this.#closedAt - this.#lastWriteAt) : undefined,
      rest,
      error: this.#error,
    };
  }

  /** Destroys our side; safe to call twice. */
  close(): void {
    this.#socket.destroy();
  }

  #notify(): void {
    this.#wake?.();
  }
}

export interface SendOptions {
  /** Stop once this many responses are complete instead of waiting for the close. */
  responses?: number;
  /** Longest wait for the close (or the responses); default 1100 ms, just past the 1 s close criterion. */
  timeoutMs?: number;
}

/** Opens a connection, writes `data` in one go, waits for the close (or `responses`), then closes our side. */
export async function sendRaw(port: number, data: Bytes, opts: SendOptions = {}): Promise<RawResult> {
  const conn = await RawConnection.open(port);
  try {
    conn.write(data);
    const timeout = opts.timeoutMs ?? 1100;
    if (opts.responses !== undefined) await conn.waitForResponses(opts.responses, timeout);
    else await conn.waitForClose(timeout);
    return conn.result();
  } finally {
    conn.close();
  }
}

/** One line for assertion messages: what came back and whether the connection closed. */
export function summarize(r: RawResult): string {
  const statuses = r.responses.map((x) => x.status).join(',') || 'none';
  const close = r.closed ? `closed after ${Math.round(r.closeMs ?? 0)} ms` : 'still open';
  const rest = r.rest.length ? `, ${r.rest.length} unparsed bytes ${JSON.stringify(r.rest.toString('latin1').slice(0, 60))}` : '';
  return `responses [${statuses}], ${close}${r.error ? `, socket error ${r.error}` : ''}${rest}`;
}

/** A request as a raw upstream reads it: method, target and the head's text (request line and headers). */
export interface RawRequestHead {
  method: string;
  path: string;
  head: string;
}

/**
 * The upstream side: reads HTTP/1.1 requests off `socket` (read as latin1). `onHead` sees each head as soon as it is in
 * (its body may still be streaming); `onRequest` once its Content-Length body has arrived (no body without one).
 */
export function readRequests(socket: net.Socket, on: { onHead?(r: RawRequestHead): void; onRequest(r: RawRequestHead): void }): void {
  let buf = '';
  /** onHead has seen the head at the front of `buf`. */
  let seen = false;
  socket.on('data', (d: Buffer) => {
    buf += d.toString('latin1');
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buf.slice(0, end);
      const [method, path] = head.split(' ');
      const r = { method, path, head };
      if (!seen) on.onHead?.(r);
      seen = true;
      const cl = /\r\ncontent-length: *(\d+)/i.exec(head);
      const bodyLength = cl === null ? 0 : Number(cl[1]);
      if (buf.length < end + 4 + bodyLength) return;
      buf = buf.slice(end + 4 + bodyLength);
      seen = false;
      on.onRequest(r);
      if (socket.destroyed || socket.writableEnded) return;
    }
  });
}

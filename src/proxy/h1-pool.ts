// The upstream half of the h1 engine: a keep-alive connection pool for plain-HTTP/1.1 endpoints that speaks
// undici's dispatch-handler interface, so the forwarding code drives it exactly like an undici Pool.
//
// Why not undici here: per proxied request it spent ~9 µs more CPU than this pool (docs/performance.md),
// mostly re-validating headers we built from validated input and its generic request machinery. undici stays
// for TLS and HTTP/2 backends, for WebSocket upgrades (delegated from here) and for health checks.
import net from 'node:net';
import type { LookupFunction } from 'node:net';
import { Readable } from 'node:stream';
import { Client, type Dispatcher } from 'undici';
import { lastStamp, stamp } from './clock.ts';
import { ChunkedDecoder, type ChunkError, hasBadHeadByte, latin1 } from './h1-parse.ts';
import { eqi, parseContentLength } from './field-syntax.ts';
import { holdWrites } from './write-batch.ts';

export interface H1PoolOptions {
  /** Max connections to the endpoint; further requests queue. */
  connections: number;
  /** Close a connection idle this long (ms); an upstream `Keep-Alive: timeout=N` shortens it. */
  keepAliveTimeout: number;
  connectTimeout: number;
  /** Time from the request being written to the whole response head (ms); 0 = none. */
  headersTimeout: number;
  /** Longest gap between response body reads (ms); 0 = none. */
  bodyTimeout: number;
  /** Max connection age (ms) for hostname endpoints (new connections pick up re-resolved addresses); null = none. */
  clientTtl: number | null;
  lookup?: LookupFunction;
  /** Bigger response heads are a bad response. */
  maxHeaderSize?: number;
}

type Handler = Dispatcher.DispatchHandler;
type Body = Readable | AsyncIterable<Buffer | string> | null;

export interface DispatchOptions {
  method: string;
  path: string;
  headers: string[];
  body?: Body | Buffer | string;
  upgrade?: string;
}

/** An error with the code the forwarding code maps to a status and a retry decision (undici's and Node's codes). */
export class UpstreamError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

const E_HEAD_LARGE = 'response head too large';
const CRLFCRLF = Buffer.from('\r\n\r\n');
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** One request on its way through the pool; also its own DispatchController. */
class UpRequest implements Dispatcher.DispatchController {
  readonly opts: DispatchOptions;
  readonly handler: Handler;
  conn: UpConn | null = null;
  aborted = false;
  paused = false;
  /** Part of undici's DispatchController: why the request was aborted. */
  reason: Error | null = null;
  /** The response head arrived (onResponseStart was called). */
  started = false;
  done = false;

  constructor(opts: DispatchOptions, handler: Handler) {
    this.opts = opts;
    this.handler = handler;
  }

  abort(reason: Error): void {
    if (this.done || this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const conn = this.conn;
    if (conn !== null) conn.fail(reason);
    else this.error(reason);
  }

  pause(): void {
    this.paused = true;
    this.conn?.socket.pause();
  }

  resume(): void {
    this.paused = false;
    const conn = this.conn;
    if (conn !== null) {
      conn.socket.resume();
      conn.flushHeld();
    }
  }

  error(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.handler.onResponseError?.(this, err);
  }
}

const S_IDLE = 0;
const S_HEAD = 1;
const S_BODY = 2;

/** One keep-alive connection; carries one request at a time. */
class UpConn {
  readonly socket: net.Socket;
  readonly #pool: H1Pool;
  readonly born: number;
  connected = false;
  closed = false;
  req: UpRequest | null = null;
  #state = S_IDLE;
  #buf: Buffer | null = null;
  /** Body bytes still expected: >= 0 for Content-Length, -1 chunked (#decoder), -2 until close. */
  #remaining = 0;
  #decoder: ChunkedDecoder | null = null;
  #reusable = true;
  /** The request (head and body) is fully written. */
  #sent = false;
  /** Time of the last progress (request sent, body bytes read), for the header and body timeouts. */
  since = 0;
  /** Bumped on every body read; the sweep turns a change into a fresh `since` (no clock call per read). */
  progress = 0;
  seenProgress = 0;
  idleSince = 0;
  keepAliveMs: number;

  constructor(pool: H1Pool, socket: net.Socket, keepAliveMs: number) {
    this.#pool = pool;
    this.socket = socket;
    this.born = stamp();
    this.keepAliveMs = keepAliveMs;
    socket.setNoDelay(true);
    socket.on('data', this.#onData);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
  }

  get state(): number {
    return this.#state;
  }

  /** Writes the request head (and a small known body) in one write, then streams any other body. */
  start(req: UpRequest): void {
    this.req = req;
    req.conn = this;
    this.#state = S_HEAD;
    this.#reusable = true;
    holdWrites(this.socket);
    this.#sent = false;
    // The sweep stamps `since` on its next pass (timeouts run up to one sweep late, never early).
    this.progress++;
    if (req.paused) this.socket.pause();
    const o = req.opts;
    const headers = o.headers;
    let head = `${o.method} ${o.path} HTTP/1.1\r\n`;
    let hasHost = false;
    let hasLength = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      if (name.length === 4 && eqi(name, 0, 4, 'host')) hasHost = true;
      else if (name.length === 14 && eqi(name, 0, 14, 'content-length')) hasLength = true;
      head += `${name}: ${headers[i + 1]}\r\n`;
    }
    if (!hasHost) head += `host: ${this.#pool.hostHeader}\r\n`;
    const body = o.body ?? null;
    if (body === null) {
      // As undici: methods that carry a body announce an empty one.
      if (!hasLength && (o.method === 'POST' || o.method === 'PUT' || o.method === 'PATCH')) head += 'content-length: 0\r\n';
      this.#sent = true;
      this.socket.write(`${head}\r\n`, 'latin1');
      return;
    }
    if (typeof body === 'string' || Buffer.isBuffer(body)) {
      const len = Buffer.byteLength(body);
      if (!hasLength) head += `content-length: ${len}\r\n`;
      this.socket.cork();
      this.socket.write(`${head}\r\n`, 'latin1');
      this.socket.write(body);
      this.socket.uncork();
      this.#sent = true;
      return;
    }
    const chunked = !hasLength;
    if (chunked) head += 'transfer-encoding: chunked\r\n';
    this.socket.write(`${head}\r\n`, 'latin1');
    this.#streamBody(req, body, chunked);
  }

  #streamBody(req: UpRequest, body: Readable | AsyncIterable<Buffer | string>, chunked: boolean): void {
    const socket = this.socket;
    const write = (chunk: Buffer | string): boolean => {
      if (chunk.length === 0) return true;
      if (!chunked) return socket.write(chunk);
      socket.cork();
      socket.write(`${Buffer.byteLength(chunk).toString(16)}\r\n`, 'latin1');
      socket.write(chunk);
      const ok = socket.write('\r\n', 'latin1');
      socket.uncork();
      return ok;
    };
    const finish = (): void => {
      if (req !== this.req) return;
      if (chunked) socket.write('0\r\n\r\n', 'latin1');
      this.#sent = true;
      this.progress++;
    };
    const failBody = (err: Error): void => {
      if (req !== this.req) return;
      // The upstream holds a partial request: this connection cannot be reused.
      this.fail(err);
    };
    if (body instanceof Readable) {
      const onData = (chunk: Buffer | string): void => {
        if (req !== this.req) return;
        if (!write(chunk)) {
          body.pause();
          socket.once('drain', () => body.resume());
        }
      };
      const cleanup = (): void => {
        body.off('data', onData);
        body.off('end', onEnd);
        body.off('error', onErr);
        body.off('close', onClose);
      };
      const onEnd = (): void => {
        cleanup();
        finish();
      };
      const onErr = (err: Error): void => {
        cleanup();
        failBody(err);
      };
      const onClose = (): void => {
        // Closed without 'end' (destroyed without an error): the body is incomplete.
        cleanup();
        if (!this.#sent) failBody(new UpstreamError('UND_ERR_SOCKET', 'request body ended early'));
      };
      if (body.readableEnded) return finish();
      if (body.errored) return failBody(body.errored as Error);
      body.on('data', onData);
      body.on('end', onEnd);
      body.on('error', onErr);
      body.on('close', onClose);
      return;
    }
    void (async () => {
      try {
        for await (const chunk of body) {
          if (req !== this.req) return;
          if (!write(chunk)) await new Promise<void>((resolve) => {
            const done = (): void => {
              socket.off('drain', done);
              socket.off('close', done);
              resolve();
            };
            socket.on('drain', done);
            socket.on('close', done);
          });
        }
        finish();
      } catch (err) {
        failBody(err as Error);
      }
    })();
  }

  readonly #onData = (d: Buffer): void => {
    const req = this.req;
    if (req === null) {
      // Bytes on an idle connection: the upstream is not speaking HTTP to us; drop the connection.
      this.socket.destroy();
      return;
    }
    if (this.#state === S_BODY) return this.#body(d, req);
    this.#buf = this.#buf === null ? d : Buffer.concat([this.#buf, d]);
    this.#head(req);
  };

  #head(req: UpRequest): void {
    for (;;) {
      const buf = this.#buf!;
      const end = buf.indexOf(CRLFCRLF);
      const max = this.#pool.maxHeaderSize;
      if (end === -1) {
        if (buf.length > max) this.fail(new UpstreamError('HPE_HEADER_OVERFLOW', E_HEAD_LARGE));
        return;
      }
      if (end + 4 > max) return this.fail(new UpstreamError('HPE_HEADER_OVERFLOW', E_HEAD_LARGE));
      const s = latin1(buf, 0, end + 2);
      const rest = end + 4 < buf.length ? buf.subarray(end + 4) : null;
      this.#buf = null;
      // Response head: obs-text allowed in values, no controls other than HTAB; CR only as part of CRLF.
      if (hasBadHeadByte(buf, 0, end + 2) || !s.startsWith('HTTP/1.') || (s.charCodeAt(12) !== 0x20 && s.charCodeAt(12) !== 0x0d)) {
        return this.fail(new UpstreamError('HPE_INVALID_CONSTANT', 'malformed response status line or fields'));
      }
      const minor = s.charCodeAt(7);
      const d0 = s.charCodeAt(9) - 0x30;
      const d1 = s.charCodeAt(10) - 0x30;
      const d2 = s.charCodeAt(11) - 0x30;
      const status = d0 * 100 + d1 * 10 + d2;
      if ((minor !== 0x31 && minor !== 0x30) || s.charCodeAt(8) !== 0x20 || d0 < 1 || d0 > 9 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) {
        return this.fail(new UpstreamError('HPE_INVALID_CONSTANT', 'malformed response status line'));
      }
      const parsed = this.#fields(s, minor === 0x31);
      if (parsed === null) return;
      if (status < 200) {
        // Interim responses (100 Continue, 103 Early Hints) are not passed on; 101 was never asked for here.
        if (status === 101) return this.fail(new UpstreamError('UND_ERR_INFO', 'unexpected 101 Switching Protocols'));
        if (rest === null) return;
        this.#buf = rest;
        continue;
      }
      const { headers, contentLength, chunked, close, keepAliveMs } = parsed;
      if (close) this.#reusable = false;
      if (keepAliveMs > 0) this.keepAliveMs = Math.min(this.keepAliveMs, keepAliveMs);
      const noBody = req.opts.method === 'HEAD' || status === 204 || status === 304;
      if (noBody) this.#remaining = 0;
      else if (chunked) {
        this.#remaining = -1;
        this.#decoder = new ChunkedDecoder(this.#onChunk, this.#pool.maxHeaderSize);
      } else if (contentLength >= 0) this.#remaining = contentLength;
      else {
        this.#remaining = -2;
        this.#reusable = false;
      }
      this.#state = S_BODY;
      this.progress++;
      req.started = true;
      const statusText = s.slice(13, s.indexOf('\r'));
      req.handler.onResponseStart?.(req, status, headers, statusText);
      if (req !== this.req || this.closed) return;
      if (this.#remaining === 0) return this.#complete(req);
      if (rest !== null) this.#body(rest, req);
      return;
    }
  }

  /** Parses the response fields into undici's shape (lowercase names, repeated names as arrays). */
  #fields(s: string, http11: boolean): { headers: Record<string, string | string[]>; contentLength: number; chunked: boolean; close: boolean; keepAliveMs: number } | null {
    const headers: Record<string, string | string[]> = {};
    let contentLength = -1;
    let chunked = false;
    let close = !http11;
    let keepAliveMs = 0;
    let pos = s.indexOf('\n') + 1;
    while (pos < s.length) {
      const eol = s.indexOf('\r', pos);
      const c0 = s.charCodeAt(pos);
      const colon = s.indexOf(':', pos);
      if (c0 === 0x20 || c0 === 0x09 || colon <= pos || colon > eol) {
        this.fail(new UpstreamError('HPE_INVALID_HEADER_TOKEN', 'malformed response field line'));
        return null;
      }
      const name = s.slice(pos, colon).toLowerCase();
      if (!TOKEN.test(name)) {
        this.fail(new UpstreamError('HPE_INVALID_HEADER_TOKEN', 'invalid response field name'));
        return null;
      }
      let a = colon + 1;
      let b = eol;
      while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++;
      while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--;
      const value = s.slice(a, b);
      pos = eol + 2;
      switch (name.length) {
        case 10:
          if (name === 'connection') {
            const v = value.toLowerCase();
            if (v.includes('close')) close = true;
            else if (!http11 && v.includes('keep-alive')) close = false;
          } else if (name === 'keep-alive') {
            const m = /timeout=(\d+)/i.exec(value);
            if (m) keepAliveMs = Math.max(1, Number(m[1]) * 1000 - 1000);
          }
          break;
        case 14:
          if (name === 'content-length') {
            const n = parseContentLength(value);
            if (n === -1 || (contentLength !== -1 && n !== contentLength)) {
              this.fail(new UpstreamError('HPE_UNEXPECTED_CONTENT_LENGTH', 'invalid or conflicting response Content-Length'));
              return null;
            }
            contentLength = n;
          }
          break;
        case 17:
          if (name === 'transfer-encoding') {
            if (chunked || !eqi(value, 0, value.length, 'chunked')) {
              this.fail(new UpstreamError('HPE_INVALID_TRANSFER_ENCODING', 'response Transfer-Encoding other than one "chunked"'));
              return null;
            }
            chunked = true;
          }
          break;
      }
      const prev = headers[name];
      if (prev === undefined) headers[name] = value;
      else if (typeof prev === 'string') headers[name] = [prev, value];
      else prev.push(value);
    }
    if (chunked && contentLength !== -1) {
      // RFC 9112 §6.3: a message with both is a smuggling attempt or a broken server; never relay it.
      this.fail(new UpstreamError('HPE_UNEXPECTED_CONTENT_LENGTH', 'response with both Transfer-Encoding and Content-Length'));
      return null;
    }
    return { headers, contentLength: chunked ? -1 : contentLength, chunked, close, keepAliveMs };
  }

  /** Decoded response data; false stops the decoder when the handler paused (the rest is held). */
  readonly #onChunk = (chunk: Buffer): boolean => {
    const req = this.req;
    if (req === null) return false;
    req.handler.onResponseData?.(req, chunk);
    return !req.paused && req === this.req;
  };

  /** Bytes of a read not yet given to a handler that paused mid-read. */
  #held: Buffer | null = null;

  /** The handler resumed: deliver what a pause held back. */
  flushHeld(): void {
    const held = this.#held;
    const req = this.req;
    if (held === null || req === null || req.paused) return;
    this.#held = null;
    this.#body(held, req);
  }

  #body(d: Buffer, req: UpRequest): void {
    this.progress++;
    const r = this.#remaining;
    if (r === -2) {
      req.handler.onResponseData?.(req, d);
      return;
    }
    if (r === -1) {
      let used: number;
      try {
        used = this.#decoder!.push(d, 0);
      } catch (err) {
        return this.fail(new UpstreamError('HPE_INVALID_CHUNK_SIZE', (err as ChunkError).message));
      }
      if (req !== this.req || this.closed) return;
      if (!this.#decoder!.done && used < d.length) {
        // The handler paused: keep the rest of this read until it resumes.
        this.#held = d.subarray(used);
        return;
      }
      if (this.#decoder!.done) {
        if (used < d.length) this.#reusable = false; // bytes after the response: not a clean connection
        this.#complete(req);
      }
      return;
    }
    if (d.length <= r) {
      this.#remaining = r - d.length;
      req.handler.onResponseData?.(req, d);
      if (req !== this.req || this.closed) return;
      if (this.#remaining === 0) this.#complete(req);
    } else {
      // More bytes than the response holds: the connection is out of step; deliver the response, drop the rest.
      this.#remaining = 0;
      this.#reusable = false;
      req.handler.onResponseData?.(req, d.subarray(0, r));
      if (req !== this.req || this.closed) return;
      this.#complete(req);
    }
  }

  #complete(req: UpRequest): void {
    this.#state = S_IDLE;
    this.#held = null;
    this.#decoder = null;
    this.req = null;
    req.conn = null;
    req.done = true;
    if (req.paused) this.socket.resume();
    const reuse = this.#reusable && this.#sent;
    if (!reuse) this.close();
    req.handler.onResponseEnd?.(req, {});
    if (reuse && !this.closed) this.#pool.release(this);
  }

  /** Ends the current request with `err` (if any) and destroys the connection. */
  fail(err: Error): void {
    const req = this.req;
    this.req = null;
    this.close();
    if (req !== null) {
      req.conn = null;
      req.error(err);
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.#pool.forget(this);
  }

  readonly #onError = (err: Error): void => {
    this.#lastError = err;
  };
  #lastError: Error | null = null;

  readonly #onClose = (): void => {
    const req = this.req;
    if (req !== null && this.#state === S_BODY && this.#remaining === -2) {
      // A close-delimited body ends with the connection.
      this.closed = true;
      this.#pool.forget(this);
      this.req = null;
      req.conn = null;
      req.done = true;
      req.handler.onResponseEnd?.(req, {});
      return;
    }
    const err = this.#lastError as (Error & { code?: string }) | null;
    const wasConnected = this.connected;
    this.closed = true;
    this.#pool.forget(this);
    if (req !== null) {
      this.req = null;
      req.conn = null;
      if (!wasConnected && err !== null) req.error(err);
      else req.error(new UpstreamError(err?.code ?? 'UND_ERR_SOCKET', err?.message ?? 'other side closed'));
    }
  };
}

/** Pools of every live H1Pool, swept together for timeouts and idle connections. */
const live = new Set<H1Pool>();
let sweepTimer: NodeJS.Timeout | null = null;
const SWEEP_MS = 100;

function sweep(): void {
  const now = stamp();
  for (const p of live) p.sweep(now);
}

/** How many pools the sweep timer is visiting (tests: a pool without connections costs no timer). */
export function sweptPoolCount(): number {
  return live.size;
}

function track(p: H1Pool): void {
  live.add(p);
  if (sweepTimer === null) {
    sweepTimer = setInterval(sweep, SWEEP_MS);
    sweepTimer.unref();
  }
}

function untrack(p: H1Pool): void {
  live.delete(p);
  if (live.size === 0 && sweepTimer !== null) {
    clearInterval(sweepTimer);
    sweepTimer = null;
  }
}

/**
 * A pool for one `http://host:port` endpoint: LIFO idle stack (the warmest connection first), FIFO queue
 * at the connection cap. `dispatch` calls the handler like undici: onRequestStart (synchronously),
 * onResponseStart, onResponseData, onResponseEnd, or onResponseError.
 */
export class H1Pool {
  readonly origin: URL;
  readonly hostHeader: string;
  readonly maxHeaderSize: number;
  readonly #opts: H1PoolOptions;
  readonly #host: string;
  readonly #port: number;
  readonly #idle: UpConn[] = [];
  readonly #all = new Set<UpConn>();
  readonly #queue: UpRequest[] = [];
  #connecting = 0;
  #closing = false;
  #closed: (() => void) | null = null;
  /** WebSocket upgrades go through undici (created on first use). */
  #upgrades: Client | null = null;

  constructor(origin: string, opts: H1PoolOptions) {
    this.origin = new URL(origin);
    this.#opts = opts;
    this.#host = this.origin.hostname.replace(/^\[|\]$/g, '');
    this.#port = Number(this.origin.port || 80);
    this.hostHeader = this.origin.host;
    this.maxHeaderSize = opts.maxHeaderSize ?? 64 * 1024;
  }

  get connections(): number {
    return this.#all.size;
  }

  dispatch(opts: DispatchOptions, handler: Handler): boolean {
    if (opts.upgrade !== undefined) {
      this.#upgrades ??= new Client(this.origin.origin, { connectTimeout: this.#opts.connectTimeout, connect: { lookup: this.#opts.lookup } });
      return this.#upgrades.dispatch(opts as Dispatcher.DispatchOptions, handler);
    }
    const req = new UpRequest(opts, handler);
    handler.onRequestStart?.(req, {});
    if (req.aborted) return true;
    if (this.#closing) {
      req.error(new UpstreamError('UND_ERR_CLOSED', 'the pool is closed'));
      return true;
    }
    this.#assign(req);
    return true;
  }

  #assign(req: UpRequest): void {
    const idle = this.#idle;
    while (idle.length > 0) {
      const c = idle.pop()!;
      if (!c.closed) return c.start(req);
    }
    if (this.#all.size < this.#opts.connections) return this.#connect(req);
    this.#queue.push(req);
  }

  #connect(req: UpRequest): void {
    const socket = net.connect({ host: this.#host, port: this.#port, lookup: this.#opts.lookup, noDelay: true });
    const conn = new UpConn(this, socket, this.#opts.keepAliveTimeout);
    // Swept (timeouts, idle expiry) while it has connections: a pool with none costs an idle process no wake-ups.
    if (this.#all.size === 0) track(this);
    this.#all.add(conn);
    this.#connecting++;
    // The request waits on this connection; the connect timeout covers the handshake only.
    conn.req = req;
    req.conn = conn;
    const timer = setTimeout(() => {
      conn.fail(new UpstreamError('UND_ERR_CONNECT_TIMEOUT', `connect timeout after ${this.#opts.connectTimeout} ms`));
    }, this.#opts.connectTimeout);
    socket.once('connect', () => {
      clearTimeout(timer);
      this.#connecting--;
      conn.connected = true;
      const r = conn.req;
      conn.req = null;
      if (r !== null && !r.done) conn.start(r);
      else this.release(conn);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (!conn.connected) this.#connecting--;
    });
  }

  /** A connection finished a response and may carry the next request. */
  release(conn: UpConn): void {
    const ttl = this.#opts.clientTtl;
    if (ttl !== null && lastStamp() - conn.born > ttl) {
      conn.close();
      this.#drainQueue();
      return;
    }
    while (this.#queue.length > 0) {
      const next = this.#queue.shift()!;
      if (!next.done && !next.aborted) return conn.start(next);
    }
    if (this.#closing) {
      conn.close();
      return;
    }
    conn.idleSince = -1; // stamped by the next sweep
    this.#idle.push(conn);
    this.#checkClosed();
  }

  /** A connection is gone: drop it from the books and give queued requests a new one. */
  forget(conn: UpConn): void {
    if (!this.#all.delete(conn)) return;
    if (this.#all.size === 0) untrack(this);
    const i = this.#idle.indexOf(conn);
    if (i !== -1) this.#idle.splice(i, 1);
    this.#drainQueue();
    this.#checkClosed();
  }

  #drainQueue(): void {
    // (Also while closing: like undici's Pool.close, requests already queued are still served.)
    while (this.#queue.length > 0 && this.#all.size < this.#opts.connections) {
      const next = this.#queue.shift()!;
      if (!next.done && !next.aborted) this.#connect(next);
    }
  }

  /** Timeouts and idle expiry, every SWEEP_MS. */
  sweep(now: number): void {
    const o = this.#opts;
    for (const c of this.#all) {
      const req = c.req;
      if (req === null) {
        if (c.idleSince === -1) c.idleSince = now;
        else if (c.connected && now - c.idleSince > c.keepAliveMs) c.close();
        continue;
      }
      if (!c.connected) continue;
      if (c.progress !== c.seenProgress) {
        c.seenProgress = c.progress;
        c.since = now;
        continue;
      }
      if (c.state === S_HEAD) {
        if (o.headersTimeout > 0 && now - c.since > o.headersTimeout) {
          c.fail(new UpstreamError('UND_ERR_HEADERS_TIMEOUT', `no response headers within ${o.headersTimeout} ms`));
        }
      } else if (c.state === S_BODY && !req.paused && o.bodyTimeout > 0 && now - c.since > o.bodyTimeout) {
        c.fail(new UpstreamError('UND_ERR_BODY_TIMEOUT', `no response body data within ${o.bodyTimeout} ms`));
      }
    }
  }

  #checkClosed(): void {
    if (this.#closing && this.#closed !== null) {
      for (const c of [...this.#idle]) c.close();
      // (Closing an idle connection re-enters here through forget(): the inner call may have finished.)
      const cb = this.#closed;
      if (cb !== null && this.#all.size === 0 && this.#queue.every((r) => r.done || r.aborted)) {
        this.#queue.length = 0;
        untrack(this);
        this.#closed = null;
        cb();
      }
    }
  }

  /** Finishes requests in flight, then closes every connection. */
  async close(): Promise<void> {
    this.#closing = true;
    // Still tracked until the last connection closes: in-flight requests keep their timeouts.
    const upgrades = this.#upgrades?.close();
    await new Promise<void>((resolve) => {
      this.#closed = resolve;
      this.#checkClosed();
    });
    await upgrades;
  }

  /** Closes everything now; requests in flight fail. */
  async destroy(): Promise<void> {
    this.#closing = true;
    untrack(this);
    for (const r of this.#queue.splice(0)) r.error(new UpstreamError('UND_ERR_DESTROYED', 'the pool was destroyed'));
    for (const c of [...this.#all]) c.fail(new UpstreamError('UND_ERR_DESTROYED', 'the pool was destroyed'));
    await this.#upgrades?.destroy();
  }
}

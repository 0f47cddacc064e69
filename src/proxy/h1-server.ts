// The h1 engine: Lockgate's own HTTP/1.1 server on plain sockets, in place of node:http for `http` listeners.
//
// Why: node:http's server side (IncomingMessage and ServerResponse streams, per-request events and header
// objects) cost more CPU per proxied request than routing, checks, logging and the upstream client together
// (docs/performance.md). This engine parses the head with one native search and one string split, answers
// with one socket write, and processes pipelined requests one at a time, in order, so a refused request
// stops everything behind it. It hands the request handler objects shaped like the parts of
// IncomingMessage/ServerResponse it uses; HTTP/2 and TLS listeners stay on Node's servers.
import net from 'node:net';
import { EventEmitter } from 'node:events';
import { STATUS_CODES } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Readable, type Duplex } from 'node:stream';
import type { GatewayLimits } from '../model/types.ts';
import { LockgateError } from '../lib/errors.ts';
import { newRequestId } from '../lib/request-id.ts';
import { checkRequest, type StrictResult } from './strict-request.ts';
import { parseHead, isHeadError, latin1, ChunkedDecoder, type ChunkError, type HeadError } from './h1-parse.ts';
import { eqi } from './field-syntax.ts';
import { destroySocket, holdWrites } from './write-batch.ts';
import { requestRefused } from '../telemetry/channels.ts';

export interface H1Handlers {
  request(req: H1Request, res: H1Response): void;
  /** A WebSocket upgrade: the socket is the handler's from now on; `head` holds bytes read past the request head. */
  upgrade(req: H1Request, socket: Duplex, head: Buffer): void;
  /** The live limits (they change on reload without a new listener). */
  limits(): GatewayLimits;
}

const EMPTY = Buffer.alloc(0);
/** How long a connection we answered with close may stay half-open before it is destroyed. */
const LINGER_MS = 500;
/** Pipelined bytes held while a response is in flight before reading pauses. */
const MAX_PIPELINED = 64 * 1024;

/** The request as the handler sees it: the fields of IncomingMessage the data plane reads. */
export class H1Request {
  readonly method: string;
  readonly url: string;
  readonly httpVersion: string;
  readonly rawHeaders: string[];
  readonly socket: net.Socket;
  /** strict-request's verdict, computed once by the engine. */
  readonly facts: StrictResult;
  /** The body stream, or null when the request has none (or was refused). */
  body: H1Body | null = null;
  complete = false;

  constructor(method: string, url: string, httpVersion: string, rawHeaders: string[], socket: net.Socket, facts: StrictResult) {
    this.method = method;
    this.url = url;
    this.httpVersion = httpVersion;
    this.rawHeaders = rawHeaders;
    this.socket = socket;
    this.facts = facts;
  }
}

/** A request body: fed by the connection, read by undici; reading applies backpressure to the socket. */
export class H1Body extends Readable {
  readonly #conn: H1Connection;
  constructor(conn: H1Connection) {
    super({ highWaterMark: 64 * 1024 });
    this.#conn = conn;
    // Errors reach whoever reads the body; unread, they must not become an uncaught 'error'.
    this.on('error', () => {});
  }
  override _read(): void {
    this.#conn.resumeBody();
  }
}

let dateSecond = -1;
let dateValue = '';
function httpDate(): string {
  const now = Date.now();
  const sec = Math.floor(now / 1000);
  if (sec !== dateSecond) {
    dateSecond = sec;
    dateValue = new Date(now).toUTCString();
  }
  return dateValue;
}

const BAD_FIELD_VALUE = /[\r\n\0]/;

/** The response: the parts of ServerResponse the data plane uses (writeHead, write, end, events). */
export class H1Response extends EventEmitter {
  readonly req: H1Request;
  readonly socket: net.Socket;
  readonly #conn: H1Connection;
  statusCode = 200;
  headersSent = false;
  writableFinished = false;
  destroyed = false;
  closed = false;
  /** Cleared to close the connection after this response (`Connection: close`). */
  shouldKeepAlive: boolean;
  /** The head, built by writeHead and sent with the first body bytes. */
  #head: string | null = null;
  #chunked = false;
  #noBody = false;
  #waitingDrain = false;

  constructor(conn: H1Connection, req: H1Request, keepAlive: boolean) {
    super();
    this.#conn = conn;
    this.req = req;
    this.socket = req.socket;
    this.shouldKeepAlive = keepAlive;
  }

  /** `headers`: a flat [name, value, …] list, or an object. Hop-by-hop framing is the engine's to set. */
  writeHead(status: number, headers?: string[] | Record<string, string | number | string[]>): this {
    if (this.headersSent) throw new Error('response head already sent');
    this.statusCode = status;
    let h = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
    let hasLength = false;
    let hasDate = false;
    const add = (name: string, value: string): void => {
      const n = name.length;
      if (n === 10 && eqi(name, 0, 10, 'connection')) return;
      if (n === 17 && eqi(name, 0, 17, 'transfer-encoding')) return;
      if (n === 14 && eqi(name, 0, 14, 'content-length')) hasLength = true;
      else if (n === 4 && eqi(name, 0, 4, 'date')) hasDate = true;
      if (BAD_FIELD_VALUE.test(value)) throw new Error(`invalid value for response header ${name}`);
      h += `${name}: ${value}\r\n`;
    };
    if (Array.isArray(headers)) {
      for (let i = 0; i < headers.length; i += 2) add(headers[i], headers[i + 1]);
    } else if (headers !== undefined) {
      for (const name in headers) {
        const v = headers[name];
        if (Array.isArray(v)) for (const one of v) add(name, one);
        else add(name, String(v));
      }
    }
    const req = this.req;
    this.#noBody = status < 200 || status === 204 || status === 304 || req.method === 'HEAD';
    if (!hasLength && !this.#noBody) {
      // HTTP/1.0 has no chunked coding: the body ends when the connection does.
      if (req.httpVersion === '1.1') {
        this.#chunked = true;
        h += 'transfer-encoding: chunked\r\n';
      } else {
        this.shouldKeepAlive = false;
      }
    }
    if (!hasDate) h += `date: ${httpDate()}\r\n`;
    if (!this.shouldKeepAlive || this.#conn.closing) {
      this.shouldKeepAlive = false;
      h += 'connection: close\r\n\r\n';
    } else {
      h += req.httpVersion === '1.0' ? 'connection: keep-alive\r\n\r\n' : '\r\n';
    }
    this.#head = h;
    this.headersSent = true;
    return this;
  }

  /**
   * Takes back a head that is built but not yet on the wire (no body byte was written): the response can
   * still become an error response. False once anything was sent.
   */
  retractHead(): boolean {
    if (this.#head === null || this.writableFinished || this.destroyed) return false;
    this.#head = null;
    this.headersSent = false;
    this.#chunked = false;
    this.#noBody = false;
    this.statusCode = 200;
    return true;
  }

  /** `100 Continue`, before the final head. */
  writeContinue(): void {
    if (!this.headersSent && !this.destroyed) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
  }

  write(chunk: Buffer | string): boolean {
    if (this.writableFinished || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(this.statusCode);
    const ok = this.#send(chunk, false);
    if (!ok && !this.#waitingDrain) {
      this.#waitingDrain = true;
      this.socket.once('drain', this.#onDrain);
    }
    return ok;
  }

  end(chunk?: Buffer | string): this {
    if (this.writableFinished || this.destroyed) return this;
    if (!this.headersSent) this.writeHead(this.statusCode);
    this.#send(chunk, true);
    this.writableFinished = true;
    this.#conn.responseDone(this);
    return this;
  }

  destroy(): this {
    if (!this.destroyed) {
      this.#conn.closing = true;
      destroySocket(this.socket);
    }
    return this;
  }

  /** Called by the connection when the socket closed before the response finished. */
  aborted(): void {
    if (this.closed) return;
    this.destroyed = true;
    this.closed = true;
    this.emit('close');
  }

  /** One socket write for the head and the first bytes where possible; chunked framing when the length is unknown. */
  #send(chunk: Buffer | string | undefined, last: boolean): boolean {
    const socket = this.socket;
    holdWrites(socket);
    const head = this.#head;
    this.#head = null;
    let data: Buffer | string | undefined = this.#noBody || chunk === undefined || chunk.length === 0 ? undefined : chunk;
    if (this.#chunked) {
      const tail = last ? '\r\n0\r\n\r\n' : '\r\n';
      if (data === undefined) {
        if (!last) return head === null || socket.write(head, 'latin1');
        return socket.write(head === null ? '0\r\n\r\n' : `${head}0\r\n\r\n`, 'latin1');
      }
      const size = (typeof data === 'string' ? Buffer.byteLength(data) : data.length).toString(16);
      if (typeof data !== 'string' && data.length <= 2048) {
        return socket.write(`${head ?? ''}${size}\r\n${latin1(data, 0, data.length)}${tail}`, 'latin1');
      }
      socket.cork();
      socket.write(`${head ?? ''}${size}\r\n`, 'latin1');
      socket.write(data);
      const ok = socket.write(tail, 'latin1');
      socket.uncork();
      return ok;
    }
    if (head === null) return data === undefined ? true : socket.write(data);
    if (data === undefined) return socket.write(head, 'latin1');
    if (typeof data !== 'string' && data.length <= 2048) return socket.write(head + latin1(data, 0, data.length), 'latin1');
    socket.cork();
    socket.write(head, 'latin1');
    const ok = socket.write(data);
    socket.uncork();
    data = undefined;
    return ok;
  }

  readonly #onDrain = (): void => {
    this.#waitingDrain = false;
    this.emit('drain');
  };
}

/** One client connection: parses requests in order, one in flight at a time. */
export class H1Connection {
  readonly socket: net.Socket;
  readonly #server: H1Server;
  /** Bytes received and not yet parsed (the next head, or pipelined requests). */
  #buf: Buffer | null = null;
  #req: H1Request | null = null;
  #res: H1Response | null = null;
  #body: H1Body | null = null;
  /** Content-Length bytes still to read, or -1 when chunked (then #decoder). */
  #remaining = 0;
  #decoder: ChunkedDecoder | null = null;
  #bodyDone = true;
  #paused = false;
  #parsing = false;
  /** A request was answered with close, or the connection is going away: parse nothing more. */
  closing = false;
  /** Requests served on this connection. */
  served = 0;
  /**
   * Server time when the current wait began (for the header, request and idle timeouts); -1 until the
   * next sweep stamps it, so a timeout fires up to one sweep late, never early, with no clock call per request.
   */
  since = -1;
  reqSince = -1;
  /** When the connection started closing (-1 until stamped): a client that never closes its side is cut off. */
  closingSince = -1;

  constructor(server: H1Server, socket: net.Socket) {
    this.#server = server;
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
  }

  get active(): boolean {
    return this.#req !== null;
  }

  get idle(): boolean {
    return this.#req === null && this.#buf === null;
  }

  get bodyDone(): boolean {
    return this.#bodyDone;
  }

  readonly #onData = (d: Buffer): void => {
    if (this.closing) return;
    if (!this.#bodyDone) return this.#feedBody(d);
    if (this.#buf === null) {
      this.#buf = d;
      if (this.#req === null) this.since = -1;
    } else {
      this.#buf = Buffer.concat([this.#buf, d]);
    }
    if (this.#req === null) this.#parse();
    else if (this.#buf.length > MAX_PIPELINED) this.#pause();
  };

  /**
   * The client closed its side. As node:http and nginx do by default, that ends the exchange: a request in
   * flight is aborted (its upstream request cancelled, its unfinished body failed), and so is anything
   * pipelined behind it. (A closing connection we already answered just finishes closing.)
   */
  readonly #onEnd = (): void => {
    destroySocket(this.socket);
  };

  readonly #onError = (): void => {
    destroySocket(this.socket);
  };

  readonly #onClose = (): void => {
    this.closing = true;
    this.#server.forget(this);
    if (this.#body !== null && !this.#bodyDone) this.#body.destroy(new Error('client closed the connection'));
    const res = this.#res;
    if (res !== null && !res.writableFinished) res.aborted();
  };

  #pause(): void {
    if (!this.#paused) {
      this.#paused = true;
      this.socket.pause();
    }
  }

  resumeBody(): void {
    if (this.#paused && !this.closing) {
      this.#paused = false;
      this.socket.resume();
    }
  }

  /** Parses and dispatches requests until one is in flight, the bytes run out, or the connection closes. */
  #parse(): void {
    if (this.#parsing) return;
    this.#parsing = true;
    try {
      while (this.#req === null && this.#buf !== null && !this.closing) {
        let buf = this.#buf;
        // RFC 9112 §2.2: empty lines before a request line are ignored.
        let start = 0;
        while (start + 1 < buf.length && buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
        if (start === buf.length) {
          this.#buf = null;
          break;
        }
        const limits = this.#server.handlers.limits();
        const head = parseHead(buf, start, limits.maxHeaderSize, limits.maxHeaderCount + 1);
        if (head === null) {
          if (start > 0) this.#buf = buf.subarray(start);
          break;
        }
        if (isHeadError(head)) {
          this.refuse(head);
          break;
        }
        buf = head.end < buf.length ? buf.subarray(head.end) : EMPTY;
        this.#buf = null;
        this.#dispatch(head.method, head.target, head.version, head.rawHeaders, buf, limits);
      }
    } finally {
      this.#parsing = false;
    }
  }

  #dispatch(method: string, target: string, version: string, rawHeaders: string[], rest: Buffer, limits: GatewayLimits): void {
    const socket = this.socket;
    // parseHead refused control characters and bare CR/LF in the head: the values need no second scan.
    const facts = checkRequest(method, version, target, rawHeaders, limits, undefined, true);
    const req = new H1Request(method, target, version, rawHeaders, socket, facts);
    let keepAlive = false;
    if (facts.ok) {
      // RFC 9112 §9.3: 1.1 persists unless `close`; 1.0 only with `keep-alive` (strict-request read the header).
      keepAlive = !facts.connectionClose && (version === '1.1' || facts.connectionKeepAlive);
      if (facts.upgrade) {
        this.#detach();
        this.#server.handlers.upgrade(req, socket, rest);
        return;
      }
    } else {
      // Framing of a refused request is unknown: nothing after it on this connection is read.
      this.closing = true;
      rest = EMPTY;
    }
    const res = new H1Response(this, req, keepAlive && !this.#server.draining);
    this.#req = req;
    this.#res = res;
    this.reqSince = -1;
    if (facts.ok && facts.hasBody) {
      const body = new H1Body(this);
      req.body = this.#body = body;
      this.#bodyDone = false;
      if (facts.chunked) {
        this.#remaining = -1;
        this.#decoder = new ChunkedDecoder(this.#onChunk, limits.maxHeaderSize);
      } else {
        this.#remaining = facts.contentLength;
        this.#decoder = null;
      }
      if (rest.length > 0) this.#feedBody(rest);
    } else {
      req.complete = true;
      if (rest.length > 0) this.#buf = rest;
    }
    this.#server.handlers.request(req, res);
  }

  readonly #onChunk = (chunk: Buffer): void => {
    if (!this.#body!.push(chunk)) this.#pause();
  };

  #feedBody(d: Buffer): void {
    const body = this.#body!;
    let rest: Buffer | null = null;
    if (this.#remaining >= 0) {
      const take = Math.min(this.#remaining, d.length);
      if (take > 0 && !body.push(take === d.length ? d : d.subarray(0, take))) this.#pause();
      this.#remaining -= take;
      if (this.#remaining === 0) {
        this.#endBody();
        if (take < d.length) rest = d.subarray(take);
      }
    } else {
      let used: number;
      try {
        used = this.#decoder!.push(d, 0);
      } catch (err) {
        const e = err as ChunkError;
        this.#bodyError(new LockgateError(e.status === 400 ? 'bad_request' : e.status === 413 ? 'payload_too_large' : 'header_too_large', e.message));
        return;
      }
      if (this.#decoder!.done) {
        this.#endBody();
        if (used < d.length) rest = d.subarray(used);
      }
    }
    if (rest !== null) {
      this.#buf = this.#buf === null ? rest : Buffer.concat([this.#buf, rest]);
      if (this.#req === null) this.#parse();
    }
  }

  #endBody(): void {
    this.#bodyDone = true;
    this.#decoder = null;
    this.#req!.complete = true;
    this.#body!.push(null);
    this.#body = null;
  }

  /** A malformed or overdue body: the upstream request is aborted with `err` and the client answered by the handler. */
  #bodyError(err: LockgateError): void {
    this.closing = true;
    this.#buf = null;
    const body = this.#body;
    this.#body = null;
    this.#bodyDone = true;
    this.#decoder = null;
    body?.destroy(err);
    // The handler sees the failure when it reads the body (and answers); if it answered already, just close.
    const res = this.#res;
    if (res === null || res.writableFinished) destroySocket(this.socket);
  }

  /** Answers a request head we could not accept (no request object exists) and closes. */
  refuse(err: HeadError | { status: number; message: string }): void {
    this.closing = true;
    this.#buf = null;
    const requestId = newRequestId();
    const body = `{"statusCode":${err.status},"message":${JSON.stringify(err.message)},"requestId":"${requestId}"}`;
    this.socket.end(
      `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Bad Request'}\r\ncontent-type: application/json; charset=utf-8\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\ndate: ${httpDate()}\r\nconnection: close\r\n\r\n${body}`,
    );
    this.#server.onRefused(err.status);
  }

  /** The request timeout hit while the body was still arriving: whoever reads the body answers 408. */
  timeoutBody(): void {
    this.#bodyError(new LockgateError('request_timeout', 'request body not received in time'));
  }

  responseDone(res: H1Response): void {
    if (res !== this.#res) return;
    this.#req = null;
    this.#res = null;
    this.served++;
    if (!res.shouldKeepAlive || this.closing || !this.#bodyDone || this.#server.draining) {
      // An unread body cannot be skipped safely: close rather than guess where the next request starts.
      this.closing = true;
      this.socket.end();
      return;
    }
    this.since = -1;
    if (this.#paused) {
      this.#paused = false;
      this.socket.resume();
    }
    if (this.#buf !== null) this.#parse();
  }

  /** Hands the socket over (WebSocket): the engine stops reading and forgets it. */
  #detach(): void {
    this.closing = true;
    // As node:http: back to the initial (not flowing, not paused) state, so bytes arriving before the new
    // owner reads stay buffered, and its first 'data' listener or pipe() starts the flow.
    (this.socket as { readableFlowing: boolean | null }).readableFlowing = null;
    this.socket.off('data', this.#onData);
    this.socket.off('end', this.#onEnd);
    this.socket.off('error', this.#onError);
    this.socket.off('close', this.#onClose);
    this.#server.forget(this);
  }
}

export interface H1ServerOptions {
  maxConnections: number;
}

/** A net.Server running the h1 engine, with Node-like close/closeIdleConnections/closeAllConnections. */
export class H1Server {
  readonly handlers: H1Handlers;
  readonly net: net.Server;
  readonly connections = new Set<H1Connection>();
  draining = false;
  /** Called for every refusal at the parser (malformed head, header timeout); these reach no access log. */
  onRefused: (status: number) => void = (status) => {
    if (requestRefused.hasSubscribers) requestRefused.publish({ status });
  };
  #sweep: NodeJS.Timeout | null = null;

  constructor(handlers: H1Handlers, opts: H1ServerOptions) {
    this.handlers = handlers;
    // allowHalfOpen: what a client FIN means is the engine's decision (H1Connection's 'end' handler), not Node's automatic end().
    this.net = net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => this.accept(socket));
    this.net.maxConnections = opts.maxConnections;
    // Swept (header, request and idle timeouts) while it has connections: an idle listener costs no wake-ups.
    this.net.on('close', () => this.#stopSweep());
  }

  /** Takes a connection (from our listener, or from a PROXY protocol front end). */
  accept(socket: Duplex): void {
    if (this.#sweep === null) this.#startSweep();
    this.connections.add(new H1Connection(this, socket as net.Socket));
  }

  /** A connection is gone (closed, or handed over to another protocol). */
  forget(c: H1Connection): void {
    this.connections.delete(c);
    if (this.connections.size === 0) this.#stopSweep();
  }

  #startSweep(): void {
    if (this.#sweep !== null) return;
    const l = this.handlers.limits();
    const every = Math.max(10, Math.min(500, Math.floor(Math.min(l.headerTimeout, l.requestTimeout, l.idleTimeout) / 4)));
    this.#sweep = setInterval(() => this.#check(), every);
    this.#sweep.unref();
  }

  #stopSweep(): void {
    if (this.#sweep !== null && this.connections.size === 0) {
      clearInterval(this.#sweep);
      this.#sweep = null;
    }
  }

  #check(): void {
    const now = performance.now();
    const l = this.handlers.limits();
    for (const c of this.connections) {
      if (c.closing) {
        if (c.active) continue;
        // Answered with close: give the client LINGER_MS to read it and close its side, then cut it off.
        if (c.closingSince === -1) c.closingSince = now;
        else if (now - c.closingSince > LINGER_MS) destroySocket(c.socket);
        continue;
      }
      if (c.since === -1) c.since = now;
      if (c.active) {
        if (c.reqSince === -1) c.reqSince = now;
        else if (!c.bodyDone && now - c.reqSince > l.requestTimeout) c.timeoutBody();
      } else if (c.idle && c.served > 0) {
        if (now - c.since > l.idleTimeout) destroySocket(c.socket);
      } else if (now - c.since > l.headerTimeout) {
        c.refuse({ status: 408, message: 'Request timeout' });
      }
    }
    if (!this.net.listening) this.#stopSweep();
  }

  /** Stops accepting; `cb` runs once every connection has closed. */
  close(cb: () => void): void {
    this.net.close(() => cb());
  }

  closeIdleConnections(): void {
    for (const c of this.connections) {
      if (c.idle) {
        c.closing = true;
        destroySocket(c.socket);
      }
    }
  }

  closeAllConnections(): void {
    for (const c of this.connections) destroySocket(c.socket);
  }
}

// A stand-in for the client response that a policy pipeline hands to the forwarder: it catches the backend's
// response so outbound policies can change it, then passes it on (buffered, or streamed once attached).
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import type { AnyResponse } from './error-response.ts';

export type HeaderInput = string[] | Record<string, string | number | string[]>;

/** Header object or flat list → a fresh flat [name, value, …] list with lower-case names. */
export function flatHeaders(headers: HeaderInput | undefined): string[] {
  const out: string[] = [];
  if (headers === undefined) return out;
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) out.push(headers[i].toLowerCase(), headers[i + 1]);
    return out;
  }
  for (const name in headers) {
    const v = headers[name];
    if (Array.isArray(v)) for (const one of v) out.push(name.toLowerCase(), one);
    else out.push(name.toLowerCase(), String(v));
  }
  return out;
}

export interface CaptureEvents {
  /** The head arrived (streaming mode only). */
  head(cap: ResponseCapture): void;
  /** The whole response arrived (buffer mode), or the body ended (streaming, before attach). */
  end(cap: ResponseCapture): void;
  /** The buffered body passed `limit`: the capture stopped taking data. */
  overflow(cap: ResponseCapture): void;
}

/**
 * Implements the parts of ServerResponse/H1Response that ForwardHandler and sendError use.
 * Buffer mode collects the whole body (up to `limit`). Stream mode reports the head, queues body bytes
 * (pausing the upstream) until `attach()` connects the real response, then writes through with backpressure.
 */
export class ResponseCapture extends EventEmitter {
  statusCode = 200;
  headersSent = false;
  writableFinished = false;
  destroyed = false;
  closed = false;
  shouldKeepAlive = true;
  readonly req = null;
  readonly socket = null;
  status = 0;
  headers: string[] = [];
  readonly #buffer: boolean;
  readonly #limit: number;
  readonly #events: CaptureEvents;
  #chunks: Buffer[] = [];
  #size = 0;
  #target: AnyResponse | null = null;
  #h2 = false;
  #ended = false;
  #waiting = false;

  constructor(mode: 'buffer' | 'stream', limit: number, events: CaptureEvents) {
    super();
    this.#buffer = mode === 'buffer';
    this.#limit = limit;
    this.#events = events;
  }

  get buffered(): boolean {
    return this.#buffer;
  }

  /** The collected body (buffer mode, or what arrived before attach). */
  body(): Buffer {
    return this.#chunks.length === 1 ? this.#chunks[0] : Buffer.concat(this.#chunks, this.#size);
  }

  writeHead(status: number, headers?: HeaderInput): this {
    this.status = this.statusCode = status;
    this.headers = flatHeaders(headers);
    this.headersSent = true;
    if (!this.#buffer) this.#events.head(this);
    return this;
  }

  /** Nothing reached the client yet: the head can be replaced (by an error response). */
  retractHead(): boolean {
    if (this.#target !== null) return false;
    this.headersSent = false;
    this.#chunks = [];
    this.#size = 0;
    return true;
  }

  writeContinue(): void {}

  write(chunk: Buffer | string): boolean {
    if (this.destroyed || this.writableFinished) return false;
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (this.#target !== null) return (this.#target as ServerResponse).write(buf);
    this.#chunks.push(buf);
    this.#size += buf.length;
    if (this.#buffer && this.#size > this.#limit) {
      this.#events.overflow(this);
      return false;
    }
    if (this.#buffer) return true;
    // Streaming but not attached yet: ask the forwarder to pause until attach() flushes the queue.
    this.#waiting = true;
    return false;
  }

  end(chunk?: Buffer | string): this {
    if (this.destroyed || this.writableFinished) return this;
    if (chunk !== undefined && chunk.length > 0) this.write(chunk);
    this.writableFinished = true;
    this.#ended = true;
    if (this.#target !== null) (this.#target as ServerResponse).end();
    else this.#events.end(this);
    return this;
  }

  /** Set by abandon(): the pipeline dropped this response on purpose (a retry, an error response instead). */
  abandoned = false;

  get attached(): boolean {
    return this.#target !== null;
  }

  /** Drops the response on purpose: aborts the upstream, and the exchange goes on. */
  abandon(): void {
    this.abandoned = true;
    this.destroy();
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    this.closed = true;
    if (this.#target !== null) this.#target.destroy();
    this.emit('close');
    return this;
  }

  /**
   * Streams the rest of the response to `res` with this status and these headers (after outbound
   * policies). Returns whether the body had already ended (then the response is complete).
   */
  attach(res: AnyResponse, status: number, headers: string[], h2: boolean): boolean {
    this.#target = res;
    this.#h2 = h2;
    writeHeadTo(res, status, headers, h2);
    const queued = this.#chunks;
    this.#chunks = [];
    this.#size = 0;
    if (this.#ended) {
      const last = queued.length === 0 ? undefined : queued.length === 1 ? queued[0] : Buffer.concat(queued);
      (res as ServerResponse).end(last);
      return true;
    }
    let ok = true;
    for (const c of queued) ok = (res as ServerResponse).write(c);
    (res as ServerResponse).on('close', () => this.emit('close'));
    if (this.#waiting) {
      this.#waiting = false;
      if (ok) this.emit('drain');
      else (res as ServerResponse).once('drain', () => this.emit('drain'));
    }
    return false;
  }

  /** Forwards drain events from the attached response (the forwarder waits for them after a full write). */
  override once(event: string | symbol, listener: (...args: unknown[]) => void): this {
    if (event === 'drain' && this.#target !== null) {
      (this.#target as ServerResponse).once('drain', listener);
      return this;
    }
    return super.once(event, listener);
  }

  get h2(): boolean {
    return this.#h2;
  }
}

/** Writes a head given as a flat list to any response kind (HTTP/2 wants an object). */
export function writeHeadTo(res: AnyResponse, status: number, headers: string[], h2: boolean): void {
  if (!h2) {
    (res as ServerResponse).writeHead(status, headers);
    return;
  }
  const obj: Record<string, string | string[]> = {};
  for (let i = 0; i < headers.length; i += 2) {
    const prev = obj[headers[i]];
    obj[headers[i]] = prev === undefined ? headers[i + 1] : Array.isArray(prev) ? [...prev, headers[i + 1]] : [prev, headers[i + 1]];
  }
  (res as Http2ServerResponse).writeHead(status, obj);
}

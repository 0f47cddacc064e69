// One HTTP/2 connection to the control plane (TLS, optionally with the node's client certificate), with JSON calls.
import { connect, constants, type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import type { PeerCertificate } from 'node:tls';

export interface SessionTls {
  /** Roots the control plane's certificate must chain to; ignored when `verify` is false. */
  ca: readonly string[];
  /** Client certificate chain and key (absent before the node has joined). */
  cert?: string;
  key?: string;
  /** false only to fetch the trust bundle before the node trusts anything (the join token's fingerprint checks it). */
  verify: boolean;
  checkServerIdentity?: (host: string, cert: PeerCertificate) => Error | undefined;
}

export interface JsonResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: unknown;
}

/** The error of a call that got an answer other than 2xx: carries the status and the server's message. */
export class ControlCallError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  /** From a 429's or 503's Retry-After (seconds), in ms. */
  readonly retryAfterMs: number | undefined;
  constructor(status: number, message: string, code?: string, retryAfterMs?: number) {
    super(message);
    this.name = 'ControlCallError';
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

const MAX_JSON_BYTES = 8 * 1024 * 1024;
/**
 * HTTP/2 flow-control windows (stream and connection) the node offers. With the default 64 KiB a snapshot of a large
 * config (a 10,000-route one is ~0.6 MB) arrives in ~10 flights, each waiting for this process to read the last one
 * and send a window update: on a busy machine every wait is a scheduling delay. With this it arrives in one.
 */
const WINDOW_BYTES = 16 * 1024 * 1024;

export class ControlSession {
  readonly #session: ClientHttp2Session;
  #closed = false;

  constructor(url: string, tls: SessionTls) {
    this.#session = connect(url, {
      ca: tls.verify ? [...tls.ca] : undefined,
      cert: tls.cert,
      key: tls.key,
      rejectUnauthorized: tls.verify,
      checkServerIdentity: tls.verify ? tls.checkServerIdentity : () => undefined,
      minVersion: 'TLSv1.2',
      settings: { initialWindowSize: WINDOW_BYTES },
    });
    this.#session.on('error', () => {}); // surfaced through the requests that fail
    this.#session.once('connect', (session) => {
      try {
        session.setLocalWindowSize(WINDOW_BYTES);
      } catch {
        // a session closing as it connects: its requests fail and a new session is made
      }
    });
    this.#session.once('close', () => (this.#closed = true));
    this.#session.once('goaway', () => (this.#closed = true));
  }

  /** Closed, going away, or broken: make a new one. */
  get closed(): boolean {
    return this.#closed || this.#session.closed || this.#session.destroyed;
  }

  /** Opens a request and waits for the response headers. */
  open(method: string, path: string, signal: AbortSignal, body?: string): Promise<{ stream: ClientHttp2Stream; status: number; headers: IncomingHttpHeaders }> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      let stream: ClientHttp2Stream;
      try {
        stream = this.#session.request({
          ':method': method,
          ':path': path,
          ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}),
        }, { endStream: body === undefined });
      } catch (err) {
        return reject(err);
      }
      const onAbort = (): void => {
        stream.close(constants.NGHTTP2_CANCEL);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      stream.once('close', () => signal.removeEventListener('abort', onAbort));
      stream.once('error', (err) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      });
      stream.once('response', (headers) => resolve({ stream, status: Number(headers[':status']), headers }));
      if (body !== undefined) stream.end(body);
    });
  }

  /** A JSON call with a deadline; throws ControlCallError for a non-2xx answer. */
  async json(method: string, path: string, o: { body?: unknown; signal: AbortSignal; timeoutMs?: number }): Promise<JsonResponse> {
    const signal = AbortSignal.any([o.signal, AbortSignal.timeout(o.timeoutMs ?? 10_000)]);
    const { stream, status, headers } = await this.open(method, path, signal, o.body === undefined ? undefined : JSON.stringify(o.body));
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > MAX_JSON_BYTES) throw new Error('the control plane answered with too large a body');
        chunks.push(chunk);
      }
    } catch (err) {
      stream.close(constants.NGHTTP2_CANCEL);
      signal.throwIfAborted();
      throw err;
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      throw new ControlCallError(status, `the control plane answered ${status} with a body that is not JSON`);
    }
    if (status < 200 || status > 299) {
      const e = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
      const retryAfter = Number(headers['retry-after']);
      throw new ControlCallError(status, `${method} ${path.split('?')[0]}: ${status} ${e?.message ?? ''}`.trimEnd(), e?.code, Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter * 1000 : undefined);
    }
    return { status, headers, body: parsed };
  }

  /** Lets open streams finish, refuses new ones. */
  close(): void {
    this.#closed = true;
    if (!this.#session.closed) this.#session.close();
  }

  destroy(): void {
    this.#closed = true;
    this.#session.destroy();
  }
}

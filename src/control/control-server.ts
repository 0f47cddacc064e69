// The control plane's HTTPS server: TLS (HTTP/2 and HTTP/1.1), caller identity, route matching, JSON errors, limits.
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { createSecureServer, type Http2SecureServer, type Http2Session } from 'node:http2';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { isValidRequestId, newRequestId } from '../lib/request-id.ts';
import { parseWorkloadId } from '../lib/spiffe-id.ts';
import { AdminAccess, type AdminAction, type AdminTarget } from './admin-access.ts';
import type { Person } from './access-requests.ts';
import type { Caller, ControlRequest, ControlResponse, ControlRoute, RouteContext } from './control-routes.ts';

/**
 * Why a request's signal aborts once its response has closed: one shared AbortError, since abort() without a reason
 * makes a new DOMException (and its stack) for every request, ~4 % of the control plane's CPU while 20 nodes ACK.
 */
const REQUEST_ENDED = new DOMException('the request ended', 'AbortError');

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export type ControlErrorCode =
  | 'bad_request' | 'invalid_config' | 'unauthorized' | 'forbidden' | 'not_found' | 'method_not_allowed'
  | 'conflict' | 'precondition_failed' | 'payload_too_large' | 'unsupported_media_type' | 'too_many_requests'
  | 'unavailable' | 'internal';

const STATUS: Readonly<Record<ControlErrorCode, number>> = {
  bad_request: 400, invalid_config: 400, unauthorized: 401, forbidden: 403, not_found: 404, method_not_allowed: 405,
  conflict: 409, precondition_failed: 412, payload_too_large: 413, unsupported_media_type: 415, too_many_requests: 429,
  unavailable: 503, internal: 500,
};

/** What a handler throws to answer with an error; `details` are merged into the `error` object (e.g. problems). */
export class ControlError extends Error {
  readonly code: ControlErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown>;
  readonly headers: Record<string, string>;
  constructor(code: ControlErrorCode, message: string, options?: { details?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown }) {
    super(message, { cause: options?.cause });
    this.name = 'ControlError';
    this.code = code;
    this.status = STATUS[code];
    this.details = options?.details ?? {};
    this.headers = options?.headers ?? {};
  }
}

/** Who a bearer token stands for at the admin API (a bare subject: the bootstrap token, with access to everything). */
export interface AdminIdentity {
  subject: string;
  access: AdminAccess;
  via: 'token' | 'person';
  person?: Person;
  /** When the credential stops being valid (ms since the epoch): long-lived streams end then. */
  expiresAt?: number;
}

/**
 * Checks a bearer token; resolves to who it names, `{ error }` for a token that is recognised but not valid (expired,
 * a person's token that failed validation: the 401 says why), or undefined. Must compare secrets in constant time.
 */
export type AdminTokenVerifier = (token: string, signal: AbortSignal) => Promise<string | AdminIdentity | { error: string } | undefined>;

/** Throws 403 unless the admin caller may do `action` on `target`. */
export function requireAccess(caller: Caller, action: AdminAction, target: AdminTarget): void {
  if (caller.kind !== 'admin') throw new ControlError('forbidden', 'this route is for administrators');
  if (!caller.access.allows(action, target)) throw new ControlError('forbidden', caller.access.denial(caller.subject, action, target));
}

export interface ControlServerTls {
  /** PEM: the leaf followed by its chain. */
  cert: string;
  key: string;
  /** PEM roots client certificates must chain to (the trust bundle). */
  ca: string | readonly string[];
}

export interface ControlServerOptions {
  routes: readonly ControlRoute[];
  tls: ControlServerTls;
  /** Node certificates from another trust domain are treated as anonymous. */
  trustDomain: string;
  verifyAdminToken: AdminTokenVerifier;
  host?: string;
  port?: number;
  maxBodyBytes?: number;
  /** How long close() lets responses finish before cutting connections. */
  closeGraceMs?: number;
  /** A handler failure (the client sees only the request id); defaults to stderr. */
  onError?: (err: unknown, requestId: string) => void;
}

/** The operator identity: a client certificate with this SPIFFE ID is an admin. */
export function operatorSpiffeId(trustDomain: string): string {
  return `spiffe://${trustDomain}/ns/lockgate-system/sa/operator`;
}

/** The caller a verified client certificate names, or undefined when it names none we accept. */
export function certificateCaller(raw: Buffer, trustDomain: string): Caller | undefined {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(raw);
  } catch {
    return undefined;
  }
  const sans = (cert.subjectAltName ?? '').split(', ').filter((s) => s !== '');
  if (sans.length !== 1 || !sans[0].startsWith('URI:')) return undefined; // exactly one URI SAN, as SPIFFE requires
  const spiffeId = sans[0].slice(4);
  const id = parseWorkloadId(spiffeId);
  if (!id || id.trustDomain !== trustDomain) return undefined;
  if (spiffeId === operatorSpiffeId(trustDomain)) return { kind: 'admin', subject: spiffeId, access: AdminAccess.everything('operator certificate'), via: 'certificate' };
  return { kind: 'node', spiffeId, namespace: id.namespace, service: id.service, certificateSerial: cert.serialNumber, notAfter: Date.parse(cert.validTo) };
}

const bodyLimits = new WeakMap<object, number>();

/** Reads the whole request body, refusing more than the server's limit (413) and ending early when `signal` aborts. */
export async function readBody(req: ControlRequest, signal: AbortSignal): Promise<Buffer> {
  const limit = bodyLimits.get(req) ?? DEFAULT_MAX_BODY_BYTES;
  const chunks: Buffer[] = [];
  let size = 0;
  signal.throwIfAborted();
  const onAbort = (): void => void req.destroy?.();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw new ControlError('payload_too_large', `the request body is larger than ${limit} bytes`);
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof ControlError) throw err;
    signal.throwIfAborted();
    throw new ControlError('bad_request', 'the request body could not be read', { cause: err });
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  return Buffer.concat(chunks);
}

/** Reads a JSON object body (an empty body is {}); anything else is 400. */
export async function readJsonObject(req: ControlRequest, signal: AbortSignal): Promise<Record<string, unknown>> {
  const raw = (await readBody(req, signal)).toString('utf8');
  if (raw.trim() === '') return {};
  try {
    const v = JSON.parse(raw) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch {
    throw new ControlError('bad_request', 'the body must be a JSON object');
  }
}

/** Sends a JSON body (with the request id header set by the server already). */
export function sendJson(res: ControlResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  // Both response types take (status, headers); TypeScript cannot call the union of their overloads.
  (res as ServerResponse).writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

interface CompiledRoute {
  route: ControlRoute;
  /** Literal segments as strings, `{param}` segments as { param }. */
  segments: Array<string | { param: string }>;
}

function compile(route: ControlRoute): CompiledRoute {
  const segments = route.path.split('/').slice(1).map((s) => (/^\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(s) ? { param: s.slice(1, -1) } : s));
  return { route, segments };
}

function matchPath(c: CompiledRoute, parts: readonly string[]): Record<string, string> | undefined {
  if (c.segments.length !== parts.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const s = c.segments[i];
    if (typeof s === 'string') {
      if (s !== parts[i]) return undefined;
    } else {
      if (parts[i] === '') return undefined;
      params[s.param] = parts[i];
    }
  }
  return params;
}

function tlsSocketOf(req: ControlRequest): TLSSocket | undefined {
  const s = req.socket as TLSSocket | undefined;
  return s && typeof s.getPeerCertificate === 'function' ? s : undefined;
}

function bearerOf(req: ControlRequest): string | undefined {
  const h = req.headers.authorization;
  if (typeof h !== 'string') return undefined;
  // People's ID and access tokens are JWTs of 600 bytes to a few KB (groups claims): the bound is the header limit's.
  const m = /^Bearer[ ]+([\x21-\x7e]{1,16384})\s*$/i.exec(h);
  return m ? m[1] : '';
}

export class ControlServer {
  readonly #server: Http2SecureServer;
  readonly #routes: CompiledRoute[];
  readonly #opts: ControlServerOptions;
  readonly #inflight = new Set<AbortController>();
  readonly #sockets = new Set<Socket>();
  readonly #sessions = new Set<Http2Session>();
  #closing: Promise<void> | undefined;
  /** Who is at the other end of each TLS connection (null: a certificate that names no caller). */
  readonly #callers = new WeakMap<object, Caller | null>();

  private constructor(server: Http2SecureServer, opts: ControlServerOptions) {
    this.#server = server;
    this.#opts = opts;
    this.#routes = opts.routes.map(compile);
  }

  /** Starts listening (127.0.0.1, port 0 unless told otherwise). */
  static async listen(opts: ControlServerOptions): Promise<ControlServer> {
    const server = createSecureServer({
      allowHTTP1: true,
      requestCert: true,
      rejectUnauthorized: false, // nodes joining with a token have no certificate yet; handlers decide by Caller
      cert: opts.tls.cert,
      key: opts.tls.key,
      ca: opts.tls.ca as string | string[],
      minVersion: 'TLSv1.2',
    });
    const cs = new ControlServer(server, opts);
    server.on('request', (req, res) => void cs.#handle(req, res));
    // Every connection is tracked from accept (the TCP socket), not only from the end of its handshake (the TLS
    // socket): one still in its handshake when close() runs would otherwise finish it afterwards, hold a session nobody
    // destroys, and keep close() waiting forever.
    const track = (socket: Socket): void => {
      if (cs.#closing) return void socket.destroy();
      cs.#sockets.add(socket);
      socket.once('close', () => cs.#sockets.delete(socket));
    };
    server.on('connection', track);
    server.on('secureConnection', track);
    server.on('session', (session: Http2Session) => {
      if (cs.#closing) return void session.destroy();
      cs.#sessions.add(session);
      session.once('close', () => cs.#sessions.delete(session));
      session.on('error', () => {}); // a broken peer must not crash the process
    });
    server.on('sessionError', () => {});
    server.on('tlsClientError', () => {});
    server.on('clientError', (_err: Error, socket: Socket) => socket.destroy());
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1');
    await once(server, 'listening');
    return cs;
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port;
  }

  get host(): string {
    return (this.#server.address() as { address: string }).address;
  }

  get url(): string {
    const h = this.host;
    return `https://${h.includes(':') ? `[${h}]` : h}:${this.port}`;
  }

  /** Swaps certificate, key and trust bundle: new handshakes use them, established connections continue. */
  updateTls(tls: ControlServerTls): void {
    this.#server.setSecureContext({ cert: tls.cert, key: tls.key, ca: tls.ca as string | string[], minVersion: 'TLSv1.2' });
  }

  async #callerOf(req: ControlRequest, signal: AbortSignal): Promise<{ caller: Caller; badToken: boolean; tokenError?: string }> {
    const token = bearerOf(req);
    let tokenError: string | undefined;
    if (token !== undefined) {
      const found = token === '' ? undefined : await this.#opts.verifyAdminToken(token, signal);
      if (typeof found === 'string') return { caller: { kind: 'admin', subject: found, access: AdminAccess.everything(found), via: 'token' }, badToken: false };
      if (found !== undefined && 'error' in found) tokenError = found.error;
      else if (found !== undefined) {
        const caller: Caller = { kind: 'admin', subject: found.subject, access: found.access, via: found.via, ...(found.person ? { person: found.person } : {}), ...(found.expiresAt !== undefined ? { expiresAt: found.expiresAt } : {}) };
        return { caller, badToken: false };
      }
    }
    const tls = tlsSocketOf(req);
    if (tls?.authorized) {
      // A connection's peer certificate cannot change: read and parse it once per HTTP/2 session (a node's every call).
      const conn: object = (req as { stream?: { session?: object } }).stream?.session ?? tls;
      let caller = this.#callers.get(conn);
      if (caller === undefined) {
        const raw = tls.getPeerCertificate(false)?.raw;
        caller = (raw ? certificateCaller(raw, this.#opts.trustDomain) : undefined) ?? null;
        this.#callers.set(conn, caller);
      }
      if (caller) return { caller, badToken: token !== undefined, tokenError };
    }
    return { caller: { kind: 'anonymous' }, badToken: token !== undefined, tokenError };
  }

  async #handle(req: ControlRequest, res: ControlResponse): Promise<void> {
    const incoming = req.headers['x-request-id'];
    const requestId = typeof incoming === 'string' && isValidRequestId(incoming) ? incoming : newRequestId();
    const ac = new AbortController();
    this.#inflight.add(ac);
    const done = (): void => {
      this.#inflight.delete(ac);
      ac.abort(REQUEST_ENDED);
    };
    res.once('close', done);
    req.once('error', () => {});
    res.once('error', () => {});
    try {
      res.setHeader('x-request-id', requestId);
      if (this.#closing) throw new ControlError('unavailable', 'the control plane is shutting down');
      await this.#dispatch(req, res, requestId, ac.signal);
    } catch (err) {
      // The client went away (or close() ended the stream): nobody to answer and nothing worth reporting.
      if (ac.signal.aborted && !(err instanceof ControlError)) res.destroy?.();
      else this.#fail(res, err, requestId);
    }
  }

  async #dispatch(req: ControlRequest, res: ControlResponse, requestId: string, signal: AbortSignal): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'https://control-plane.invalid');
    } catch {
      throw new ControlError('bad_request', 'the request target is not a valid URL');
    }
    let parts: string[];
    try {
      parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
    } catch {
      throw new ControlError('bad_request', 'the path has an invalid percent-encoding');
    }
    let found: { route: ControlRoute; params: Record<string, string> } | undefined;
    const allowed = new Set<string>();
    for (const c of this.#routes) {
      const params = matchPath(c, parts);
      if (!params) continue;
      allowed.add(c.route.method);
      if (c.route.method === req.method) found ??= { route: c.route, params };
    }
    if (!found) {
      if (allowed.size === 0) throw new ControlError('not_found', `no resource at ${url.pathname}`);
      throw new ControlError('method_not_allowed', `${req.method} is not allowed on ${url.pathname}`, { headers: { allow: [...allowed].join(', ') } });
    }
    const { route, params } = found;
    const { caller, badToken, tokenError } = await this.#callerOf(req, signal);
    if (route.auth !== 'none' && caller.kind !== route.auth) {
      if (caller.kind === 'anonymous') {
        const message = badToken ? `the bearer token is not valid${tokenError ? `: ${tokenError}` : ''}` : 'authentication required: a bearer token or a client certificate';
        throw new ControlError('unauthorized', message, { headers: { 'www-authenticate': badToken ? 'Bearer error="invalid_token"' : 'Bearer' } });
      }
      throw new ControlError('forbidden', `this route is for ${route.auth === 'admin' ? 'administrators' : 'mesh nodes'}`);
    }
    if (route.cluster !== undefined) requireAccess(caller, route.cluster, 'cluster');
    const limit = this.#opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) throw new ControlError('payload_too_large', `the request body is larger than ${limit} bytes`);
    bodyLimits.set(req, limit);
    const cx: RouteContext = { caller, params, query: url.searchParams, requestId, signal };
    await route.handle(req, res, cx);
  }

  #fail(res: ControlResponse, err: unknown, requestId: string): void {
    const e = err instanceof ControlError ? err : new ControlError('internal', 'internal error', { cause: err });
    if (e.code === 'internal') {
      if (this.#opts.onError) this.#opts.onError(err, requestId);
      else process.stderr.write(`control plane: request ${requestId} failed: ${(err as Error)?.stack ?? String(err)}\n`);
    }
    if (res.headersSent || res.writableEnded || res.destroyed) {
      res.destroy?.();
      return;
    }
    try {
      const headers: Record<string, string> = { ...e.headers, 'x-request-id': requestId };
      // Whatever is left of the body is not read: close HTTP/1.1 connections instead of draining them.
      if (!('stream' in res)) headers.connection = 'close';
      sendJson(res, e.status, { error: { code: e.code, message: e.message, requestId, ...e.details } }, headers);
    } catch {
      res.destroy?.();
    }
  }

  /** Stops accepting, ends long-lived streams (their signals abort), lets responses finish, then closes connections. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      for (const ac of this.#inflight) ac.abort();
      for (const s of this.#sessions) s.close();
      const deadline = Date.now() + (this.#opts.closeGraceMs ?? 2000);
      while (this.#inflight.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      for (const s of this.#sessions) s.destroy();
      for (const s of this.#sockets) s.destroy();
      await closed;
    })();
    return this.#closing;
  }
}

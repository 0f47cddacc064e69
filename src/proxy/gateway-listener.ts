// One configured listener: an HTTP/1.1, HTTPS or HTTP/2 (ALPN, with HTTP/1.1 fallback) server with limits, drain and cert reload.
import type http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { GatewayLimits, Listener } from '../model/types.ts';
import { createRequestHandler, type DataPlaneState } from './request-handler.ts';
import { createUpgradeHandler } from './websocket.ts';
import { buildSniTable, selectContext, type SniTable } from './tls-contexts.ts';
import { acceptProxyProtocol } from './proxy-protocol.ts';
import { CLOSING } from './error-response.ts';
import { H1Server, type H1Request, type H1Response } from './h1-server.ts';

type AnyServer = http2.Http2SecureServer | http2.Http2Server | http.Server;

type ParseError = NodeJS.ErrnoException & { rawPacket?: Buffer };
type ClientSocket = Duplex & { [CLOSING]?: boolean; _httpMessage?: http.ServerResponse | null };

/** What llhttp rejected, as a status: 414 when the request line alone overflowed, 501 for an over-long method. */
function parseErrorStatus(err: ParseError): { status: number; message: string } {
  const raw = err.rawPacket;
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    return raw && raw.indexOf('\r\n') === -1 ? { status: 414, message: 'URI too long' } : { status: 431, message: 'Request header fields too large' };
  }
  if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT' || err.code === 'ERR_HTTP_HEADERS_TIMEOUT') return { status: 408, message: 'Request timeout' };
  if (err.code === 'HPE_INVALID_METHOD' && raw) {
    const sp = raw.indexOf(0x20);
    if ((sp === -1 ? raw.length : sp) > 32) return { status: 501, message: 'Not implemented' };
  }
  return { status: 400, message: 'Bad request' };
}

/**
 * llhttp refused the bytes. Never write a second answer on a socket we already answered with close,
 * and never write over a response still in flight: let it finish, then close.
 */
function onClientError(err: ParseError, socket: ClientSocket): void {
  if (!socket.writable || err.code === 'ECONNRESET') return void socket.destroy();
  // TLS failures (handshake timeout, bad handshake) have no HTTP to answer in: just close.
  const tlsSocket = socket as ClientSocket & { encrypted?: boolean; _secureEstablished?: boolean };
  if (err.code?.startsWith('ERR_TLS') || err.code?.startsWith('ERR_SSL') || (tlsSocket.encrypted === true && tlsSocket._secureEstablished !== true)) {
    return void socket.destroy();
  }
  if (socket[CLOSING] === true) return;
  const pending = socket._httpMessage;
  // The error is in the body of the request being answered: that request is broken, answer 400 below.
  const currentBroken = pending !== null && pending !== undefined && !(pending.req as http.IncomingMessage | undefined)?.complete;
  if (pending && currentBroken && pending.headersSent) return void socket.destroy();
  const { status, message } = parseErrorStatus(err);
  const body = `{"statusCode":${status},"message":"${message}"}`;
  const answer = `HTTP/1.1 ${status} ${message}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`;
  socket[CLOSING] = true;
  if (pending && !currentBroken && !pending.writableFinished) {
    // Answer the bad request in order: after the response before it is fully written.
    pending.once('finish', () => {
      if (!socket.destroyed) socket.end(answer);
    });
    return;
  }
  socket.end(answer);
}

export class GatewayListener {
  readonly spec: Listener;
  /** Node's server for https and h2 listeners; null for plain http, which runs on the h1 engine. */
  readonly #server: AnyServer | null = null;
  readonly #h1: H1Server | null = null;
  readonly #front: net.Server | null;
  readonly #sessions = new Set<http2.ServerHttp2Session>();
  #sni: SniTable | null = null;
  #port = 0;

  constructor(spec: Listener, limits: GatewayLimits, state: DataPlaneState) {
    this.spec = spec;
    const info = { name: spec.name, proto: spec.tls ? ('https' as const) : ('http' as const), proxied: spec.proxyProtocol !== 'off' };
    const onRequest = createRequestHandler(state, info);
    const h2 = limits.http2;
    const h2Opts = {
      maxSessionInvalidFrames: 100,
      maxSessionRejectedStreams: 100,
      settings: { maxConcurrentStreams: h2.maxConcurrentStreams, maxHeaderListSize: h2.maxHeaderListSize },
      maxHeaderListPairs: limits.maxHeaderCount + 4,
    };
    const onH2 = onRequest as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
    if (spec.protocol === 'http') {
      const onUpgrade = createUpgradeHandler(state, info);
      this.#h1 = new H1Server({
        request: onRequest as (req: H1Request, res: H1Response) => void,
        upgrade: onUpgrade as unknown as (req: H1Request, socket: Duplex, head: Buffer) => void,
        limits: () => state.runtime.gateway.limits,
      }, { maxConnections: limits.maxConnections });
      const h1 = this.#h1;
      this.#front = spec.proxyProtocol === 'off' ? null : net.createServer({ allowHalfOpen: true }, (socket) => {
        acceptProxyProtocol(socket, spec.proxyProtocol as 'v1' | 'v2' | 'any', limits.headerTimeout, (s) => h1.accept(s), false);
      });
      if (this.#front !== null) this.#front.maxConnections = limits.maxConnections;
      return;
    } else if (!spec.tls) {
      // h2 without TLS: cleartext HTTP/2 with prior knowledge (h2c), e.g. behind a TLS-terminating load balancer.
      this.#server = http2.createServer(h2Opts, onH2);
    } else {
      this.#sni = buildSniTable(spec.tls);
      const def = this.#sni.defaultPem;
      // `https` offers h2 and http/1.1 by ALPN; `h2` with TLS is HTTP/2 only.
      const allowHTTP1 = spec.protocol === 'https';
      this.#server = http2.createSecureServer({
        ...h2Opts,
        allowHTTP1,
        // The default certificate serves clients that send no SNI; SNICallback picks for the others.
        cert: def.cert,
        key: def.key,
        minVersion: spec.tls.minVersion,
        // Asked for, never required here: the validate-client-certificate policy decides per Api.
        ...(spec.tls.clientCertificate === 'request' ? { requestCert: true, rejectUnauthorized: false } : {}),
        // A client that never finishes the handshake is cut off like one that never sends headers.
        handshakeTimeout: limits.headerTimeout,
        SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => cb(null, selectContext(this.#sni!, name)),
      }, onH2);
      if (allowHTTP1) {
        // The HTTP/1.1 fallback reads these from the server object.
        Object.assign(this.#server, {
          keepAliveTimeout: limits.idleTimeout,
          headersTimeout: limits.headerTimeout,
          requestTimeout: limits.requestTimeout,
        });
      }
    }
    (this.#server as http2.Http2Server).on('session', (sess) => this.#trackSession(sess, h2.maxResetsPerSecond));
    const server = this.#server! as unknown as http.Server;
    // Node truncates silently past maxHeadersCount; one more lets strict-request see the overflow and answer 431.
    server.maxHeadersCount = limits.maxHeaderCount + 1;
    server.maxConnections = limits.maxConnections;
    server.on('checkContinue', onRequest as http.RequestListener);
    // WebSocket over HTTP/1.1 (on https through the ALPN http/1.1 fallback).
    if (spec.protocol !== 'h2') server.on('upgrade', createUpgradeHandler(state, info));
    server.on('clientError', onClientError);
    this.#front = spec.proxyProtocol === 'off' ? null : net.createServer((socket) => {
      acceptProxyProtocol(socket, spec.proxyProtocol as 'v1' | 'v2' | 'any', limits.headerTimeout, (s) => server.emit('connection', s), spec.tls !== undefined);
    });
  }

  get port(): number {
    return this.#port;
  }

  /** Listens with SO_REUSEPORT so several worker threads can share the port; `port` overrides the configured one. */
  listen(port = this.spec.port): Promise<number> {
    const target = (this.#front ?? this.#h1?.net ?? this.#server) as net.Server;
    return new Promise((resolve, reject) => {
      target.once('error', reject);
      target.listen({ port, host: this.spec.address, reusePort: true }, () => {
        target.off('error', reject);
        this.#port = (target.address() as net.AddressInfo).port;
        resolve(this.#port);
      });
    });
  }

  /** Re-reads certificates; on failure keeps the old ones and throws the reason. */
  reloadTls(spec: Listener): void {
    if (!this.#sni || !spec.tls) return;
    const next = buildSniTable(spec.tls);
    (this.#server as http2.Http2SecureServer).setSecureContext({ cert: next.defaultPem.cert, key: next.defaultPem.key, minVersion: spec.tls.minVersion });
    this.#sni = next;
  }

  /** Stops accepting, lets in-flight requests finish, closes idle keep-alive connections (GOAWAY on HTTP/2). */
  async drain(deadlineMs: number): Promise<void> {
    if (this.#h1 !== null) this.#h1.draining = true;
    const server = (this.#h1 ?? this.#server) as { close(cb: () => void): void; closeIdleConnections?(): void; closeAllConnections?(): void };
    const closed = new Promise<void>((resolve) => {
      if (this.#front) this.#front.close();
      server.close(() => resolve());
    });
    for (const s of this.#sessions) s.close();
    server.closeIdleConnections?.();
    const idleSweep = setInterval(() => server.closeIdleConnections?.(), 100);
    const timer = new Promise<void>((resolve) => setTimeout(resolve, deadlineMs).unref());
    await Promise.race([closed, timer]);
    clearInterval(idleSweep);
    server.closeAllConnections?.();
    for (const s of this.#sessions) s.destroy();
  }

  #trackSession(session: http2.ServerHttp2Session, maxResetsPerSecond: number): void {
    this.#sessions.add(session);
    session.once('close', () => this.#sessions.delete(session));
    // Rapid reset (CVE-2023-44487): a client that cancels streams faster than this is cut off.
    let windowStart = Date.now();
    let resets = 0;
    session.on('stream', (stream) => {
      stream.once('aborted', () => {
        const now = Date.now();
        if (now - windowStart > 1000) {
          windowStart = now;
          resets = 0;
        }
        if (++resets > maxResetsPerSecond) {
          session.goaway(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
          session.destroy();
        }
      });
    });
    session.on('error', () => session.destroy());
  }
}

// One configured listener: an HTTP/1.1, HTTPS or HTTP/2 (ALPN, with HTTP/1.1 fallback) server with limits, drain and cert reload.
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import net from 'node:net';
import type { SecureContext } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { GatewayLimits, Listener } from '../model/types.ts';
import { createRequestHandler, type DataPlaneState } from './request-handler.ts';
import { createUpgradeHandler } from './websocket.ts';
import { buildSniTable, selectContext, type SniTable } from './tls-contexts.ts';
import { acceptProxyProtocol } from './proxy-protocol.ts';

type AnyServer = http.Server | https.Server | http2.Http2SecureServer;

export class GatewayListener {
  readonly spec: Listener;
  readonly #server: AnyServer;
  readonly #front: net.Server | null;
  readonly #sessions = new Set<http2.ServerHttp2Session>();
  #sni: SniTable | null = null;
  #port = 0;

  constructor(spec: Listener, limits: GatewayLimits, state: DataPlaneState) {
    this.spec = spec;
    const info = { name: spec.name, proto: spec.protocol === 'http' ? ('http' as const) : ('https' as const) };
    const onRequest = createRequestHandler(state, info);
    const serverOpts = {
      maxHeaderSize: limits.maxHeaderSize,
      requestTimeout: limits.requestTimeout,
      headersTimeout: limits.headerTimeout,
      keepAliveTimeout: limits.idleTimeout,
      connectionsCheckingInterval: Math.min(1000, limits.headerTimeout),
      requireHostHeader: false, // checked by strict-request, with our own error body
      joinDuplicateHeaders: false,
    };
    if (spec.protocol === 'http') {
      this.#server = http.createServer(serverOpts, onRequest as http.RequestListener);
    } else {
      this.#sni = buildSniTable(spec.tls!, spec.protocol === 'h2' ? ['h2', 'http/1.1'] : ['http/1.1']);
      const tlsOpts = {
        SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => cb(null, selectContext(this.#sni!, name)),
        minVersion: spec.tls!.minVersion,
      };
      if (spec.protocol === 'https') {
        this.#server = https.createServer({ ...serverOpts, ...tlsOpts }, onRequest as http.RequestListener);
      } else {
        const h2 = limits.http2;
        const server = http2.createSecureServer({
          ...tlsOpts,
          allowHTTP1: true,
          maxSessionInvalidCommands: 100,
          maxSessionRejectedStreams: 100,
          settings: { maxConcurrentStreams: h2.maxConcurrentStreams, maxHeaderListSize: h2.maxHeaderListSize },
          maxHeaderListPairs: limits.maxHeaderCount + 4,
        } as http2.SecureServerOptions, onRequest as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
        server.on('session', (s) => this.#trackSession(s, h2.maxResetsPerSecond));
        this.#server = server;
      }
    }
    const server = this.#server as http.Server;
    // Node truncates silently past maxHeadersCount; one more lets strict-request see the overflow and answer 431.
    server.maxHeadersCount = limits.maxHeaderCount + 1;
    server.maxConnections = limits.maxConnections;
    server.on('checkContinue', onRequest as http.RequestListener);
    if (spec.protocol !== 'h2') server.on('upgrade', createUpgradeHandler(state, info));
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (!socket.writable || (err.code === 'ECONNRESET')) return socket.destroy();
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      const msg = status === 431 ? 'Request header fields too large' : status === 408 ? 'Request timeout' : 'Bad request';
      const body = `{"statusCode":${status},"message":"${msg}"}`;
      socket.end(`HTTP/1.1 ${status} ${msg}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
    });
    this.#front = spec.proxyProtocol === 'off' ? null : net.createServer((socket) => {
      acceptProxyProtocol(socket, spec.proxyProtocol as 'v1' | 'v2' | 'any', limits.headerTimeout, (s) => server.emit('connection', s));
    });
  }

  get port(): number {
    return this.#port;
  }

  /** Listens with SO_REUSEPORT so several worker threads can share the port; `port` overrides the configured one. */
  listen(port = this.spec.port): Promise<number> {
    const target = (this.#front ?? this.#server) as net.Server;
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
    this.#sni = buildSniTable(spec.tls, []);
  }

  /** Stops accepting, lets in-flight requests finish, closes idle keep-alive connections (GOAWAY on HTTP/2). */
  async drain(deadlineMs: number): Promise<void> {
    const server = this.#server as http.Server;
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

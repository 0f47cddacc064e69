// One configured listener: HTTP/1.1 + sniffed h2c, HTTPS or HTTP/2 (ALPN, HTTP/1.1 fallback), mutual TLS with SPIFFE peers, limits, drain and cert reload.
import type http from 'node:http';
import http2 from 'node:http2';
import type net from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import type { GatewayLimits, Listener, ListenerTls } from '../model/types.ts';
import { createRequestHandler, type DataPlaneState, type ListenerInfo } from './request-handler.ts';
import { createUpgradeHandler } from './websocket.ts';
import { loadListenerTls, selectContext, sessionHorizon, type ListenerTlsMaterial } from './tls-contexts.ts';
import { acceptProxyProtocol } from './proxy-protocol.ts';
import { CLOSING } from './error-response.ts';
import { H1Server, type H1Request, type H1Response } from './h1-server.ts';
import { sniffProtocol, type SniffedProtocol } from './h2c-sniff.ts';
import { PEER_ID, peerIdOf, spiffeIdOf } from './peer-identity-check.ts';
import { unixSocketPath } from '../model/value-checks.ts';
import { listenUnix } from './unix-socket.ts';
import { TUNNEL_ALPN } from './tcp-preamble.ts';
import { acceptsConnect, openTunnel } from './tcp-tunnel.ts';
import { sniffConnect } from './connect-request.ts';
import { acceptTunnel } from './tcp-inbound.ts';

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

type PeerSocket = TLSSocket & { [PEER_ID]?: string };

/** Connections refused for their TLS peer: failed handshakes (no certificate, unknown CA, …) and unacceptable identities. */
export interface TlsRefusals {
  handshake: number;
  identity: number;
}

/** Longest a timer may be armed for (setTimeout's limit); a later re-key is re-armed from there. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class GatewayListener {
  readonly spec: Listener;
  /** The server that owns the listening socket: the h1 engine's for plain http, else Node's (https, h2, h2c). */
  readonly #main: net.Server;
  /** Node's server for https and h2 listeners; null for plain http. */
  readonly #server: AnyServer | null = null;
  /** The h1 engine: plain http listeners, and the plaintext side of a permissive TLS listener. */
  readonly #h1: H1Server | null = null;
  /** Cleartext HTTP/2 for connections sniffed as prior knowledge (plain http listeners, permissive TLS listeners). */
  readonly #h2c: http2.Http2Server | null = null;
  readonly #sessions = new Set<http2.ServerHttp2Session>();
  #tls: ListenerTls | null = null;
  #material: ListenerTlsMaterial | null = null;
  #rekeyTimer: NodeJS.Timeout | null = null;
  readonly #refusals: TlsRefusals = { handshake: 0, identity: 0 };
  #port = 0;
  readonly #state: DataPlaneState;
  /** Sockets of opaque TCP tunnels (both ends): outside any HTTP server's tracking, so drain closes them itself. */
  readonly #tunnels = new Set<Duplex>();
  readonly #track = (s: Duplex): void => {
    this.#tunnels.add(s);
    s.once('close', () => this.#tunnels.delete(s));
  };

  constructor(spec: Listener, limits: GatewayLimits, state: DataPlaneState) {
    this.spec = spec;
    this.#state = state;
    const proxied = spec.proxyProtocol !== 'off';
    const secure = spec.protocol !== 'http' && spec.tls !== undefined;
    const plainInfo: ListenerInfo = { name: spec.name, proto: 'http', proxied };
    const h2 = limits.http2;
    const h2Opts = {
      maxSessionInvalidFrames: 100,
      maxSessionRejectedStreams: 100,
      settings: { maxConcurrentStreams: h2.maxConcurrentStreams, maxHeaderListSize: h2.maxHeaderListSize },
      maxHeaderListPairs: limits.maxHeaderCount + 4,
    };
    // Plaintext HTTP/1.1 with h2c sniffed by its preface: plain http listeners, and permissive (plaintext + TLS) ones.
    const plain = spec.protocol === 'http' || (secure && spec.tls!.plaintext === true);
    if (plain) {
      const onPlain = createRequestHandler(state, plainInfo);
      this.#h1 = new H1Server({
        request: onPlain as (req: H1Request, res: H1Response) => void,
        upgrade: createUpgradeHandler(state, plainInfo) as unknown as (req: H1Request, socket: Duplex, head: Buffer) => void,
        limits: () => state.runtime.gateway.limits,
      }, { maxConnections: limits.maxConnections });
      this.#h2c = http2.createServer(h2Opts, onPlain as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void);
      this.#configureH2(this.#h2c, onPlain, h2.maxResetsPerSecond);
    }
    if (spec.protocol === 'http') {
      this.#main = this.#h1!.net;
      this.#preprocess(limits, false);
      return;
    }
    const info: ListenerInfo = secure
      ? { name: spec.name, proto: 'https', proxied, peerIdOf: (req) => peerIdOf(req.socket) }
      : { name: spec.name, proto: 'http', proxied };
    const onRequest = createRequestHandler(state, info);
    const onH2 = onRequest as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void;
    if (!secure) {
      // h2 without TLS: cleartext HTTP/2 with prior knowledge (h2c), e.g. behind a TLS-terminating load balancer.
      this.#server = http2.createServer(h2Opts, onH2);
    } else {
      const tlsSpec = spec.tls!;
      const material = loadListenerTls(tlsSpec);
      this.#tls = tlsSpec;
      this.#material = material;
      // `https` offers h2 and http/1.1 by ALPN; `h2` with TLS is HTTP/2 only.
      const allowHTTP1 = spec.protocol === 'https';
      this.#server = http2.createSecureServer({
        ...h2Opts,
        allowHTTP1,
        // The default certificate serves clients that send no SNI; SNICallback picks for the others.
        cert: material.table.defaultPem.cert,
        key: material.table.defaultPem.key,
        minVersion: tlsSpec.minVersion,
        ...clientAuth(tlsSpec, material),
        // A client that never finishes the handshake is cut off like one that never sends headers.
        handshakeTimeout: limits.headerTimeout,
        SNICallback: (name: string, cb: (err: Error | null, ctx?: SecureContext) => void) => cb(null, selectContext(this.#material!.table, name)),
        // A mesh node's mTLS listener also takes opaque TCP tunnels from its peers, by their own ALPN protocol.
        ...(tlsSpec.clientCertificate === 'require' && state.runtime.gateway.mesh !== undefined ? { ALPNCallback: alpnWithTunnels(allowHTTP1) } : {}),
      }, onH2);
      if (allowHTTP1) {
        // The HTTP/1.1 fallback reads these from the server object.
        Object.assign(this.#server, {
          keepAliveTimeout: limits.idleTimeout,
          headersTimeout: limits.headerTimeout,
          requestTimeout: limits.requestTimeout,
        });
      }
      const server = this.#server as http2.Http2SecureServer;
      // The peer's identity is read once per connection, before the HTTP layer gets the socket; a refused peer never
      // reaches it (destroying it after the HTTP layer took it is too late: a request sent with the client's Finished
      // may already be parsed).
      const httpLayer = server.listeners('secureConnection') as Array<(s: TLSSocket) => void>;
      server.removeAllListeners('secureConnection');
      server.on('secureConnection', (socket: TLSSocket) => {
        if (!this.#identify(socket as PeerSocket)) {
          this.#refusals.identity++;
          socket.destroy();
          return;
        }
        if (socket.alpnProtocol === TUNNEL_ALPN) return acceptTunnel(state, spec.name, socket, peerIdOf(socket), this.#track);
        for (const f of httpLayer) f.call(server, socket);
      });
      server.on('tlsClientError', () => this.#refusals.handshake++);
      this.#installContext();
    }
    this.#main = this.#server as unknown as net.Server;
    this.#configureH2(this.#server as http2.Http2Server, onRequest, h2.maxResetsPerSecond);
    const server = this.#server as unknown as http.Server;
    // Node truncates silently past maxHeadersCount; one more lets strict-request see the overflow and answer 431.
    server.maxHeadersCount = limits.maxHeaderCount + 1;
    server.maxConnections = limits.maxConnections;
    // WebSocket over HTTP/1.1 (on https through the ALPN http/1.1 fallback).
    if (spec.protocol !== 'h2') server.on('upgrade', createUpgradeHandler(state, info));
    server.on('clientError', onClientError);
    this.#preprocess(limits, secure);
  }

  get port(): number {
    return this.#port;
  }

  /** Connections refused for their TLS peer since start (a `require` listener's handshake and identity checks). */
  get tlsRefusals(): Readonly<TlsRefusals> {
    return this.#refusals;
  }

  /**
   * Listens with SO_REUSEPORT so several worker threads can share the port; `port` overrides the configured one.
   * A `unix:/path` address binds that Unix socket, mode 0600 (port 0 is returned).
   */
  async listen(port = this.spec.port): Promise<number> {
    const target = this.#main;
    const socketPath = unixSocketPath(this.spec.address);
    if (socketPath !== undefined) {
      await listenUnix(target, socketPath);
      return (this.#port = 0);
    }
    return new Promise((resolve, reject) => {
      target.once('error', reject);
      target.listen({ port, host: this.spec.address, reusePort: true }, () => {
        target.off('error', reject);
        this.#port = (target.address() as net.AddressInfo).port;
        resolve(this.#port);
      });
    });
  }

  /**
   * Re-reads certificates, key and client CA. When anything changed (contents or `generation`), new handshakes
   * use the new material and existing connections keep theirs; cached sessions are dropped (new ticket keys), so
   * no resumed session skips the new CA. On failure keeps the old material and throws the reason.
   */
  reloadTls(spec: Listener): void {
    if (this.#material === null || this.#tls === null || !spec.tls) return;
    const next = loadListenerTls(spec.tls, this.#material);
    const changedPlaintext = (spec.tls.plaintext === true) !== (this.#tls.plaintext === true);
    if (next !== this.#material) {
      const server = this.#server as http2.Http2SecureServer & { requestCert: boolean; rejectUnauthorized: boolean };
      this.#material = next;
      this.#tls = spec.tls;
      // Read per new connection by tls.Server: a mode change applies to new handshakes.
      const auth = clientAuth(spec.tls, next);
      server.requestCert = auth.requestCert === true;
      server.rejectUnauthorized = auth.rejectUnauthorized !== false;
      this.#installContext();
    }
    if (changedPlaintext) throw new Error('tls.plaintext changed: restart to apply it (certificates were reloaded)');
  }

  /** Stops accepting, lets in-flight requests finish, closes idle keep-alive connections (GOAWAY on HTTP/2). */
  async drain(deadlineMs: number): Promise<void> {
    if (this.#rekeyTimer !== null) clearTimeout(this.#rekeyTimer);
    this.#rekeyTimer = null;
    if (this.#h1 !== null) this.#h1.draining = true;
    type Closable = { close(cb: () => void): void; closeIdleConnections?(): void; closeAllConnections?(): void };
    const main = (this.#server ?? this.#h1) as Closable;
    const h1 = this.#server !== null ? this.#h1 : null;
    const closed = new Promise<void>((resolve) => main.close(() => resolve()));
    for (const s of this.#sessions) s.close();
    const idle = (): void => {
      main.closeIdleConnections?.();
      h1?.closeIdleConnections();
    };
    idle();
    const idleSweep = setInterval(idle, 100);
    const timer = new Promise<void>((resolve) => setTimeout(resolve, deadlineMs).unref());
    await Promise.race([closed, timer]);
    clearInterval(idleSweep);
    main.closeAllConnections?.();
    h1?.closeAllConnections();
    for (const s of this.#sessions) s.destroy();
    for (const s of this.#tunnels) s.destroy();
  }

  /**
   * What happens to a new connection before its server sees it: the PROXY header, then (plaintext listeners)
   * the protocol sniff. Done by taking over the listening server's own 'connection' listeners, so it keeps its
   * native accounting (maxConnections, connection tracking for timeouts, close waiting for connections).
   */
  #preprocess(limits: GatewayLimits, secure: boolean): void {
    const sniff = this.#h2c !== null;
    const pp = this.spec.proxyProtocol;
    if (!sniff && pp === 'off') return;
    const main = this.#main;
    const own = main.listeners('connection') as Array<(s: net.Socket) => void>;
    main.removeAllListeners('connection');
    const direct = (s: net.Socket): void => {
      for (const f of own) f.call(main, s);
    };
    const toHttp1 = (s: net.Socket): void => {
      // The h1 engine decides what a client's FIN means (it wants half-open sockets); it reads with 'data'.
      s.allowHalfOpen = true;
      if (this.#server === null) direct(s);
      else this.#h1!.accept(s);
      s.resume();
    };
    const route = (kind: SniffedProtocol, s: net.Socket): void => {
      // A mesh node's app may open an opaque TCP tunnel with CONNECT as its first request (HTTP proxy semantics).
      if (kind === 'http1' && !secure && acceptsConnect(this.#state.runtime)) {
        const state = this.#state;
        return sniffConnect(s, state.runtime.gateway.limits, (target, sock, rest) => openTunnel(state, this.spec.name, sock, target, rest, this.#track), toHttp1);
      }
      if (kind === 'http1') return toHttp1(s);
      // Node's TLS and HTTP/2 take over the socket's handle and replay the bytes put back (see h2c-sniff).
      s.allowHalfOpen = false;
      if (kind === 'tls') direct(s);
      else this.#h2c!.emit('connection', s);
    };
    const sniffOpts = { tls: secure, timeoutMs: limits.headerTimeout };
    // A client that closes before its protocol is known (a TCP probe, a port check) is done: with allowHalfOpen its
    // socket would otherwise linger, half-open, until the header timeout.
    const next = sniff
      ? (s: net.Socket) => {
          const onEnd = (): void => void s.destroy();
          s.once('end', onEnd);
          sniffProtocol(s, sniffOpts, (kind, sock) => {
            sock.off('end', onEnd);
            route(kind, sock);
          });
        }
      : direct;
    const tlsDirect = secure && !sniff;
    main.on('connection', pp === 'off' ? next : (socket: net.Socket) => {
      // Bytes past the header stay on the socket (unshift) unless it goes straight to TLS (see proxy-protocol).
      acceptProxyProtocol(socket, pp, limits.headerTimeout, next, tlsDirect);
    });
  }

  /** Session tracking (drain, rapid-reset defence) and Expect: 100-continue for an HTTP/2 server. */
  #configureH2(server: http2.Http2Server | http2.Http2SecureServer, onRequest: unknown, maxResetsPerSecond: number): void {
    (server as http2.Http2Server).on('session', (sess) => this.#trackSession(sess, maxResetsPerSecond));
    (server as unknown as http.Server).on('checkContinue', onRequest as http.RequestListener);
  }

  /**
   * A `require` listener: the chain was verified in the handshake; the identity is the certificate's one SPIFFE ID,
   * stored on the socket. False when the peer is refused: no verified certificate, not a single-SPIFFE-ID SVID, or a
   * resumed session whose certificate has expired since (resumption skips OpenSSL's checks).
   */
  #identify(socket: PeerSocket): boolean {
    if (this.#tls?.clientCertificate !== 'require') return true;
    const cert = socket.authorized ? socket.getPeerX509Certificate() : undefined;
    if (cert === undefined || cert.validToDate.getTime() <= Date.now()) return false;
    const r = spiffeIdOf(cert);
    if ('error' in r) return false;
    socket[PEER_ID] = r.id;
    return true;
  }

  /**
   * Puts the current material into new handshakes with fresh session-ticket keys, and a session timeout that keeps
   * every ticket inside the certificate's lifetime; re-arms the next re-key (see sessionHorizon).
   */
  #installContext(): void {
    const m = this.#material;
    const t = this.#tls;
    if (m === null || t === null) return;
    const server = this.#server as http2.Http2SecureServer;
    const h = sessionHorizon(m.notAfter, Date.now());
    server.setSecureContext({
      cert: m.table.defaultPem.cert,
      key: m.table.defaultPem.key,
      minVersion: t.minVersion,
      ...(m.clientCa !== undefined ? { ca: m.clientCa } : {}),
      sessionTimeout: h.timeoutSeconds,
    });
    server.setTicketKeys(randomBytes(48));
    if (this.#rekeyTimer !== null) clearTimeout(this.#rekeyTimer);
    this.#rekeyTimer = h.rekeyInMs === null ? null : setTimeout(() => this.#installContext(), Math.min(h.rekeyInMs, MAX_TIMER_MS));
    this.#rekeyTimer?.unref();
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

/**
 * ALPN for a mesh mTLS listener: HTTP as usual (h2 first, http/1.1 when allowed), and the tunnel protocol for a peer
 * that offers only that. No common protocol: the handshake fails (as Node's own ALPN selection does).
 */
function alpnWithTunnels(allowHTTP1: boolean): (info: { servername: string; protocols: string[] }) => string | undefined {
  return ({ protocols }) => {
    if (protocols.includes('h2')) return 'h2';
    if (allowHTTP1 && protocols.includes('http/1.1')) return 'http/1.1';
    return protocols.includes(TUNNEL_ALPN) ? TUNNEL_ALPN : undefined;
  };
}

/**
 * The server's client-certificate options. `require`: the handshake fails without a certificate chaining to the
 * client CA (OpenSSL also checks validity and the clientAuth purpose). `request`: asked for, never required here
 * (the validate-client-certificate policy decides per Api).
 */
function clientAuth(t: ListenerTls, m: ListenerTlsMaterial): { requestCert?: boolean; rejectUnauthorized?: boolean; ca?: Buffer } {
  if (t.clientCertificate === 'require') return { requestCert: true, rejectUnauthorized: true, ca: m.clientCa };
  if (t.clientCertificate === 'request') return { requestCert: true, rejectUnauthorized: false };
  return { requestCert: false, rejectUnauthorized: false };
}

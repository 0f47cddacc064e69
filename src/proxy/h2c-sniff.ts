// Tells a new connection's protocol from its first bytes (TLS handshake, HTTP/2 prior-knowledge preface, else HTTP/1.1) and hands it on.
import type { Socket } from 'node:net';

/** The HTTP/2 client connection preface (RFC 9113 §3.4): what an h2c client with prior knowledge sends first. */
export const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** A TLS record of type handshake starts every TLS connection (the ClientHello). */
const TLS_HANDSHAKE = 0x16;

export type SniffedProtocol = 'tls' | 'h2c' | 'http1';

/**
 * What the bytes received so far say: 'tls' on a handshake record when `tls` is allowed, 'h2c' once the whole
 * preface matched, 'http1' at the first byte that differs from it, 'incomplete' while a prefix of the preface.
 */
export function classifyPrefix(buf: Buffer, tls: boolean): SniffedProtocol | 'incomplete' {
  if (buf.length === 0) return 'incomplete';
  if (tls && buf[0] === TLS_HANDSHAKE) return 'tls';
  const n = Math.min(buf.length, H2_PREFACE.length);
  for (let i = 0; i < n; i++) if (buf[i] !== H2_PREFACE[i]) return 'http1';
  return n === H2_PREFACE.length ? 'h2c' : 'incomplete';
}

export interface SniffOptions {
  /** Also recognise a TLS handshake (a listener that takes TLS and plaintext on one port). */
  tls: boolean;
  /** The protocol must be known within this time (the header timeout), or the connection is closed. */
  timeoutMs: number;
}

/**
 * Reads the first bytes of `socket` until the protocol is known, puts them back (unshift: node:http2 and tls
 * replay a socket's buffered bytes when they take it over, the h1 engine reads them as 'data'), and calls
 * `route` with the socket paused. `route` resumes it if its consumer reads with 'data' events.
 */
export function sniffProtocol(socket: Socket, opts: SniffOptions, route: (protocol: SniffedProtocol, socket: Socket) => void): void {
  let buf: Buffer | null = null;
  const timer = setTimeout(() => socket.destroy(), opts.timeoutMs);
  const done = (): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('close', done);
    socket.off('error', done);
  };
  const onData = (chunk: Buffer): void => {
    buf = buf === null ? chunk : Buffer.concat([buf, chunk]);
    const kind = classifyPrefix(buf, opts.tls);
    if (kind === 'incomplete') return;
    done();
    socket.pause();
    socket.unshift(buf);
    route(kind, socket);
  };
  socket.on('data', onData);
  // A connection that goes away before saying anything: nothing to hand on, only the timer to stop.
  socket.once('close', done);
  socket.once('error', done);
}

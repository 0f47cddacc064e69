// The CONNECT request of an HTTP proxy client: read whole from a plain connection's first bytes, its target parsed, refusals written.
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { newRequestId } from '../lib/request-id.ts';
import { hostnameEnd } from './field-syntax.ts';

const CONNECT = Buffer.from('CONNECT ', 'latin1');
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');

/**
 * Looks at a plain connection's first bytes: a `CONNECT` request head is read whole (bounded by size and time) and
 * handed to `onConnect` with the bytes after it; anything else is put back (unshift) for `other`, socket paused.
 */
export function sniffConnect(
  socket: net.Socket,
  limits: { maxHeaderSize: number; headerTimeout: number },
  onConnect: (target: string, socket: net.Socket, rest: Buffer) => void,
  other: (socket: net.Socket) => void,
): void {
  let buf: Buffer | null = null;
  const stop = (): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onGone);
  };
  const onGone = (): void => {
    stop();
    socket.destroy();
  };
  const onData = (d: Buffer): void => {
    buf = buf === null ? d : Buffer.concat([buf, d]);
    const n = Math.min(buf.length, CONNECT.length);
    if (buf.compare(CONNECT, 0, n, 0, n) !== 0) {
      stop();
      socket.pause();
      socket.unshift(buf);
      return other(socket);
    }
    const end = buf.indexOf(HEAD_END);
    if (end === -1) {
      if (buf.length > limits.maxHeaderSize) {
        stop();
        refuse(socket, 431, 'Request header fields too large', newRequestId());
      }
      return;
    }
    stop();
    socket.pause();
    const line = buf.toString('latin1', 0, buf.indexOf('\r\n'));
    const m = /^CONNECT ([^ ]+) HTTP\/1\.[01]$/.exec(line);
    if (m === null) return refuse(socket, 400, 'Bad request', newRequestId());
    onConnect(m[1], socket, buf.subarray(end + 4));
  };
  const timer = setTimeout(onGone, limits.headerTimeout);
  socket.on('data', onData);
  socket.once('end', onGone);
  socket.resume();
}

/** An error answer to a CONNECT: the JSON body every Lockgate error has, then close. */
export function refuse(socket: Duplex, status: number, message: string, requestId: string): void {
  const body = JSON.stringify({ statusCode: status, message, requestId });
  const reason = status === 403 ? 'Forbidden' : status === 404 ? 'Not Found' : status === 502 ? 'Bad Gateway' : status === 503 ? 'Service Unavailable' : status === 504 ? 'Gateway Timeout' : 'Error';
  if (!socket.destroyed) {
    socket.end(`HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\nconnection: close\r\n\r\n${body}`);
  }
}

/** `host:port` of a CONNECT target: the hostname lowercased (no trailing dot), the port 1–65535; null when malformed. */
export function parseAuthority(a: string): { host: string; port: number } | null {
  const end = hostnameEnd(a);
  if (end <= 0) return null;
  // (hostnameEnd stops before a trailing dot.)
  const colon = a.charCodeAt(end) === 0x2e ? end + 1 : end;
  if (a.charCodeAt(colon) !== 0x3a) return null;
  const portText = a.slice(colon + 1);
  if (!/^[0-9]{1,5}$/.test(portText)) return null;
  const port = Number(portText);
  if (port < 1 || port > 65535) return null;
  return { host: a.slice(0, end).toLowerCase(), port };
}

// The opaque-TCP tunnel's wire format between sidecars (ALPN lockgate-tcp), a bounded line reader, and the two-way splice.
import type { Duplex } from 'node:stream';

/** The ALPN protocol of a tunnel: a sidecar's mTLS listener takes it instead of HTTP. */
export const TUNNEL_ALPN = 'lockgate-tcp';

/** Longest preamble or reply line, newline included: anything longer is not ours. */
export const MAX_LINE = 256;

const REQUEST = /^LOCKGATE-TCP\/1 ([0-9]{1,5}) ([A-Za-z0-9._-]{1,128})$/;
const REPLY = /^([1-5][0-9]{2}) ([\x20-\x7e]*)$/;

/**
 * The caller's first line on a tunnel, before any payload byte: `LOCKGATE-TCP/1 <port> <request-id>\n`. The
 * callee answers one line, `<status> <text>\n` (200 once the app's port is connected), and only then do the
 * payload bytes flow. The caller's identity is its certificate, never anything in the line.
 */
export function tunnelRequest(port: number, requestId: string): Buffer {
  return Buffer.from(`LOCKGATE-TCP/1 ${port} ${requestId}\n`, 'latin1');
}

export function parseTunnelRequest(line: string): { port: number; requestId: string } | { error: string } {
  const m = REQUEST.exec(line);
  if (m === null) return { error: 'malformed tunnel preamble' };
  const port = Number(m[1]);
  if (port < 1 || port > 65535) return { error: `port ${m[1]} out of range` };
  return { port, requestId: m[2] };
}

/** The callee's answer: a status as HTTP's (200, 403, 404, 502, 504) and a short printable text. */
export function tunnelReply(status: number, text: string): Buffer {
  const clean = text.replace(/[^\x20-\x7e]/g, '?').slice(0, MAX_LINE - 6);
  return Buffer.from(`${status} ${clean}\n`, 'latin1');
}

export function parseTunnelReply(line: string): { status: number; text: string } | { error: string } {
  const m = REPLY.exec(line);
  return m === null ? { error: 'malformed tunnel reply' } : { status: Number(m[1]), text: m[2] };
}

/**
 * Reads one `\n`-terminated line (at most MAX_LINE bytes) from a socket; the bytes read past it come back as
 * `rest`. Rejects on a longer line, end of stream or timeout. The socket is left paused with no reader.
 */
export function readLine(socket: Duplex, timeoutMs: number): Promise<{ line: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf: Buffer | null = null;
    const finish = (err: Error | null, line = '', rest: Buffer = Buffer.alloc(0)): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
      socket.pause();
      if (err !== null) reject(err);
      else resolve({ line, rest });
    };
    const onData = (d: Buffer): void => {
      buf = buf === null ? d : Buffer.concat([buf, d]);
      const nl = buf.indexOf(0x0a);
      if (nl === -1) {
        if (buf.length >= MAX_LINE) finish(new Error('line too long'));
        return;
      }
      if (nl >= MAX_LINE) return finish(new Error('line too long'));
      finish(null, buf.toString('latin1', 0, nl), buf.subarray(nl + 1));
    };
    const onEnd = (): void => finish(new Error('closed before a complete line'));
    const onError = (err: Error): void => finish(err);
    const timer = setTimeout(() => finish(new Error(`no line within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    socket.once('error', onError);
    socket.resume();
  });
}

/** Bytes each way through a splice, reported once both sockets closed. */
export interface SpliceResult {
  /** a → b. */
  forward: number;
  /** b → a. */
  backward: number;
}

type Sock = Duplex & { destroySoon?: () => void; allowHalfOpen?: boolean; resetAndDestroy?: () => void; _parent?: Sock | null };

/**
 * Closes a socket abortively (TCP RST), so the far end sees a reset as the near one did, not a clean end of stream.
 * A TLS socket is reset through the TCP socket it wraps (its own handle is the TLS layer's).
 */
export function abort(s: Sock): void {
  const raw = s._parent ?? s;
  try {
    if (typeof raw.resetAndDestroy === 'function' && !raw.destroyed) raw.resetAndDestroy();
  } catch {
    // not a TCP handle (a pipe, a TLS socket without its TCP one): an ordinary close below
  }
  if (!s.destroyed) s.destroy();
}

/**
 * Joins two connected sockets: bytes flow both ways with backpressure; one side's end (half-close) ends the
 * other's writing while the reverse direction goes on; an error (a reset) on either resets the other; when one side
 * is closed, the other finishes writing what it has and closes too. `done` runs once, after both are closed.
 */
export function splice(a: Sock, b: Sock, done: (r: SpliceResult) => void): void {
  const r: SpliceResult = { forward: 0, backward: 0 };
  a.allowHalfOpen = true;
  b.allowHalfOpen = true;
  a.on('data', (d: Buffer) => (r.forward += d.length));
  b.on('data', (d: Buffer) => (r.backward += d.length));
  let open = 2;
  const closed = (other: Sock) => (): void => {
    if (!other.destroyed) {
      if (typeof other.destroySoon === 'function') other.destroySoon();
      else other.end();
    }
    if (--open === 0) done(r);
  };
  a.on('error', () => abort(b));
  b.on('error', () => abort(a));
  a.once('close', closed(b));
  b.once('close', closed(a));
  a.pipe(b);
  b.pipe(a);
}

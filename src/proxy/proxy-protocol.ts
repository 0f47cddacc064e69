// Reads a PROXY protocol v1 or v2 header off a fresh connection, so the real client address survives a TCP load balancer.
import net, { type Socket } from 'node:net';
import { Duplex } from 'node:stream';

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

export interface ProxyHeader {
  /** null for LOCAL / UNKNOWN: use the socket's own address. */
  sourceAddress: string | null;
  sourcePort: number;
  /** Bytes consumed by the header. */
  length: number;
}

/** Parses a header from the start of `buf`: a result, 'incomplete', or an error message. */
export function parseProxyHeader(buf: Buffer, accept: 'v1' | 'v2' | 'any'): ProxyHeader | 'incomplete' | { error: string } {
  if (buf.length >= 1 && buf[0] === 0x0d && accept !== 'v1') {
    if (buf.length < 16) return V2_SIG.subarray(0, buf.length).equals(buf) ? 'incomplete' : { error: 'bad PROXY v2 signature' };
    if (!buf.subarray(0, 12).equals(V2_SIG)) return { error: 'bad PROXY v2 signature' };
    const verCmd = buf[12];
    if (verCmd >> 4 !== 2) return { error: 'bad PROXY v2 version' };
    const len = buf.readUInt16BE(14);
    if (buf.length < 16 + len) return 'incomplete';
    const cmd = verCmd & 0x0f;
    const fam = buf[13] >> 4;
    if (cmd === 0) return { sourceAddress: null, sourcePort: 0, length: 16 + len };
    if (cmd !== 1) return { error: 'bad PROXY v2 command' };
    if (fam === 1 && len >= 12) {
      const a = buf.subarray(16, 20);
      return { sourceAddress: `${a[0]}.${a[1]}.${a[2]}.${a[3]}`, sourcePort: buf.readUInt16BE(24), length: 16 + len };
    }
    if (fam === 2 && len >= 36) {
      const parts: string[] = [];
      for (let i = 0; i < 16; i += 2) parts.push(buf.readUInt16BE(16 + i).toString(16));
      // Canonical text (RFC 5952), the same a v1 header or the socket would give.
      const canonical = new URL(`http://[${parts.join(':')}]/`).hostname.slice(1, -1);
      return { sourceAddress: canonical, sourcePort: buf.readUInt16BE(48), length: 16 + len };
    }
    return { sourceAddress: null, sourcePort: 0, length: 16 + len };
  }
  if (accept === 'v2') return { error: 'expected a PROXY v2 header' };
  const end = buf.indexOf('\r\n');
  if (end === -1) return buf.length > 107 ? { error: 'PROXY v1 header too long' } : 'incomplete';
  if (end > 105) return { error: 'PROXY v1 header too long' };
  const line = buf.toString('latin1', 0, end);
  const f = line.split(' ');
  if (f[0] !== 'PROXY') return { error: 'missing PROXY header' };
  if (f[1] === 'UNKNOWN') return { sourceAddress: null, sourcePort: 0, length: end + 2 };
  if ((f[1] !== 'TCP4' && f[1] !== 'TCP6') || f.length !== 6) return { error: 'bad PROXY v1 header' };
  const port = Number(f[4]);
  if (!/^\d{1,5}$/.test(f[4]) || port > 65535) return { error: 'bad PROXY v1 port' };
  // The source must be one address of the declared family: never a list a client could smuggle in.
  if (net.isIP(f[2]) !== (f[1] === 'TCP4' ? 4 : 6) || net.isIP(f[3]) !== (f[1] === 'TCP4' ? 4 : 6)) return { error: 'bad PROXY v1 address' };
  return { sourceAddress: f[2], sourcePort: port, length: end + 2 };
}

/**
 * A socket whose first bytes were already read (they followed the PROXY header in the same packet).
 * A TLS server reads a net.Socket's handle directly and would never see bytes put back with unshift(),
 * so the rest of the connection goes through this stream instead.
 */
class PrefixedSocket extends Duplex {
  readonly #socket: Socket;
  proxiedAddress: string | undefined;

  constructor(socket: Socket, prefix: Buffer) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    this.push(prefix);
    socket.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.once('end', () => this.push(null));
    socket.once('close', () => this.destroy());
    socket.once('error', (err) => this.destroy(err));
  }

  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.#socket.remotePort;
  }

  setTimeout(ms: number, cb?: () => void): this {
    this.#socket.setTimeout(ms, cb);
    return this;
  }

  setNoDelay(noDelay?: boolean): this {
    this.#socket.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, delay?: number): this {
    this.#socket.setKeepAlive(enable, delay);
    return this;
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.#socket.write(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#socket.end(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#socket.destroy(err ?? undefined);
    cb(err);
  }
}

/**
 * Consumes the header from `socket`, then hands the connection to `next`: the socket itself (leftover
 * bytes unshifted) for plain HTTP, or, for TLS with bytes already read past the header, a stream that
 * replays them first.
 */
export function acceptProxyProtocol(socket: Socket, accept: 'v1' | 'v2' | 'any', timeoutMs: number, next: (s: Socket) => void, tls = false): void {
  let buf: Buffer = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  const onData = (chunk: Buffer): void => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    const r = parseProxyHeader(buf, accept);
    if (r === 'incomplete') return;
    clearTimeout(timer);
    socket.off('data', onData);
    if ('error' in r) {
      socket.destroy();
      return;
    }
    if (r.sourceAddress !== null) (socket as Socket & { proxiedAddress?: string }).proxiedAddress = r.sourceAddress;
    if (tls && buf.length > r.length) {
      const wrapped = new PrefixedSocket(socket, buf.subarray(r.length));
      wrapped.proxiedAddress = r.sourceAddress ?? undefined;
      next(wrapped as unknown as Socket);
      return;
    }
    socket.pause();
    if (buf.length > r.length) socket.unshift(buf.subarray(r.length));
    next(socket);
    socket.resume();
  };
  socket.on('data', onData);
  socket.once('close', () => clearTimeout(timer));
}

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash } from 'node:crypto';
import type { Duplex, Readable } from 'node:stream';
import type { GatewayLimits } from '../model/types.ts';
import { H1Server, type H1Handlers, type H1Request, type H1Response } from './h1-server.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function limits(over: Partial<GatewayLimits> = {}): GatewayLimits {
  return {
    maxConnections: 100,
    maxHeaderSize: 16384,
    maxHeaderCount: 100,
    maxUrlLength: 8192,
    maxBodySize: 1e6,
    maxBufferedBody: 1e6,
    headerTimeout: 10_000,
    requestTimeout: 10_000,
    idleTimeout: 10_000,
    http2: { maxConcurrentStreams: 100, maxHeaderListSize: 16384, maxResetsPerSecond: 100 },
    ...over,
  };
}

type RequestHandler = (req: H1Request, res: H1Response) => void;
type UpgradeHandler = (req: H1Request, socket: Duplex, head: Buffer) => void;

/** A server whose handlers each test swaps in; counts the requests that reach the handler. */
class TestServer {
  readonly server: H1Server;
  onRequest: RequestHandler = (_req, res) => res.end('default');
  onUpgrade: UpgradeHandler = (_req, socket) => socket.destroy();
  requests: H1Request[] = [];
  refused: number[] = [];
  readonly clients = new Set<Client>();
  /** Every server-side socket, upgraded ones included (the engine forgets those). */
  readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(lim: GatewayLimits) {
    const handlers: H1Handlers = {
      request: (req, res) => {
        this.requests.push(req);
        this.onRequest(req, res);
      },
      upgrade: (req, socket, head) => this.onUpgrade(req, socket, head),
      limits: () => lim,
    };
    this.server = new H1Server(handlers, { maxConnections: 100 });
    this.server.onRefused = (status) => this.refused.push(status);
    this.server.net.on('connection', (socket: net.Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((r) => this.server.net.listen(0, '127.0.0.1', r));
    this.port = (this.server.net.address() as net.AddressInfo).port;
  }

  /** Resets the handlers and counters between tests. */
  reset(onRequest: RequestHandler = (_req, res) => res.end('default')): void {
    this.onRequest = onRequest;
    this.onUpgrade = (_req, socket) => socket.destroy();
    this.requests = [];
    this.refused = [];
  }

  async connect(): Promise<Client> {
    const c = await Client.connect(this.port);
    this.clients.add(c);
    return c;
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.socket.destroy();
    for (const socket of this.sockets) socket.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(r));
  }
}

interface Resp {
  status: number;
  /** The status line and fields, without the final CRLF CRLF. */
  rawHead: string;
  /** Lowercased names; repeated fields as separate entries. */
  fields: [string, string][];
  body: Buffer;
  /** The raw bytes of the body as sent (chunk framing included). */
  rawBody: Buffer;
}

function field(r: Resp, name: string): string | undefined {
  const all = r.fields.filter(([n]) => n === name);
  assert.ok(all.length <= 1, `more than one ${name} field: ${r.rawHead}`);
  return all[0]?.[1];
}

/** A strict decoder for the chunked responses under test (independent of the engine's request decoder). */
function parseChunked(buf: Buffer, at: number): { body: Buffer; end: number } | null {
  const parts: Buffer[] = [];
  let i = at;
  for (;;) {
    const lf = buf.indexOf('\r\n', i);
    if (lf === -1) return null;
    const line = buf.toString('latin1', i, lf);
    assert.match(line, /^[0-9a-f]+$/, `chunk size line ${JSON.stringify(line)}`);
    const size = parseInt(line, 16);
    i = lf + 2;
    if (size === 0) {
      if (buf.length < i + 2) return null;
      assert.equal(buf.toString('latin1', i, i + 2), '\r\n', 'no trailers expected after the last chunk');
      return { body: Buffer.concat(parts), end: i + 2 };
    }
    assert.ok(size > 0);
    if (buf.length < i + size + 2) return null;
    parts.push(buf.subarray(i, i + size));
    assert.equal(buf.toString('latin1', i + size, i + size + 2), '\r\n', 'chunk data not followed by CRLF');
    i += size + 2;
  }
}

/** A raw TCP client that reads responses out of the bytes it receives. */
class Client {
  readonly socket: net.Socket;
  data = Buffer.alloc(0);
  /** Offset of the first byte not yet read as a response. */
  pos = 0;
  /** The server ended the connection (or it closed). */
  ended = false;
  #waiters = new Set<() => void>();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.#wake();
    });
    const ended = (): void => {
      this.ended = true;
      this.#wake();
    };
    socket.on('end', ended);
    socket.on('close', ended);
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  write(b: string | Buffer): void {
    this.socket.write(typeof b === 'string' ? Buffer.from(b, 'latin1') : b);
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Waits until `check` returns a value (checked on every data/end event), or fails after `ms`. */
  waitFor<T>(check: () => T | null, ms = 1500, what = 'condition'): Promise<T> {
    return new Promise((resolve, reject) => {
      const run = (): void => {
        let v: T | null;
        try {
          v = check();
        } catch (err) {
          done();
          reject(err as Error);
          return;
        }
        if (v !== null) {
          done();
          resolve(v);
        }
      };
      // Conditions on server-side state change without any client event: poll as well.
      const poll = setInterval(run, 5);
      const timer = setTimeout(() => {
        done();
        reject(new Error(`timed out waiting for ${what}; received ${JSON.stringify(this.data.subarray(this.pos).toString('latin1').slice(0, 500))}, ended=${this.ended}`));
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        clearInterval(poll);
        this.#waiters.delete(run);
      };
      this.#waiters.add(run);
      run();
    });
  }

  /** Reads the next response. `noBody`: the response to HEAD (or 1xx/204/304, detected from the status). */
  next(opts: { head?: boolean; ms?: number } = {}): Promise<Resp> {
    return this.waitFor(() => this.#tryParse(opts.head === true), opts.ms ?? 1500, 'a response');
  }

  #tryParse(isHead: boolean): Resp | null {
    const buf = this.data;
    const at = this.pos;
    const endHead = buf.indexOf('\r\n\r\n', at);
    if (endHead === -1) {
      if (this.ended) throw new Error(`connection ended inside a response head: ${JSON.stringify(buf.toString('latin1', at))}`);
      return null;
    }
    const rawHead = buf.toString('latin1', at, endHead);
    const lines = rawHead.split('\r\n');
    const m = /^HTTP\/1\.1 (\d{3}) [^\r\n]*$/.exec(lines[0]);
    assert.ok(m, `bad status line ${JSON.stringify(lines[0])}`);
    const status = Number(m[1]);
    const fields: [string, string][] = lines.slice(1).map((l) => {
      const c = l.indexOf(':');
      assert.ok(c > 0, `bad field line ${JSON.stringify(l)}`);
      return [l.slice(0, c).toLowerCase(), l.slice(c + 1).trim()];
    });
    const bodyAt = endHead + 4;
    const get = (n: string): string | undefined => fields.find(([k]) => k === n)?.[1];
    let body: Buffer;
    let end: number;
    if (isHead || status < 200 || status === 204 || status === 304) {
      body = Buffer.alloc(0);
      end = bodyAt;
    } else if (get('transfer-encoding') !== undefined) {
      assert.equal(get('transfer-encoding'), 'chunked');
      assert.equal(get('content-length'), undefined, 'both content-length and transfer-encoding');
      const r = parseChunked(buf, bodyAt);
      if (r === null) {
        if (this.ended) throw new Error('connection ended inside a chunked body');
        return null;
      }
      body = r.body;
      end = r.end;
    } else if (get('content-length') !== undefined) {
      const len = Number(get('content-length'));
      if (buf.length < bodyAt + len) {
        if (this.ended) throw new Error('connection ended inside a content-length body');
        return null;
      }
      body = buf.subarray(bodyAt, bodyAt + len);
      end = bodyAt + len;
    } else {
      // Close-delimited.
      if (!this.ended) return null;
      body = buf.subarray(bodyAt);
      end = buf.length;
    }
    this.pos = end;
    return { status, rawHead, fields, body: Buffer.from(body), rawBody: Buffer.from(buf.subarray(bodyAt, end)) };
  }

  /** Bytes received after the last response read. */
  rest(): string {
    return this.data.toString('latin1', this.pos);
  }

  /** Resolves once the server closed the connection (read side ended), or fails after `ms`. */
  waitEnd(ms = 1500): Promise<void> {
    return this.waitFor(() => (this.ended ? true : null), ms, 'the connection to end').then(() => {});
  }

  /** Asserts the connection is still open after `ms`. */
  async assertOpen(ms = 100): Promise<void> {
    await sleep(ms);
    assert.equal(this.ended, false, 'the connection was closed');
  }
}

function get(path: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: test.local\r\n${extra}\r\n`;
}

async function waitUntil(cond: () => boolean, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function readAll(body: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------

describe('H1Server: keep-alive, pipelining and framing', () => {
  const ts = new TestServer(limits());
  before(() => ts.listen());
  after(() => ts.close());

  test('keep-alive: several sequential requests on one socket', async () => {
    ts.reset((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(Buffer.byteLength(`${req.method} ${req.url}`)) });
      res.end(`${req.method} ${req.url}`);
    });
    const c = await ts.connect();
    for (let i = 0; i < 4; i++) {
      c.write(get(`/n/${i}?q=${i}`, 'X-Test: yes\r\n'));
      const r = await c.next();
      assert.equal(r.status, 200);
      assert.equal(r.body.toString(), `GET /n/${i}?q=${i}`);
      assert.equal(field(r, 'connection'), undefined, 'HTTP/1.1 keep-alive needs no connection field');
      assert.equal(field(r, 'content-length'), String(r.body.length));
    }
    assert.equal(ts.requests.length, 4);
    const [first] = ts.requests;
    assert.equal(first.httpVersion, '1.1');
    assert.deepEqual(first.rawHeaders, ['Host', 'test.local', 'X-Test', 'yes']);
    assert.ok(first.facts.ok);
    assert.equal(first.facts.host, 'test.local');
    assert.equal(first.body, null);
    assert.equal(first.complete, true);
    for (const r of ts.requests) assert.equal(r.socket, first.socket, 'all requests came on one connection');
    assert.equal(c.rest(), '');
    await c.assertOpen();
  });

  test('pipelined requests are answered in order, one in flight at a time', async () => {
    const events: string[] = [];
    ts.reset((req, res) => {
      events.push(`start ${req.url}`);
      const answer = (): void => {
        events.push(`end ${req.url}`);
        res.writeHead(200, { 'content-length': String(req.url.length) });
        res.end(req.url);
      };
      if (req.url === '/slow') setTimeout(answer, 120);
      else answer();
    });
    const c = await ts.connect();
    c.write(get('/slow') + get('/fast2'));
    await sleep(30);
    c.write(get('/fast3'));
    const bodies: string[] = [];
    for (let i = 0; i < 3; i++) bodies.push((await c.next()).body.toString());
    assert.deepEqual(bodies, ['/slow', '/fast2', '/fast3']);
    assert.deepEqual(events, ['start /slow', 'end /slow', 'start /fast2', 'end /fast2', 'start /fast3', 'end /fast3']);
    assert.equal(c.rest(), '');
    await c.assertOpen(50);
  });

  test('pipelined requests sent in one packet, with empty lines between them', async () => {
    ts.reset((req, res) => res.writeHead(200, { 'content-length': String(req.url.length) }).end(req.url));
    const c = await ts.connect();
    c.write(`\r\n${get('/1')}${get('/2')}\r\n\r\n${get('/3')}`);
    for (const p of ['/1', '/2', '/3']) assert.equal((await c.next()).body.toString(), p);
    await c.assertOpen(30);
  });

  test('HTTP/1.0 without keep-alive: connection: close, then the server closes', async () => {
    ts.reset((_req, res) => res.writeHead(200, { 'content-length': '2' }).end('ok'));
    const c = await ts.connect();
    c.write('GET /old HTTP/1.0\r\n\r\n');
    const r = await c.next();
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'ok');
    assert.equal(field(r, 'connection'), 'close');
    assert.match(r.rawHead, /^HTTP\/1\.1 200 OK\r\n/);
    await c.waitEnd();
    assert.equal(c.rest(), '');
    assert.equal(ts.requests[0].httpVersion, '1.0');
  });

  test('HTTP/1.0 with Connection: keep-alive stays open and says connection: keep-alive', async () => {
    ts.reset((req, res) => res.writeHead(200, { 'content-length': String(req.url.length) }).end(req.url));
    const c = await ts.connect();
    for (const p of ['/a', '/b']) {
      c.write(`GET ${p} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`);
      const r = await c.next();
      assert.equal(r.body.toString(), p);
      assert.equal(field(r, 'connection'), 'keep-alive');
    }
    await c.assertOpen();
    assert.equal(ts.requests.length, 2);
  });

  test('Connection: close on HTTP/1.1 closes after the response; a request behind it is not read', async () => {
    ts.reset((req, res) => res.writeHead(200, { 'content-length': String(req.url.length) }).end(req.url));
    const c = await ts.connect();
    c.write(get('/last', 'Connection: close\r\n') + get('/never'));
    const r = await c.next();
    assert.equal(r.body.toString(), '/last');
    assert.equal(field(r, 'connection'), 'close');
    await c.waitEnd();
    assert.equal(c.rest(), '');
    assert.deepEqual(ts.requests.map((q) => q.url), ['/last']);
  });

  test('HTTP/1.1 response without content-length is chunked; the connection stays usable', async () => {
    const big = Buffer.alloc(5000, 'b');
    ts.reset((req, res) => {
      if (req.url === '/after') return void res.writeHead(200, { 'content-length': '5' }).end('after');
      res.writeHead(200, { 'content-type': 'text/plain', 'Transfer-Encoding': 'gzip', Connection: 'upgrade' });
      assert.equal(res.write('ab'), true);
      res.write(Buffer.from('cde'));
      res.write('');
      res.write(big);
      res.write('é€');
      setTimeout(() => res.end('end'), 20);
    });
    const c = await ts.connect();
    c.write(get('/chunked') + get('/after'));
    const r = await c.next();
    assert.equal(field(r, 'transfer-encoding'), 'chunked', 'the handler cannot set transfer-encoding');
    assert.equal(field(r, 'connection'), undefined, 'the handler cannot set connection');
    assert.equal(field(r, 'content-type'), 'text/plain');
    assert.ok(r.body.equals(Buffer.concat([Buffer.from('abcde'), big, Buffer.from('é€end')])));
    // Exact framing: one chunk per non-empty write, sizes in bytes, then the last chunk.
    const expected = Buffer.concat([
      Buffer.from('2\r\nab\r\n3\r\ncde\r\n1388\r\n'), big, Buffer.from('\r\n5\r\n'), Buffer.from('é€'), Buffer.from('\r\n3\r\nend\r\n0\r\n\r\n'),
    ]);
    assert.equal(r.rawBody.toString('latin1'), expected.toString('latin1'));
    const r2 = await c.next();
    assert.equal(r2.body.toString(), 'after');
    assert.equal(c.rest(), '');
  });

  test('HTTP/1.1 chunked response ended without data, and with end() only', async () => {
    ts.reset((req, res) => {
      if (req.url === '/empty') return void res.end();
      res.write('x');
      res.end();
    });
    const c = await ts.connect();
    c.write(get('/empty') + get('/x'));
    const r1 = await c.next();
    assert.equal(field(r1, 'transfer-encoding'), 'chunked');
    assert.equal(r1.rawBody.toString(), '0\r\n\r\n');
    const r2 = await c.next();
    assert.equal(r2.rawBody.toString(), '1\r\nx\r\n0\r\n\r\n');
    assert.equal(c.rest(), '');
  });

  test('HTTP/1.0 response without content-length is close-delimited, even when keep-alive was asked', async () => {
    ts.reset((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('one,');
      res.write(Buffer.alloc(3000, 't'));
      setTimeout(() => res.end('two'), 10);
    });
    const c = await ts.connect();
    c.write('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    const r = await c.next();
    assert.equal(field(r, 'transfer-encoding'), undefined);
    assert.equal(field(r, 'content-length'), undefined);
    assert.equal(field(r, 'connection'), 'close');
    assert.equal(r.body.toString(), `one,${'t'.repeat(3000)}two`);
    assert.ok(c.ended);
  });

  test('HEAD, 204 and 304 responses carry no body bytes', async () => {
    ts.reset((req, res) => {
      if (req.method === 'HEAD' && req.url === '/len') return void res.writeHead(200, { 'content-length': '11' }).end('hello world');
      if (req.method === 'HEAD') return void res.end('hello world');
      if (req.url === '/204') {
        res.statusCode = 204;
        res.write('no');
        return void res.end('body');
      }
      if (req.url === '/304') return void res.writeHead(304, { etag: '"x"' }).end('no body');
      res.writeHead(200, { 'content-length': '4' }).end('tail');
    });
    const c = await ts.connect();
    c.write(`HEAD /len HTTP/1.1\r\nHost: a\r\n\r\nHEAD /nolen HTTP/1.1\r\nHost: a\r\n\r\n${get('/204')}${get('/304')}${get('/tail')}`);
    const h1 = await c.next({ head: true });
    assert.equal(h1.status, 200);
    assert.equal(field(h1, 'content-length'), '11');
    const h2 = await c.next({ head: true });
    assert.equal(h2.status, 200);
    assert.equal(field(h2, 'transfer-encoding'), undefined, 'HEAD without a length is not marked chunked');
    const n204 = await c.next();
    assert.equal(n204.status, 204);
    assert.equal(field(n204, 'transfer-encoding'), undefined);
    const n304 = await c.next();
    assert.equal(n304.status, 304);
    assert.equal(field(n304, 'etag'), '"x"');
    assert.equal(field(n304, 'transfer-encoding'), undefined);
    // If any of them had body bytes, the next response would not start right after its head.
    const t = await c.next();
    assert.equal(t.body.toString(), 'tail');
    assert.equal(c.rest(), '');
    await c.assertOpen(30);
  });

  test('a date field is added when absent and not duplicated when present', async () => {
    ts.reset((req, res) => {
      if (req.url === '/own') return void res.writeHead(200, ['Date', 'Tue, 01 Jan 2030 00:00:00 GMT', 'content-length', '0']).end();
      res.writeHead(200, { 'content-length': '0' }).end();
    });
    const c = await ts.connect();
    c.write(get('/') + get('/own'));
    const r = await c.next();
    const date = field(r, 'date');
    assert.ok(date !== undefined);
    assert.match(date, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
    assert.ok(Math.abs(Date.parse(date) - Date.now()) < 5000, `date ${date} is not now`);
    const own = await c.next();
    assert.equal(own.fields.filter(([n]) => n === 'date').length, 1);
    assert.equal(field(own, 'date'), 'Tue, 01 Jan 2030 00:00:00 GMT');
  });

  test('a response field value with CR or LF is refused', async () => {
    let thrown: unknown = null;
    ts.reset((_req, res) => {
      try {
        res.writeHead(200, { 'x-bad': 'a\r\nset-cookie: evil' });
      } catch (err) {
        thrown = err;
      }
      if (!res.headersSent) res.writeHead(500, { 'content-length': '0' });
      res.end();
    });
    const c = await ts.connect();
    c.write(get('/'));
    const r = await c.next();
    assert.ok(thrown instanceof Error);
    assert.equal(r.status, 500);
    assert.equal(r.fields.some(([n]) => n === 'set-cookie' || n === 'x-bad'), false);
  });

  test('a request refused by the strict checks reaches the handler, and nothing behind it is read', async () => {
    ts.reset((req, res) => res.writeHead(req.facts.ok ? 200 : req.facts.status, { 'content-length': '0' }).end());
    const c = await ts.connect();
    // HTTP/1.1 without Host.
    c.write(`GET /nohost HTTP/1.1\r\n\r\n${get('/never')}`);
    const r = await c.next();
    assert.equal(r.status, 400);
    assert.equal(field(r, 'connection'), 'close');
    await c.waitEnd();
    assert.deepEqual(ts.requests.map((q) => q.url), ['/nohost']);
    assert.equal(ts.requests[0].facts.ok, false);
    assert.equal(ts.requests[0].body, null);
  });
});

describe('H1Server: request bodies', () => {
  const ts = new TestServer(limits());
  before(() => ts.listen());
  after(() => ts.close());

  /** Echoes the body back with a content-length. */
  const echo: RequestHandler = (req, res) => {
    const read = req.body === null ? Promise.resolve(Buffer.alloc(0)) : readAll(req.body);
    void read.then((b) => {
      assert.equal(req.complete, true);
      res.writeHead(200, { 'content-length': String(b.length) }).end(b);
    }, (err: Error) => res.writeHead(500, { 'content-length': String(err.message.length) }).end(err.message));
  };

  test('a Content-Length body arrives through req.body intact, and a pipelined request after it is served', async () => {
    ts.reset(echo);
    const c = await ts.connect();
    const body = Buffer.from(Array.from({ length: 300 }, (_, i) => i & 0xff));
    c.write(Buffer.concat([Buffer.from(`POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n`), body, Buffer.from(get('/after'))]));
    const r = await c.next();
    assert.ok(r.body.equals(body));
    const r2 = await c.next();
    assert.equal(r2.status, 200);
    assert.equal(r2.body.length, 0);
    assert.deepEqual(ts.requests.map((q) => q.url), ['/up', '/after']);
    assert.equal(ts.requests[0].facts.ok && ts.requests[0].facts.contentLength, 300);
  });

  test('a head and a body arriving in many small writes', async () => {
    ts.reset(echo);
    const c = await ts.connect();
    const body = Buffer.from('the quick brown fox jumps over the lazy dog '.repeat(8));
    const all = Buffer.concat([Buffer.from(`PUT /slow HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n`), body, Buffer.from(get('/next'))]);
    for (let i = 0; i < all.length; i += 7) {
      c.write(all.subarray(i, i + 7));
      if (i % 35 === 0) await sleep(1);
    }
    const r = await c.next();
    assert.equal(r.body.toString(), body.toString());
    assert.equal((await c.next()).status, 200);
    assert.deepEqual(ts.requests.map((q) => q.url), ['/slow', '/next']);
  });

  test('a 1 MB body read slowly: the socket is paused (backpressure) and the body arrives intact', async () => {
    const size = 1_000_000;
    const body = Buffer.alloc(size);
    for (let i = 0; i < size; i++) body[i] = (i * 31 + (i >> 8)) & 0xff;
    let maxBuffered = 0;
    let sawPaused = false;
    ts.reset((req, res) => {
      if (req.url === '/after') return void res.writeHead(200, { 'content-length': '0' }).end();
      const b = req.body!;
      void (async () => {
        // Nobody reads for a while: the engine must stop reading the socket, not buffer the megabyte.
        await sleep(150);
        sawPaused = req.socket.isPaused();
        maxBuffered = b.readableLength;
        const hash = createHash('sha256');
        let n = 0;
        for await (const chunk of b) {
          hash.update(chunk as Buffer);
          n += (chunk as Buffer).length;
          maxBuffered = Math.max(maxBuffered, b.readableLength);
          if (n % 4 === 0) await sleep(1);
        }
        const out = `${n} ${hash.digest('hex')}`;
        res.writeHead(200, { 'content-length': String(out.length) }).end(out);
      })();
    });
    const c = await ts.connect();
    c.write(`POST /big HTTP/1.1\r\nHost: a\r\nContent-Length: ${size}\r\n\r\n`);
    c.write(body);
    c.write(get('/after'));
    const r = await c.next({ ms: 3000 });
    assert.equal(r.body.toString(), `${size} ${createHash('sha256').update(body).digest('hex')}`);
    assert.equal(sawPaused, true, 'the socket was not paused while the body was unread');
    assert.ok(maxBuffered <= 256 * 1024, `the body buffered ${maxBuffered} bytes`);
    assert.equal((await c.next()).status, 200);
  });

  test('a chunked body is decoded (extensions and trailers), and the request after it is served', async () => {
    ts.reset(echo);
    const c = await ts.connect();
    const chunked = '5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: t\r\n\r\n';
    const all = `POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n${chunked}${get('/after')}`;
    c.write(all.slice(0, 60));
    await sleep(5);
    c.write(all.slice(60, 75));
    await sleep(5);
    c.write(all.slice(75));
    const r = await c.next();
    assert.equal(r.body.toString(), 'hello world!');
    assert.equal((await c.next()).status, 200);
    const q = ts.requests[0];
    assert.ok(q.facts.ok && q.facts.chunked);
    assert.deepEqual(ts.requests.map((x) => x.url), ['/c', '/after']);
  });

  test('a malformed chunked body errors req.body with a 400-class error and the connection closes after the answer', async () => {
    let bodyErr: (Error & { code?: string }) | null = null;
    ts.reset((req, res) => {
      readAll(req.body!).then(() => res.end('unexpected'), (err: Error & { code?: string }) => {
        bodyErr = err;
        res.writeHead(400, { 'content-length': '3' }).end('bad');
      });
    });
    const c = await ts.connect();
    c.write(`POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n\r\n${get('/never')}`);
    const r = await c.next();
    assert.equal(r.status, 400);
    assert.equal(field(r, 'connection'), 'close');
    await c.waitEnd();
    assert.ok(bodyErr !== null);
    assert.equal((bodyErr as { code?: string }).code, 'bad_request');
    assert.deepEqual(ts.requests.map((x) => x.url), ['/c']);
  });

  test('writeContinue() sends HTTP/1.1 100 Continue before the body is sent', async () => {
    ts.reset((req, res) => {
      assert.ok(req.facts.ok && req.facts.expectContinue);
      res.writeContinue();
      echo(req, res);
    });
    const c = await ts.connect();
    c.write('POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
    await c.waitFor(() => (c.data.length >= 25 ? true : null), 1500, '100 Continue');
    assert.equal(c.data.toString('latin1'), 'HTTP/1.1 100 Continue\r\n\r\n');
    const cont = await c.next();
    assert.equal(cont.status, 100);
    c.write('hello');
    const r = await c.next();
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'hello');
  });
});

describe('H1Server: errors and closing', () => {
  const ts = new TestServer(limits());
  before(() => ts.listen());
  after(() => ts.close());

  test('a malformed head gets a 400 JSON body with a requestId; the connection closes; nothing behind it reaches the handler', async () => {
    ts.reset();
    const c = await ts.connect();
    c.write(`GET / HTTP/1.1\r\nHost: a\r\nX: folded\r\n continued\r\n\r\n${get('/never')}`);
    const r = await c.next();
    assert.equal(r.status, 400);
    assert.match(r.rawHead, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.equal(field(r, 'content-type'), 'application/json; charset=utf-8');
    assert.equal(field(r, 'connection'), 'close');
    const json = JSON.parse(r.body.toString()) as { statusCode: number; message: string; requestId: string };
    assert.equal(json.statusCode, 400);
    assert.equal(typeof json.message, 'string');
    assert.match(json.requestId, /^[0-9a-f]{32}$/);
    assert.equal(field(r, 'x-request-id'), json.requestId);
    await c.waitEnd();
    assert.equal(c.rest(), '');
    assert.equal(ts.requests.length, 0);
    assert.deepEqual(ts.refused, [400]);
  });

  test('a malformed head behind a served request: the first is answered, then 400 and close', async () => {
    ts.reset((_req, res) => res.writeHead(200, { 'content-length': '2' }).end('ok'));
    const c = await ts.connect();
    c.write(`${get('/ok')}GET / HTTP/1.1\r\nHost : a\r\n\r\n${get('/never')}`);
    assert.equal((await c.next()).status, 200);
    assert.equal((await c.next()).status, 400);
    await c.waitEnd();
    assert.deepEqual(ts.requests.map((q) => q.url), ['/ok']);
  });

  test('a bare LF is refused as soon as it arrives, before the head is complete', async () => {
    ts.reset();
    const c = await ts.connect();
    c.write('GET / HTTP/1.1\nHost: a');
    const r = await c.next({ ms: 1000 });
    assert.equal(r.status, 400);
    await c.waitEnd();
    assert.equal(ts.requests.length, 0);
  });

  test('an oversized head gets 431, an oversized request line 414', async () => {
    ts.reset();
    const c1 = await ts.connect();
    c1.write(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(20000)}`);
    assert.equal((await c1.next()).status, 431);
    await c1.waitEnd();
    const c2 = await ts.connect();
    c2.write(`GET /${'a'.repeat(20000)}`);
    assert.equal((await c2.next()).status, 414);
    await c2.waitEnd();
    assert.equal(ts.requests.length, 0);
    assert.deepEqual(ts.refused, [431, 414]);
  });

  /** A handler that sends part of a response and records how `res` closes. */
  function partialResponder(keepWriting: boolean): Promise<{ destroyed: boolean; writeAfter: boolean } | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), 1500);
      ts.reset((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('partial');
        assert.equal(res.destroyed, false);
        // Like a proxied upstream that keeps streaming.
        const tick = keepWriting ? setInterval(() => res.write('more'), 20) : null;
        res.on('close', () => {
          if (tick !== null) clearInterval(tick);
          clearTimeout(timer);
          resolve({ destroyed: res.destroyed, writeAfter: res.write('more') });
        });
      });
    });
  }

  test('a client that resets mid-response: res emits close with destroyed === true', async () => {
    const closed = partialResponder(false);
    const c = await ts.connect();
    c.write(get('/'));
    await c.waitFor(() => (c.data.includes('partial') ? true : null), 1500, 'the first body bytes');
    c.socket.resetAndDestroy();
    const got = await closed;
    assert.ok(got !== null, 'res did not emit close');
    assert.equal(got.destroyed, true);
    assert.equal(got.writeAfter, false);
  });

  test('a client that closes mid-response while the response streams: res emits close with destroyed === true', async () => {
    const closed = partialResponder(true);
    const c = await ts.connect();
    c.write(get('/'));
    await c.waitFor(() => (c.data.includes('partial') ? true : null), 1500, 'the first body bytes');
    c.socket.destroy();
    const got = await closed;
    assert.ok(got !== null, 'res did not emit close');
    assert.equal(got.destroyed, true);
    assert.equal(got.writeAfter, false);
  });

  test('a client that closes mid-response: res emits close even if nothing more is written', async () => {
      const closed = partialResponder(false);
      const c = await ts.connect();
      c.write(get('/'));
      await c.waitFor(() => (c.data.includes('partial') ? true : null), 1500, 'the first body bytes');
      c.socket.destroy();
      const got = await closed;
      assert.ok(got !== null, 'res did not emit close');
      assert.equal(got.destroyed, true);
    });

  test('a client FIN ends the exchange (as node:http and nginx): the response in flight is aborted, nothing pipelined is handled', async () => {
    const seen: H1Response[] = [];
    ts.reset((_req, res) => seen.push(res));
    const c = await ts.connect();
    c.write(get('/1') + get('/2'));
    await waitUntil(() => seen.length === 1, 1000);
    c.socket.end();
    await c.waitEnd();
    await waitUntil(() => seen[0].destroyed, 1000);
    assert.equal(seen.length, 1, 'the pipelined request was never handled');
    assert.equal(c.rest(), '');
  });

  test('a client that resets while the body is arriving: req.body errors', async () => {
    let resolveErr: (e: Error) => void = () => {};
    const errored = new Promise<Error>((r) => (resolveErr = r));
    ts.reset((req) => {
      readAll(req.body!).then(() => {}, resolveErr);
    });
    const c = await ts.connect();
    c.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc');
    await sleep(30);
    c.socket.resetAndDestroy();
    const err = await Promise.race([errored, sleep(1500).then(() => null)]);
    assert.ok(err instanceof Error, 'req.body did not error');
  });

  test('a client that closes (FIN) while the body is arriving: req.body errors at once, not at the request timeout', async () => {
      let resolveErr: (e: Error) => void = () => {};
      const errored = new Promise<Error>((r) => (resolveErr = r));
      ts.reset((req) => {
        readAll(req.body!).then(() => {}, resolveErr);
      });
      const c = await ts.connect();
      c.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc');
      await sleep(30);
      c.socket.destroy();
      const err = await Promise.race([errored, sleep(1500).then(() => null)]);
      assert.ok(err instanceof Error, 'req.body did not error');
    });

  test('closeIdleConnections() closes an idle keep-alive socket but not one with a request in flight', async () => {
    let pending: H1Response | null = null;
    ts.reset((req, res) => {
      if (req.url === '/hold') pending = res;
      else res.writeHead(200, { 'content-length': '0' }).end();
    });
    const idle = await ts.connect();
    idle.write(get('/quick'));
    assert.equal((await idle.next()).status, 200);
    const busy = await ts.connect();
    busy.write(get('/hold'));
    await busy.waitFor(() => (pending !== null ? true : null), 1500, 'the held request');
    ts.server.closeIdleConnections();
    await idle.waitEnd(1000);
    assert.equal(idle.rest(), '', 'an idle connection is closed without a response');
    await busy.assertOpen(100);
    (pending as unknown as H1Response).writeHead(200, { 'content-length': '4' }).end('done');
    const r = await busy.next();
    assert.equal(r.body.toString(), 'done');
  });

  test('an upgrade request is handed to handlers.upgrade with the socket and the bytes after the head', async () => {
    let got: { req: H1Request; socket: Duplex; head: Buffer } | null = null;
    ts.reset();
    ts.onUpgrade = (req, socket, head) => {
      got = { req, socket, head: Buffer.from(head) };
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      socket.on('data', (d: Buffer) => socket.write(Buffer.concat([Buffer.from('echo:'), d])));
      socket.on('end', () => socket.destroy());
    };
    const c = await ts.connect();
    c.write('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\nFRAME1');
    const r = await c.next();
    assert.equal(r.status, 101);
    assert.ok(got !== null);
    const g = got as { req: H1Request; socket: Duplex; head: Buffer };
    assert.equal(g.req.method, 'GET');
    assert.equal(g.req.url, '/ws');
    assert.ok(g.req.facts.ok && g.req.facts.upgrade);
    assert.ok(g.socket instanceof net.Socket);
    assert.equal(g.socket, g.req.socket);
    assert.equal(g.head.toString(), 'FRAME1');
    assert.equal(ts.requests.length, 0, 'the request handler did not see the upgrade');
    // The engine no longer reads the socket: bytes that would be a malformed head go to the new owner.
    c.write('not http\n');
    await c.waitFor(() => (c.rest() === 'echo:not http\n' ? true : null), 1500, 'the echo');
    assert.equal(c.ended, false);
  });

  test('bytes that arrive before the upgrade handler starts reading are not lost', async () => {
      ts.reset();
      let received = '';
      ts.onUpgrade = (_req, socket) => {
        // Like the WebSocket proxy: the socket is read only once the upstream has answered.
        setTimeout(() => {
          socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
          socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
          socket.on('end', () => socket.destroy());
        }, 100);
      };
      const c = await ts.connect();
      c.write('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
      await sleep(30);
      c.write('EARLY');
      assert.equal((await c.next()).status, 101);
      c.write('LATE');
      await c.waitFor(() => (received.includes('LATE') ? true : null), 1000, 'LATE at the handler');
      assert.equal(received, 'EARLYLATE');
    });
});

describe('H1Server: sockets are not held forever', () => {
  /** Server-side sockets still open (net's own count, which includes sockets the engine has let go of). */
  const openCount = (ts: TestServer): Promise<number> =>
    new Promise((r, j) => ts.server.net.getConnections((err, n) => (err ? j(err) : r(n))));

  for (const [name, bytes] of [
    ['a refused head', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n'],
    ['a Connection: close response', get('/', 'Connection: close\r\n')],
  ] as const) {
    test(`after ${name}, the server closes fully even when the client never sends its FIN`, async () => {
        const ts = new TestServer(limits({ headerTimeout: 300, requestTimeout: 300, idleTimeout: 300 }));
        ts.onRequest = (_req, res) => res.writeHead(200, { 'content-length': '0' }).end();
        await ts.listen();
        const s = net.connect({ port: ts.port, host: '127.0.0.1', allowHalfOpen: true });
        try {
          await new Promise<void>((r, j) => s.once('connect', r).once('error', j));
          s.on('error', () => {});
          const ended = new Promise<void>((r) => s.once('end', r));
          s.resume();
          s.write(bytes);
          await Promise.race([ended, sleep(1000)]);
          await sleep(800);
          assert.equal(await openCount(ts), 0, 'the server still holds the socket');
        } finally {
          s.destroy();
          await ts.close();
        }
      });
  }
});

describe('H1Server: timeouts', () => {
  const TIMEOUTS = { headerTimeout: 300, requestTimeout: 300, idleTimeout: 300 };
  // Built right before it listens: see the last tests for a server that sat unused first.
  let ts: TestServer;
  before(async () => {
    ts = new TestServer(limits(TIMEOUTS));
    await ts.listen();
  });
  after(() => ts.close());

  test('header timeout: a partial head gets 408 and the connection closes', async () => {
    ts.reset();
    const c = await ts.connect();
    const t0 = performance.now();
    c.write('GET / HTTP/1.1\r\nHost: a\r\n');
    const r = await c.next({ ms: 1500 });
    const elapsed = performance.now() - t0;
    assert.equal(r.status, 408);
    assert.ok(elapsed >= 150, `408 after only ${elapsed} ms`);
    assert.equal(JSON.parse(r.body.toString()).statusCode, 408);
    await c.waitEnd();
    assert.equal(ts.requests.length, 0);
  });

  test('idle keep-alive timeout: closes silently after a served request', async () => {
    ts.reset((_req, res) => res.writeHead(200, { 'content-length': '0' }).end());
    const c = await ts.connect();
    c.write(get('/'));
    assert.equal((await c.next()).status, 200);
    const t0 = performance.now();
    await c.waitEnd(1500);
    const elapsed = performance.now() - t0;
    assert.ok(elapsed >= 150, `closed after only ${elapsed} ms`);
    assert.equal(c.rest(), '', 'nothing is sent on an idle close');
  });

  test('a keep-alive connection used within the idle timeout stays open across requests', async () => {
    ts.reset((_req, res) => res.writeHead(200, { 'content-length': '0' }).end());
    const c = await ts.connect();
    for (let i = 0; i < 4; i++) {
      c.write(get(`/${i}`));
      assert.equal((await c.next()).status, 200);
      await sleep(150);
    }
    assert.equal(c.ended, false);
  });

  test('request timeout: a body that stops arriving errors req.body; the handler answers and the connection closes', async () => {
    let bodyErr: (Error & { code?: string }) | null = null;
    ts.reset((req, res) => {
      readAll(req.body!).then(() => res.end('unexpected'), (err: Error & { code?: string }) => {
        bodyErr = err;
        res.writeHead(408, { 'content-length': '7' }).end('timeout');
      });
    });
    const c = await ts.connect();
    const t0 = performance.now();
    c.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789');
    const r = await c.next({ ms: 1500 });
    const elapsed = performance.now() - t0;
    assert.equal(r.status, 408);
    assert.ok(elapsed >= 150, `timed out after only ${elapsed} ms`);
    assert.ok(bodyErr !== null);
    assert.equal((bodyErr as { code?: string }).code, 'request_timeout');
    assert.equal(field(r, 'connection'), 'close');
    await c.waitEnd();
  });

  test('a slow handler without a pending body is not cut off by the request timeout', async () => {
    ts.reset((_req, res) => setTimeout(() => res.writeHead(200, { 'content-length': '4' }).end('late'), 500));
    const c = await ts.connect();
    c.write(get('/'));
    const r = await c.next({ ms: 1500 });
    assert.equal(r.body.toString(), 'late');
  });

  test('an upgraded socket is left alone by the timeouts', async () => {
    ts.reset();
    let upgraded: Duplex | null = null;
    ts.onUpgrade = (_req, socket) => {
      upgraded = socket;
      socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    };
    const c = await ts.connect();
    c.write('GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
    assert.equal((await c.next()).status, 101);
    await c.assertOpen(600);
    assert.equal(c.rest(), '');
    (upgraded as Duplex | null)?.destroy();
  });

  test('the header timeout runs from the connection, however long the server sat unused before listening', async () => {
      const late = new TestServer(limits(TIMEOUTS));
      try {
        await sleep(400);
        await late.listen();
        const c = await late.connect();
        const t0 = performance.now();
        c.write('GET / HTTP/1.1\r\nHost: a\r\n');
        const r = await c.next({ ms: 1500 });
        const elapsed = performance.now() - t0;
        assert.equal(r.status, 408);
        assert.ok(elapsed >= 150, `408 after only ${elapsed} ms`);
      } finally {
        await late.close();
      }
    });

  test('accept() after a quiet period (PROXY protocol front end): a body finished within requestTimeout is not cut off', async () => {
      const viaAccept = new TestServer(limits(TIMEOUTS));
      viaAccept.onRequest = (req, res) => {
        const read = req.body === null ? Promise.resolve(Buffer.alloc(0)) : readAll(req.body);
        read.then((b) => res.writeHead(200, { 'content-length': String(b.length) }).end(b),
          () => res.writeHead(408, { 'content-length': '0' }).end());
      };
      const front = net.createServer((socket) => viaAccept.server.accept(socket));
      try {
        await new Promise<void>((r) => front.listen(0, '127.0.0.1', r));
        viaAccept.port = (front.address() as net.AddressInfo).port;
        const first = await viaAccept.connect();
        first.write(get('/first', 'Connection: close\r\n'));
        assert.equal((await first.next()).status, 200);
        await first.waitEnd();
        // No connection left and no listener: the sweep stops. Stay quiet for longer than every timeout.
        await sleep(400);
        const c = await viaAccept.connect();
        c.write('POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n01234');
        await sleep(150);
        c.write('56789');
        const r = await c.next({ ms: 1500 });
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), '0123456789');
      } finally {
        front.close();
        await viaAccept.close();
      }
    });
});

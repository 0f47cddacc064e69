import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { H1Pool, UpstreamError, sweptPoolCount, type DispatchOptions, type H1PoolOptions } from './h1-pool.ts';
import { stamp } from './clock.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

type Controller = Dispatcher.DispatchController;
type CodedError = Error & { code?: string };

function poolOpts(over: Partial<H1PoolOptions> = {}): H1PoolOptions {
  return { connections: 4, keepAliveTimeout: 5000, connectTimeout: 1000, headersTimeout: 2000, bodyTimeout: 2000, clientTtl: null, ...over };
}

/** Rejects when `p` has not settled within `ms`, so that no test can hang. */
function within<T>(p: Promise<T>, ms: number, what = 'operation'): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

interface Result {
  status: number;
  statusText: string;
  headers: Record<string, string | string[]>;
  body: Buffer;
  /** onResponseData chunks, in order. */
  chunks: Buffer[];
  error: CodedError | null;
  /** How many times onResponseStart ran (interim responses must not reach the handler). */
  starts: number;
  ended: boolean;
}

interface Hooks {
  onStart?: (c: Controller) => void;
  onHeaders?: (c: Controller, status: number) => void;
  onData?: (c: Controller, chunk: Buffer, r: Result) => void;
}

interface Call {
  /** The controller, captured synchronously in onRequestStart. */
  controller: Controller;
  /** Settles once with the collected response (onResponseEnd) or error (onResponseError); never rejects. */
  done: Promise<Result>;
  result: Result;
}

/** Dispatches and collects the response; `done` resolves on onResponseEnd or onResponseError. */
function call(pool: H1Pool, o: Partial<DispatchOptions> = {}, hooks: Hooks = {}): Call {
  const r: Result = { status: 0, statusText: '', headers: {}, body: Buffer.alloc(0), chunks: [], error: null, starts: 0, ended: false };
  let settle!: (r: Result) => void;
  let settled = false;
  const done = new Promise<Result>((res) => (settle = res));
  let controller: Controller | null = null;
  const finish = (): void => {
    if (settled) throw new Error('handler settled twice');
    settled = true;
    r.body = Buffer.concat(r.chunks);
    settle(r);
  };
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
      hooks.onStart?.(c);
    },
    onResponseStart(c, status, headers, statusText) {
      r.starts++;
      r.status = status;
      r.statusText = statusText ?? '';
      r.headers = headers as Record<string, string | string[]>;
      hooks.onHeaders?.(c, status);
    },
    onResponseData(c, chunk) {
      if (settled) throw new Error('data after the end');
      r.chunks.push(chunk);
      hooks.onData?.(c, chunk, r);
    },
    onResponseEnd() {
      r.ended = true;
      finish();
    },
    onResponseError(_c, err) {
      r.error = err as CodedError;
      finish();
    },
  };
  pool.dispatch({ method: 'GET', path: '/', headers: [], ...o }, handler);
  assert.ok(controller !== null, 'onRequestStart runs synchronously in dispatch');
  return { controller, done, result: r };
}

async function get(pool: H1Pool, o: Partial<DispatchOptions> = {}, hooks: Hooks = {}, ms = 2500): Promise<Result> {
  return within(call(pool, o, hooks).done, ms, `${o.method ?? 'GET'} ${o.path ?? '/'}`);
}

interface ConnInfo {
  socket: net.Socket;
  /** Every byte received on this connection. */
  data: Buffer;
  /** Resolves when the connection closed (from either side). */
  closed: Promise<void>;
  isClosed: boolean;
  /** Requests already answered by `onRequest` on this connection. */
  answered: number;
}

interface Upstream {
  port: number;
  origin: string;
  conns: ConnInfo[];
  /** Request heads (text up to CRLFCRLF) in arrival order across connections. */
  heads: string[];
  close(): Promise<void>;
}

type OnData = (c: ConnInfo, chunk: Buffer, up: Upstream) => void;

/** A raw TCP upstream on 127.0.0.1: `onData` sees every chunk with the connection's accumulated bytes. */
async function upstream(onData: OnData = () => {}): Promise<Upstream> {
  const conns: ConnInfo[] = [];
  const server = net.createServer();
  const up: Upstream = {
    port: 0,
    origin: '',
    conns,
    heads: [],
    async close() {
      for (const c of conns) c.socket.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  server.on('connection', (socket) => {
    let onClosed!: () => void;
    const c: ConnInfo = { socket, data: Buffer.alloc(0), closed: new Promise<void>((r) => (onClosed = r)), isClosed: false, answered: 0 };
    conns.push(c);
    socket.on('error', () => {});
    socket.on('close', () => {
      c.isClosed = true;
      onClosed();
    });
    socket.on('data', (d: Buffer) => {
      c.data = Buffer.concat([c.data, d]);
      onData(c, d, up);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  up.port = (server.address() as net.AddressInfo).port;
  up.origin = `http://127.0.0.1:${up.port}`;
  return up;
}

/**
 * An upstream that answers each complete request (head plus a Content-Length body, if any) on a connection
 * by calling `respond`, in order. Chunked request bodies are not supported here.
 */
function answering(respond: (c: ConnInfo, head: string, index: number) => void): Promise<Upstream> {
  const offsetOf = new WeakMap<ConnInfo, number>();
  return upstream((c, _d, up) => {
    for (;;) {
      const from = offsetOf.get(c) ?? 0;
      const end = c.data.indexOf('\r\n\r\n', from);
      if (end === -1) return;
      const head = c.data.toString('latin1', from, end);
      const m = /\r\ncontent-length: *(\d+)/i.exec(head);
      const next = end + 4 + (m ? Number(m[1]) : 0);
      if (c.data.length < next) return;
      offsetOf.set(c, next);
      up.heads.push(head);
      respond(c, head, c.answered++);
    }
  });
}

const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';

/** A port with nothing listening. */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Waits until `cond` holds (polling), failing after `ms`. */
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

describe('H1Pool: requests and keep-alive', () => {
  test('two sequential GETs reuse one connection; the head carries host and the headers in order, no body framing', async () => {
    const up = await answering((c) => c.socket.write(OK));
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const a = await get(pool, { path: '/a?x=1', headers: ['x-one', '1', 'X-Two', 'two', 'x-one', 'again'] });
      assert.equal(a.error, null);
      assert.equal(a.status, 200);
      assert.equal(a.statusText, 'OK');
      assert.equal(a.body.toString(), 'ok');
      assert.equal(pool.connections, 1);
      const b = await get(pool, { path: '/b', headers: ['Host', 'api.example.test', 'accept', '*/*'] });
      assert.equal(b.error, null);
      assert.equal(b.body.toString(), 'ok');
      assert.equal(up.conns.length, 1, 'the second request reused the first connection');
      assert.equal(pool.connections, 1);
      assert.equal(up.heads[0], `GET /a?x=1 HTTP/1.1\r\nx-one: 1\r\nX-Two: two\r\nx-one: again\r\nhost: 127.0.0.1:${up.port}`);
      // A given Host is sent as is, and no second one is added.
      assert.equal(up.heads[1], 'GET /b HTTP/1.1\r\nHost: api.example.test\r\naccept: */*');
      assert.equal(up.conns[0].data.toString('latin1'), `${up.heads[0]}\r\n\r\n${up.heads[1]}\r\n\r\n`, 'nothing but the two heads on the wire');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('a pool is swept only while it has connections: an idle process with no upstream connections wakes for none', async () => {
    const up = await answering((c) => c.socket.write(OK));
    const before = sweptPoolCount();
    const pool = new H1Pool(up.origin, poolOpts({ keepAliveTimeout: 150 }));
    try {
      assert.equal(sweptPoolCount(), before, 'a new pool has no connections to sweep');
      const r = await get(pool, { path: '/a' });
      assert.equal(r.error, null);
      assert.equal(pool.connections, 1);
      assert.equal(sweptPoolCount(), before + 1, 'its idle keep-alive connection is swept');
      // The sweep closes the idle connection after keepAliveTimeout; then the pool leaves the sweep.
      const deadline = Date.now() + 3000;
      while (pool.connections > 0 && Date.now() < deadline) await sleep(25);
      assert.equal(pool.connections, 0, 'the idle connection expired');
      assert.equal(sweptPoolCount(), before);
      const again = await get(pool, { path: '/b' });
      assert.equal(again.error, null, 'a request after the quiet period gets a new connection');
      assert.equal(sweptPoolCount(), before + 1);
    } finally {
      await pool.destroy();
      await up.close();
    }
    assert.equal(sweptPoolCount(), before);
  });

  test('POST, PUT and PATCH without a body announce content-length: 0; GET, DELETE and an explicit length do not add one', async () => {
    const up = await answering((c) => c.socket.write(OK));
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      for (const method of ['POST', 'PUT', 'PATCH', 'DELETE', 'GET']) {
        const r = await get(pool, { method, path: '/m', body: null });
        assert.equal(r.error, null, method);
      }
      const r = await get(pool, { method: 'POST', path: '/m', headers: ['Content-Length', '0'] });
      assert.equal(r.error, null);
      const host = `host: 127.0.0.1:${up.port}`;
      assert.deepEqual(up.heads, [
        `POST /m HTTP/1.1\r\n${host}\r\ncontent-length: 0`,
        `PUT /m HTTP/1.1\r\n${host}\r\ncontent-length: 0`,
        `PATCH /m HTTP/1.1\r\n${host}\r\ncontent-length: 0`,
        `DELETE /m HTTP/1.1\r\n${host}`,
        `GET /m HTTP/1.1\r\n${host}`,
        `POST /m HTTP/1.1\r\nContent-Length: 0\r\n${host}`,
      ]);
      assert.equal(up.conns.length, 1);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('the origin host header keeps a non-default port and omits port 80', async () => {
    const up = await answering((c) => c.socket.write(OK));
    // Port 80 is not reachable here; a lookup that maps any name to 127.0.0.1 cannot change the port either,
    // so only the header text is checked for the default-port case.
    const p80 = new H1Pool('http://svc.internal:80', poolOpts());
    const pool = new H1Pool(`http://localhost:${up.port}`, poolOpts());
    try {
      assert.equal(p80.hostHeader, 'svc.internal');
      const r = await get(pool);
      assert.equal(r.error, null);
      assert.equal(up.heads[0], `GET / HTTP/1.1\r\nhost: localhost:${up.port}`);
    } finally {
      await p80.destroy();
      await pool.destroy();
      await up.close();
    }
  });
});

describe('H1Pool: request bodies', () => {
  test('a Buffer or string body is sent with its byte length', async () => {
    const up = await answering((c) => c.socket.write(OK));
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const a = await get(pool, { method: 'POST', path: '/buf', body: Buffer.from([0, 1, 2, 255]) });
      const b = await get(pool, { method: 'PUT', path: '/str', body: 'héllo' });
      assert.equal(a.error, null);
      assert.equal(b.error, null);
      const host = `host: 127.0.0.1:${up.port}`;
      const expected = Buffer.concat([
        Buffer.from(`POST /buf HTTP/1.1\r\n${host}\r\ncontent-length: 4\r\n\r\n`),
        Buffer.from([0, 1, 2, 255]),
        Buffer.from(`PUT /str HTTP/1.1\r\n${host}\r\ncontent-length: 6\r\n\r\n`),
        Buffer.from('héllo', 'utf8'),
      ]);
      assert.deepEqual(up.conns[0].data, expected);
      assert.equal(up.conns.length, 1);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('a Readable body with a content-length header is sent raw (no chunked framing)', async () => {
    const up = await answering((c) => c.socket.write(OK));
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const body = Readable.from([Buffer.from('abc'), Buffer.from('defg')]);
      const r = await get(pool, { method: 'POST', path: '/r', headers: ['content-length', '7'], body });
      assert.equal(r.error, null);
      assert.equal(r.status, 200);
      assert.equal(up.conns[0].data.toString('latin1'), `POST /r HTTP/1.1\r\ncontent-length: 7\r\nhost: 127.0.0.1:${up.port}\r\n\r\nabcdefg`);
      // The connection is reusable after a streamed body.
      assert.equal((await get(pool)).error, null);
      assert.equal(up.conns.length, 1);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('an async-iterable body without a length is sent chunked, empty chunks skipped, ended by 0 CRLF CRLF', async () => {
    const terminator = '0\r\n\r\n';
    const up = await upstream((c) => {
      if (c.data.toString('latin1').endsWith(terminator)) c.socket.write(OK);
    });
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      async function* gen(): AsyncGenerator<Buffer | string> {
        yield 'abc';
        await sleep(5);
        yield Buffer.alloc(0);
        yield '';
        yield Buffer.from('0123456789');
        yield 'é';
      }
      const r = await get(pool, { method: 'POST', path: '/g', headers: ['x-a', 'b'], body: gen() });
      assert.equal(r.error, null);
      assert.equal(r.body.toString(), 'ok');
      assert.equal(
        up.conns[0].data.toString('latin1'),
        Buffer.from(`POST /g HTTP/1.1\r\nx-a: b\r\nhost: 127.0.0.1:${up.port}\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\na\r\n0123456789\r\n2\r\né\r\n0\r\n\r\n`).toString('latin1'),
      );
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('an async-iterable body that throws midway fails the request with that error and destroys the connection', async () => {
    const up = await upstream();
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const boom = new Error('body source failed');
      async function* gen(): AsyncGenerator<string> {
        yield 'part';
        await sleep(30);
        throw boom;
      }
      const r = await get(pool, { method: 'POST', path: '/e', body: gen() });
      assert.equal(r.error, boom);
      assert.equal(r.starts, 0);
      await within(up.conns[0].closed, 1000, 'upstream connection close');
      assert.ok(up.conns[0].data.toString().includes('4\r\npart\r\n'), 'the first chunk went out before the failure');
      assert.ok(!up.conns[0].data.toString().includes('0\r\n\r\n'), 'no last-chunk: the upstream must not see a complete request');
      assert.equal(pool.connections, 0);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('a Readable body that errors midway fails the request with that error and destroys the connection', async () => {
    const up = await upstream();
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const boom = new Error('readable failed');
      const body = new Readable({ read() {} });
      body.push('abc');
      const c = call(pool, { method: 'PUT', path: '/e', headers: ['content-length', '10'], body });
      await until(() => up.conns.length === 1 && up.conns[0].data.toString().endsWith('abc'), 1000, 'first body bytes');
      body.destroy(boom);
      const r = await within(c.done, 1000, 'request');
      assert.equal(r.error, boom);
      await within(up.conns[0].closed, 1000, 'upstream connection close');
      assert.equal(pool.connections, 0);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('a Readable body destroyed without an error fails the request (incomplete body) and destroys the connection', async () => {
    const up = await upstream();
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const body = new Readable({ read() {} });
      body.push('abc');
      const c = call(pool, { method: 'PUT', path: '/e', headers: ['content-length', '10'], body });
      await until(() => up.conns.length === 1 && up.conns[0].data.toString().endsWith('abc'), 1000, 'first body bytes');
      body.destroy();
      const r = await within(c.done, 1000, 'request');
      assert.ok(r.error instanceof UpstreamError);
      assert.equal(r.error.code, 'UND_ERR_SOCKET');
      await within(up.conns[0].closed, 1000, 'upstream connection close');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('a response that arrives before the request body is fully sent is delivered, and the connection is not reused', async () => {
    const up = await upstream((c) => {
      // Answers as soon as the head is in, while the body is still open.
      if (c.answered === 0 && c.data.includes('\r\n\r\n')) {
        c.answered++;
        c.socket.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 3\r\n\r\nbig');
      }
    });
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const body = new Readable({ read() {} });
      body.push('partial');
      const r = await get(pool, { method: 'POST', path: '/up', body });
      assert.equal(r.error, null);
      assert.equal(r.status, 413);
      assert.equal(r.body.toString(), 'big');
      await within(up.conns[0].closed, 1000, 'half-sent connection close');
      body.destroy();
    } finally {
      await pool.destroy();
      await up.close();
    }
  });
});

describe('H1Pool: response framing', () => {
  test('a Content-Length body split across many writes is reassembled; the connection is reused', async () => {
    const body = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz'.repeat(100));
    const up = await answering((c) => {
      void (async () => {
        c.socket.write('HTTP/1.1 200 OK\r\nContent-');
        await sleep(2);
        c.socket.write(`Length: ${body.length}\r\nX-Multi: a\r\nx-multi: b\r\n`);
        await sleep(2);
        c.socket.write('\r\n');
        for (let i = 0; i < body.length; i += 500) {
          await sleep(2);
          c.socket.write(body.subarray(i, i + 500));
        }
      })();
    });
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const r = await get(pool);
      assert.equal(r.error, null);
      assert.deepEqual(r.body, body);
      assert.ok(r.chunks.length > 1, 'the body arrived in several reads');
      assert.deepEqual(r.headers, { 'content-length': String(body.length), 'x-multi': ['a', 'b'] });
      const r2 = await get(pool);
      assert.deepEqual(r2.body, body);
      assert.equal(up.conns.length, 1);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('a chunked response with extensions and trailers is decoded, byte by byte too; the connection is reused', async () => {
    const wire = 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=val\r\nhello\r\n6 ; x="y"\r\n world\r\nA\r\n0123456789\r\n0;last\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n';
    const up = await answering((c, _h, i) => {
      if (i === 0) {
        c.socket.write(wire);
        return;
      }
      void (async () => {
        for (let j = 0; j < wire.length; j++) {
          c.socket.write(wire[j]);
          if (j % 16 === 0) await sleep(1);
        }
      })();
    });
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const a = await get(pool);
      assert.equal(a.error, null);
      assert.equal(a.body.toString(), 'hello world0123456789');
      assert.equal(a.headers['transfer-encoding'], 'chunked');
      const b = await get(pool);
      assert.equal(b.error, null);
      assert.equal(b.body.toString(), 'hello world0123456789');
      assert.equal(up.conns.length, 1);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('a close-delimited body (no Content-Length, no Transfer-Encoding) ends at close and the connection is not reused', async () => {
    const up = await answering((c, _h, i) => {
      if (c !== up.conns[0] || i > 0) {
        c.socket.write(OK);
        return;
      }
      void (async () => {
        c.socket.write('HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nabc');
        await sleep(20);
        c.socket.write('def');
        await sleep(20);
        c.socket.end('ghi');
      })();
    });
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const a = await get(pool);
      assert.equal(a.error, null);
      assert.equal(a.ended, true);
      assert.equal(a.body.toString(), 'abcdefghi');
      assert.equal(pool.connections, 0);
      const b = await get(pool);
      assert.equal(b.error, null);
      assert.equal(up.conns.length, 2, 'a new connection for the next request');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('HEAD, 204 and 304 responses with a Content-Length have no body and the connection is reused', async () => {
    const up = await answering((c, head) => {
      if (head.startsWith('HEAD')) c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n');
      else if (head.startsWith('GET /204')) c.socket.write('HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n');
      else if (head.startsWith('GET /304')) c.socket.write('HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\nETag: "x"\r\n\r\n');
      else c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlast');
    });
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const h = await get(pool, { method: 'HEAD' });
      assert.equal(h.error, null);
      assert.equal(h.status, 200);
      assert.equal(h.headers['content-length'], '1000');
      assert.equal(h.body.length, 0);
      const n = await get(pool, { path: '/204' });
      assert.equal(n.error, null);
      assert.equal(n.status, 204);
      assert.equal(n.body.length, 0);
      const m = await get(pool, { path: '/304' });
      assert.equal(m.error, null);
      assert.equal(m.status, 304);
      assert.equal(m.body.length, 0);
      const last = await get(pool, { path: '/end' });
      assert.equal(last.body.toString(), 'last');
      assert.equal(up.conns.length, 1);
      assert.equal(up.heads.length, 4);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('100 Continue and 103 Early Hints before the final response are skipped (split or in one write)', async () => {
    const up = await answering((c, _h, i) => {
      if (i === 0) {
        c.socket.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nhi');
        return;
      }
      void (async () => {
        c.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
        await sleep(10);
        c.socket.write('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 202 Acc');
        await sleep(10);
        c.socket.write('epted\r\nContent-Length: 3\r\n\r\nyes');
      })();
    });
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const a = await get(pool);
      assert.equal(a.error, null);
      assert.equal(a.starts, 1);
      assert.equal(a.status, 201);
      assert.equal(a.headers.link, undefined);
      assert.equal(a.body.toString(), 'hi');
      const b = await get(pool);
      assert.equal(b.error, null);
      assert.equal(b.starts, 1);
      assert.equal(b.status, 202);
      assert.equal(b.statusText, 'Accepted');
      assert.equal(b.body.toString(), 'yes');
      assert.equal(up.conns.length, 1);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('a Connection: close response closes the connection; the next request uses a new one', async () => {
    const up = await answering((c, _h, i) => c.socket.write(i === 0 && c === up.conns[0] ? 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok' : OK));
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const a = await get(pool);
      assert.equal(a.error, null);
      assert.equal(a.body.toString(), 'ok');
      await within(up.conns[0].closed, 1000, 'pool closing the connection');
      const b = await get(pool);
      assert.equal(b.error, null);
      assert.equal(up.conns.length, 2);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('an HTTP/1.0 response is not reused unless it says Connection: keep-alive', async () => {
    const up = await answering((c, head) =>
      c.socket.write(head.startsWith('GET /ka') ? 'HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nka' : 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok'),
    );
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const a = await get(pool, { path: '/plain' });
      assert.equal(a.error, null);
      assert.equal(a.body.toString(), 'ok');
      await within(up.conns[0].closed, 1000, 'pool closing the HTTP/1.0 connection');
      const b = await get(pool, { path: '/ka' });
      assert.equal(b.body.toString(), 'ka');
      const c = await get(pool, { path: '/ka' });
      assert.equal(c.body.toString(), 'ka');
      assert.equal(up.conns.length, 2, 'the keep-alive HTTP/1.0 connection was reused');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('an upstream Keep-Alive: timeout=1 makes the pool drop the idle connection within a second', async () => {
    const up = await answering((c) => c.socket.write('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=1\r\nContent-Length: 2\r\n\r\nok'));
    const pool = new H1Pool(up.origin, poolOpts({ keepAliveTimeout: 10_000 }));
    try {
      const r = await get(pool);
      assert.equal(r.error, null);
      const t0 = Date.now();
      await within(up.conns[0].closed, 1500, 'idle close after Keep-Alive: timeout=1');
      assert.ok(Date.now() - t0 <= 1100, `closed after ${Date.now() - t0} ms`);
      assert.equal(pool.connections, 0);
      const b = await get(pool);
      assert.equal(b.error, null);
      assert.equal(up.conns.length, 2);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('keepAliveTimeout closes an idle connection, not before', async () => {
    const up = await answering((c) => c.socket.write(OK));
    const pool = new H1Pool(up.origin, poolOpts({ keepAliveTimeout: 400 }));
    try {
      stamp();
      assert.equal((await get(pool)).error, null);
      const t0 = Date.now();
      await sleep(200);
      assert.equal(up.conns[0].isClosed, false, 'still open well within keepAliveTimeout');
      await within(up.conns[0].closed, 1000, 'idle close');
      const waited = Date.now() - t0;
      assert.ok(waited >= 250 && waited <= 800, `closed after ${waited} ms`);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('an upstream that closes an idle connection does not fail the next request', async () => {
    const up = await answering((c) => {
      c.socket.write(OK);
      if (c === up.conns[0]) setTimeout(() => c.socket.end(), 10);
    });
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      assert.equal((await get(pool)).error, null);
      await within(up.conns[0].closed, 1000, 'upstream close');
      await until(() => pool.connections === 0, 1000, 'pool to forget the closed connection');
      const b = await get(pool);
      assert.equal(b.error, null);
      assert.equal(up.conns.length, 2);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('bytes beyond the Content-Length: the response is delivered, the connection is not reused', async () => {
    const up = await answering((c) => c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA'));
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const r = await get(pool);
      assert.equal(r.error, null);
      assert.equal(r.body.toString(), 'ok');
      await within(up.conns[0].closed, 1000, 'pool dropping the out-of-step connection');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('bytes on an idle connection make the pool drop it', async () => {
    const up = await answering((c) => {
      c.socket.write(OK);
      if (c === up.conns[0]) setTimeout(() => c.socket.write('HTTP/1.1 200 OK\r\n'), 20);
    });
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      assert.equal((await get(pool)).error, null);
      await within(up.conns[0].closed, 1000, 'pool dropping the noisy idle connection');
      const b = await get(pool);
      assert.equal(b.error, null);
      assert.equal(up.conns.length, 2);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('a status line without a reason phrase is accepted', async () => {
    const up = await answering((c) => c.socket.write('HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n'));
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const r = await get(pool);
      assert.equal(r.error, null);
      assert.equal(r.status, 404);
      assert.equal(r.statusText, '');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });
});

describe('H1Pool: malformed responses', () => {
  const big = 'x'.repeat(70 * 1024);
  const cases: [string, string, string?][] = [
    ['Content-Length with Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['Transfer-Encoding before Content-Length', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n'],
    ['two different Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
    ['a non-numeric Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 5a\r\n\r\nhello'],
    ['a negative Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n'],
    ['Transfer-Encoding: gzip', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc'],
    ['Transfer-Encoding: gzip, chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n'],
    ['an obs-fold line', 'HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\nContent-Length: 0\r\n\r\n'],
    ['a bare LF inside the head', 'HTTP/1.1 200 OK\r\nX-A: one\nContent-Length: 0\r\n\r\n'],
    ['a bare CR inside the head', 'HTTP/1.1 200 OK\r\nX-A: one\rX-B: two\r\nContent-Length: 0\r\n\r\n'],
    ['a NUL in a field value', 'HTTP/1.1 200 OK\r\nX-A: o\0ne\r\nContent-Length: 0\r\n\r\n'],
    ['a bad status line (HTP/1.1)', 'HTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'],
    ['HTTP/2.0 in the status line', 'HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n'],
    ['a four-digit status', 'HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n'],
    ['a two-digit status', 'HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n'],
    ['a status below 100', 'HTTP/1.1 099 OK\r\nContent-Length: 0\r\n\r\n'],
    ['a status that is not three digits (2e2)', 'HTTP/1.1 2e2 OK\r\nContent-Length: 0\r\n\r\n'],
    ['a field name with a space', 'HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n'],
    ['whitespace before the colon', 'HTTP/1.1 200 OK\r\nX-A : x\r\nContent-Length: 0\r\n\r\n'],
    ['a field name with a separator', 'HTTP/1.1 200 OK\r\nX(a): x\r\nContent-Length: 0\r\n\r\n'],
    ['a field line without a colon', 'HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n'],
    ['an empty field name', 'HTTP/1.1 200 OK\r\n: x\r\nContent-Length: 0\r\n\r\n'],
    ['a head over 64 KiB (complete)', `HTTP/1.1 200 OK\r\nX-Big: ${big}\r\nContent-Length: 0\r\n\r\n`],
    ['a head over 64 KiB (never ending)', `HTTP/1.1 200 OK\r\nX-Big: ${big}`],
    ['a malformed chunk size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
    ['chunk data longer than its size', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n'],
  ];
  for (const [name, wire, todo] of cases) {
    test(`${name} → onResponseError with an HPE_ code, connection destroyed`, todo === undefined ? {} : { todo }, async () => {
      const up = await answering((c) => c.socket.write(wire));
      const pool = new H1Pool(up.origin, poolOpts({ headersTimeout: 1500 }));
      try {
        const t0 = Date.now();
        const r = await get(pool);
        assert.ok(r.error !== null, `expected an error, got status ${r.status} body ${JSON.stringify(r.body.toString().slice(0, 40))}`);
        assert.ok(r.error instanceof UpstreamError, `${r.error.name}: ${r.error.message}`);
        assert.match(r.error.code ?? '', /^HPE_/);
        assert.ok(Date.now() - t0 < 1000, 'rejected on arrival, not by a timeout');
        await within(up.conns[0].closed, 1000, 'connection destroyed');
        assert.equal(pool.connections, 0);
      } finally {
        await pool.destroy();
        await up.close();
      }
    });
  }

  test('a malformed response head is never passed to onResponseStart', async () => {
    const up = await answering((c) => c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx'));
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const r = await get(pool);
      assert.equal(r.starts, 0);
      assert.equal(r.chunks.length, 0);
      assert.equal(r.error?.code, 'HPE_UNEXPECTED_CONTENT_LENGTH');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('101 Switching Protocols to a request without upgrade → UND_ERR_INFO', async () => {
    const up = await answering((c) => c.socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'));
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const r = await get(pool);
      assert.equal(r.error?.code, 'UND_ERR_INFO');
      assert.equal(r.starts, 0);
      await within(up.conns[0].closed, 1000, 'connection destroyed');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });
});

describe('H1Pool: connection errors and timeouts', () => {
  test('connecting to a closed port → ECONNREFUSED', async () => {
    const port = await closedPort();
    const pool = new H1Pool(`http://127.0.0.1:${port}`, poolOpts());
    try {
      const r = await get(pool);
      assert.equal(r.error?.code, 'ECONNREFUSED');
      assert.equal(r.starts, 0);
      assert.equal(pool.connections, 0);
    } finally {
      await pool.destroy();
    }
  });

  test('an upstream that closes without answering → UND_ERR_SOCKET (or ECONNRESET)', async () => {
    const up = await upstream((c) => {
      if (c.data.includes('\r\n\r\n')) c.socket.end();
    });
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const r = await get(pool);
      assert.ok(r.error !== null);
      assert.ok(['UND_ERR_SOCKET', 'ECONNRESET'].includes(r.error.code ?? ''), `code ${r.error.code}`);
      assert.equal(pool.connections, 0);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('an upstream that closes midway through a Content-Length body → UND_ERR_SOCKET', async () => {
    const up = await answering((c) => c.socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const r = await get(pool);
      assert.equal(r.starts, 1);
      assert.equal(r.body.toString(), 'abc');
      assert.ok(['UND_ERR_SOCKET', 'ECONNRESET'].includes(r.error?.code ?? ''), `code ${r.error?.code}`);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('an upstream that closes midway through a chunked body → UND_ERR_SOCKET', async () => {
    const up = await answering((c) => c.socket.end('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n'));
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const r = await get(pool);
      assert.equal(r.body.toString(), 'abc');
      assert.ok(['UND_ERR_SOCKET', 'ECONNRESET'].includes(r.error?.code ?? ''), `code ${r.error?.code}`);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('headersTimeout with a silent upstream → UND_ERR_HEADERS_TIMEOUT after ~300 ms', async () => {
    const up = await upstream();
    const pool = new H1Pool(up.origin, poolOpts({ headersTimeout: 300 }));
    try {
      stamp(); // as the forwarding code does per request
      const t0 = Date.now();
      const r = await get(pool);
      const took = Date.now() - t0;
      assert.equal(r.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
      assert.ok(took >= 280 && took <= 700, `timed out after ${took} ms`);
      await within(up.conns[0].closed, 1000, 'connection destroyed');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('headersTimeout counts from the request being written even when no clock stamp was taken recently', async () => {
    // No pool has been live for a while, so nothing has refreshed the shared clock (clock.ts `last`).
    await sleep(500);
    const up = await answering((c) => setTimeout(() => c.socket.write(OK), 150));
    const pool = new H1Pool(up.origin, poolOpts({ headersTimeout: 300 }));
    try {
      const r = await get(pool);
      assert.equal(r.error, null, `a response after 150 ms failed a 300 ms headers timeout: ${r.error?.code}`);
      assert.equal(r.status, 200);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('bodyTimeout with an upstream that stalls after the head → UND_ERR_BODY_TIMEOUT', async () => {
    const up = await answering((c) => c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc'));
    const pool = new H1Pool(up.origin, poolOpts({ bodyTimeout: 300 }));
    try {
      stamp();
      let tHead = 0;
      const r = await get(pool, {}, { onHeaders: () => (tHead = Date.now()) });
      const took = Date.now() - tHead;
      assert.equal(r.starts, 1);
      assert.equal(r.body.toString(), 'abc');
      assert.equal(r.error?.code, 'UND_ERR_BODY_TIMEOUT');
      assert.ok(took >= 250 && took <= 800, `timed out ${took} ms after the head`);
      await within(up.conns[0].closed, 1000, 'connection destroyed');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('bodyTimeout is a gap between reads, not a total: a slow but steady body succeeds', async () => {
    const up = await answering((c) => {
      void (async () => {
        c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n');
        for (const ch of 'abcdef') {
          await sleep(120);
          if (c.isClosed) return;
          c.socket.write(ch);
        }
      })();
    });
    const pool = new H1Pool(up.origin, poolOpts({ bodyTimeout: 400 }));
    try {
      stamp();
      const r = await get(pool);
      assert.equal(r.error, null);
      assert.equal(r.body.toString(), 'abcdef');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('connectTimeout: a connection attempt that never completes → UND_ERR_CONNECT_TIMEOUT', async () => {
    // A lookup that never answers holds the socket in its connecting phase (no network needed).
    const lookup = (() => {}) as unknown as net.LookupFunction;
    const pool = new H1Pool('http://never.invalid:8080', poolOpts({ connectTimeout: 200, lookup }));
    try {
      const t0 = Date.now();
      const r = await get(pool);
      const took = Date.now() - t0;
      assert.equal(r.error?.code, 'UND_ERR_CONNECT_TIMEOUT');
      assert.ok(took >= 190 && took <= 700, `timed out after ${took} ms`);
      assert.equal(pool.connections, 0);
    } finally {
      await pool.destroy();
    }
  });
});

describe('H1Pool: concurrency', () => {
  test('connections: 2 with 5 concurrent requests → at most 2 upstream connections, all 5 succeed', async () => {
    let open = 0;
    let maxOpen = 0;
    let total = 0;
    const server = http.createServer((req, res) => {
      setTimeout(() => res.end(`r${req.url}`), 100);
    });
    server.on('connection', (s) => {
      total++;
      open++;
      maxOpen = Math.max(maxOpen, open);
      s.on('close', () => open--);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const pool = new H1Pool(`http://127.0.0.1:${port}`, poolOpts({ connections: 2 }));
    try {
      const calls = [1, 2, 3, 4, 5].map((i) => call(pool, { path: `/${i}` }));
      assert.ok(pool.connections <= 2);
      const results = await within(Promise.all(calls.map((c) => c.done)), 2500, 'five requests');
      results.forEach((r, i) => {
        assert.equal(r.error, null);
        assert.equal(r.status, 200);
        assert.equal(r.body.toString(), `r/${i + 1}`);
      });
      assert.equal(maxOpen, 2);
      assert.equal(total, 2, 'queued requests reused the two connections');
    } finally {
      await pool.destroy();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  test('a failed connection lets a queued request connect anew', async () => {
    const up = await answering((c) => {
      if (c === up.conns[0]) c.socket.destroy();
      else c.socket.write(OK);
    });
    const pool = new H1Pool(up.origin, poolOpts({ connections: 1 }));
    try {
      const a = call(pool, { path: '/a' });
      const b = call(pool, { path: '/b' });
      const [ra, rb] = await within(Promise.all([a.done, b.done]), 2000, 'both requests');
      assert.ok(ra.error !== null);
      assert.equal(rb.error, null);
      assert.equal(rb.body.toString(), 'ok');
      assert.equal(up.conns.length, 2);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });
});

describe('H1Pool: abort', () => {
  test('abort before the response → onResponseError with the reason; the connection is destroyed', async () => {
    const up = await upstream();
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const c = call(pool);
      await until(() => up.conns.length === 1 && up.conns[0].data.includes('\r\n\r\n'), 1000, 'request at the upstream');
      const reason = new Error('client went away');
      c.controller.abort(reason);
      const r = await within(c.done, 500, 'aborted request');
      assert.equal(r.error, reason);
      assert.equal(r.starts, 0);
      await within(up.conns[0].closed, 1000, 'connection destroyed');
      assert.equal(pool.connections, 0);
      // A second abort is a no-op (the handler settles once; call() throws on a second settle).
      c.controller.abort(new Error('again'));
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('abort midway through the body → onResponseError with the reason; no more data', async () => {
    const up = await answering((c) => c.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc'));
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const reason = new Error('stop');
      const r = await get(pool, {}, { onData: (ctl) => ctl.abort(reason) });
      assert.equal(r.error, reason);
      assert.equal(r.body.toString(), 'abc');
      await within(up.conns[0].closed, 1000, 'connection destroyed');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('abort in onRequestStart → error at once, nothing is sent', async () => {
    const up = await upstream();
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const reason = new Error('early');
      const r = await get(pool, {}, { onStart: (ctl) => ctl.abort(reason) });
      assert.equal(r.error, reason);
      await sleep(50);
      assert.equal(up.conns.length, 0);
      assert.equal(pool.connections, 0);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('abort while connecting → error with the reason, the socket is dropped', async () => {
    const lookup = (() => {}) as unknown as net.LookupFunction;
    const pool = new H1Pool('http://never.invalid:8080', poolOpts({ connectTimeout: 2000, lookup }));
    try {
      const c = call(pool);
      assert.equal(pool.connections, 1);
      const reason = new Error('gone');
      c.controller.abort(reason);
      const r = await within(c.done, 500, 'aborted request');
      assert.equal(r.error, reason);
      assert.equal(pool.connections, 0);
    } finally {
      await pool.destroy();
    }
  });

  test('aborting a queued request: it never reaches the upstream, and the queue moves on', async () => {
    const up = await answering((c, head) => {
      if (head.startsWith('GET /1 ')) setTimeout(() => c.socket.write(OK), 100);
      else c.socket.write(OK);
    });
    const pool = new H1Pool(up.origin, poolOpts({ connections: 1 }));
    try {
      const first = call(pool, { path: '/1' });
      const queued = call(pool, { path: '/2' });
      const reason = new Error('queued abort');
      queued.controller.abort(reason);
      const rq = await within(queued.done, 200, 'queued abort');
      assert.equal(rq.error, reason);
      const third = call(pool, { path: '/3' });
      const [r1, r3] = await within(Promise.all([first.done, third.done]), 2000, 'the other requests');
      assert.equal(r1.error, null);
      assert.equal(r3.error, null);
      await sleep(30);
      assert.deepEqual(
        up.heads.map((h) => h.split(' ')[1]),
        ['/1', '/3'],
      );
      assert.equal(up.conns.length, 1);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });
});

describe('H1Pool: pause and resume', () => {
  test('pause() in onResponseData stops data until resume(); bodyTimeout does not fire while paused', async () => {
    const size = 4 * 1024 * 1024;
    const piece = Buffer.alloc(64 * 1024, 0x61);
    let written = 0;
    const up = await answering((c) => {
      c.socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`);
      const pump = (): void => {
        while (written < size && !c.isClosed) {
          written += piece.length;
          if (!c.socket.write(piece)) {
            c.socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
    const pool = new H1Pool(up.origin, poolOpts({ bodyTimeout: 200 }));
    try {
      let received = 0;
      let pausedAt = -1;
      let dataWhilePaused = 0;
      let ctl: Controller | null = null;
      let paused = false;
      const c = call(pool, {}, {
        onData: (controller, chunk) => {
          received += chunk.length;
          if (paused) dataWhilePaused++;
          if (pausedAt === -1 && received > 0) {
            ctl = controller;
            pausedAt = received;
            paused = true;
            controller.pause();
          }
        },
      });
      await until(() => pausedAt !== -1, 2000, 'first body data');
      await sleep(400);
      assert.equal(dataWhilePaused, 0, 'no onResponseData while paused');
      assert.equal(received, pausedAt);
      assert.ok(written < size, 'the upstream is held back by flow control');
      assert.equal(c.result.error, null, 'no body timeout while paused');
      paused = false;
      ctl!.resume();
      const r = await within(c.done, 2500, 'the rest of the body');
      assert.equal(r.error, null);
      assert.equal(r.body.length, size);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('pause() in onResponseData holds back the rest of a chunked body already read', async () => {
    const up = await answering((c) => {
      c.socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n');
      setTimeout(() => !c.isClosed && c.socket.write('0\r\n\r\n'), 50);
    });
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      let paused = false;
      let whilePaused = 0;
      let ctl: Controller | null = null;
      const c = call(pool, {}, {
        onData: (controller) => {
          if (paused) whilePaused++;
          if (ctl === null) {
            ctl = controller;
            paused = true;
            controller.pause();
          }
        },
      });
      await until(() => ctl !== null, 1000, 'first chunk');
      await sleep(150);
      const early = whilePaused;
      const endedWhilePaused = c.result.ended;
      paused = false;
      ctl!.resume();
      const r = await within(c.done, 1000, 'response');
      assert.equal(r.body.toString(), 'abcdef');
      assert.equal(early, 0, 'onResponseData ran while paused');
      assert.equal(endedWhilePaused, false, 'onResponseEnd ran while paused');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });
});

describe('H1Pool: close and destroy', () => {
  test('close() waits for a request in flight, then resolves; dispatch after close → UND_ERR_CLOSED', async () => {
    const up = await answering((c) => setTimeout(() => c.socket.write(OK), 150));
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      const c = call(pool);
      await until(() => up.heads.length === 1, 1000, 'request at the upstream');
      let endedFirst = false;
      const closing = pool.close().then(() => {
        endedFirst = c.result.ended;
      });
      const r = await within(c.done, 1000, 'in-flight request');
      assert.equal(r.error, null);
      assert.equal(r.body.toString(), 'ok');
      await within(closing, 1000, 'close()');
      assert.equal(endedFirst, true, 'close() resolved after the response ended');
      await within(up.conns[0].closed, 1000, 'connection closed');
      assert.equal(pool.connections, 0);
      const after = await get(pool);
      assert.ok(after.error instanceof UpstreamError);
      assert.equal(after.error.code, 'UND_ERR_CLOSED');
      assert.equal(up.heads.length, 1);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('close() closes idle connections and resolves at once', async () => {
    const up = await answering((c) => c.socket.write(OK));
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      assert.equal((await get(pool)).error, null);
      await within(pool.close(), 500, 'close()');
      await within(up.conns[0].closed, 1000, 'idle connection closed');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('close() with several idle connections destroys every socket (re-entrant close through forget)', async () => {
    const up = await answering((c) => setTimeout(() => c.socket.write(OK), 30));
    const pool = new H1Pool(up.origin, poolOpts());
    try {
      // Three concurrent requests open three connections, which then all sit idle.
      const rs = await Promise.all([get(pool), get(pool), get(pool)]);
      for (const r of rs) assert.equal(r.error, null);
      assert.equal(pool.connections, 3);
      await within(pool.close(), 1000, 'close()');
      for (const c of up.conns) await within(c.closed, 1000, 'upstream connection closed');
      assert.equal(pool.connections, 0);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('close() also finishes requests still queued at the connection cap', async () => {
    const up = await answering((c) => setTimeout(() => c.socket.write(OK), 50));
    const pool = new H1Pool(up.origin, poolOpts({ connections: 1 }));
    try {
      const a = call(pool, { path: '/a' });
      const b = call(pool, { path: '/b' });
      const closing = pool.close();
      const [ra, rb] = await within(Promise.all([a.done, b.done]), 1500, 'in-flight and queued requests');
      assert.equal(ra.error, null);
      assert.equal(rb.error, null, `queued request: ${rb.error?.code}`);
      await within(closing, 1000, 'close()');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('close() still enforces headersTimeout on a request in flight', async () => {
    const up = await upstream();
    const pool = new H1Pool(up.origin, poolOpts({ headersTimeout: 300 }));
    try {
      stamp();
      const c = call(pool);
      await until(() => up.conns.length === 1 && up.conns[0].data.includes('\r\n\r\n'), 1000, 'request at the upstream');
      const closing = pool.close();
      const r = await within(c.done, 1500, 'in-flight request on a closing pool');
      assert.equal(r.error?.code, 'UND_ERR_HEADERS_TIMEOUT');
      await within(closing, 1000, 'close()');
    } finally {
      await pool.destroy();
      await up.close();
    }
  });

  test('destroy() fails the request in flight and the queued ones; dispatch after → UND_ERR_CLOSED', async () => {
    const up = await upstream();
    const pool = new H1Pool(up.origin, poolOpts({ connections: 1 }));
    try {
      const a = call(pool, { path: '/a' });
      const b = call(pool, { path: '/b' });
      await until(() => up.conns.length === 1 && up.conns[0].data.includes('\r\n\r\n'), 1000, 'request at the upstream');
      await within(pool.destroy(), 1000, 'destroy()');
      const [ra, rb] = await within(Promise.all([a.done, b.done]), 500, 'both requests');
      assert.equal(ra.error?.code, 'UND_ERR_DESTROYED');
      assert.equal(rb.error?.code, 'UND_ERR_DESTROYED');
      await within(up.conns[0].closed, 1000, 'connection destroyed');
      assert.equal(pool.connections, 0);
      const after = await get(pool);
      assert.equal(after.error?.code, 'UND_ERR_CLOSED');
      assert.equal(up.conns.length, 1);
    } finally {
      await pool.destroy();
      await up.close();
    }
  });
});

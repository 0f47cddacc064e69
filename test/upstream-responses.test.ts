// Cross-process: what the gateway does with unusual and hostile upstream responses (the h1 pool's parser),
// seen from a raw client: re-framing, interim responses, response smuggling, and 502s that leave the
// client connection usable.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startGateway, type GatewayProcess } from './helpers/gateway-process.ts';
import { simpleConfig } from './helpers/config.ts';
import { RawConnection, header, readRequests, summarize } from './helpers/raw-http.ts';

/** Upstream answers chosen by the request path; each entry is the exact bytes to write. */
const ANSWERS: Record<string, string> = {
  '/cl': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello',
  '/chunked': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n',
  '/interim': 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/cl-te': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  '/two-cl': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
  '/te-gzip': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxxxx',
  '/fold': 'HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nok',
  '/bad-status': 'HTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok',
  '/bad-chunk': 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
  // Extra bytes after a complete response: a smuggled second response must never reach any client.
  '/smuggle': 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED',
  '/head': 'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n',
  '/no-content': 'HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n',
  '/hop': 'HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=30\r\nContent-Length: 2\r\n\r\nok',
};

let upstream: net.Server;
let upstreamPort: number;
let gw: GatewayProcess;
let port: number;
const sockets = new Set<net.Socket>();

function startRawUpstream(): Promise<void> {
  upstream = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    readRequests(socket, {
      onRequest: ({ method, path }) => {
        if (path === '/close-delimited') {
          socket.end('HTTP/1.1 200 OK\r\n\r\nuntil close');
          return;
        }
        const answer = ANSWERS[path] ?? 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n';
        socket.write(method === 'HEAD' ? answer.slice(0, answer.indexOf('\r\n\r\n') + 4) : answer);
      },
    });
  });
  return new Promise((resolve) => upstream.listen(0, '127.0.0.1', () => {
    upstreamPort = (upstream.address() as net.AddressInfo).port;
    resolve();
  }));
}

before(async () => {
  await startRawUpstream();
  gw = await startGateway(simpleConfig({ upstreamPort, gateway: '  accessLog: { path: "off" }' }));
  port = gw.ports.http;
});

after(async () => {
  await gw?.stop();
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => upstream.close(() => resolve()));
});

async function get(path: string, method = 'GET'): Promise<{ conn: RawConnection; status: number; body: string; res: ReturnType<RawConnection['result']>['responses'][number] }> {
  const conn = await RawConnection.open(port);
  conn.write(`${method} ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  const ok = await conn.waitForResponses(1, 3000);
  const r = conn.result();
  assert.ok(ok, `no response for ${path}: ${summarize(r)}`);
  const res = r.responses[0];
  return { conn, status: res.status, body: res.body.toString('latin1'), res };
}

test('a Content-Length response is relayed with its length', async () => {
  const { conn, status, body, res } = await get('/cl');
  conn.close();
  assert.equal(status, 200);
  assert.equal(body, 'hello');
  assert.equal(header(res, 'content-length'), '5');
});

test('a chunked response is decoded and re-framed (extensions and trailers dropped)', async () => {
  const { conn, status, body, res } = await get('/chunked');
  conn.close();
  assert.equal(status, 200);
  assert.equal(body, 'hello world');
  assert.equal(header(res, 'transfer-encoding'), 'chunked');
  assert.equal(header(res, 'x-trailer'), undefined);
});

test('100 and 103 interim responses from the upstream are not passed on', async () => {
  const conn = await RawConnection.open(port);
  conn.write('GET /interim HTTP/1.1\r\nHost: x\r\n\r\n');
  await conn.waitForResponses(1, 3000);
  await new Promise((r) => setTimeout(r, 50));
  const r = conn.result();
  conn.close();
  assert.deepEqual(r.responses.map((x) => x.status), [200], summarize(r));
  assert.equal(r.responses[0].body.toString(), 'ok');
});

test('a close-delimited upstream body reaches the client complete, chunked', async () => {
  const { conn, status, body, res } = await get('/close-delimited');
  conn.close();
  assert.equal(status, 200);
  assert.equal(body, 'until close');
  assert.equal(header(res, 'transfer-encoding'), 'chunked');
});

test('HEAD and 204 responses carry no body, and the client connection stays usable', async () => {
  const conn = await RawConnection.open(port);
  conn.write('HEAD /head HTTP/1.1\r\nHost: x\r\n\r\nGET /no-content HTTP/1.1\r\nHost: x\r\n\r\nGET /cl HTTP/1.1\r\nHost: x\r\n\r\n');
  // A raw parser cannot frame HEAD responses by itself: look at the bytes.
  await conn.waitFor(() => conn.received.toString('latin1').includes('hello'), 3000);
  const text = conn.received.toString('latin1');
  conn.close();
  const heads = text.split('HTTP/1.1 ').slice(1);
  assert.equal(heads.length, 3, text);
  assert.match(heads[0], /^200 OK\r\n[\s\S]*content-length: 1234\r\n[\s\S]*\r\n\r\n$/);
  assert.match(heads[1], /^204 No Content\r\n[\s\S]*\r\n\r\n$/);
  assert.match(heads[2], /^200 OK\r\n[\s\S]*\r\n\r\nhello$/);
});

for (const [path, what] of [
  ['/cl-te', 'both Content-Length and Transfer-Encoding'],
  ['/two-cl', 'two different Content-Lengths'],
  ['/te-gzip', 'Transfer-Encoding other than chunked'],
  ['/fold', 'an obs-folded field'],
  ['/bad-status', 'a malformed status line'],
  ['/bad-chunk', 'a malformed chunk size'],
]) {
  test(`an upstream response with ${what} becomes a 502 JSON error, and the client connection is still usable`, async () => {
    const conn = await RawConnection.open(port);
    conn.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    await conn.waitForResponses(1, 3000);
    let r = conn.result();
    assert.equal(r.responses[0]?.status, 502, summarize(r));
    const json = JSON.parse(r.responses[0].body.toString()) as { statusCode: number; requestId: string };
    assert.equal(json.statusCode, 502);
    assert.match(json.requestId, /^[0-9a-f]{32}$/);
    if (!r.closed) {
      conn.write('GET /cl HTTP/1.1\r\nHost: x\r\n\r\n');
      await conn.waitForResponses(2, 3000);
      r = conn.result();
      assert.equal(r.responses[1]?.status, 200, summarize(r));
    }
    conn.close();
  });
}

test('bytes after a complete upstream response are never delivered as a response to anyone', async () => {
  for (let i = 0; i < 5; i++) {
    const { conn, body } = await get('/smuggle');
    // The next request on the same client connection goes to a fresh or clean upstream connection.
    conn.write('GET /cl HTTP/1.1\r\nHost: x\r\n\r\n');
    await conn.waitForResponses(2, 3000);
    const r = conn.result();
    conn.close();
    assert.equal(body, 'hello');
    assert.equal(r.responses[1]?.body.toString(), 'hello', summarize(r));
    assert.ok(!conn.received.toString('latin1').includes('SMUGGLED'));
  }
});

test('hop-by-hop response headers (Connection, Keep-Alive, and those Connection names) are not relayed', async () => {
  const { conn, res } = await get('/hop');
  conn.close();
  assert.equal(header(res, 'x-secret'), undefined);
  assert.equal(header(res, 'keep-alive'), undefined);
  assert.equal(header(res, 'connection'), undefined);
});

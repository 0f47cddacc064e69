// Cross-process: a client that goes away while the upstream works. A request sent in full to an HTTP/1.1 upstream gets
// ABANDON_GRACE_MS to finish (read and dropped, up to ABANDON_MAX_BYTES) so its pooled connection survives — over TLS
// that saves a handshake on both sides; a slower or larger response is aborted then, and a request whose body was still
// streaming is aborted at once. Checked on a plain and a TLS upstream by counting the upstream's connections; and the TLS
// server name toward an https Backend is its own, never the client's Host.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { startGateway, type GatewayProcess } from './helpers/gateway-process.ts';
import { createTestPki, opensslMissing, type TestPki } from './helpers/certs.ts';
import { RawConnection, readRequests, summarize } from './helpers/raw-http.ts';
const ABANDON_GRACE_MS = 500;
const ABANDON_MAX_BYTES = 65536;

/** An upstream that answers `…/wait/<ms>` after that long (2 bytes; 4 × ABANDON_MAX_BYTES when the path has `/big`), and logs each connection's life. */
interface Connection {
  /** Request paths received, in order. */
  paths: string[];
  /** performance.now() when it closed, or -1. */
  closedAt: number;
  /** TLS: the server name the client asked for (false: none). */
  sni?: string | false | null;
}

interface CountingUpstream {
  port: number;
  connections: Connection[];
  /** Requests answered in full, by path. */
  answered: string[];
  server: net.Server;
}

function serve(socket: net.Socket, up: CountingUpstream): void {
  const c: Connection = { paths: [], closedAt: -1, sni: (socket as tls.TLSSocket).servername };
  up.connections.push(c);
  socket.on('close', () => (c.closedAt = performance.now()));
  socket.on('error', () => socket.destroy());
  readRequests(socket, {
    // Seen as soon as the head is in (a body may still be streaming).
    onHead: ({ path }) => void c.paths.push(path),
    onRequest: ({ path }) => {
      const ms = Number(/\/wait\/(\d+)/.exec(path)?.[1] ?? 0);
      setTimeout(() => {
        if (socket.destroyed) return;
        if (path.includes('/big')) {
          const body = Buffer.alloc(ABANDON_MAX_BYTES * 4, 'x');
          socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
          socket.write(body, () => up.answered.push(path));
          return;
        }
        socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', () => up.answered.push(path));
      }, ms);
    },
  });
}

function listen(server: net.Server, up: CountingUpstream): Promise<CountingUpstream> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    up.port = (server.address() as net.AddressInfo).port;
    resolve(up);
  }));
}

function plainUpstream(): Promise<CountingUpstream> {
  const up = { port: 0, connections: [], answered: [] } as unknown as CountingUpstream;
  up.server = net.createServer((s) => serve(s, up));
  return listen(up.server, up);
}

function tlsUpstream(pki: TestPki): Promise<CountingUpstream> {
  const up = { port: 0, connections: [], answered: [] } as unknown as CountingUpstream;
  up.server = tls.createServer({ cert: readFileSync(pki.a.certFile), key: readFileSync(pki.a.keyFile) }, (s) => serve(s, up));
  return listen(up.server, up);
}

const doc = (kind: string, name: string, spec: string): string => `apiVersion: lockgate.dev/v1alpha1\nkind: ${kind}\nmetadata: { name: ${name} }\nspec: ${spec}\n`;

let plain: CountingUpstream;
let secure: CountingUpstream | undefined;
let pki: TestPki | undefined;
let gw: GatewayProcess;
const noTls = opensslMissing();

before(async () => {
  plain = await plainUpstream();
  const docs = [
    doc('Gateway', 't', '{ listeners: [{ name: http, address: 127.0.0.1, port: 0 }], admin: { address: 127.0.0.1, port: 0 }, accessLog: { path: "off" } }'),
    doc('Backend', 'plain', `{ url: "http://127.0.0.1:${plain.port}", retries: { attempts: 0 } }`),
    doc('Api', 'plain', '{ path: /plain, backend: plain }'),
  ];
  if (noTls === undefined) {
    pki = await createTestPki();
    secure = await tlsUpstream(pki);
    docs.push(
      doc('Backend', 'secure', `{ url: "https://127.0.0.1:${secure.port}", retries: { attempts: 0 }, tls: { caFile: "${pki.ca.certFile}", serverName: a.example.test } }`),
      doc('Api', 'secure', '{ path: /secure, backend: secure }'),
    );
  }
  gw = await startGateway(docs.join('---\n'));
});

after(async () => {
  await gw?.stop();
  for (const up of [plain, secure]) {
    if (up === undefined) continue;
    up.server.close();
  }
  pki?.close();
});

/** Sends `request` for `path` on a new connection and closes it once the upstream has its head, before any answer. */
async function sendAndLeave(up: CountingUpstream, request: string, path: string): Promise<number> {
  const conn = await RawConnection.open(gw.ports.http);
  conn.write(request);
  await until(`the upstream to receive ${path}`, () => carrier(up, path) !== undefined);
  const left = performance.now();
  conn.close();
  return left;
}

async function getOk(path: string, host = 'x'): Promise<void> {
  const conn = await RawConnection.open(gw.ports.http);
  conn.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  const ok = await conn.waitForResponses(1, 5000);
  const r = conn.result();
  conn.close();
  assert.ok(ok, `no response for ${path}: ${summarize(r)}`);
  assert.equal(r.responses[0].status, 200, `${summarize(r)} ${r.responses[0].body.toString()}`);
}

async function until(what: string, check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

/** The upstream connection that received `path` (each test uses its own). */
function carrier(up: CountingUpstream, path: string): Connection | undefined {
  return up.connections.find((c) => c.paths.includes(path));
}

for (const kind of ['plain', 'secure'] as const) {
  const skip = kind === 'secure' ? noTls : undefined;
  const up = (): CountingUpstream => (kind === 'plain' ? plain : secure!);

  test(`${kind}: a fast response to a client that left finishes, and its upstream connection is reused`, { skip }, async () => {
    await getOk(`/${kind}/wait/0?warm`);
    const connections = up().connections.length;
    const path = `/${kind}/wait/150`;
    await sendAndLeave(up(), `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, path);
    await until('the upstream to answer', () => up().answered.includes(path));
    await sleep(100);
    assert.equal(carrier(up(), path)?.closedAt, -1, 'the upstream connection stays open');
    await getOk(`/${kind}/wait/0?next`);
    assert.equal(up().connections.length, connections, 'the next request reuses it: no new connection (and no new handshake)');
    assert.ok(carrier(up(), `/${kind}/wait/0?next`) === carrier(up(), path));
  });

  test(`${kind}: a response slower than the grace is aborted after it`, { skip }, async () => {
    const path = `/${kind}/wait/5000`;
    const left = await sendAndLeave(up(), `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, path);
    await until('the upstream connection to close', () => (carrier(up(), path)?.closedAt ?? -1) !== -1);
    const after = carrier(up(), path)!.closedAt - left;
    assert.ok(after >= ABANDON_GRACE_MS - 20, `closed ${after.toFixed(0)} ms after the client left: not before the grace`);
    assert.ok(after < ABANDON_GRACE_MS + 2500, `closed ${after.toFixed(0)} ms after the client left: soon after the grace`);
    assert.ok(!up().answered.includes(path));
  });

  test(`${kind}: a response larger than ${ABANDON_MAX_BYTES} bytes to a client that left is aborted without waiting for the grace`, { skip }, async () => {
    const path = `/${kind}/big/wait/100`;
    const left = await sendAndLeave(up(), `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, path);
    await until('the upstream connection to close', () => (carrier(up(), path)?.closedAt ?? -1) !== -1);
    const after = carrier(up(), path)!.closedAt - left;
    assert.ok(after < ABANDON_GRACE_MS, `closed ${after.toFixed(0)} ms after the client left`);
  });

  test(`${kind}: a request whose body was still streaming is aborted at once`, { skip }, async () => {
    const path = `/${kind}/wait/0?upload`;
    const left = await sendAndLeave(up(), `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n${'x'.repeat(1000)}`, path);
    // The upstream sees the head at once (the body streams), then the connection closes when the gateway gives up.
    await until('the upstream connection to close', () => (carrier(up(), path)?.closedAt ?? -1) !== -1);
    const after = carrier(up(), path)!.closedAt - left;
    assert.ok(after < ABANDON_GRACE_MS - 100, `closed ${after.toFixed(0)} ms after the client left`);
  });
}

test('secure: the TLS server name is the Backend\'s whatever Host the client sends, and a new Host needs no new connection', { skip: noTls }, async () => {
  await getOk('/secure/wait/0?host-1', 'one.example');
  const connections = secure!.connections.length;
  await getOk('/secure/wait/0?host-2', 'two.example');
  await getOk('/secure/wait/0?host-3', '127.0.0.1');
  assert.equal(secure!.connections.length, connections, 'the same pooled connection serves every Host');
  assert.deepEqual([...new Set(secure!.connections.map((c) => c.sni))], ['a.example.test'], 'SNI is the configured serverName on every connection');
});

// Protocols through two real sidecars: gRPC over HTTP/2 end to end, Unix sockets app ↔ sidecar, WebSocket, opaque TCP, hop limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import http2 from 'node:http2';
import net, { type AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { Pool } from 'undici';
import { TestMesh, endpoint, TRUST_DOMAIN } from './helpers/mesh.ts';
import { startUpstream } from './helpers/upstream.ts';
import { Sidecar } from '../src/app/sidecar.ts';

type Port = { name: string; port: number; protocol: 'http' | 'grpc' | 'tcp' };

/** A Mesh (allow unless told) with orders and inventory; inventory's ports as given, plus extra documents. */
function yaml(opts: { inventoryPorts: Port[]; defaultAccess?: string; extra?: string }): string {
  const svc = (name: string, ports: Port[]): string =>
    `apiVersion: lockgate.dev/v1alpha1\nkind: MeshService\nmetadata: { name: ${name}, namespace: shop }\nspec:\n  ports: ${JSON.stringify(ports)}`;
  return [
    `apiVersion: lockgate.dev/v1alpha1\nkind: Mesh\nmetadata: { name: default }\nspec: { trustDomain: ${TRUST_DOMAIN}, defaultAccess: ${opts.defaultAccess ?? 'allow'}, mtls: strict }`,
    svc('orders', [{ name: 'http', port: 80, protocol: 'http' }]),
    svc('inventory', opts.inventoryPorts),
    ...(opts.extra ? [opts.extra] : []),
  ].join('\n---\n');
}

/** orders' sidecar calling inventory's sidecar in front of `appUrl`. */
async function pair(mesh: TestMesh, config: string, appUrl: string, ordersApp = 'http://127.0.0.1:9') {
  const inv = await mesh.workload('shop', 'inventory');
  const ord = await mesh.workload('shop', 'orders');
  const invSidecar = await mesh.sidecar(inv, 'shop/inventory', appUrl, mesh.snapshot({ namespace: 'shop', service: 'inventory' }, config));
  const ordSidecar = await mesh.sidecar(
    ord,
    'shop/orders',
    ordersApp,
    mesh.snapshot({ namespace: 'shop', service: 'orders' }, config, { 'shop/inventory': [endpoint('shop', 'inventory', invSidecar.ports.inbound)] }),
  );
  return { invSidecar, ordSidecar };
}

/** A gRPC message frame: uncompressed flag, 4-byte length, payload. */
const frame = (payload: string): Buffer => {
  const p = Buffer.from(payload);
  const b = Buffer.alloc(5 + p.length);
  b.writeUInt32BE(p.length, 1);
  p.copy(b, 5);
  return b;
};

interface GrpcApp {
  url: string;
  /** The calls seen: path, `te` and `grpc-timeout` as they reached the app. */
  seen: Array<{ path: string; te: string | undefined; timeout: string | undefined }>;
  close(): Promise<void>;
}

/** An h2c gRPC-like server: Get answers with a message and grpc-status 0, Missing with 5, Slow after 3 s. */
async function startGrpcApp(): Promise<GrpcApp> {
  const seen: GrpcApp['seen'] = [];
  const timers = new Set<NodeJS.Timeout>();
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    const path = String(headers[':path']);
    seen.push({ path, te: headers.te as string | undefined, timeout: headers['grpc-timeout'] as string | undefined });
    stream.on('error', () => {});
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      const answer = (status: number, message: string, body?: string): void => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': String(status), ...(message ? { 'grpc-message': message } : {}) }));
        if (body !== undefined) stream.write(frame(body));
        stream.end();
      };
      const req = Buffer.concat(chunks).subarray(5).toString();
      if (path === '/inventory.Inventory/Get') answer(0, '', `item:${req}`);
      else if (path === '/inventory.Inventory/Missing') answer(5, 'item not found');
      else if (path === '/inventory.Inventory/Slow') {
        const t = setTimeout(() => {
          timers.delete(t);
          answer(0, '', 'late');
        }, 3000);
        timers.add(t);
        stream.on('close', () => clearTimeout(t));
      } else answer(12, 'unknown method');
    });
  });
  const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((r) => {
        for (const t of timers) clearTimeout(t);
        server.close(() => r());
        // Sessions the sidecar keeps alive would hold close() open.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}

interface GrpcResult {
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders | null;
  body: Buffer;
}

function grpcCall(client: http2.ClientHttp2Session, path: string, message: string, extra: Record<string, string> = {}): Promise<GrpcResult> {
  return new Promise((resolve, reject) => {
    const req = client.request({ ':method': 'POST', ':path': path, ':authority': 'inventory', 'content-type': 'application/grpc', te: 'trailers', ...extra });
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | null = null;
    const chunks: Buffer[] = [];
    req.on('response', (h) => (headers = h));
    req.on('trailers', (t) => (trailers = t));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve({ headers, trailers, body: Buffer.concat(chunks) }));
    req.on('error', reject);
    req.setTimeout(10_000, () => req.close(http2.constants.NGHTTP2_CANCEL));
    req.end(frame(message));
  });
}

const GRPC_PORTS: Port[] = [{ name: 'grpc', port: 50051, protocol: 'grpc' }];

test('gRPC end to end: h2c to the outbound sidecar, h2 over mTLS between sidecars, h2c to the app; trailers, statuses and grpc-timeout', { timeout: 60_000 }, async () => {
  const mesh = await TestMesh.create();
  const app = await startGrpcApp();
  let client: http2.ClientHttp2Session | undefined;
  try {
    const { ordSidecar } = await pair(mesh, yaml({ inventoryPorts: GRPC_PORTS }), app.url);
    client = http2.connect(`http://127.0.0.1:${ordSidecar.ports.outbound}`);
    client.on('error', () => {});

    const ok = await grpcCall(client, '/inventory.Inventory/Get', 'sku-7');
    assert.equal(ok.headers[':status'], 200);
    assert.equal(ok.headers['content-type'], 'application/grpc');
    assert.equal(ok.body.subarray(5).toString(), 'item:sku-7');
    assert.equal(ok.trailers?.['grpc-status'], '0', `trailers: ${JSON.stringify(ok.trailers)}`);
    assert.equal(app.seen[0].te, 'trailers', 'te: trailers reaches the app');

    const missing = await grpcCall(client, '/inventory.Inventory/Missing', 'sku-0');
    assert.equal(missing.trailers?.['grpc-status'], '5');
    assert.equal(missing.trailers?.['grpc-message'], 'item not found');

    // grpc-timeout: the sidecar answers trailers-only DEADLINE_EXCEEDED (4) instead of waiting 3 s for the app.
    const t0 = Date.now();
    const slow = await grpcCall(client, '/inventory.Inventory/Slow', 'x', { 'grpc-timeout': '200m' });
    const took = Date.now() - t0;
    assert.equal(slow.headers[':status'], 200);
    assert.equal(slow.headers['grpc-status'], '4', `headers: ${JSON.stringify(slow.headers)}`);
    assert.equal(slow.body.length, 0, 'trailers-only: no body');
    assert.ok(took >= 150 && took < 2500, `answered after ${took} ms`);
    assert.equal(app.seen.find((s) => s.path.endsWith('/Slow'))?.timeout !== undefined, true, 'the deadline travels to the app');
  } finally {
    client?.close();
    await mesh.close();
    await app.close();
  }
});

test('gRPC: gateway-made errors through the mesh are trailers-only with grpc-status (denied, no endpoints)', { timeout: 60_000 }, async () => {
  const mesh = await TestMesh.create();
  const app = await startGrpcApp();
  let client: http2.ClientHttp2Session | undefined;
  try {
    const deny = `apiVersion: lockgate.dev/v1alpha1\nkind: AccessPolicy\nmetadata: { name: no-missing, namespace: shop }\nspec:\n  target: { service: inventory }\n  deny:\n    - paths: ["/inventory.Inventory/Missing"]`;
    const config = yaml({ inventoryPorts: GRPC_PORTS, extra: deny });
    const { ordSidecar } = await pair(mesh, config, app.url);
    client = http2.connect(`http://127.0.0.1:${ordSidecar.ports.outbound}`);
    client.on('error', () => {});
    const denied = await grpcCall(client, '/inventory.Inventory/Missing', 'x');
    assert.equal(denied.headers[':status'], 200);
    assert.equal(denied.headers['grpc-status'], '7', `PERMISSION_DENIED: ${JSON.stringify(denied.headers)}`);
    assert.match(String(denied.headers['grpc-message']), /denied/i);
    assert.equal(app.seen.length, 0, 'a denied call never reaches the app');

    // A caller whose snapshot lists no endpoint of inventory: UNAVAILABLE (14), from its own sidecar.
    const lonely = await mesh.workload('shop', 'orders');
    const s = await mesh.sidecar(lonely, 'shop/orders', 'http://127.0.0.1:9', mesh.snapshot({ namespace: 'shop', service: 'orders' }, config));
    const c2 = http2.connect(`http://127.0.0.1:${s.ports.outbound}`);
    c2.on('error', () => {});
    try {
      const none = await grpcCall(c2, '/inventory.Inventory/Get', 'x');
      assert.equal(none.headers[':status'], 200);
      assert.equal(none.headers['grpc-status'], '14', `UNAVAILABLE: ${JSON.stringify(none.headers)}`);
    } finally {
      c2.close();
    }
  } finally {
    client?.close();
    await mesh.close();
    await app.close();
  }
});

test('HTTP/1.1 and h2c plain HTTP on an http port keep working through the sidecars', { timeout: 60_000 }, async () => {
  const mesh = await TestMesh.create();
  const app = await startUpstream();
  let client: http2.ClientHttp2Session | undefined;
  try {
    const { ordSidecar } = await pair(mesh, yaml({ inventoryPorts: [{ name: 'http', port: 80, protocol: 'http' }] }), app.url);
    const out = `http://127.0.0.1:${ordSidecar.ports.outbound}`;
    const { request } = await import('undici');
    const h1 = await request(`${out}/items/1`, { headers: { host: 'inventory' } });
    assert.equal(h1.statusCode, 200);
    assert.equal(((await h1.body.json()) as { url: string }).url, '/items/1');

    client = http2.connect(out);
    client.on('error', () => {});
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = client!.request({ ':path': '/items/2', ':authority': 'inventory' });
      let status = 0;
      let body = '';
      req.on('response', (h) => (status = Number(h[':status'])));
      req.setEncoding('utf8');
      req.on('data', (c: string) => (body += c));
      req.on('end', () => resolve({ status, body }));
      req.on('error', reject);
      req.end();
    });
    assert.equal(r.status, 200);
    assert.equal((JSON.parse(r.body) as { url: string }).url, '/items/2');
    assert.equal(app.seen.length, 2);
  } finally {
    client?.close();
    await mesh.close();
    await app.close();
  }
});

/** One WebSocket frame (FIN, opcode), masked when sent by a client; payloads under 126 bytes. */
function wsFrame(opcode: number, payload: Buffer, mask: boolean): Buffer {
  const head = Buffer.from([0x80 | opcode, (mask ? 0x80 : 0) | payload.length]);
  if (!mask) return Buffer.concat([head, payload]);
  const key = randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ key[i % 4]));
  return Buffer.concat([head, key, masked]);
}

/** Parses one complete frame from `buf` (payloads under 126 bytes), or null while incomplete. */
function readFrame(buf: Buffer): { opcode: number; payload: Buffer; rest: Buffer } | null {
  if (buf.length < 2) return null;
  const masked = (buf[1] & 0x80) !== 0;
  const len = buf[1] & 0x7f;
  const start = 2 + (masked ? 4 : 0);
  if (buf.length < start + len) return null;
  let payload = buf.subarray(start, start + len);
  if (masked) {
    const key = buf.subarray(2, 6);
    payload = Buffer.from(payload.map((b, i) => b ^ key[i % 4]));
  }
  return { opcode: buf[0] & 0x0f, payload, rest: buf.subarray(start + len) };
}

/** An app on a Unix socket: JSON echo of each request, and a WebSocket echo server on /ws. */
async function startUnixApp(path: string): Promise<{ seen: string[]; upgradeIds: unknown[]; close(): Promise<void> }> {
  const seen: string[] = [];
  const upgradeIds: unknown[] = [];
  const sockets = new Set<Duplex>();
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    const body = JSON.stringify({ url: req.url, host: req.headers.host, client: req.headers['x-lockgate-client-id'] });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    seen.push(`UPGRADE ${req.url}`);
    upgradeIds.push(req.headers['x-request-id']);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
    let buf = head;
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      for (let f = readFrame(buf); f !== null; f = readFrame(buf)) {
        buf = f.rest;
        if (f.opcode === 0x8) return void socket.end(wsFrame(0x8, Buffer.alloc(0), false));
        socket.write(wsFrame(f.opcode, Buffer.from(`echo:${f.payload.toString()}`), false));
      }
    };
    socket.on('data', onData);
    if (head.length > 0) onData(Buffer.alloc(0));
  });
  await new Promise<void>((r) => server.listen(path, () => r()));
  return {
    seen,
    upgradeIds,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Opens a WebSocket through `connect` with Host `host`, sends one text message, returns the handshake status and the echo. */
function websocketEcho(connect: () => net.Socket, host: string, path: string, text: string): Promise<{ status: string; head: string; echo: string }> {
  return new Promise((resolve, reject) => {
    const c = connect();
    const key = randomBytes(16).toString('base64');
    let buf = Buffer.alloc(0);
    let status = '';
    let head = '';
    c.setTimeout(5000, () => c.destroy(new Error('websocket echo timed out')));
    c.on('error', reject);
    c.on('close', () => reject(new Error(`closed early: ${status || buf.toString('latin1').slice(0, 80)}`)));
    c.write(`GET ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: ${key}\r\n\r\n`);
    c.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (status === '') {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        status = buf.subarray(0, buf.indexOf('\r\n')).toString('latin1');
        head = buf.subarray(0, end).toString('latin1');
        const expected = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
        if (!buf.subarray(0, end).toString('latin1').toLowerCase().includes(`sec-websocket-accept: ${expected.toLowerCase()}`)) {
          return reject(new Error(`bad handshake: ${buf.subarray(0, end).toString('latin1')}`));
        }
        buf = buf.subarray(end + 4);
        c.write(wsFrame(0x1, Buffer.from(text), true));
      }
      const f = readFrame(buf);
      if (f !== null) {
        c.removeAllListeners('close');
        c.destroy();
        resolve({ status, head, echo: f.payload.toString() });
      }
    });
  });
}

test('Unix sockets between app and sidecar: the app behind unix:PATH, the outbound listener on a 0600 socket; WebSocket through both sidecars', { timeout: 60_000 }, async () => {
  const mesh = await TestMesh.create();
  const dir = mkdtempSync(join(tmpdir(), 'lg-sock-'));
  const appPath = join(dir, 'app.sock');
  const outPath = join(dir, 'out.sock');
  const app = await startUnixApp(appPath);
  let caller: Sidecar | undefined;
  let pool: Pool | undefined;
  try {
    const config = yaml({ inventoryPorts: [{ name: 'http', port: 80, protocol: 'http' }] });
    const inv = await mesh.workload('shop', 'inventory');
    const invSidecar = await mesh.sidecar(inv, 'shop/inventory', `unix:${appPath}`, mesh.snapshot({ namespace: 'shop', service: 'inventory' }, config));
    // A stale socket file, as a process that died leaves one (close() removes its own file: rename it away first).
    const leftover = net.createServer();
    await new Promise<void>((r) => leftover.listen(join(dir, 'left.sock'), () => r()));
    renameSync(join(dir, 'left.sock'), outPath);
    await new Promise<void>((r) => leftover.close(() => r()));
    assert.ok(lstatSync(outPath).isSocket(), 'a stale socket file is in place');

    const ord = await mesh.workload('shop', 'orders');
    caller = new Sidecar({
      service: 'shop/orders',
      spiffeId: ord.spiffeId,
      appUrl: 'http://127.0.0.1:9',
      certDir: ord.dir,
      inbound: { address: '127.0.0.1', port: 0 },
      outbound: { address: `unix:${outPath}`, port: 0 },
      accessLog: 'off',
    });
    const r = await caller.apply(mesh.snapshot({ namespace: 'shop', service: 'orders' }, config, { 'shop/inventory': [endpoint('shop', 'inventory', invSidecar.ports.inbound)] }));
    assert.deepEqual(r, { ok: true });
    assert.equal(lstatSync(outPath).mode & 0o777, 0o600, 'the outbound socket is owner-only');

    pool = new Pool('http://localhost', { socketPath: outPath });
    const res = await pool.request({ path: '/items/3', method: 'GET', headers: { host: 'inventory' } });
    assert.equal(res.statusCode, 200);
    const body = (await res.body.json()) as { url: string; host: string; client: string };
    assert.equal(body.url, '/items/3');
    assert.equal(body.client, 'spiffe://lockgate.local/ns/shop/sa/orders', 'the app behind its Unix socket sees the verified caller');
    assert.deepEqual(app.seen, ['GET /items/3']);

    // A second sidecar may not take a live socket's path.
    const again = new Sidecar({
      service: 'shop/orders', spiffeId: ord.spiffeId, appUrl: 'http://127.0.0.1:9', certDir: ord.dir,
      inbound: { address: '127.0.0.1', port: 0 }, outbound: { address: `unix:${outPath}`, port: 0 }, accessLog: 'off',
    });
    await assert.rejects(again.apply(mesh.snapshot({ namespace: 'shop', service: 'orders' }, config)), /in use/);
    await again.close();
    assert.ok(lstatSync(outPath).isSocket(), 'the live socket is left alone');

    // WebSocket: app → its sidecar's Unix socket → mTLS → inventory's sidecar → inventory's Unix socket.
    const ws = await websocketEcho(() => net.connect({ path: outPath }), 'inventory', '/ws', 'hello');
    assert.match(ws.status, /^HTTP\/1\.1 101/);
    assert.equal(ws.echo, 'echo:hello');
    assert.ok(app.seen.includes('UPGRADE /ws'));
    // One request id for the upgrade through both sidecars: inventory's adopted orders', and the 101 carries it once.
    const ids = [...ws.head.matchAll(/^x-request-id: (.*)$/gim)].map((m) => m[1]);
    assert.equal(ids.length, 1, ws.head);
    assert.equal(app.upgradeIds.at(-1), ids[0]);
  } finally {
    await pool?.close();
    await caller?.close();
    await mesh.close();
    await app.close();
    rmSync(dir, { recursive: true, force: true });
  }
  assert.throws(() => lstatSync(outPath), /ENOENT/, 'the socket file is removed on close');
});

/** A "database": echoes bytes; answers `bye` to a half-close; resets the connection on `die`. */
async function startEchoServer(): Promise<{ port: number; accepted: () => number; close(): Promise<void> }> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.on('data', (d: Buffer) => (d.toString() === 'die' ? s.resetAndDestroy() : s.write(d)));
    s.on('end', () => s.end('bye'));
  });
  const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
  return {
    port,
    accepted: () => accepted,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

interface ConnectResult {
  status: number;
  /** The error body (non-200), or '' */
  body: string;
  socket: net.Socket;
  /** Bytes received after the response head. */
  rest: Buffer;
}

/** Sends `CONNECT target` on a fresh connection to `port`; resolves with the response head (and the body when refused). */
function connectVia(port: number, target: string): Promise<ConnectResult> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    let buf = Buffer.alloc(0);
    s.setTimeout(5000, () => s.destroy(new Error('CONNECT timed out')));
    s.on('error', reject);
    s.write(`CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\n`);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(buf.toString('latin1'))?.[1] ?? 0);
      if (status === 200) {
        s.off('data', onData);
        s.setTimeout(0);
        s.pause();
        return resolve({ status, body: '', socket: s, rest: buf.subarray(end + 4) });
      }
      s.once('end', () => resolve({ status, body: buf.subarray(end + 4).toString(), socket: s, rest: Buffer.alloc(0) }));
    };
    s.on('data', onData);
  });
}

/** Rejects after `ms` (naming the step), so a stuck step fails the test and its finally still closes everything. */
function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

/** Writes `text` and reads until `want` bytes came back (or the stream ends, or 10 s passed). */
function exchange(s: net.Socket, text: string, want: number): Promise<string> {
  return new Promise((resolve) => {
    let got = '';
    const timer = setTimeout(() => done(), 10_000);
    const onData = (d: Buffer): void => {
      got += d.toString();
      if (got.length >= want) done();
    };
    const done = (): void => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('end', done);
      s.pause();
      resolve(got);
    };
    s.on('data', onData);
    s.once('end', done);
    s.resume();
    if (text !== '') s.write(text);
  });
}

test('opaque TCP: CONNECT to a declared tcp port is tunnelled over mTLS to the app port; half-close, errors, refusals', { timeout: 90_000 }, async () => {
  const mesh = await TestMesh.create();
  const db = await startEchoServer();
  const deniedDb = await startEchoServer();
  const http1 = await startUpstream();
  // A port nobody listens on: the callee's sidecar cannot connect.
  const probe = net.createServer();
  const deadPort = await new Promise<number>((r) => probe.listen(0, '127.0.0.1', () => r((probe.address() as AddressInfo).port)));
  await new Promise<void>((r) => probe.close(() => r()));
  const open: net.Socket[] = [];
  try {
    const policy = `apiVersion: lockgate.dev/v1alpha1\nkind: AccessPolicy\nmetadata: { name: no-admin-db, namespace: shop }\nspec:\n  target: { service: inventory }\n  deny:\n    - sources: [orders]\n      methods: [CONNECT]\n      ports: [${deniedDb.port}]`;
    const config = yaml({
      inventoryPorts: [
        { name: 'http', port: 80, protocol: 'http' },
        { name: 'db', port: db.port, protocol: 'tcp' },
        { name: 'admin-db', port: deniedDb.port, protocol: 'tcp' },
        { name: 'dead', port: deadPort, protocol: 'tcp' },
      ],
      extra: policy,
    });
    const { ordSidecar } = await pair(mesh, config, http1.url);
    const out = ordSidecar.ports.outbound;

    const t = await connectVia(out, `inventory:${db.port}`);
    open.push(t.socket);
    assert.equal(t.status, 200);
    assert.equal(await exchange(t.socket, 'ping', 4), 'ping', 'bytes flow both ways');
    assert.equal(await exchange(t.socket, 'x'.repeat(100_000), 100_000), 'x'.repeat(100_000), 'a larger stream with backpressure');
    // Half-close: the app still answers after our FIN, then closes; both ends see it.
    const closed = new Promise<void>((r) => t.socket.once('close', () => r()));
    t.socket.end();
    assert.equal(await exchange(t.socket, '', 3).catch(() => ''), 'bye', 'the app answered the half-close');
    await bounded(closed, 10_000, 'the tunnel closing after the half-close');
    assert.equal(db.accepted(), 1);

    // An error on the app side (reset) closes the tunnel to the caller too.
    const e = await connectVia(out, `inventory.shop:${db.port}`);
    open.push(e.socket);
    assert.equal(e.status, 200, 'the namespaced name works too');
    const gone = new Promise<void>((r) => e.socket.once('close', () => r()));
    e.socket.resume();
    e.socket.write('die');
    await bounded(gone, 10_000, 'the tunnel closing after the app reset');

    const notTcp = await connectVia(out, 'inventory:80');
    assert.equal(notTcp.status, 403, 'an http port is not opaque');
    assert.match(notTcp.body, /not declared tcp/);
    const undeclared = await connectVia(out, `inventory:${deadPort === 1 ? 2 : 1}`);
    assert.equal(undeclared.status, 403);
    const unknown = await connectVia(out, 'billing:5432');
    assert.equal(unknown.status, 404);
    assert.match(unknown.body, /"statusCode":404/);

    const denied = await connectVia(out, `inventory:${deniedDb.port}`);
    assert.equal(denied.status, 403, 'the callee AccessPolicy denies CONNECT on this port');
    assert.match(denied.body, /Access denied by shop\/no-admin-db/);
    assert.equal(deniedDb.accepted(), 0, 'a denied tunnel never reaches the app');

    const dead = await connectVia(out, `inventory:${deadPort}`);
    assert.equal(dead.status, 502, 'the app port refuses: 502');

    // Plain HTTP on the same outbound listener is unaffected by the CONNECT check.
    const { request } = await import('undici');
    const r = await request(`http://127.0.0.1:${out}/x`, { headers: { host: 'inventory' } });
    assert.equal(r.statusCode, 200);
    await r.body.dump();
  } finally {
    for (const s of open) s.destroy();
    await mesh.close();
    await Promise.all([db.close(), deniedDb.close(), http1.close()]);
  }
});

test('opaque TCP: the caller checks the callee SPIFFE ID; an endpoint with another identity gets no tunnel', { timeout: 60_000 }, async () => {
  const mesh = await TestMesh.create();
  const db = await startEchoServer();
  try {
    const config = yaml({ inventoryPorts: [{ name: 'db', port: db.port, protocol: 'tcp' }] });
    // "inventory"'s endpoint is really a sidecar with orders' identity in front of the database.
    const imposter = await mesh.workload('shop', 'orders');
    const imp = await mesh.sidecar(imposter, 'shop/orders', 'http://127.0.0.1:9', mesh.snapshot({ namespace: 'shop', service: 'orders' }, config));
    const caller = await mesh.workload('shop', 'orders');
    const c = await mesh.sidecar(caller, 'shop/orders', 'http://127.0.0.1:9', mesh.snapshot({ namespace: 'shop', service: 'orders' }, config, { 'shop/inventory': [endpoint('shop', 'inventory', imp.ports.inbound)] }));
    const t = await connectVia(c.ports.outbound, `inventory:${db.port}`);
    assert.equal(t.status, 502, `status ${t.status}: ${t.body}`);
    assert.equal(db.accepted(), 0);
  } finally {
    await mesh.close();
    await db.close();
  }
});

test('hop limit: a routing loop through the sidecars ends in 508 Loop Detected, not a hang', { timeout: 60_000 }, async () => {
  const mesh = await TestMesh.create();
  const dir = mkdtempSync(join(tmpdir(), 'lg-loop-'));
  const loopSock = join(dir, 'out.sock');
  const sidecars: Sidecar[] = [];
  let pool: Pool | undefined;
  try {
    const config = yaml({ inventoryPorts: [{ name: 'http', port: 80, protocol: 'http' }] });
    // 1. One sidecar whose app is its own outbound socket, and whose service's endpoint is its own inbound.
    const inv = await mesh.workload('shop', 'inventory');
    const self = new Sidecar({
      service: 'shop/inventory', spiffeId: inv.spiffeId, appUrl: `unix:${loopSock}`, certDir: inv.dir,
      inbound: { address: '127.0.0.1', port: 0 }, outbound: { address: `unix:${loopSock}`, port: 0 }, accessLog: 'off',
    });
    sidecars.push(self);
    assert.deepEqual(await self.apply(mesh.snapshot({ namespace: 'shop', service: 'inventory' }, config)), { ok: true });
    const loop = mesh.snapshot({ namespace: 'shop', service: 'inventory' }, config, { 'shop/inventory': [endpoint('shop', 'inventory', self.ports.inbound)] }, 2);
    assert.deepEqual(await self.apply(loop), { ok: true });
    pool = new Pool('http://localhost', { socketPath: loopSock });
    const t0 = Date.now();
    const r = await pool.request({ path: '/x', method: 'GET', headers: { host: 'inventory' }, headersTimeout: 10_000 });
    const body = await r.body.text();
    assert.equal(r.statusCode, 508, body);
    assert.match(body, /Loop detected/);
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);

    // 2. Two sidecars pointing at each other: inventory's app is orders' outbound, which routes inventory back to it.
    const ord = await mesh.workload('shop', 'orders');
    const orders = await mesh.sidecar(ord, 'shop/orders', 'http://127.0.0.1:9', mesh.snapshot({ namespace: 'shop', service: 'orders' }, config));
    const inv2 = await mesh.workload('shop', 'inventory');
    const inventory = await mesh.sidecar(inv2, 'shop/inventory', `http://127.0.0.1:${orders.ports.outbound}`, mesh.snapshot({ namespace: 'shop', service: 'inventory' }, config));
    const back = mesh.snapshot({ namespace: 'shop', service: 'orders' }, config, { 'shop/inventory': [endpoint('shop', 'inventory', inventory.ports.inbound)] }, 2);
    assert.deepEqual(await orders.apply(back), { ok: true });
    const { request } = await import('undici');
    const t1 = Date.now();
    const r2 = await request(`http://127.0.0.1:${orders.ports.outbound}/y`, { headers: { host: 'inventory' }, headersTimeout: 10_000 });
    const body2 = await r2.body.text();
    assert.equal(r2.statusCode, 508, body2);
    assert.match(body2, /Loop detected/);
    assert.ok(Date.now() - t1 < 5000, `took ${Date.now() - t1} ms`);
  } finally {
    await pool?.close();
    await Promise.all(sidecars.map((s) => s.close()));
    await mesh.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

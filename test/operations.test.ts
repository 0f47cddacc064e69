// Cross-process: operating a running gateway — hot reload under load, rejected reloads, SIGHUP, graceful drain, metrics across workers, WebSocket pass-through.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { request } from 'undici';
import { startGateway, type GatewayProcess } from './helpers/gateway-process.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { runLoad, countOf } from './helpers/load.ts';

const HEADER = `apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  admin: { address: 127.0.0.1, port: 0 }
  accessLog: { enabled: false }
`;

/** The Gateway, an Api `/svc` on Backend `svc` (at `svcUrl`) and, when given, an Api `/ws` on Backend `ws`. */
function config(svcUrl: string, wsUrl?: string): string {
  let yaml = `${HEADER}---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: svc }
spec:
  url: ${svcUrl}
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: svc }
spec:
  path: /svc
  backend: svc
`;
  if (wsUrl) {
    yaml += `---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: ws }
spec:
  url: ${wsUrl}
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: ws }
spec:
  path: /ws
  backend: ws
`;
  }
  return yaml;
}

function named(name: string, delayMs = 0) {
  return (_req: http.IncomingMessage, res: http.ServerResponse): void => {
    const send = (): void => {
      if (res.destroyed) return;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': name.length });
      res.end(name);
    };
    if (delayMs > 0) setTimeout(send, delayMs);
    else send();
  };
}

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function fetchText(url: string): Promise<{ status: number; text: string }> {
  const res = await request(url);
  return { status: res.statusCode, text: await res.body.text() };
}

async function configVersion(g: GatewayProcess): Promise<string> {
  const res = await request(`http://127.0.0.1:${g.admin}/config`);
  return ((await res.body.json()) as { version: string }).version;
}

/** Resolves with the error code of a TCP connect to `port` ('connected' when it was accepted). */
function tryConnect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve('connected');
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

// One watched gateway for WebSocket, hot reload and rejected reload, in that order.
let u: Upstream[];
let wsUp: Upstream;
let gw: GatewayProcess;
let origin: string;
const wsUpgrades: http.IncomingMessage[] = [];

before(async () => {
  u = await Promise.all([0, 1, 2, 3].map((i) => startUpstream(named(`u${i}`))));
  wsUp = await startUpstream();
  wsUp.server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    wsUpgrades.push(req);
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key']}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.write('hello from upstream|');
    if (head.length) socket.write(head);
    socket.pipe(socket); // echo every byte back
    socket.on('error', () => socket.destroy());
  });
  gw = await startGateway(config(u[0].url, wsUp.url), { workers: 1 });
  origin = `http://127.0.0.1:${gw.ports.http}`;
});

after(async () => {
  await gw?.stop();
  await Promise.all([...(u ?? []), wsUp].map((x) => x?.close()));
});

test('WebSocket upgrade passes through: 101 comes back and bytes flow both ways', async () => {
  const key = Buffer.from('0123456789abcdef').toString('base64');
  const sock = net.connect(gw.ports.http, '127.0.0.1');
  try {
    await once(sock, 'connect');
    let got = Buffer.alloc(0);
    sock.on('data', (c: Buffer) => (got = Buffer.concat([got, c])));
    sock.write(
      `GET /ws/chat?room=1 HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
    await waitFor(() => got.includes('hello from upstream|'), 3000, `101 and greeting; got ${JSON.stringify(got.toString())}`);
    const text = got.toString('latin1');
    const headEnd = text.indexOf('\r\n\r\n');
    const head = text.slice(0, headEnd).split('\r\n');
    assert.match(head[0], /^HTTP\/1\.1 101 /);
    const headers = Object.fromEntries(head.slice(1).map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
    assert.equal(headers['sec-websocket-accept'], createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64'));
    assert.equal(headers.upgrade?.toLowerCase(), 'websocket');
    assert.equal(text.slice(headEnd + 4), 'hello from upstream|', 'upstream → client bytes');

    const payload = Buffer.from([0x81, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6f, 0x68, 0x6e]); // binary-safe client → upstream bytes
    const mark = got.length;
    sock.write(payload);
    await waitFor(() => got.length >= mark + payload.length, 3000, 'echoed bytes');
    assert.deepEqual(got.subarray(mark), payload, 'client → upstream → client bytes intact');

    assert.equal(wsUpgrades.length, 1);
    assert.equal(wsUpgrades[0].url, '/ws/chat?room=1');
    assert.equal(wsUpgrades[0].headers['sec-websocket-key'], key);
    assert.equal(wsUpgrades[0].headers['x-forwarded-for'], '127.0.0.1');
  } finally {
    sock.destroy();
  }
});

test('hot reload under load: 3 config rewrites change the backend with zero failed requests', async () => {
  const v0 = await configVersion(gw);
  const servedBy = new Map<string, number>();
  const stop = new AbortController();
  const load = runLoad({
    origin,
    concurrency: 20,
    count: 6000,
    durationMs: 20_000,
    signal: stop.signal,
    request: (i) => ({ path: `/svc/${i}` }),
    onResponse: (_i, status, _h, body) => {
      if (status === 200) servedBy.set(body, (servedBy.get(body) ?? 0) + 1);
    },
  });
  try {
    await waitFor(() => (servedBy.get('u0') ?? 0) >= 100, 5000, 'load on the first backend');
    for (const next of [1, 2, 3]) {
      gw.writeConfig(config(u[next].url, wsUp.url));
      await waitFor(() => (servedBy.get(`u${next}`) ?? 0) >= 50, 5000, `load reaching u${next} after rewrite ${next}`);
    }
    // Keep the load going until it has been a few thousand requests.
    const served = (): number => [...servedBy.values()].reduce((x, y) => x + y, 0);
    await waitFor(() => served() >= 2500, 15_000, 'a few thousand requests');
  } finally {
    stop.abort();
  }
  const r = await load;
  assert.deepEqual(r.errors, {}, `errors under reload: ${JSON.stringify(r.errors)}`);
  assert.deepEqual(Object.keys(r.statuses), ['200'], `statuses under reload: ${JSON.stringify(r)}`);
  assert.ok(r.sent >= 2500 && r.sent <= 6000, `sent ${r.sent}`);
  for (const name of ['u0', 'u1', 'u2', 'u3']) assert.ok((servedBy.get(name) ?? 0) > 0, `${name} served during the load: ${JSON.stringify([...servedBy])}`);

  // After the last reload, new requests go to the new backend only.
  const before = u.map((x) => x.seen.length);
  for (let i = 0; i < 20; i++) assert.deepEqual(await fetchText(`${origin}/svc/after-${i}`), { status: 200, text: 'u3' });
  assert.deepEqual(u.map((x, i) => x.seen.length - before[i]), [0, 0, 0, 20]);
  assert.notEqual(await configVersion(gw), v0);
});

test('a bad config on reload is rejected with file:line:col on stderr, and the old config keeps serving', async () => {
  const good = config(u[3].url, wsUp.url);
  assert.deepEqual(await fetchText(`${origin}/svc/x`), { status: 200, text: 'u3' });
  const version = await configVersion(gw);
  const lines = good.split('\n');
  const at = lines.indexOf('  accessLog: { enabled: false }');
  assert.ok(at > 0);
  lines.splice(at + 1, 0, '  maxHops: 999');
  const badLine = at + 2; // 1-based line of the inserted field
  const errBefore = gw.stderr.join('').length;
  gw.writeConfig(lines.join('\n'));
  const escaped = gw.configFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const problem = new RegExp(`${escaped}:${badLine}:\\d+: [^"]*maxHops`);
  await waitFor(() => problem.test(gw.stderr.join('').slice(errBefore)), 5000, `a problem at ${gw.configFile}:${badLine} on stderr; got ${gw.stderr.join('').slice(errBefore)}`);

  for (let i = 0; i < 10; i++) assert.deepEqual(await fetchText(`${origin}/svc/still-${i}`), { status: 200, text: 'u3' });
  assert.equal(await configVersion(gw), version, 'the running version is unchanged');

  // A good config afterwards is applied as usual.
  gw.writeConfig(config(u[0].url, wsUp.url));
  await waitFor(async () => (await fetchText(`${origin}/svc/fixed`)).text === 'u0', 5000, 'the next good config');
});

test('SIGHUP reloads the config when file watching is off', async () => {
  const [a, b] = await Promise.all([startUpstream(named('a')), startUpstream(named('b'))]);
  const g = await startGateway(config(a.url), { workers: 1, args: ['--no-watch'] });
  try {
    const base = `http://127.0.0.1:${g.ports.http}`;
    assert.equal((await fetchText(`${base}/svc/1`)).text, 'a');
    g.writeConfig(config(b.url));
    await sleep(500); // longer than the reload debounce: with --no-watch nothing may change yet
    assert.equal((await fetchText(`${base}/svc/2`)).text, 'a', 'no reload without SIGHUP');
    g.proc.kill('SIGHUP');
    await waitFor(async () => (await fetchText(`${base}/svc/3`)).text === 'b', 5000, 'the new backend after SIGHUP');
    assert.equal((await fetchText(`${base}/svc/4`)).text, 'b');
  } finally {
    await g.stop();
    await Promise.all([a.close(), b.close()]);
  }
});

test('SIGTERM drains: in-flight requests complete 200, new connections are refused, the process exits 0', async () => {
  const slow = await startUpstream(named('slow', 300));
  const g = await startGateway(config(slow.url), { workers: 1 });
  try {
    const port = g.ports.http;
    let loadDone = false;
    const load = runLoad({ origin: `http://127.0.0.1:${port}`, concurrency: 10, count: 10, request: (i) => ({ path: `/svc/${i}` }) }).finally(() => {
      loadDone = true;
    });
    await waitFor(() => slow.seen.length === 10, 3000, 'ten requests in flight at the upstream');
    const exited = once(g.proc, 'exit');
    g.proc.kill('SIGTERM');

    // While the ten are still in flight, the listener already refuses new connections and readiness is false.
    await waitFor(async () => (await tryConnect(port)) === 'ECONNREFUSED', 250, 'new connections refused during drain');
    const ready = await request(`http://127.0.0.1:${g.admin}/readyz`);
    await ready.body.dump();
    assert.equal(ready.statusCode, 503, 'not ready while draining');
    assert.equal(loadDone, false, 'the in-flight requests were still running');

    const r = await load;
    assert.deepEqual(r.errors, {});
    assert.equal(countOf(r, 200), 10, JSON.stringify(r.statuses));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<[string, null]>((r) => (timer = setTimeout(() => r(['no exit within 10 s', null]), 10_000)));
    const [code, signal] = (await Promise.race([exited, timeout]).finally(() => clearTimeout(timer))) as [number | string | null, unknown];
    assert.equal(code, 0, `exit code (signal ${String(signal)})`);
    assert.equal(await tryConnect(port), 'ECONNREFUSED');
  } finally {
    await g.stop();
    await slow.close();
  }
});

test('metrics: the same traffic gives the same lockgate_requests_total with 1 and 2 workers', async () => {
  const up = await startUpstream((req, res) => {
    const status = req.url === '/m/b' ? 404 : req.method === 'POST' ? 201 : 200;
    res.writeHead(status, { 'content-length': 2 });
    res.end('ok');
  });
  const yaml = `${HEADER}---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: m }
spec:
  url: ${up.url}
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: m }
spec:
  path: /m
  backend: m
  operations:
    - name: a
      methods: [GET]
      urlTemplate: /a
    - name: b
      methods: [GET]
      urlTemplate: /b
    - name: c
      methods: [POST]
      urlTemplate: /c
`;
  const gws = await Promise.all([startGateway(yaml, { workers: 1 }), startGateway(yaml, { workers: 2 })]);
  try {
    const totals: Array<Map<string, number>> = [];
    for (const g of gws) {
      // 120 × a (200), 60 × b (404 from the upstream), 30 × POST c (201), 20 × no route (404); a new connection each,
      // so that the kernel spreads them over the workers sharing the port.
      const plan = (i: number) =>
        i < 120 ? { path: '/m/a' } : i < 180 ? { path: '/m/b' } : i < 210 ? { path: '/m/c', method: 'POST', body: 'x' } : { path: '/nowhere' };
      const r = await runLoad({ origin: `http://127.0.0.1:${g.ports.http}`, concurrency: 8, count: 230, reset: true, request: plan });
      assert.deepEqual(r.errors, {});
      const text = await (await request(`http://127.0.0.1:${g.admin}/metrics`)).body.text();
      const series = new Map<string, number>();
      for (const line of text.split('\n')) {
        if (!line.startsWith('lockgate_requests_total{')) continue;
        const sp = line.lastIndexOf(' ');
        series.set(line.slice(0, sp), Number(line.slice(sp + 1)));
      }
      totals.push(series);
      assert.match(text, new RegExp(`^lockgate_workers ${g === gws[0] ? 1 : 2}$`, 'm'));
    }
    const expected = new Map([
      ['lockgate_requests_total{api="m",operation="a",backend="default/m",status="200"}', 120],
      ['lockgate_requests_total{api="m",operation="b",backend="default/m",status="404"}', 60],
      ['lockgate_requests_total{api="m",operation="c",backend="default/m",status="201"}', 30],
      ['lockgate_requests_total{api="",operation="",backend="",status="404"}', 20],
    ]);
    assert.deepEqual(totals[0], expected, '1 worker');
    assert.deepEqual(totals[1], expected, '2 workers');
  } finally {
    await Promise.all(gws.map((g) => g.stop()));
    await up.close();
  }
});

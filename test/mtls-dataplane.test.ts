// The data plane's mesh plumbing on loopback: mTLS listeners with SPIFFE peers, permissive mode, h2c sniffing,
// SPIFFE-checked upstreams, session tickets across CA changes, and certificate rotation under load.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';
import tls from 'node:tls';
import net, { type AddressInfo } from 'node:net';
import { writeFileSync } from 'node:fs';
import { parseConfigText, formatProblems } from '../src/model/load-config.ts';
import type { Config } from '../src/model/types.ts';
import { DataPlane } from '../src/app/data-plane.ts';
import { GatewayListener } from '../src/proxy/gateway-listener.ts';
import { buildRuntime, retireRuntime } from '../src/proxy/runtime.ts';
import type { DataPlaneState } from '../src/proxy/request-handler.ts';
import type { Exchange } from '../src/proxy/exchange.ts';
import { checkSpiffeServerIdentity } from '../src/proxy/peer-identity-check.ts';
import { requestEnd } from '../src/telemetry/channels.ts';
import { createMeshTestPki, type MeshLeaf, type MeshTestPki } from '../src/proxy/test-mesh-certs.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';

const TD = 'test.mesh';
const ORDERS = `spiffe://${TD}/ns/shop/sa/orders`;
const INVENTORY = `spiffe://${TD}/ns/shop/sa/inventory`;
const PAYMENTS = `spiffe://${TD}/ns/shop/sa/payments`;

let pki: MeshTestPki;
let foreign: MeshTestPki;
let up: Upstream;
/** The inbound listener's certificate (inventory), a good caller (orders), and bad callers. */
let inbound: MeshLeaf;
let caller: MeshLeaf;
let twoUris: MeshLeaf;
let noUri: MeshLeaf;
let wrongCa: MeshLeaf;

before(async () => {
  pki = await createMeshTestPki(TD);
  foreign = await createMeshTestPki(TD);
  up = await startUpstream();
  inbound = await pki.issue('inbound', { uris: [INVENTORY] });
  caller = await pki.issue('caller', { uris: [ORDERS] });
  twoUris = await pki.issue('two-uris', { uris: [ORDERS, PAYMENTS] });
  noUri = await pki.issue('no-uri', { dns: ['orders.shop.test'] });
  wrongCa = await foreign.issue('wrong-ca', { uris: [ORDERS] });
});

after(async () => {
  await up?.close();
  pki?.close();
  foreign?.close();
});

function parse(yaml: string): Config {
  const r = parseConfigText(yaml, 'test.yaml');
  if (!r.config) throw new Error(formatProblems(r.problems));
  return r.config;
}

/** A Gateway with the given listener lines, an Api `inventory` (a mesh inbound route) on Backend `up`, and extra documents. */
function configYaml(listeners: string, backend = `{ url: "${up.url}" }`, extra = ''): string {
  return `apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners:
${listeners}
  limits: { headerTimeout: 2s }
  admin: { address: 127.0.0.1, port: 0 }
  accessLog: { enabled: false }
---
apiVersion: lockgate.dev/v1alpha1
kind: MeshService
metadata: { name: inventory }
spec: {}
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: ${backend}
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: inventory }
spec: { path: /, backend: up, meshService: inventory }
${extra}`;
}

function mtlsListener(name: string, o: { plaintext?: boolean; protocol?: string; generation?: string; leaf?: MeshLeaf; certificates?: string } = {}): string {
  const leaf = o.leaf ?? inbound;
  return `    - name: ${name}
      address: 127.0.0.1
      port: 0
      protocol: ${o.protocol ?? 'https'}
      tls:
        certificates: ${o.certificates ?? `[{ certFile: "${leaf.certFile}", keyFile: "${leaf.keyFile}" }]`}
        clientCertificate: require
        clientCaFile: "${pki.bundleFile}"
        plaintext: ${o.plaintext === true}
        generation: "${o.generation ?? '1'}"`;
}

/** One listener of `config` run directly, so a test can read its counters; finished requests land in `exchanges`. */
async function startListener(config: Config, name: string) {
  const built = buildRuntime(config, undefined);
  if (!built.runtime) throw new Error(built.problems.join('\n'));
  const exchanges: Exchange[] = [];
  const state: DataPlaneState = { runtime: built.runtime, overloaded: false, draining: false, finish: (ex) => exchanges.push(ex), subscriptions: null };
  const spec = config.gateway.spec.listeners.find((l) => l.name === name)!;
  const listener = new GatewayListener(spec, config.gateway.spec.limits, state);
  const port = await listener.listen(0);
  return {
    listener,
    port,
    exchanges,
    close: async () => {
      await listener.drain(0);
      await retireRuntime(built.runtime!, undefined);
    },
  };
}

interface Reply {
  status: number;
  body: string;
  /** The TLS socket the reply came on (undefined for plaintext). */
  socket: tls.TLSSocket | undefined;
}

/** TLS options of a caller that verifies the listener as INVENTORY and presents `leaf`. */
function callerTls(leaf?: MeshLeaf) {
  return { ca: pki.rootPem, checkServerIdentity: checkSpiffeServerIdentity([INVENTORY]), ...(leaf ? { cert: leaf.certPem, key: leaf.keyPem } : {}) };
}

/**
 * A keep-alive agent for `leaf`. The TLS options live on the agent: passed per request, its checkServerIdentity
 * makes Node's agent drop the socket instead of keeping it.
 */
function callerAgent(leaf: MeshLeaf, maxSockets: number): https.Agent {
  return new https.Agent({ keepAlive: true, maxSockets, ...callerTls(leaf) });
}

/** HTTPS (HTTP/1.1) request as `leaf` on a new connection, or on `agent`'s; rejects on any transport error. */
function httpsGet(port: number, o: { leaf?: MeshLeaf; agent?: https.Agent; path?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port, path: o.path ?? '/x', ...(o.agent ? { agent: o.agent } : { agent: false, ...callerTls(o.leaf) }) },
      (res) => {
        let body = '';
        // Taken now: a keep-alive agent detaches the socket from the response at its end.
        const socket = res.socket as tls.TLSSocket;
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, socket }));
        res.on('error', reject);
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

function plainGet(port: number, path = '/x'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body, socket: undefined }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** One HTTP/2 request on a new session (h2c for http:, TLS with `leaf` for https:). */
async function h2Get(origin: string, o: { leaf?: MeshLeaf; path?: string; headers?: http2.OutgoingHttpHeaders; body?: string } = {}) {
  const session = http2.connect(origin, origin.startsWith('https:')
    ? { ca: pki.rootPem, checkServerIdentity: checkSpiffeServerIdentity([INVENTORY]), ...(o.leaf ? { cert: o.leaf.certPem, key: o.leaf.keyPem } : {}) }
    : {});
  session.on('error', () => {});
  try {
    return await new Promise<{ status: number; body: string; trailers: http2.IncomingHttpHeaders | null; headers: http2.IncomingHttpHeaders }>((resolve, reject) => {
      const stream = session.request({ ':path': o.path ?? '/x', ':method': o.body === undefined ? 'GET' : 'POST', ...o.headers });
      let body = '';
      let headers: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders | null = null;
      stream.setEncoding('utf8');
      stream.on('response', (h) => (headers = h));
      stream.on('trailers', (t) => (trailers = t));
      stream.on('data', (c: string) => (body += c));
      stream.on('end', () => {
        if (headers[':status'] === undefined) reject(new Error('the stream ended without a response'));
        else resolve({ status: Number(headers[':status']), body, trailers, headers });
      });
      stream.on('error', reject);
      // A session cut off (a refused TLS peer) closes the stream with no response and no error of its own.
      stream.on('close', () => reject(new Error(`stream closed without a response (code ${stream.rstCode})`)));
      stream.setTimeout(5000, () => stream.close(http2.constants.NGHTTP2_CANCEL));
      stream.end(o.body);
    });
  } finally {
    session.close();
  }
}

test('require: a caller with a good SVID is served and its SPIFFE ID reaches the Exchange; others are refused in or right after the handshake', async () => {
  const config = parse(configYaml(mtlsListener('inbound')));
  const g = await startListener(config, 'inbound');
  try {
    const before = up.seen.length;
    const ok = await httpsGet(g.port, { leaf: caller });
    assert.equal(ok.status, 200);
    assert.equal(g.exchanges.at(-1)?.peerId, ORDERS);
    const viaH2 = await h2Get(`https://127.0.0.1:${g.port}`, { leaf: caller });
    assert.equal(viaH2.status, 200);
    assert.equal(g.exchanges.at(-1)?.peerId, ORDERS);
    assert.equal(up.seen.length, before + 2);

    // No certificate, or one from another CA: the handshake fails (TLS 1.3 reports it on the first read).
    await assert.rejects(httpsGet(g.port));
    await assert.rejects(httpsGet(g.port, { leaf: wrongCa }));
    await assert.rejects(h2Get(`https://127.0.0.1:${g.port}`, { leaf: wrongCa }));
    assert.ok(g.listener.tlsRefusals.handshake >= 3, `handshake refusals: ${g.listener.tlsRefusals.handshake}`);
    // Chains fine but is no single-SPIFFE-ID SVID: cut off after the handshake, counted.
    await assert.rejects(httpsGet(g.port, { leaf: twoUris }));
    await assert.rejects(httpsGet(g.port, { leaf: noUri }));
    assert.equal(g.listener.tlsRefusals.identity, 2);
    assert.equal(up.seen.length, before + 2, 'no refused caller reached the upstream');
    assert.equal(g.exchanges.length, 2, 'and none became a request');
  } finally {
    await g.close();
  }
});

test('require with SNI certificates: every context verifies clients against the client CA, not the public roots', async () => {
  const named = await pki.issue('named', { uris: [INVENTORY], dns: ['inventory.shop.test'] });
  const listener = mtlsListener('inbound', {
    certificates: `[{ certFile: "${inbound.certFile}", keyFile: "${inbound.keyFile}" }, { certFile: "${named.certFile}", keyFile: "${named.keyFile}", hostnames: [inventory.shop.test] }]`,
  });
  const g = await startListener(parse(configYaml(listener)), 'inbound');
  try {
    const connect = (leaf: MeshLeaf | undefined) =>
      new Promise<string>((resolve, reject) => {
        const s = tls.connect({
          host: '127.0.0.1', port: g.port, servername: 'inventory.shop.test', ca: pki.rootPem,
          checkServerIdentity: checkSpiffeServerIdentity([INVENTORY]),
          ...(leaf ? { cert: leaf.certPem, key: leaf.keyPem } : {}),
        });
        s.on('secureConnect', () => {
          const serial = s.getPeerCertificate().serialNumber.toLowerCase();
          s.write('GET /x HTTP/1.1\r\nhost: inventory.shop.test\r\nconnection: close\r\n\r\n');
          let text = '';
          s.setEncoding('latin1').on('data', (c: string) => (text += c));
          s.on('end', () => (text.startsWith('HTTP/1.1 200') ? resolve(serial) : reject(new Error(text.slice(0, 40) || 'closed'))));
        });
        s.on('error', reject);
      });
    assert.equal(await connect(caller), named.serial, 'SNI picked the named certificate');
    await assert.rejects(connect(wrongCa));
    await assert.rejects(connect(undefined));
  } finally {
    await g.close();
  }
});

test('permissive: one port takes plaintext HTTP/1.1, h2c and mutual TLS; only TLS callers carry a peer ID', async () => {
  const g = await startListener(parse(configYaml(mtlsListener('inbound', { plaintext: true }))), 'inbound');
  try {
    const plain = await plainGet(g.port);
    assert.equal(plain.status, 200);
    assert.equal(g.exchanges.at(-1)?.peerId, '');
    const h2c = await h2Get(`http://127.0.0.1:${g.port}`);
    assert.equal(h2c.status, 200);
    assert.equal(g.exchanges.at(-1)?.peerId, '');
    const secure = await httpsGet(g.port, { leaf: caller });
    assert.equal(secure.status, 200);
    assert.equal(g.exchanges.at(-1)?.peerId, ORDERS);
    const secureH2 = await h2Get(`https://127.0.0.1:${g.port}`, { leaf: caller });
    assert.equal(secureH2.status, 200);
    assert.equal(g.exchanges.at(-1)?.peerId, ORDERS);
    // TLS on the permissive port is still strict about who it is.
    await assert.rejects(httpsGet(g.port, { leaf: wrongCa }));
    await assert.rejects(httpsGet(g.port, { leaf: twoUris }));
    assert.equal(g.listener.tlsRefusals.identity, 1);
    // The plaintext side forwards the client's proto as http, TLS as https.
    const seen = up.seen.slice(-4).map((s) => s.headers['x-forwarded-proto']);
    assert.deepEqual(seen, ['http', 'http', 'https', 'https']);
  } finally {
    await g.close();
  }
});

test('a plain http listener serves HTTP/2 prior knowledge (h2c) and HTTP/1.1 on the same port', async () => {
  const plane = new DataPlane(parse(configYaml(`    - { name: out, address: 127.0.0.1, port: 0 }`)), { accessLog: false });
  const ports = await plane.listen();
  try {
    for (let i = 0; i < 3; i++) {
      const h2 = await h2Get(`http://127.0.0.1:${ports.out}`, { path: `/h2c/${i}` });
      assert.equal(h2.status, 200);
      assert.equal(JSON.parse(h2.body).url, `/h2c/${i}`);
      const h1 = await plainGet(ports.out, `/h1/${i}`);
      assert.equal(h1.status, 200);
      assert.equal(JSON.parse(h1.body).url, `/h1/${i}`);
    }
    // A POST starts with the preface's first letter: still HTTP/1.1.
    const post = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: ports.out, path: '/p', method: 'POST', agent: false }, (res) => {
        res.resume().on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end('body');
    });
    assert.equal(post, 200);
  } finally {
    await plane.close();
  }
});

test('PROXY protocol in front of sniffing: h2c on a plain listener and plaintext + TLS on a permissive one keep the client address; drain closes idle connections of every kind', async () => {
  const pp = (port: number) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.write('PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n');
    return socket;
  };
  const config = parse(configYaml(`${mtlsListener('inbound', { plaintext: true })}
      proxyProtocol: v1
    - { name: out, address: 127.0.0.1, port: 0, proxyProtocol: v1 }`));
  const out = await startListener(config, 'out');
  const inb = await startListener(config, 'inbound');
  const sessions: http2.ClientHttp2Session[] = [];
  const sockets: net.Socket[] = [];
  try {
    const h2c = (port: number) => {
      const session = http2.connect('http://gateway.test', { createConnection: () => pp(port) });
      session.on('error', () => {});
      sessions.push(session);
      return new Promise<number>((resolve, reject) => {
        const st = session.request({ ':path': '/pp' });
        st.on('response', (h) => resolve(Number(h[':status'])));
        st.on('error', reject);
        st.resume();
        st.end();
      });
    };
    assert.equal(await h2c(out.port), 200);
    assert.equal(out.exchanges.at(-1)?.clientIp, '203.0.113.7');
    assert.equal(await h2c(inb.port), 200);
    assert.equal(inb.exchanges.at(-1)?.clientIp, '203.0.113.7');
    assert.equal(inb.exchanges.at(-1)?.peerId, '');
    // Mutual TLS after the PROXY header, then a keep-alive HTTP/1.1 exchange left open.
    const status = await new Promise<number>((resolve, reject) => {
      const s = tls.connect({ socket: pp(inb.port), ...callerTls(caller) });
      sockets.push(s);
      s.on('secureConnect', () => s.write('GET /pp HTTP/1.1\r\nhost: a\r\n\r\n'));
      s.setEncoding('latin1').once('data', (d: string) => resolve(Number(d.slice(9, 12))));
      s.on('error', reject);
    });
    assert.equal(status, 200);
    assert.equal(inb.exchanges.at(-1)?.peerId, ORDERS);
    assert.equal(inb.exchanges.at(-1)?.clientIp, '203.0.113.7');
    // A plaintext HTTP/1.1 keep-alive connection too.
    const plain = pp(inb.port);
    sockets.push(plain);
    plain.write('GET /pp HTTP/1.1\r\nhost: a\r\n\r\n');
    await new Promise((r) => plain.once('data', r));
    // Idle h2c sessions, an idle TLS connection and an idle plaintext one: drain ends them all well before its deadline.
    const t0 = Date.now();
    await Promise.all([inb.listener.drain(5000), out.listener.drain(5000)]);
    assert.ok(Date.now() - t0 < 2500, `drain took ${Date.now() - t0} ms`);
  } finally {
    for (const s of sessions) s.destroy();
    for (const s of sockets) s.destroy();
    await out.close();
    await inb.close();
  }
});

/** An h2c upstream answering like a gRPC server: headers, a body, then `grpc-status` trailers. */
async function startGrpcLikeUpstream() {
  const seen: Array<{ path: string; te: string | undefined }> = [];
  const server = http2.createServer();
  server.on('stream', (stream, headers) => {
    seen.push({ path: String(headers[':path']), te: headers.te as string | undefined });
    stream.resume();
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0', 'grpc-message': 'fine' }));
      stream.end(Buffer.from([0, 0, 0, 0, 2, 8, 1]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { port: (server.address() as AddressInfo).port, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

const GRPC_REQUEST = { headers: { 'content-type': 'application/grpc', te: 'trailers' }, body: '\0\0\0\0\0' };

test('gRPC-like h2c through a plain listener to an h2c upstream (Backend protocol h2 on http:), trailers included', async () => {
  const grpc = await startGrpcLikeUpstream();
  const plane = new DataPlane(parse(configYaml(`    - { name: out, address: 127.0.0.1, port: 0 }`, `{ url: "http://127.0.0.1:${grpc.port}", protocol: h2 }`)), { accessLog: false });
  const ports = await plane.listen();
  try {
    const r = await h2Get(`http://127.0.0.1:${ports.out}`, { path: '/pkg.Svc/Method', ...GRPC_REQUEST });
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/grpc', JSON.stringify(r));
    assert.deepEqual(grpc.seen.map((s) => s.path), ['/pkg.Svc/Method'], 'the upstream was reached over HTTP/2 (h2c)');
    assert.equal(r.trailers?.['grpc-status'], '0');
    assert.equal(r.trailers?.['grpc-message'], 'fine');
  } finally {
    await plane.close();
    await grpc.close();
  }
});

/** An mTLS upstream (payments) that requires client certificates and answers with the caller's serial. */
async function startMtlsUpstream(leaf: MeshLeaf) {
  const callers: string[] = [];
  const server = https.createServer({ cert: leaf.certPem, key: leaf.keyPem, ca: pki.rootPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const serial = (req.socket as tls.TLSSocket).getPeerCertificate().serialNumber.toLowerCase();
    callers.push(serial);
    req.resume().on('end', () => res.end(JSON.stringify({ serial })));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as AddressInfo).port,
    callers,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

function mtlsBackend(port: number, client: MeshLeaf, ids: string[], generation = '1', protocol = 'http1'): string {
  return `{ url: "https://127.0.0.1:${port}", protocol: ${protocol}, retries: { attempts: 0 }, tls: { caFile: "${pki.bundleFile}", certFile: "${client.certFile}", keyFile: "${client.keyFile}", spiffeIds: ${JSON.stringify(ids)}, generation: "${generation}" } }`;
}

test('upstream SPIFFE check: the listed ID is accepted (over h1 and h2), another one fails with a 502', async () => {
  const payments = await pki.issue('payments', { uris: [PAYMENTS] });
  const gw = await pki.issue('gw', { uris: [ORDERS] });
  const upstream = await startMtlsUpstream(payments);
  const run = async (backend: string) => {
    const plane = new DataPlane(parse(configYaml(`    - { name: out, address: 127.0.0.1, port: 0 }`, backend)), { accessLog: false });
    const ports = await plane.listen();
    try {
      return await plainGet(ports.out);
    } finally {
      await plane.close();
    }
  };
  try {
    const good = await run(mtlsBackend(upstream.port, gw, [INVENTORY, PAYMENTS]));
    assert.equal(good.status, 200);
    assert.equal(JSON.parse(good.body).serial, gw.serial, 'the gateway presented its client certificate');
    const h2 = await run(mtlsBackend(upstream.port, gw, [PAYMENTS], '1', 'h2'));
    assert.equal(h2.status, 200);
    const calls = upstream.callers.length;
    const wrong = await run(mtlsBackend(upstream.port, gw, [INVENTORY]));
    assert.equal(wrong.status, 502, wrong.body);
    assert.equal(upstream.callers.length, calls, 'no request reached the wrong peer');
  } finally {
    await upstream.close();
  }
});

/** Opens a TLS connection as `leaf` and returns its session ticket and whether it resumed `session`. */
function tlsRoundTrip(port: number, leaf: MeshLeaf, session?: Buffer): Promise<{ session: Buffer | undefined; reused: boolean; ok: boolean; text: string }> {
  return new Promise((resolve, reject) => {
    let ticket: Buffer | undefined;
    const s = tls.connect({ host: '127.0.0.1', port, ca: pki.rootPem, cert: leaf.certPem, key: leaf.keyPem, session, checkServerIdentity: checkSpiffeServerIdentity([INVENTORY]) });
    s.on('session', (t: Buffer) => (ticket = t));
    s.on('secureConnect', () => s.write('GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n'));
    let text = '';
    s.setEncoding('latin1').on('data', (c: string) => (text += c));
    s.on('end', () => resolve({ session: ticket, reused: s.isSessionReused(), ok: text.startsWith('HTTP/1.1 200'), text }));
    s.on('error', reject);
  });
}

test('session tickets: resumed while nothing changed, dropped when the client CA bundle changes', async () => {
  const bundle = `${pki.dir}/bundle-sessions.pem`;
  writeFileSync(bundle, pki.rootPem);
  const yaml = () => configYaml(mtlsListener('inbound').replace(pki.bundleFile, bundle));
  const plane = new DataPlane(parse(yaml()), { accessLog: false });
  const ports = await plane.listen();
  const peers: string[] = [];
  const onEnd = (ex: unknown) => peers.push((ex as Exchange).peerId);
  requestEnd.subscribe(onEnd);
  try {
    const first = await tlsRoundTrip(ports.inbound, caller);
    assert.ok(first.ok && first.session, 'a ticket was issued');
    const again = await tlsRoundTrip(ports.inbound, caller, first.session);
    assert.ok(again.ok);
    assert.equal(again.reused, true, 'resumption works (the baseline)');
    assert.deepEqual(peers, [ORDERS, ORDERS], 'a resumed connection still carries the peer ID');
    assert.deepEqual(plane.apply(parse(yaml())), { ok: true, problems: [] });
    assert.equal((await tlsRoundTrip(ports.inbound, caller, first.session)).reused, true, 'an apply that changes nothing keeps tickets');
    // A second root joins the bundle (root rotation starts): same generation, new file contents.
    writeFileSync(bundle, pki.rootPem + foreign.rootPem);
    assert.deepEqual(plane.apply(parse(yaml())), { ok: true, problems: [] });
    const after = await tlsRoundTrip(ports.inbound, caller, first.session);
    assert.ok(after.ok, after.text);
    assert.equal(after.reused, false, 'the old ticket no longer resumes: a full handshake against the new bundle');
    // The foreign root is trusted now.
    assert.equal((await tlsRoundTrip(ports.inbound, wrongCa)).ok, true);
  } finally {
    requestEnd.unsubscribe(onEnd);
    await plane.close();
  }
});

test('rotation under load: two rotations in 2 s, zero failed requests; new handshakes see new certificates, old connections keep working', async () => {
  const upLeaf = await pki.issue('payments-rot', { uris: [PAYMENTS] });
  const upstream = await startMtlsUpstream(upLeaf);
  let server = await pki.issue('inbound-rot', { uris: [INVENTORY] });
  let client = await pki.issue('gw-rot', { uris: [INVENTORY] });
  const yaml = (gen: number) =>
    configYaml(mtlsListener('inbound', { leaf: server, generation: String(gen) }), mtlsBackend(upstream.port, client, [PAYMENTS], String(gen)));
  const plane = new DataPlane(parse(yaml(1)), { accessLog: false });
  const ports = await plane.listen();
  const port = ports.inbound;
  // One keep-alive connection opened before any rotation, used throughout.
  const held = callerAgent(caller, 1);
  const shared = callerAgent(caller, 4);
  try {
    const first = await httpsGet(port, { leaf: caller, agent: held });
    assert.equal(first.status, 200);
    const heldSocket = first.socket!;
    const oldServerSerial = heldSocket.getPeerCertificate().serialNumber.toLowerCase();
    assert.equal(oldServerSerial, server.serial);
    const serverSerials = [server.serial];
    const clientSerials = [client.serial];

    let failures = 0;
    let done = 0;
    const errors: string[] = [];
    const stop = Date.now() + 2000;
    const worker = async (i: number): Promise<void> => {
      while (Date.now() < stop) {
        // Alternate new connections (new handshakes) with pooled ones (connections that outlive a rotation).
        const agent = i % 3 === 0 ? held : done % 2 === 0 ? undefined : shared;
        try {
          const r = await httpsGet(port, { leaf: caller, agent });
          if (r.status !== 200) {
            failures++;
            errors.push(`${r.status} ${r.body.slice(0, 120)}`);
          }
        } catch (err) {
          failures++;
          errors.push((err as Error).message);
        }
        done++;
      }
    };
    const rotate = async (gen: number): Promise<void> => {
      server = await pki.issue('inbound-rot', { uris: [INVENTORY] });
      client = await pki.issue('gw-rot', { uris: [INVENTORY] });
      serverSerials.push(server.serial);
      clientSerials.push(client.serial);
      const r = plane.apply(parse(yaml(gen)));
      assert.deepEqual(r, { ok: true, problems: [] });
    };
    const load = Promise.all([0, 1, 2, 3, 4, 5].map(worker));
    await new Promise((r) => setTimeout(r, 600));
    await rotate(2);
    await new Promise((r) => setTimeout(r, 700));
    await rotate(3);
    await load;
    assert.equal(failures, 0, `failed requests: ${errors.slice(0, 5).join('; ')}`);
    assert.ok(done > 50, `only ${done} requests`);

    // A new handshake presents the newest certificate…
    const fresh = await httpsGet(port, { leaf: caller });
    assert.equal(fresh.socket!.getPeerCertificate().serialNumber.toLowerCase(), serverSerials.at(-1));
    // …while the connection opened before the first rotation is still the same one, with the old certificate.
    const last = await httpsGet(port, { leaf: caller, agent: held });
    assert.equal(last.status, 200);
    assert.equal(last.socket, heldSocket, 'the keep-alive connection survived both rotations');
    assert.equal(last.socket!.getPeerCertificate().serialNumber.toLowerCase(), oldServerSerial);
    // Upstream side: new pools presented each new client certificate, and the last requests used the newest.
    const seen = new Set(upstream.callers);
    for (const s of clientSerials) assert.ok(seen.has(s), `client certificate ${s} was never presented`);
    assert.equal(upstream.callers.at(-1), clientSerials.at(-1));
  } finally {
    held.destroy();
    shared.destroy();
    await plane.close();
    await upstream.close();
  }
});

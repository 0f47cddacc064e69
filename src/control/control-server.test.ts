// Tests for the control plane's HTTPS server: caller decisions, route matching, error bodies, limits, TLS rotation, close.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { request, type RequestOptions } from 'node:https';
import { once } from 'node:events';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, test } from 'node:test';
import { CertificateAuthority } from '../ca/certificate-authority.ts';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import { adminTokenVerifier, ensureBootstrapToken } from './bootstrap-token.ts';
import type { ControlRoute } from './control-routes.ts';
import { ControlServer, operatorSpiffeId, readBody, sendJson } from './control-server.ts';

const TD = 'test.local';
const CP_ID = `spiffe://${TD}/ns/lockgate-system/sa/control-plane`;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json: () => { error?: { code: string; message: string; requestId: string }; [k: string]: unknown };
}

let ca: CertificateAuthority;
let store: MemoryConfigStore;
let server: ControlServer;
let token: string;
let bundle: string;
let nodeCert: { cert: string; key: string };
let operatorCert: { cert: string; key: string };
let foreignCert: { cert: string; key: string };
let serverCertPem: string;

const routes: ControlRoute[] = [
  { method: 'GET', path: '/a/{x}/b/{y}', auth: 'admin', handle: async (_q, s, cx) => sendJson(s, 200, { params: cx.params, caller: cx.caller }) },
  { method: 'DELETE', path: '/a/{x}/b/{y}', auth: 'admin', handle: async (_q, s) => sendJson(s, 200, {}) },
  { method: 'GET', path: '/node', auth: 'node', handle: async (_q, s, cx) => sendJson(s, 200, { caller: cx.caller }) },
  { method: 'GET', path: '/open', auth: 'none', handle: async (_q, s, cx) => sendJson(s, 200, { caller: cx.caller, requestId: cx.requestId }) },
  { method: 'POST', path: '/open', auth: 'none', handle: async (q, s, cx) => sendJson(s, 200, { bytes: (await readBody(q, cx.signal)).length }) },
  { method: 'GET', path: '/boom', auth: 'none', handle: async () => { throw new Error('secret detail'); } },
  {
    method: 'GET', path: '/stream', auth: 'none', handle: async (_q, res, cx) => {
      const s = res as ServerResponse;
      s.writeHead(200, { 'content-type': 'application/x-ndjson' });
      s.write('{"hello":1}\n');
      await new Promise<void>((resolve) => cx.signal.addEventListener('abort', () => resolve(), { once: true }));
      s.end();
    },
  },
];

function call(method: string, path: string, opts: { headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[]; client?: { cert: string; key: string } } = {}): Promise<Reply> {
  const options: RequestOptions = {
    host: '127.0.0.1', port: server.port, method, path, headers: opts.headers, ca: bundle, agent: false,
    checkServerIdentity: () => undefined, // the SAN is a SPIFFE URI; the chain is still verified against `ca`
    ...(opts.client ? { cert: opts.client.cert, key: opts.client.key } : {}),
  };
  return new Promise((resolve, reject) => {
    const req = request(options, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text, json: () => JSON.parse(text) }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    if (opts.chunks) {
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else req.end(opts.body);
  });
}

before(async () => {
  ca = await CertificateAuthority.create({ trustDomain: TD });
  const other = await CertificateAuthority.create({ trustDomain: TD });
  const cp = await ca.issueWithKey(CP_ID, 3_600_000);
  const node = await ca.issueWithKey(`spiffe://${TD}/ns/shop/sa/orders`, 3_600_000);
  const op = await ca.issueWithKey(operatorSpiffeId(TD), 3_600_000);
  const foreign = await other.issueWithKey(`spiffe://${TD}/ns/shop/sa/orders`, 3_600_000);
  nodeCert = { cert: node.chainPem, key: node.keyPem };
  operatorCert = { cert: op.chainPem, key: op.keyPem };
  foreignCert = { cert: foreign.chainPem, key: foreign.keyPem };
  serverCertPem = cp.certPem;
  bundle = ca.trustBundle().join('');
  store = new MemoryConfigStore();
  token = (await ensureBootstrapToken(store)).token!;
  server = await ControlServer.listen({
    routes, trustDomain: TD, verifyAdminToken: adminTokenVerifier(store), maxBodyBytes: 1000,
    tls: { cert: cp.chainPem, key: cp.keyPem, ca: ca.trustBundle() }, onError: () => {},
  });
});

after(async () => {
  await server.close();
  await store.close();
});

test('no credential: 401 with a JSON error carrying the request id', async () => {
  const r = await call('GET', '/a/1/b/2');
  assert.equal(r.status, 401);
  const e = r.json().error!;
  assert.equal(e.code, 'unauthorized');
  assert.match(e.requestId, /^[0-9a-f]{32}$/);
  assert.equal(r.headers['x-request-id'], e.requestId);
  assert.equal(r.headers['www-authenticate'], 'Bearer');
});

test('a wrong or malformed bearer token is 401 invalid_token; the right one is admin', async () => {
  const wrong = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
  for (const t of [wrong, 'nonsense', `lgadm.0000000000000000.${'A'.repeat(43)}`]) {
    const r = await call('GET', '/a/1/b/2', { headers: { authorization: `Bearer ${t}` } });
    assert.equal(r.status, 401, t);
    assert.match(String(r.headers['www-authenticate']), /invalid_token/);
  }
  const ok = await call('GET', '/a/x%2Fy/b/2', { headers: { authorization: `Bearer ${token}`, 'x-request-id': 'given-id-1' } });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers['x-request-id'], 'given-id-1');
  const body = ok.json() as unknown as { params: Record<string, string>; caller: { kind: string; subject: string } };
  assert.deepEqual(body.params, { x: 'x/y', y: '2' });
  assert.equal(body.caller.kind, 'admin');
  assert.match(body.caller.subject, /^admin-token:/);
});

test('client certificates: a node identity, the operator identity, and a foreign CA', async () => {
  const node = await call('GET', '/node', { client: nodeCert });
  assert.equal(node.status, 200);
  const caller = (node.json() as unknown as { caller: Record<string, unknown> }).caller;
  assert.equal(caller.kind, 'node');
  assert.equal(caller.spiffeId, `spiffe://${TD}/ns/shop/sa/orders`);
  assert.equal(caller.namespace, 'shop');
  assert.equal(caller.service, 'orders');
  assert.equal(caller.certificateSerial, new X509Certificate(nodeCert.cert).serialNumber);
  assert.equal((await call('GET', '/a/1/b/2', { client: nodeCert })).status, 403, 'a node is not an admin');
  assert.equal((await call('GET', '/node', { headers: { authorization: `Bearer ${token}` } })).status, 403, 'an admin is not a node');
  assert.equal((await call('GET', '/a/1/b/2', { client: operatorCert })).status, 200, 'the operator certificate is an admin');
  assert.equal((await call('GET', '/node', { client: foreignCert })).status, 401, 'a certificate from another CA does not verify');
  const open = await call('GET', '/open', { client: foreignCert });
  assert.deepEqual((open.json() as unknown as { caller: unknown }).caller, { kind: 'anonymous' });
});

test('routing: 404 for unknown paths, 405 with Allow for other methods, 400 for bad percent-encoding', async () => {
  const nf = await call('GET', '/nope');
  assert.equal(nf.status, 404);
  assert.equal(nf.json().error!.code, 'not_found');
  assert.equal((await call('GET', '/a/1/b')).status, 404, 'a missing segment does not match');
  assert.equal((await call('GET', '/a//b/2')).status, 404, 'an empty parameter does not match');
  const na = await call('PUT', '/a/1/b/2', { headers: { authorization: `Bearer ${token}` } });
  assert.equal(na.status, 405);
  assert.equal(na.headers.allow, 'GET, DELETE');
  assert.equal(na.json().error!.code, 'method_not_allowed');
  assert.equal((await call('GET', '/a/%E0%A4%A/b/2')).status, 400);
});

test('request bodies: limited by Content-Length and while streaming (413)', async () => {
  assert.equal((await call('POST', '/open', { body: Buffer.alloc(1000) })).json().bytes, 1000);
  const big = await call('POST', '/open', { body: Buffer.alloc(1001) });
  assert.equal(big.status, 413);
  assert.equal(big.json().error!.code, 'payload_too_large');
  const chunked = await call('POST', '/open', { chunks: [Buffer.alloc(600), Buffer.alloc(600)] });
  assert.equal(chunked.status, 413);
});

test('a handler failure is a 500 without details, and the server keeps serving', async () => {
  const r = await call('GET', '/boom');
  assert.equal(r.status, 500);
  assert.equal(r.json().error!.code, 'internal');
  assert.doesNotMatch(r.text, /secret detail/);
  assert.equal((await call('GET', '/open')).status, 200);
});

test('malformed input: garbage after the handshake and a broken header do not take the server down', async () => {
  for (const junk of ['\x00\x01\x02 garbage\r\n\r\n', 'GET /open HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n']) {
    await new Promise<void>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port: server.port, ca: bundle, checkServerIdentity: () => undefined }, () => s.end(junk));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.resume();
    });
  }
  assert.equal((await call('GET', '/open')).status, 200);
});

test('HTTP/2 is served too, with client certificates and streams', async () => {
  const get = async (session: ReturnType<typeof h2connect>, path: string): Promise<{ status: unknown; text: string }> => {
    const stream = session.request({ ':path': path, ':method': 'GET' });
    let text = '';
    const headers = await new Promise<Record<string, unknown>>((resolve) => stream.on('response', resolve));
    stream.setEncoding('utf8').on('data', (c: string) => (text += c));
    await new Promise((r) => stream.on('end', r));
    return { status: headers[':status'], text };
  };
  const anon = h2connect(`https://127.0.0.1:${server.port}`, { ca: bundle, checkServerIdentity: () => undefined });
  const node = h2connect(`https://127.0.0.1:${server.port}`, { ca: bundle, checkServerIdentity: () => undefined, cert: nodeCert.cert, key: nodeCert.key });
  try {
    const open = await get(anon, '/open');
    assert.equal(open.status, 200);
    assert.equal(JSON.parse(open.text).caller.kind, 'anonymous');
    assert.equal((await get(anon, '/node')).status, 401);
    const n = await get(node, '/node');
    assert.equal(n.status, 200);
    assert.equal(JSON.parse(n.text).caller.spiffeId, `spiffe://${TD}/ns/shop/sa/orders`);
    const stream = node.request({ ':path': '/stream', ':method': 'GET' });
    const first = await new Promise<string>((resolve) => stream.setEncoding('utf8').once('data', resolve));
    assert.equal(first, '{"hello":1}\n');
    stream.close();
  } finally {
    anon.close();
    node.close();
  }
});

test('updateTls: new handshakes get the new certificate', async () => {
  const peerCert = (): Promise<string> => new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: server.port, ca: bundle, checkServerIdentity: () => undefined }, () => {
      resolve(s.getPeerX509Certificate()!.serialNumber);
      s.end();
    });
    s.on('error', reject);
  });
  assert.equal(await peerCert(), new X509Certificate(serverCertPem).serialNumber);
  const next = await ca.issueWithKey(CP_ID, 3_600_000);
  server.updateTls({ cert: next.chainPem, key: next.keyPem, ca: ca.trustBundle() });
  assert.equal(await peerCert(), new X509Certificate(next.certPem).serialNumber);
  assert.equal((await call('GET', '/node', { client: nodeCert })).status, 200, 'client certificates still verify');
});

test('close() ends long-lived streams and the server', async () => {
  const s2 = await ControlServer.listen({ routes, trustDomain: TD, verifyAdminToken: async () => undefined, tls: { cert: nodeCert.cert, key: nodeCert.key, ca: bundle } });
  const got = await new Promise<{ first: string; ended: Promise<void> }>((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: s2.port, path: '/stream', ca: bundle, agent: false, checkServerIdentity: () => undefined }, (res) => {
      res.setEncoding('utf8');
      const ended = new Promise<void>((r) => {
        res.on('end', () => r());
        res.on('error', () => r());
        res.on('close', () => r());
      });
      res.once('data', (c: string) => resolve({ first: c, ended }));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(got.first, '{"hello":1}\n');
  const t0 = Date.now();
  await s2.close();
  await got.ended;
  assert.ok(Date.now() - t0 < 2000, 'the stream ended on the abort signal, not on the grace timeout');
});

test('close() does not wait for a connection still in its TLS handshake', async () => {
  // A node reconnecting while the control plane stops: its TCP connection is accepted, its handshake not yet done.
  // Before, only finished handshakes were tracked, so close() waited on this one until the handshake timeout (120 s).
  const s3 = await ControlServer.listen({ routes, trustDomain: TD, closeGraceMs: 50, verifyAdminToken: async () => undefined, tls: { cert: nodeCert.cert, key: nodeCert.key, ca: bundle } });
  const raw = netConnect({ host: '127.0.0.1', port: s3.port });
  await once(raw, 'connect');
  await new Promise((r) => setTimeout(r, 50)); // the server has accepted it
  const closedByServer = once(raw, 'close');
  const t0 = Date.now();
  await Promise.race([s3.close(), new Promise((_, reject) => setTimeout(() => reject(new Error('close() still waiting after 5 s')), 5000).unref())]);
  assert.ok(Date.now() - t0 < 5000);
  await closedByServer;
  raw.destroy();
});

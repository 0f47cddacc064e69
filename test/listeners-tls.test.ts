// Cross-process: HTTPS listeners of a real gateway — SNI certificate choice, TLS floor, forwarding, PROXY over TLS, certificate reload.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import https from 'node:https';
import net from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { startGateway, type GatewayProcess } from './helpers/gateway-process.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { createTestPki, opensslMissing, type TestPki } from './helpers/certs.ts';

const skip = opensslMissing() ?? false;

let pki: TestPki;
let up: Upstream;
let gw: GatewayProcess;

function config(comment = ''): string {
  const certs = `
        minVersion: TLSv1.2
        certificates:
          - { certFile: ${pki.a.certFile}, keyFile: ${pki.a.keyFile}, hostnames: [a.example.test] }
          - { certFile: ${pki.wildcardB.certFile}, keyFile: ${pki.wildcardB.keyFile}, hostnames: ["*.b.example.test"] }
          - { certFile: ${pki.fallback.certFile}, keyFile: ${pki.fallback.keyFile} }`;
  return `apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners:
    - name: https
      address: 127.0.0.1
      port: 0
      protocol: https
      tls:${certs}
    - name: https-pp
      address: 127.0.0.1
      port: 0
      protocol: https
      proxyProtocol: v1
      tls:${certs}
  limits: { headerTimeout: 1s }
  admin: { address: 127.0.0.1, port: 0 }
  accessLog: { enabled: false }
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: "http://127.0.0.1:${up.port}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: all }
spec: { path: /, backend: up }
${comment}
`;
}

before(async () => {
  if (skip) return;
  pki = await createTestPki();
  up = await startUpstream();
  // Two workers: a reload must reach every worker that accepts connections.
  gw = await startGateway(config(), { workers: 2, args: ['--drain-timeout', '3000'] });
});

after(async () => {
  await gw?.stop();
  await up?.close();
  pki?.close();
});

interface Handshake {
  cn: string | undefined;
  org: string | undefined;
  san: string | undefined;
  serial: string;
  authorized: boolean;
  alpn: string | false | null;
  protocol: string | null;
}

/** One TLS handshake against `port`; `servername` undefined sends no SNI (as a client dialling an IP does). */
async function handshake(port: number, servername: string | undefined, extra: tls.ConnectionOptions = {}): Promise<Handshake> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: pki.caPem, rejectUnauthorized: false, ...extra });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    const c = socket.getPeerCertificate();
    return {
      cn: c.subject?.CN as string | undefined,
      org: c.subject?.O as string | undefined,
      san: c.subjectaltname,
      serial: c.serialNumber,
      authorized: socket.authorized,
      alpn: socket.alpnProtocol,
      protocol: socket.getProtocol(),
    };
  } finally {
    socket.destroy();
  }
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function httpsGet(opts: https.RequestOptions): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', agent: false, ca: pki.caPem, ...opts }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.setTimeout(3000, () => req.destroy(new Error('request timed out')));
    req.end();
  });
}

/** A raw TCP connection to `port` that has sent nothing yet. */
async function tcpConnect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls new connections until `n` in a row (both workers, most likely) present `serial`; returns the serials last seen. */
async function waitForSerial(serial: string, timeoutMs: number, n = 6): Promise<string[]> {
  const until = Date.now() + timeoutMs;
  let seen: string[] = [];
  while (Date.now() < until) {
    seen = [];
    for (let i = 0; i < n; i++) seen.push((await handshake(gw.ports.https, 'a.example.test')).serial);
    if (seen.every((s) => s === serial)) return seen;
    await sleep(100);
  }
  return seen;
}

test('SNI a.example.test gets the a.example.test certificate, valid for the name and chained to the CA', { skip }, async () => {
  const h = await handshake(gw.ports.https, 'a.example.test', { rejectUnauthorized: true });
  assert.equal(h.cn, 'a.example.test');
  assert.equal(h.san, 'DNS:a.example.test');
  assert.equal(h.authorized, true);
});

test('SNI x.b.example.test gets the *.b.example.test wildcard certificate', { skip }, async () => {
  const h = await handshake(gw.ports.https, 'x.b.example.test', { rejectUnauthorized: true });
  assert.equal(h.cn, '*.b.example.test');
  assert.equal(h.san, 'DNS:*.b.example.test');
  assert.equal((await handshake(gw.ports.https, 'X.B.Example.Test')).cn, '*.b.example.test', 'SNI is compared case-insensitively');
});

test('an unknown SNI name gets the default certificate (the one without hostnames)', { skip }, async () => {
  const h = await handshake(gw.ports.https, 'unknown.example.test');
  assert.equal(h.cn, 'default.example.test', `got the certificate of ${h.cn} (${h.san})`);
  // A wildcard covers one label only: a.x.b.example.test falls through to the default too.
  assert.equal((await handshake(gw.ports.https, 'a.x.b.example.test')).cn, 'default.example.test');
});

test('a client that sends no SNI gets the default certificate', { skip }, async () => {
  const h = await handshake(gw.ports.https, undefined);
  assert.equal(h.cn, 'default.example.test');
});

test('TLS 1.2 is the floor: a TLSv1.1-max client is refused, a TLSv1.2 client is served', { skip }, async () => {
  const old: tls.ConnectionOptions = { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' };
  // Control: this client really can speak TLS 1.1 (else the refusal below would prove nothing).
  const legacy = tls.createServer({
    cert: readFileSync(pki.a.certFile), key: readFileSync(pki.a.keyFile), minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0',
  }, (s) => s.end());
  await new Promise<void>((r) => legacy.listen(0, '127.0.0.1', r));
  try {
    const control = await handshake((legacy.address() as net.AddressInfo).port, 'a.example.test', old);
    assert.equal(control.protocol, 'TLSv1.1');
  } finally {
    await new Promise<void>((r) => legacy.close(() => r()));
  }
  await assert.rejects(handshake(gw.ports.https, 'a.example.test', old), (err: NodeJS.ErrnoException) => {
    assert.match(String(err.code), /PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS/i, String(err));
    return true;
  });
  const v12 = await handshake(gw.ports.https, 'a.example.test', { maxVersion: 'TLSv1.2' });
  assert.equal(v12.protocol, 'TLSv1.2');
});

test('a request over HTTPS is proxied with X-Forwarded-Proto https', { skip }, async () => {
  const before = up.seen.length;
  const res = await httpsGet({ port: gw.ports.https, servername: 'a.example.test', path: '/tls/hello?q=1', headers: { host: 'a.example.test', 'x-forwarded-proto': 'http' } });
  assert.equal(res.status, 200, res.body);
  assert.equal(up.seen.length, before + 1);
  const seen = up.seen[up.seen.length - 1];
  assert.equal(seen.url, '/tls/hello?q=1');
  assert.equal(seen.headers['x-forwarded-proto'], 'https');
  assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen.headers['x-forwarded-host'], 'a.example.test');
});

test('the https listener offers h2 and http/1.1 by ALPN (docs/config.md: "https is TLS with ALPN offering h2 and http/1.1")', { skip }, async () => {
  const h2 = await handshake(gw.ports.https, 'a.example.test', { ALPNProtocols: ['h2', 'http/1.1'] });
  assert.equal(h2.alpn, 'h2');
  const h1 = await handshake(gw.ports.https, 'a.example.test', { ALPNProtocols: ['http/1.1'] });
  assert.equal(h1.alpn, 'http/1.1');
});

test('PROXY protocol v1 in front of TLS: the PROXY source becomes X-Forwarded-For', { skip }, async () => {
  const raw = await tcpConnect(gw.ports['https-pp']);
  // Corked: the PROXY header and the TLS ClientHello leave in one segment, as a load balancer often sends them.
  raw.cork();
  raw.write('PROXY TCP4 203.0.113.7 127.0.0.1 51000 443\r\n');
  setTimeout(() => raw.uncork(), 20);
  const before = up.seen.length;
  let res: Reply;
  try {
    res = await httpsGet({
      agent: undefined, // no agent, so that createConnection is used
      createConnection: () => tls.connect({ socket: raw, servername: 'a.example.test', ca: pki.caPem }),
      path: '/tls/pp',
      headers: { host: 'a.example.test', 'x-forwarded-for': '6.6.6.6' },
    });
  } finally {
    raw.destroy();
  }
  assert.equal(res.status, 200, res.body);
  assert.equal(up.seen.length, before + 1);
  const seen = up.seen[up.seen.length - 1];
  assert.equal(seen.headers['x-forwarded-for'], '203.0.113.7', 'the client address from the PROXY header, not the load balancer');
  assert.equal(seen.headers['x-forwarded-proto'], 'https');
});

test('certificate rotation + SIGHUP: new connections get the new certificate, the gateway keeps running', { skip }, async () => {
  const pid = gw.proc.pid;
  const old = await handshake(gw.ports.https, 'a.example.test');
  const next = await pki.issue('a-rotated-1', { cn: 'a.example.test', dns: ['a.example.test'], org: 'Rotated One', serial: 1001 });
  copyFileSync(next.keyFile, pki.a.keyFile);
  copyFileSync(next.certFile, pki.a.certFile);
  // The operator's usual step after renewing files in place (certbot, cert-manager): SIGHUP, config unchanged.
  gw.proc.kill('SIGHUP');
  const seen = await waitForSerial('03E9', 3000);
  assert.deepEqual(seen, Array(6).fill('03E9'), `still serving serial(s) ${[...new Set(seen)].join(',')} (old: ${old.serial}) 3 s after SIGHUP`);
  const h = await handshake(gw.ports.https, 'a.example.test', { rejectUnauthorized: true });
  assert.equal(h.org, 'Rotated One');
  assert.equal(gw.proc.exitCode, null);
  assert.equal(gw.proc.pid, pid);
});

test('certificate rotation + config rewrite: new connections get the new certificate, the gateway keeps running', { skip }, async () => {
  const pid = gw.proc.pid;
  const next = await pki.issue('a-rotated-2', { cn: 'a.example.test', dns: ['a.example.test'], org: 'Rotated Two', serial: 1002 });
  copyFileSync(next.keyFile, pki.a.keyFile);
  copyFileSync(next.certFile, pki.a.certFile);
  gw.writeConfig(config('# rotated a.example.test'));
  const seen = await waitForSerial('03EA', 3000);
  assert.deepEqual(seen, Array(6).fill('03EA'), `still serving serial(s) ${[...new Set(seen)].join(',')} 3 s after the config rewrite`);
  const h = await handshake(gw.ports.https, 'a.example.test', { rejectUnauthorized: true });
  assert.equal(h.org, 'Rotated Two');
  assert.equal(h.authorized, true);
  // The other names were rebuilt too and still serve.
  assert.equal((await handshake(gw.ports.https, 'x.b.example.test')).cn, '*.b.example.test');
  assert.equal(gw.proc.exitCode, null);
  assert.equal(gw.proc.pid, pid);
  assert.doesNotMatch(gw.stderr.join(''), /worker (crashed|exited)/);
});

test('a broken certificate file on reload keeps the previous certificate serving and is logged on stderr', { skip }, async () => {
  const current = (await handshake(gw.ports.https, 'a.example.test')).serial;
  writeFileSync(pki.a.certFile, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
  gw.writeConfig(config('# broken a.example.test'));
  const until = Date.now() + 3000;
  const logged = (): boolean => gw.stderr.join('').includes(pki.a.certFile);
  while (!logged() && Date.now() < until) await sleep(50);
  assert.ok(logged(), `nothing on stderr names ${pki.a.certFile}:\n${gw.stderr.join('')}`);
  assert.match(gw.stderr.join(''), /cannot load certificate/);
  for (let i = 0; i < 6; i++) {
    const h = await handshake(gw.ports.https, 'a.example.test', { rejectUnauthorized: true });
    assert.equal(h.serial, current);
    assert.equal(h.authorized, true);
  }
  const res = await httpsGet({ port: gw.ports.https, servername: 'a.example.test', path: '/tls/after-broken', headers: { host: 'a.example.test' } });
  assert.equal(res.status, 200);
  assert.equal(gw.proc.exitCode, null);
});

test('a client that never starts the TLS handshake is cut off within headerTimeout (1 s) + 1.5 s', { skip }, async () => {
  const socket = await tcpConnect(gw.ports.https);
  const t0 = performance.now();
  const closed = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => resolve(null), 2500);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(performance.now() - t0);
    });
  });
  socket.destroy();
  assert.notEqual(closed, null, 'the connection was still open after 2.5 s (a TLS slowloris holds a socket until the 120 s handshakeTimeout)');
});

// Last: stops the gateway. A connection with no request in flight must not hold the drain for its whole deadline.
test('SIGTERM drains promptly although a client holds a connection open before the TLS handshake', { skip }, async () => {
  const socket = await tcpConnect(gw.ports.https);
  const t0 = performance.now();
  const code = await gw.stop();
  const ms = performance.now() - t0;
  socket.destroy();
  assert.equal(code, 0);
  assert.ok(ms < 2000, `stop took ${Math.round(ms)} ms (drain deadline 3000 ms): the idle pre-handshake connection held it`);
});

// Integration and certificate policies end to end: send-request (to real servers on 127.0.0.1), send-one-way-request,
// authentication-certificate (mutual TLS to a backend), validate-client-certificate (a TLS listener asking for client
// certificates), and `lockgate test` stubbing send-request by URL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { refusedPort as findRefusedPort, startUpstream, type Upstream } from './helpers/upstream.ts';
import { GATEWAY } from './helpers/policy-gateway.ts';
import { createTestPki, opensslMissing, type CertPair, type TestPki } from './helpers/certs.ts';
import { formatProblems } from '../src/model/load-config.ts';
import { parseCheckedConfig } from '../src/policy/load-checked.ts';
import { DataPlane } from '../src/app/data-plane.ts';
import { runTestFile } from '../src/app/policy-test-runner.ts';
import { POLICY_REGISTRY } from '../src/filters/index.ts';
import { buildRuntime, retireRuntime } from '../src/proxy/runtime.ts';
import { createRequestHandler, type DataPlaneState } from '../src/proxy/request-handler.ts';
import type { CompileEnv, PolicyServices } from '../src/proxy/policy-pipeline.ts';
import type { PolicyContext } from '../src/proxy/policy-context.ts';
import type { HttpClient, OutboundRequest, OutboundResponse } from '../src/proxy/policy-http-client.ts';
import { MAX_IN_FLIGHT, sendOneWayRequestPolicy } from '../src/filters/send-one-way-request.ts';
import { certificateProblem, normalizeDn, validateClientCertificatePolicy, type CertRules } from '../src/filters/validate-client-certificate.ts';

const run = promisify(execFile);
const noOpenssl = opensslMissing();

let up: Upstream;
let auth: Upstream;
let slow: Upstream;
let big: Upstream;
let delayed: Upstream;
let refusedPort = 0;
const timers = new Set<NodeJS.Timeout>();

before(async () => {
  up = await startUpstream();
  auth = await startUpstream((req, res) => {
    const ok = req.headers.authorization === 'Bearer good';
    const text = JSON.stringify({ status: ok ? '200' : '403', user: ok ? 'alice' : null });
    res.writeHead(200, { 'content-type': 'application/json', 'x-auth': 'checked' });
    res.end(text);
  });
  slow = await startUpstream((_req, res) => {
    const t = setTimeout(() => res.end('late'), 3000);
    timers.add(t);
  });
  big = await startUpstream((_req, res) => {
    const body = Buffer.alloc(2 * 1024 * 1024, 'x');
    res.writeHead(201, { 'content-type': 'text/plain', 'x-from': 'big' });
    res.end(body);
  });
  delayed = await startUpstream((_req, res) => {
    const t = setTimeout(() => res.end('done'), 800);
    timers.add(t);
  });
  // A port nothing listens on: connections are refused (from outside the range other tests' servers get ports from).
  refusedPort = await findRefusedPort();
});

after(async () => {
  for (const t of timers) clearTimeout(t);
  await Promise.all([up.close(), auth.close(), slow.close(), big.close(), delayed.close()]);
});

function config(policyBody: string, extra = ''): string {
  return `${GATEWAY}---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: "${up.url}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: orders }
spec:
  path: /orders
  backend: up
  stripPath: true
---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: p }
spec:
  scope: { api: orders }
${policyBody}${extra}`;
}

interface Gw {
  url: string;
  close(): Promise<void>;
}

/** A DataPlane on 127.0.0.1:0; `file` anchors relative paths in the config. */
async function startGateway(yaml: string, services: PolicyServices = {}, file = 'test.yaml'): Promise<Gw> {
  const loaded = parseCheckedConfig(yaml, file);
  if (!loaded.config) throw new Error(formatProblems(loaded.problems));
  const plane = new DataPlane(loaded.config, { accessLog: false, policyServices: services });
  const ports = await plane.listen();
  return { url: `http://127.0.0.1:${ports.http}`, close: () => plane.drain(1000) };
}

async function withGateway(yaml: string, fn: (g: Gw) => Promise<void>, services: PolicyServices = {}): Promise<void> {
  const g = await startGateway(yaml, services);
  try {
    await fn(g);
  } finally {
    await g.close();
  }
}

async function get(url: string, opts: Parameters<typeof request>[1] = {}) {
  const r = await request(url, opts);
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text, json: () => JSON.parse(text) };
}

const LAST_ERROR = `  onError:
    - return-response:
        status: 599
        body: { source: "@(context.LastError.Source)", reason: "@(context.LastError.Reason)", message: "@(context.LastError.Message)" }
`;

// ---------- send-request ----------

test('send-request: the response lands in the variable; expressions read StatusCode, Headers, Body and Json', async () => {
  const before = auth.seen.length;
  const yaml = config(`  inbound:
    - send-request:
        responseVariableName: authz
        url: "@('${auth.url}/check?key=' + context.Request.Headers['x-key'])"
        headers: { Authorization: ["@('Bearer ' + context.Request.Headers['x-token'])"], x-static: [one, two] }
    - set-header: { name: x-status, value: "@(string(context.Variables['authz'].StatusCode))" }
    - set-header: { name: x-auth, value: "@(context.Variables['authz'].Headers['x-auth'])" }
    - set-header: { name: x-user, value: "@(context.Variables['authz'].Json.user)" }
    - set-header: { name: x-body, value: "@(context.Variables['authz'].Body)" }
`);
  await withGateway(yaml, async (g) => {
    const r = await get(`${g.url}/orders/1`, { headers: { 'x-token': 'good', 'x-key': 'k1' } });
    assert.equal(r.status, 200);
    const seen = r.json().headers;
    assert.equal(seen['x-status'], '200');
    assert.equal(seen['x-auth'], 'checked');
    assert.equal(seen['x-user'], 'alice');
    assert.deepEqual(JSON.parse(seen['x-body']), { status: '200', user: 'alice' });
    // The authorizer got the request the attributes describe.
    assert.equal(auth.seen.length, before + 1);
    const call = auth.seen[before];
    assert.equal(call.method, 'GET');
    assert.equal(call.url, '/check?key=k1');
    assert.equal(call.headers.authorization, 'Bearer good');
    assert.equal(call.headers['x-static'], 'one, two');
  });
});

test('send-request: a JSON body template is sent as JSON with the method given; return-response sends the stored response', async () => {
  const yaml = config(`  inbound:
    - send-request:
        responseVariableName: echo
        url: "${up.url}/echo"
        method: POST
        body: { user: "@(context.Request.Headers['x-user'])", n: 1, tags: [a, "@('b')"] }
    - return-response: { responseVariableName: echo, headers: { x-added: ["yes"] } }
`);
  await withGateway(yaml, async (g) => {
    const before = up.seen.length;
    const r = await get(`${g.url}/orders/1`, { headers: { 'x-user': 'bob' } });
    // The echo server's answer, passed through: its status, headers and body.
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers['x-added'], 'yes');
    const echo = r.json();
    assert.equal(echo.method, 'POST');
    assert.equal(echo.url, '/echo');
    assert.match(echo.headers['content-type'], /^application\/json/);
    assert.deepEqual(JSON.parse(echo.body), { user: 'bob', n: 1, tags: ['a', 'b'] });
    // return-response ended the pipeline: only the send-request call reached the upstream.
    assert.equal(up.seen.length, before + 1);
  });
});

test('send-request: return-response passes a non-200 response through with its headers and whole body', async () => {
  const yaml = config(`  inbound:
    - send-request: { responseVariableName: r, url: "${big.url}/", maxResponseBodySize: 4MiB }
    - set-header: { name: x-has-body, value: "@(string(has(context.Variables.r.Body)))" }
    - set-variable: { name: code, value: "@(context.Variables['r'].StatusCode)" }
    - return-response: { responseVariableName: r, headers: { x-code: ["@(string(context.Variables['code']))"] } }
`);
  await withGateway(yaml, async (g) => {
    const r = await get(`${g.url}/orders/1`);
    assert.equal(r.status, 201);
    assert.equal(r.headers['x-from'], 'big');
    // 2 MiB is over the cap on what expressions may read: Body is left out, the rest of the variable stays readable.
    assert.equal(r.headers['x-code'], '201');
    assert.equal(r.text.length, 2 * 1024 * 1024);
    assert.equal(r.headers['content-length'], String(2 * 1024 * 1024));
  });
});

test('send-request: a response body over maxResponseBodySize fails the call (ResponseBodyTooLarge)', async () => {
  const yaml = config(`  inbound:
    - send-request: { responseVariableName: r, url: "${big.url}/", maxResponseBodySize: 1MiB }
`, LAST_ERROR);
  await withGateway(yaml, async (g) => {
    const r = await get(`${g.url}/orders/1`);
    assert.equal(r.status, 599);
    assert.equal(r.json().source, 'send-request');
    assert.equal(r.json().reason, 'ResponseBodyTooLarge');
  });
});

test('send-request: timeout fails the call into onError with Reason Timeout, without waiting for the server', async () => {
  const yaml = config(`  inbound:
    - send-request: { responseVariableName: r, url: "${slow.url}/slow?key=secret", timeout: 200ms }
`, LAST_ERROR);
  await withGateway(yaml, async (g) => {
    const t0 = Date.now();
    const r = await get(`${g.url}/orders/1`);
    const took = Date.now() - t0;
    assert.equal(r.status, 599);
    assert.equal(r.json().reason, 'Timeout');
    assert.ok(took < 2000, `took ${took} ms`);
    assert.match(r.json().message, /^GET http:\/\/127\.0\.0\.1:\d+\/slow: /);
    // The query (which may carry a key) stays out of the message.
    assert.doesNotMatch(r.json().message, /secret/);
  });
});

test('send-request: without onError a failed call is a 500 in the Api\'s error style; ignoreError leaves the variable null', async () => {
  const yaml = config(`  inbound:
    - choose:
        when:
          - condition: "'x-mode' in context.Request.Headers && context.Request.Headers['x-mode'] == 'ignore'"
            policies:
              - send-request: { responseVariableName: r, url: "http://127.0.0.1:${refusedPort}/", ignoreError: true }
              - set-header: { name: x-null, value: "@(string(context.Variables['r'] == null))" }
        otherwise:
          - send-request: { responseVariableName: r, url: "http://127.0.0.1:${refusedPort}/" }
`);
  await withGateway(yaml, async (g) => {
    const failed = await get(`${g.url}/orders/1`);
    assert.equal(failed.status, 500);
    assert.equal(failed.json().message, 'Internal server error');
    assert.equal(up.seen.at(-1)?.headers['x-null'], undefined);
    const ignored = await get(`${g.url}/orders/1`, { headers: { 'x-mode': 'ignore' } });
    assert.equal(ignored.status, 200);
    assert.equal(ignored.json().headers['x-null'], 'true');
  });
});

test('send-request: a refused connection gives Reason BackendConnectionFailure', async () => {
  const yaml = config(`  inbound:
    - send-request: { responseVariableName: r, url: "http://127.0.0.1:${refusedPort}/" }
`, LAST_ERROR);
  await withGateway(yaml, async (g) => {
    const r = await get(`${g.url}/orders/1`);
    assert.equal(r.status, 599);
    assert.equal(r.json().reason, 'BackendConnectionFailure');
  });
});

test('send-request mode copy: the current request (method, headers, body) goes to the URL, or to the backend without one', async () => {
  const yaml = config(`  inbound:
    - choose:
        when:
          - condition: "'x-target' in context.Request.Headers && context.Request.Headers['x-target'] == 'url'"
            policies:
              - send-request: { mode: copy, responseVariableName: c, url: "${up.url}/copied", headers: { x-extra: ["1"], x-drop: [], Host: [api.internal] } }
        otherwise:
          - send-request: { mode: copy, responseVariableName: c }
    - return-response: { responseVariableName: c }
`);
  await withGateway(yaml, async (g) => {
    const a = await get(`${g.url}/orders/7?q=1`, { method: 'PUT', body: '{"a":1}', headers: { 'x-target': 'url', 'x-client': 'yes', 'x-drop': 'gone', 'content-type': 'application/json' } });
    const ea = a.json();
    assert.equal(ea.method, 'PUT');
    assert.equal(ea.url, '/copied');
    assert.equal(ea.headers['x-client'], 'yes');
    assert.equal(ea.headers['x-extra'], '1');
    assert.equal(ea.headers['x-drop'], undefined);
    assert.equal(ea.headers.host, 'api.internal');
    assert.equal(ea.body, '{"a":1}');
    const b = await get(`${g.url}/orders/7?q=1`, { method: 'POST', body: 'plain', headers: { 'x-client': 'again' } });
    const eb = b.json();
    // No url: the backend's URL and the path forward-request would send (the Api prefix stripped).
    assert.equal(eb.method, 'POST');
    assert.equal(eb.url, '/7?q=1');
    assert.equal(eb.headers['x-client'], 'again');
    assert.equal(eb.body, 'plain');
    // The copied Host is the client's, not the target's: it is left to the HTTP client.
    assert.equal(eb.headers.host, new URL(up.url).host);
  });
});

test('send-request: bad attributes are load problems with file:line:col', async () => {
  await assert.rejects(startGateway(config(`  inbound:
    - send-request: { responseVariableName: r }
`)), /test\.yaml:\d+:\d+: send-request: url is required with mode new/);
  await assert.rejects(startGateway(config(`  inbound:
    - send-request: { responseVariableName: r, url: "ftp://x/" }
`)), /send-request: "ftp:\/\/x\/" is not an http\(s\) URL/);
  await assert.rejects(startGateway(config(`  inbound:
    - send-request: { responseVariableName: r, url: "http://x/", headers: { Content-Length: ["1"] } }
`)), /send-request: header "Content-Length" is set by the HTTP client/);
  await assert.rejects(startGateway(config(`  inbound:
    - send-request: { url: "http://x/" }
`)), /responseVariableName/);
});

test('API Management sample 4 (external authorizer): 401 without Authorization, 403 when the authorizer says so, else forwarded', async () => {
  const yaml = config(`  inbound:
    - base: {}
    # Ensure presence of Authorization header
    - choose:
        when:
          - condition: "!('authorization' in context.Request.Headers)"
            policies:
              - return-response:
                  status: 401
                  reason: Unauthorized
                  headers: { WWW-Authenticate: ["@('Bearer realm=' + context.Request.Headers['host'])"] }
    # Invoke the authorizer (the sample's cache-lookup-value / cache-store-value around it are left out)
    - send-request:
        mode: new
        responseVariableName: response
        timeout: 10s
        ignoreError: false
        url: "${auth.url}/authorize?key=authorizer-key"
        method: GET
        headers: { Authorization: ["@(context.Request.Headers['authorization'])"] }
    # Extract authorization status from the authorizer's response
    - set-variable: { name: status, value: "@(string(context.Variables['response'].Json.status))" }
    # Authorize the request
    - choose:
        when:
          - condition: "context.Variables['status'] == '403'"
            policies:
              - return-response: { status: 403, reason: Forbidden }
  backend:
    - base: {}
  outbound:
    - base: {}
`);
  await withGateway(yaml, async (g) => {
    const authBefore = auth.seen.length;
    const upBefore = up.seen.length;
    const none = await get(`${g.url}/orders/1`);
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], `Bearer realm=${new URL(g.url).host}`);
    assert.equal(auth.seen.length, authBefore, 'no Authorization: the authorizer is not called');
    const bad = await get(`${g.url}/orders/1`, { headers: { authorization: 'Bearer bad' } });
    assert.equal(bad.status, 403);
    assert.equal(bad.text, '');
    const good = await get(`${g.url}/orders/1`, { headers: { authorization: 'Bearer good' } });
    assert.equal(good.status, 200);
    assert.equal(good.json().url, '/1');
    assert.equal(auth.seen.length, authBefore + 2);
    assert.equal(auth.seen[authBefore].url, '/authorize?key=authorizer-key');
    assert.equal(auth.seen[authBefore].headers.authorization, 'Bearer bad');
    // Only the authorized request reached the backend.
    assert.equal(up.seen.length, upBefore + 1);
  });
});

// ---------- send-one-way-request ----------

test('send-one-way-request: the pipeline does not wait for the call; it still arrives; failures are logged', async () => {
  const logs: Array<{ level: string; msg: string; fields?: Record<string, unknown> }> = [];
  const services: PolicyServices = { log: (level: string, msg: string, fields?: Record<string, unknown>) => logs.push({ level, msg, fields }) };
  const yaml = config(`  inbound:
    - send-one-way-request: { url: "${delayed.url}/event", method: POST, body: { id: "@(context.Request.Headers['x-id'])" } }
    - send-one-way-request: { url: "http://127.0.0.1:${refusedPort}/event?key=secret" }
`);
  await withGateway(yaml, async (g) => {
    const before = delayed.seen.length;
    const t0 = Date.now();
    const r = await get(`${g.url}/orders/1`, { headers: { 'x-id': 'e1' } });
    const took = Date.now() - t0;
    assert.equal(r.status, 200);
    // The target answers after 800 ms; the client had its response well before.
    assert.ok(took < 600, `took ${took} ms`);
    for (let i = 0; i < 100 && delayed.seen.length === before; i++) await new Promise((res) => setTimeout(res, 20));
    assert.equal(delayed.seen.length, before + 1);
    assert.equal(delayed.seen[before].method, 'POST');
    assert.deepEqual(JSON.parse(delayed.seen[before].body), { id: 'e1' });
    for (let i = 0; i < 100 && logs.length === 0; i++) await new Promise((res) => setTimeout(res, 20));
    const failed = logs.find((l) => l.msg === 'send-one-way-request failed');
    assert.ok(failed, JSON.stringify(logs));
    assert.equal(failed.fields?.url, `http://127.0.0.1:${refusedPort}/event`);
    assert.equal(failed.fields?.requestId, r.headers['x-request-id']);
  }, services);
});

function fakeEnv(services: PolicyServices, file = '/nowhere/test.yaml'): CompileEnv {
  return {
    entry: { name: 'x', attrs: {}, file, line: 1, col: 1, path: 'spec.inbound[0]' },
    section: 'inbound',
    compileList: () => [],
    route: { apiKey: 'default/a', api: 'a', operation: '*', urlTemplate: '/', apiPath: '/', stripPrefix: '', gateway: 'g', spec: null },
    services,
    backends: { byName: () => { throw new Error('none'); }, forUrl: () => { throw new Error('none'); }, withClientCertificate: () => () => undefined },
  } as CompileEnv;
}

test('send-one-way-request: at most MAX_IN_FLIGHT calls per worker; more are dropped and logged, not queued', async () => {
  const pending: Array<(r: OutboundResponse) => void> = [];
  const sent: OutboundRequest[] = [];
  const client: HttpClient = (req) => {
    sent.push(req);
    return new Promise((resolve) => pending.push(resolve));
  };
  const logs: string[] = [];
  const services: PolicyServices = { httpClient: client, log: (_l: string, msg: string) => logs.push(msg) };
  const step = sendOneWayRequestPolicy({ mode: 'new', url: 'http://127.0.0.1:1/e', headers: {}, timeout: 60_000 }, fakeEnv(services));
  const pc = { ex: { requestId: 'r1' } } as unknown as PolicyContext;
  for (let i = 0; i < MAX_IN_FLIGHT + 3; i++) assert.equal(step.run(pc), undefined, 'never returns a promise: the pipeline goes on');
  assert.equal(sent.length, MAX_IN_FLIGHT);
  assert.equal(logs.filter((m) => m.includes('dropped')).length, 3);
  // Once calls finish there is room again.
  for (const done of pending.splice(0)) done({ status: 204, reason: '', headers: [], body: Buffer.alloc(0) });
  await new Promise((res) => setImmediate(res));
  step.run(pc);
  assert.equal(sent.length, MAX_IN_FLIGHT + 1);
});

// ---------- certificates ----------

interface Pki extends TestPki {
  cnf: string;
  /** A server certificate for a.example.test and 127.0.0.1. */
  server: CertPair;
  client(file: string, subj: string, o?: { issuer?: CertPair; dns?: string[]; ca?: boolean }): Promise<CertPair>;
  selfSigned(file: string, subj: string): Promise<CertPair>;
}

let pki: Pki | undefined;

async function getPki(): Promise<Pki> {
  if (pki !== undefined) return pki;
  const base = await createTestPki();
  const cnf = path.join(base.dir, 'openssl.cnf');
  const key = (f: string) => ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f];
  const CA = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
  const leafExts = (eku: string, san?: string) => [...(san ? ['-addext', `subjectAltName=${san}`] : []), '-addext', 'basicConstraints=critical,CA:FALSE', '-addext', `extendedKeyUsage=${eku}`];
  const issue = async (file: string, subj: string, issuer: CertPair | null, exts: string[]): Promise<CertPair> => {
    const pair = { certFile: path.join(base.dir, `${file}.crt`), keyFile: path.join(base.dir, `${file}.key`) };
    const by = issuer === null ? [] : ['-CA', issuer.certFile, '-CAkey', issuer.keyFile];
    await run('openssl', ['req', '-config', cnf, '-x509', ...key(pair.keyFile), '-out', pair.certFile, '-days', '2', ...by, '-subj', subj, ...exts]);
    return pair;
  };
  const client: Pki['client'] = (file, subj, o = {}) =>
    issue(file, subj, o.issuer ?? base.ca, o.ca === true ? CA : leafExts('clientAuth', o.dns?.map((d) => `DNS:${d}`).join(',')));
  const selfSigned: Pki['selfSigned'] = (file, subj) => issue(file, subj, null, CA);
  const server = await issue('srv', '/CN=a.example.test', base.ca, leafExts('serverAuth', 'DNS:a.example.test,IP:127.0.0.1'));
  pki = { ...base, cnf, server, client, selfSigned };
  return pki;
}

after(() => pki?.close());

/** An https server that requires a client certificate from the test CA and answers with its CN. */
async function startMtlsBackend(p: Pki, name: string): Promise<{ url: string; close(): Promise<void> }> {
  const server = https.createServer({ cert: readFileSync(p.server.certFile), key: readFileSync(p.server.keyFile), ca: p.caPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const peer = (req.socket as TLSSocket).getPeerCertificate();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ backend: name, cn: peer.subject?.CN ?? null, url: req.url }));
  });
  const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
  return {
    url: `https://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

test('authentication-certificate: the backend gets the client certificate; without the policy the handshake is refused', { skip: noOpenssl }, async () => {
  const p = await getPki();
  await p.client('gw-client', '/CN=gateway-client');
  const b1 = await startMtlsBackend(p, 'one');
  const b2 = await startMtlsBackend(p, 'two');
  // Relative paths resolve against the config file (here in the PKI's directory).
  const file = path.join(p.dir, 'gw.yaml');
  const backend = (name: string, url: string) => `---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: ${name} }
spec:
  url: "${url}"
  tls: { caFile: ca.crt, serverName: a.example.test }
`;
  const api = (name: string, be: string, policy: string) => `---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: ${name} }
spec: { path: /${name}, backend: ${be}, stripPath: true }
${policy ? `---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: p-${name} }
spec:
  scope: { api: ${name} }
  inbound:
${policy}` : ''}`;
  const yaml = `${GATEWAY}${backend('one', b1.url)}${backend('two', b2.url)}${api('plain', 'one', '')}${api('mtls', 'one', `    - authentication-certificate: { certFile: gw-client.crt, keyFile: gw-client.key }
`)}${api('moved', 'one', `    - set-backend-service: { backendId: two }
    - authentication-certificate: { certFile: gw-client.crt, keyFile: gw-client.key }
`)}`;
  const g = await startGateway(yaml, {}, file);
  try {
    const plain = await get(`${g.url}/plain/x`);
    assert.ok(plain.status >= 500, `without a certificate the backend refuses the handshake (got ${plain.status} ${plain.text})`);
    const ok = await get(`${g.url}/mtls/x`);
    assert.equal(ok.status, 200, ok.text);
    assert.deepEqual(ok.json(), { backend: 'one', cn: 'gateway-client', url: '/x' });
    const moved = await get(`${g.url}/moved/y`);
    assert.equal(moved.status, 200, moved.text);
    assert.deepEqual(moved.json(), { backend: 'two', cn: 'gateway-client', url: '/y' });
  } finally {
    await g.close();
    await b1.close();
    await b2.close();
  }
  // A key that does not belong to the certificate is a load problem at the policy.
  const mismatched = yaml.replaceAll('keyFile: gw-client.key', 'keyFile: a.key');
  await assert.rejects(startGateway(mismatched, {}, file), /gw\.yaml:\d+:\d+: authentication-certificate: client certificate .*gw-client\.crt with key .*a\.key/);
});

test('send-request: authenticationCertificate and caFile reach an https server that requires a client certificate', { skip: noOpenssl }, async () => {
  const p = await getPki();
  await p.client('sr-client', '/CN=send-request-client');
  const b = await startMtlsBackend(p, 'mtls');
  const policy = (cert: string) => `  inbound:
    - send-request:
        responseVariableName: r
        url: "${b.url}/token"
        caFile: ca.crt
${cert}    - return-response: { responseVariableName: r }
`;
  const file = path.join(p.dir, 'sr.yaml');
  const g = await startGateway(config(policy('        authenticationCertificate: { certFile: sr-client.crt, keyFile: sr-client.key }\n'), LAST_ERROR), {}, file);
  const without = await startGateway(config(policy(''), LAST_ERROR), {}, file);
  try {
    const r = await get(`${g.url}/orders/1`);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json(), { backend: 'mtls', cn: 'send-request-client', url: '/token' });
    // Without the certificate the server ends the handshake: a connection failure.
    const w = await get(`${without.url}/orders/1`);
    assert.equal(w.status, 599, w.text);
    assert.equal(w.json().reason, 'BackendConnectionFailure');
  } finally {
    await g.close();
    await without.close();
    await b.close();
  }
});

/** A TLS listener like Lockgate's https one (HTTP/2 with HTTP/1.1 fallback) that asks for client certificates. */
async function startTlsGateway(p: Pki, yaml: string): Promise<{ port: number; close(): Promise<void> }> {
  const loaded = parseCheckedConfig(yaml, path.join(p.dir, 'tls-gw.yaml'));
  if (!loaded.config) throw new Error(formatProblems(loaded.problems));
  const built = buildRuntime(loaded.config, undefined, {}, { registry: POLICY_REGISTRY, services: {} });
  if (!built.runtime) throw new Error(built.problems.join('\n'));
  const runtime = built.runtime;
  const state: DataPlaneState = { runtime, overloaded: false, draining: false, finish: () => {}, subscriptions: null };
  const handler = createRequestHandler(state, { name: 'tls', proto: 'https', proxied: false });
  const server = http2.createSecureServer(
    { allowHTTP1: true, cert: readFileSync(p.a.certFile), key: readFileSync(p.a.keyFile), requestCert: true, rejectUnauthorized: false },
    handler as never,
  );
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  const sockets = new Set<Socket>();
  server.on('secureConnection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as AddressInfo).port)));
  return {
    port,
    close: async () => {
      for (const s of sessions) s.destroy();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await retireRuntime(runtime, undefined);
    },
  };
}

async function tlsGet(port: number, p: Pki, client: CertPair | null, urlPath: string) {
  const dispatcher = new Agent({
    connect: { ca: p.caPem, servername: 'a.example.test', ...(client ? { cert: readFileSync(client.certFile), key: readFileSync(client.keyFile) } : {}) },
  });
  try {
    return await get(`https://127.0.0.1:${port}${urlPath}`, { dispatcher });
  } finally {
    await dispatcher.close();
  }
}

function thumbprint(pair: CertPair): string {
  return new X509Certificate(readFileSync(pair.certFile)).fingerprint.replaceAll(':', '').toLowerCase();
}

test('validate-client-certificate on a TLS listener: trust, identities (CN, subject, thumbprint through an intermediate), 403 otherwise', { skip: noOpenssl }, async () => {
  const p = await getPki();
  const one = await p.client('c-one', '/CN=client-one');
  const two = await p.client('c-two', '/O=Example/CN=client-two');
  const three = await p.client('c-three', '/CN=client-three');
  const otherCa = await p.selfSigned('other-ca', '/CN=Other CA');
  const stranger = await p.client('c-stranger', '/CN=client-one', { issuer: otherCa });
  const inter = await p.client('inter', '/CN=Lockgate Intermediate', { ca: true });
  const leaf = await p.client('c-leaf', '/CN=leaf-client', { issuer: inter, dns: ['leaf.example.test'] });
  // The client sends the intermediate with its leaf.
  const leafChain = { certFile: path.join(p.dir, 'c-leaf-chain.crt'), keyFile: leaf.keyFile };
  writeFileSync(leafChain.certFile, readFileSync(leaf.certFile, 'utf8') + readFileSync(inter.certFile, 'utf8'));
  const yaml = config(`  inbound:
    - validate-client-certificate:
        caFile: ca.crt
        identities:
          - { commonName: client-one }
          - { subject: "CN=client-two, O=Example", issuerSubject: "CN=Lockgate Test CA" }
          - { thumbprint: "${thumbprint(leaf).replace(/(..)/g, '$1:')}", dnsName: LEAF.example.test }
`, `---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: info }
spec: { path: /info, backend: up, stripPath: true }
---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: p-info }
spec:
  scope: { api: info }
  inbound:
    - validate-client-certificate: { validateTrust: false, identities: [{ thumbprint: "${thumbprint(one)}" }] }
  onError:
    - return-response: { status: 401, body: { reason: "@(context.LastError.Reason)", source: "@(context.LastError.Source)" } }
`);
  const gw = await startTlsGateway(p, yaml);
  try {
    assert.equal((await tlsGet(gw.port, p, one, '/orders/1')).status, 200);
    assert.equal((await tlsGet(gw.port, p, two, '/orders/1')).status, 200);
    const chained = await tlsGet(gw.port, p, leafChain, '/orders/1');
    assert.equal(chained.status, 200, chained.text);
    for (const [who, pair] of [['no identity matches', three], ['untrusted issuer', stranger], ['no certificate', null], ['leaf without its intermediate', leaf]] as const) {
      const r = await tlsGet(gw.port, p, pair, '/orders/1');
      assert.equal(r.status, 403, who);
      assert.deepEqual(r.json(), { statusCode: 403, message: 'Invalid client certificate.' }, who);
    }
    // onError sees why.
    const mismatch = await tlsGet(gw.port, p, three, '/info/1');
    assert.equal(mismatch.status, 401);
    assert.deepEqual(mismatch.json(), { reason: 'ClientCertificateIdentityMismatch', source: 'validate-client-certificate' });
    assert.equal((await tlsGet(gw.port, p, null, '/info/1')).json().reason, 'ClientCertificateMissing');
    assert.equal((await tlsGet(gw.port, p, one, '/info/1')).status, 200);
    // HTTP/2: the certificate comes from the session's socket.
    const session = http2.connect(`https://127.0.0.1:${gw.port}`, { ca: p.caPem, servername: 'a.example.test', cert: readFileSync(one.certFile), key: readFileSync(one.keyFile) });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const s = session.request({ ':path': '/orders/1' });
        s.on('response', (h) => resolve(Number(h[':status'])));
        s.on('error', reject);
        s.resume();
        s.end();
      });
      assert.equal(status, 200);
      const info = await new Promise<number>((resolve, reject) => {
        const s = session.request({ ':path': '/info/1' });
        s.on('response', (h) => resolve(Number(h[':status'])));
        s.on('error', reject);
        s.resume();
        s.end();
      });
      assert.equal(info, 200);
    } finally {
      session.close();
    }
  } finally {
    await gw.close();
  }
});

test('validate-client-certificate: dates (with the clock given), DN normalisation, load-time refusals', { skip: noOpenssl }, async () => {
  const p = await getPki();
  const pair = await p.client('c-dates', '/CN=dated');
  const cert = new X509Certificate(readFileSync(pair.certFile));
  const ca = new X509Certificate(readFileSync(p.ca.certFile));
  const rules: CertRules = { validateTrust: true, trusted: [ca], validateNotBefore: true, validateNotAfter: true, identities: [] };
  const mid = cert.validFromDate.getTime() + 60_000;
  assert.equal(certificateProblem([cert], rules, mid), null);
  assert.equal(certificateProblem([cert], rules, cert.validToDate.getTime() + 1000)?.reason, 'ClientCertificateExpired');
  assert.equal(certificateProblem([cert], rules, cert.validFromDate.getTime() - 1000)?.reason, 'ClientCertificateNotYetValid');
  assert.equal(certificateProblem([cert], { ...rules, validateNotAfter: false }, cert.validToDate.getTime() + 1000), null);
  assert.equal(certificateProblem([cert], { ...rules, trusted: [] }, mid)?.reason, 'ClientCertificateNotTrusted');
  assert.equal(certificateProblem([], rules, mid)?.reason, 'ClientCertificateMissing');
  // Issuer thumbprint found in caFile when the client sent no chain.
  const byIssuer = { ...rules, identities: [{ issuerThumbprint: ca.fingerprint.replaceAll(':', '') }] };
  assert.equal(certificateProblem([cert], byIssuer, mid), null);
  assert.equal(certificateProblem([cert], { ...rules, identities: [{ serialNumber: 'ABCDEF' }] }, mid)?.reason, 'ClientCertificateIdentityMismatch');

  assert.deepEqual(normalizeDn('CN=a, O=Example\\, Inc.'), normalizeDn('O=Example, Inc.\nCN=A', true));
  assert.notDeepEqual(normalizeDn('CN=a, O=b'), normalizeDn('CN=a', true));

  const env = fakeEnv({}, path.join(p.dir, 'x.yaml'));
  assert.throws(() => validateClientCertificatePolicy({ validateRevocation: true, caFile: 'ca.crt' }, env), /validateRevocation: true is not supported/);
  assert.throws(() => validateClientCertificatePolicy({}, env), /validateTrust needs caFile/);
  assert.throws(() => validateClientCertificatePolicy({ caFile: 'missing.crt' }, env), /caFile: ENOENT/);
  assert.throws(() => validateClientCertificatePolicy({ caFile: 'ca.crt', identities: [{}] }, env), /identities\[0\] names no claim/);
  assert.throws(() => validateClientCertificatePolicy({ caFile: 'ca.crt', identities: Array.from({ length: 11 }, () => ({ commonName: 'x' })) }, env), /at most 10 identities/);
  // Configured claims are normalised (case, colons, leading zeros) and read from the request's TLS socket.
  const withCert = { forward: { request: { socket: { getPeerCertificate: () => ({ raw: cert.raw }) } } } } as unknown as PolicyContext;
  const bySerial = validateClientCertificatePolicy({ caFile: 'ca.crt', identities: [{ serialNumber: `00:${cert.serialNumber.toLowerCase()}` }] }, env);
  assert.equal(bySerial.run(withCert), undefined);
  const byThumb = validateClientCertificatePolicy({ caFile: 'ca.crt', identities: [{ thumbprint: cert.fingerprint.toLowerCase() }, { commonName: 'DATED' }] }, env);
  assert.equal(byThumb.run(withCert), undefined);
  assert.throws(() => validateClientCertificatePolicy({ caFile: 'ca.crt', identities: [{ commonName: 'other' }] }, env).run(withCert), /matches none of the identities/);
  // The same policy with ignoreError lets the request go on.
  const step = validateClientCertificatePolicy({ caFile: 'ca.crt', ignoreError: true }, env);
  assert.equal(step.run({ forward: null } as unknown as PolicyContext), undefined);
  assert.throws(() => validateClientCertificatePolicy({ caFile: 'ca.crt' }, env).run({ forward: null } as unknown as PolicyContext), /no client certificate/);
});

// ---------- lockgate test ----------

/** An orders Api on a Backend the test runner stubs (no network): the head of the `lockgate test` configs below. */
const ORDERS_STUB_API = `apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: orders }
spec: { url: "http://orders.internal:8080" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: orders }
spec: { path: /orders, backend: orders, stripPath: true }
---
`;

test('lockgate test resolves NamedValues: plain ones, env ones from the environment, secret ones from the file\'s secrets; a missing secret is a problem at the NamedValue', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-lt-nv-'));
  process.env.LOCKGATE_LT_TENANT = 'acme-from-env';
  try {
    writeFileSync(path.join(dir, 'lockgate.yaml'), `${ORDERS_STUB_API}apiVersion: lockgate.dev/v1alpha1
kind: NamedValue
metadata: { name: region }
spec: { value: eu-west }
---
apiVersion: lockgate.dev/v1alpha1
kind: NamedValue
metadata: { name: tenant }
spec: { env: LOCKGATE_LT_TENANT }
---
apiVersion: lockgate.dev/v1alpha1
kind: NamedValue
metadata: { name: partner-key }
spec: { secret: partner-api-key }
---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: headers }
spec:
  scope: { api: orders }
  inbound:
    - set-header: { name: x-region, value: "{{region}}" }
    - set-header: { name: x-tenant, value: "{{tenant}}" }
    - set-header: { name: x-partner-key, value: "{{partner-key}}" }
`);
    const file = path.join(dir, 'nv.test.yaml');
    const cases = `tests:
  - name: every kind of NamedValue reaches the backend substituted
    request: { url: /orders/1 }
    expect:
      status: 200
      backend: { headers: { x-region: eu-west, x-tenant: acme-from-env, x-partner-key: test-key-1 } }
`;
    writeFileSync(file, `config: [lockgate.yaml]\nsecrets: { partner-api-key: test-key-1 }\n${cases}`);
    const results = await runTestFile(file);
    assert.equal(results.length, 1);
    assert.ok(results[0].ok, results[0].failures.join('; '));
    // Without the secret's value the config does not load, and the problem names the NamedValue, not a value.
    writeFileSync(file, `config: [lockgate.yaml]\n${cases}`);
    await assert.rejects(runTestFile(file), (err: Error) => /partner-key|partner-api-key/.test(err.message) && !err.message.includes('test-key-1'));
  } finally {
    delete process.env.LOCKGATE_LT_TENANT;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lockgate test stubs send-request by URL: answers, unstubbed URLs as connection failures, stubbed errors, client certificates', { skip: noOpenssl }, async () => {
  const p = await getPki();
  const client = await p.client('lt-client', '/CN=test-client');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-lt-'));
  try {
    writeFileSync(path.join(dir, 'ca.crt'), p.caPem);
    writeFileSync(path.join(dir, 'client.pem'), readFileSync(client.certFile));
    writeFileSync(path.join(dir, 'lockgate.yaml'), `${ORDERS_STUB_API}apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: token }
spec:
  scope: { api: orders }
  inbound:
    - choose:
        when:
          - condition: "'x-mtls' in context.Request.Headers && context.Request.Headers['x-mtls'] == 'on'"
            policies:
              - validate-client-certificate: { caFile: ca.crt, identities: [{ commonName: test-client }] }
    - send-request:
        responseVariableName: token
        url: https://auth.example/token
        method: POST
        body: "grant_type=client_credentials"
    - set-header: { name: authorization, value: "@('Bearer ' + string(context.Variables['token'].Json.access_token))" }
  onError:
    - return-response:
        status: 502
        body: { source: "@(context.LastError.Source)", reason: "@(context.LastError.Reason)" }
`);
    const file = path.join(dir, 'token.test.yaml');
    writeFileSync(file, `config: [lockgate.yaml]
tests:
  - name: the token from the stub reaches the backend
    request: { url: /orders/1 }
    sendRequest:
      https://auth.example/token: { status: 200, body: { access_token: abc, expires_in: 60 } }
    expect:
      status: 200
      backend: { calls: 1, path: /1, headers: { authorization: Bearer abc } }
  - name: an unstubbed URL fails like a refused connection
    request: { url: /orders/1 }
    expect:
      status: 502
      body: { source: send-request, reason: BackendConnectionFailure }
      backend: { calls: 0 }
  - name: a stubbed timeout
    request: { url: /orders/1 }
    sendRequest:
      https://auth.example/token: { error: timeout }
    expect:
      status: 502
      body: { reason: Timeout }
  - name: a client certificate for validate-client-certificate
    request: { url: /orders/1, headers: { x-mtls: "on" }, clientCertificate: client.pem }
    sendRequest:
      https://auth.example/token: { body: { access_token: xyz } }
    expect:
      status: 200
      backend: { headers: { authorization: Bearer xyz } }
  - name: no client certificate
    request: { url: /orders/1, headers: { x-mtls: "on" } }
    sendRequest:
      https://auth.example/token: { body: { access_token: xyz } }
    expect:
      status: 502
      body: { source: validate-client-certificate, reason: ClientCertificateMissing }
  - name: this case must fail (the stub answers abc, not nope)
    request: { url: /orders/1 }
    sendRequest:
      https://auth.example/token: { body: { access_token: abc } }
    expect:
      backend: { headers: { authorization: Bearer nope } }
`);
    const results = await runTestFile(file);
    assert.equal(results.length, 6);
    for (const r of results.slice(0, 5)) assert.ok(r.ok, `${r.name}: ${r.failures.join('; ')}`);
    assert.equal(results[5].ok, false);
    assert.match(results[5].failures.join('\n'), /backend header authorization: expected "Bearer nope", got "Bearer abc"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

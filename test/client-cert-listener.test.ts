// A real Lockgate https listener with `tls.clientCertificate: request` and the validate-client-certificate policy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import { createTestPki, opensslMissing } from './helpers/certs.ts';
import { startUpstream } from './helpers/upstream.ts';
import { startPolicyGateway } from './helpers/policy-gateway.ts';

const missing = opensslMissing();

function get(port: number, ca: string, cert?: { certFile: string; keyFile: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1', port, path: '/secure/x', servername: 'a.example.test', ca, agent: false,
        ...(cert ? { cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) } : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('an https listener asks for client certificates; the policy admits the listed identity and refuses others', { skip: missing }, async () => {
  const pki = await createTestPki();
  const up = await startUpstream();
  try {
    const one = await pki.issue('client-one', { cn: 'client-one', dns: ['one.example.test'] });
    const two = await pki.issue('client-two', { cn: 'client-two', dns: ['two.example.test'] });
    const g = await startPolicyGateway(`apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners:
    - name: http
      address: 127.0.0.1
      port: 0
      protocol: https
      tls: { certificates: [{ certFile: "${pki.a.certFile}", keyFile: "${pki.a.keyFile}" }], clientCertificate: request }
  admin: { address: 127.0.0.1, port: 0 }
  accessLog: { enabled: false }
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: "${up.url}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: secure }
spec: { path: /secure, backend: up }
---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: secure }
spec:
  scope: { api: secure }
  inbound:
    - validate-client-certificate: { caFile: "${pki.ca.certFile}", identities: [{ commonName: client-one }] }
`);
    try {
      const port = Number(new URL(g.url).port);
      assert.equal((await get(port, pki.caPem, one)).status, 200);
      assert.equal((await get(port, pki.caPem, two)).status, 403);
      assert.equal((await get(port, pki.caPem)).status, 403, 'no certificate at all');
    } finally {
      await g.close();
    }
  } finally {
    await up.close();
    pki.close();
  }
});

test('the pipeline over HTTP/2: outbound headers on a captured response, and the direct path', { skip: missing }, async () => {
  const http2 = await import('node:http2');
  const pki = await createTestPki();
  const up = await startUpstream();
  try {
    const g = await startPolicyGateway(`apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners:
    - { name: http, address: 127.0.0.1, port: 0, protocol: h2, tls: { certificates: [{ certFile: "${pki.a.certFile}", keyFile: "${pki.a.keyFile}" }] } }
  admin: { address: 127.0.0.1, port: 0 }
  accessLog: { enabled: false }
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: "${up.url}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: a }
spec: { path: /a, backend: up }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: b }
spec: { path: /b, backend: up }
---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: a }
spec:
  scope: { api: a }
  outbound:
    - set-header: { name: x-out, values: [one, two] }
---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: b }
spec:
  scope: { api: b }
  inbound:
    - set-header: { name: x-in, value: "@(context.Request.Method)" }
`);
    const client = http2.connect(`https://127.0.0.1:${new URL(g.url).port}`, { ca: pki.caPem, servername: 'a.example.test' });
    const get = (p: string) =>
      new Promise<{ headers: Record<string, unknown>; body: string }>((resolve, reject) => {
        const s = client.request({ ':path': p });
        let body = '';
        let headers: Record<string, unknown> = {};
        s.on('response', (h) => (headers = h));
        s.setEncoding('utf8').on('data', (c: string) => (body += c));
        s.on('end', () => resolve({ headers, body }));
        s.on('error', reject);
      });
    try {
      const a = await get('/a/1');
      assert.equal(a.headers[':status'], 200);
      assert.equal(a.headers['x-out'], 'one,two');
      assert.equal(JSON.parse(a.body).url, '/a/1');
      const b = await get('/b/1');
      assert.equal(b.headers[':status'], 200);
      assert.equal(JSON.parse(b.body).headers['x-in'], 'GET');
    } finally {
      client.close();
      await g.close();
    }
  } finally {
    await up.close();
    pki.close();
  }
});

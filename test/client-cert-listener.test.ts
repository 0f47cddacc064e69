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

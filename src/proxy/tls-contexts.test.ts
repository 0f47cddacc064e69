// Tests for a listener's TLS material: fingerprints that change with file contents, the client CA, and the session-ticket horizon.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import type { ListenerTls } from '../model/types.ts';
import { loadListenerTls, MAX_SESSION_SECONDS, sessionHorizon } from './tls-contexts.ts';
import { createMeshTestPki } from './test-mesh-certs.ts';

test('the fingerprint changes with the files, the generation and the client CA; notAfter is the leaf\'s', async () => {
  const pki = await createMeshTestPki();
  const other = await createMeshTestPki('other.mesh');
  try {
    const leaf = await pki.issue('srv', { uris: ['spiffe://test.mesh/ns/a/sa/b'], lifetimeMs: 3600_000 });
    const cfg: ListenerTls = {
      certificates: [{ certFile: leaf.certFile, keyFile: leaf.keyFile, hostnames: [] }],
      minVersion: 'TLSv1.2',
      clientCertificate: 'require',
      clientCaFile: pki.bundleFile,
    };
    const a = loadListenerTls(cfg);
    assert.equal(loadListenerTls(cfg).fingerprint, a.fingerprint, 'same files, same fingerprint');
    assert.equal(loadListenerTls(cfg, a), a, 'unchanged: the previous material itself, no new contexts');
    assert.ok(a.clientCa?.toString().includes('BEGIN CERTIFICATE'));
    assert.ok(Math.abs(a.notAfter - (Date.now() + 3600_000)) < 60_000);
    assert.notEqual(loadListenerTls({ ...cfg, generation: '2' }).fingerprint, a.fingerprint);
    await pki.issue('srv', { uris: ['spiffe://test.mesh/ns/a/sa/b'] });
    const b = loadListenerTls(cfg, a);
    assert.notEqual(b, a);
    assert.notEqual(b.fingerprint, a.fingerprint, 'rotated certificate');
    assert.equal(b.caFingerprint, a.caFingerprint);
    writeFileSync(pki.bundleFile, pki.rootPem + other.rootPem);
    const c = loadListenerTls(cfg);
    assert.notEqual(c.caFingerprint, b.caFingerprint, 'bundle with a second root');
    assert.notEqual(c.fingerprint, b.fingerprint);
    assert.throws(() => loadListenerTls({ ...cfg, clientCaFile: undefined }), /needs clientCaFile/);
    assert.throws(() => loadListenerTls({ ...cfg, clientCaFile: `${pki.dir}/missing.pem` }), /cannot load client CA/);
    assert.equal(loadListenerTls({ ...cfg, clientCertificate: 'request' }).clientCa, undefined);
  } finally {
    pki.close();
    other.close();
  }
});

test('sessionHorizon: no ticket outlives the certificate, and each re-key halves the next timeout', () => {
  const now = 1_000_000;
  // A day left: Node's 5-minute default, re-keyed when 5 minutes are left.
  assert.deepEqual(sessionHorizon(now + 86400_000, now), { timeoutSeconds: MAX_SESSION_SECONDS, rekeyInMs: 86400_000 - 300_000 });
  // A 6-second certificate: 3-second sessions, re-keyed after 3 s.
  assert.deepEqual(sessionHorizon(now + 6000, now), { timeoutSeconds: 3, rekeyInMs: 3000 });
  assert.deepEqual(sessionHorizon(now + 1500, now), { timeoutSeconds: 1, rekeyInMs: null });
  assert.deepEqual(sessionHorizon(Infinity, now), { timeoutSeconds: MAX_SESSION_SECONDS, rekeyInMs: null });
  // Walk a certificate to its end: at every step, sessions issued before the next re-key end by notAfter.
  const notAfter = now + 1000_000;
  let t = now;
  for (let i = 0; i < 30; i++) {
    const h = sessionHorizon(notAfter, t);
    if (h.rekeyInMs === null) break;
    assert.ok(t + h.rekeyInMs + h.timeoutSeconds * 1000 <= notAfter, `step ${i}`);
    t += h.rekeyInMs;
  }
  assert.ok(notAfter - t < 4000, 'the walk reaches the last seconds');
});

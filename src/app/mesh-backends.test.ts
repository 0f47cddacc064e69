// Completing mesh Backends: registry endpoints, the node's mTLS identity, inherited policy, and what an empty service answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCheckedConfig } from '../policy/load-checked.ts';
import { formatProblems } from '../model/load-config.ts';
import { SNAPSHOT_SCHEMA, type EndpointRecord, type Snapshot } from '../model/snapshot.ts';
import type { Config } from '../model/types.ts';
import { CertificateAuthority } from '../ca/certificate-authority.ts';
import { completeMeshBackends, completeStandaloneMeshBackends, type MeshClient } from './mesh-backends.ts';
import { gatewayConfigOf } from './gateway-node.ts';
import { DataPlane } from './data-plane.ts';

const H = 'apiVersion: lockgate.dev/v1alpha1';
const EDGE = `${H}
kind: Gateway
metadata: { name: edge }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  admin: { enabled: false }
  accessLog: { enabled: false }
---
${H}
kind: MeshService
metadata: { name: orders, namespace: shop }
spec:
  ports: [{ name: http, port: 80, protocol: http }]
  retries: { attempts: 3 }
  timeouts: { connect: 700, perTry: 9s }
---
${H}
kind: Backend
metadata: { name: orders }
spec:
  type: mesh
  meshService: shop/orders
  timeouts: { connect: 250 }
---
${H}
kind: Backend
metadata: { name: plain }
spec:
  url: http://127.0.0.1:9
---
${H}
kind: Api
metadata: { name: orders }
spec:
  path: /orders
  backend: orders
`;

function load(text: string): Config {
  const r = parseCheckedConfig(text, '/tmp/edge.yaml');
  assert.ok(r.config, formatProblems(r.problems));
  return r.config;
}

const client = (generation = 'g1'): MeshClient => ({
  certs: { certFile: '/d/cert.pem', keyFile: '/d/key.pem', bundleFile: '/d/bundle.pem', generation },
  trustDomain: 'mesh.test',
});

const ep = (address: string, o: Partial<EndpointRecord> = {}): EndpointRecord => ({
  service: 'shop/orders', node: address, address, labels: { zone: 'a' }, healthy: true, spiffeId: 'spiffe://mesh.test/ns/shop/sa/orders', ...o,
});

test('a mesh Backend gets the healthy registered endpoints, mTLS with the node certificate, and keeps the inherited policy', () => {
  const config = load(EDGE);
  const before = JSON.stringify([...config.backends]);
  const done = completeMeshBackends(config, {
    'shop/orders': [ep('127.0.0.1:7001'), ep('127.0.0.1:7002', { healthy: false }), ep('127.0.0.1:7001', { node: 'again' }), ep('127.0.0.1:7003', { labels: { version: 'v2' } })],
    'shop/other': [ep('127.0.0.1:7999', { service: 'shop/other' })],
  }, client());
  const spec = done.backends.get('default/orders')!.spec;
  assert.deepEqual(spec.endpoints, [
    { url: 'https://127.0.0.1:7001', weight: 1, labels: { zone: 'a' } },
    { url: 'https://127.0.0.1:7003', weight: 1, labels: { version: 'v2' } },
  ]);
  assert.deepEqual(spec.tls, {
    caFile: '/d/bundle.pem', certFile: '/d/cert.pem', keyFile: '/d/key.pem', verify: true,
    spiffeIds: ['spiffe://mesh.test/ns/shop/sa/orders'], generation: 'g1',
  });
  // Inherited from the MeshService unless the Backend says otherwise.
  assert.equal(spec.retries.attempts, 3);
  assert.equal(spec.timeouts.perTry, 9000);
  assert.equal(spec.timeouts.connect, 250);
  assert.equal(done.backends.get('default/plain'), config.backends.get('default/plain'), 'other Backends are the same objects');
  assert.equal(JSON.stringify([...config.backends]), before, 'the input config is not changed');
  assert.notEqual(done.version, config.version);
  assert.match(done.version, /^[0-9a-f]{12}$/);
});

test('the version moves with the endpoints and the certificate generation, and only with them', () => {
  const config = load(EDGE);
  const eps = { 'shop/orders': [ep('127.0.0.1:7001')] };
  const a = completeMeshBackends(config, eps, client());
  assert.equal(completeMeshBackends(config, { 'shop/orders': [ep('127.0.0.1:7001')] }, client()).version, a.version);
  assert.notEqual(completeMeshBackends(config, { 'shop/orders': [ep('127.0.0.1:7001'), ep('127.0.0.1:7002')] }, client()).version, a.version);
  const renewed = completeMeshBackends(config, eps, client('g2'));
  assert.notEqual(renewed.version, a.version);
  assert.equal(renewed.backends.get('default/orders')!.spec.tls!.generation, 'g2');
  // Without a mesh Backend there is nothing to complete: the very same config.
  const plain = load(EDGE.replace(/---\n[^-]*kind: MeshService[\s\S]*?(?=---\n[^-]*kind: Backend\nmetadata: \{ name: plain)/, '').replace('backend: orders', 'backend: plain'));
  assert.equal(completeMeshBackends(plain, eps, client()), plain);
});

test('with no endpoint registered, the peer ID is the service workload ID and the data plane answers 503 at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockgate-meshbe-'));
  const ca = await CertificateAuthority.create({ trustDomain: 'mesh.test' });
  const leaf = await ca.issueWithKey('spiffe://mesh.test/ns/default/sa/edge', 3600_000);
  const certs = { certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem'), bundleFile: join(dir, 'bundle.pem'), generation: 'x' };
  writeFileSync(certs.certFile, leaf.chainPem);
  writeFileSync(certs.keyFile, leaf.keyPem);
  writeFileSync(certs.bundleFile, ca.trustBundle().join(''));
  const done = completeMeshBackends(load(EDGE), {}, { certs, trustDomain: 'mesh.test' });
  const spec = done.backends.get('default/orders')!.spec;
  assert.deepEqual(spec.endpoints, []);
  assert.deepEqual(spec.tls!.spiffeIds, ['spiffe://mesh.test/ns/shop/sa/orders']);
  const plane = new DataPlane(done, { accessLog: false });
  try {
    const { http } = await plane.listen();
    const t0 = performance.now();
    const r = await request(`http://127.0.0.1:${http}/orders/1`, { headersTimeout: 5000 });
    const body = await r.body.text();
    const ms = performance.now() - t0;
    assert.equal(r.statusCode, 503, body);
    assert.match(body, /No healthy backend endpoint/);
    assert.ok(ms < 1000, `answered in ${ms.toFixed(0)} ms`);
  } finally {
    await plane.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('standalone: a mesh Backend with its own tls gets the service workload ID and a generation from its files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockgate-meshbe-'));
  try {
    for (const f of ['bundle.pem', 'cert.pem', 'key.pem']) writeFileSync(join(dir, f), `${f}\n`);
    const text = EDGE.replace('  timeouts: { connect: 250 }\n', `  endpoints: [{ url: "https://127.0.0.1:7001" }]
  tls: { caFile: ${dir}/bundle.pem, certFile: ${dir}/cert.pem, keyFile: ${dir}/key.pem }
`);
    const config = load(text);
    const hashed: string[][] = [];
    const done = completeStandaloneMeshBackends(config, (paths) => (hashed.push([...paths]), 'h1'));
    const tls = done.backends.get('default/orders')!.spec.tls!;
    assert.deepEqual(tls.spiffeIds, ['spiffe://lockgate.local/ns/shop/sa/orders'], 'the Mesh trust domain (default here)');
    assert.equal(tls.generation, 'h1');
    assert.deepEqual(hashed, [[`${dir}/bundle.pem`, `${dir}/cert.pem`, `${dir}/key.pem`]]);
    assert.deepEqual(done.backends.get('default/orders')!.spec.endpoints.map((e) => e.url), ['https://127.0.0.1:7001']);
    assert.notEqual(done.version, config.version);
    // The real hash follows the files' contents: a reload after replacing them opens new pools.
    const g1 = completeStandaloneMeshBackends(config).backends.get('default/orders')!.spec.tls!.generation;
    writeFileSync(join(dir, 'cert.pem'), 'renewed\n');
    const g2 = completeStandaloneMeshBackends(config).backends.get('default/orders')!.spec.tls!.generation;
    assert.match(g1 ?? '', /^[0-9a-f]{16}$/);
    assert.notEqual(g2, g1);
    // What the operator wrote wins; unreadable files are left for the data plane to report.
    const own = load(text.replace('key.pem }', 'key.pem, spiffeIds: ["spiffe://x.test/ns/a/sa/b"], generation: "7" }'));
    assert.equal(completeStandaloneMeshBackends(own, () => 'h1'), own);
    const unreadable = completeStandaloneMeshBackends(config, () => {
      throw new Error('ENOENT');
    });
    assert.equal(unreadable.backends.get('default/orders')!.spec.tls!.generation, undefined);
    // A mesh Backend without tls (plaintext to a permissive sidecar), and a config without mesh Backends: untouched.
    const plain = load(EDGE);
    assert.equal(completeStandaloneMeshBackends(plain, () => 'h1'), plain);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a gateway snapshot with problems or an unknown schema is refused with the reason (for the NACK)', () => {
  const snap = (config: string, schema = SNAPSHOT_SCHEMA): Snapshot => ({
    schema, version: 4, endpointsVersion: 1, config, endpoints: { 'shop/orders': [ep('127.0.0.1:7001')] }, trustBundle: [],
    node: { kind: 'gateway', namespace: 'default', service: 'edge', spiffeId: 'spiffe://mesh.test/ns/default/sa/edge' },
  });
  const ok = gatewayConfigOf(snap(EDGE), { file: '/data/snapshot-v4.yaml', client: client() });
  assert.ok('config' in ok, 'reason' in ok ? ok.reason : '');
  assert.equal(ok.config.backends.get('default/orders')!.spec.endpoints.length, 1);
  const bad = gatewayConfigOf(snap(EDGE.replace('backend: orders', 'backend: ordres')), { file: '/data/snapshot-v4.yaml', client: client() });
  assert.ok('reason' in bad);
  assert.match(bad.reason, /\/data\/snapshot-v4\.yaml:\d+:\d+: .*ordres/);
  const future = gatewayConfigOf(snap(EDGE, '2.0'), { file: '/data/snapshot-v4.yaml', client: client() });
  assert.ok('reason' in future);
  assert.match(future.reason, /schema "2\.0"/);
});

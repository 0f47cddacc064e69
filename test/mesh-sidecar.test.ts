// Two sidecars on 127.0.0.1 with certificates from the real CA: calls through the mesh, identity checks, authorization.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import tls from 'node:tls';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { request } from 'undici';
import { TestMesh, endpoint, meshYaml, idOf } from './helpers/mesh.ts';
import { startUpstream } from './helpers/upstream.ts';
import { CertificateAuthority } from '../src/ca/certificate-authority.ts';

const SERVICES = [
  { ns: 'shop', name: 'orders' },
  { ns: 'shop', name: 'inventory' },
];

const POLICY = `apiVersion: lockgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: inventory-readers, namespace: shop }
spec:
  target: { service: inventory }
  allow:
    - sources: [orders]
      methods: [GET]
      paths: ["/items/*"]`;

async function twoSidecars(mesh: TestMesh, yaml: string) {
  const app = await startUpstream();
  const ordersApp = await startUpstream();
  const inv = await mesh.workload('shop', 'inventory');
  const ord = await mesh.workload('shop', 'orders');
  const invSidecar = await mesh.sidecar(inv, 'shop/inventory', app.url, mesh.snapshot({ namespace: 'shop', service: 'inventory' }, yaml));
  const ordSidecar = await mesh.sidecar(
    ord,
    'shop/orders',
    ordersApp.url,
    mesh.snapshot({ namespace: 'shop', service: 'orders' }, yaml, { 'shop/inventory': [endpoint('shop', 'inventory', invSidecar.ports.inbound)] }),
  );
  return { app, ordersApp, inv, ord, invSidecar, ordSidecar, close: () => Promise.all([app.close(), ordersApp.close()]) };
}

test('a call from orders reaches inventory over mTLS; AccessPolicy allows GET and denies DELETE with reasons', async () => {
  const mesh = await TestMesh.create();
  try {
    const m = await twoSidecars(mesh, meshYaml({ defaultAccess: 'deny', services: SERVICES, extra: POLICY }));
    try {
      const out = `http://127.0.0.1:${m.ordSidecar.ports.outbound}`;
      // A client-supplied identity header is dropped at the first hop, never believed.
      // The caller (orders' app, on loopback) passes on the request id it was called with: one id through both hops.
      const ok = await request(`${out}/items/7`, { headers: { host: 'inventory', 'x-lockgate-client-id': 'spiffe://lockgate.local/ns/shop/sa/admin', 'x-request-id': 'orders-call-0001' } });
      const body = (await ok.body.json()) as { url: string; headers: Record<string, string> };
      assert.equal(ok.statusCode, 200);
      assert.equal(body.url, '/items/7');
      assert.equal(body.headers['x-request-id'], 'orders-call-0001', 'the request id the caller passed on reaches the app');
      assert.equal(ok.headers['x-request-id'], 'orders-call-0001', 'the response carries that id, once');
      assert.equal(body.headers['x-lockgate-client-id'], idOf('shop', 'orders'), 'the app learns the verified caller');
      assert.equal(m.app.seen.length, 1);
      // Without one, orders' sidecar makes the id and inventory's adopts it from its mTLS peer.
      const fresh = await request(`${out}/items/8`, { headers: { host: 'inventory' } });
      const freshBody = (await fresh.body.json()) as { headers: Record<string, string> };
      assert.match(String(fresh.headers['x-request-id']), /^[0-9a-f]{32}$/, 'one id in the response');
      assert.equal(freshBody.headers['x-request-id'], fresh.headers['x-request-id'], 'the app sees the id the caller got back');
      m.app.seen.pop();

      const denied = await request(`${out}/items/7`, { method: 'DELETE', headers: { host: 'inventory.shop' } });
      const err = (await denied.body.json()) as { error: { code: string; requestId: string; message: string } };
      assert.equal(denied.statusCode, 403);
      assert.equal(err.error.code, 'access_denied');
      assert.ok(err.error.requestId);
      assert.equal(m.app.seen.length, 1, 'a denied call never reaches the app');

      const other = await request(`${out}/admin`, { headers: { host: 'inventory' } });
      assert.equal(other.statusCode, 403);
      await other.body.dump();

      // An upgrade is decided like any request: a WebSocket to a path no rule allows is refused at inventory's inbound.
      const ws = await new Promise<string>((resolve) => {
        const c = net.connect(m.ordSidecar.ports.outbound, '127.0.0.1', () =>
          c.write('GET /admin HTTP/1.1\r\nhost: inventory\r\nconnection: upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'));
        let d = '';
        c.on('data', (b: Buffer) => (d += b.toString('latin1')));
        c.on('close', () => resolve(d));
        c.on('error', () => resolve(d));
        c.setTimeout(5000, () => c.destroy());
      });
      assert.match(ws, /^HTTP\/1\.1 403 /);
      assert.equal(m.app.seen.length, 1, 'the upgrade never reached the app');

      const unknown = await request(`${out}/x`, { headers: { host: 'billing' } });
      const u = (await unknown.body.json()) as { error?: { requestId?: string } };
      assert.equal(unknown.statusCode, 404);
      assert.ok(JSON.stringify(u).length > 2);
    } finally {
      await m.close();
    }
  } finally {
    await mesh.close();
  }
});

function handshake(port: number, opts: tls.ConnectionOptions): Promise<'ok' | string> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ...opts, checkServerIdentity: () => undefined }, () => {
      // TLS 1.3: a refused client certificate arrives as an alert after the client's handshake finished.
      s.write('GET /items/1 HTTP/1.1\r\nhost: inventory\r\nconnection: close\r\n\r\n');
    });
    let data = '';
    s.on('data', (d: Buffer) => (data += d.toString()));
    s.on('error', (e) => resolve(e.message));
    s.on('close', () => resolve(data.startsWith('HTTP/1.1') ? 'ok' : data || 'closed'));
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
  });
}

test('the inbound listener refuses callers without a certificate from the mesh CA; plaintext only in permissive mode', async () => {
  const mesh = await TestMesh.create();
  try {
    const m = await twoSidecars(mesh, meshYaml({ defaultAccess: 'allow', services: SERVICES }));
    try {
      const port = m.invSidecar.ports.inbound;
      const ca = readFileSync(join(m.ord.dir, 'bundle.pem'));
      const good = await handshake(port, { ca, cert: readFileSync(join(m.ord.dir, 'cert.pem')), key: readFileSync(join(m.ord.dir, 'key.pem')) });
      assert.equal(good, 'ok');
      assert.notEqual(await handshake(port, { ca }), 'ok', 'no client certificate');
      const stranger = await CertificateAuthority.create({ trustDomain: 'lockgate.local' });
      const s = await stranger.issueWithKey(idOf('shop', 'orders'), 3600_000);
      assert.notEqual(await handshake(port, { ca, cert: s.chainPem, key: s.keyPem }), 'ok', 'a certificate from another CA with the same SPIFFE ID');
      // Strict mode: a plaintext request on the mTLS port gets nothing useful.
      const plain = await new Promise<string>((resolve) => {
        const c = net.connect(port, '127.0.0.1', () => c.write('GET / HTTP/1.1\r\nhost: inventory\r\n\r\n'));
        let d = '';
        c.on('data', (b: Buffer) => (d += b.toString('latin1')));
        c.on('error', () => resolve(d));
        c.on('close', () => resolve(d));
        c.setTimeout(3000, () => c.destroy());
      });
      assert.ok(!plain.startsWith('HTTP/1.1 200'), `strict mode answered plaintext: ${plain.slice(0, 60)}`);
    } finally {
      await m.close();
    }
  } finally {
    await mesh.close();
  }
  const mesh2 = await TestMesh.create();
  try {
    const m = await twoSidecars(mesh2, meshYaml({ defaultAccess: 'allow', mtls: 'permissive', services: SERVICES }));
    try {
      const r = await request(`http://127.0.0.1:${m.invSidecar.ports.inbound}/items/1`, { headers: { host: 'inventory' } });
      assert.equal(r.statusCode, 200, 'permissive mode accepts plaintext');
      await r.body.dump();
    } finally {
      await m.close();
    }
  } finally {
    await mesh2.close();
  }
});

test('the caller checks the peer SPIFFE ID: an endpoint presenting another identity is refused', async () => {
  const mesh = await TestMesh.create();
  try {
    const yaml = meshYaml({ services: SERVICES });
    const app = await startUpstream();
    try {
      // The "inventory" endpoint is really a sidecar with orders' identity.
      const imposter = await mesh.workload('shop', 'orders');
      const imp = await mesh.sidecar(imposter, 'shop/orders', app.url, mesh.snapshot({ namespace: 'shop', service: 'orders' }, yaml));
      const caller = await mesh.workload('shop', 'orders');
      const c = await mesh.sidecar(caller, 'shop/orders', app.url, mesh.snapshot({ namespace: 'shop', service: 'orders' }, yaml, { 'shop/inventory': [endpoint('shop', 'inventory', imp.ports.inbound)] }));
      const r = await request(`http://127.0.0.1:${c.ports.outbound}/x`, { headers: { host: 'inventory' } });
      assert.ok(r.statusCode >= 502 && r.statusCode <= 503, `status ${r.statusCode}`);
      await r.body.dump();
      assert.equal(app.seen.length, 0);
    } finally {
      await app.close();
    }
  } finally {
    await mesh.close();
  }
});

test('MeshRoute: header and path rules pick a version subset; a rule with its own timeout answers 504 in time', async () => {
  const mesh = await TestMesh.create();
  const slowTimers = new Set<NodeJS.Timeout>();
  const app = (version: string) =>
    startUpstream((req, res) => {
      const send = (): void => {
        const text = JSON.stringify({ version, url: req.url });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      if (req.url?.startsWith('/slow')) {
        const t = setTimeout(() => {
          slowTimers.delete(t);
          if (!res.destroyed) send();
        }, 3000);
        slowTimers.add(t);
      } else send();
    });
  const v1 = await app('v1');
  const v2 = await app('v2');
  try {
    const route = `apiVersion: lockgate.dev/v1alpha1
kind: MeshRoute
metadata: { name: inventory, namespace: shop }
spec:
  service: inventory
  rules:
    - matches: [{ headers: { x-canary: "yes" } }]
      backends: [{ service: inventory, version: v2, weight: 1 }]
    - matches: [{ path: { type: prefix, value: /slow } }]
      backends: [{ service: inventory, version: v1, weight: 1 }]
      timeouts: { perTry: 300ms }
      retries: { attempts: 0 }
    - backends: [{ service: inventory, version: v1, weight: 1 }]`;
    const yaml = meshYaml({ services: SERVICES, extra: route });
    const w1 = await mesh.workload('shop', 'inventory');
    const w2 = await mesh.workload('shop', 'inventory');
    const s1 = await mesh.sidecar(w1, 'shop/inventory', v1.url, mesh.snapshot({ namespace: 'shop', service: 'inventory' }, yaml));
    const s2 = await mesh.sidecar(w2, 'shop/inventory', v2.url, mesh.snapshot({ namespace: 'shop', service: 'inventory' }, yaml));
    const ord = await mesh.workload('shop', 'orders');
    const eps = { 'shop/inventory': [endpoint('shop', 'inventory', s1.ports.inbound, { version: 'v1' }, 'i1'), endpoint('shop', 'inventory', s2.ports.inbound, { version: 'v2' }, 'i2')] };
    const c = await mesh.sidecar(ord, 'shop/orders', v1.url, mesh.snapshot({ namespace: 'shop', service: 'orders' }, yaml, eps));
    const out = `http://127.0.0.1:${c.ports.outbound}`;
    const versionOf = async (path: string, headers: Record<string, string> = {}) => {
      const r = await request(`${out}${path}`, { headers: { host: 'inventory', ...headers } });
      return ((await r.body.json()) as { version: string }).version;
    };
    for (let i = 0; i < 4; i++) assert.equal(await versionOf('/items/1'), 'v1', 'the default rule goes to v1 only');
    for (let i = 0; i < 4; i++) assert.equal(await versionOf('/items/1', { 'x-canary': 'yes' }), 'v2', 'the header rule goes to v2');
    const t0 = performance.now();
    const slow = await request(`${out}/slow/report`, { headers: { host: 'inventory' } });
    const ms = performance.now() - t0;
    assert.equal(slow.statusCode, 504);
    await slow.body.dump();
    assert.ok(ms < 2500, `the rule's 300 ms timeout answered after ${Math.round(ms)} ms`);
  } finally {
    for (const t of slowTimers) clearTimeout(t);
    await mesh.close();
    await Promise.all([v1.close(), v2.close()]);
  }
});

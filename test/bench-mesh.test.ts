// The mesh-hop benchmark's parts: h2load parsing, ratios, the sidecar snapshot, nginx configs, and a real bare-mesh mTLS round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBareHop } from '../bench/bare-mesh.ts';
import { benchSpiffeId, createMeshCerts } from '../bench/mesh-certs.ts';
import { burstOrder, meshNginxHopA, meshNginxHopB, sidecarSnapshot } from '../bench/mesh-hop.ts';
import { ASSERTION_ISSUER, BENCH_GROUP, BLOCKED_USER, identityGatewayYaml } from '../bench/mesh-identity.ts';
import { h2loadArgs, openLoopRatios, parseH2loadLog, parseH2loadSummary, percentile } from '../bench/open-loop.ts';
import type { OpenLoopEntry } from '../bench/open-loop.ts';
import { computeRatios } from '../bench/report.ts';
import type { SystemResult } from '../bench/report.ts';
import { buildScenarios, parseOnly, selectScenarios } from '../bench/scenarios.ts';
import { parseConfigText } from '../src/model/load-config.ts';
import { parseAssertionKeys } from '../src/proxy/assertion.ts';
import { snapshotSchemaSupported } from '../src/model/snapshot.ts';

const H2LOAD_TEXT = `finished in 4.00s, 503.33 req/s, 66.36KB/s
requests: 1510 total, 1510 started, 1510 done, 1507 succeeded, 3 failed, 0 errored, 1 timeout
status codes: 1505 2xx, 0 3xx, 2 4xx, 0 5xx
traffic: 199.07KB (203850) total, 173.59KB (177760) headers (space savings 0.00%), 23.67KB (24240) data
                     min         max         mean         sd        +/- sd
time for request:      109us     16.27ms      1.09ms      1.30ms    88.87%
`;

test('parseH2loadSummary reads the request counts and 2xx, and refuses output without them', () => {
  assert.deepEqual(parseH2loadSummary(H2LOAD_TEXT), { total: 1510, succeeded: 1507, failed: 3, errored: 0, timeout: 1, status2xx: 1505 });
  assert.throws(() => parseH2loadSummary('starting benchmark...\nconnect: Connection refused\n'), /unrecognised h2load output/);
});

test('parseH2loadLog keeps 2xx durations, counts the rest, and spans start to last end', () => {
  const log = '1000000\t200\t300\n1000100\t200\t500\n1000200\t-1\t0\n1000300\t503\t200\n1001000\t200\t1000\n';
  const r = parseH2loadLog(log);
  assert.deepEqual(r.durationsUs, [300, 500, 1000]);
  assert.equal(r.failures, 2);
  assert.deepEqual(r.otherStatuses, { '-1': 1, '503': 1 });
  assert.equal(r.spanUs, 2000);
  assert.throws(() => parseH2loadLog('1\t200\n'), /malformed/);
});

test('percentile is nearest-rank', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(xs, 50), 50);
  assert.equal(percentile(xs, 99), 99);
  assert.equal(percentile([7], 99), 7);
  assert.ok(Number.isNaN(percentile([], 50)));
});

test('h2loadArgs splits the total rate over 10 HTTP/1.1 connections, pinned, with the Host as :authority', () => {
  const args = h2loadArgs({ cpu: 0, port: 8080, host: 'b', paths: ['/'], rate: 3333, durationS: 4, dir: '/tmp' }, '/tmp/u', '/tmp/l');
  assert.deepEqual(args.slice(0, 2), ['-c', '0']);
  for (const a of ['--h1', '--rps=333.3', '-c10', '-D4', '--log-file=/tmp/l', ':authority: b']) assert.ok(args.includes(a), a);
});

const entry = (system: string, rate: string, addedP50: number | null, addedP99: number | null): OpenLoopEntry => ({
  system, rate, target_rps: 1000, achieved_rps: 1000, p50_ms: 1, p99_ms: 2, direct_p50_ms: 0.1, direct_p99_ms: 0.2, added_p50_ms: addedP50, added_p99_ms: addedP99, errors: 0,
});

test('openLoopRatios compare the added latency of lockgate with bare-mesh at each rate', () => {
  const report = { tool: 'h2load', connections: 10, duration_s: 4, entries: [entry('lockgate', '1000', 0.6, 2), entry('bare-mesh', '1000', 0.5, 1.6), entry('lockgate', 'half-max', 1, null), entry('bare-mesh', 'half-max', 0.8, 1)] };
  assert.deepEqual(openLoopRatios(report), {
    'latency-p50@1000:lockgate/bare-mesh': 1.2, 'latency-p99@1000:lockgate/bare-mesh': 1.25,
    'latency-p50@half-max:lockgate/bare-mesh': 1.25, 'latency-p99@half-max:lockgate/bare-mesh': null,
  });
  assert.equal(openLoopRatios(undefined)['latency-p50@1000:lockgate/bare-mesh'], null);
});

test('mesh-hop ratios: req/s against bare-mesh and nginx, RSS and CPU against bare-mesh; a system that did not run gives null', () => {
  const r = (system: string, rps: number, rss: number, cpu: number): SystemResult => ({ system, rps, p50_ms: 1, p99_ms: 2, cpu_us_per_req: cpu, rss_mb: rss, anon_mb: 10 });
  assert.deepEqual(computeRatios('mesh-hop', [r('lockgate', 8000, 75, 120), r('bare-mesh', 10_000, 60, 100), r('nginx', 25_000, 10, 40)]), {
    'lockgate/bare-mesh': 0.8, 'lockgate/nginx': 0.32, 'rss:lockgate/bare-mesh': 1.25, 'cpu:lockgate/bare-mesh': 1.2,
  });
  const missing: SystemResult = { system: 'lockgate', rps: null, p50_ms: null, p99_ms: null, cpu_us_per_req: null, rss_mb: null, anon_mb: null, note: 'not available' };
  assert.equal(computeRatios('mesh-hop', [missing, r('bare-mesh', 10_000, 60, 100)])['lockgate/bare-mesh'], null);
});

test('mesh-hop runs lockgate, bare-mesh and nginx; bare-mesh is in no other scenario', () => {
  const all = buildScenarios();
  const mesh = all.find((s) => s.name === 'mesh-hop');
  assert.deepEqual(mesh?.systems, ['lockgate', 'bare-mesh', 'nginx']);
  assert.ok(mesh?.requests.every((q) => q.host === 'b' && q.method === 'GET'));
  assert.deepEqual(all.filter((s) => s.systems.includes('bare-mesh')).map((s) => s.name), ['mesh-hop']);
  assert.deepEqual(selectScenarios(all, parseOnly('mesh-hop')).map((s) => s.name), ['mesh-hop']);
  assert.deepEqual(selectScenarios(all, parseOnly(',bare-mesh')).map((s) => [s.name, s.systems]), [['mesh-hop', ['bare-mesh']]]);
});

test('mesh-identity: Lockgate only, 1,000 distinct users of bench-users, each with its own ES256 token', () => {
  const all = buildScenarios();
  const s = all.find((x) => x.name === 'mesh-identity');
  assert.deepEqual(s?.systems, ['lockgate']);
  assert.equal(s?.requests.length, 1000);
  const claims = s!.requests.map((q) => {
    assert.equal(q.method, 'GET');
    assert.equal(q.headers?.length, 1);
    const [name, scheme, token] = q.headers![0].split(' ');
    assert.deepEqual([name, scheme], ['Authorization:', 'Bearer']);
    const [head, body] = token.split('.').slice(0, 2).map((p) => JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>);
    assert.equal(head.alg, 'ES256');
    return body;
  });
  assert.deepEqual([claims[0].sub, claims[999].sub], ['user-0000', 'user-0999']);
  assert.equal(new Set(claims.map((c) => c.sub)).size, 1000);
  assert.ok(claims.every((c) => JSON.stringify(c.groups) === JSON.stringify([BENCH_GROUP]) && (c.exp as number) > Date.now() / 1000 + 3600));
  assert.equal(new Set(s!.requests.map((q) => q.path)).size, 1000);
  assert.deepEqual(selectScenarios(all, parseOnly('mesh-identity')).map((x) => [x.name, x.systems]), [['mesh-identity', ['lockgate']]]);
  assert.deepEqual(selectScenarios(all, parseOnly('mesh-identity,bare-mesh')), [], 'bare-mesh has no mesh-identity');
});

test('burstOrder: two members alternate which goes first; three or more keep one cycle, so none waits longer than the rest', () => {
  assert.deepEqual([0, 1, 2].map((k) => burstOrder(2, k)), [[0, 1], [1, 0], [0, 1]]);
  assert.deepEqual([0, 1, 2, 3].map((k) => burstOrder(3, k)), [[0, 1, 2], [0, 1, 2], [0, 1, 2], [0, 1, 2]]);
  assert.deepEqual(burstOrder(1, 5), [0]);
  // The longest wait between two bursts of one member, over many bursts: at most 2 (two members), members − 1 (more).
  for (const n of [2, 3, 4]) {
    const sequence = Array.from({ length: 12 }, (_, k) => burstOrder(n, k)).flat();
    for (let m = 0; m < n; m++) {
      const at = sequence.flatMap((x, i) => (x === m ? [i] : []));
      const longest = Math.max(...at.slice(1).map((i, j) => i - at[j] - 1));
      assert.ok(longest <= Math.max(2, n - 1), `${n} members: member ${m} waits ${longest} bursts`);
    }
  }
});

test('mesh-identity configs: the gateway and sidecar b pass Lockgate validation, with the policies and keys each needs', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-identity-'));
  try {
    const certs = await createMeshCerts(dir);
    const identity = buildScenarios().find((x) => x.name === 'mesh-identity')!.meshIdentity!;
    // The gateway's keys file carries the signing key, sidecar b's snapshot the public keys only.
    assert.equal(parseAssertionKeys(JSON.stringify(identity.gatewayKeys), 'gw').signing?.kid, identity.gatewayKeys.keys[0].kid);
    assert.equal(identity.gatewayKeys.issuer, ASSERTION_ISSUER);
    const snap = sidecarSnapshot('b', certs, 18443, identity);
    assert.deepEqual(snap.identity, identity.sidecarKeys);
    assert.equal(snap.identity?.signing, undefined);
    const side = parseConfigText(snap.config, 'snapshot.yaml');
    assert.deepEqual(side.problems, []);
    assert.equal(side.config?.mesh.spec.defaultAccess, 'deny');
    const policy = side.config?.accessPolicies[0];
    assert.equal(policy?.spec.target.service, 'bench/b');
    assert.match(JSON.stringify(policy?.spec.deny), new RegExp(BLOCKED_USER));
    // mesh-hop's snapshot stays as it was: no keys, access allowed by default.
    assert.equal(sidecarSnapshot('b', certs, 18443).identity, undefined);
    writeFileSync(join(dir, 'k.json'), JSON.stringify(identity.gatewayKeys));
    const yaml = identityGatewayYaml({ port: 18080, adminPort: 18081, bPort: 18443, accessLogPath: join(dir, 'a.log'), keysFile: join(dir, 'k.json'), certs, identity, discovery: 'http://127.0.0.1:18999/.well-known/openid-configuration' });
    const gw = parseConfigText(yaml, 'gateway.yaml');
    assert.deepEqual(gw.problems, []);
    // The end user is validated the way an identity-aware Api is configured: an IdentityProvider, no ApiPolicy.
    assert.deepEqual(gw.config?.apis[0].spec.authentication?.providers, ['bench-idp']);
    assert.equal(gw.config?.apiPolicies.length, 0);
    assert.deepEqual(gw.config?.gateway.spec.mesh?.identity, certs.a.spiffeId);
    assert.equal(gw.config?.gateway.spec.mesh?.assertions?.exchange, false);
    const b = gw.config?.backends.get('default/b')?.spec;
    assert.equal(b?.type, 'mesh');
    assert.deepEqual(b?.tls?.spiffeIds, [certs.b.spiffeId]);
    assert.deepEqual(b?.endpoints.map((e) => e.url), ['https://127.0.0.1:18443']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the bench PKI and snapshot: leaves carry one SPIFFE URI SAN, the snapshot config passes Lockgate validation', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-mesh-'));
  try {
    const certs = await createMeshCerts(dir);
    const { X509Certificate } = await import('node:crypto');
    const leaf = new X509Certificate(readFileSync(certs.b.certFile));
    assert.equal(leaf.subjectAltName, `URI:${benchSpiffeId('b')}`);
    assert.ok(leaf.checkIssued(new X509Certificate(readFileSync(certs.b.certFile, 'utf8').split(/(?=-----BEGIN CERTIFICATE-----)/)[1])));
    const snap = sidecarSnapshot('a', certs, 18443);
    assert.ok(snapshotSchemaSupported(snap.schema));
    assert.equal(snap.node.spiffeId, 'spiffe://lockgate.local/ns/bench/sa/a');
    assert.deepEqual(snap.endpoints['bench/b'].map((e) => [e.address, e.spiffeId]), [['127.0.0.1:18443', 'spiffe://lockgate.local/ns/bench/sa/b']]);
    const { config, problems } = parseConfigText(snap.config, 'snapshot.yaml');
    assert.deepEqual(problems, []);
    assert.equal(config?.mesh.spec.defaultAccess, 'allow');
    assert.deepEqual([...(config?.meshServices.keys() ?? [])].sort(), ['bench/a', 'bench/b']);
    const a = meshNginxHopA('/tmp/b', 18001, 18443, certs);
    const b = meshNginxHopB('/tmp/b', 18443, 18000, certs);
    assert.match(a, /proxy_pass https:\/\/hop_b;/);
    assert.match(a, /proxy_ssl_verify on;/);
    assert.match(a, new RegExp(`proxy_ssl_certificate ${certs.a.certFile};`));
    assert.match(a, /proxy_ssl_name b\.bench;/);
    assert.match(a, /server 127\.0\.0\.1:18443;\s+keepalive 128;/);
    assert.match(b, /listen 127\.0\.0\.1:18443 ssl /);
    assert.match(b, /ssl_verify_client on;/);
    for (const conf of [a, b]) assert.doesNotMatch(conf, /\/var\/|\/run\//);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bare-mesh: A reaches the app through B over mTLS, and refuses a B whose SPIFFE ID is not the expected one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-mesh-'));
  const app = createServer((_req, res) => res.end('hello world\n'));
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  const closers: Array<{ close(): Promise<void> }> = [];
  try {
    const certs = await createMeshCerts(dir);
    const read = (f: string): string => readFileSync(f, 'utf8');
    const port = async (): Promise<number> => {
      const s = createServer();
      await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
      const p = (s.address() as AddressInfo).port;
      await new Promise<void>((resolve) => s.close(() => resolve()));
      return p;
    };
    const [bPort, aPort, wrongPort] = [await port(), await port(), await port()];
    closers.push(await startBareHop({
      port: bPort, upstream: `http://127.0.0.1:${(app.address() as AddressInfo).port}`,
      serverTls: { cert: read(certs.b.certFile), key: read(certs.b.keyFile), clientCa: read(certs.rootFile), trustDomain: 'lockgate.local' },
    }));
    const client = (spiffeId: string) => ({ cert: read(certs.a.certFile), key: read(certs.a.keyFile), ca: read(certs.rootFile), spiffeId });
    closers.push(await startBareHop({ port: aPort, upstream: `https://127.0.0.1:${bPort}`, clientTls: client(benchSpiffeId('b')) }));
    closers.push(await startBareHop({ port: wrongPort, upstream: `https://127.0.0.1:${bPort}`, clientTls: client(benchSpiffeId('c')) }));
    const get = async (p: number): Promise<[number, string]> => {
      const res = await fetch(`http://127.0.0.1:${p}/api/items/1`, { signal: AbortSignal.timeout(5000) });
      return [res.status, await res.text()];
    };
    assert.deepEqual(await get(aPort), [200, 'hello world\n']);
    assert.equal((await get(wrongPort))[0], 502);
  } finally {
    for (const c of closers.reverse()) await c.close();
    await new Promise<void>((resolve) => app.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  }
});

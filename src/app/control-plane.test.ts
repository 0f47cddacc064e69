// Tests for the control plane's composition root: trust domain from the stored Mesh, own certificate renewed at half life.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connect } from 'node:tls';
import { test } from 'node:test';
import { SqliteConfigStore } from '../store/sqlite-config-store.ts';
import { CA_STATE_KEY, ControlPlane } from './control-plane.ts';

const MESH = 'apiVersion: lockgate.dev/v1alpha1\nkind: Mesh\nmetadata:\n  name: default\nspec:\n  trustDomain: shop.example\n  certificateLifetime: 10s\n';

function serverCert(port: number, ca: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca, checkServerIdentity: () => undefined }, () => {
      resolve(s.getPeerX509Certificate()!);
      s.end();
    });
    s.on('error', reject);
  });
}

test('the stored Mesh sets the trust domain and lifetime; the certificate is renewed at half life', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-cp-'));
  const seed = SqliteConfigStore.open(dir);
  await seed.put('/config/Mesh/default/default', MESH);
  await seed.close();
  const out: string[] = [];
  const logs: string[] = [];
  const cp = await ControlPlane.start({ dataDir: dir, port: 0, version: 't', env: {}, out: (l) => out.push(l), log: (l) => logs.push(l) });
  try {
    assert.equal(cp.info.trustDomain, 'shop.example');
    assert.equal(cp.info.spiffeId, 'spiffe://shop.example/ns/lockgate-system/sa/control-plane');
    assert.ok(logs.some((l) => l.includes('generated a master key')));
    assert.equal(out.filter((l) => l.includes('bootstrap admin token')).length, 1);
    const port = Number(new URL(cp.url).port);
    const ca = readFileSync(cp.info.caFile, 'utf8');
    const first = await serverCert(port, ca);
    assert.equal(first.subjectAltName, `URI:${cp.info.spiffeId}`);
    assert.ok(Date.parse(first.validTo) - Date.now() <= 11_000, 'the Mesh lifetime applies');
    await new Promise((r) => setTimeout(r, 3_000));
    assert.equal((await serverCert(port, ca)).serialNumber, first.serialNumber, 'not renewed before half life');
    await new Promise((r) => setTimeout(r, 3_500));
    const renewed = await serverCert(port, ca);
    assert.notEqual(renewed.serialNumber, first.serialNumber, 'renewed after half life');
    assert.ok(Date.parse(renewed.validTo) > Date.parse(first.validTo));
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an intermediate with less than 30 days left is renewed automatically and saved', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-cp-'));
  const quiet = { out: () => {}, log: () => {} };
  try {
    const first = await ControlPlane.start({ dataDir: dir, port: 0, version: 't', env: {}, ...quiet });
    await first.close();
    const seen = SqliteConfigStore.open(dir);
    const before = JSON.parse((await seen.get(CA_STATE_KEY))!.value) as { intermediate: { certPem: string } };
    await seen.close();
    // 340 days later (by the control plane's clock) the 365-day intermediate has 25 days left.
    const logs: string[] = [];
    const later = await ControlPlane.start({ dataDir: dir, port: 0, version: 't', env: {}, now: () => Date.now() + 340 * 86_400_000, out: () => {}, log: (l) => logs.push(l) });
    try {
      const deadline = Date.now() + 10_000;
      while (!logs.some((l) => l.includes('"ca_intermediate_renewed"')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const line = logs.find((l) => l.includes('"ca_intermediate_renewed"'));
      assert.ok(line, logs.join('\n'));
      assert.equal(JSON.parse(line).automatic, true);
    } finally {
      await later.close();
    }
    const store = SqliteConfigStore.open(dir);
    const after = JSON.parse((await store.get(CA_STATE_KEY))!.value) as { intermediate: { certPem: string }; roots: unknown[] };
    await store.close();
    assert.notEqual(after.intermediate.certPem, before.intermediate.certPem, 'a new intermediate was saved');
    assert.equal(after.roots.length, 1, 'under the same root');
    assert.ok(new X509Certificate(after.intermediate.certPem).validToDate.getTime() > Date.now() + 700 * 86_400_000, 'good for a year from the (shifted) clock');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Tests for the CA: leaf contents (read back with node:crypto and @peculiar/x509), CSR handling, lifetimes, intermediate
// expiry and revocation, root import, root rotation, and save/load with sealed keys.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, createPrivateKey, createPublicKey, randomBytes, type webcrypto } from 'node:crypto';
import { LocalKeyWrapper } from '../secrets/key-wrapper.ts';
import { CertificateAuthority, CLOCK_SKEW_MS, MAX_LEAF_LIFETIME_MS, MIN_LEAF_LIFETIME_MS } from './certificate-authority.ts';
import { CaError } from './ca-error.ts';
import { pemOf, wc, x509 } from './ca-crypto.ts';
import { createKeyAndCsr } from './csr.ts';
import { verifySvid } from './peer-identity.ts';

const TD = 'mesh.test';
const ID = `spiffe://${TD}/ns/shop/sa/orders`;
const DAY = 86_400_000;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

function clock(start = Date.UTC(2026, 0, 15, 12, 0, 0, 750)): { now: () => number; set: (t: number) => void; get: () => number } {
  let t = start;
  return { now: () => t, set: (v) => { t = v; }, get: () => t };
}

function code(c: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof CaError, `expected a CaError, got ${String(err)}`);
    assert.equal(err.code, c, err.message);
    return true;
  };
}

/** A CSR that asks for things the CA must ignore: a DNS and a foreign URI SAN, and CA rights. */
async function greedyCsr(alg: webcrypto.EcKeyGenParams | webcrypto.RsaHashedKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' }): Promise<string> {
  const keys = await wc.subtle.generateKey(alg, true, ['sign', 'verify']);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=admin.example.com',
    keys,
    signingAlgorithm: alg.name === 'ECDSA' ? { name: 'ECDSA', hash: (alg as webcrypto.EcKeyGenParams).namedCurve === 'P-384' ? 'SHA-384' : 'SHA-256' } : alg,
    extensions: [
      new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'admin.example.com' }, { type: 'url', value: 'spiffe://evil.test/ns/x/sa/admin' }]),
      new x509.BasicConstraintsExtension(true, undefined, true),
    ],
  }, wc);
  return csr.toString('pem');
}

/** A self-signed P-256 certificate and its key, to import as a root (or not). */
async function selfSigned(opts: { ca: boolean; curve?: string; pathLength?: number; keyUsage?: number }): Promise<{ certPem: string; keyPem: string }> {
  const keys = await wc.subtle.generateKey({ name: 'ECDSA', namedCurve: opts.curve ?? 'P-256' }, true, ['sign', 'verify']);
  const exts: x509.Extension[] = [new x509.BasicConstraintsExtension(opts.ca, opts.pathLength, true)];
  if (opts.keyUsage !== undefined) exts.push(new x509.KeyUsagesExtension(opts.keyUsage, true));
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'O=Example Corp, CN=Example Root', keys, extensions: exts,
    notBefore: new Date(Date.UTC(2020, 0, 1)), notAfter: new Date(Date.now() + 3650 * DAY),
    signingAlgorithm: { name: 'ECDSA', hash: opts.curve === 'P-384' ? 'SHA-384' : 'SHA-256' },
  }, wc);
  const pkcs8 = Buffer.from(await wc.subtle.exportKey('pkcs8', keys.privateKey));
  return { certPem: pemOf(cert), keyPem: createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string };
}

function intermediateOf(chainPem: string): X509Certificate {
  const blocks = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  assert.equal(blocks.length, 2, 'chain = leaf + intermediate');
  return new X509Certificate(blocks[1]);
}

test('a leaf from a CSR has exactly the SVID shape, whatever the CSR asked for', async () => {
  const c = clock();
  const ca = await CertificateAuthority.create({ trustDomain: TD, now: c.now });
  const csrPem = await greedyCsr();
  const issued = await ca.issueFromCsr(csrPem, ID, DAY);

  const leaf = new X509Certificate(issued.certPem);
  const inter = intermediateOf(issued.chainPem);
  const root = new X509Certificate(ca.trustBundle()[0]);
  assert.ok(issued.chainPem.startsWith(issued.certPem));
  // node:crypto's view
  assert.equal(leaf.subjectAltName, `URI:${ID}`, 'one URI SAN, the one we chose; the CSR\'s DNS and URI SANs are gone');
  assert.equal(leaf.ca, false);
  assert.deepEqual([...(leaf.keyUsage ?? [])].sort(), [SERVER_AUTH, CLIENT_AUTH].sort());
  assert.equal(leaf.subject, 'O=Lockgate', 'no CN copied from the CSR');
  assert.ok(leaf.checkIssued(inter) && leaf.verify(inter.publicKey), 'signed by the intermediate');
  assert.ok(inter.checkIssued(root) && inter.verify(root.publicKey) && inter.ca, 'intermediate signed by the root');
  const csrKey = new x509.Pkcs10CertificateRequest(csrPem).publicKey.rawData;
  assert.deepEqual(leaf.publicKey.export({ type: 'spki', format: 'der' }), Buffer.from(csrKey), 'the CSR\'s key is certified');
  // Times: backdated 60 s for skew, lifetime as asked, whole seconds, reported exactly.
  assert.equal(issued.notBefore, Math.floor((c.get() - CLOCK_SKEW_MS) / 1000) * 1000);
  assert.equal(issued.notAfter, Math.floor((c.get() + DAY) / 1000) * 1000);
  assert.equal(leaf.validFromDate.getTime(), issued.notBefore);
  assert.equal(leaf.validToDate.getTime(), issued.notAfter);
  assert.equal(issued.serial, leaf.serialNumber);
  assert.match(issued.serial, /^[0-7][0-9A-F]{31}$/, '16 bytes, positive');
  assert.equal(issued.spiffeId, ID);

  // @peculiar/x509's view: the exact extensions, their criticality and values.
  const p = new x509.X509Certificate(issued.certPem);
  const pInter = new x509.X509Certificate(inter.raw);
  assert.deepEqual(Array.from(p.extensions, (e) => e.type).sort(), ['2.5.29.14', '2.5.29.15', '2.5.29.17', '2.5.29.19', '2.5.29.35', '2.5.29.37'].sort());
  const bc = p.getExtension(x509.BasicConstraintsExtension);
  assert.ok(bc !== null && bc.critical && bc.ca === false);
  const ku = p.getExtension(x509.KeyUsagesExtension);
  assert.ok(ku !== null && ku.critical);
  assert.equal(ku.usages, x509.KeyUsageFlags.digitalSignature);
  assert.deepEqual([...p.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? []], [SERVER_AUTH, CLIENT_AUTH]);
  const san = p.getExtension(x509.SubjectAlternativeNameExtension);
  assert.deepEqual(san?.names.items.map((n) => [n.type, n.value]), [['url', ID]]);
  assert.ok(p.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
  assert.equal(p.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId, pInter.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
  const ibc = pInter.getExtension(x509.BasicConstraintsExtension);
  assert.ok(ibc?.ca === true && ibc.pathLength === 0 && ibc.critical);
  assert.equal(pInter.getExtension(x509.KeyUsagesExtension)?.usages, x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
  const pRoot = new x509.X509Certificate(root.raw);
  assert.equal(pRoot.subject, `O=Lockgate, CN=${TD} root`);
  assert.equal(pRoot.getExtension(x509.BasicConstraintsExtension)?.ca, true);
  assert.ok(root.validToDate.getTime() - c.get() > 3649 * DAY, 'root: 10 years');
  assert.ok(Math.abs(inter.validToDate.getTime() - c.get() - 365 * DAY) < 2000, 'intermediate: 1 year');

  assert.deepEqual(verifySvid(issued.certPem, [issued.chainPem], ca.trustBundle(), c.get()), { spiffeId: ID });
});

test('issueWithKey returns a matching key; serials differ', async () => {
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const a = await ca.issueWithKey(ID, DAY);
  const b = await ca.issueWithKey(ID, DAY);
  assert.notEqual(a.serial, b.serial);
  const key = createPrivateKey(a.keyPem);
  assert.deepEqual(new X509Certificate(a.certPem).publicKey.export({ type: 'spki', format: 'der' }),
    createPublicKey(key).export({ type: 'spki', format: 'der' }));
  assert.ok(new X509Certificate(a.certPem).checkPrivateKey(key));
  assert.ok(!new X509Certificate(b.certPem).checkPrivateKey(key));
});

test('createKeyAndCsr makes a P-256 key and a CSR the CA accepts', async () => {
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const { keyPem, csrPem } = await createKeyAndCsr();
  const key = createPrivateKey(keyPem);
  assert.equal(key.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.match(csrPem, /^-----BEGIN CERTIFICATE REQUEST-----\n[\s\S]+-----END CERTIFICATE REQUEST-----\n$/);
  const issued = await ca.issueFromCsr(csrPem, ID, DAY);
  assert.ok(new X509Certificate(issued.certPem).checkPrivateKey(key));
});

test('lifetimes: 5 s to 90 d, else a clear error; never past the intermediate', async () => {
  const c = clock();
  const ca = await CertificateAuthority.create({ trustDomain: TD, now: c.now });
  for (const bad of [MIN_LEAF_LIFETIME_MS - 1, MAX_LEAF_LIFETIME_MS + 1, 0, -DAY, Number.NaN, Number.POSITIVE_INFINITY]) {
    await assert.rejects(ca.issueWithKey(ID, bad), (err) => code('ca_invalid_lifetime')(err) && /between 5s and 90d/.test((err as Error).message));
  }
  const short = await ca.issueWithKey(ID, MIN_LEAF_LIFETIME_MS);
  assert.equal(MIN_LEAF_LIFETIME_MS, 5_000);
  assert.equal(short.notAfter, Math.floor((c.get() + 5_000) / 1000) * 1000);
  const long = await ca.issueWithKey(ID, MAX_LEAF_LIFETIME_MS);
  assert.equal(long.notAfter, Math.floor((c.get() + MAX_LEAF_LIFETIME_MS) / 1000) * 1000);

  const brief = await CertificateAuthority.create({ trustDomain: TD, now: c.now, intermediateLifetimeMs: 2 * 3600_000 });
  const clamped = await brief.issueWithKey(ID, DAY);
  assert.equal(clamped.notAfter, brief.intermediateInfo().notAfter);
  assert.equal(new X509Certificate(clamped.certPem).validToDate.getTime(), brief.intermediateInfo().notAfter);
});

test('SPIFFE IDs: must parse, be in this trust domain and have a path', async () => {
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const csr = (await createKeyAndCsr()).csrPem;
  for (const bad of ['spiffe://other.test/ns/a/sa/b', `spiffe://${TD}`, `spiffe://${TD}/ns/a/sa/b/`, `SPIFFE://${TD}/ns/a/sa/b`, `spiffe://${TD}/a b`, '']) {
    await assert.rejects(ca.issueFromCsr(csr, bad, DAY), code('ca_invalid_spiffe_id'), bad);
    await assert.rejects(ca.issueWithKey(bad, DAY), code('ca_invalid_spiffe_id'), bad);
  }
  await assert.rejects(CertificateAuthority.create({ trustDomain: 'Mesh.Test' }), code('ca_invalid_trust_domain'));
  await assert.rejects(CertificateAuthority.create({ trustDomain: `spiffe://${TD}` }), code('ca_invalid_trust_domain'));
});

test('CSRs: signature checked, P-256 only, one request only', async () => {
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const good = (await createKeyAndCsr()).csrPem;
  // Tamper with the signed part (the subject's O=Lockgate) so the signature no longer matches.
  const der = Buffer.from(good.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
  const at = der.indexOf(Buffer.from('Lockgate'));
  assert.ok(at > 0);
  der[at] ^= 0x01;
  const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END CERTIFICATE REQUEST-----\n`;
  await assert.rejects(ca.issueFromCsr(tampered, ID, DAY), (err) => code('ca_invalid_csr')(err) && /signature/.test((err as Error).message));
  await assert.rejects(ca.issueFromCsr(await greedyCsr({ name: 'ECDSA', namedCurve: 'P-384' }), ID, DAY), (err) => code('ca_invalid_csr')(err) && /P-256/.test((err as Error).message));
  const rsa = await greedyCsr({ name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' });
  await assert.rejects(ca.issueFromCsr(rsa, ID, DAY), (err) => code('ca_invalid_csr')(err) && /P-256/.test((err as Error).message));
  for (const junk of ['', 'hello', `${good}${good}`, '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', good.repeat(50)]) {
    await assert.rejects(ca.issueFromCsr(junk, ID, DAY), code('ca_invalid_csr'));
  }
});

test('an expired or revoked intermediate refuses to issue, until renewed', async () => {
  const c = clock();
  const ca = await CertificateAuthority.create({ trustDomain: TD, now: c.now });
  const { csrPem } = await createKeyAndCsr();
  const start = c.get();
  c.set(ca.intermediateInfo().notAfter);
  await assert.rejects(ca.issueWithKey(ID, DAY), code('ca_intermediate_expired'));
  await assert.rejects(ca.issueFromCsr(csrPem, ID, DAY), code('ca_intermediate_expired'));
  c.set(ca.intermediateInfo().notAfter - 1000);
  const last = await ca.issueWithKey(ID, DAY);
  assert.equal(last.notAfter, ca.intermediateInfo().notAfter, 'clamped to the intermediate');
  c.set(start + 400 * DAY);
  await ca.renewIntermediate();
  const renewed = await ca.issueWithKey(ID, DAY);
  assert.deepEqual(verifySvid(renewed.certPem, [renewed.chainPem], ca.trustBundle(), c.get()), { spiffeId: ID });

  ca.revokeIntermediate();
  assert.equal(ca.intermediateInfo().revoked, true);
  await assert.rejects(ca.issueWithKey(ID, DAY), (err) => code('ca_intermediate_revoked')(err) && /revoked/.test((err as Error).message));
  await assert.rejects(ca.issueFromCsr(csrPem, ID, DAY), code('ca_intermediate_revoked'));
  const before = ca.intermediateInfo().fingerprint;
  await ca.renewIntermediate();
  assert.notEqual(ca.intermediateInfo().fingerprint, before);
  assert.equal(ca.intermediateInfo().revoked, false);
  await ca.issueFromCsr(csrPem, ID, DAY);
});

test('importing a root: checked, then used', async () => {
  const root = await selfSigned({ ca: true, keyUsage: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign });
  const ca = await CertificateAuthority.create({ trustDomain: TD, root });
  assert.deepEqual(ca.trustBundle(), [root.certPem]);
  const issued = await ca.issueWithKey(ID, DAY);
  assert.deepEqual(verifySvid(issued.certPem, [issued.chainPem], [root.certPem]), { spiffeId: ID });
  // A SEC1 ("EC PRIVATE KEY") key is accepted too.
  const sec1 = createPrivateKey(root.keyPem).export({ type: 'sec1', format: 'pem' }) as string;
  await CertificateAuthority.create({ trustDomain: TD, root: { certPem: root.certPem, keyPem: sec1 } });

  const other = await selfSigned({ ca: true });
  const refuse = async (r: { certPem: string; keyPem: string }, why: RegExp): Promise<void> => {
    await assert.rejects(CertificateAuthority.create({ trustDomain: TD, root: r }), (err) => code('ca_invalid_root')(err) && why.test((err as Error).message));
  };
  await refuse({ certPem: root.certPem, keyPem: other.keyPem }, /does not belong/);
  await refuse(await selfSigned({ ca: false }), /not a CA/);
  await refuse(await selfSigned({ ca: true, curve: 'P-384' }), /P-256/);
  await refuse(await selfSigned({ ca: true, pathLength: 0 }), /pathLenConstraint/);
  await refuse(await selfSigned({ ca: true, keyUsage: x509.KeyUsageFlags.digitalSignature }), /keyCertSign/);
  await refuse({ certPem: 'nope', keyPem: root.keyPem }, /exactly one PEM/);
  await refuse({ certPem: root.certPem + other.certPem, keyPem: root.keyPem }, /exactly one PEM/);
  // An intermediate (not self-signed) is not a root.
  const inter = intermediateOf((await ca.issueWithKey(ID, DAY)).chainPem);
  const interCa = await CertificateAuthority.create({ trustDomain: TD });
  await refuse({ certPem: inter.toString(), keyPem: (await interCa.issueWithKey(ID, DAY)).keyPem }, /does not belong/);
});

test('root rotation: both roots trusted while rotating, new leaves chain to the new root, old root retired at finish', async () => {
  const c = clock();
  const ca = await CertificateAuthority.create({ trustDomain: TD, now: c.now });
  const oldRoot = ca.trustBundle()[0];
  const oldLeaf = await ca.issueWithKey(ID, DAY);
  assert.deepEqual(ca.rotationStatus(), {
    phase: 'idle',
    roots: [{ fingerprint: new X509Certificate(oldRoot).fingerprint256, notAfter: new X509Certificate(oldRoot).validToDate.getTime(), active: true }],
  });
  await assert.rejects(ca.rotateFinish(), code('ca_not_rotating'));

  c.set(c.get() + 1000);
  await ca.rotateStart();
  const bundle = ca.trustBundle();
  assert.equal(bundle.length, 2);
  assert.equal(bundle[0], oldRoot);
  const newRoot = bundle[1];
  const status = ca.rotationStatus();
  assert.equal(status.phase, 'rotating');
  assert.equal(status.startedAt, c.get());
  assert.deepEqual(status.roots.map((r) => r.active), [false, true]);
  assert.equal(status.roots[1].fingerprint, new X509Certificate(newRoot).fingerprint256);
  await assert.rejects(ca.rotateStart(), code('ca_rotation_in_progress'));

  const newLeaf = await ca.issueWithKey(ID, DAY);
  const t = c.get();
  assert.deepEqual(verifySvid(newLeaf.certPem, [newLeaf.chainPem], [newRoot], t), { spiffeId: ID }, 'reissued leaves chain to the new root');
  assert.ok('error' in verifySvid(newLeaf.certPem, [newLeaf.chainPem], [oldRoot], t));
  assert.deepEqual(verifySvid(oldLeaf.certPem, [oldLeaf.chainPem], bundle, t), { spiffeId: ID }, 'old leaves still verify during the rotation');
  assert.deepEqual(verifySvid(newLeaf.certPem, [newLeaf.chainPem], bundle, t), { spiffeId: ID });

  await ca.rotateFinish();
  assert.deepEqual(ca.trustBundle(), [newRoot]);
  assert.equal(ca.rotationStatus().phase, 'idle');
  assert.equal(ca.rotationStatus().startedAt, undefined);
  const after = verifySvid(oldLeaf.certPem, [oldLeaf.chainPem], ca.trustBundle(), t);
  assert.ok('error' in after && /does not lead to a root/.test(after.error), 'old leaves fail once the old root is retired');
  assert.deepEqual(verifySvid(newLeaf.certPem, [newLeaf.chainPem], ca.trustBundle(), t), { spiffeId: ID });
  await assert.rejects(ca.rotateFinish(), code('ca_not_rotating'));

  // rotateStart also recovers from a revoked intermediate, and accepts an imported root.
  ca.revokeIntermediate();
  const imported = await selfSigned({ ca: true });
  await ca.rotateStart({ root: imported });
  assert.deepEqual(ca.trustBundle(), [newRoot, imported.certPem]);
  const fromImported = await ca.issueWithKey(ID, DAY);
  assert.deepEqual(verifySvid(fromImported.certPem, [fromImported.chainPem], [imported.certPem], c.get()), { spiffeId: ID });
});

test('save/load round-trips everything; a wrong master key or a tampered state is refused clearly', async () => {
  const c = clock();
  const wrapper = new LocalKeyWrapper(randomBytes(32));
  const ca = await CertificateAuthority.create({ trustDomain: TD, now: c.now, intermediateLifetimeMs: 30 * DAY });
  const beforeRotation = await ca.issueWithKey(ID, DAY);
  c.set(c.get() + 5000);
  await ca.rotateStart();
  ca.revokeIntermediate();
  const text = await ca.save(wrapper);
  assert.ok(!text.includes('PRIVATE KEY'), 'no plaintext key in the saved state');

  const loaded = await CertificateAuthority.load(text, [wrapper], { now: c.now });
  assert.equal(loaded.trustDomain, TD);
  assert.deepEqual(loaded.trustBundle(), ca.trustBundle());
  assert.deepEqual(loaded.rotationStatus(), ca.rotationStatus());
  assert.deepEqual(loaded.intermediateInfo(), ca.intermediateInfo());
  await assert.rejects(loaded.issueWithKey(ID, DAY), code('ca_intermediate_revoked'), 'revocation survives');
  assert.deepEqual(verifySvid(beforeRotation.certPem, [beforeRotation.chainPem], loaded.trustBundle(), c.get()), { spiffeId: ID });
  // The loaded keys are the real ones: a renewed intermediate chains to the saved active root, and the configured
  // intermediate lifetime came along.
  await loaded.renewIntermediate();
  assert.equal(loaded.intermediateInfo().notAfter, Math.floor((c.get() + 30 * DAY) / 1000) * 1000);
  const leaf = await loaded.issueWithKey(ID, DAY);
  assert.deepEqual(verifySvid(leaf.certPem, [leaf.chainPem], [ca.trustBundle()[1]], c.get()), { spiffeId: ID });
  await loaded.rotateFinish();
  assert.equal((await CertificateAuthority.load(await loaded.save(wrapper), [wrapper])).rotationStatus().phase, 'idle');

  // The intermediate's key, saved and loaded, still signs certificates that chain to the same intermediate.
  const idle = await CertificateAuthority.create({ trustDomain: TD });
  const idleLoaded = await CertificateAuthority.load(await idle.save(wrapper), [wrapper]);
  const x = await idleLoaded.issueWithKey(ID, DAY);
  assert.equal(intermediateOf(x.chainPem).fingerprint256, idle.intermediateInfo().fingerprint);
  assert.deepEqual(verifySvid(x.certPem, [x.chainPem], idle.trustBundle()), { spiffeId: ID });

  const stranger = new LocalKeyWrapper(randomBytes(32));
  await assert.rejects(CertificateAuthority.load(text, [stranger]),
    (err) => code('ca_state_key')(err) && /master key/.test((err as Error).message) && (err as Error).message.includes(wrapper.keyId));
  assert.equal((await CertificateAuthority.load(text, [stranger, wrapper])).trustDomain, TD, 'the right key among several');

  // A key moved into another certificate's slot does not open there (the envelope is bound to its certificate).
  const s = JSON.parse(text) as { roots: Array<{ key: string }>; intermediate: { key: string } };
  const swapped = JSON.stringify({ ...s, intermediate: { ...s.intermediate, key: s.roots[1].key } });
  await assert.rejects(CertificateAuthority.load(swapped, [wrapper]), code('ca_state_invalid'));
  for (const bad of ['', '{}', 'null', JSON.stringify({ ...s, version: 2 }), JSON.stringify({ ...s, rotation: { phase: 'idle' } }), JSON.stringify({ ...s, roots: [] })]) {
    await assert.rejects(CertificateAuthority.load(bad, [wrapper]), code('ca_state_invalid'), bad.slice(0, 40));
  }
});

test('issuing is fast enough to renew a large mesh', async () => {
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const { csrPem } = await createKeyAndCsr();
  const t0 = performance.now();
  for (let i = 0; i < 20; i++) await ca.issueFromCsr(csrPem, ID, DAY);
  const each = (performance.now() - t0) / 20;
  assert.ok(each < 100, `${each.toFixed(1)} ms per certificate`);
});

// Tests for peer identity: the one-URI-SAN rule on crafted certificates, checkServerSpiffeId, verifySvid, and real
// mTLS handshakes on 127.0.0.1 between issued certificates (wrong identity, foreign CA, root rotation).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import tls, { type PeerCertificate } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { CertificateAuthority, type IssuedCertificate } from './certificate-authority.ts';
import { CaError } from './ca-error.ts';
import { pemOf, wc, x509 } from './ca-crypto.ts';
import { checkServerSpiffeId, spiffeIdFromAltNames, spiffeIdOf, verifySvid } from './peer-identity.ts';

const TD = 'mesh.test';
const SERVER_ID = `spiffe://${TD}/ns/shop/sa/inventory`;
const CLIENT_ID = `spiffe://${TD}/ns/shop/sa/orders`;
const DAY = 86_400_000;

/** A self-signed certificate with the given SANs and leaf flags: the shapes our CA never makes. */
async function craft(sans: Array<{ type: 'url' | 'dns' | 'ip'; value: string }> | undefined, opts: { ca?: boolean; eku?: string[]; ku?: number } = {}): Promise<string> {
  const keys = await wc.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify']);
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(opts.ca ?? false, undefined, true)];
  extensions.push(new x509.KeyUsagesExtension(opts.ku ?? x509.KeyUsageFlags.digitalSignature, true));
  if (opts.eku) extensions.push(new x509.ExtendedKeyUsageExtension(opts.eku));
  if (sans) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: 'O=Test', keys, extensions, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + DAY),
  }, wc);
  return pemOf(cert);
}

function svidError(pattern: RegExp): (err: unknown) => boolean {
  return (err) => err instanceof CaError && err.code === 'svid_invalid' && pattern.test(err.message);
}

test('spiffeIdOf: exactly one URI SAN that is a SPIFFE workload ID', async () => {
  assert.equal(spiffeIdOf(await craft([{ type: 'url', value: CLIENT_ID }])), CLIENT_ID);
  const withDns = await craft([{ type: 'dns', value: 'orders.shop' }, { type: 'url', value: CLIENT_ID }, { type: 'ip', value: '10.0.0.1' }]);
  assert.equal(spiffeIdOf(withDns), CLIENT_ID, 'other SAN types are allowed');
  assert.equal(spiffeIdOf(new X509Certificate(withDns).raw), CLIENT_ID, 'DER too');

  assert.throws(() => spiffeIdOf(Buffer.from('not a certificate')), svidError(/not an X.509/));
  for (const [sans, why] of [
    [undefined, /no subject alternative names/],
    [[{ type: 'dns', value: 'orders.shop' }], /has 0/],
    [[{ type: 'url', value: CLIENT_ID }, { type: 'url', value: SERVER_ID }], /has 2/],
    [[{ type: 'url', value: CLIENT_ID }, { type: 'url', value: 'https://example.com/' }], /has 2/],
    [[{ type: 'url', value: 'https://example.com/' }], /not a SPIFFE ID/],
    [[{ type: 'url', value: `spiffe://${TD}` }], /no path/],
    [[{ type: 'url', value: `SPIFFE://${TD}/ns/a/sa/b` }], /not a SPIFFE ID/],
    [[{ type: 'url', value: `spiffe://${TD}/ns/a\0b/sa/c` }], /not a SPIFFE ID/],
    // A single SAN that prints like two (CVE-2021-44532): must not yield the second.
    [[{ type: 'url', value: `spiffe://${TD}/x, URI:${CLIENT_ID}` }], /not a SPIFFE ID/],
    [[{ type: 'dns', value: `a, URI:${CLIENT_ID}` }], /has 0/],
  ] as const) {
    const pem = await craft(sans === undefined ? undefined : [...sans]);
    assert.throws(() => spiffeIdOf(pem), svidError(why), JSON.stringify(sans));
  }
});

test('spiffeIdFromAltNames reads Node\'s quoted form and refuses malformed text', () => {
  assert.equal(spiffeIdFromAltNames(`DNS:"a, b", URI:${CLIENT_ID}`), CLIENT_ID);
  assert.equal(spiffeIdFromAltNames(`URI:${CLIENT_ID}, IP Address:127.0.0.1`), CLIENT_ID);
  assert.throws(() => spiffeIdFromAltNames(`URI:"${CLIENT_ID}\\u0000"`), svidError(/not a SPIFFE ID/));
  for (const bad of [`URI:"${CLIENT_ID}`, `URI:${CLIENT_ID}, `, 'nonsense', `URI:${CLIENT_ID},URI:${SERVER_ID}`]) {
    assert.throws(() => spiffeIdFromAltNames(bad), CaError, bad);
  }
});

test('checkServerSpiffeId accepts the expected IDs and returns (never throws) an error naming both otherwise', async () => {
  const pem = await craft([{ type: 'url', value: SERVER_ID }]);
  const peer = { subjectaltname: new X509Certificate(pem).subjectAltName, raw: new X509Certificate(pem).raw } as PeerCertificate;
  assert.equal(checkServerSpiffeId([CLIENT_ID, SERVER_ID])('127.0.0.1', peer), undefined);
  const err = checkServerSpiffeId([CLIENT_ID])('127.0.0.1', peer);
  assert.ok(err instanceof Error);
  assert.ok(err.message.includes(SERVER_ID) && err.message.includes(CLIENT_ID), err.message);
  assert.equal((err as Error & { code: string }).code, 'ERR_TLS_SPIFFE_ID_MISMATCH');
  assert.ok(checkServerSpiffeId([])('h', peer) instanceof Error);
  // Only the raw DER (subjectaltname absent) still works; garbage never throws.
  assert.equal(checkServerSpiffeId([SERVER_ID])('h', { raw: peer.raw } as PeerCertificate), undefined);
  for (const junk of [{}, { raw: Buffer.from('x') }, null, { subjectaltname: 'DNS:x' }]) {
    assert.ok(checkServerSpiffeId([SERVER_ID])('h', junk as unknown as PeerCertificate) instanceof Error);
  }
});

test('verifySvid refuses leaves that break the SVID rules, and unknown or expired chains', async () => {
  const now = Date.now();
  const sans = [{ type: 'url' as const, value: CLIENT_ID }];
  const selfSignedCa = await craft(sans, { ca: true, ku: x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature });
  assert.match((verifySvid(selfSignedCa, [], [selfSignedCa], now) as { error: string }).error, /CA/);
  const serverOnly = await craft(sans, { eku: ['1.3.6.1.5.5.7.3.1'] });
  assert.match((verifySvid(serverOnly, [], [serverOnly], now) as { error: string }).error, /serverAuth and clientAuth/);
  const noDigSig = await craft(sans, { ku: x509.KeyUsageFlags.keyAgreement });
  assert.match((verifySvid(noDigSig, [], [noDigSig], now) as { error: string }).error, /digitalSignature/);

  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const other = await CertificateAuthority.create({ trustDomain: TD });
  const leaf = await ca.issueWithKey(CLIENT_ID, 60_000);
  assert.deepEqual(verifySvid(leaf.certPem, [leaf.chainPem], ca.trustBundle(), now), { spiffeId: CLIENT_ID });
  assert.deepEqual(verifySvid(new X509Certificate(leaf.certPem).raw, [leaf.chainPem], ca.trustBundle(), now), { spiffeId: CLIENT_ID });
  assert.match((verifySvid(leaf.certPem, [leaf.chainPem], other.trustBundle(), now) as { error: string }).error, /does not lead to a root/);
  assert.match((verifySvid(leaf.certPem, [], ca.trustBundle(), now) as { error: string }).error, /does not lead to a root/, 'the intermediate is needed');
  assert.match((verifySvid(leaf.certPem, [leaf.chainPem], ca.trustBundle(), now + 5 * 60_000) as { error: string }).error, /not valid at/);
  assert.match((verifySvid(leaf.certPem, [leaf.chainPem], ca.trustBundle(), now - 5 * 60_000) as { error: string }).error, /not valid at/);
  assert.match((verifySvid(leaf.certPem, [leaf.chainPem], [], now) as { error: string }).error, /empty/);
  assert.ok('error' in verifySvid('garbage', [], ca.trustBundle(), now));
});

interface Outcome { client: string | Error; serverSawId?: string; serverError?: Error }

/**
 * One mTLS exchange on 127.0.0.1: the server requires and verifies a client certificate, then answers with the
 * client's SPIFFE ID; the client verifies the server's chain and SPIFFE ID with checkServerSpiffeId(expected).
 */
async function handshake(opts: {
  server: IssuedCertificate & { keyPem: string }; serverBundle: string[];
  client: IssuedCertificate & { keyPem: string }; clientBundle: string[];
  expected: string[];
}): Promise<Outcome> {
  const outcome: Partial<Outcome> = {};
  const server = tls.createServer({
    key: opts.server.keyPem, cert: opts.server.chainPem, ca: opts.serverBundle,
    requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2',
  }, (socket) => {
    try {
      outcome.serverSawId = spiffeIdOf(socket.getPeerCertificate().raw);
      socket.end(`hello ${outcome.serverSawId}`);
    } catch (err) {
      outcome.serverError = err as Error;
      socket.destroy();
    }
  });
  server.on('tlsClientError', (err) => { outcome.serverError = err; });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = server.address() as AddressInfo;
    outcome.client = await new Promise<string | Error>((resolve) => {
      const socket = tls.connect({
        host: '127.0.0.1', port, key: opts.client.keyPem, cert: opts.client.chainPem, ca: opts.clientBundle,
        checkServerIdentity: checkServerSpiffeId(opts.expected),
      });
      const timer = setTimeout(() => { socket.destroy(); resolve(new Error('timed out')); }, 5000);
      let data = '';
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => { data += d; });
      socket.on('error', (err) => { clearTimeout(timer); resolve(err); });
      socket.on('end', () => { clearTimeout(timer); socket.end(); resolve(data === '' ? new Error('closed without an answer') : data); });
    });
    return outcome as Outcome;
  } finally {
    server.close();
    await new Promise((resolve) => setImmediate(resolve)); // let the server see the last socket's close
  }
}

test('mTLS on 127.0.0.1 between two issued certificates: both chains and both SPIFFE IDs verified', async () => {
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const server = await ca.issueWithKey(SERVER_ID, DAY);
  const client = await ca.issueWithKey(CLIENT_ID, DAY);
  const ok = await handshake({ server, client, serverBundle: ca.trustBundle(), clientBundle: ca.trustBundle(), expected: [SERVER_ID] });
  assert.equal(ok.client, `hello ${CLIENT_ID}`);
  assert.equal(ok.serverSawId, CLIENT_ID);
  assert.equal(ok.serverError, undefined);

  const wrongId = await handshake({ server, client, serverBundle: ca.trustBundle(), clientBundle: ca.trustBundle(), expected: [`spiffe://${TD}/ns/shop/sa/payments`] });
  assert.ok(wrongId.client instanceof Error);
  assert.equal((wrongId.client as Error & { code?: string }).code, 'ERR_TLS_SPIFFE_ID_MISMATCH');
  assert.match(wrongId.client.message, /inventory.*expected .*payments/);

  // Same trust domain name, another CA: neither side trusts the other's certificates.
  const foreign = await CertificateAuthority.create({ trustDomain: TD });
  const foreignClient = await foreign.issueWithKey(CLIENT_ID, DAY);
  const badClient = await handshake({ server, client: foreignClient, serverBundle: ca.trustBundle(), clientBundle: ca.trustBundle(), expected: [SERVER_ID] });
  assert.ok(badClient.client instanceof Error, 'the client gets no answer');
  assert.equal(badClient.serverSawId, undefined);
  assert.ok(badClient.serverError instanceof Error, 'the server refused the client certificate');

  const foreignServer = await foreign.issueWithKey(SERVER_ID, DAY);
  const badServer = await handshake({ server: foreignServer, client, serverBundle: ca.trustBundle(), clientBundle: ca.trustBundle(), expected: [SERVER_ID] });
  assert.ok(badServer.client instanceof Error);
  assert.match((badServer.client as Error & { code?: string }).code ?? '', /UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|SELF_SIGNED/);
  assert.equal(badServer.serverSawId, undefined);
});

test('mTLS across a root rotation: old and new leaves interoperate while rotating; old leaves fail after finish', async () => {
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const oldServer = await ca.issueWithKey(SERVER_ID, DAY);
  await ca.rotateStart();
  const newClient = await ca.issueWithKey(CLIENT_ID, DAY);
  const newServer = await ca.issueWithKey(SERVER_ID, DAY);
  const during = ca.trustBundle();
  assert.equal(during.length, 2);
  const mixed = await handshake({ server: oldServer, client: newClient, serverBundle: during, clientBundle: during, expected: [SERVER_ID] });
  assert.equal(mixed.client, `hello ${CLIENT_ID}`);

  await ca.rotateFinish();
  const after = ca.trustBundle();
  assert.equal(after.length, 1);
  const stale = await handshake({ server: oldServer, client: newClient, serverBundle: after, clientBundle: after, expected: [SERVER_ID] });
  assert.ok(stale.client instanceof Error, 'a server still on the old root is refused');
  const fresh = await handshake({ server: newServer, client: newClient, serverBundle: after, clientBundle: after, expected: [SERVER_ID] });
  assert.equal(fresh.client, `hello ${CLIENT_ID}`);
});

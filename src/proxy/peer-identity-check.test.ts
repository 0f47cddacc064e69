// Tests for reading a peer's SPIFFE ID: Node's subjectAltName text, the X.509-SVID leaf rules, and the client-side identity check.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { checkSpiffeServerIdentity, parseSubjectAltNames, peerIdOf, PEER_ID, spiffeIdOf } from './peer-identity-check.ts';
import { createMeshTestPki, type MeshTestPki } from './test-mesh-certs.ts';

const ID = 'spiffe://test.mesh/ns/shop/sa/orders';
let pki: MeshTestPki;

before(async () => {
  pki = await createMeshTestPki();
});
after(() => pki?.close());

test('subjectAltName text: plain, JSON-quoted (commas, quotes, NUL) and malformed', () => {
  assert.deepEqual(parseSubjectAltNames('URI:spiffe://a/b, DNS:x.test, IP Address:::1'), [['URI', 'spiffe://a/b'], ['DNS', 'x.test'], ['IP Address', '::1']]);
  assert.deepEqual(parseSubjectAltNames('URI:"spiffe://a/b\\u002c URI:spiffe://a/c"'), [['URI', 'spiffe://a/b, URI:spiffe://a/c']]);
  assert.deepEqual(parseSubjectAltNames('URI:"x\\"y", DNS:a'), [['URI', 'x"y'], ['DNS', 'a']]);
  assert.deepEqual(parseSubjectAltNames('URI:"spiffe://td/a\\u0000b"'), [['URI', 'spiffe://td/a\u0000b']]);
  for (const bad of ['URI', 'URI:"open', 'URI:a,DNS:b', 'URI:a, ', '1URI:a', 'URI:"a"x']) assert.equal(parseSubjectAltNames(bad), null, bad);
});

test('a leaf with exactly one SPIFFE URI SAN gives its ID; every other shape is refused with a reason', async () => {
  const cert = async (opts: Parameters<MeshTestPki['issue']>[1]) => new X509Certificate((await pki.issue('t', opts)).certPem);
  assert.deepEqual(spiffeIdOf(await cert({ uris: [ID], dns: ['orders.test'] })), { id: ID });
  const refused: Array<[Parameters<MeshTestPki['issue']>[1], RegExp]> = [
    [{ uris: [ID, 'spiffe://test.mesh/ns/shop/sa/other'] }, /more than one URI SAN/],
    [{ uris: [ID, 'https://example.test/'] }, /more than one URI SAN/],
    [{ dns: ['orders.test'] }, /no URI SAN/],
    [{}, /no URI SAN/],
    [{ uris: ['https://example.test/'] }, /not a workload SPIFFE ID/],
    [{ uris: ['spiffe://test.mesh'] }, /needs a path/],
    [{ uris: ['spiffe://Test.mesh/ns/a'] }, /not a workload SPIFFE ID/],
    [{ uris: ['spiffe://test.mesh/ns/../a'] }, /not a workload SPIFFE ID/],
    [{ uris: ['spiffe://test.mesh/ns/a,b'] }, /not a workload SPIFFE ID/],
    [{ uris: ['spiffe://test.mesh/ns/a\u0000b'] }, /not a workload SPIFFE ID/],
    [{ uris: [ID], ca: true }, /CA certificate/],
  ];
  for (const [opts, reason] of refused) {
    const r = spiffeIdOf(await cert(opts));
    assert.ok('error' in r, `accepted ${JSON.stringify(opts)}`);
    assert.match(r.error, reason, JSON.stringify(opts));
  }
});

test('checkSpiffeServerIdentity ignores the host name and accepts only a listed ID', async () => {
  const raw = new X509Certificate((await pki.issue('srv', { uris: [ID] })).certPem).raw;
  const peer = { raw } as PeerCertificate;
  assert.equal(checkSpiffeServerIdentity([ID])('127.0.0.1', peer), undefined);
  assert.equal(checkSpiffeServerIdentity(['spiffe://test.mesh/ns/x/sa/y', ID])('anything', peer), undefined);
  const wrong = checkSpiffeServerIdentity(['spiffe://test.mesh/ns/shop/sa/inventory'])('127.0.0.1', peer);
  assert.ok(wrong instanceof Error);
  assert.match(wrong.message, /not one of/);
  const two = new X509Certificate((await pki.issue('srv2', { uris: [ID, ID] })).certPem).raw;
  assert.match(checkSpiffeServerIdentity([ID])('h', { raw: two } as PeerCertificate)?.message ?? '', /more than one URI SAN/);
  assert.ok(checkSpiffeServerIdentity([ID])('h', {} as PeerCertificate) instanceof Error, 'no certificate');
});

test('peerIdOf reads the per-connection slot, empty when absent', () => {
  assert.equal(peerIdOf({ [PEER_ID]: ID }), ID);
  assert.equal(peerIdOf({}), '');
  assert.equal(peerIdOf(null), '');
  assert.equal(peerIdOf({ 'lockgate.peerId': ID }), '', 'a string key is not the slot');
});

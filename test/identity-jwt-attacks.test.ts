// The JWT attack table (reference/identity.md §3) against the gateway's bearer path for an IdentityProvider backed by a real
// oidc-provider: every forged token is a 401 with the request id and never reaches the backend; the key material and the
// validator rules are those of test/jwt-attacks.test.ts, here end to end through discovery, JWKS and the request handler.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHmac, createPublicKey, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { startPolicyGateway, GATEWAY } from './helpers/policy-gateway.ts';
import { startUpstream } from './helpers/upstream.ts';
import { OidcFixture, oidcProviderMissing } from './helpers/oidc-provider.ts';

const API = 'https://api.local';
const b64u = (s: string | Buffer): string => Buffer.from(s).toString('base64url');

function signWith(header: Record<string, unknown>, payload: string, key: KeyObject | Buffer): string {
  const input = `${b64u(JSON.stringify(header))}.${b64u(payload)}`;
  const alg = String(header.alg);
  const sig = alg.startsWith('HS') ? createHmac(`sha${alg.slice(2)}`, key as Buffer).update(input).digest() : cryptoSign('sha256', Buffer.from(input), key as KeyObject);
  return `${input}.${sig.toString('base64url')}`;
}

test('JWT attack table on the IdentityProvider bearer path', { timeout: 60_000, skip: oidcProviderMissing }, async () => {
  const idp = await OidcFixture.start();
  const upstream = await startUpstream();
  // An attacker's key server: the gateway must never fetch a key a token points to.
  let attackerHits = 0;
  const attackerServer = http.createServer((_req, res) => {
    attackerHits++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}');
  });
  await new Promise<void>((r) => attackerServer.listen(0, '127.0.0.1', r));
  const attackerUrl = `http://127.0.0.1:${(attackerServer.address() as AddressInfo).port}`;
  const gw = await startPolicyGateway(`${GATEWAY}---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: ${upstream.url} }
---
apiVersion: lockgate.dev/v1alpha1
kind: IdentityProvider
metadata: { name: corp }
spec: { issuer: ${idp.issuer}, clientId: gateway, audience: [${API}] }
---
apiVersion: lockgate.dev/v1alpha1
kind: IdentityProvider
metadata: { name: corp-es256-only }
spec: { issuer: ${idp.issuer}, clientId: gateway, audience: [${API}], allowedAlgorithms: [ES256] }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: api }
spec: { path: /api, backend: up, authentication: { providers: [corp] } }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: strict }
spec: { path: /strict, backend: up, authentication: { providers: [corp-es256-only] } }
`);
  try {
    const now = Math.floor(Date.now() / 1000);
    const key = idp.keys[0];
    const kid = key.kid;
    const publicPem = Buffer.from(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'pem', type: 'spki' }) as string);
    const realPublicPem = Buffer.from(createPublicKey(key.privateKey).export({ format: 'pem', type: 'spki' }) as string);
    const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ iss: idp.issuer, aud: API, sub: 'alice', iat: now - 10, exp: now + 300, ...extra });
    const good = (extra: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string => idp.sign(header, claims(extra));
    const rs = (header: Record<string, unknown>, payload: string, k: KeyObject = key.privateKey): string => signWith({ alg: 'RS256', kid, ...header }, payload, k);
    const valid = good();
    const [vh, vp, vs] = valid.split('.');
    const noneHeader = (alg: string): string => b64u(JSON.stringify({ alg, kid }));

    const accept: Array<[string, string]> = [
      ['baseline RS256 from the provider key', valid],
      ['aud as an array that contains ours', good({ aud: ['other', API] })],
    ];
    const reject: Array<[string, string, string?]> = [
      ['alg none, empty signature', `${noneHeader('none')}.${vp}.`],
      ['alg None with the original signature', `${noneHeader('None')}.${vp}.${vs}`],
      ['alg NONE', `${noneHeader('NONE')}.${vp}.`],
      ['null signature (RS256, signature dropped)', `${vh}.${vp}.`],
      ['payload tampered (sub)', `${vh}.${b64u(JSON.stringify(claims({ sub: 'admin' })))}.${vs}`],
      ['truncated signature', `${vh}.${vp}.${vs.slice(0, -4)}`],
      ['RS→HS confusion: HS256 keyed with the provider public key PEM', signWith({ alg: 'HS256', kid }, JSON.stringify(claims()), realPublicPem)],
      ['HS256 keyed with another public key PEM', signWith({ alg: 'HS256', kid }, JSON.stringify(claims()), publicPem)],
      ['HS256 with an empty secret', signWith({ alg: 'HS256', kid }, JSON.stringify(claims()), Buffer.alloc(0))],
      ['expired', good({ exp: now - 120 })],
      ['not yet valid (nbf)', good({ nbf: now + 600 })],
      ['missing exp', idp.sign({}, { iss: idp.issuer, aud: API, sub: 'alice', iat: now })],
      ['exp as a string', good({ exp: String(now + 300) })],
      ['iat in the future', good({ iat: now + 3600 })],
      ['audience of another API', good({ aud: 'https://other.api' })],
      ['no audience', rs({}, JSON.stringify({ iss: idp.issuer, sub: 'alice', iat: now, exp: now + 300 }))],
      ['empty audience list', good({ aud: [] })],
      ['ID token as bearer (aud = client id, RFC 8725 §2.8)', good({ aud: 'gateway', nonce: 'n' })],
      ['issuer of nobody configured', good({ iss: 'https://evil.example' })],
      ['iss claimed, signed by an attacker key with the real kid', rs({}, JSON.stringify(claims()), attacker.privateKey)],
      ['crit with an unknown extension', good({}, { crit: ['foo'], foo: 1 })],
      ['b64: false', good({}, { b64: false, crit: ['b64'] })],
      ['jku to an attacker JWKS, attacker key, new kid', rs({ kid: 'attacker', jku: `${attackerUrl}/jwks.json` }, JSON.stringify(claims()), attacker.privateKey)],
      ['jku with the legit kid, attacker-signed', rs({ jku: `${attackerUrl}/jwks.json` }, JSON.stringify(claims()), attacker.privateKey)],
      ['x5u to an attacker certificate', rs({ x5u: `${attackerUrl}/cert.pem` }, JSON.stringify(claims()), attacker.privateKey)],
      ['embedded jwk (CVE-2018-0114)', rs({ jwk: attacker.publicKey.export({ format: 'jwk' }) }, JSON.stringify(claims()), attacker.privateKey)],
      ['kid path traversal, HS256 with an empty key', signWith({ alg: 'HS256', kid: '../../../../../../dev/null' }, JSON.stringify(claims()), Buffer.alloc(0))],
      ['kid SQL injection, HS256 keyed "1"', signWith({ alg: 'HS256', kid: "x' UNION SELECT '1';--" }, JSON.stringify(claims()), Buffer.from('1'))],
      ['kid shell injection', rs({ kid: '|sleep 10' }, JSON.stringify(claims()), attacker.privateKey)],
      ['kid that is not a string', rs({ kid: 7 }, JSON.stringify(claims()))],
      ['ES256 psychic signature (r = s = 0)', `${b64u(JSON.stringify({ alg: 'ES256', kid }))}.${vp}.${b64u(Buffer.alloc(64))}`],
      ['a JWE (five segments)', `${vh}.${vp}.${vs}.a.b`],
      ['duplicate claim names (sub twice)', rs({}, `{"iss":${JSON.stringify(idp.issuer)},"aud":"${API}","sub":"alice","sub":"admin","iat":${now},"exp":${now + 300}}`)],
      ['non-canonical base64url (padding)', `${vh}.${vp}=.${vs}`],
    ];
    for (const [name, token] of accept) {
      const r = await fetch(`${gw.url}/api/x`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
      assert.equal(r.status, 200, `${name}: ${await r.text()}`);
    }
    const accepted = upstream.seen.length;
    assert.equal(accepted, accept.length);
    for (const [name, token] of reject) {
      const r = await fetch(`${gw.url}/api/x`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
      const text = await r.text();
      assert.equal(r.status, 401, `${name}: ${r.status} ${text}`);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="lockgate", error="invalid_(token|request)"$/, name);
      assert.equal((JSON.parse(text) as { requestId: string }).requestId, r.headers.get('x-request-id'), name);
    }
    // A token beyond the header limit is refused before any parsing, also with the request id.
    const huge = await fetch(`${gw.url}/api/x`, { headers: { authorization: `Bearer ${vh}.${b64u('x'.repeat(40_000))}.${vs}` }, signal: AbortSignal.timeout(5000) });
    assert.equal(huge.status, 431);
    assert.equal(((await huge.json()) as { requestId: string }).requestId, huge.headers.get('x-request-id'));
    assert.equal(upstream.seen.length, accepted, 'no forged token reached the backend');
    assert.equal(attackerHits, 0, 'jku/x5u are never fetched');
    // Unknown kids refetch the JWKS at most once per cooldown: a burst of them cannot hammer the provider.
    const jwksBefore = idp.hits.get('/jwks') ?? 0;
    for (let i = 0; i < 5; i++) {
      const r = await fetch(`${gw.url}/api/x`, { headers: { authorization: `Bearer ${rs({ kid: `unknown-${i}` }, JSON.stringify(claims()), attacker.privateKey)}` }, signal: AbortSignal.timeout(5000) });
      assert.equal(r.status, 401);
      await r.body?.cancel();
    }
    assert.ok((idp.hits.get('/jwks') ?? 0) - jwksBefore <= 1, `JWKS fetched ${(idp.hits.get('/jwks') ?? 0) - jwksBefore} times`);
    // The provider's algorithm allowlist: an RS256 token is refused where only ES256 is allowed.
    const strict = await fetch(`${gw.url}/strict/x`, { headers: { authorization: `Bearer ${valid}` }, signal: AbortSignal.timeout(5000) });
    assert.equal(strict.status, 401);
    await strict.body?.cancel();
  } finally {
    await gw.close();
    await upstream.close();
    await idp.close();
    attackerServer.closeAllConnections();
    await new Promise<void>((r) => attackerServer.close(() => r()));
  }
});

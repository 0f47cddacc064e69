// validate-jwt's engine against a real OpenID provider (oidc-provider) on 127.0.0.1: discovery, real tokens, key rotation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { createJwtValidator, type FetchLike, type JwtResult } from '../src/proxy/jwt-validator.ts';

const API = 'https://api.local';

/** The slice of oidc-provider we use (the package ships no type declarations). */
interface OidcProvider {
  callback(): http.RequestListener;
  on(event: string, listener: (...args: unknown[]) => void): void;
}
type ProviderClass = new (issuer: string, config: Record<string, unknown>) => OidcProvider;

// Imported by a computed name so the type checker does not look for declarations; skip when not installed.
const PACKAGE = 'oidc-provider';
let Provider: ProviderClass | undefined;
try {
  Provider = ((await import(PACKAGE)) as { Provider: ProviderClass }).Provider;
} catch {
  Provider = undefined;
}
const skip = Provider === undefined ? 'oidc-provider is not installed (npm install --include=dev); skipping' : false;

function rsaJwk(kid: string): Record<string, unknown> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}

/** A provider issuing JWT access tokens for API through the client_credentials grant (identity.md §4.2). */
function makeProvider(issuer: string, keys: Record<string, unknown>[]): OidcProvider {
  if (Provider === undefined) throw new Error('oidc-provider is not installed');
  const provider = new Provider(issuer, {
    jwks: { keys },
    cookies: { keys: ['test-cookie-secret'] },
    clients: [{
      client_id: 'gateway', client_secret: 'gateway-secret',
      grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
    }],
    scopes: ['read', 'write'],
    ttl: { ClientCredentials: 300 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => API,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'read write', audience: API, accessTokenFormat: 'jwt', accessTokenTTL: 300, jwt: { sign: { alg: 'RS256' } } }),
      },
    },
  });
  // oidc-provider logs rejected requests through Koa; keep test output clean.
  provider.on('server_error', () => {});
  return provider;
}

async function clientCredentialsToken(issuer: string): Promise<string> {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from('gateway:gateway-secret').toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: API, scope: 'read' }).toString(),
    signal: AbortSignal.timeout(5000),
  });
  const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
  assert.equal(res.status, 200, `${body.error}: ${body.error_description}`);
  assert.ok(body.access_token);
  return body.access_token;
}

function headerOf(token: string): { kid?: string; alg?: string; typ?: string } {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()) as { kid?: string; alg?: string; typ?: string };
}

test('validate-jwt with a real OpenID provider: discovery, cached hits, key rotation', { timeout: 30_000, skip }, async () => {
  let handler: http.RequestListener = (_req, res) => res.writeHead(503).end();
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const fetched: string[] = [];
  const countingFetch: FetchLike = (url, signal) => {
    fetched.push(url);
    return fetch(url, { signal });
  };
  const validator = createJwtValidator(
    { openidConfig: [`${issuer}/.well-known/openid-configuration`], audiences: [API], tokenType: 'at+jwt', requiredClaims: [{ name: 'scope', match: 'any', separator: ' ', values: ['read'] }] },
    { fetch: countingFetch },
  );
  try {
    const k1 = rsaJwk('k1');
    handler = makeProvider(issuer, [k1]).callback();

    const token1 = await clientCredentialsToken(issuer);
    assert.equal(headerOf(token1).kid, 'k1');
    const r1 = await validator.validate(token1);
    assert.ok(r1.ok, r1.ok ? '' : `${r1.reason}: ${r1.detail}`);
    assert.equal(r1.claims.iss, issuer, 'the issuer carries the port');
    assert.equal(r1.claims.client_id, 'gateway');
    assert.equal(r1.claims.aud, API);
    assert.equal(r1.header.typ, 'at+jwt');
    assert.ok(r1.expiresAt !== undefined && r1.expiresAt > Date.now());
    assert.deepEqual(fetched, [`${issuer}/.well-known/openid-configuration`, `${issuer}/jwks`]);

    // A repeated token is a synchronous cache hit: no promise, no fetch.
    const hit = validator.validate(token1);
    assert.ok(!(hit instanceof Promise));
    assert.equal(hit, r1);

    // Tampering with the real token breaks it.
    const [h, p, s] = token1.split('.');
    const forged = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    forged.client_id = 'admin';
    const bad: JwtResult = await validator.validate(`${h}.${Buffer.from(JSON.stringify(forged)).toString('base64url')}.${s}`);
    assert.equal(bad.ok ? 'accept' : bad.reason, 'TokenSignatureInvalid');

    // Rotation: the provider now signs with k2 (k1 still published).
    const k2 = rsaJwk('k2');
    handler = makeProvider(issuer, [k2, k1]).callback();
    const token2 = await clientCredentialsToken(issuer);
    assert.equal(headerOf(token2).kid, 'k2');
    const before = fetched.length;
    const r2 = await validator.validate(token2);
    assert.ok(r2.ok, r2.ok ? '' : `${r2.reason}: ${r2.detail}`);
    assert.equal(fetched.filter((u) => u.endsWith('/jwks')).length, 2, 'exactly one JWKS refetch for the new kid');
    assert.ok(fetched.length - before <= 2);
    // The old token still validates from the cache (k1 is still published).
    const old = validator.validate(token1);
    assert.ok(!(old instanceof Promise) && old.ok);

    // A second unknown kid within the cooldown does not refetch.
    const k3 = rsaJwk('k3');
    handler = makeProvider(issuer, [k3]).callback();
    const token3 = await clientCredentialsToken(issuer);
    const r3 = await validator.validate(token3);
    assert.equal(r3.ok ? 'accept' : r3.reason, 'TokenSignatureKeyNotFound');
    assert.equal(fetched.filter((u) => u.endsWith('/jwks')).length, 2);
  } finally {
    validator.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

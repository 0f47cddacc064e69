// The development OpenID provider of `lockgate up`: its tokens pass the same bearer validation the gateway and the
// control plane run for the demo's IdentityProvider, and its token shortcut knows only alice and bob.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { parseConfigText } from '../model/load-config.ts';
import { OidcClient } from '../proxy/oidc-client.ts';
import { DEMO_IDP_AUDIENCE, DEMO_IDP_CLIENT_ID, startDemoIdp, type DemoIdp } from './demo-idp.ts';
import { DEMO_EDGE_MESH_CONFIG, DEMO_MESH_CONFIG, demoIdentityConfig } from './demo-mesh-config.ts';

let idp: DemoIdp;
let client: OidcClient;

before(async () => {
  idp = await startDemoIdp();
  const text = [DEMO_MESH_CONFIG, DEMO_EDGE_MESH_CONFIG, demoIdentityConfig(idp.issuer, DEMO_IDP_CLIENT_ID, DEMO_IDP_AUDIENCE)].join('\n---\n');
  const { config, problems } = parseConfigText(text, 'demo.yaml');
  assert.deepEqual(problems, []);
  const provider = config?.identityProviders?.get('default/demo');
  assert.ok(provider);
  client = new OidcClient('default/demo', provider.spec);
});

after(async () => {
  client.close();
  await idp.close();
});

async function get(url: string): Promise<{ status: number; text: string }> {
  const r = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  return { status: r.statusCode, text: await r.body.text() };
}

test('GET /dev/token/<user> answers a JWT access token the demo IdentityProvider accepts, with email and groups', async () => {
  for (const [user, email, groups] of [['alice', 'alice@example.com', ['orders-admins']], ['bob', 'bob@example.com', ['staff']]] as const) {
    const r = await get(idp.tokenUrl(user));
    assert.equal(r.status, 200, r.text);
    assert.ok(r.text.endsWith('\n'), 'a newline for a terminal; $(curl …) drops it');
    const v = await client.bearer.validate(r.text.trim());
    assert.ok(v.ok, JSON.stringify(v));
    const claims = client.mapClaims(v.claims);
    assert.equal(claims.sub, user);
    assert.equal(claims.email, email);
    assert.deepEqual(claims.groups, groups);
    assert.equal(claims.iss, idp.issuer);
    assert.equal(claims.aud, DEMO_IDP_AUDIENCE);
    // A fresh sign-in each time: two tokens for one user differ.
    assert.notEqual(await idp.token(user), r.text.trim());
  }
});

test('the shortcut knows alice and bob only (no prototype names), and the provider publishes discovery and keys', async () => {
  for (const who of ['carol', 'constructor', '__proto__', '%E0%A4%A']) {
    const r = await get(`${idp.issuer}/dev/token/${who}`);
    assert.equal(r.status, 404, `${who}: ${r.text}`);
  }
  const d = JSON.parse((await get(`${idp.issuer}/.well-known/openid-configuration`)).text) as { issuer: string; jwks_uri: string; code_challenge_methods_supported: string[] };
  assert.equal(d.issuer, idp.issuer);
  assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
  const jwks = JSON.parse((await get(d.jwks_uri)).text) as { keys: Array<{ kid: string; d?: string }> };
  assert.equal(jwks.keys.length, 1);
  assert.equal(jwks.keys[0].d, undefined, 'no private part published');
});

// More of the pipeline end to end: validate-jwt as a policy, product scope chosen by the key, mock-response from an
// imported OpenAPI document, variables and statuses, and the CORS matrix.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { hs256 as signHs256 } from './helpers/jwt.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { startPolicyGateway, withGateway, call, GATEWAY } from './helpers/policy-gateway.ts';
import { hashKey } from '../src/lib/subscription-keys.ts';
import type { SubscriptionRecord } from '../src/model/subscription.ts';

let up: Upstream;
before(async () => {
  up = await startUpstream();
});
after(async () => {
  await up.close();
});

const doc = (kind: string, name: string, spec: string): string => `---\napiVersion: lockgate.dev/v1alpha1\nkind: ${kind}\nmetadata: { name: ${name} }\nspec:\n${spec}\n`;
const backend = () => doc('Backend', 'up', `  url: "${up.url}"`);



// HS256 with a 32-byte secret (the minimum for HS256).
const SECRET = Buffer.alloc(32, 7);
const hs256 = (claims: Record<string, unknown>): string => signHs256(SECRET, claims);

test('validate-jwt in the pipeline: claims reach later policies; failures are API Management\'s 401s with LastError reasons', async () => {
  const now = Math.floor(Date.now() / 1000);
  const yaml =
    GATEWAY +
    backend() +
    doc('Api', 'orders', '  path: /orders\n  backend: up') +
    doc('ApiPolicy', 'jwt', `  scope: { api: orders }
  inbound:
    - validate-jwt:
        issuerSigningKeys: [{ hmac: "${SECRET.toString('base64')}" }]
        audiences: [orders]
        requiredClaims: [{ name: scp, match: any, separator: " ", values: [orders.read] }]
    - set-header: { name: x-user, value: "@(context.User.sub)" }
  onError:
    - set-header: { name: x-reason, value: "@(context.LastError.Reason)" }`);
  await withGateway(yaml, async (g) => {
    const good = hs256({ sub: 'ann', aud: 'orders', scp: 'orders.read orders.write', exp: now + 600, iat: now });
    const ok = await call(`${g.url}/orders/1`, { headers: { authorization: `Bearer ${good}` } });
    assert.equal(ok.status, 200);
    assert.equal(ok.json().headers['x-user'], 'ann');
    const none = await call(`${g.url}/orders/1`);
    assert.equal(none.status, 401);
    assert.deepEqual(none.json(), { statusCode: 401, message: 'JWT not present.' });
    assert.equal(none.headers['x-reason'], 'TokenNotPresent');
    const expired = hs256({ sub: 'ann', aud: 'orders', scp: 'orders.read', exp: now - 10, iat: now - 700 });
    const old = await call(`${g.url}/orders/1`, { headers: { authorization: `Bearer ${expired}` } });
    assert.equal(old.status, 401);
    assert.deepEqual(old.json(), { statusCode: 401, message: 'Invalid JWT.' });
    assert.equal(old.headers['x-reason'], 'TokenExpired');
    const wrongAud = hs256({ sub: 'ann', aud: 'billing', scp: 'orders.read', exp: now + 600, iat: now });
    assert.equal((await call(`${g.url}/orders/1`, { headers: { authorization: `Bearer ${wrongAud}` } })).headers['x-reason'], 'TokenAudienceNotAllowed');
    const noScope = hs256({ sub: 'ann', aud: 'orders', scp: 'billing.read', exp: now + 600, iat: now });
    assert.equal((await call(`${g.url}/orders/1`, { headers: { authorization: `Bearer ${noScope}` } })).status, 401);
    // The cached token is re-checked for expiry on every hit; a tampered signature never validates.
    assert.equal((await call(`${g.url}/orders/1`, { headers: { authorization: `Bearer ${good.slice(0, -2)}xx` } })).status, 401);
  });
});

test('product scope: the product\'s policy applies when the key belongs to that product, not for other keys', async () => {
  const yaml =
    GATEWAY +
    backend() +
    doc('Api', 'orders', '  path: /orders\n  backend: up\n  subscriptionRequired: true') +
    doc('Product', 'gold', '  apis: [orders]') +
    doc('Product', 'silver', '  apis: [orders]') +
    doc('ApiPolicy', 'gold', '  scope: { product: gold }\n  inbound:\n    - set-header: { name: x-tier, value: gold }') +
    doc('ApiPolicy', 'api', '  scope: { api: orders }\n  inbound:\n    - base: {}\n    - set-header: { name: x-api, value: "1" }');
  const record = (name: string, product: string, key: string): SubscriptionRecord => ({
    id: `sub_${name}`, name, scope: { kind: 'product', name: product }, owner: '', state: 'active',
    primaryKeyHash: hashKey(key), secondaryKeyHash: hashKey(`${key}-2`), createdAt: new Date(0).toISOString(), expiresAt: null,
  });
  await withGateway(yaml, async (g) => {
    g.plane.setSubscriptions([record('g1', 'gold', 'gold-key-0001'), record('s1', 'silver', 'silver-key-0001')]);
    const gold = (await call(`${g.url}/orders/1`, { headers: { 'ocp-apim-subscription-key': 'gold-key-0001' } })).json().headers;
    assert.equal(gold['x-tier'], 'gold');
    assert.equal(gold['x-api'], '1');
    const silver = (await call(`${g.url}/orders/1`, { headers: { 'ocp-apim-subscription-key': 'silver-key-0001' } })).json().headers;
    assert.equal(silver['x-tier'], undefined);
    assert.equal(silver['x-api'], '1');
  });
});

test('mock-response answers from the imported OpenAPI example without calling the backend', async () => {
  const spec = path.resolve(import.meta.dirname, 'fixtures/openapi/petstore.openapi.yaml');
  const yaml =
    GATEWAY +
    backend() +
    doc('Api', 'pets', `  path: /pets-api\n  backend: up\n  import: { openapi: "${spec}" }`) +
    doc('ApiPolicy', 'mock', '  scope: { api: pets, operation: showpetbyid }\n  inbound:\n    - mock-response: { statusCode: 200 }');
  const before = up.seen.length;
  await withGateway(yaml, async (g) => {
    const r = await call(`${g.url}/pets-api/pets/1`);
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /application\/json/);
    assert.deepEqual(r.json(), { id: 1, name: 'Rex', tag: 'dog', birthDate: '2019-04-01', weight: 12.5 });
    assert.equal(up.seen.length, before);
    // Other operations of the Api still go to the backend.
    assert.equal((await call(`${g.url}/pets-api/pets`)).status, 200);
    assert.equal(up.seen.length, before + 1);
  });
});

test('set-variable, set-status and return-response from variables', async () => {
  const yaml =
    GATEWAY +
    backend() +
    doc('Api', 'orders', '  path: /orders\n  backend: up') +
    doc('ApiPolicy', 'p', `  scope: { api: orders }
  inbound:
    - set-variable: { name: tenant, value: "@(context.Request.Headers['x-tenant'])" }
    - set-variable: { name: limits, value: { max: 5, plan: "@(context.Variables['tenant'] + '-plan')" } }
  outbound:
    - set-status: { code: 203 }
    - set-header: { name: x-plan, value: "@(context.Variables['limits']['plan'])" }
    - set-body: { value: { original: "@(context.Response.Body)", tenant: "@(context.Variables['tenant'])" } }`);
  await withGateway(yaml, async (g) => {
    const r = await call(`${g.url}/orders/1`, { headers: { 'x-tenant': 'acme' } });
    assert.equal(r.status, 203);
    assert.equal(r.headers['x-plan'], 'acme-plan');
    const body = r.json();
    assert.equal(body.tenant, 'acme');
    assert.equal(JSON.parse(body.original).url, '/orders/1');
    assert.equal(r.headers['content-length'], String(Buffer.byteLength(r.text)));
  });
});

test('cors matrix: origins with default ports, wildcard, credentials, headers, non-terminating mode', async () => {
  const cases: Array<{ policy: string; origin: string; method: string; reqHeaders?: string; allowOrigin: string | undefined; creds?: string }> = [
    { policy: 'allowedOrigins: ["https://a.example"]', origin: 'https://a.example:443', method: 'GET', allowOrigin: 'https://a.example:443' },
    { policy: 'allowedOrigins: ["https://a.example"]', origin: 'http://a.example', method: 'GET', allowOrigin: undefined },
    { policy: 'allowedOrigins: ["http://a.example:8080"]', origin: 'http://a.example:8080', method: 'POST', allowOrigin: 'http://a.example:8080' },
    { policy: 'allowedOrigins: ["*"]', origin: 'https://anyone.example', method: 'GET', allowOrigin: '*' },
    { policy: 'allowedOrigins: ["https://a.example"], allowCredentials: true', origin: 'https://a.example', method: 'GET', allowOrigin: 'https://a.example', creds: 'true' },
    { policy: 'allowedOrigins: ["https://a.example"]', origin: 'https://a.example', method: 'GET', reqHeaders: 'x-secret', allowOrigin: undefined },
    { policy: 'allowedOrigins: ["https://a.example"], allowedHeaders: ["*"]', origin: 'https://a.example', method: 'GET', reqHeaders: 'x-secret', allowOrigin: 'https://a.example' },
    { policy: 'allowedOrigins: ["https://a.example"], allowedMethods: ["*"]', origin: 'https://a.example', method: 'DELETE', allowOrigin: 'https://a.example' },
    { policy: 'allowedOrigins: ["https://a.example"]', origin: 'https://a.example', method: 'DELETE', allowOrigin: undefined },
  ];
  for (const c of cases) {
    const attrs = c.policy.includes('allowedHeaders') ? c.policy : `${c.policy}, allowedHeaders: [content-type]`;
    const yaml = GATEWAY + backend() + doc('Api', 'orders', '  path: /orders\n  backend: up') + doc('ApiPolicy', 'p', `  scope: { api: orders }\n  inbound:\n    - cors: { ${attrs} }`);
    await withGateway(yaml, async (g) => {
      const headers: Record<string, string> = { origin: c.origin, 'access-control-request-method': c.method };
      if (c.reqHeaders) headers['access-control-request-headers'] = c.reqHeaders;
      const r = await call(`${g.url}/orders/1`, { method: 'OPTIONS', headers });
      assert.equal(r.status, 200, JSON.stringify(c));
      assert.equal(r.headers['access-control-allow-origin'], c.allowOrigin, JSON.stringify(c));
      assert.equal(r.headers['access-control-allow-credentials'], c.creds, JSON.stringify(c));
    });
  }
  // Non-terminating: a GET from a foreign origin goes through, without CORS headers.
  const yaml = GATEWAY + backend() + doc('Api', 'orders', '  path: /orders\n  backend: up') + doc('ApiPolicy', 'p', '  scope: { api: orders }\n  inbound:\n    - cors: { allowedOrigins: ["https://a.example"], allowedHeaders: [content-type], terminateUnmatchedRequest: false }');
  await withGateway(yaml, async (g) => {
    const r = await call(`${g.url}/orders/1`, { headers: { origin: 'https://evil.example' } });
    assert.equal(r.status, 200);
    assert.equal(r.json().url, '/orders/1');
    assert.equal(r.headers['access-control-allow-origin'], undefined);
  });
  // Credentials with a wildcard origin is a config problem.
  await assert.rejects(
    startPolicyGateway(GATEWAY + backend() + doc('Api', 'orders', '  path: /orders\n  backend: up') + doc('ApiPolicy', 'p', '  scope: { api: orders }\n  inbound:\n    - cors: { allowedOrigins: ["*"], allowCredentials: true, allowedHeaders: [a] }')),
    /allowCredentials cannot be used with allowedOrigins "\*"/,
  );
});

test('with nothing after the backend, the response streams straight through and a backend failure gets the same default answer', async () => {
  const yaml =
    GATEWAY +
    backend() +
    doc('Backend', 'dead', '  url: "http://127.0.0.1:1"\n  retries: { attempts: 0 }') +
    doc('Api', 'orders', '  path: /orders\n  backend: up') +
    doc('Api', 'gone', '  path: /gone\n  backend: dead\n  errorStyle: apim') +
    doc('ApiPolicy', 'g', '  scope: { global: true }\n  inbound:\n    - set-header: { name: x-in, value: "1" }');
  await withGateway(yaml, async (g) => {
    const ok = await call(`${g.url}/orders/5`);
    assert.equal(ok.status, 200);
    assert.equal(ok.json().headers['x-in'], '1');
    const dead = await call(`${g.url}/gone/x`);
    assert.equal(dead.status, 500);
    assert.deepEqual(dead.json(), { statusCode: 500, message: 'Internal server error', activityId: dead.headers['x-request-id'] });
  });
});

// Gateway AccessPolicies end to end (identity issue §3): decided after validate-jwt on the end user's claims, by Api
// and operation, on the fast path without policies, where an access-check policy stands; a denial is 403 with the hop
// and the decision id, runs onError, and the decision is published with its reasons.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { hs256 } from './helpers/jwt.ts';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { withGateway, call, GATEWAY } from './helpers/policy-gateway.ts';
import type { AccessDecisionEvent } from '../src/telemetry/channels.ts';

let up: Upstream;
before(async () => {
  up = await startUpstream();
});
after(async () => {
  await up.close();
});

const doc = (kind: string, name: string, spec: string): string => `---\napiVersion: lockgate.dev/v1alpha1\nkind: ${kind}\nmetadata: { name: ${name} }\nspec:\n${spec}\n`;
const SECRET = Buffer.alloc(32, 9);

function token(claims: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000);
  return hs256(SECRET, { aud: 'orders', iat: now, exp: now + 600, ...claims });
}
const bearer = (claims: Record<string, unknown>) => ({ authorization: `Bearer ${token(claims)}` });
const ALICE = { sub: 'alice', email: 'alice@example.com', groups: ['orders-admins'] };
const BOB = { sub: 'bob', email: 'bob@example.com', groups: ['staff'] };
const MALLORY = { sub: 'mallory', email: 'mallory@contractor.example', groups: ['orders-admins'] };

const base = () =>
  GATEWAY +
  doc('Backend', 'up', `  url: "${up.url}"`) +
  doc('Api', 'orders', `  path: /orders
  backend: up
  operations:
    - { name: get-order, methods: [GET], urlTemplate: "/{id}" }
    - { name: delete-order, methods: [DELETE], urlTemplate: "/{id}" }`) +
  doc('ApiPolicy', 'jwt', `  scope: { api: orders }
  inbound:
    - validate-jwt: { issuerSigningKeys: [{ hmac: "${SECRET.toString('base64')}" }], audiences: [orders] }
  onError:
    - set-header: { name: x-source, value: "@(context.LastError.Source)" }`);

/** Collects the published decisions while `fn` runs. */
async function decisions(fn: () => Promise<void>): Promise<AccessDecisionEvent[]> {
  const seen: AccessDecisionEvent[] = [];
  const onEvent = (m: unknown) => seen.push(m as AccessDecisionEvent);
  diagnostics.subscribe('lockgate:access:decision', onEvent);
  try {
    await fn();
  } finally {
    diagnostics.unsubscribe('lockgate:access:decision', onEvent);
  }
  return seen;
}

test('an Api AccessPolicy decides on the claims validate-jwt accepted: deny wins, groups and methods allow, 403 names the hop and decision', async () => {
  const yaml = base() + doc('AccessPolicy', 'orders-access', `  target: { api: orders }
  allow:
    - groups: orders-admins
    - all: [{ groups: staff }, { method: GET }]
  deny:
    - domain: contractor.example`);
  await withGateway(yaml, async (g) => {
    const events = await decisions(async () => {
      assert.equal((await call(`${g.url}/orders/1`, { method: 'DELETE', headers: bearer(ALICE) })).status, 200);
      assert.equal((await call(`${g.url}/orders/1`, { headers: bearer(BOB) })).status, 200);
      const bobDelete = await call(`${g.url}/orders/1`, { method: 'DELETE', headers: bearer(BOB) });
      assert.equal(bobDelete.status, 403);
      const body = bobDelete.json().error;
      assert.equal(body.code, 'access_denied');
      assert.equal(body.hop, 'gateway t');
      assert.equal(body.message, 'Access denied: default/orders-access');
      assert.match(body.decision, /^[0-9a-f]{8}-[0-9a-f]+$/);
      assert.equal(body.requestId, bobDelete.headers['x-request-id']);
      // A denial is a policy error: onError ran.
      assert.equal(bobDelete.headers['x-source'], 'access-check');
      const mallory = await call(`${g.url}/orders/1`, { headers: bearer(MALLORY) });
      assert.equal(mallory.status, 403, 'deny wins over the matching allow');
      // Authentication comes first: no token is validate-jwt's 401, not a 403.
      assert.equal((await call(`${g.url}/orders/1`)).status, 401);
    });
    assert.equal(events.length, 2);
    const [bobEvent, malloryEvent] = events;
    assert.equal(bobEvent.outcome, 'deny');
    assert.equal(bobEvent.service, 'default/orders');
    assert.equal(bobEvent.policy, 'default/orders-access');
    assert.match(bobEvent.reasons.join('\n'), /allow\[0\]: groups \[staff\] does not have "orders-admins"; allow\[1\]: all\[1\]: method DELETE not in \[GET\]/);
    assert.match(malloryEvent.reasons[0], /deny rule default\/orders-access deny\[0\] matched \(domain contractor\.example\)/);
  });
});

test('an operation-level AccessPolicy covers that operation only', async () => {
  const yaml = base() + doc('AccessPolicy', 'only-admins-delete', `  target: { api: orders, operation: delete-order }
  allow: [{ groups: orders-admins }]`);
  await withGateway(yaml, async (g) => {
    assert.equal((await call(`${g.url}/orders/1`, { headers: bearer(BOB) })).status, 200);
    assert.equal((await call(`${g.url}/orders/1`, { method: 'DELETE', headers: bearer(BOB) })).status, 403);
    assert.equal((await call(`${g.url}/orders/1`, { method: 'DELETE', headers: bearer(ALICE) })).status, 200);
  });
});

test('without an ApiPolicy the check runs before forwarding: method, address and authenticated criteria', async () => {
  const yaml = GATEWAY + doc('Backend', 'up', `  url: "${up.url}"`) + doc('Api', 'public', '  path: /public\n  backend: up') +
    doc('Api', 'members', '  path: /members\n  backend: up') +
    doc('AccessPolicy', 'public-read', `  target: { api: public }
  allow: [{ method: [GET, HEAD], sourceIp: [127.0.0.0/8, "::1"] }]`) +
    doc('AccessPolicy', 'members-only', `  target: { api: members }
  allow: [{ authenticated: true }]`);
  await withGateway(yaml, async (g) => {
    assert.equal((await call(`${g.url}/public/x`)).status, 200);
    const post = await call(`${g.url}/public/x`, { method: 'POST', body: 'x' });
    assert.equal(post.status, 403);
    assert.equal(post.json().error.hop, 'gateway t');
    // No pipeline, so no end user: a rule that needs one never matches.
    assert.equal((await call(`${g.url}/members/x`)).status, 403);
  });
});

test('access-check places the decision; one a choose skips is still made before the backend', async () => {
  const early = base().replace('    - validate-jwt:', '    - access-check: {}\n    - validate-jwt:') +
    doc('AccessPolicy', 'admins', `  target: { api: orders }
  allow: [{ groups: orders-admins }]`);
  await withGateway(early, async (g) => {
    // Checked before validate-jwt ran: there is no end user yet, so even alice is denied.
    const r = await call(`${g.url}/orders/1`, { headers: bearer(ALICE) });
    assert.equal(r.status, 403);
    assert.equal(r.headers['x-source'], 'access-check');
  });
  const skipped = base().replace('  onError:', `    - choose:
        when: [{ condition: "@(context.Request.Method == \\"POST\\")", policies: [{ access-check: {} }] }]
  onError:`) + doc('AccessPolicy', 'admins', `  target: { api: orders }
  allow: [{ groups: orders-admins }]`);
  await withGateway(skipped, async (g) => {
    assert.equal((await call(`${g.url}/orders/1`, { headers: bearer(BOB) })).status, 403);
    assert.equal((await call(`${g.url}/orders/1`, { headers: bearer(ALICE) })).status, 200);
  });
});

test('audit mode lets a would-be denial through and publishes it; a cel rule reads the pipeline context', async () => {
  const yaml = base() + doc('AccessPolicy', 'audit-admins', `  target: { api: orders }
  mode: audit
  allow:
    - cel: 'context.User["email"].endsWith("@example.com") && context.Request.Method == "GET"'`);
  await withGateway(yaml, async (g) => {
    const events = await decisions(async () => {
      assert.equal((await call(`${g.url}/orders/1`, { headers: bearer(BOB) })).status, 200);
      assert.equal((await call(`${g.url}/orders/1`, { method: 'DELETE', headers: bearer(BOB) })).status, 200);
    });
    assert.equal(events.length, 1);
    assert.equal(events[0].outcome, 'audit');
    assert.match(events[0].reasons.join('\n'), /cel .* is false/);
  });
});

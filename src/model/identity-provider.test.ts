// The IdentityProvider kind and Api authentication: defaults, references, and problems with file:line:col.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatProblems, parseConfigText } from './load-config.ts';

const doc = (kind: string, name: string, spec: string): string => `apiVersion: lockgate.dev/v1alpha1\nkind: ${kind}\nmetadata: { name: ${name} }\nspec: ${spec}\n`;
const idp = (name: string, extra = ''): string => doc('IdentityProvider', name, `{ issuer: "https://${name}.example.com", clientId: gw, clientSecret: "{{idp-secret}}"${extra} }`);
const base = [doc('Backend', 'up', '{ url: "http://127.0.0.1:9" }'), doc('NamedValue', 'idp-secret', '{ value: s3cret }')];

test('an IdentityProvider gets defaults and an Api names providers by qualified name', () => {
  const r = parseConfigText([...base, idp('corp'), idp('partner'), doc('Api', 'app', '{ path: /app, backend: up, authentication: { providers: [corp, default/partner], login: true } }')].join('---\n'), 'c.yaml');
  assert.deepEqual(r.problems, []);
  const p = r.config!.identityProviders!.get('default/corp')!;
  assert.deepEqual(p.spec.scopes, ['openid', 'email', 'profile']);
  assert.deepEqual(p.spec.audience, []);
  assert.equal(p.spec.claims.groups, 'groups');
  assert.equal(p.spec.clientSecret, '{{idp-secret}}', 'a named-value reference is checked here and substituted when a node loads the config');
  assert.ok(!p.spec.allowedAlgorithms.some((a) => a.startsWith('HS')), 'no HMAC from a third-party issuer by default');
  assert.deepEqual(p.spec.session, { refreshBefore: 60_000, maxAge: 43_200_000, idleTimeout: 3_600_000 });
  const api = r.config!.apis[0];
  assert.deepEqual(api.spec.authentication, { providers: ['corp', 'default/partner'], login: true, required: true });
});

test('identity problems are reported at their place, all at once', () => {
  const text = [
    ...base,
    idp('corp', ', clientSecretFile: /etc/hostname, scopes: [email], allowedAlgorithms: [none, RS257, HS256], clockSkew: 5m'),
    doc('IdentityProvider', 'nosecret', '{ issuer: "http://idp.example.com", clientId: gw }'),
    doc('IdentityProvider', 'twin', '{ issuer: "https://corp.example.com", clientId: other }'),
    doc('Api', 'app', '{ path: /app, backend: up, authentication: { providers: [nosecret, corp, twin, crop], login: true, required: false } }'),
  ].join('---\n');
  const out = formatProblems(parseConfigText(text, 'c.yaml').problems);
  const expect = [
    /set at most one of clientSecret, clientSecretFile and clientSecretEnv/,
    /the scopes must include "openid"/,
    /alg "none" can never be allowed/,
    /unsupported algorithm "RS257".*RS256/,
    /HS256 needs a shared secret/,
    /clockSkew above 60s/,
    /an issuer must use https/,
    /login uses IdentityProvider "default\/nosecret", which has no clientSecret/,
    /IdentityProviders "default\/corp" and "default\/twin" have the same issuer/,
    /IdentityProvider "crop" not found in namespace "default".*corp/,
    /login sends anonymous browsers to sign in, so it needs required: true/,
  ];
  for (const re of expect) assert.match(out, new RegExp(`^c\\.yaml:\\d+:\\d+: .*${re.source}`, 'm'), `${re} in:\n${out}`);
});

test('an operation may override the Api\'s authentication; an unknown field is a problem', () => {
  const ok = parseConfigText([...base, idp('corp'), doc('Api', 'app', '{ path: /app, backend: up, authentication: { providers: [corp] }, operations: [{ urlTemplate: /health, methods: [GET], authentication: { providers: [corp], required: false } }] }')].join('---\n'), 'c.yaml');
  assert.deepEqual(ok.problems, []);
  assert.deepEqual(ok.config!.apis[0].spec.operations[0].authentication, { providers: ['corp'], login: false, required: false });
  const bad = formatProblems(parseConfigText([...base, idp('corp'), doc('Api', 'app', '{ path: /app, backend: up, authentication: { provider: [corp] } }')].join('---\n'), 'c.yaml').problems);
  assert.match(bad, /^c\.yaml:\d+:\d+: /m);
  assert.match(bad, /provider/);
});

import assert from 'node:assert/strict';
import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import { test } from 'node:test';
import {
  ASSERTION_LIFETIME_S, AssertionService, MAX_ASSERTION_BYTES, REUSE_MIN_MS, REUSE_MS, SKEW_S, UserAssertion, assertionFromClaims, claimsOfUser, headerSafe, parseAssertionKeys,
  userFromClaims, type AssertionKeys, type PublicJwk,
} from './assertion.ts';

const ISSUER = 'spiffe://t.test/ns/lockgate-system/sa/control-plane';
const GATEWAY = 'spiffe://t.test/ns/default/sa/edge';
const ORDERS = 'spiffe://t.test/ns/shop/sa/orders';
const INVENTORY = 'spiffe://t.test/ns/shop/sa/inventory';

function keyPair(kid: string): { pub: PublicJwk; priv: PublicJwk & { d: string } } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const p = publicKey.export({ format: 'jwk' }) as { x: string; y: string };
  const d = (privateKey.export({ format: 'jwk' }) as { d: string }).d;
  const pub: PublicJwk = { kty: 'EC', crv: 'P-256', x: p.x, y: p.y, kid, alg: 'ES256', use: 'sig' };
  return { pub, priv: { ...pub, d } };
}

const k1 = keyPair('k1');
const k2 = keyPair('k2');
const keys = (signing: typeof k1 | undefined, published = [k1.pub]): AssertionKeys => ({ issuer: ISSUER, keys: published, ...(signing ? { signing: signing.priv } : {}) });

const alice = { sub: 'alice', email: 'alice@example.com', groups: ['orders-admins', 'staff'], idp: 'https://idp.example', sid: 's-1' };

/** A clock the test moves. */
function clock(start = Date.UTC(2026, 10, 27, 12, 0, 0)): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

/** Signs any header and payload with a key (for shapes the service would never mint). */
function forge(header: object, payload: object, priv: PublicJwk & { d: string } = k1.priv): string {
  const b = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${b(header)}.${b(payload)}`;
  const key = createPrivateKey({ key: { kty: 'EC', crv: 'P-256', x: priv.x, y: priv.y, d: priv.d }, format: 'jwk' });
  return `${input}.${sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }).toString('base64url')}`;
}

test('a minted assertion verifies at the service it is addressed to, from the workload it names', () => {
  const c = clock();
  const gw = new AssertionService(keys(k1), GATEWAY, c.now);
  const orders = new AssertionService(keys(undefined), ORDERS, c.now);
  const token = gw.mint(alice, ORDERS);
  const r = orders.accept(token, GATEWAY);
  assert.ok(r.ok, r.ok ? '' : r.error);
  assert.equal(r.assertion.aud, ORDERS);
  assert.equal(r.assertion.act, GATEWAY);
  assert.deepEqual({ ...r.assertion.user, exp: undefined }, { ...alice, exp: undefined });
  assert.equal(r.assertion.exp - r.assertion.iat, ASSERTION_LIFETIME_S);
  const [h] = token.split('.');
  assert.deepEqual(JSON.parse(Buffer.from(h, 'base64url').toString()), { alg: 'ES256', kid: 'k1' });
  assert.deepEqual(claimsOfUser(r.assertion.user), { sub: 'alice', email: 'alice@example.com', groups: ['orders-admins', 'staff'], iss: 'https://idp.example', sid: 's-1' });
});

test('replayed from another workload, addressed elsewhere, or without mTLS: refused', () => {
  const c = clock();
  const gw = new AssertionService(keys(k1), GATEWAY, c.now);
  const token = gw.mint(alice, ORDERS);
  const orders = new AssertionService(keys(undefined), ORDERS, c.now);
  const inventory = new AssertionService(keys(undefined), INVENTORY, c.now);
  const stolen = orders.accept(token, INVENTORY);
  assert.ok(!stolen.ok);
  assert.match(stolen.error, /issued to spiffe:\/\/t\.test\/ns\/default\/sa\/edge, but spiffe:\/\/t\.test\/ns\/shop\/sa\/inventory presented it/);
  const elsewhere = inventory.accept(token, GATEWAY);
  assert.ok(!elsewhere.ok);
  assert.match(elsewhere.error, /addressed to .*orders, not .*inventory/);
  const plain = orders.accept(token, '');
  assert.ok(!plain.ok);
  assert.match(plain.error, /mutual TLS/);
  // The verdict is the same from the cache (the second call hits it).
  assert.ok(!orders.accept(token, INVENTORY).ok);
  assert.ok(orders.accept(token, GATEWAY).ok);
});

test('minted once per user and audience, reused for 45 s to a minute (spread), then minted again', () => {
  const c = clock();
  const gw = new AssertionService(keys(k1), GATEWAY, c.now);
  const a = gw.mint(alice, ORDERS);
  c.advance(REUSE_MIN_MS - 1);
  assert.equal(gw.mint(alice, ORDERS), a);
  assert.notEqual(gw.mint(alice, INVENTORY), a, 'another audience, another assertion');
  assert.notEqual(gw.mint({ ...alice, groups: ['staff'] }, ORDERS), a, 'other groups, another assertion');
  c.advance(REUSE_MS - REUSE_MIN_MS + 1);
  const b = gw.mint(alice, ORDERS);
  assert.notEqual(b, a);
  const p = (t: string): { jti: string; iat: number } => JSON.parse(Buffer.from(t.split('.')[1], 'base64url').toString()) as { jti: string; iat: number };
  assert.notEqual(p(a).jti, p(b).jti);
});

test('never outlives the end user\'s token; an expired assertion is refused, with the skew allowed', () => {
  const c = clock();
  const gw = new AssertionService(keys(k1), GATEWAY, c.now);
  const orders = new AssertionService(keys(undefined), ORDERS, c.now);
  const tokenExp = Math.floor(c.now() / 1000) + 90;
  const t = gw.mint({ ...alice, exp: tokenExp }, ORDERS);
  const r = orders.accept(t, GATEWAY);
  assert.ok(r.ok);
  assert.equal(r.assertion.exp, tokenExp);
  c.advance((90 + SKEW_S - 1) * 1000);
  assert.ok(orders.accept(t, GATEWAY).ok, 'within the skew');
  c.advance(1000);
  const late = orders.accept(t, GATEWAY);
  assert.ok(!late.ok);
  assert.match(late.error, /expired/);
  // A fresh verifier (no cache) says the same.
  const fresh = new AssertionService(keys(undefined), ORDERS, c.now).accept(t, GATEWAY);
  assert.ok(!fresh.ok);
  assert.match(fresh.error, /expired/);
  // With less than a minute of life left, the gateway mints a new one rather than reuse it.
  const c2 = clock();
  const gw2 = new AssertionService(keys(k1), GATEWAY, c2.now);
  const first = gw2.mint(alice, ORDERS);
  c2.advance((ASSERTION_LIFETIME_S - 59) * 1000);
  assert.notEqual(gw2.mint(alice, ORDERS), first);
});

test('the exchange: an outbound hop turns the app\'s assertion into one for the next service, acting as itself', () => {
  const c = clock();
  const gw = new AssertionService(keys(k1), GATEWAY, c.now);
  const orders = new AssertionService(keys(k1), ORDERS, c.now);
  const inventory = new AssertionService(keys(undefined), INVENTORY, c.now);
  const toOrders = gw.mint(alice, ORDERS);
  const x = orders.exchange(toOrders, INVENTORY);
  assert.ok(x.ok, x.ok ? '' : x.error);
  const r = inventory.accept(x.token, ORDERS);
  assert.ok(r.ok, r.ok ? '' : r.error);
  assert.equal(r.assertion.user.sub, 'alice');
  assert.deepEqual(r.assertion.user.groups, alice.groups);
  assert.equal(r.assertion.act, ORDERS);
  const inbound = orders.verify(toOrders);
  assert.ok(inbound.ok);
  assert.ok(r.assertion.exp <= inbound.assertion.exp, 'no later than the inbound one');
  const again = orders.exchange(toOrders, INVENTORY);
  assert.ok(again.ok);
  assert.equal(again.token, x.token, 'cached: one signature per inbound assertion and audience');
  // The gateway cannot pass the exchanged one on as its own, and inventory's assertion cannot be exchanged by orders.
  assert.ok(!inventory.accept(x.token, GATEWAY).ok);
  const wrong = orders.exchange(x.token, INVENTORY);
  assert.ok(!wrong.ok);
  assert.match(wrong.error, /addressed to .*inventory, not .*orders/);
  // The UserAssertion source mints per audience.
  const src = new UserAssertion(gw, alice);
  assert.equal(src.headerFor(ORDERS), toOrders);
});

test('JWT attacks: tampering, other algorithms, embedded keys, unknown kids, long lifetimes, future iat, size', () => {
  const c = clock();
  const orders = new AssertionService(keys(undefined, [k1.pub]), ORDERS, c.now);
  const gw = new AssertionService(keys(k1), GATEWAY, c.now);
  const good = gw.mint(alice, ORDERS);
  const [h, p, s] = good.split('.');
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  const nowS = Math.floor(c.now() / 1000);
  const b = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const cases: Array<[string, string, RegExp]> = [
    ['payload changed (groups added)', `${h}.${b({ ...payload, groups: ['root'] })}.${s}`, /bad signature/],
    ['alg none', `${b({ alg: 'none', kid: 'k1' })}.${p}.`, /algorithm "none"/],
    ['HS256', `${b({ alg: 'HS256', kid: 'k1' })}.${p}.${s}`, /algorithm "HS256"/],
    ['embedded jwk', forge({ alg: 'ES256', kid: 'k1', jwk: k1.pub }, payload), /header parameter "jwk"/],
    ['jku', forge({ alg: 'ES256', kid: 'k1', jku: 'https://evil.example/jwks' }, payload), /header parameter "jku"/],
    ['crit', forge({ alg: 'ES256', kid: 'k1', crit: ['exp'] }, payload), /header parameter "crit"/],
    ['unknown kid (a key not published)', forge({ alg: 'ES256', kid: 'k2' }, payload, k2.priv), /unknown signing key "k2"/],
    ['published kid, signed by another key', forge({ alg: 'ES256', kid: 'k1' }, payload, k2.priv), /bad signature/],
    ['another issuer', forge({ alg: 'ES256', kid: 'k1' }, { ...payload, iss: 'https://evil' }), /issuer/],
    ['a lifetime over five minutes', forge({ alg: 'ES256', kid: 'k1' }, { ...payload, iat: nowS, exp: nowS + 3600 }), /lifetime/],
    ['issued in the future', forge({ alg: 'ES256', kid: 'k1' }, { ...payload, iat: nowS + 120, exp: nowS + 300 }), /future/],
    ['no exp', forge({ alg: 'ES256', kid: 'k1' }, { ...payload, exp: undefined }), /iat and exp/],
    ['no act', forge({ alg: 'ES256', kid: 'k1' }, { ...payload, act: undefined }), /act\.sub/],
    ['two parts', `${h}.${p}`, /JWS compact/],
    ['not JSON', `${h}.bm90IGpzb24.${s}`, /base64url JSON/],
    ['oversized', `${h}.${'A'.repeat(MAX_ASSERTION_BYTES)}.${s}`, /longer than/],
  ];
  for (const [name, token, error] of cases) {
    const r = orders.accept(token, GATEWAY);
    assert.ok(!r.ok, `${name}: accepted`);
    assert.match(r.error, error, name);
  }
  assert.ok(orders.accept(good, GATEWAY).ok, 'the untouched one still passes');
});

test('key rotation: a verifier that knows both keys accepts both; once the old one is dropped, its assertions are refused', () => {
  const c = clock();
  const old = new AssertionService(keys(k1, [k1.pub]), GATEWAY, c.now).mint(alice, ORDERS);
  const fresh = new AssertionService(keys(k2, [k2.pub, k1.pub]), GATEWAY, c.now).mint(alice, ORDERS);
  const both = new AssertionService(keys(undefined, [k2.pub, k1.pub]), ORDERS, c.now);
  assert.ok(both.accept(old, GATEWAY).ok);
  assert.ok(both.accept(fresh, GATEWAY).ok);
  const onlyNew = new AssertionService(keys(undefined, [k2.pub]), ORDERS, c.now);
  assert.ok(!onlyNew.accept(old, GATEWAY).ok);
  assert.ok(onlyNew.accept(fresh, GATEWAY).ok);
});

test('claims become a user (sub required); header values with control characters are not handed on', () => {
  assert.equal(userFromClaims({ email: 'x@y' }), null);
  assert.deepEqual(userFromClaims({ sub: 'bob', groups: 'staff', iss: 'https://idp', exp: 5, aud: 'x' }), { sub: 'bob', groups: ['staff'], idp: 'https://idp', exp: 5 });
  const gw = new AssertionService(keys(k1), GATEWAY);
  assert.equal(assertionFromClaims(gw, null), null);
  assert.equal(assertionFromClaims(null, { sub: 'bob' }), null);
  assert.equal(assertionFromClaims(new AssertionService(keys(undefined), GATEWAY), { sub: 'bob' }), null, 'no signing key');
  assert.ok(assertionFromClaims(gw, { sub: 'bob' }) !== null);
  assert.equal(headerSafe('alice@example.com'), 'alice@example.com');
  assert.equal(headerSafe('a\r\nx-admin: 1'), undefined);
  assert.equal(headerSafe('ümlaut'), undefined);
});

test('a keys file is checked: shape, key type, and that the signing key is published', () => {
  assert.throws(() => parseAssertionKeys('{', 'k.json'), /k\.json: not JSON/);
  assert.throws(() => parseAssertionKeys('{"keys":[]}', 'k.json'), /expected \{"issuer"/);
  assert.throws(() => parseAssertionKeys(JSON.stringify({ issuer: ISSUER, keys: [{ kty: 'RSA', kid: 'r' }] }), 'k.json'), /EC P-256 JWK/);
  assert.throws(() => parseAssertionKeys(JSON.stringify({ issuer: ISSUER, keys: [k1.pub], signing: k1.pub }), 'k.json'), /and d, for the signing key/);
  assert.throws(() => parseAssertionKeys(JSON.stringify({ issuer: ISSUER, keys: [k1.pub], signing: k2.priv }), 'k.json'), /signing key k2 is not among the published keys/);
  assert.deepEqual(parseAssertionKeys(JSON.stringify(keys(k1)), 'k.json'), keys(k1));
});

test('one source per claims object; it hands out the same assertion per audience until reuse ends, then a new one', () => {
  const c = clock();
  const gw = new AssertionService(keys(k1), GATEWAY, c.now);
  const claims = { sub: 'alice', groups: ['staff'], iss: 'https://idp', exp: Math.floor(c.now() / 1000) + 3600 };
  const src = assertionFromClaims(gw, claims)!;
  assert.equal(assertionFromClaims(gw, claims), src, 'the same source for the same claims object');
  assert.notEqual(assertionFromClaims(gw, { ...claims }), src, 'another token (object) gets its own');
  const a = src.headerFor(ORDERS);
  assert.equal(src.headerFor(ORDERS), a);
  const b = src.headerFor(INVENTORY);
  assert.notEqual(b, a);
  assert.equal(src.headerFor(ORDERS), a, 'switching audiences still reuses (through the mint cache)');
  c.advance(REUSE_MS);
  assert.notEqual(src.headerFor(ORDERS), a, 'a minute later: a new assertion');
  const orders = new AssertionService(keys(undefined), ORDERS, c.now);
  const r = orders.accept(src.headerFor(ORDERS), GATEWAY);
  assert.ok(r.ok);
  assert.equal(orders.exchangeFor(r.assertion), orders.exchangeFor(r.assertion), 'one exchange source per verified assertion');
});

test('the verify cache is keyed by the signature tail, but a hit needs the whole token: a changed payload with the same signature is not served from it', () => {
  const c = clock();
  const gw = new AssertionService(keys(k1), GATEWAY, c.now);
  const orders = new AssertionService(keys(undefined), ORDERS, c.now);
  const good = gw.mint(alice, ORDERS);
  assert.ok(orders.accept(good, GATEWAY).ok);
  const [h, p, s] = good.split('.');
  const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
  const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, groups: ['root'] })).toString('base64url')}.${s}`;
  const r = orders.accept(forged, GATEWAY);
  assert.ok(!r.ok);
  assert.match(r.error, /bad signature/);
  assert.ok(orders.accept(good, GATEWAY).ok, 'the genuine one still verifies');
});

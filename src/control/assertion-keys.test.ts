import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { ASSERTION_LIFETIME_S, AssertionService, SKEW_S } from '../proxy/assertion.ts';
import { LocalKeyWrapper } from '../secrets/key-wrapper.ts';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import { ASSERTION_KEYS_KEY, AssertionKeyStore } from './assertion-keys.ts';

const ISSUER = 'spiffe://t.test/ns/lockgate-system/sa/control-plane';
const EDGE = 'spiffe://t.test/ns/default/sa/edge';
const ORDERS = 'spiffe://t.test/ns/shop/sa/orders';

test('the first key signs at once; a rotation publishes first, signs after the delay, and retires the old key after its last assertion', async () => {
  const store = new MemoryConfigStore();
  const wrapper = new LocalKeyWrapper(randomBytes(32));
  let t = Date.UTC(2026, 10, 27, 12);
  const now = (): number => t;
  const events: string[] = [];
  const keys = await AssertionKeyStore.open({ store, wrapper, issuer: ISSUER, now, publishDelayMs: 30_000, log: (e) => events.push(e) });
  let changes = 0;
  keys.onChange(() => changes++);
  const first = keys.current();
  assert.equal(first.issuer, ISSUER);
  assert.equal(first.keys.length, 1);
  assert.equal(first.signing?.kid, first.keys[0].kid);
  assert.equal(keys.jwks().keys[0].kid, first.keys[0].kid);
  assert.equal((keys.jwks().keys[0] as unknown as { d?: string }).d, undefined, 'the JWKS has no private part');
  // The stored state has the private key sealed, never in clear.
  const stored = (await store.get(ASSERTION_KEYS_KEY))!.value;
  assert.ok(!stored.includes(first.signing!.d));

  const before = keys.current();
  const token = new AssertionService(before, EDGE, now).mint({ sub: 'alice' }, ORDERS);
  const next = await keys.rotate();
  assert.equal(changes, 1);
  const published = keys.current();
  assert.deepEqual(published.keys.map((k) => k.kid).sort(), [before.signing!.kid, next].sort(), 'both published');
  assert.equal(published.signing?.kid, before.signing?.kid, 'the old key still signs while nodes learn the new one');

  t += 30_000;
  await keys.maintain();
  const switched = keys.current();
  assert.equal(switched.signing?.kid, next, 'the new key signs after the publish delay');
  assert.equal(switched.keys.length, 2, 'the old key stays published for the assertions it made');
  assert.ok(new AssertionService(switched, ORDERS, now).accept(token, EDGE).ok, 'an assertion made with the old key still verifies');
  assert.equal(changes, 2);

  t += (ASSERTION_LIFETIME_S + SKEW_S) * 1000;
  await keys.maintain();
  const retired = keys.current();
  assert.deepEqual(retired.keys.map((k) => k.kid), [next]);
  assert.ok(events.includes('assertion_key_retired'));
  assert.equal(changes, 3);

  // Reopened (a restart): the same keys and signer, from the sealed state.
  const again = await AssertionKeyStore.open({ store, wrapper, issuer: ISSUER, now });
  assert.deepEqual(again.current(), retired);
  // A master key rotation re-seals; the new master key alone opens them.
  const newWrapper = new LocalKeyWrapper(randomBytes(32));
  assert.equal(await again.reseal(newWrapper), 1);
  const reopened = await AssertionKeyStore.open({ store, wrapper: newWrapper, issuer: ISSUER, now });
  assert.deepEqual(reopened.current(), retired);
  await assert.rejects(AssertionKeyStore.open({ store, wrapper, issuer: ISSUER, now }));
});

test('a signing key older than rotateAfter is rotated by maintain()', async () => {
  const store = new MemoryConfigStore();
  const wrapper = new LocalKeyWrapper(randomBytes(32));
  let t = Date.UTC(2026, 10, 27, 12);
  const keys = await AssertionKeyStore.open({ store, wrapper, issuer: ISSUER, now: () => t, rotateAfterMs: 3_600_000, publishDelayMs: 1000 });
  const k0 = keys.current().signing!.kid;
  t += 3_599_000;
  await keys.maintain();
  assert.equal(keys.current().keys.length, 1);
  t += 1000;
  await keys.maintain();
  assert.equal(keys.current().keys.length, 2, 'a new key published');
  assert.equal(keys.current().signing!.kid, k0);
  t += 1000;
  await keys.maintain();
  assert.notEqual(keys.current().signing!.kid, k0);
});

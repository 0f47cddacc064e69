import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { CertificateAuthority } from '../ca/certificate-authority.ts';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import { consumeJoinToken, createJoinToken, parseJoinToken, rootFingerprint, type JoinTokenRecord } from './join-tokens.ts';

const ca = await CertificateAuthority.create({ trustDomain: 'test.local' });
const bundle = ca.trustBundle();

test('a token carries the first root\'s fingerprint and is stored only as a hash', async () => {
  const store = new MemoryConfigStore();
  const t0 = 1_000_000;
  const { token, id, expiresAt } = await createJoinToken(store, { service: 'orders', namespace: 'shop', bundle, now: () => t0 });
  const p = parseJoinToken(token)!;
  assert.equal(p.id, id);
  assert.equal(p.fingerprint, createHash('sha256').update(new X509Certificate(bundle[0]).raw).digest('base64url'));
  assert.equal(p.fingerprint, rootFingerprint(bundle[0]));
  assert.equal(expiresAt, t0 + 3600_000);
  const kv = await store.get(`/tokens/join/${id}`);
  assert.ok(kv);
  assert.ok(!kv.value.includes(p.secret), 'the secret is not stored');
  const rec = JSON.parse(kv.value) as JoinTokenRecord;
  assert.deepEqual([rec.service, rec.namespace, rec.kind, rec.used], ['orders', 'shop', 'sidecar', false]);
  await store.close();
});

test('a token works once, for the identity it was made for', async () => {
  const store = new MemoryConfigStore();
  const { token } = await createJoinToken(store, { service: 'edge', namespace: 'infra', kind: 'gateway', bundle });
  const first = await consumeJoinToken(store, token, Date.now());
  assert.deepEqual(first.ok && first.identity, { service: 'edge', namespace: 'infra', kind: 'gateway' });
  assert.deepEqual(await consumeJoinToken(store, token, Date.now()), { ok: false, reason: 'used' });
  await store.close();
});

test('of concurrent uses of one token exactly one succeeds', async () => {
  const store = new MemoryConfigStore();
  const { token } = await createJoinToken(store, { service: 'orders', bundle });
  const results = await Promise.all(Array.from({ length: 12 }, () => consumeJoinToken(store, token, Date.now())));
  assert.equal(results.filter((r) => r.ok).length, 1);
  assert.ok(results.filter((r) => !r.ok).every((r) => !r.ok && r.reason === 'used'));
  await store.close();
});

test('an expired token is refused, and so is a wrong secret (which does not burn the token)', async () => {
  const store = new MemoryConfigStore();
  const t0 = 5_000_000;
  const { token } = await createJoinToken(store, { service: 'orders', ttlMs: 60_000, bundle, now: () => t0 });
  const [prefix, id, secret, fp] = token.split('.');
  const wrong = [prefix, id, secret.slice(0, -2) + (secret.endsWith('AA') ? 'BB' : 'AA'), fp].join('.');
  assert.deepEqual(await consumeJoinToken(store, wrong, t0 + 1), { ok: false, reason: 'unknown' });
  assert.deepEqual(await consumeJoinToken(store, token, t0 + 60_000), { ok: false, reason: 'expired' });
  assert.equal((await consumeJoinToken(store, token, t0 + 59_999)).ok, true);
  await store.close();
});

test('malformed and unknown tokens are refused', async () => {
  const store = new MemoryConfigStore();
  for (const t of [undefined, 42, '', 'lgj1.a.b.c', 'lgj2.aaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbb.' + 'c'.repeat(43)]) {
    assert.deepEqual(await consumeJoinToken(store, t, 0), { ok: false, reason: 'malformed' }, String(t));
  }
  assert.deepEqual(await consumeJoinToken(store, `lgj1.aaaaaaaaaaaa.${'b'.repeat(43)}.${'c'.repeat(43)}`, 0), { ok: false, reason: 'unknown' });
  await store.close();
});

test('bad options are refused', async () => {
  const store = new MemoryConfigStore();
  await assert.rejects(createJoinToken(store, { service: 'Orders!', bundle }), /service/);
  await assert.rejects(createJoinToken(store, { service: 'orders', kind: 'robot' as never, bundle }), /kind/);
  await assert.rejects(createJoinToken(store, { service: 'orders', ttlMs: 0, bundle }), /ttl/);
  await assert.rejects(createJoinToken(store, { service: 'orders', bundle: [] }), /bundle/);
  await store.close();
});

// Tests for the bootstrap admin token: made once, stored only as a hash, verified exactly.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import { ADMIN_TOKEN_PREFIX, adminTokenVerifier, ensureBootstrapToken } from './bootstrap-token.ts';

test('the first call makes a token and stores only its hash; later calls make none', async () => {
  const store = new MemoryConfigStore();
  try {
    const first = await ensureBootstrapToken(store);
    assert.match(first.token!, /^lgadm\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/);
    const { kvs } = await store.range(ADMIN_TOKEN_PREFIX);
    assert.equal(kvs.length, 1);
    assert.equal(kvs[0].key, ADMIN_TOKEN_PREFIX + first.id);
    assert.ok(!kvs[0].value.includes(first.token!.split('.')[2]), 'the secret is not stored');
    const second = await ensureBootstrapToken(store);
    assert.equal(second.token, undefined);
    assert.equal(second.id, first.id);
    const verify = adminTokenVerifier(store);
    const signal = new AbortController().signal;
    assert.equal(await verify(first.token!, signal), `admin-token:${first.id}`);
    const secret = first.token!.split('.')[2];
    const flipped = `lgadm.${first.id}.${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
    assert.equal(await verify(flipped, signal), undefined);
    assert.equal(await verify(`lgadm.${'0'.repeat(16)}.${secret}`, signal), undefined, 'the secret under another id');
    assert.equal(await verify('', signal), undefined);
  } finally {
    await store.close();
  }
});

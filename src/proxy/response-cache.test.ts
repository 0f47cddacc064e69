import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ResponseCache, responseCacheOf, DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRY_BYTES } from './response-cache.ts';

function clock(): { now: () => number; advance(ms: number): void } {
  let t = 1000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

test('a value comes back until its time is up, then it is gone and its bytes are freed', () => {
  const c = clock();
  const cache = new ResponseCache<string>({ maxBytes: 10_000, now: c.now });
  assert.equal(cache.set('a', 'A', 100, 500), true);
  assert.deepEqual(cache.get('a'), { value: 'A', expiresAt: 1500 });
  c.advance(499);
  assert.equal(cache.get('a')?.value, 'A');
  c.advance(1);
  assert.equal(cache.get('a'), undefined);
  assert.equal(cache.size, 0);
  assert.equal(cache.bytes, 0);
});

test('the least recently used entry is evicted first, and a read makes an entry recent', () => {
  const c = clock();
  // Each entry costs 1000 declared bytes plus a little overhead: three fit, four do not.
  const cache = new ResponseCache<number>({ maxBytes: 3500, now: c.now });
  cache.set('a', 1, 1000, 60_000);
  cache.set('b', 2, 1000, 60_000);
  cache.set('c', 3, 1000, 60_000);
  assert.equal(cache.size, 3);
  assert.equal(cache.get('a')?.value, 1); // a is now the most recent; b the least
  cache.set('d', 4, 1000, 60_000);
  assert.equal(cache.peek('b'), undefined, 'b was the least recently used');
  assert.equal(cache.peek('a')?.value, 1);
  assert.equal(cache.peek('c')?.value, 3);
  assert.equal(cache.peek('d')?.value, 4);
  assert.ok(cache.bytes <= cache.maxBytes);
});

test('the byte bound holds under many inserts of different sizes', () => {
  const c = clock();
  const cache = new ResponseCache<number>({ maxBytes: 50_000, maxEntryBytes: 20_000, now: c.now });
  for (let i = 0; i < 2000; i++) {
    cache.set(`k${i}`, i, (i * 7919) % 15_000, 60_000);
    assert.ok(cache.bytes <= 50_000, `bytes ${cache.bytes} after insert ${i}`);
  }
  // The newest entry is always kept (it fits on its own).
  assert.equal(cache.peek('k1999')?.value, 1999);
  let sum = 0;
  for (let i = 0; i < 2000; i++) if (cache.peek(`k${i}`) !== undefined) sum++;
  assert.equal(sum, cache.size);
});

test('an entry over the per-entry cap is refused and drops the key\'s old value', () => {
  const cache = new ResponseCache<string>({ maxBytes: 100_000, maxEntryBytes: 1000 });
  assert.equal(cache.set('k', 'small', 10, 60_000), true);
  assert.equal(cache.set('k', 'big', 5000, 60_000), false);
  assert.equal(cache.get('k'), undefined);
  assert.equal(cache.bytes, 0);
});

test('a ttl of 0 or less stores nothing', () => {
  const cache = new ResponseCache<string>();
  assert.equal(cache.set('k', 'v', 1, 0), false);
  assert.equal(cache.set('k', 'v', 1, -5), false);
  assert.equal(cache.set('k', 'v', 1, Number.NaN), false);
  assert.equal(cache.size, 0);
});

test('replacing a key accounts its bytes once; delete and clear free them', () => {
  const cache = new ResponseCache<string>({ maxBytes: 100_000 });
  cache.set('k', 'one', 1000, 60_000);
  const one = cache.bytes;
  cache.set('k', 'two', 1000, 60_000);
  assert.equal(cache.bytes, one);
  assert.equal(cache.get('k')?.value, 'two');
  assert.equal(cache.delete('k'), true);
  assert.equal(cache.delete('k'), false);
  assert.equal(cache.bytes, 0);
  cache.set('a', 'x', 10, 60_000);
  cache.set('b', 'y', 10, 60_000);
  cache.clear();
  assert.equal(cache.size, 0);
  assert.equal(cache.bytes, 0);
});

test('expired entries at the front are dropped before live ones are evicted', () => {
  const c = clock();
  const cache = new ResponseCache<number>({ maxBytes: 3500, now: c.now });
  cache.set('short', 1, 1000, 100);
  cache.set('long1', 2, 1000, 60_000);
  cache.set('long2', 3, 1000, 60_000);
  c.advance(200);
  cache.set('new', 4, 1000, 60_000);
  assert.equal(cache.peek('long1')?.value, 2);
  assert.equal(cache.peek('long2')?.value, 3);
  assert.equal(cache.peek('new')?.value, 4);
  assert.equal(cache.size, 3);
});

test('peek does not change recency', () => {
  const cache = new ResponseCache<number>({ maxBytes: 2500 });
  cache.set('a', 1, 1000, 60_000);
  cache.set('b', 2, 1000, 60_000);
  assert.equal(cache.peek('a')?.value, 1);
  cache.set('c', 3, 1000, 60_000);
  assert.equal(cache.peek('a'), undefined, 'a stayed the least recently used');
  assert.equal(cache.peek('b')?.value, 2);
});

test('defaults: 64 MiB in all, 2 MiB per entry; bad sizes are refused', () => {
  const cache = new ResponseCache();
  assert.equal(cache.maxBytes, DEFAULT_MAX_BYTES);
  assert.equal(cache.maxEntryBytes, DEFAULT_MAX_ENTRY_BYTES);
  assert.equal(DEFAULT_MAX_BYTES, 64 * 1024 * 1024);
  assert.equal(DEFAULT_MAX_ENTRY_BYTES, 2 * 1024 * 1024);
  assert.throws(() => new ResponseCache({ maxBytes: 0 }), RangeError);
  // The entry cap never exceeds the whole.
  assert.equal(new ResponseCache({ maxBytes: 1000, maxEntryBytes: 5000 }).maxEntryBytes, 1000);
});

test('responseCacheOf creates the worker\'s cache once and keeps it in the services', () => {
  const services: Record<string, unknown> = {};
  const a = responseCacheOf(services);
  assert.equal(responseCacheOf(services), a);
  assert.equal(services.responseCache, a);
  const mine = new ResponseCache({ maxBytes: 1234 });
  assert.equal(responseCacheOf({ responseCache: mine }), mine);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type dns from 'node:dns';
import { createCachedLookup, type ResolvedRecords } from './dns-cache.ts';

function call(lookup: ReturnType<typeof createCachedLookup>, host: string): Promise<string> {
  return new Promise((resolve, reject) => lookup(host, {}, (err, address) => (err ? reject(err) : resolve(address as string))));
}

test('answers are cached for their DNS TTL, then re-resolved (a moved backend is followed)', async () => {
  let t = 0;
  let answer = '10.0.0.1';
  let calls = 0;
  const resolve = async (): Promise<ResolvedRecords> => {
    calls++;
    return { addresses: [{ address: answer, family: 4 }], ttlSeconds: 30 };
  };
  const lookup = createCachedLookup(60_000, () => t, resolve);
  assert.equal(await call(lookup, 'svc.example'), '10.0.0.1');
  answer = '10.0.0.2';
  t = 29_000;
  assert.equal(await call(lookup, 'svc.example'), '10.0.0.1', 'within the TTL: cached');
  assert.equal(calls, 1);
  t = 30_001;
  assert.equal(await call(lookup, 'svc.example'), '10.0.0.2', 'after the TTL: re-resolved');
  assert.equal(calls, 2);
});

test('IP literals pass through; names without DNS records fall back to the system resolver (/etc/hosts)', async () => {
  const lookup = createCachedLookup(1000, Date.now, async () => {
    throw new Error('no DNS');
  });
  assert.equal(await call(lookup, '192.0.2.4'), '192.0.2.4');
  const all = await new Promise<dns.LookupAddress[]>((resolve, reject) =>
    lookup('localhost', { all: true }, (err, addresses) => (err ? reject(err) : resolve(addresses as dns.LookupAddress[]))),
  );
  assert.ok(all.some((a) => a.address === '127.0.0.1' || a.address === '::1'), JSON.stringify(all));
});

test('several addresses are used in turn', async () => {
  const lookup = createCachedLookup(1000, () => 0, async () => ({
    addresses: [{ address: '10.0.0.1', family: 4 }, { address: '10.0.0.2', family: 4 }],
    ttlSeconds: 60,
  }));
  const got = [await call(lookup, 'a'), await call(lookup, 'a'), await call(lookup, 'a')];
  assert.deepEqual(got, ['10.0.0.1', '10.0.0.2', '10.0.0.1']);
});

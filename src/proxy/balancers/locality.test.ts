import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endpointStates } from '../endpoint-state.ts';
import { localityBalancer, localityTiers } from './locality.ts';
import { createCluster, LocalityCluster } from './locality-cluster.ts';
import type { BackendSpec, LbAlgorithm } from '../../model/types.ts';
import { defaultOf } from '../../model/field.ts';
import { backendFields } from '../../model/backend-fields.ts';

// a: our zone; b: our region, other zone; c: other region, a zone with our zone's name; d: no labels.
const LABELS: Array<Record<string, string>> = [
  { region: 'eu', zone: 'eu-1' },
  { region: 'eu', zone: 'eu-2' },
  { region: 'us', zone: 'eu-1' },
  {},
];
const endpoints = () => endpointStates(['a', 'b', 'c', 'd'].map((n) => ({ url: `http://${n}`, weight: 1 })));
const name = (ep: { url: string } | undefined) => (ep === undefined ? '-' : ep.url.slice(7));

test('tiers: same zone (in the same region), then same region, then the rest', () => {
  const eps = endpoints();
  const tiers = (self: { region?: string; zone?: string }) => localityTiers(eps, LABELS, self).map((t) => t.map(name).join(''));
  assert.deepEqual(tiers({ region: 'eu', zone: 'eu-1' }), ['a', 'b', 'cd']);
  assert.deepEqual(tiers({ region: 'eu' }), ['ab', 'cd']);
  // Without our region, a zone name is all there is to go by.
  assert.deepEqual(tiers({ zone: 'eu-1' }), ['ac', 'bd']);
  assert.deepEqual(tiers({ region: 'ap', zone: 'ap-1' }), ['abcd']);
  assert.deepEqual(tiers({}), ['abcd']);
});

const ALGORITHMS: LbAlgorithm[] = ['round-robin', 'weighted-round-robin', 'least-request', 'ewma', 'consistent-hash'];

for (const algorithm of ALGORITHMS) {
  test(`${algorithm}: the zone first; fail over tier by tier when a tier has no available endpoint; back when it recovers`, () => {
    const eps = endpoints();
    const b = localityBalancer({ algorithm }, localityTiers(eps, LABELS, { region: 'eu', zone: 'eu-1' }), () => 0.5);
    const picks = (n: number, now = 0) => Array.from({ length: n }, (_, i) => name(b.pick(now, `k${i}`)));
    assert.deepEqual(new Set(picks(20)), new Set(['a']));
    eps[0].healthy = false; // health check says down
    assert.deepEqual(new Set(picks(20)), new Set(['b']));
    eps[1].ejectedUntil = 1000; // outlier ejection
    assert.deepEqual(new Set(picks(40)), new Set(['c', 'd']));
    // The ejection ends: the region tier is back before the zone is.
    assert.deepEqual(new Set(picks(20, 1000)), new Set(['b']));
    eps[0].healthy = true;
    assert.deepEqual(new Set(picks(20, 1000)), new Set(['a']));
    eps[0].weight = 0; // drained counts as unavailable too
    assert.deepEqual(new Set(picks(20, 1000)), new Set(['b']));
    for (const ep of eps) ep.healthy = false;
    assert.equal(b.pick(1000, 'k'), undefined);
  });
}

test('within a tier the algorithm still balances (round-robin over the region tier)', () => {
  const eps = endpoints();
  const b = localityBalancer({ algorithm: 'round-robin' }, localityTiers(eps, LABELS, { region: 'eu' }), () => 0);
  const seen = Array.from({ length: 10 }, () => name(b.pick(0)));
  assert.deepEqual([seen.filter((x) => x === 'a').length, seen.filter((x) => x === 'b').length], [5, 5]);
});

test('createCluster: a LocalityCluster only when locality splits the endpoints into tiers', async () => {
  const base = defaultOf(backendFields) as BackendSpec;
  const eps = LABELS.map((labels, i) => ({ url: `http://127.0.0.1:${9 + i}`, weight: 1, labels }));
  const plain = createCluster('default/p', { ...base, endpoints: eps });
  const noTiers = createCluster('default/n', { ...base, endpoints: eps, locality: { region: 'ap' } });
  const local = createCluster('default/l', { ...base, endpoints: eps, locality: { region: 'eu', zone: 'eu-1' } });
  try {
    assert.equal(plain instanceof LocalityCluster, false);
    assert.equal(noTiers instanceof LocalityCluster, false);
    assert.equal(local instanceof LocalityCluster, true);
    assert.equal(local.pick(undefined)?.url, eps[0].url);
    local.endpoints[0].healthy = false;
    assert.equal(local.pick(undefined)?.url, eps[1].url);
  } finally {
    await Promise.all([plain.close(), noTiers.close(), local.close()]);
  }
});

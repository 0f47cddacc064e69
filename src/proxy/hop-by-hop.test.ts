// Tests for the hop-by-hop name predicates: the fast switches agree with the exported sets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { FRAMING_AND_HOP, HOP_BY_HOP, isFramingOrHop, isHopByHop } from './hop-by-hop.ts';

const NEAR_MISSES = [
  '', 't', 'tf', 'ta', 'trailers', 'trailee', 'upgradf', 'uPgrade', 'Connection', 'connectiom', 'keep-alivf', 'xonnection',
  'proxy-connectiox', 'proxy-authorization', 'transfer-encodinf', 'xransfer-encoding', 'content-lengtx', 'hosts', 'hos',
  'content-type', 'x-forwarded-for', 'authorization', 'cookie', 'hostx', 'HOST',
];

test('isHopByHop matches exactly the RFC 9110 hop-by-hop names', () => {
  assert.deepEqual([...HOP_BY_HOP].sort(), ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
  for (const n of HOP_BY_HOP) assert.equal(isHopByHop(n), true, n);
  for (const n of NEAR_MISSES) assert.equal(isHopByHop(n), false, n);
  assert.equal(isHopByHop('host'), false);
  assert.equal(isHopByHop('content-length'), false);
});

test('isFramingOrHop adds host and content-length', () => {
  assert.equal(FRAMING_AND_HOP.size, HOP_BY_HOP.size + 2);
  for (const n of FRAMING_AND_HOP) assert.equal(isFramingOrHop(n), true, n);
  for (const n of NEAR_MISSES) assert.equal(isFramingOrHop(n), false, n);
});

test('property: the switches agree with the sets on arbitrary names', () => {
  const names = fc.oneof(fc.constantFrom(...FRAMING_AND_HOP, ...NEAR_MISSES), fc.string({ maxLength: 20 }));
  fc.assert(fc.property(names, (n) => {
    assert.equal(isHopByHop(n), HOP_BY_HOP.has(n));
    assert.equal(isFramingOrHop(n), FRAMING_AND_HOP.has(n));
  }), { numRuns: 2000 });
});

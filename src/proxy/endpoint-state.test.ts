import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EndpointState, endpointStates } from './endpoint-state.ts';

test('available needs healthy and not ejected at that time', () => {
  const ep = new EndpointState(3, { url: 'http://10.0.0.1:80', weight: 2 });
  assert.equal(ep.index, 3);
  assert.equal(ep.weight, 2);
  assert.equal(ep.available(0), true);
  ep.ejectedUntil = 1000;
  assert.equal(ep.available(999), false);
  assert.equal(ep.available(1000), true);
  ep.healthy = false;
  assert.equal(ep.available(5000), false);
});

test('onStart/onEnd track in-flight requests and feed the latency estimate', () => {
  const ep = new EndpointState(0, { url: 'http://a', weight: 1 }, 0);
  ep.onStart();
  ep.onStart();
  assert.equal(ep.inflight, 2);
  ep.onEnd(10, 250, false);
  assert.equal(ep.inflight, 1);
  assert.equal(ep.latency.value, 250);
  ep.onEnd(20, 5, false);
  ep.onEnd(30, 5, false);
  assert.equal(ep.inflight, 0, 'never negative');
});

test('a fast failure counts as slow, so it cannot attract traffic', () => {
  const ep = new EndpointState(0, { url: 'http://a', weight: 1 }, 0, { failurePenaltyMs: 800 });
  ep.onStart();
  ep.onEnd(1, 2, true);
  assert.equal(ep.latency.value, 800);
  ep.onStart();
  ep.onEnd(2, 2000, true);
  assert.equal(ep.latency.value, 2000, 'a slow failure keeps its own latency');
});

test('endpointStates numbers endpoints in order', () => {
  const eps = endpointStates([{ url: 'http://a', weight: 1 }, { url: 'http://b', weight: 3 }]);
  assert.deepEqual(eps.map((e) => [e.index, e.url, e.weight]), [[0, 'http://a', 1], [1, 'http://b', 3]]);
});

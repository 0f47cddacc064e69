import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Agent } from 'undici';
import { endpointStates } from './endpoint-state.ts';
import type { EndpointState } from './endpoint-state.ts';
import { HealthChecker } from './health-checker.ts';
import type { HealthCheck } from '../model/types.ts';

const cfg: HealthCheck = {
  enabled: true,
  path: '/healthz',
  interval: 15,
  timeout: 200,
  healthyThreshold: 2,
  unhealthyThreshold: 2,
  expectedStatuses: [{ min: 200, max: 299 }],
};

/** A backend whose health answer the test controls: a status, or 'hang' to never answer. */
async function backend() {
  const state = { status: 200 as number | 'hang', hits: 0, paths: new Set<string>() };
  const server: Server = createServer((req, res) => {
    state.hits++;
    state.paths.add(req.url ?? '');
    if (state.status === 'hang') return;
    res.writeHead(state.status).end('ok');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = () => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { state, url, close };
}

/** Records every onChange; next() resolves on the next one, or rejects after `ms` so a broken checker fails fast. */
function changes() {
  const waiters: Array<(v: [EndpointState, boolean]) => void> = [];
  const log: Array<[string, boolean]> = [];
  const onChange = (ep: EndpointState, healthy: boolean) => {
    log.push([ep.url, healthy]);
    waiters.shift()?.([ep, healthy]);
  };
  const next = (ms = 2000) =>
    new Promise<[EndpointState, boolean]>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no health change in time')), ms);
      waiters.push((v) => {
        clearTimeout(t);
        resolve(v);
      });
    });
  return { onChange, next, log };
}

/** Polls until `cond` holds; fails after `ms` rather than guessing how long a cold start takes. */
async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('flips a real endpoint down on bad statuses and back up when it recovers', async () => {
  const a = await backend();
  const b = await backend();
  const eps = endpointStates([{ url: a.url, weight: 1 }, { url: b.url, weight: 1 }]);
  const c = changes();
  const checker = new HealthChecker(eps, cfg, { onChange: c.onChange });
  checker.start();
  try {
    await until(() => a.state.hits >= 3 && b.state.hits >= 3);
    assert.deepEqual(c.log, [], 'healthy endpoints stay healthy');
    assert.deepEqual([...a.state.paths], ['/healthz']);
    a.state.status = 503;
    const [down, healthy] = await c.next();
    assert.equal(down, eps[0]);
    assert.equal(healthy, false);
    assert.equal(eps[0].healthy, false);
    assert.equal(eps[0].available(0), false);
    assert.equal(eps[1].healthy, true);
    a.state.status = 204;
    const [up, healthyAgain] = await c.next();
    assert.equal(up, eps[0]);
    assert.equal(healthyAgain, true);
    assert.deepEqual(c.log, [[a.url, false], [a.url, true]]);
  } finally {
    await checker.close();
    await a.close();
    await b.close();
  }
});

test('a hung check times out and a refused connection fails, both count as down', async () => {
  const hung = await backend();
  hung.state.status = 'hang';
  const gone = await backend();
  await gone.close(); // nothing listens on this port any more
  const eps = endpointStates([{ url: hung.url, weight: 1 }, { url: gone.url, weight: 1 }]);
  const c = changes();
  const checks: boolean[] = [];
  const checker = new HealthChecker(eps, { ...cfg, timeout: 50 }, { onChange: c.onChange, onCheck: (_ep, ok) => checks.push(ok) });
  checker.start();
  try {
    await c.next();
    await c.next();
    assert.deepEqual(new Set(c.log.map(([u]) => u)), new Set([hung.url, gone.url]));
    assert.ok(eps.every((e) => !e.healthy));
    assert.ok(checks.every((ok) => !ok));
  } finally {
    await checker.close();
    await hung.close();
  }
});

test('close() stops checking and closes the dispatcher it made', async () => {
  const a = await backend();
  const eps = endpointStates([{ url: a.url, weight: 1 }]);
  let agent: Agent | undefined;
  const checker = new HealthChecker(eps, cfg, { dispatcherFactory: () => (agent = new Agent()) });
  checker.start();
  await until(() => a.state.hits >= 2);
  await checker.close();
  assert.ok(agent !== undefined && agent.closed, 'agent closed');
  const hits = a.state.hits;
  assert.ok(hits > 0);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(a.state.hits, hits, 'no checks after close');
  await checker.close(); // idempotent
  await a.close();
});

test('disabled: start() sends nothing', async () => {
  const a = await backend();
  let made = 0;
  const checker = new HealthChecker(endpointStates([{ url: a.url, weight: 1 }]), { ...cfg, enabled: false }, {
    dispatcherFactory: () => {
      made++;
      return new Agent();
    },
  });
  checker.start();
  await new Promise((r) => setTimeout(r, 40));
  await checker.close();
  assert.equal(made, 0);
  assert.equal(a.state.hits, 0);
  await a.close();
});

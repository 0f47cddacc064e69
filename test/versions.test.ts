// Version sets (path, header, query schemes; default version or 404) and revisions (;rev=N), end to end in one process.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { startPolicyGateway, GATEWAY } from './helpers/policy-gateway.ts';
import { formatProblems, parseConfigText } from '../src/model/load-config.ts';

const ups: Record<string, Upstream> = {};

before(async () => {
  for (const name of ['v1', 'v2', 'rev2']) {
    ups[name] = await startUpstream((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`${name} ${req.url}`);
    });
  }
});

after(async () => {
  for (const u of Object.values(ups)) await u.close();
});

function doc(kind: string, name: string, spec: string): string {
  return `---\napiVersion: lockgate.dev/v1alpha1\nkind: ${kind}\nmetadata: { name: ${name} }\nspec:\n${spec}\n`;
}

function config(set: string, extra = ''): string {
  return (
    GATEWAY +
    Object.keys(ups).map((n) => doc('Backend', n, `  url: "${ups[n].url}"`)).join('') +
    doc('ApiVersionSet', 'orders', set) +
    doc('Api', 'orders-v1', '  path: /orders\n  backend: v1\n  versionSet: orders\n  version: v1\n  operations: [{ name: item, methods: [GET], urlTemplate: "/items/{id}" }]') +
    doc('Api', 'orders-v2', '  path: /orders\n  backend: v2\n  versionSet: orders\n  version: v2\n  operations: [{ name: item, methods: [GET], urlTemplate: "/items/{id}" }]') +
    extra
  );
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const r = await request(url, { headers });
  return { status: r.statusCode, text: await r.body.text() };
}

test('path scheme: /orders/v2/… picks v2, no version goes to the default, an unknown version is 404', async () => {
  const g = await startPolicyGateway(config('  scheme: path\n  defaultVersion: v1'));
  try {
    // The version segment is not forwarded: both forms reach the backend as /orders/items/7.
    assert.deepEqual(await get(`${g.url}/orders/v2/items/7`), { status: 200, text: 'v2 /orders/items/7' });
    assert.deepEqual(await get(`${g.url}/orders/v1/items/7`), { status: 200, text: 'v1 /orders/items/7' });
    assert.deepEqual(await get(`${g.url}/orders/items/7`), { status: 200, text: 'v1 /orders/items/7' });
    assert.equal((await get(`${g.url}/orders/v3/items/7`)).status, 404);
  } finally {
    await g.close();
  }
});

test('path scheme without a default version: a request naming none is 404', async () => {
  const g = await startPolicyGateway(config('  scheme: path'));
  try {
    assert.equal((await get(`${g.url}/orders/items/7`)).status, 404);
    assert.equal((await get(`${g.url}/orders/v2/items/7`)).status, 200);
  } finally {
    await g.close();
  }
});

test('header scheme: the header picks the version; absent goes to the default; unknown is 404', async () => {
  const g = await startPolicyGateway(config('  scheme: header\n  headerName: Api-Version\n  defaultVersion: v1'));
  try {
    assert.deepEqual(await get(`${g.url}/orders/items/7`, { 'api-version': 'v2' }), { status: 200, text: 'v2 /orders/items/7' });
    assert.deepEqual(await get(`${g.url}/orders/items/7`), { status: 200, text: 'v1 /orders/items/7' });
    assert.equal((await get(`${g.url}/orders/items/7`, { 'api-version': 'v9' })).status, 404);
  } finally {
    await g.close();
  }
});

test('query scheme: ?api-version= picks the version (and is forwarded unchanged)', async () => {
  const g = await startPolicyGateway(config('  scheme: query\n  defaultVersion: v2'));
  try {
    assert.deepEqual(await get(`${g.url}/orders/items/7?api-version=v1&x=1`), { status: 200, text: 'v1 /orders/items/7?api-version=v1&x=1' });
    assert.deepEqual(await get(`${g.url}/orders/items/7`), { status: 200, text: 'v2 /orders/items/7' });
    assert.equal((await get(`${g.url}/orders/items/7?api-version=v7`)).status, 404);
  } finally {
    await g.close();
  }
});

test('revisions: ;rev=N reaches a non-current revision; the current one serves everything else; unknown is 404', async () => {
  const rev = doc('Api', 'orders-v1-rev2', '  path: /orders\n  backend: rev2\n  revisionOf: orders-v1\n  revision: 2\n  operations: [{ name: item, methods: [GET], urlTemplate: "/items/{id}" }]');
  const g = await startPolicyGateway(config('  scheme: path\n  defaultVersion: v1', rev));
  try {
    assert.deepEqual(await get(`${g.url}/orders/v1;rev=2/items/7`), { status: 200, text: 'rev2 /orders/items/7' });
    assert.deepEqual(await get(`${g.url}/orders;rev=2/items/7`), { status: 200, text: 'rev2 /orders/items/7' });
    assert.deepEqual(await get(`${g.url}/orders/v1;rev=1/items/7`), { status: 200, text: 'v1 /orders/items/7' });
    assert.deepEqual(await get(`${g.url}/orders/v1/items/7`), { status: 200, text: 'v1 /orders/items/7' });
    assert.equal((await get(`${g.url}/orders/v1;rev=3/items/7`)).status, 404);
    // v2 has no revision 2.
    assert.equal((await get(`${g.url}/orders/v2;rev=2/items/7`)).status, 404);
  } finally {
    await g.close();
  }
});

test('version problems are reported with file, line and column', () => {
  const text =
    config('  scheme: path\n  defaultVersion: v3') +
    doc('Api', 'orders-v2b', '  path: /orders\n  backend: v2\n  versionSet: orders\n  version: v2') +
    doc('Api', 'other', '  path: /other\n  backend: v2\n  versionSet: ordrs\n  version: v1') +
    doc('Api', 'moved', '  path: /elsewhere\n  backend: v2\n  versionSet: orders\n  version: v5') +
    doc('Api', 'rev', '  path: /orders\n  backend: v2\n  revisionOf: orders-v1\n  revision: 1');
  const out = formatProblems(parseConfigText(text, 'v.yaml').problems);
  assert.match(out, /v\.yaml:\d+:\d+: defaultVersion "v3" is not the version of any Api in the set/);
  assert.match(out, /v\.yaml:\d+:\d+: version "v2" of set "default\/orders" is already Api "orders-v2"/);
  assert.match(out, /ApiVersionSet "ordrs" not found in namespace "default" \(did you mean "orders"\?\)/);
  assert.match(out, /the Apis of version set "default\/orders" share one path and hosts/);
  assert.match(out, /revision 1 of "default\/orders-v1" already exists/);
});

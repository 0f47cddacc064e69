// Tests for the admin API over a real HTTPS server and an in-memory store: CRUD, ETags, validation, apply, watch, OpenAPI.
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { after, before, test } from 'node:test';
import { CertificateAuthority } from '../ca/certificate-authority.ts';
import { MemoryConfigStore } from '../store/memory-config-store.ts';
import { adminApiRoutes } from './admin-api.ts';
import { adminTokenVerifier, ensureBootstrapToken } from './bootstrap-token.ts';
import { ControlServer } from './control-server.ts';

const TD = 'test.local';
const HEAD = 'apiVersion: lockgate.dev/v1alpha1';
const backend = (name: string, port = 9000): string => `${HEAD}\nkind: Backend\nmetadata:\n  name: ${name}\nspec:\n  url: http://127.0.0.1:${port}\n`;
const api = (name: string, to: string, path = `/${name}`): string => `${HEAD}\nkind: Api\nmetadata:\n  name: ${name}\nspec:\n  path: ${path}\n  backend: ${to}\n`;

let store: MemoryConfigStore;
let server: ControlServer;
let token: string;
let bundle: string;

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // Test code reads arbitrary fields of the answers.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: () => any;
}

function call(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: server.port, method, path, ca: bundle, agent: false, checkServerIdentity: () => undefined, headers: { authorization: `Bearer ${token}`, ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c)).on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text, json: () => JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

before(async () => {
  const ca = await CertificateAuthority.create({ trustDomain: TD });
  const cp = await ca.issueWithKey(`spiffe://${TD}/ns/lockgate-system/sa/control-plane`, 3_600_000);
  bundle = ca.trustBundle().join('');
  store = new MemoryConfigStore();
  token = (await ensureBootstrapToken(store)).token!;
  server = await ControlServer.listen({
    routes: adminApiRoutes({ store, version: '9.9.9' }), trustDomain: TD, verifyAdminToken: adminTokenVerifier(store),
    tls: { cert: cp.chainPem, key: cp.keyPem, ca: ca.trustBundle() },
  });
});

after(async () => {
  await server.close();
  await store.close();
});

test('every admin route refuses a caller without the token', async () => {
  for (const [m, p] of [['GET', '/v1/config'], ['PUT', '/v1/config/Backend/default/x'], ['POST', '/v1/config:apply'], ['GET', '/v1/status'], ['GET', '/openapi.json']]) {
    const r = await call(m, p, undefined, { authorization: '' });
    assert.equal(r.status, 401, `${m} ${p}`);
  }
});

test('create, read and update with ETags; stale If-Match and create-only are 412', async () => {
  const created = await call('PUT', '/v1/config/Backend/default/orders', backend('orders'), { 'if-none-match': '*', 'content-type': 'application/yaml' });
  assert.equal(created.status, 201, created.text);
  const rev1 = created.json().revision as number;
  assert.equal(created.headers.etag, `"${rev1}"`);
  const again = await call('PUT', '/v1/config/Backend/default/orders', backend('orders', 9001), { 'if-none-match': '*' });
  assert.equal(again.status, 412);
  assert.equal(again.json().error.code, 'precondition_failed');

  const got = await call('GET', '/v1/config/backends/default/orders');
  assert.equal(got.status, 200);
  assert.equal(got.headers.etag, `"${rev1}"`);
  assert.equal(got.json().document, backend('orders'));
  assert.equal(got.json().resource.spec.url, 'http://127.0.0.1:9000');
  const yaml = await call('GET', '/v1/config/Backend/default/orders', undefined, { accept: 'application/yaml' });
  assert.equal(yaml.text, backend('orders'));
  assert.match(String(yaml.headers['content-type']), /yaml/);

  const updated = await call('PUT', '/v1/config/Backend/default/orders', backend('orders', 9001), { 'if-match': `"${rev1}"` });
  assert.equal(updated.status, 200, updated.text);
  const rev2 = updated.json().revision as number;
  assert.ok(rev2 > rev1);
  const stale = await call('PUT', '/v1/config/Backend/default/orders', backend('orders', 9002), { 'if-match': `"${rev1}"` });
  assert.equal(stale.status, 412);
  assert.equal(stale.json().error.actual, rev2);
  assert.match((await store.get('/config/Backend/default/orders'))!.value, /9001/, 'the stale write changed nothing');

  const same = await call('PUT', '/v1/config/Backend/default/orders', `# reformatted\n${backend('orders', 9001)}`);
  assert.equal(same.status, 200);
  assert.equal(same.json().changed, false);
  assert.equal(same.json().revision, rev2, 'an equivalent document is not a new revision');
});

test('PUT checks the URL against the document, the kind, and takes JSON bodies', async () => {
  const wrong = await call('PUT', '/v1/config/Backend/default/other', backend('orders'));
  assert.equal(wrong.status, 400);
  assert.match(wrong.json().error.message, /URL names/);
  assert.equal((await call('PUT', '/v1/config/Nope/default/x', backend('x'))).status, 404);
  assert.equal((await call('PUT', '/v1/config/Backend/default/x', backend('x'), { 'content-type': 'image/png' })).status, 415);
  const json = JSON.stringify({ apiVersion: 'lockgate.dev/v1alpha1', kind: 'Backend', metadata: { name: 'from-json', namespace: 'shop' }, spec: { url: 'http://127.0.0.1:9100' } });
  const r = await call('PUT', '/v1/config/Backend/shop/from-json', json, { 'content-type': 'application/json' });
  assert.equal(r.status, 201, r.text);
  assert.equal((await call('DELETE', '/v1/config/Backend/shop/from-json')).status, 200);
});

test('an invalid config is 400 listing every problem with positions in the body, and nothing is stored', async () => {
  const before = await store.revision();
  const body = `${HEAD}\nkind: Api\nmetadata:\n  name: broken\nspec:\n  path: /broken\n  backend: missing\n  timeoutt: 5s\n`;
  const r = await call('PUT', '/v1/config/Api/default/broken', body);
  assert.equal(r.status, 400, r.text);
  const e = r.json().error;
  assert.equal(e.code, 'invalid_config');
  assert.equal(e.problems.length, 2, JSON.stringify(e.problems));
  for (const p of e.problems) assert.equal(p.file, 'request');
  const byLine = Object.fromEntries(e.problems.map((p: { line: number; col: number; message: string }) => [p.line, p]));
  assert.match(byLine[7].message, /Backend "missing" not found/);
  assert.equal(byLine[7].col, 12);
  assert.match(byLine[8].message, /timeoutt/);
  assert.equal(byLine[8].col, 3);
  assert.equal(await store.revision(), before);
  assert.equal(await store.get('/config/Api/default/broken'), undefined);
});

test('file paths must be absolute: nodes read them on their own hosts (a relative one would be accepted here and refused there)', async () => {
  const before = await store.revision();
  const body = `${HEAD}\nkind: Backend\nmetadata:\n  name: pinned\nspec:\n  url: https://10.0.0.7:8443\n  tls: { caFile: certs/ca.pem }\n`;
  const r = await call('PUT', '/v1/config/Backend/default/pinned', body);
  assert.equal(r.status, 400, r.text);
  const [p] = r.json().error.problems as Array<{ file: string; line: number; message: string; path: string }>;
  assert.equal(p.file, 'request');
  assert.equal(p.line, 7);
  assert.equal(p.path, 'spec.tls.caFile');
  assert.match(p.message, /relative path "certs\/ca\.pem".*must be absolute/);
  assert.equal(await store.revision(), before);
});

test('cross-references resolve against stored resources; deleting a referenced one is refused', async () => {
  assert.equal((await call('PUT', '/v1/config/Backend/default/pay', backend('pay', 9200))).status, 201);
  const a = await call('PUT', '/v1/config/Api/default/pay', api('pay', 'pay'));
  assert.equal(a.status, 201, a.text);
  const refused = await call('DELETE', '/v1/config/Backend/default/pay');
  assert.equal(refused.status, 400);
  const p = refused.json().error.problems;
  assert.equal(p.length, 1);
  assert.equal(p[0].file, '/config/Api/default/pay');
  assert.match(p[0].message, /Backend "pay" not found/);
  const etag = (await call('GET', '/v1/config/Api/default/pay')).headers.etag as string;
  assert.equal((await call('DELETE', '/v1/config/Api/default/pay', undefined, { 'if-match': '"1"' })).status, 412);
  assert.equal((await call('DELETE', '/v1/config/Api/default/pay', undefined, { 'if-match': etag })).status, 200);
  assert.equal((await call('DELETE', '/v1/config/Backend/default/pay')).status, 200);
  assert.equal((await call('GET', '/v1/config/Backend/default/pay')).status, 404);
  assert.equal((await call('DELETE', '/v1/config/Backend/default/pay')).status, 404);
});

test('apply: dry run reports and writes nothing; apply writes in one revision; prune deletes the rest', async () => {
  const body = [backend('a1', 9301), api('a1', 'a1'), backend('a2', 9302)].join('---\n');
  const dry = await call('POST', '/v1/config:apply?dryRun=true', body);
  assert.equal(dry.status, 200, dry.text);
  const r0 = await store.revision();
  assert.equal(dry.json().revision, r0);
  assert.deepEqual(dry.json().changes.map((c: { action: string; kind: string; name: string }) => `${c.action} ${c.kind} ${c.name}`), ['create Backend a1', 'create Api a1', 'create Backend a2']);
  assert.equal(dry.json().changes[0].after, backend('a1', 9301));
  assert.equal(await store.get('/config/Backend/default/a1'), undefined);

  const applied = await call('POST', '/v1/config:apply', body);
  assert.equal(applied.status, 200, applied.text);
  assert.equal(applied.json().revision, r0 + 1, 'one batch, one revision');
  assert.equal((await store.get('/config/Api/default/a1'))!.value, api('a1', 'a1'));

  const next = [backend('a1', 9303), api('a1', 'a1')].join('---\n');
  const pruneDry = await call('POST', '/v1/config:apply?prune=true&dryRun=true', next);
  const actions = pruneDry.json().changes.map((c: { action: string; kind: string; namespace: string; name: string }) => `${c.action} ${c.kind} ${c.namespace}/${c.name}`).sort();
  assert.ok(actions.includes('update Backend default/a1'));
  assert.ok(actions.includes('unchanged Api default/a1'));
  assert.ok(actions.includes('delete Backend default/a2'));
  assert.ok(actions.includes('delete Backend default/orders'));
  assert.ok(pruneDry.json().changes.find((c: { action: string }) => c.action === 'update').before.includes('9301'));
  const pruned = await call('POST', '/v1/config:apply?prune=true', next);
  assert.equal(pruned.status, 200, pruned.text);
  const { kvs } = await store.range('/config/');
  assert.deepEqual(kvs.map((kv) => kv.key), ['/config/Api/default/a1', '/config/Backend/default/a1']);
  assert.equal((await call('POST', '/v1/config:apply?prune=true', '')).status, 400, 'prune with an empty body is refused');
});

test('apply: a bad document among good ones rejects the whole body, problems at their lines', async () => {
  const before = await store.revision();
  const body = [backend('b1'), `${HEAD}\nkind: Backend\nmetadata:\n  name: b2\nspec:\n  url: 42\n`, `${HEAD}\nkind: Bakend\nmetadata: { name: b3 }\nspec: {}\n`].join('---\n');
  const r = await call('POST', '/v1/config:apply', body);
  assert.equal(r.status, 400);
  const lines = r.json().error.problems.map((p: { line: number }) => p.line);
  assert.equal(lines.length, 2, r.text);
  assert.deepEqual(lines, [13, 16]);
  assert.equal(await store.revision(), before);
});

test('list filters by kind and namespace', async () => {
  const all = await call('GET', '/v1/config');
  assert.equal(all.status, 200);
  assert.deepEqual(all.json().items.map((i: { kind: string; name: string }) => `${i.kind}/${i.name}`), ['Api/a1', 'Backend/a1']);
  assert.deepEqual((await call('GET', '/v1/config?kind=backend')).json().items.map((i: { name: string }) => i.name), ['a1']);
  assert.deepEqual((await call('GET', '/v1/config?namespace=shop')).json().items, []);
  assert.equal((await call('GET', '/v1/config?kind=nope')).status, 404);
});

test('watch streams NDJSON change events from a revision until the client goes away', async () => {
  const from = (await store.revision()) + 1;
  const lines: Array<Record<string, unknown>> = [];
  const ac = new AbortController();
  const got = new Promise<void>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port: server.port, path: `/v1/config?watch=true&kind=Backend&fromRevision=${from}`, ca: bundle, agent: false, checkServerIdentity: () => undefined, headers: { authorization: `Bearer ${token}` }, signal: ac.signal },
      (res) => {
        assert.equal(res.headers['content-type'], 'application/x-ndjson');
        let buf = '';
        res.setEncoding('utf8').on('data', (c: string) => {
          buf += c;
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            lines.push(JSON.parse(buf.slice(0, i)));
            buf = buf.slice(i + 1);
            if (lines.length === 2) resolve();
          }
        });
      },
    );
    req.on('error', (e) => (ac.signal.aborted ? undefined : reject(e)));
    req.end();
  });
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await call('PUT', '/v1/config/Api/default/w', api('w', 'a1'))).status, 201, 'other kinds are filtered out');
  assert.equal((await call('PUT', '/v1/config/Backend/default/w', backend('w'))).status, 201);
  assert.equal((await call('DELETE', '/v1/config/Backend/default/w')).status, 200);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([got, new Promise((_, rej) => (timer = setTimeout(() => rej(new Error('no events')), 5000)))]).finally(() => clearTimeout(timer));
  ac.abort();
  assert.deepEqual(lines.map((l) => [l.type, l.kind, l.name]), [['PUT', 'Backend', 'w'], ['DELETE', 'Backend', 'w']]);
  assert.equal(lines[0].document, backend('w'));
  assert.equal(lines[0].revision, from + 1);
  assert.equal((await call('GET', '/v1/config?watch=true&fromRevision=x')).status, 400);
});

test('status and the OpenAPI document', async () => {
  const s = await call('GET', '/v1/status');
  assert.equal(s.status, 200);
  assert.equal(s.json().version, '9.9.9');
  assert.equal(s.json().revision, await store.revision());
  assert.equal(typeof s.json().uptimeSeconds, 'number');
  const o = await call('GET', '/openapi.json');
  assert.equal(o.status, 200);
  const doc = o.json();
  assert.equal(doc.openapi, '3.1.0');
  for (const p of ['/v1/config', '/v1/config/{kind}/{namespace}/{name}', '/v1/config:apply', '/v1/status']) assert.ok(doc.paths[p], p);
  // Every reference resolves inside the document.
  const refs = [...o.text.matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]);
  assert.ok(refs.length > 10);
  for (const r of refs) assert.ok(doc.components.schemas[r], r);
  assert.doesNotMatch(o.text, /"#\/\$defs\//);
  assert.ok(doc.components.schemas.ConfigDocument.allOf.length >= 7, 'one branch per kind');
});

// Tests for loading config text and files: defaults, positions of problems, suggestions, directories.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultGateway, formatProblems, loadConfigFiles, parseConfigText } from './load-config.ts';

const HEAD = 'apiVersion: lockgate.dev/v1alpha1';

test('a default Gateway has every documented default', () => {
  const g = defaultGateway();
  assert.deepEqual(g.metadata, { name: 'default', namespace: 'default', labels: {} });
  assert.deepEqual(g.spec, {
    listeners: [{ name: 'http-8080', address: '0.0.0.0', port: 8080, protocol: 'http', proxyProtocol: 'off' }],
    limits: {
      maxConnections: 10_000,
      maxHeaderSize: 16_384,
      maxHeaderCount: 100,
      maxBodySize: 10_485_760,
      maxBufferedBody: 4_194_304,
      maxUrlLength: 8192,
      headerTimeout: 10_000,
      requestTimeout: 60_000,
      idleTimeout: 75_000,
      http2: { maxConcurrentStreams: 100, maxHeaderListSize: 16_384, maxResetsPerSecond: 100 },
    },
    trustedProxies: [],
    maxHops: 10,
    admin: { address: '127.0.0.1', port: 9901, enabled: true },
    accessLog: { enabled: true, path: 'stdout', bufferLines: 10_000 },
    overload: { maxEventLoopDelay: 500, retryAfter: 1000 },
    tracing: { sampleRatio: 0.01, serviceName: 'lockgate' },
  });
  // Each call returns a fresh object, so a caller mutating one cannot change the next.
  g.spec.listeners[0].port = 1;
  assert.equal(defaultGateway().spec.listeners[0].port, 8080);
});

test('a file without a Gateway gets the default one; Backend and Api defaults are filled', () => {
  const text = `${HEAD}\nkind: Backend\nmetadata: { name: orders }\nspec: { url: "http://127.0.0.1:9000" }\n---\n${HEAD}\nkind: Api\nmetadata: { name: orders }\nspec:\n  backend: orders\n  operations:\n    - urlTemplate: /items/{id}\n      methods: [get]\n`;
  const { config, problems } = parseConfigText(text, 'inline.yaml');
  assert.deepEqual(problems, []);
  assert.ok(config);
  assert.deepEqual(config.gateway, defaultGateway());
  const backend = config.backends.get('default/orders');
  assert.ok(backend);
  assert.deepEqual(backend.spec.endpoints, [{ url: 'http://127.0.0.1:9000', weight: 1, labels: {} }]);
  assert.equal('url' in backend.spec, false);
  assert.deepEqual(backend.spec.loadBalancing, { algorithm: 'round-robin' });
  assert.deepEqual(backend.spec.healthCheck, {
    enabled: false,
    path: '/healthz',
    interval: 10_000,
    timeout: 2000,
    healthyThreshold: 2,
    unhealthyThreshold: 3,
    expectedStatuses: [{ min: 200, max: 399 }],
  });
  assert.deepEqual(backend.spec.outlierDetection, { enabled: true, consecutiveErrors: 5, baseEjectionTime: 30_000, maxEjectionPercent: 50 });
  assert.deepEqual(backend.spec.timeouts, { connect: 5000, perTry: 30_000, idle: 4000 });
  assert.deepEqual(backend.spec.retries, {
    attempts: 1,
    statuses: [502, 503, 504],
    methods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'],
    budgetPercent: 20,
    minPerSecond: 10,
    backoff: 25,
  });
  assert.deepEqual(backend.spec.circuitBreaker, { rules: [] });
  assert.equal(backend.spec.maxPendingRequests, 1024);
  assert.equal(backend.spec.maxConnections, 128);
  assert.equal(backend.spec.dnsRefresh, 30_000);
  assert.equal(backend.spec.protocol, 'http1');
  assert.equal(backend.spec.tls, undefined);
  const api = config.apis[0];
  assert.deepEqual(api.metadata, { name: 'orders', namespace: 'default', labels: {} });
  assert.equal(api.spec.backend, 'default/orders', 'references are qualified with the namespace');
  assert.deepEqual(api.spec.hostnames, []);
  assert.equal(api.spec.path, '/');
  assert.equal(api.spec.errorStyle, 'lockgate');
  assert.equal(api.spec.stripPath, false);
  assert.deepEqual(api.spec.pathOptions, { escapedSlashes: 'reject', backslash: 'reject', semicolon: 'reject' });
  assert.deepEqual(api.spec.operations, [{ name: 'get-items-id', methods: ['GET'], urlTemplate: '/items/{id}', headers: [] }]);
  assert.deepEqual(api.source, { file: 'inline.yaml', line: 7, col: 1 });
  assert.match(config.version, /^[0-9a-f]{12}$/);
  assert.deepEqual(config.files, ['inline.yaml']);
});

test('a healthCheck block turns health checks on; enabled: false keeps them off', () => {
  const doc = (hc: string) => `${HEAD}\nkind: Backend\nmetadata: { name: b }\nspec:\n  url: http://h:1\n  healthCheck: ${hc}\n`;
  const on = parseConfigText(doc('{ path: /ready, interval: 5s, expectedStatuses: [200, "5xx"] }'), 'a.yaml');
  const hc = on.config?.backends.get('default/b')?.spec.healthCheck;
  assert.deepEqual(hc, {
    enabled: true,
    path: '/ready',
    interval: 5000,
    timeout: 2000,
    healthyThreshold: 2,
    unhealthyThreshold: 3,
    expectedStatuses: [{ min: 200, max: 200 }, { min: 500, max: 599 }],
  });
  const off = parseConfigText(doc('{ enabled: false }'), 'a.yaml');
  assert.equal(off.config?.backends.get('default/b')?.spec.healthCheck.enabled, false);
});

test('every problem is reported at once with exact line and column', () => {
  const text = [
    HEAD,
    'kind: Gateway',
    'metadata:',
    '  name: Edge_1',
    'spec:',
    '  listners: []',
    '  listeners:',
    '    - port: 70000',
    '      protocol: htp',
    '  limits:',
    '    idleTimeout: soon',
    '---',
    HEAD,
    'kind: Api',
    'metadata: { name: orders }',
    'spec:',
    '  path: orders',
    '  operations:',
    '    - urlTemplate: /items/*/x',
    '    - methods: [POST]',
    '',
  ].join('\n');
  const { config, problems } = parseConfigText(text, 'x.yaml');
  assert.equal(config, undefined);
  assert.deepEqual(
    problems.map((p) => [p.line, p.col, p.path]),
    [
      [4, 9, 'metadata.name'],
      [6, 3, 'spec.listners'],
      [8, 13, 'spec.listeners[0].port'],
      [9, 17, 'spec.listeners[0].protocol'],
      [11, 18, 'spec.limits.idleTimeout'],
      [16, 1, 'spec.backend'],
      [17, 9, 'spec.path'],
      [19, 20, 'spec.operations[0].urlTemplate'],
      [20, 7, 'spec.operations[1].urlTemplate'],
    ],
  );
  assert.equal(problems[3].message, 'expected one of "http", "https", "h2", got "htp" (did you mean "http"?)');
  assert.equal(problems[4].message, 'expected a duration such as "10s", "250ms", "1m30s" or "PT1M", got "soon"');
  assert.equal(problems[5].message, 'missing required field "backend" in Api.spec');
});

test('unknown fields suggest the closest known name', () => {
  const text = `${HEAD}\nkind: Gateway\nmetadata: { name: edge, lables: {} }\nspec:\n  listners: []\n  limits: { maxBodySise: 1MiB, zzzzzz: 1 }\n`;
  const lines = formatProblems(parseConfigText(text, 'g.yaml').problems).split('\n');
  assert.deepEqual(lines, [
    'g.yaml:3:25: unknown field "lables" in Gateway.metadata (did you mean "labels"?) (metadata.lables)',
    'g.yaml:5:3: unknown field "listners" in Gateway.spec (did you mean "listeners"?) (spec.listners)',
    'g.yaml:6:13: unknown field "maxBodySise" in Gateway.spec.limits (did you mean "maxBodySize"?) (spec.limits.maxBodySise)',
    'g.yaml:6:32: unknown field "zzzzzz" in Gateway.spec.limits (spec.limits.zzzzzz)',
  ]);
});

test('document-level problems: YAML syntax, unknown kind, wrong apiVersion, not a mapping', () => {
  const text = `kind: Gatway\n---\napiVersion: v1\nkind: Backend\nmetadata: { name: b }\nspec: { url: "http://h:1" }\n---\n- a\n---\nkey: [unclosed\n`;
  const { problems } = parseConfigText(text, 'd.yaml');
  const got = problems.map((p) => `${p.line}:${p.col} ${p.message}`);
  assert.equal(got[0], '1:7 unknown kind "Gatway" (did you mean "Gateway"?); known kinds: Gateway, Api, Backend, Product, ApiVersionSet, ApiPolicy, PolicyFragment, Mesh, MeshService, MeshRoute, AccessPolicy, NamedValue, AccessGrant, IdentityProvider, RoleBinding');
  assert.equal(got[1], '3:13 expected "lockgate.dev/v1alpha1", got "v1"');
  assert.equal(got[2], '8:1 a document must be a mapping with apiVersion, kind, metadata and spec');
  assert.match(got[3], /^1[01]:\d+ YAML: /);
  assert.equal(got.length, 4);
});

test('sizes, durations and statuses in the Backend are converted or rejected', () => {
  const text = `${HEAD}\nkind: Backend\nmetadata: { name: b }\nspec:\n  url: http://h:1\n  timeouts: { connect: PT0.5S, perTry: 1m30s, idle: 250 }\n  retries: { statuses: [503, 600], backoff: -1s }\n`;
  const { problems } = parseConfigText(text, 'b.yaml');
  assert.deepEqual(
    problems.map((p) => [p.path, p.message]),
    [
      ['spec.retries.statuses[1]', 'must be between 100 and 599, got 600'],
      ['spec.retries.backoff', 'expected a duration such as "10s", "250ms", "1m30s" or "PT1M", got "-1s"'],
    ],
  );
  const ok = parseConfigText(text.replace(', 600]', ']').replace('-1s', '0'), 'b.yaml');
  assert.deepEqual(ok.config?.backends.get('default/b')?.spec.timeouts, { connect: 500, perTry: 90_000, idle: 250 });
  const sizes = parseConfigText(`${HEAD}\nkind: Gateway\nmetadata: { name: g }\nspec:\n  limits: { maxBodySize: 64KiB, maxHeaderSize: 8KB, maxUrlLength: "1.5KiB" }\n`, 'g.yaml');
  assert.deepEqual(sizes.problems, []);
  const limits = sizes.config?.gateway.spec.limits;
  assert.deepEqual([limits?.maxBodySize, limits?.maxHeaderSize, limits?.maxUrlLength], [65_536, 8000, 1536]);
  const bad = parseConfigText(`${HEAD}\nkind: Gateway\nmetadata: { name: g }\nspec:\n  limits: { maxBodySize: 1.5B, maxHeaderSize: 1kb, headerTimeout: 0, maxUrlLength: 0 }\n`, 'g.yaml');
  assert.deepEqual(bad.problems.map((p) => p.message), [
    'expected a size such as "512B", "64KiB" or "1MiB", got "1.5B"',
    'expected a size such as "512B", "64KiB" or "1MiB", got "1kb"',
    'must be at least 1ms, got 0',
    'must be at least 1B, got 0',
  ]);
});

test('TLS certificate files must exist and resolve against the config file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lockgate-tls-'));
  try {
    await mkdir(join(dir, 'certs'));
    await writeFile(join(dir, 'certs', 'edge.crt'), 'cert');
    const text = `${HEAD}\nkind: Gateway\nmetadata: { name: edge }\nspec:\n  listeners:\n    - port: 8443\n      protocol: https\n      tls:\n        certificates:\n          - { certFile: certs/edge.crt, keyFile: certs/edge.key }\n`;
    const { problems } = parseConfigText(text, join(dir, 'gw.yaml'));
    assert.deepEqual(
      problems.map((p) => [p.line, p.col, p.path, p.message]),
      [[10, 50, 'spec.listeners[0].tls.certificates[0].keyFile', `file not found: ${join(dir, 'certs', 'edge.key')}`]],
    );
    await writeFile(join(dir, 'certs', 'edge.key'), 'key');
    const { config } = parseConfigText(text, join(dir, 'gw.yaml'));
    assert.deepEqual(config?.gateway.spec.listeners[0].tls, {
      certificates: [{ certFile: join(dir, 'certs', 'edge.crt'), keyFile: join(dir, 'certs', 'edge.key'), hostnames: [] }],
      minVersion: 'TLSv1.2',
      clientCertificate: 'none',
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a directory loads its .yaml and .yml files in name order, references span files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lockgate-dir-'));
  try {
    await writeFile(join(dir, 'b-backend.yml'), `${HEAD}\nkind: Backend\nmetadata: { name: svc, namespace: shop }\nspec: { url: "http://h:1" }\n`);
    await writeFile(join(dir, 'a-api.yaml'), `${HEAD}\nkind: Api\nmetadata: { name: svc, namespace: shop }\nspec: { backend: svc }\n`);
    await writeFile(join(dir, 'notes.txt'), 'not config');
    const { config, problems } = await loadConfigFiles([dir]);
    assert.deepEqual(problems, []);
    assert.ok(config);
    assert.deepEqual(config.files, [join(dir, 'a-api.yaml'), join(dir, 'b-backend.yml')]);
    assert.deepEqual([...config.backends.keys()], ['shop/svc']);
    assert.equal(config.apis[0].spec.backend, 'shop/svc');
    const again = await loadConfigFiles([join(dir, 'a-api.yaml'), join(dir, 'b-backend.yml')]);
    assert.equal(again.config?.version, config.version, 'the version depends on the texts, not on how they were named');
    await writeFile(join(dir, 'b-backend.yml'), `${HEAD}\nkind: Backend\nmetadata: { name: svc, namespace: shop }\nspec: { url: "http://h:2" }\n`);
    const changed = await loadConfigFiles([dir]);
    assert.notEqual(changed.config?.version, config.version);
    const missing = await loadConfigFiles([join(dir, 'nope.yaml')]);
    assert.equal(missing.problems.length, 1);
    assert.match(formatProblems(missing.problems), /nope\.yaml:1:1: cannot read: ENOENT/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('an empty directory is a problem; no paths at all is the default config', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lockgate-empty-'));
  try {
    const { problems } = await loadConfigFiles([dir]);
    assert.deepEqual(problems, [{ file: dir, line: 1, col: 1, path: '', message: 'directory has no .yaml or .yml files' }]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const none = await loadConfigFiles([]);
  assert.deepEqual(none.config?.gateway, defaultGateway());
  assert.deepEqual(none.config?.apis, []);
});

test('formatProblems writes file:line:col: message (path)', () => {
  assert.equal(
    formatProblems([
      { file: 'a.yaml', line: 3, col: 5, path: 'spec.x', message: 'bad' },
      { file: 'b.yaml', line: 1, col: 1, path: '', message: 'worse' },
    ]),
    'a.yaml:3:5: bad (spec.x)\nb.yaml:1:1: worse',
  );
});

test('the complete example in docs/config.md loads without problems', async () => {
  const markdown = await readFile(new URL('../../docs/config.md', import.meta.url), 'utf8');
  const example = /## Complete example\s+```yaml\n([\s\S]*?)```/.exec(markdown)?.[1];
  assert.ok(example, 'docs/config.md has a "## Complete example" yaml block');
  const dir = await mkdtemp(join(tmpdir(), 'lockgate-docs-'));
  try {
    await mkdir(join(dir, 'certs'));
    for (const name of ['example.com.crt', 'example.com.key', 'default.crt', 'default.key', 'internal-ca.pem']) {
      await writeFile(join(dir, 'certs', name), 'pem');
    }
    await writeFile(join(dir, 'lockgate.yaml'), example);
    const { config, problems } = await loadConfigFiles([dir]);
    assert.equal(formatProblems(problems), '');
    assert.ok(config);
    assert.deepEqual(
      config.gateway.spec.listeners.map((l) => [l.name, l.port, l.protocol]),
      [['public-http', 8080, 'http'], ['public-https', 8443, 'https']],
    );
    assert.equal(config.gateway.spec.limits.maxBodySize, 5 * 1024 * 1024);
    assert.deepEqual([...config.backends.keys()], ['shop/orders', 'shop/payments']);
    assert.equal(config.backends.get('shop/orders')?.spec.circuitBreaker.rules[0].tripDuration, 60_000);
    assert.deepEqual(
      config.apis[0].spec.operations.map((o) => [o.name, o.backend]),
      [['list-orders', undefined], ['get-put-delete-orderid', undefined], ['post-orderid-pay', 'shop/payments'], ['get-exports-rest', undefined]],
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('anchors and aliases work within a document; an alias to another document is a problem', () => {
  const text = `${HEAD}\nkind: Backend\nmetadata: { name: a }\nspec:\n  url: http://h:1\n  timeouts: &t { connect: 1s }\n  retries: { attempts: 0 }\n---\n${HEAD}\nkind: Backend\nmetadata: { name: b }\nspec:\n  url: http://h:1\n  timeouts: *t\n`;
  const { problems } = parseConfigText(text, 'a.yaml');
  assert.deepEqual(formatProblems(problems), 'a.yaml:14:13: unknown alias *t (anchors only reach within one document) (spec.timeouts)');
  const shared = parseConfigText(`${HEAD}\nkind: Gateway\nmetadata: { name: g }\nspec:\n  limits: { headerTimeout: &d 7s, requestTimeout: *d }\n`, 'g.yaml');
  assert.equal(shared.config?.gateway.spec.limits.requestTimeout, 7000);
});

test('files loaded together report cross-resource problems from every file, with the per-document ones', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lockgate-multi-'));
  const a = join(dir, 'a.yaml');
  const b = join(dir, 'b.yaml');
  await writeFile(a, 'apiVersion: lockgate.dev/v1alpha1\nkind: Api\nmetadata: { name: x }\nspec:\n  pth: /x\n  backend: nope\n');
  await writeFile(b, 'apiVersion: lockgate.dev/v1alpha1\nkind: Api\nmetadata: { name: y }\nspec:\n  path: /y\n  backend: nope2\n');
  const r = await loadConfigFiles([a, b]);
  await rm(dir, { recursive: true, force: true });
  assert.equal(r.config, undefined);
  const text = formatProblems(r.problems);
  assert.match(text, /a\.yaml:5:3: unknown field "pth"/);
  assert.match(text, /a\.yaml:6:12: Backend "nope" not found/);
  assert.match(text, /b\.yaml:6:12: Backend "nope2" not found/);
});

// Apis decoded from unchanged documents are kept between loads (parse-documents.ts): what the cross-resource checks
// derive for them must come from the config being loaded, never from the load before.
test('kept Apis: cross-resource values come from this config, problems from this text, and no load changes another', () => {
  const doc = (kind: string, name: string, spec: string): string => `${HEAD}\nkind: ${kind}\nmetadata: { name: ${name} }\nspec:\n${spec}\n`;
  const ops = (n: number): string => `  operations:\n${Array.from({ length: n }, (_, i) => `    - { methods: [GET], urlTemplate: "/r${i}/{id}" }`).join('\n')}`;
  const base = (set: string): string => doc('Api', 'orders', `  path: /orders\n  backend: up\n  versionSet: ${set}\n  version: v1\n${ops(20)}`);
  const rev = doc('Api', 'orders-rev2', `  path: /orders\n  backend: up\n  revisionOf: orders\n  revision: 2\n${ops(20)}`);
  const sets = doc('ApiVersionSet', 'a', '  scheme: path') + '---\n' + doc('ApiVersionSet', 'b', '  scheme: path');
  const backend = doc('Backend', 'up', '  url: "http://127.0.0.1:9"');
  const text = (set: string, pad = ''): string => [pad + backend, sets, base(set), rev].join('---\n');
  const first = parseConfigText(text('a'), 'c.yaml');
  assert.deepEqual(first.problems, []);
  const revOf = (r: typeof first): unknown => r.config!.apis.find((a) => a.metadata.name === 'orders-rev2')!.spec.versionSet;
  assert.equal(revOf(first), 'default/a');
  // The revision's document is unchanged (kept), its base moved to set b: the revision inherits b now.
  const second = parseConfigText(text('b'), 'c.yaml');
  assert.deepEqual(second.problems, []);
  assert.equal(revOf(second), 'default/b');
  assert.equal(revOf(first), 'default/a', 'the first load keeps what it had');
  // Kept documents lower in a longer text: problems found across resources point at the new lines.
  const broken = (pad: string): string => text('a', pad).replace(/backend: up/g, 'backend: missing');
  assert.equal(parseConfigText(broken(''), 'c.yaml').problems.length, 2); // the Apis are kept now, problems and all
  const shifted = broken('# one\n# two\n# three\n');
  const fresh = formatProblems(parseConfigText(shifted, 'c.yaml').problems);
  assert.match(fresh, /c\.yaml:\d+:\d+: Backend "missing" not found/);
  const lines = shifted.split('\n');
  for (const m of fresh.matchAll(/c\.yaml:(\d+):(\d+): Backend "missing"/g)) assert.match(lines[Number(m[1]) - 1], /backend: missing/, `line ${m[1]} is where the reference is`);
  // Route conflicts between kept Apis are found again on every load (their claims are kept, not their verdicts).
  const twin = [backend, base('a').replace('  versionSet: a\n  version: v1\n', ''), base('a').replace('name: orders', 'name: twin').replace('  versionSet: a\n  version: v1\n', '')].join('---\n');
  const conflicts = formatProblems(parseConfigText(twin, 'c.yaml').problems);
  assert.match(conflicts, /route conflict: GET \(any host\)\/orders\/r0\/\{id\} is already claimed by Api "default\/orders" operation "get-r0-id" \(c\.yaml:\d+\)/);
  assert.equal(formatProblems(parseConfigText(twin, 'c.yaml').problems), conflicts);
  assert.equal(formatProblems(parseConfigText(`# moved\n${twin}`, 'c.yaml').problems), conflicts.replace(/c\.yaml:(\d+)/g, (_, n: string) => `c.yaml:${Number(n) + 1}`));
  // The shared parts are frozen: a caller that writes into a loaded Api's operations fails loudly, not silently into the next load.
  const again = parseConfigText(text('a'), 'c.yaml').config!;
  assert.throws(() => {
    (again.apis[0].spec.operations[0] as { urlTemplate: string }).urlTemplate = '/changed';
  }, TypeError);
});

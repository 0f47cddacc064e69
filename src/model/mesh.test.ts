// Tests for the mesh kinds (Mesh, MeshService, MeshRoute, AccessPolicy) and the mesh fields of Backend, Gateway and Api.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { formatProblems, parseConfigText } from './load-config.ts';
import { configSchema } from './schema.ts';
import { DEFAULT_MESH } from './mesh-types.ts';

const HEAD = 'apiVersion: lockgate.dev/v1alpha1';
/** One document; `spec` lines are given without indentation and indented by two. */
const doc = (kind: string, meta: string, ...spec: string[]) =>
  [HEAD, `kind: ${kind}`, `metadata: ${meta}`, ...(spec.length ? ['spec:', ...spec.map((l) => `  ${l}`)] : [])].join('\n') + '\n';
const load = (...docs: string[]) => parseConfigText(docs.join('---\n'), 'm.yaml');
const lines = (...docs: string[]) => formatProblems(load(...docs).problems).split('\n').filter(Boolean);
const svc = (name: string, ns = 'default', ...spec: string[]) => doc('MeshService', `{ name: ${name}, namespace: ${ns} }`, ...spec);

test('a config without a Mesh gets the default one, and no mesh resources', () => {
  const { config, problems } = load(doc('Backend', '{ name: b }', 'url: http://127.0.0.1:1'));
  assert.deepEqual(problems, []);
  assert.ok(config);
  assert.deepEqual(config.mesh.metadata, { name: 'default', namespace: 'default', labels: {} });
  assert.deepEqual(config.mesh.spec, { trustDomain: 'lockgate.local', mtls: 'strict', defaultAccess: 'audit', certificateLifetime: 86_400_000, maxHops: 16 });
  assert.deepEqual(config.mesh.spec, DEFAULT_MESH);
  assert.notEqual(config.mesh.spec, DEFAULT_MESH, 'a copy, so a caller mutating it cannot change the next config');
  assert.equal(config.meshServices.size, 0);
  assert.deepEqual(config.meshRoutes, []);
  assert.deepEqual(config.accessPolicies, []);
  // Existing configs are unchanged apart from the new defaulted fields.
  const b = config.backends.get('default/b')!.spec;
  assert.equal(b.type, 'url');
  assert.deepEqual(b.endpoints, [{ url: 'http://127.0.0.1:1', weight: 1, labels: {} }]);
  for (const k of ['split', 'fault', 'locality', 'meshService', 'tls'] as const) assert.equal(b[k], undefined, k);
  assert.equal(config.gateway.spec.mesh, undefined);
});

test('valid mesh documents produce the expected Config, defaults filled and references qualified', () => {
  const { config, problems } = load(
    doc('Mesh', '{ name: shop-mesh }', 'trustDomain: shop.example.com', 'defaultAccess: deny', 'certificateLifetime: 12h'),
    svc('inventory', 'shop', 'ports: [{ port: 8080 }, { name: rpc, port: 9090, protocol: grpc }]', 'timeouts: { request: 2s }'),
    svc('orders', 'shop'),
    doc(
      'MeshRoute',
      '{ name: inventory, namespace: shop }',
      'service: inventory',
      'rules:',
      '  - name: beta',
      '    matches: [{ headers: { X-Beta: "1" }, methods: [get] }]',
      '    backends: [{ service: inventory, version: v2 }]',
      '  - matches: [{ path: { value: /api } }]',
      '    timeouts: { request: 500ms }',
      '    retries: { attempts: 3 }',
      '    fault: { abort: { percent: 1.5, status: 503 } }',
      '    backends: [{ service: shop/inventory, version: v1, weight: 90 }, { service: inventory, version: v2, weight: 10 }]',
      '  - {}',
    ),
    doc(
      'AccessPolicy',
      '{ name: inventory, namespace: shop }',
      'target: { service: inventory, ports: [8080] }',
      'allow:',
      '  - { sources: [orders, other/web], methods: [GET, POST], paths: ["/api/*", /health] }',
      '  - { sources: ["spiffe://shop.example.com/ns/ops/sa/reporter"], ports: [9090] }',
      'deny: [{ sources: ["*"], paths: ["/admin/*"] }]',
    ),
  );
  assert.deepEqual(problems, []);
  assert.ok(config);
  assert.deepEqual(config.mesh.metadata, { name: 'shop-mesh', namespace: 'default', labels: {} });
  assert.deepEqual(config.mesh.spec, { trustDomain: 'shop.example.com', mtls: 'strict', defaultAccess: 'deny', certificateLifetime: 12 * 3_600_000, maxHops: 16 });
  assert.deepEqual([...config.meshServices.keys()], ['shop/inventory', 'shop/orders']);
  const inv = config.meshServices.get('shop/inventory')!.spec;
  assert.deepEqual(inv.ports, [
    { name: 'http-8080', port: 8080, protocol: 'http' },
    { name: 'rpc', port: 9090, protocol: 'grpc' },
  ]);
  assert.deepEqual(inv.timeouts, { request: 2000, perTry: 30_000, connect: 1000, idle: 4000 });
  assert.deepEqual(inv.loadBalancing, { algorithm: 'ewma' });
  assert.equal(inv.mtls, undefined);
  assert.equal(inv.localityPreference, true);
  assert.deepEqual(inv.retries, { attempts: 1, statuses: [502, 503, 504], methods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'], budgetPercent: 20, minPerSecond: 10, backoff: 25 });
  assert.deepEqual(inv.outlierDetection, { enabled: true, consecutiveErrors: 5, baseEjectionTime: 30_000, maxEjectionPercent: 50 });
  assert.deepEqual(config.meshServices.get('shop/orders')!.spec.ports, [{ name: 'http-80', port: 80, protocol: 'http' }]);

  const route = config.meshRoutes[0].spec;
  assert.equal(route.service, 'shop/inventory');
  assert.deepEqual(route.rules[0], {
    name: 'beta',
    matches: [{ headers: { 'x-beta': '1' }, methods: ['GET'] }],
    backends: [{ service: 'shop/inventory', version: 'v2', weight: 1 }],
  });
  assert.deepEqual(route.rules[1], {
    matches: [{ path: { type: 'prefix', value: '/api' }, headers: {}, methods: [] }],
    timeouts: { request: 500 },
    retries: { attempts: 3 },
    fault: { abort: { percent: 1.5, status: 503 } },
    backends: [
      { service: 'shop/inventory', version: 'v1', weight: 90 },
      { service: 'shop/inventory', version: 'v2', weight: 10 },
    ],
  });
  // A rule without backends sends everything to the route's own service.
  assert.deepEqual(route.rules[2], { matches: [], backends: [{ service: 'shop/inventory', weight: 1 }] });

  const ap = config.accessPolicies[0].spec;
  assert.deepEqual(ap, {
    target: { service: 'shop/inventory', ports: [8080] },
    mode: 'enforce',
    allow: [
      { sources: ['shop/orders', 'other/web'], methods: ['GET', 'POST'], paths: ['/api/*', '/health'], ports: [] },
      { sources: ['spiffe://shop.example.com/ns/ops/sa/reporter'], methods: [], paths: [], ports: [9090] },
    ],
    deny: [{ sources: ['*'], methods: [], paths: ['/admin/*'], ports: [] }],
  });
});

test('Mesh: lifetime 5s (tests; 10s for real use) to 90d, trust domain, enums, and at most one Mesh', () => {
  assert.deepEqual(lines(doc('Mesh', '{ name: m }', 'certificateLifetime: 4s', 'trustDomain: Shop.Local', 'defaultAccess: denied')), [
    'm.yaml:5:24: must be at least 5s, got "4s" (spec.certificateLifetime)',
    'm.yaml:6:16: "Shop.Local" is not a trust domain: use lower-case DNS-like labels such as "lockgate.local" (spec.trustDomain)',
    'm.yaml:7:18: expected one of "allow", "audit", "deny", got "denied" (spec.defaultAccess)',
  ]);
  assert.deepEqual(lines(doc('Mesh', '{ name: m }', 'certificateLifetime: 91d')), ['m.yaml:5:24: certificateLifetime must be at most 90d, got 91d (spec.certificateLifetime)']);
  for (const ok of ['5s', '10s', '90d']) assert.deepEqual(lines(doc('Mesh', '{ name: m }', `certificateLifetime: ${ok}`)), [], ok);
  assert.deepEqual(lines(doc('Mesh', '{ name: a }'), doc('Mesh', '{ name: b }', 'maxHops: 4')), [
    'm.yaml:6:7: only one Mesh is allowed (first defined at m.yaml:2:1) (kind)',
  ]);
  // A Mesh with no spec takes every default.
  assert.deepEqual(load(doc('Mesh', '{ name: m }')).config?.mesh.spec, DEFAULT_MESH);
});

test('MeshService: ports unique by name and by number', () => {
  assert.deepEqual(lines(svc('a', 'default', 'ports:', '  - { name: web, port: 80 }', '  - { name: web, port: 81 }', '  - { port: 80 }', '  - { port: 70000 }')), [
    'm.yaml:7:15: port name "web" is already used by spec.ports[0] (spec.ports[1].name)',
    'm.yaml:8:15: port 80 is already declared by spec.ports[0] (spec.ports[2].port)',
    'm.yaml:9:15: must be between 1 and 65535, got 70000 (spec.ports[3].port)',
  ]);
  // The derived name "http-80" clashes with one written out.
  assert.deepEqual(lines(svc('a', 'default', 'ports: [{ name: http-80, port: 8080 }, { port: 80 }]')), [
    'm.yaml:5:42: port name "http-80" is already used by spec.ports[0] (spec.ports[1].name)',
  ]);
});

test('MeshRoute: services resolve with suggestions; weights, paths and faults are checked', () => {
  const out = lines(
    svc('inventory', 'shop'),
    svc('orders', 'shop'),
    doc(
      'MeshRoute',
      '{ name: r, namespace: shop }',
      'service: inventroy',
      'rules:',
      '  - matches: [{ path: { type: exact, value: api } }]',
      '    backends: [{ service: orders, weight: 0 }, { service: other/orders, weight: 0 }]',
      '    fault: { delay: { percent: 101, duration: 1s }, abort: { percent: 5, status: 302 } }',
      '  - fault: {}',
    ),
  );
  assert.deepEqual(out, [
    'm.yaml:13:12: MeshService "inventroy" not found in namespace "shop" (did you mean "inventory"?) (spec.service)',
    'm.yaml:15:47: "api" must start with "/" (spec.rules[0].matches[0].path.value)',
    'm.yaml:16:17: every backend has weight 0; at least one must take traffic (spec.rules[0].backends)',
    'm.yaml:16:61: MeshService "orders" not found in namespace "other" (spec.rules[0].backends[1].service)',
    'm.yaml:17:34: must be between 0 and 100, got 101 (spec.rules[0].fault.delay.percent)',
    'm.yaml:17:84: must be between 400 and 599, got 302 (spec.rules[0].fault.abort.status)',
    'm.yaml:18:14: a fault needs delay or abort (or both) (spec.rules[1].fault)',
  ]);
  assert.deepEqual(lines(doc('MeshRoute', '{ name: r }', 'service: a', 'rules: []')), [
    'm.yaml:5:12: MeshService "a" not found in namespace "default" (spec.service)',
    'm.yaml:6:10: needs at least 1 item (spec.rules)',
  ]);
});

test('AccessPolicy: target resolves, sources, paths, methods and ports are checked', () => {
  const out = lines(
    svc('inventory', 'shop', 'ports: [{ port: 8080 }]'),
    doc(
      'AccessPolicy',
      '{ name: p, namespace: shop }',
      'target: { service: inventory, ports: [8081] }',
      'mode: enforced',
      'allow:',
      '  - sources: ["*", orders]',
      '    methods: [get, "BAD METHOD"]',
      '    paths: [admin, "/a/*/b"]',
      '  - sources: ["spiffe://Shop/ns/x", "spiffe://td/ns/../sa/x", "Orders", "a/b/c"]',
      '    ports: [9090]',
    ),
  );
  assert.deepEqual(out, [
    'm.yaml:11:41: port 8081 is not a port of MeshService "shop/inventory" (8080) (spec.target.ports[0])',
    'm.yaml:12:9: expected one of "enforce", "audit", got "enforced" (did you mean "enforce"?) (spec.mode)',
    'm.yaml:14:16: "*" already matches every authenticated workload; list it alone (spec.allow[0].sources)',
    'm.yaml:15:17: "get": methods are upper-case; write "GET" (spec.allow[0].methods[0])',
    'm.yaml:15:22: "BAD METHOD" is not an HTTP method (spec.allow[0].methods[1])',
    'm.yaml:16:15: "admin" must start with "/" (spec.allow[0].paths[0])',
    'm.yaml:16:22: "/a/*/b": "*" is only allowed at the end (a prefix such as "/admin/*") (spec.allow[0].paths[1])',
    'm.yaml:17:17: "spiffe://Shop/ns/x" is not a SPIFFE ID (trust domain "Shop" may only hold lower-case letters, digits, ".", "-" and "_"); expected "spiffe://<trust-domain>/ns/<namespace>/sa/<service>" (spec.allow[1].sources[0])',
    'm.yaml:17:39: "spiffe://td/ns/../sa/x" is not a SPIFFE ID ("." and ".." segments are not allowed); expected "spiffe://<trust-domain>/ns/<namespace>/sa/<service>" (spec.allow[1].sources[1])',
    'm.yaml:17:65: "Orders" is not a source: use "*", a service ("orders" or "namespace/orders") or a SPIFFE ID ("spiffe://…") (spec.allow[1].sources[2])',
    'm.yaml:17:75: "a/b/c" is not a source: use "*", a service ("orders" or "namespace/orders") or a SPIFFE ID ("spiffe://…") (spec.allow[1].sources[3])',
    'm.yaml:18:15: port 9090 is not a port of MeshService "shop/inventory" (8080) (spec.allow[1].ports[0])',
  ]);
  assert.deepEqual(lines(svc('inventory', 'shop'), doc('AccessPolicy', '{ name: p }', 'target: { service: inventory }')), [
    'm.yaml:9:22: MeshService "inventory" not found in namespace "default" (spec.target.service)',
  ]);
  assert.deepEqual(lines(doc('AccessPolicy', '{ name: p }', 'mode: audit')), ['m.yaml:4:1: missing required field "target" in AccessPolicy.spec (spec.target)']);
});

test('Backend split: legs resolve, are not splits themselves, have weights; a split has no endpoints', () => {
  const b = (name: string, ...spec: string[]) => doc('Backend', `{ name: ${name} }`, ...spec);
  const { config, problems } = load(
    b('v1', 'url: http://127.0.0.1:1'),
    b('v2', 'endpoints: [{ url: "http://127.0.0.1:2", labels: { version: v2, zone: z1 } }]'),
    b('canary', 'split: [{ backend: v1, weight: 95 }, { backend: default/v2, weight: 5 }]'),
  );
  assert.deepEqual(problems, []);
  const canary = config!.backends.get('default/canary')!.spec;
  assert.deepEqual(canary.split, [
    { backend: 'default/v1', weight: 95 },
    { backend: 'default/v2', weight: 5 },
  ]);
  assert.deepEqual(canary.endpoints, []);
  assert.deepEqual(config!.backends.get('default/v2')!.spec.endpoints[0].labels, { version: 'v2', zone: 'z1' });

  assert.deepEqual(
    lines(
      b('v1', 'url: http://127.0.0.1:1'),
      b('canary', 'split: [{ backend: v1 }]'),
      b('bad', 'url: http://127.0.0.1:3', 'split: [{ backend: v11, weight: 0 }, { backend: canary, weight: 0 }, { backend: bad }]'),
    ),
    [
      'm.yaml:17:3: a split Backend has no url; its legs are other Backends (spec.url)',
      'm.yaml:18:22: Backend "v11" not found in namespace "default" (did you mean "v1"?) (spec.split[0].backend)',
      'm.yaml:18:51: Backend "default/canary" is itself a split; split over Backends with endpoints (spec.split[1].backend)',
      'm.yaml:18:83: a Backend cannot split to itself (spec.split[2].backend)',
    ],
  );
  assert.deepEqual(lines(b('v1', 'url: http://127.0.0.1:1'), b('c', 'split: [{ backend: v1, weight: 0 }]')), [
    'm.yaml:11:10: every split leg has weight 0; at least one must take traffic (spec.split)',
  ]);
  // Neither url, endpoints nor split: the message the foundation always gave.
  assert.deepEqual(lines(b('x', 'protocol: h2')), ['m.yaml:5:3: Backend.spec needs exactly one of "url" or "endpoints" (spec)']);
});

test('Backend type mesh: names an existing MeshService, inherits its policy field by field, may have no endpoints', () => {
  const { config, problems } = load(
    svc('inventory', 'shop', 'loadBalancing: { algorithm: least-request }', 'timeouts: { request: 3s, perTry: 0s, connect: 250ms }', 'retries: { attempts: 3, budgetPercent: 5 }'),
    doc(
      'Backend',
      '{ name: inv, namespace: shop }',
      'type: mesh',
      'meshService: inventory',
      'retries: { attempts: 0 }',
      'locality: { region: eu, zone: eu-1 }',
      'fault: { delay: { percent: 10, duration: 200ms } }',
      'tls: { spiffeIds: ["spiffe://lockgate.local/ns/shop/sa/inventory"], generation: "7" }',
    ),
  );
  assert.deepEqual(problems, []);
  const b = config!.backends.get('shop/inv')!.spec;
  assert.equal(b.type, 'mesh');
  assert.equal(b.meshService, 'shop/inventory');
  assert.deepEqual(b.endpoints, []);
  assert.deepEqual(b.loadBalancing, { algorithm: 'least-request' });
  // attempts is the Backend's own; the rest of retries comes from the MeshService.
  assert.equal(b.retries.attempts, 0);
  assert.equal(b.retries.budgetPercent, 5);
  // perTry 0 means the request timeout.
  assert.deepEqual(b.timeouts, { connect: 250, perTry: 3000, idle: 4000 });
  assert.deepEqual(b.locality, { region: 'eu', zone: 'eu-1' });
  assert.deepEqual(b.fault, { delay: { percent: 10, duration: 200 } });
  assert.deepEqual(b.tls, { verify: true, spiffeIds: ['spiffe://lockgate.local/ns/shop/sa/inventory'], generation: '7' });

  assert.deepEqual(
    lines(
      svc('inventory', 'shop'),
      doc('Backend', '{ name: a, namespace: shop }', 'type: mesh'),
      doc('Backend', '{ name: b, namespace: shop }', 'type: mesh', 'meshService: inventry'),
      doc('Backend', '{ name: c, namespace: shop }', 'url: http://h:1', 'meshService: inventory', 'tls: { spiffeIds: ["spiffe://x/"] }'),
      doc('Backend', '{ name: d, namespace: shop }', 'url: http://h:1', 'locality: {}', 'fault: {}'),
    ),
    [
      'm.yaml:9:9: type "mesh" needs meshService (the MeshService to call) (spec.type)',
      'm.yaml:16:16: MeshService "inventry" not found in namespace "shop" (did you mean "inventory"?) (spec.meshService)',
      'm.yaml:23:3: meshService needs type "mesh" (spec.meshService)',
      'm.yaml:24:22: "spiffe://x/" is not a SPIFFE ID (empty path segment or trailing "/"); expected "spiffe://<trust-domain>/ns/<namespace>/sa/<service>" (spec.tls.spiffeIds[0])',
      'm.yaml:24:8: tls is set but no endpoint uses https (spec.tls)',
      'm.yaml:32:10: a fault needs delay or abort (or both) (spec.fault)',
      'm.yaml:31:13: locality needs region or zone (spec.locality)',
    ].sort(byPosition),
  );
});

function byPosition(a: string, b: string): number {
  const pos = (s: string) => s.split(':').slice(1, 3).map(Number);
  const [la, ca] = pos(a);
  const [lb, cb] = pos(b);
  return la - lb || ca - cb;
}

test('Gateway mesh fields: listener mTLS and the mesh block; Api meshService resolves', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lockgate-mesh-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const pem = join(dir, 'x.pem');
  await writeFile(pem, 'not parsed by the model\n');
  const { config, problems } = load(
    doc(
      'Gateway',
      '{ name: g }',
      'listeners:',
      '  - port: 0',
      '    protocol: https',
      '    tls:',
      `      certificates: [{ certFile: ${pem}, keyFile: ${pem} }]`,
      '      clientCertificate: require',
      `      clientCaFile: ${pem}`,
      '      plaintext: true',
      '      generation: g1',
      'mesh: { identity: "spiffe://lockgate.local/ns/shop/sa/inventory" }',
    ),
    svc('inventory', 'shop'),
    doc('Backend', '{ name: app, namespace: shop }', 'url: http://127.0.0.1:1'),
    doc('Api', '{ name: inbound, namespace: shop }', 'path: /', 'backend: app', 'meshService: inventory'),
  );
  assert.deepEqual(problems, []);
  const tls = config!.gateway.spec.listeners[0].tls!;
  assert.equal(tls.clientCertificate, 'require');
  assert.equal(tls.clientCaFile, pem);
  assert.equal(tls.plaintext, true);
  assert.equal(tls.generation, 'g1');
  assert.deepEqual(config!.gateway.spec.mesh, { maxHops: 16, defaultAccess: 'audit', identity: 'spiffe://lockgate.local/ns/shop/sa/inventory' });
  assert.equal(config!.apis[0].spec.meshService, 'shop/inventory');

  // The certificate paths vary with the temporary directory, so the column is computed (+2: the spec indentation, 1-based).
  const tlsLine = `    tls: { certificates: [{ certFile: ${pem}, keyFile: ${pem} }], clientCertificate: require }`;

  assert.deepEqual(
    lines(
      doc(
        'Gateway',
        '{ name: g }',
        'listeners:',
        '  - port: 0',
        '    protocol: https',
        tlsLine,
        'mesh: { identity: "http://x" }',
      ),
      doc('Backend', '{ name: app }', 'url: http://127.0.0.1:1'),
      doc('Api', '{ name: inbound }', 'path: /', 'backend: app', 'meshService: inventory'),
    ),
    [
      `m.yaml:8:${tlsLine.indexOf('require') + 3}: clientCertificate "require" needs clientCaFile (the bundle client certificates must chain to) (spec.listeners[0].tls.clientCertificate)`,
      'm.yaml:9:21: "http://x" is not a SPIFFE ID (must start with "spiffe://"); expected "spiffe://<trust-domain>/ns/<namespace>/sa/<service>" (spec.mesh.identity)',
      'm.yaml:23:16: MeshService "inventory" not found in namespace "default" (spec.meshService)',
    ],
  );
});

test('every field of the mesh types is in the schema, with a description', () => {
  const source = ts.createSourceFile('types.ts', readFileSync(new URL('./types.ts', import.meta.url), 'utf8'), ts.ScriptTarget.Latest);
  const interfaces = new Map<string, ts.InterfaceDeclaration>();
  source.forEachChild((n) => {
    if (ts.isInterfaceDeclaration(n)) interfaces.set(n.name.text, n);
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- schemas are walked dynamically
  type Json = Record<string, any>;
  const schema = configSchema() as Json;
  const missing: string[] = [];
  // Derived by validation (not written), or written another way: `claim/<path>` keys (patternProperties) fill `claims`.
  const notWritten = new Set(['AccessPolicy.spec.expressions']);
  const deref = (node: Json): Json => (typeof node?.$ref === 'string' ? schema.$defs[node.$ref.slice('#/$defs/'.length)] : node);
  const walk = (members: ts.NodeArray<ts.TypeElement>, node: Json, where: string, seen: Set<string>) => {
    for (const m of members) {
      if (!ts.isPropertySignature(m)) continue;
      const name = m.name.getText(source);
      if (notWritten.has(`${where}.${name}`)) continue;
      if (name === 'claims' && node.patternProperties?.['^claim/'] !== undefined) continue;
      const prop = node.properties?.[name];
      if (!prop || typeof prop.description !== 'string') {
        missing.push(`${where}.${name}`);
        continue;
      }
      let t = m.type;
      if (t && ts.isArrayTypeNode(t)) t = t.elementType;
      const inner = deref(t && ts.isArrayTypeNode(m.type!) ? prop.items : prop);
      const typeName = t && ts.isTypeReferenceNode(t) ? t.typeName.getText(source) : '';
      // A structure that contains itself (AccessRule's all/any/none) is walked once.
      if (interfaces.has(typeName) && !seen.has(typeName)) walk(interfaces.get(typeName)!.members, inner, `${where}.${name}`, new Set([...seen, typeName]));
      else if (t && ts.isTypeLiteralNode(t)) walk(t.members, inner, `${where}.${name}`, seen);
    }
  };
  const kinds = schema.allOf.map((b: Json) => b.if.properties.kind.const);
  for (const kind of ['Mesh', 'MeshService', 'MeshRoute', 'AccessPolicy']) {
    walk(interfaces.get(`${kind}Spec`)!.members, schema.allOf[kinds.indexOf(kind)].then.properties.spec, `${kind}.spec`, new Set());
  }
  assert.deepEqual(missing, []);
});

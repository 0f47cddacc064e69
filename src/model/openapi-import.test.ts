// Tests for OpenAPI import: operations from realistic 3.0 and 3.1 documents, $refs (local, relative-file, recursive),
// dialect conversion, problems with file:line:col, and the Api kind's `import` field (merging, conflicts, the CLI).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { formatProblems, parseConfigText } from './load-config.ts';
import { importOpenApi } from './openapi-import.ts';
import type { TextLoader } from './openapi-import.ts';
import { readLocalFile } from './openapi-source.ts';
import type { Operation, Problem } from './types.ts';

const FIXTURES = resolve(import.meta.dirname, '../../test/fixtures/openapi');
const PETSTORE = join(FIXTURES, 'petstore.openapi.yaml');
const ORDERS = join(FIXTURES, 'orders.openapi.json');
const HEAD = 'apiVersion: lockgate.dev/v1alpha1';

/** A loader over in-memory files named `/spec/<name>`: no disk, no network. */
function memory(files: Record<string, string>): TextLoader {
  return (id) => {
    if (Object.hasOwn(files, id)) return { text: files[id] };
    return id.startsWith('/spec/') ? { error: `cannot read ${id}: ENOENT` } : readLocalFile(id);
  };
}

function importText(text: string, more: Record<string, string> = {}) {
  return importOpenApi('/spec/api.yaml', { file: 'api.yaml', load: memory({ '/spec/api.yaml': text, ...more }) });
}

const lines = (problems: Problem[]) => formatProblems(problems).split('\n').filter(Boolean);
const byName = (ops: Operation[], name: string): Operation => {
  const op = ops.find((o) => o.name === name);
  assert.ok(op, `operation ${name}`);
  return op;
};
const json = (op: Operation, status: string, type = 'application/json') => op.responses?.[status]?.content[type];

test('a realistic OpenAPI 3.0 document imports every operation in document order, named by operationId', () => {
  const r = importOpenApi(PETSTORE, { file: 'petstore.openapi.yaml' });
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.info, { openapiVersion: '3.0.3', title: 'Pet Store', serverUrl: 'https://pets.example.com/v2' });
  assert.deepEqual(
    r.operations.map((o) => `${o.name} ${o.methods.join()} ${o.urlTemplate} ${o.source?.file}:${o.source?.line}:${o.source?.col}`),
    [
      'listpets GET /pets petstore.openapi.yaml:11:5',
      'createpet POST /pets petstore.openapi.yaml:46:5',
      'showpetbyid GET /pets/{petId} petstore.openapi.yaml:65:5',
      'updatepet PUT /pets/{petId} petstore.openapi.yaml:82:5',
      'deletepet DELETE /pets/{petId} petstore.openapi.yaml:92:5',
      // API Management's rule: lower-case, each run of other characters becomes "-".
      'pets-photos-get GET /pets/{petId}/photos/{photo_id} petstore.openapi.yaml:98:5',
      'getcategorytree GET /categories/{categoryId}/tree petstore.openapi.yaml:113:5',
      // No operationId: named like a hand-written operation.
      'get-health GET /health petstore.openapi.yaml:130:5',
    ],
  );
  const list = byName(r.operations, 'listpets');
  assert.equal(list.operationId, 'listPets');
  assert.equal(list.summary, 'List pets, newest first');
  assert.deepEqual(list.headers, []);
});

test('parameters: $refs resolved, path-item ones merged, ignored headers dropped, non-identifier names mapped', () => {
  const r = importOpenApi(PETSTORE);
  const list = byName(r.operations, 'listpets');
  assert.deepEqual(list.parameters, [
    { name: 'limit', in: 'query', required: false, schema: { type: 'integer', format: 'int32', minimum: 1, maximum: 100, default: 20 } },
    {
      name: 'tags',
      in: 'query',
      required: false,
      schema: { type: 'array', items: { type: 'string', pattern: '^[a-z][a-z0-9-]*$' } },
      style: 'form',
      explode: false,
    },
    // `Accept` is described by content negotiation: OpenAPI says such header parameters are ignored.
    { name: 'X-Request-Id', in: 'header', required: false, schema: { type: 'string', format: 'uuid' } },
  ]);
  const petId = { name: 'petId', in: 'path', required: true, schema: { type: 'integer', format: 'int64', minimum: 1 } };
  assert.deepEqual(byName(r.operations, 'showpetbyid').parameters, [petId]);
  assert.deepEqual(byName(r.operations, 'pets-photos-get').parameters, [
    petId,
    { name: 'photo-id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' }, templateName: 'photo_id' },
  ]);
});

test('schemas: component $refs become $defs, a relative-file $ref is followed, a recursive schema stays finite', () => {
  const r = importOpenApi(PETSTORE);
  const tree = json(byName(r.operations, 'getcategorytree'), '200')?.schema as Record<string, unknown>;
  assert.equal(tree.$ref, '#/$defs/Category');
  const defs = tree.$defs as Record<string, Record<string, Record<string, Record<string, unknown>>>>;
  assert.deepEqual(Object.keys(defs), ['Category', 'CategoryRef']);
  assert.deepEqual(defs.Category.properties.children, { type: 'array', items: { $ref: '#/$defs/Category' } });
  // `nullable` next to allOf (no type) means "this, or null".
  assert.deepEqual(defs.Category.properties.parent, { anyOf: [{ allOf: [{ $ref: '#/$defs/CategoryRef' }] }, { type: 'null' }] });
  assert.ok(JSON.stringify(tree).length < 2000, 'no infinite inlining');

  // ./common.yaml#/components/schemas/Error, whose own #/… $ref resolves inside common.yaml.
  const error = json(byName(r.operations, 'deletepet'), '404')?.schema as Record<string, unknown>;
  assert.equal(error.$ref, '#/$defs/Error');
  assert.deepEqual(Object.keys(error.$defs as object), ['Error', 'ErrorDetail']);
  assert.deepEqual((error.$defs as Record<string, { properties: Record<string, unknown> }>).Error.properties.details, {
    type: 'array',
    items: { $ref: '#/$defs/ErrorDetail' },
  });
});

test('OpenAPI 3.0 schemas are converted to JSON Schema 2020-12', () => {
  const r = importOpenApi(PETSTORE);
  const body = byName(r.operations, 'createpet').requestBody;
  assert.equal(body?.required, true);
  assert.deepEqual(Object.keys(body?.content ?? {}), ['application/json', 'application/x-www-form-urlencoded']);
  const schema = body?.content['application/json'].schema as { $defs: { NewPet: { properties: Record<string, unknown> } } };
  assert.deepEqual(schema.$defs.NewPet.properties, {
    name: { type: 'string', minLength: 1, maxLength: 64, pattern: '^\\S(.*\\S)?$' },
    tag: { type: ['string', 'null'] }, // nullable; x-display dropped
    birthDate: { type: 'string', format: 'date' },
    weight: { type: 'number', exclusiveMinimum: 0, examples: [4.2] }, // boolean exclusiveMinimum; example
    categoryId: { type: 'integer', minimum: 1 },
  });
  const pet = json(byName(r.operations, 'showpetbyid'), '200')?.schema as { $defs: Record<string, Record<string, unknown>> };
  assert.equal('discriminator' in pet.$defs.Pet, false);

  const nullableEnum = importText(
    'openapi: 3.0.0\ninfo: { title: t, version: "1" }\npaths:\n  /a:\n    get:\n      parameters:\n        - { name: s, in: query, schema: { type: string, enum: [a, b], nullable: true, maximum: 3, exclusiveMaximum: false } }\n      responses: {}\n',
  );
  assert.deepEqual(nullableEnum.problems, []);
  assert.deepEqual(nullableEnum.operations[0].parameters?.[0].schema, { type: ['string', 'null'], enum: ['a', 'b', null], maximum: 3 });
});

test('responses: statuses, headers, examples (inline, named, $ref) and content types', () => {
  const r = importOpenApi(PETSTORE);
  const list = byName(r.operations, 'listpets');
  assert.deepEqual(Object.keys(list.responses ?? {}), ['200', 'default']);
  assert.deepEqual(list.responses?.['200'].headers, { 'X-Next': { required: false, schema: { type: 'string', format: 'uri' } } });
  assert.deepEqual(json(list, '200')?.example, [
    { id: 1, name: 'Rex', tag: 'dog' },
    { id: 2, name: 'Tom', tag: null },
  ]);
  const show = byName(r.operations, 'showpetbyid');
  assert.deepEqual(json(show, '200')?.examples, {
    rex: { summary: 'A dog', value: { id: 1, name: 'Rex', tag: 'dog', birthDate: '2019-04-01', weight: 12.5 } },
    tom: { summary: 'A cat without a tag', value: { id: 2, name: 'Tom', tag: null } },
  });
  assert.deepEqual(Object.keys(show.responses?.['200'].content ?? {}), ['application/json', 'application/xml']);
  assert.deepEqual(json(show, '404')?.example, { code: 404, message: 'pet not found' });
  assert.equal(show.responses?.['404'].description, 'No such pet');
  // An unquoted 201 key is a YAML number: still the status "201"; "4XX" stays a class.
  assert.deepEqual(Object.keys(byName(r.operations, 'createpet').responses ?? {}), ['201', '4XX']);
  assert.deepEqual(Object.keys(byName(r.operations, 'pets-photos-get').responses?.['200'].content ?? {}), ['image/*']);
});

test('an OpenAPI 3.1 JSON document keeps JSON Schema 2020-12 as written (minus OpenAPI annotations)', () => {
  const r = importOpenApi(ORDERS, { file: 'orders.openapi.json' });
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.info, { openapiVersion: '3.1.0', title: 'Orders', serverUrl: 'https://api.example.com/orders' });
  assert.deepEqual(
    r.operations.map((o) => `${o.name} ${o.methods[0]} ${o.urlTemplate} ${o.source?.line}`),
    ['placeorder POST / 7', 'getorder GET /{orderId} 31'],
  );
  const get = r.operations[1];
  assert.deepEqual(get.parameters?.[1], { name: 'expand', in: 'query', required: false, schema: { type: ['boolean', 'null'] } });
  const order = json(get, '200')?.schema as { $defs: Record<string, Record<string, Record<string, unknown>>> };
  // 3.1: $ref siblings apply; x-* extensions are dropped.
  assert.deepEqual(order.$defs.Order.properties.status, { $ref: '#/$defs/Status', description: 'Where the order is' });
  assert.deepEqual(order.$defs.Status, { type: 'string', enum: ['placed', 'paid', 'shipped'] });
  assert.deepEqual(order.$defs.Order.properties.position, { type: 'array', prefixItems: [{ type: 'number' }, { type: 'number' }], items: false });
  assert.deepEqual(order.$defs.Line.properties.quantity, { type: 'integer', exclusiveMinimum: 0 });
  const place = r.operations[0];
  assert.deepEqual(place.requestBody?.content['application/json'].examples?.single, {
    value: { customer: 'c-42', lines: [{ sku: 'SKU-1', quantity: 2 }] },
  });
  assert.deepEqual(place.responses?.['201'].headers, { Location: { required: true, schema: { type: 'string' } } });
});

test('problems point at the offending node in the OpenAPI file', () => {
  const r = importOpenApi(join(FIXTURES, 'broken.openapi.yaml'), { file: 'broken.openapi.yaml' });
  assert.deepEqual(lines(r.problems), [
    'broken.openapi.yaml:10:44: pattern "^(?=[A-Z])\\\\w+$" is not supported (patterns run in linear time: no lookaround or backreferences): ' +
      'error parsing regexp: invalid or unsupported Perl syntax: `(?=` (#/paths/~1things~1{thingId}/get/parameters/0/schema/pattern)',
    'broken.openapi.yaml:17:23: $ref "#/components/schemas/Thng" not found: no "Thng" in #/components/schemas (did you mean "Thing"?) ' +
      '(#/paths/~1things~1{thingId}/get/responses/200/content/application~1json/schema/$ref)',
    'broken.openapi.yaml:18:3: path "/reports/{year}-{month}" cannot be imported: segment "{year}-{month}" mixes text and a parameter; ' +
      'Lockgate templates need a parameter to fill a whole segment (#/paths/~1reports~1{year}-{month})',
  ]);
});

test('relative-file $refs: a missing file or pointer is reported at the $ref; problems in the other file name it', () => {
  const head = 'openapi: 3.1.0\ninfo: { title: t, version: "1" }\npaths:\n  /a:\n    get:\n      responses:\n        "200":\n          description: ok\n          content:\n            application/json:\n              schema:\n';
  const missing = importText(`${head}                $ref: './nope.yaml#/A'\n`);
  assert.deepEqual(lines(missing.problems), [
    'api.yaml:12:23: cannot resolve $ref "./nope.yaml#/A": cannot read /spec/nope.yaml: ENOENT (#/paths/~1a/get/responses/200/content/application~1json/schema/$ref)',
  ]);
  const badPointer = importText(`${head}                $ref: 'shared/defs.yaml#/schemas/B'\n`, {
    '/spec/shared/defs.yaml': 'schemas:\n  A: { type: string }\n',
  });
  assert.deepEqual(lines(badPointer.problems), [
    'api.yaml:12:23: $ref "shared/defs.yaml#/schemas/B" not found: no "B" in #/schemas of shared/defs.yaml (did you mean "A"?) ' +
      '(#/paths/~1a/get/responses/200/content/application~1json/schema/$ref)',
  ]);
  const badInOther = importText(`${head}                $ref: 'shared/defs.yaml#/schemas/A'\n`, {
    '/spec/shared/defs.yaml': 'schemas:\n  A:\n    type: strin\n',
  });
  assert.deepEqual(lines(badInOther.problems), [
    'shared/defs.yaml:3:11: unknown schema type "strin" (did you mean "string"?) (#/schemas/A/type)',
  ]);
  const remote = importText(`${head}                $ref: 'https://schemas.example.com/a.yaml#/A'\n`);
  assert.match(remote.problems[0].message, /^cannot resolve \$ref .*documents are read from local files only/);
});

test('cycles: circular Reference Objects and schemas that recurse without descending are problems', () => {
  const doc = (components: string, use: string) =>
    `openapi: 3.0.3\ninfo: { title: t, version: "1" }\npaths:\n  /a:\n    get:\n${use}\n      responses: {}\ncomponents:\n${components}`;
  const params = importText(doc('  parameters:\n    P: { $ref: "#/components/parameters/Q" }\n    Q: { $ref: "#/components/parameters/P" }\n', '      parameters: [{ $ref: "#/components/parameters/P" }]'));
  // Reported where the loop closes: P's $ref leads back to P.
  assert.deepEqual(lines(params.problems), ['api.yaml:10:16: circular $ref "#/components/parameters/Q" (#/components/parameters/P/$ref)']);

  const allOf = importText(
    doc('  schemas:\n    A:\n      allOf: [{ $ref: "#/components/schemas/A" }, { type: object }]\n', '      parameters: [{ name: q, in: query, schema: { $ref: "#/components/schemas/A" } }]'),
  );
  assert.deepEqual(lines(allOf.problems), [
    'api.yaml:10:5: schema "A" refers to itself without descending into a property or item (it would recurse forever) (#/components/schemas/A)',
  ]);
  const alias = importText(
    doc('  schemas:\n    A: { $ref: "#/components/schemas/B" }\n    B: { $ref: "#/components/schemas/A" }\n', '      parameters: [{ name: q, in: query, schema: { $ref: "#/components/schemas/A" } }]'),
  );
  assert.equal(alias.problems.length, 2);
  // Recursion through a property is fine.
  const tree = importText(doc('  schemas:\n    T:\n      properties:\n        next: { $ref: "#/components/schemas/T" }\n', '      parameters: [{ name: q, in: query, schema: { $ref: "#/components/schemas/T" } }]'));
  assert.deepEqual(tree.problems, []);
});

test('documents that are not OpenAPI 3.0/3.1, YAML errors and bad paths are problems', () => {
  assert.deepEqual(lines(importText('swagger: "2.0"\ninfo: { title: t, version: "1" }\n').problems), [
    'api.yaml:1:1: not an OpenAPI 3 document: no "openapi" field. OpenAPI 2.0 (Swagger) is not supported: convert it to OpenAPI 3',
  ]);
  assert.deepEqual(lines(importText('openapi: 3.2.0\npaths: {}\n').problems), [
    'api.yaml:1:10: unsupported OpenAPI version "3.2.0"; Lockgate imports 3.0.x and 3.1.x (#/openapi)',
  ]);
  assert.match(lines(importText('openapi: 3.1.0\npaths:\n  /a: [\n').problems)[0], /^api\.yaml:\d+:\d+: YAML: /);
  // Importing never throws, even when the loader does.
  const thrown = importOpenApi('/spec/api.yaml', {
    file: 'api.yaml',
    load: () => {
      throw new Error('disk on fire');
    },
  });
  assert.deepEqual(lines(thrown.problems), ['api.yaml:1:1: cannot import: disk on fire']);
  const paths = importText(
    'openapi: 3.1.0\ninfo: { title: t, version: "1" }\npaths:\n  pets: {}\n  /pets/: { get: { responses: {} } }\n  /a/{b}:\n    get:\n      parameters: [{ name: c, in: path, required: true }]\n      responses: { "999": { description: x } }\n',
  );
  assert.deepEqual(lines(paths.problems), [
    'api.yaml:4:3: path "pets" cannot be imported: it must start with "/" (#/paths/pets)',
    'api.yaml:5:3: path "/pets/" cannot be imported: "/pets/" has an empty segment ("//" or a trailing "/") (#/paths/~1pets~1)',
    'api.yaml:8:28: path parameter "c" does not appear in the path template (#/paths/~1a~1{b}/get/parameters/0/name)',
    'api.yaml:9:20: response status "999" must be a status such as "200", a class such as "4XX", or "default" (#/paths/~1a~1{b}/get/responses/999)',
  ]);
});

test('operation names: duplicate operationIds are problems; names stay unique and valid', () => {
  const r = importText(
    'openapi: 3.0.3\ninfo: { title: t, version: "1" }\npaths:\n  /a:\n    get: { operationId: Fetch_Thing, responses: {} }\n    put: { operationId: fetch-thing, responses: {} }\n  /b/{id}:\n    get: { operationId: Fetch_Thing, responses: {} }\n    post: { responses: {} }\n',
  );
  assert.deepEqual(lines(r.problems), ['api.yaml:8:25: duplicate operationId "Fetch_Thing" (first at #/paths/~1a/get/operationId) (#/paths/~1b~1{id}/get/operationId)']);
  assert.deepEqual(r.operations.map((o) => o.name), ['fetch-thing', 'fetch-thing-2', 'fetch-thing-3', 'post-b-id']);
  // Long names stay valid DNS labels when a suffix is added (hand-written operations too).
  const long = `/${'segment'.repeat(10)}`;
  const hand = parseConfigText(`${BACKEND}---\n${api('a', `  operations:\n    - { methods: [GET], urlTemplate: "${long}/a" }\n    - { methods: [GET], urlTemplate: "${long}/b" }\n`)}`, 'c.yaml');
  assert.deepEqual(hand.problems, []);
  const [first, second] = hand.config?.apis[0].spec.operations.map((o) => o.name) ?? [];
  assert.equal(first.length, 63);
  assert.equal(second, `${first.slice(0, 61)}-2`);
  // An undeclared template parameter is still a required string segment.
  assert.deepEqual(r.operations[3].parameters, [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }]);
});

// ---------- the Api kind ----------

const BACKEND = `${HEAD}\nkind: Backend\nmetadata: { name: pets }\nspec: { url: "http://127.0.0.1:9000" }\n`;
const api = (name: string, spec: string) => `${HEAD}\nkind: Api\nmetadata: { name: ${name} }\nspec:\n  backend: pets\n${spec}`;
/** Config text "in" the fixtures directory, so that relative imports resolve there. */
const load = (...docs: string[]) => parseConfigText(docs.join('---\n'), join(FIXTURES, 'inline.yaml'));

test('an Api imports operations; hand-written ones with the same method and template win and keep the descriptions', () => {
  const { config, problems } = load(
    BACKEND,
    api(
      'pets',
      '  path: /v2\n  import: { openapi: ./petstore.openapi.yaml }\n  operations:\n' +
        '    - { method: GET, urlTemplate: "/pets/{id}", backend: pets }\n' +
        '    - { name: listpets, methods: [POST], urlTemplate: /pets }\n' +
        '    - { methods: ["*"], urlTemplate: /health }\n',
    ),
  );
  assert.deepEqual(problems, []);
  assert.ok(config);
  const spec = config.apis[0].spec;
  assert.deepEqual(spec.import, { openapi: PETSTORE, openapiVersion: '3.0.3', title: 'Pet Store', serverUrl: 'https://pets.example.com/v2' });
  assert.deepEqual(
    spec.operations.map((o) => `${o.name} ${o.methods.join()} ${o.urlTemplate}${o.source ? ' (imported)' : ''}`),
    [
      'get-pets-id GET /pets/{id}',
      'listpets POST /pets',
      'any-health * /health',
      // listpets is taken by a hand-written operation: the imported one is renamed.
      'listpets-2 GET /pets (imported)',
      'updatepet PUT /pets/{petId} (imported)',
      'deletepet DELETE /pets/{petId} (imported)',
      'pets-photos-get GET /pets/{petId}/photos/{photo_id} (imported)',
      'getcategorytree GET /categories/{categoryId}/tree (imported)',
    ],
  );
  // GET /pets/{id} replaced showPetById, and kept its parameters (renamed to the template's {id}) and responses.
  const get = spec.operations[0];
  assert.equal(get.backend, 'default/pets');
  assert.equal(get.operationId, 'showPetById');
  assert.deepEqual(get.parameters?.map((p) => [p.name, p.templateName]), [['petId', 'id']]);
  assert.deepEqual(Object.keys(get.responses ?? {}), ['200', '404']);
  // POST /pets replaced createPet (one method: descriptions kept); `*` on /health took GET /health, nothing to keep.
  assert.equal(spec.operations[1].operationId, 'createPet');
  assert.equal(spec.operations[2].responses, undefined);
});

test('route conflicts see imported operations and point at the import', () => {
  const out = lines(
    load(
      BACKEND,
      api('mine', '  path: /v2\n  operations: [{ method: DELETE, urlTemplate: "/pets/{x}" }]\n'),
      api('pets', '  path: /v2\n  import:\n    openapi: petstore.openapi.yaml\n'),
    ).problems,
  );
  const file = join(FIXTURES, 'inline.yaml');
  const fixtures = FIXTURES;
  assert.deepEqual(out, [
    `${file}:21:14: route conflict: DELETE (any host)/v2/pets/{petId} (operation "deletepet" imported from ${fixtures}/petstore.openapi.yaml:92:5) ` +
      `is already claimed by Api "default/mine" operation "delete-pets-x" (${file}:7) (spec.operations[4].urlTemplate)`,
  ]);
});

test('import problems: missing file, URL, unknown field, and problems inside the document named relative to the config', () => {
  const out = lines(
    load(
      BACKEND,
      api('a', '  path: /a\n  import: { openapi: ./missing.yaml }\n'),
      api('b', '  path: /b\n  import: { openapi: "https://example.com/openapi.yaml" }\n'),
      api('c', '  path: /c\n  import: { openAPI: x.yaml }\n'),
      api('d', '  path: /d\n  import: { openapi: broken.openapi.yaml }\n'),
    ).problems,
  );
  const file = join(FIXTURES, 'inline.yaml');
  assert.equal(out.length, 7, out.join('\n'));
  assert.equal(out[0], `${file}:12:22: file not found: ${join(FIXTURES, 'missing.yaml')} (spec.import.openapi)`);
  assert.equal(out[1], `${file}:20:22: importing from a URL is not supported yet: save the document and name the file (relative to this file) (spec.import.openapi)`);
  assert.equal(out[2], `${file}:28:3: missing required field "openapi" in Api.spec.import (spec.import.openapi)`);
  assert.equal(out[3], `${file}:28:13: unknown field "openAPI" in Api.spec.import (did you mean "openapi"?) (spec.import.openAPI)`);
  assert.match(out[4], new RegExp(`^${join(FIXTURES, 'broken.openapi.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:10:44: pattern `));
  assert.match(out[5], /broken\.openapi\.yaml:17:23: \$ref "#\/components\/schemas\/Thng" not found/);
  assert.match(out[6], /broken\.openapi\.yaml:18:3: path "\/reports\/\{year\}-\{month\}" cannot be imported/);
});

test('lockgate validate on a config importing a broken spec prints file:line:col inside the spec', () => {
  const bin = resolve(import.meta.dirname, '../../bin/lockgate.mjs');
  const r = spawnSync(process.execPath, [bin, 'validate', 'test/fixtures/openapi/broken-api.yaml'], {
    encoding: 'utf8',
    timeout: 20_000,
    cwd: resolve(import.meta.dirname, '../..'),
  });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /^test\/fixtures\/openapi\/broken\.openapi\.yaml:17:23: \$ref "#\/components\/schemas\/Thng" not found/m);
  assert.match(r.stderr, /^test\/fixtures\/openapi\/broken\.openapi\.yaml:10:44: pattern /m);
  assert.match(r.stderr, /3 problems found/);
});

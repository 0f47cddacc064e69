// Tests for the schema engine: compiling and validating (linear-time patterns, formats, imported OpenAPI schemas),
// parameter coercion, content-type lookup and mock-response examples.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { importOpenApi } from '../model/openapi-import.ts';
import type { JsonSchema, Operation, OperationParameter } from '../model/types.ts';
import { coerceParameter, compileSchema, createSchemaCompiler, exampleFor, findContent, sampleFromSchema } from './schema-validator.ts';
import type { SchemaValidator } from './schema-validator.ts';

const FIXTURES = resolve(import.meta.dirname, '../../test/fixtures/openapi');
const petstore = importOpenApi(resolve(FIXTURES, 'petstore.openapi.yaml'));
const orders = importOpenApi(resolve(FIXTURES, 'orders.openapi.json'));
assert.deepEqual([...petstore.problems, ...orders.problems], []);

function op(ops: Operation[], name: string): Operation {
  const found = ops.find((o) => o.name === name);
  assert.ok(found, name);
  return found;
}

function validator(schema: JsonSchema | undefined): SchemaValidator {
  assert.ok(schema !== undefined, 'schema');
  const c = compileSchema(schema);
  assert.ok(c.ok, c.ok ? '' : c.problems.join('\n'));
  return c.validator;
}

test('validate reports every error with a JSON pointer and a readable message', () => {
  const v = validator({
    type: 'object',
    required: ['id', 'name'],
    additionalProperties: false,
    properties: {
      id: { type: 'integer', minimum: 1 },
      name: { type: 'string' },
      kind: { enum: ['cat', 'dog'] },
      tags: { type: 'array', items: { type: 'string', maxLength: 3 } },
    },
  });
  assert.deepEqual(v.validate({ id: 1, name: 'Rex', tags: ['a'] }), { ok: true });
  assert.deepEqual(v.validate({ id: 0, kind: 'cow', extra: true, tags: ['long', 'ok'] }), {
    ok: false,
    errors: [
      { path: '', message: 'missing required property "name"' },
      { path: '', message: 'property "extra" is not allowed' },
      { path: '/id', message: 'must be >= 1' },
      { path: '/kind', message: 'must be one of ["cat","dog"]' },
      { path: '/tags/0', message: 'must NOT have more than 3 characters' },
    ],
  });
  assert.deepEqual(v.validate('x'), { ok: false, errors: [{ path: '', message: 'must be object' }] });
  const capped = createSchemaCompiler({ maxErrors: 2 }).compile({ type: 'array', items: { type: 'string' } });
  assert.ok(capped.ok);
  const r = capped.validator.validate([1, 2, 3, 4]);
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.errors.length, 2);
});

test('patterns run on RE2: a pattern that backtracks catastrophically in JavaScript stays fast', () => {
  const v = validator({ type: 'string', pattern: '^(a+)+$' });
  const evil = `${'a'.repeat(50_000)}!`;
  const start = performance.now();
  assert.equal(v.validate(evil).ok, false);
  assert.ok(performance.now() - start < 2000, `took ${performance.now() - start} ms`);
  assert.equal(v.validate('aaa').ok, true);
  // One compiler, several patterns: each schema keeps its own.
  const compiler = createSchemaCompiler();
  const digits = compiler.compile({ type: 'string', pattern: '^[0-9]+$' });
  const letters = compiler.compile({ type: 'string', pattern: '^[a-z]+$' });
  assert.ok(digits.ok && letters.ok);
  assert.deepEqual([digits.validator.validate('123').ok, digits.validator.validate('abc').ok], [true, false]);
  assert.deepEqual([letters.validator.validate('abc').ok, letters.validator.validate('123').ok], [true, false]);
  // Not anchored unless the pattern says so (JSON Schema semantics); \uXXXX escapes work as in JavaScript.
  assert.equal(validator({ type: 'string', pattern: 'b\\u00e9' }).validate('abéc').ok, true);
  const props = validator({ type: 'object', patternProperties: { '^x-': { type: 'string' } } });
  assert.equal(props.validate({ 'x-a': 1 }).ok, false);
  assert.equal(props.validate({ 'x-a': 'ok', y: 1 }).ok, true);
});

test('schemas RE2 cannot run, or that are not valid JSON Schema, are compile problems', () => {
  const lookahead = compileSchema({ type: 'string', pattern: '^(?=x)\\w+$' });
  assert.equal(lookahead.ok, false);
  assert.match(lookahead.ok ? '' : lookahead.problems[0], /pattern|regex/);
  const backref = compileSchema({ type: 'object', patternProperties: { '(a)\\1': {} } });
  assert.equal(backref.ok, false);
  const badType = compileSchema({ type: 'strin' });
  assert.equal(badType.ok, false);
  assert.match(badType.ok ? '' : badType.problems[0], /schema is invalid/);
  assert.equal(compileSchema({ $ref: '#/$defs/Missing' }).ok, false);
});

test('formats OpenAPI uses are checked; unknown formats are annotations', () => {
  const check = (format: string, type: string, good: unknown[], bad: unknown[]) => {
    const v = validator({ type, format });
    for (const g of good) assert.equal(v.validate(g).ok, true, `${format}: ${JSON.stringify(g)} should pass`);
    for (const b of bad) assert.equal(v.validate(b).ok, false, `${format}: ${JSON.stringify(b)} should fail`);
  };
  check('int32', 'integer', [0, 2147483647, -2147483648], [2147483648]);
  check('int64', 'integer', [2 ** 40], []);
  check('date', 'string', ['2024-02-29', '2023-12-31'], ['2023-02-29', '2024-13-01', '2024-1-1']);
  check('date-time', 'string', ['2024-02-29T10:20:30Z', '2024-02-29T10:20:30.5+02:00'], ['2024-02-29', '2024-02-29T25:00:00Z', '2024-02-29T10:20:30']);
  check('email', 'string', ['a.b@example.com'], ['no-at.example.com', 'a@b', 'a b@example.com']);
  check('uuid', 'string', ['3fa85f64-5717-4562-b3fc-2c963f66afa6'], ['3fa85f64571745621b3fc2c963f66afa6']);
  check('uri', 'string', ['https://example.com/a?b'], ['/relative', 'not a uri']);
  check('ipv4', 'string', ['192.0.2.1'], ['256.0.0.1']);
  check('ipv6', 'string', ['2001:db8::1'], ['2001:db8:::1']);
  check('byte', 'string', ['U3dhZ2dlcg=='], ['U3dhZ2dlcg=']);
  check('binary', 'string', ['\u0000anything'], []);
  check('made-up', 'string', ['whatever'], []);
  // The email check must not backtrack either (it is an RE2 pattern too).
  const start = performance.now();
  assert.equal(validator({ type: 'string', format: 'email' }).validate(`a@${'b'.repeat(100_000)}`).ok, false);
  assert.ok(performance.now() - start < 2000);
});

test('imported OpenAPI 3.0 schemas validate as the document means (nullable, exclusiveMinimum, allOf, files)', () => {
  const newPet = validator(op(petstore.operations, 'createpet').requestBody?.content['application/json'].schema);
  assert.deepEqual(newPet.validate({ name: 'Rex', tag: null, weight: 0.5, birthDate: '2019-04-01' }), { ok: true });
  assert.deepEqual(newPet.validate({ name: ' Rex', tag: 5, weight: 0, birthDate: '2019-02-30' }), {
    ok: false,
    errors: [
      { path: '/name', message: 'must match pattern "^\\S(.*\\S)?$"' },
      { path: '/tag', message: 'must be string,null' },
      { path: '/birthDate', message: 'must match format "date"' },
      { path: '/weight', message: 'must be > 0' },
    ],
  });
  const pet = validator(op(petstore.operations, 'showpetbyid').responses?.['200'].content['application/json'].schema);
  assert.equal(pet.validate({ id: 7, name: 'Rex' }).ok, true);
  assert.deepEqual(pet.validate({ name: 'Rex' }), { ok: false, errors: [{ path: '', message: 'missing required property "id"' }] });
  // Error comes from common.yaml, ErrorDetail from a $ref inside common.yaml.
  const error = validator(op(petstore.operations, 'deletepet').responses?.['404'].content['application/json'].schema);
  assert.equal(error.validate({ code: 404, message: 'x', details: [{ field: 'id', reason: 'missing' }] }).ok, true);
  assert.deepEqual(error.validate({ code: 404, message: 'x', details: [{ reason: 'gone' }] }), {
    ok: false,
    errors: [
      { path: '/details/0', message: 'missing required property "field"' },
      { path: '/details/0/reason', message: 'must be one of ["missing","invalid","conflict"]' },
    ],
  });
});

test('a recursive schema validates trees of any depth', () => {
  const tree = validator(op(petstore.operations, 'getcategorytree').responses?.['200'].content['application/json'].schema);
  let node: Record<string, unknown> = { id: 100, name: 'leaf', parent: { id: 99 }, children: [] };
  for (let i = 99; i > 0; i--) node = { id: i, name: `n${i}`, parent: i > 1 ? { id: i - 1 } : null, children: [node] };
  assert.deepEqual(tree.validate(node), { ok: true });
  let bad = node;
  for (let i = 0; i < 50; i++) bad = (bad.children as Record<string, unknown>[])[0];
  bad.parent = { id: 1, extra: true };
  const r = tree.validate(node);
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.errors.some((e) => e.path === `${'/children/0'.repeat(50)}/parent` && /"extra" is not allowed/.test(e.message)), JSON.stringify(r));
});

test('imported OpenAPI 3.1 schemas: type arrays, prefixItems, unevaluatedProperties across allOf', () => {
  const order = validator(op(orders.operations, 'getorder').responses?.['200'].content['application/json'].schema);
  const good = { id: 'ord_0000002a', customer: 'c', lines: [{ sku: 'a', quantity: 1 }], note: null, status: 'paid', position: [1.5, 2] };
  assert.deepEqual(order.validate(good), { ok: true });
  assert.deepEqual(order.validate({ ...good, lines: [{ sku: 'a', quantity: 0 }], position: [1, 2, 3], surprise: 1 }), {
    ok: false,
    errors: [
      { path: '/lines/0/quantity', message: 'must be > 0' },
      { path: '/position', message: 'must NOT have more than 2 items' },
      { path: '', message: 'property "surprise" is not allowed' },
    ],
  });
  const id = op(orders.operations, 'getorder').parameters?.[0];
  assert.equal(validator(id?.schema).validate('ord_0000abcd').ok, true);
  assert.equal(validator(id?.schema).validate('ord_xyz').ok, false);
});

test('coerceParameter turns raw strings into what the schema describes, following OpenAPI styles', () => {
  const p = (schema: JsonSchema, extra: Partial<OperationParameter> = {}): OperationParameter => ({ name: 'p', in: 'query', required: false, schema, ...extra });
  assert.equal(coerceParameter(p({ type: 'integer' }), '42'), 42);
  assert.equal(coerceParameter(p({ type: 'integer' }), '4.2'), '4.2', 'left for the validator to reject');
  assert.equal(coerceParameter(p({ type: 'number' }), '-4.2e1'), -42);
  assert.equal(coerceParameter(p({ type: 'boolean' }), 'true'), true);
  assert.equal(coerceParameter(p({ type: ['boolean', 'null'] }), 'null'), null);
  assert.equal(coerceParameter(p({ type: 'string' }), '42'), '42');
  assert.equal(coerceParameter(p({ type: 'integer' }), undefined), undefined);
  assert.equal(coerceParameter(p({ type: 'integer' }), ['7', '8']), 7, 'a repeated scalar takes the first');
  // Through the bundle's $ref and allOf.
  assert.equal(coerceParameter(p({ $ref: '#/$defs/N', $defs: { N: { allOf: [{ type: 'integer' }] } } }), '5'), 5);

  const ints = { type: 'array', items: { type: 'integer' } };
  assert.deepEqual(coerceParameter(p(ints), ['1', '2']), [1, 2], 'form, exploded: repeated keys');
  assert.deepEqual(coerceParameter(p(ints), '1,2'), ['1,2'], 'form, exploded: one value is one item');
  assert.deepEqual(coerceParameter(p(ints, { explode: false }), '1,2'), [1, 2]);
  assert.deepEqual(coerceParameter(p(ints, { style: 'pipeDelimited' }), '1|2'), [1, 2]);
  assert.deepEqual(coerceParameter(p(ints, { style: 'spaceDelimited' }), '1 2'), [1, 2]);
  assert.deepEqual(coerceParameter(p(ints, { in: 'path' }), '3,4,5'), [3, 4, 5], 'simple');
  assert.deepEqual(coerceParameter(p(ints, { in: 'header' }), ''), []);
  assert.deepEqual(coerceParameter(p(ints, { in: 'path', style: 'label', explode: true }), '.3.4'), [3, 4]);
  assert.deepEqual(coerceParameter(p(ints, { name: 'id', in: 'path', style: 'matrix', explode: true }), ';id=3;id=4'), [3, 4]);
  assert.deepEqual(coerceParameter(p(ints, { name: 'id', in: 'path', style: 'matrix' }), ';id=3,4'), [3, 4]);

  const obj = { type: 'object', properties: { role: { type: 'string' }, id: { type: 'integer' } } };
  assert.deepEqual(coerceParameter(p(obj, { in: 'path' }), 'role,admin,id,7'), { role: 'admin', id: 7 });
  assert.deepEqual(coerceParameter(p(obj, { in: 'header', explode: true }), 'role=admin,id=7'), { role: 'admin', id: 7 });
  assert.equal(coerceParameter(p(obj, { style: 'deepObject' }), 'x'), 'x', 'deepObject is left to the caller');
  assert.deepEqual(coerceParameter(p(obj, { contentType: 'application/json' }), '{"id":1}'), { id: 1 });
  assert.equal(coerceParameter(p(obj, { contentType: 'application/json' }), '{bad'), '{bad');

  // The imported petstore's limit (int32) and tags (form, unexploded) parameters.
  const [limit, tags] = op(petstore.operations, 'listpets').parameters ?? [];
  assert.equal(coerceParameter(limit, '20'), 20);
  assert.deepEqual(coerceParameter(tags, 'dog,small'), ['dog', 'small']);
  assert.deepEqual(validator(tags.schema).validate(coerceParameter(tags, 'dog,Small')), {
    ok: false,
    errors: [{ path: '/1', message: 'must match pattern "^[a-z][a-z0-9-]*$"' }],
  });
});

test('findContent: exact media type (parameters and case ignored), then type/*, then */*; none given → the first', () => {
  const content = { 'application/json': 1, 'application/*': 2, 'text/plain; charset=utf-8': 3, '*/*': 4 };
  assert.deepEqual(findContent(content, 'application/json; charset=utf-8'), { mediaType: 'application/json', value: 1 });
  assert.deepEqual(findContent(content, 'Application/JSON'), { mediaType: 'application/json', value: 1 });
  assert.deepEqual(findContent(content, 'application/xml'), { mediaType: 'application/*', value: 2 });
  assert.deepEqual(findContent(content, 'text/plain'), { mediaType: 'text/plain; charset=utf-8', value: 3 });
  assert.deepEqual(findContent(content, 'image/png'), { mediaType: '*/*', value: 4 });
  assert.deepEqual(findContent(content, undefined), { mediaType: 'application/json', value: 1 });
  assert.equal(findContent({ 'application/json': 1 }, 'text/html'), undefined);
  assert.equal(findContent({}, undefined), undefined);
  assert.equal(findContent(undefined, 'application/json'), undefined);
});

test('exampleFor follows mock-response: the definition\'s example, else a sample from the schema, else nothing', () => {
  const ops = petstore.operations;
  // `example` on the media type.
  assert.deepEqual(exampleFor(op(ops, 'listpets')), {
    contentType: 'application/json',
    value: [
      { id: 1, name: 'Rex', tag: 'dog' },
      { id: 2, name: 'Tom', tag: null },
    ],
    from: 'example',
  });
  // The first of `examples` (a $ref to components/examples).
  assert.deepEqual(exampleFor(op(ops, 'showpetbyid'), 200)?.value, { id: 1, name: 'Rex', tag: 'dog', birthDate: '2019-04-01', weight: 12.5 });
  assert.deepEqual(exampleFor(op(ops, 'showpetbyid'), 404), { contentType: 'application/json', value: { code: 404, message: 'pet not found' }, from: 'example' });
  // No example for application/xml: generated from the schema.
  assert.deepEqual(exampleFor(op(ops, 'showpetbyid'), 200, 'application/xml'), {
    contentType: 'application/xml',
    value: { name: 'string', tag: 'string', birthDate: '2024-01-01', weight: 4.2, categoryId: 1, id: 0 },
    from: 'schema',
  });
  // 201 only: the default status 200 has nothing; "4XX" serves 422; undeclared content types give nothing.
  assert.equal(exampleFor(op(ops, 'createpet')), undefined);
  assert.equal(exampleFor(op(ops, 'createpet'), 422)?.contentType, 'application/json');
  assert.equal(exampleFor(op(ops, 'createpet'), 201, 'text/html'), undefined);
  // "default" covers any status; a response without content is an empty body.
  assert.equal(exampleFor(op(ops, 'listpets'), 503)?.from, 'schema');
  assert.equal(exampleFor(op(ops, 'deletepet'), 204), undefined);
  // Wildcard media type in the definition; enum-only schema.
  assert.deepEqual(exampleFor(op(ops, 'pets-photos-get')), { contentType: 'image/*', value: 'string', from: 'schema' });
  assert.deepEqual(exampleFor(op(ops, 'get-health')), { contentType: 'text/plain', value: 'ok', from: 'schema' });
  // Schema-level examples (3.1) are used before generating.
  assert.equal((exampleFor(op(orders.operations, 'getorder'))?.value as { id: string }).id, 'ord_0000002a');
});

test('generated samples are finite for recursive schemas and valid against the schema they come from', () => {
  const tree = op(petstore.operations, 'getcategorytree').responses?.['200'].content['application/json'].schema as JsonSchema;
  assert.deepEqual(sampleFromSchema(tree), { id: 0, name: 'string', parent: { id: 0 }, children: [] });
  const schemas: JsonSchema[] = [];
  for (const o of [...petstore.operations, ...orders.operations]) {
    for (const r of Object.values(o.responses ?? {})) for (const m of Object.values(r.content)) if (m.schema !== undefined) schemas.push(m.schema);
    for (const m of Object.values(o.requestBody?.content ?? {})) if (m.schema !== undefined) schemas.push(m.schema);
  }
  assert.ok(schemas.length >= 15);
  const compiler = createSchemaCompiler();
  for (const s of schemas) {
    const c = compiler.compile(s);
    assert.ok(c.ok);
    const sample = sampleFromSchema(s);
    assert.deepEqual(c.validator.validate(sample), { ok: true }, JSON.stringify(sample));
  }
  assert.equal(sampleFromSchema({ type: 'string', format: 'uuid' }), '3fa85f64-5717-4562-b3fc-2c963f66afa6');
  assert.equal(sampleFromSchema({ type: 'string', minLength: 10 }), 'stringxxxx');
  assert.equal(sampleFromSchema({ type: 'integer', exclusiveMinimum: 3, maximum: 9 }), 4);
  assert.deepEqual(sampleFromSchema({ type: 'array', minItems: 2, items: { const: 'x' } }), ['x', 'x']);
  assert.equal(sampleFromSchema({ oneOf: [{ type: 'null' }, { type: 'boolean' }] }), true);
});

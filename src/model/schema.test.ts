// Tests that the JSON Schema is well-formed and has every field of types.ts, by walking both side by side.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import ts from 'typescript';
import { DURATION_PATTERN } from '../lib/duration.ts';
import { configSchema } from './schema.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- schemas are walked dynamically
type Json = Record<string, any>;

const source = ts.createSourceFile('types.ts', readFileSync(new URL('./types.ts', import.meta.url), 'utf8'), ts.ScriptTarget.Latest);
const interfaces = new Map<string, ts.InterfaceDeclaration>();
source.forEachChild((n) => {
  if (ts.isInterfaceDeclaration(n)) interfaces.set(n.name.text, n);
});

/** Follows `$ref` to `$defs` so that the walk sees what a validator would. */
function deref(schema: Json, node: Json): Json {
  if (typeof node.$ref !== 'string') return node;
  const name = node.$ref.replace('#/$defs/', '');
  assert.ok(schema.$defs[name], `dangling $ref ${node.$ref}`);
  return schema.$defs[name];
}

/** Checks that each member of a TS type is a property of the schema node, recursing into nested objects and arrays. */
function walk(schema: Json, type: ts.TypeNode | undefined, node: Json, where: string, missing: string[]): void {
  if (!type) return;
  node = deref(schema, node);
  if (ts.isArrayTypeNode(type)) return walk(schema, type.elementType, node.items ?? {}, `${where}[]`, missing);
  if (ts.isTypeReferenceNode(type)) {
    const name = type.typeName.getText(source);
    if (name === 'Array' || name === 'Record') {
      const inner = type.typeArguments?.at(-1);
      return walk(schema, inner, (name === 'Array' ? node.items : node.additionalProperties) ?? {}, `${where}[]`, missing);
    }
    const decl = interfaces.get(name);
    if (decl) return walkMembers(schema, decl.members, node, where, missing);
    return;
  }
  if (ts.isTypeLiteralNode(type)) walkMembers(schema, type.members, node, where, missing);
}

function walkMembers(schema: Json, members: ts.NodeArray<ts.TypeElement>, node: Json, where: string, missing: string[]): void {
  // `{ min, max }` status ranges are written as 503 / "500-599" / "5xx", so the schema has a $def, not properties.
  if (node.anyOf && !node.properties) return;
  for (const m of members) {
    if (!ts.isPropertySignature(m)) continue;
    const name = m.name.getText(source);
    const prop = node.properties?.[name];
    if (!prop) {
      missing.push(`${where}.${name}`);
      continue;
    }
    assert.equal(typeof prop.description, 'string', `${where}.${name} has a description`);
    walk(schema, m.type, prop, `${where}.${name}`, missing);
  }
}

test('the schema is draft 2020-12 JSON with one if/then branch per kind', () => {
  const schema: Json = configSchema();
  const json: Json = JSON.parse(JSON.stringify(schema));
  assert.deepEqual(json, schema, 'survives a JSON round trip (no functions, undefined or Infinity)');
  assert.equal(json.$schema, 'https://json-schema.org/draft/2020-12/schema');
  const kinds = ['Gateway', 'Api', 'Backend', 'Product', 'ApiVersionSet', 'ApiPolicy', 'PolicyFragment', 'Mesh', 'MeshService', 'MeshRoute', 'AccessPolicy', 'NamedValue', 'AccessGrant', 'IdentityProvider', 'RoleBinding'];
  assert.deepEqual(json.properties.kind.enum, kinds);
  assert.deepEqual(
    json.allOf.map((b: Json) => b.if.properties.kind.const),
    kinds,
  );
  assert.equal(json.$defs.duration.anyOf[0].pattern, DURATION_PATTERN);
});

test('every field of the Gateway, Api and Backend types is in the schema, with a description', () => {
  const schema = configSchema() as Json;
  const missing: string[] = [];
  walkMembers(schema, interfaces.get('Metadata')!.members, schema.properties.metadata, 'metadata', missing);
  // (ApiPolicy's decoded sections are rebuilt into PolicyEntry lists after decoding; src/model/api-policy.test.ts covers them.)
  for (const [i, kind] of ['Gateway', 'Api', 'Backend', 'Product', 'ApiVersionSet'].entries()) {
    const spec = schema.allOf[i].then.properties.spec;
    walkMembers(schema, interfaces.get(`${kind}Spec`)!.members, spec, `${kind}.spec`, missing);
  }
  assert.deepEqual(missing, []);
});

test('the walk notices a missing field', () => {
  const schema = configSchema() as Json;
  delete schema.allOf[2].then.properties.spec.properties.retries.properties.backoff;
  delete schema.allOf[0].then.properties.spec.properties.limits.properties.http2.properties.maxResetsPerSecond;
  const missing: string[] = [];
  for (const [i, kind] of ['Gateway', 'Api', 'Backend'].entries()) {
    walkMembers(schema, interfaces.get(`${kind}Spec`)!.members, schema.allOf[i].then.properties.spec, `${kind}.spec`, missing);
  }
  assert.deepEqual(missing, ['Gateway.spec.limits.http2.maxResetsPerSecond', 'Backend.spec.retries.backoff']);
});

test('defaults are shown the way users write them', () => {
  const spec = (configSchema() as Json).allOf[2].then.properties.spec;
  assert.equal(spec.properties.timeouts.properties.connect.default, '5s');
  assert.deepEqual(spec.properties.healthCheck.properties.expectedStatuses.default, ['200-399']);
  assert.equal(spec.properties.circuitBreaker.properties.rules.items.properties.name.description, 'Rule name. Default: "rule-<index>".');
  const gw = (configSchema() as Json).allOf[0].then.properties.spec;
  assert.equal(gw.properties.limits.properties.maxBodySize.default, '10MiB');
  // url/endpoints/split/meshService depend on spec.type, so the decoder (validate-mesh.ts finishBackendShape) checks them.
  assert.equal(spec.properties.type.default, 'url');
});

test('the committed schema file is current (run scripts/write-schema.ts)', () => {
  const file = readFileSync(new URL('../../schema/lockgate.schema.json', import.meta.url), 'utf8');
  assert.deepEqual(JSON.parse(file), configSchema());
});

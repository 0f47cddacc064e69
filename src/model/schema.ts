// The published JSON Schema (draft 2020-12) for one config document, generated from the same field tables as decoding.
import { DURATION_PATTERN, SIZE_PATTERN, formatDuration, formatSize } from '../lib/duration.ts';
import type { Field } from './field.ts';
import { API_VERSION, KINDS, metadataFields } from './kinds.ts';

type Json = Record<string, unknown>;

/** A default in the form a user writes it: `10s` rather than 10000, `"500-599"` rather than `{min,max}`. */
export function sourceForm(field: Field, value: unknown): unknown {
  if (value === undefined) return undefined;
  switch (field.t) {
    case 'duration':
      return formatDuration(value as number);
    case 'size':
      return formatSize(value as number);
    case 'statusRange': {
      const r = value as { min: number; max: number };
      return r.min === r.max ? r.min : `${r.min}-${r.max}`;
    }
    case 'list':
      return (value as unknown[]).map((v) => sourceForm(field.items, v));
    default:
      return value;
  }
}

function describe(field: Field): string {
  return field.defaultText ? `${field.description} Default: ${field.defaultText}.` : field.description;
}

/** Named structures met while generating (`ref` fields): emitted once under `$defs`. */
const refDefs = new Map<string, () => Field>();

export function fieldSchema(field: Field): Json {
  const out: Json = { description: describe(field) };
  const dflt = sourceForm(field, field.default);
  switch (field.t) {
    case 'str':
      Object.assign(out, { type: 'string' }, field.format && { format: field.format }, field.pattern && { pattern: field.pattern });
      break;
    case 'int':
    case 'num':
      out.type = field.t === 'int' ? 'integer' : 'number';
      if (field.min !== undefined) out.minimum = field.min;
      if (field.max !== undefined) out.maximum = field.max;
      break;
    case 'bool':
      out.type = 'boolean';
      break;
    case 'duration':
    case 'size':
    case 'statusRange':
      out.$ref = `#/$defs/${field.t}`;
      break;
    case 'enum':
      Object.assign(out, { type: 'string', enum: [...field.values] });
      break;
    case 'list':
      Object.assign(out, { type: 'array', items: fieldSchema(field.items) }, field.minItems && { minItems: field.minItems });
      break;
    case 'any':
      break;
    case 'ref':
      refDefs.set(field.name, field.resolve);
      out.$ref = `#/$defs/${field.name}`;
      break;
    case 'dict':
      Object.assign(out, { type: 'object', additionalProperties: fieldSchema(field.values) });
      break;
    case 'alt':
      out.anyOf = [field.scalar, field.list, field.map].filter((f) => f !== undefined).map((f) => fieldSchema(f));
      break;
    case 'obj': {
      const properties: Json = {};
      for (const [name, f] of Object.entries(field.fields)) properties[name] = fieldSchema(f);
      const required = Object.entries(field.fields)
        .filter(([, f]) => f.required)
        .map(([n]) => n);
      Object.assign(out, { type: 'object', properties, additionalProperties: false }, required.length > 0 && { required });
      if (field.patternFields) out.patternProperties = { [field.patternFields.pattern]: fieldSchema(field.patternFields.field) };
      if (field.oneOf) out.oneOf = field.oneOf.map((n) => ({ required: [n] }));
      break;
    }
  }
  if (dflt !== undefined) out.default = dflt;
  return out;
}

const defs: Json = {
  duration: {
    description: 'A duration: "250ms", "10s", "5m", "1h", "1m30s", "1.5s", ISO 8601 "PT1H", or a number of milliseconds.',
    anyOf: [
      { type: 'string', pattern: DURATION_PATTERN },
      { type: 'number', minimum: 0 },
    ],
  },
  size: {
    description: 'A size: "512B", "64KiB", "1MiB" (1024-based), "10KB", "1MB" (1000-based), or a number of bytes.',
    anyOf: [
      { type: 'string', pattern: SIZE_PATTERN },
      { type: 'integer', minimum: 0 },
    ],
  },
  statusRange: {
    description: 'An HTTP status (503), a range ("500-599") or a class ("5xx").',
    anyOf: [
      { type: 'integer', minimum: 100, maximum: 599 },
      { type: 'string', pattern: '^(?:[1-5]xx|[1-5]\\d\\d-[1-5]\\d\\d)$' },
    ],
  },
};

export function configSchema(): Json {
  const kinds = Object.keys(KINDS);
  refDefs.clear();
  const schema: Json = {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://lockgate.dev/schema/v1alpha1/lockgate.schema.json',
    title: 'Lockgate config document',
    description: `One YAML document of a Lockgate config (${kinds.join(', ')}). Files hold several, separated by "---".`,
    type: 'object',
    required: ['apiVersion', 'kind', 'metadata'],
    additionalProperties: false,
    properties: {
      apiVersion: { description: 'Schema version.', const: API_VERSION },
      kind: { description: 'Resource kind.', enum: kinds },
      metadata: fieldSchema({ ...metadataFields }),
      spec: { description: 'The resource, by kind.', type: 'object' },
    },
    allOf: kinds.map((kind) => ({
      if: { properties: { kind: { const: kind } }, required: ['kind'] },
      then: {
        properties: { spec: fieldSchema(KINDS[kind].spec) },
        ...(KINDS[kind].specOptional ? {} : { required: ['spec'] }),
      },
    })),
    $defs: { ...defs },
  };
  // Named structures (which may contain themselves): each emitted once; emitting one may reveal more.
  const out = schema.$defs as Json;
  for (let added = true; added; ) {
    added = false;
    for (const [name, resolve] of [...refDefs]) {
      if (name in out) continue;
      out[name] = fieldSchema(resolve());
      added = true;
    }
  }
  return schema;
}

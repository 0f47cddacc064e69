// The schema engine behind validate-content, validate-parameters, validate-headers and mock-response: JSON Schema
// 2020-12 validators compiled once (patterns run by RE2, in linear time), parameter coercion, content-type lookup
// and the example a mocked response returns.
import { isIPv4, isIPv6 } from 'node:net';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ErrorObject, Format } from 'ajv/dist/2020.js';
import { compileLinear } from '../model/linear-regexp.ts';
import type { LinearRegExp } from '../model/linear-regexp.ts';
import type { JsonSchema, Operation, OperationMediaType, OperationParameter } from '../model/types.ts';

export interface ValidationError {
  /** JSON pointer to the offending value (`/lines/0/quantity`; `""` is the whole value). */
  path: string;
  message: string;
}

export type ValidationResult = { ok: true } | { ok: false; errors: ValidationError[] };

export interface SchemaValidator {
  validate(value: unknown): ValidationResult;
}

export type CompileResult = { ok: true; validator: SchemaValidator } | { ok: false; problems: string[] };

export interface SchemaCompiler {
  /** Compiles `schema` (draft 2020-12, or OpenAPI 3.0 converted by the import); problems instead of a throw. */
  compile(schema: JsonSchema): CompileResult;
}

export interface CompilerOptions {
  /** Most errors reported per value (default 20); validation still stops at nothing less than the first. */
  maxErrors?: number;
}

// ---------- regular expressions and formats ----------

/**
 * ajv's `code.regExp` hook: every `pattern` and `patternProperties` key is compiled by RE2 (linear time). ajv
 * shares compiled patterns by their `toString()`, so each must name its own source.
 */
const linearRegExp = Object.assign(
  (pattern: string): LinearRegExp & { toString(): string } => {
    const re = compileLinear(pattern);
    return { test: (s: string) => re.test(s), toString: () => `re2:${JSON.stringify(pattern)}` };
  },
  { code: 'compileLinear' },
);

const linear = (pattern: string) => {
  const re = compileLinear(pattern);
  return (s: string) => re.test(s);
};
const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const DATE = compileLinear('^(\\d{4})-(\\d{2})-(\\d{2})$');
const TIME = linear('^(?:[01]\\d|2[0-3]):[0-5]\\d:(?:[0-5]\\d|60)(?:\\.\\d+)?(?:[Zz]|[+-](?:[01]\\d|2[0-3]):[0-5]\\d)$');

function isDate(s: string): boolean {
  if (!DATE.test(s)) return false;
  const [y, m, d] = s.split('-').map(Number);
  if (m < 1 || m > 12 || d < 1 || d > DAYS[m - 1]) return false;
  return m !== 2 || d < 29 || (y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0));
}

function isHostname(s: string): boolean {
  const host = s.endsWith('.') ? s.slice(0, -1) : s;
  return host.length > 0 && host.length <= 253 && host.split('.').every((l) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l));
}

const INT32 = 2 ** 31;
/** The formats OpenAPI names (plus the common JSON Schema ones); unknown formats are annotations and pass. */
const FORMATS: Record<string, Format> = {
  date: isDate,
  time: TIME,
  'date-time': (s: string) => {
    const t = s.search(/[Tt ]/);
    return t === 10 && isDate(s.slice(0, 10)) && TIME(s.slice(11));
  },
  email: linear('^[^\\s@]+@[^\\s@.]+(?:\\.[^\\s@.]+)+$'),
  uuid: linear('^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$'),
  uri: (s: string) => /^[A-Za-z][A-Za-z0-9+.-]*:/.test(s) && URL.canParse(s),
  'uri-reference': (s: string) => !/\s/.test(s) && URL.canParse(s, 'http://x.invalid/'),
  hostname: isHostname,
  ipv4: (s: string) => isIPv4(s),
  ipv6: (s: string) => isIPv6(s),
  regex: (s: string) => {
    try {
      compileLinear(s);
      return true;
    } catch {
      return false;
    }
  },
  byte: linear('^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$'),
  binary: true,
  password: true,
  int32: { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -INT32 && n < INT32 },
  int64: { type: 'number', validate: (n: number) => Number.isInteger(n) },
  float: { type: 'number', validate: (n: number) => Math.abs(n) <= 3.4028234663852886e38 },
  double: { type: 'number', validate: () => true },
};

// ---------- validators ----------

function errorOf(e: ErrorObject): ValidationError {
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { path: e.instancePath, message: `missing required property ${JSON.stringify(p.missingProperty)}` };
    case 'additionalProperties':
      return { path: e.instancePath, message: `property ${JSON.stringify(p.additionalProperty)} is not allowed` };
    case 'unevaluatedProperties':
      return { path: e.instancePath, message: `property ${JSON.stringify(p.unevaluatedProperty)} is not allowed` };
    case 'enum':
      return { path: e.instancePath, message: `must be one of ${JSON.stringify(p.allowedValues)}` };
    default:
      return { path: e.instancePath, message: e.message ?? `fails ${e.keyword}` };
  }
}

/** A compiler with its own ajv instance: compile everything of one config with one, and drop it with the config. */
export function createSchemaCompiler(options: CompilerOptions = {}): SchemaCompiler {
  const maxErrors = Math.max(1, options.maxErrors ?? 20);
  const ajv = new Ajv2020({
    allErrors: true,
    // OpenAPI schemas carry annotations ajv does not know (readOnly is known; x-* and friends are dropped on import).
    strictSchema: false,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    logger: false,
    formats: FORMATS,
    code: { regExp: linearRegExp },
  });
  return {
    compile(schema) {
      let fn: ReturnType<typeof ajv.compile>;
      try {
        fn = ajv.compile(schema);
      } catch (err) {
        return { ok: false, problems: [(err as Error).message] };
      }
      return {
        ok: true,
        validator: {
          validate(value) {
            if (fn(value)) return { ok: true };
            return { ok: false, errors: (fn.errors ?? []).slice(0, maxErrors).map(errorOf) };
          },
        },
      };
    },
  };
}

/** One schema, one validator (a fresh ajv instance: prefer createSchemaCompiler for many). */
export function compileSchema(schema: JsonSchema, options?: CompilerOptions): CompileResult {
  return createSchemaCompiler(options).compile(schema);
}

// ---------- schema reading helpers ----------

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Follows `#/$defs/Name` against the bundle root; undefined when it does not resolve. */
function deref(schema: unknown, root: unknown): unknown {
  let s = schema;
  for (let hops = 0; isObj(s) && typeof s.$ref === 'string' && hops < 32; hops++) {
    const m = /^#\/\$defs\/([^/]+)$/.exec(s.$ref);
    const defs = isObj(root) ? root.$defs : undefined;
    if (!m || !isObj(defs)) return undefined;
    s = defs[decodeURIComponent(m[1]).replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return s;
}

/** The JSON types a schema admits, looking through `$ref`, allOf, anyOf and oneOf; empty when it does not say. */
function typesOf(schema: unknown, root: unknown, depth = 0): string[] {
  const s = deref(schema, root);
  if (!isObj(s) || depth > 8) return [];
  if (typeof s.type === 'string') return [s.type];
  if (Array.isArray(s.type)) return s.type.filter((t): t is string => typeof t === 'string');
  const out: string[] = [];
  for (const k of ['allOf', 'anyOf', 'oneOf']) {
    if (Array.isArray(s[k])) for (const sub of s[k] as unknown[]) for (const t of typesOf(sub, root, depth + 1)) if (!out.includes(t)) out.push(t);
  }
  if (out.length === 0 && isObj(s.properties)) out.push('object');
  if (out.length === 0 && s.items !== undefined) out.push('array');
  return out;
}

function subschema(schema: unknown, root: unknown, key: 'items' | 'properties', name?: string): unknown {
  const s = deref(schema, root);
  if (!isObj(s)) return undefined;
  if (key === 'items') return s.items;
  const props = s.properties;
  return isObj(props) && name !== undefined && Object.hasOwn(props, name) ? props[name] : undefined;
}

// ---------- parameters ----------

const INTEGER = /^-?\d+$/;
const NUMBER = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function coerceScalar(s: string, types: string[]): unknown {
  for (const t of types) {
    if (t === 'integer' && INTEGER.test(s)) return Number(s);
    if (t === 'number' && NUMBER.test(s)) return Number(s);
    if (t === 'boolean' && (s === 'true' || s === 'false')) return s === 'true';
    if (t === 'null' && (s === 'null' || (s === '' && !types.includes('string')))) return null;
  }
  return s;
}

/** OpenAPI's defaults: `form` (exploded) in query and cookie, `simple` (not exploded) in path and header. */
function styleOf(param: OperationParameter): { style: string; explode: boolean } {
  const style = param.style ?? (param.in === 'query' || param.in === 'cookie' ? 'form' : 'simple');
  return { style, explode: param.explode ?? style === 'form' };
}

/** The value with a `label` (`.a.b`) or `matrix` (`;id=1`, exploded `;id=1;id=2`) prefix removed. */
function unprefix(name: string, style: string, explode: boolean, s: string): string {
  if (style === 'label') return s.startsWith('.') ? s.slice(1) : s;
  if (style !== 'matrix') return s;
  const prefix = `;${name}=`;
  if (explode && s.startsWith(prefix)) return s.split(prefix).slice(1).join(',');
  if (s.startsWith(prefix)) return s.slice(prefix.length);
  return s.startsWith(';') ? s.slice(1) : s;
}

function separator(style: string, explode: boolean): string {
  if (style === 'spaceDelimited') return ' ';
  if (style === 'pipeDelimited') return '|';
  if (style === 'label' && explode) return '.';
  return ',';
}

/**
 * A parameter's raw value(s) (already percent-decoded; a repeated query parameter as an array) converted to what
 * its schema describes, following OpenAPI's styles: `"42"` → 42; arrays from repeated query parameters (form,
 * exploded: the default), `"a,b"` (form unexploded, simple, label), `"a|b"` (pipeDelimited), `"a b"`
 * (spaceDelimited), `";id=1;id=2"` (matrix); objects from `"role,admin,id,7"` or, exploded, `"role=admin,id=7"`.
 * A parameter with a JSON `content` is parsed as JSON. What does not convert comes back as it was, for the
 * validator to reject. Exploded query objects and `deepObject` span several query keys: they are left to the caller.
 */
export function coerceParameter(param: OperationParameter, raw: string | readonly string[] | undefined): unknown {
  if (raw === undefined) return undefined;
  const root = param.schema;
  const first = typeof raw === 'string' ? raw : raw[0];
  if (first === undefined) return undefined;
  if (param.contentType !== undefined) {
    if (!/json/i.test(param.contentType)) return first;
    try {
      return JSON.parse(first) as unknown;
    } catch {
      return first;
    }
  }
  const { style, explode } = styleOf(param);
  const types = typesOf(root, root);
  if (types.includes('array')) {
    const list = typeof raw === 'string' ? [raw] : [...raw];
    const parts =
      style === 'form' && explode
        ? list
        : list.flatMap((r) => split(unprefix(param.name, style, explode, r), separator(style, explode)));
    const itemTypes = typesOf(subschema(root, root, 'items'), root);
    return parts.map((p) => coerceScalar(p, itemTypes));
  }
  if (types.includes('object')) {
    if (style === 'deepObject' || (style === 'form' && explode)) return first;
    const out: Obj = {};
    const set = (k: string, v: string) => {
      const value = coerceScalar(v, typesOf(subschema(root, root, 'properties', k), root));
      Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
    };
    const parts = split(unprefix(param.name, style, explode, first), separator(style, explode));
    if (explode) {
      for (const part of parts) {
        const eq = part.indexOf('=');
        if (eq > 0) set(part.slice(0, eq), part.slice(eq + 1));
      }
    } else {
      for (let i = 0; i + 1 < parts.length; i += 2) set(parts[i], parts[i + 1]);
    }
    return Object.keys(out).length > 0 ? out : first;
  }
  return coerceScalar(unprefix(param.name, style, explode, first), types);
}

function split(s: string, sep: string): string[] {
  return s === '' ? [] : s.split(sep);
}

// ---------- content types ----------

function mediaType(value: string): string {
  return value.split(';')[0].trim().toLowerCase();
}

/**
 * The entry of `content` (keys as in OpenAPI: `application/json`, `application/*`, `*\/*`) for a Content-Type:
 * the exact media type (parameters such as charset ignored), else `type/*`, else `*\/*`. Without a content type,
 * the first entry (as mock-response does).
 */
export function findContent<T>(content: Record<string, T> | undefined, contentType?: string): { mediaType: string; value: T } | undefined {
  if (!content) return undefined;
  const keys = Object.keys(content);
  if (contentType === undefined) return keys.length > 0 ? { mediaType: keys[0], value: content[keys[0]] } : undefined;
  const want = mediaType(contentType);
  const [type] = want.split('/');
  const pick = (match: (k: string) => boolean) => {
    const key = keys.find((k) => match(mediaType(k)));
    return key === undefined ? undefined : { mediaType: key, value: content[key] };
  };
  return pick((k) => k === want) ?? pick((k) => k === `${type}/*`) ?? pick((k) => k === '*/*');
}

// ---------- examples (mock-response) ----------

export interface MockBody {
  /** The media type the example is for (the OpenAPI key, e.g. `application/json`). */
  contentType: string;
  value: unknown;
  /** `example`: written in the API definition; `schema`: generated from the response schema. */
  from: 'example' | 'schema';
}

/**
 * What mock-response returns for `status` (default 200; else the `4XX` class, else `default`) and `contentType`
 * (default: the first one the response declares), as API Management does: the first example from the API
 * definition, else a sample generated from the schema, else nothing (undefined: an empty body).
 */
export function exampleFor(operation: Operation, status = 200, contentType?: string): MockBody | undefined {
  const responses = operation.responses ?? {};
  const response = responses[String(status)] ?? responses[`${Math.floor(status / 100)}XX`] ?? responses.default;
  const found = findContent<OperationMediaType>(response?.content, contentType);
  if (!found) return undefined;
  const media = found.value;
  if (Object.hasOwn(media, 'example')) return { contentType: found.mediaType, value: media.example, from: 'example' };
  for (const ex of Object.values(media.examples ?? {})) {
    if (Object.hasOwn(ex, 'value')) return { contentType: found.mediaType, value: ex.value, from: 'example' };
  }
  if (media.schema === undefined) return undefined;
  const value = sampleFromSchema(media.schema);
  return value === undefined ? undefined : { contentType: found.mediaType, value, from: 'schema' };
}

const STRING_SAMPLES: Record<string, string> = {
  date: '2024-01-01',
  'date-time': '2024-01-01T00:00:00Z',
  time: '00:00:00Z',
  email: 'user@example.com',
  uuid: '3fa85f64-5717-4562-b3fc-2c963f66afa6',
  uri: 'https://example.com/',
  'uri-reference': '/',
  hostname: 'example.com',
  ipv4: '192.0.2.1',
  ipv6: '2001:db8::1',
  byte: 'U3dhZ2dlcg==',
};

/**
 * A value that looks like the schema describes: its `const`, first `examples` entry, `default` or first `enum`
 * value, else one built from types and formats (objects with every property, arrays of one item). A recursive
 * schema stops where it would repeat (an optional property is left out, an array is left empty).
 */
export function sampleFromSchema(schema: JsonSchema): unknown {
  return sample(schema, schema, [], 0);
}

function sample(schema: unknown, root: unknown, active: string[], depth: number): unknown {
  if (schema === true) return null;
  if (!isObj(schema) || depth > 12) return undefined;
  if (typeof schema.$ref === 'string') {
    if (active.includes(schema.$ref)) return undefined;
    const target = deref(schema, root);
    const own = sampleOwn(schema);
    return own !== undefined ? own : sample(target, root, [...active, schema.$ref], depth + 1);
  }
  const own = sampleOwn(schema);
  if (own !== undefined) return own;
  if (Array.isArray(schema.allOf)) {
    const parts = (schema.allOf as unknown[]).map((s) => sample(s, root, active, depth + 1));
    const rest = sample({ ...schema, allOf: undefined }, root, active, depth + 1);
    const all = [...parts, rest].filter((p) => p !== undefined && p !== null);
    if (all.every(isObj)) return all.length > 0 ? Object.assign({}, ...all) : undefined;
    return all[0];
  }
  for (const k of ['oneOf', 'anyOf']) {
    if (!Array.isArray(schema[k])) continue;
    for (const branch of schema[k] as unknown[]) {
      const b = deref(branch, root);
      if (isObj(b) && b.type === 'null') continue;
      const v = sample(branch, root, active, depth + 1);
      if (v !== undefined) return v;
    }
  }
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  const type = types.find((t) => t !== 'null') ?? (isObj(schema.properties) ? 'object' : schema.items !== undefined ? 'array' : types[0]);
  switch (type) {
    case 'object': {
      const out: Obj = {};
      for (const [name, sub] of Object.entries(isObj(schema.properties) ? schema.properties : {})) {
        const v = sample(sub, root, active, depth + 1);
        if (v !== undefined) Object.defineProperty(out, name, { value: v, enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    case 'array': {
      if (Array.isArray(schema.prefixItems)) return (schema.prefixItems as unknown[]).map((s) => sample(s, root, active, depth + 1) ?? null);
      const item = schema.items === undefined ? undefined : sample(schema.items, root, active, depth + 1);
      if (item === undefined) return [];
      const n = Math.min(Math.max(1, typeof schema.minItems === 'number' ? schema.minItems : 1), 10);
      return Array.from({ length: n }, () => structuredClone(item));
    }
    case 'string': {
      let s = (typeof schema.format === 'string' && STRING_SAMPLES[schema.format]) || 'string';
      if (typeof schema.minLength === 'number' && s.length < schema.minLength) s = s.padEnd(schema.minLength, 'x');
      if (typeof schema.maxLength === 'number' && s.length > schema.maxLength) s = s.slice(0, schema.maxLength);
      return s;
    }
    case 'integer':
    case 'number': {
      let n = 0;
      if (typeof schema.minimum === 'number') n = schema.minimum;
      else if (typeof schema.exclusiveMinimum === 'number') n = type === 'integer' ? Math.floor(schema.exclusiveMinimum) + 1 : schema.exclusiveMinimum + 1;
      if (typeof schema.maximum === 'number' && n > schema.maximum) n = schema.maximum;
      return type === 'integer' ? Math.ceil(n) : n;
    }
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return undefined;
  }
}

function sampleOwn(schema: Obj): unknown {
  if (Object.hasOwn(schema, 'const')) return schema.const;
  if (Array.isArray(schema.examples) && schema.examples.length > 0) return schema.examples[0];
  if (Object.hasOwn(schema, 'default')) return schema.default;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) return schema.enum[0];
  return undefined;
}

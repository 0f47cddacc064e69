// What the validation policies (validate-content, validate-parameters, validate-headers, validate-status-code) share:
// actions, API Management's error records and failure, the additional-properties override, JSON positions,
// reading a request body no further than a limit, and checking one parameter's values.
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from 'node:zlib';
import type { JsonSchema, Operation, OperationParameter, OperationResponse } from '../model/types.ts';
import { coerceParameter, type SchemaValidator, type ValidationError } from '../policy/schema-validator.ts';
import { PolicyError, errorResponse, getHeader, type PolicyContext } from './policy-context.ts';
import type { CompileEnv } from './policy-pipeline.ts';
import { compileValue, isExpression } from './policy-values.ts';

// ---------- actions ----------

export type Action = 'ignore' | 'detect' | 'prevent';
export type ActionFn = ((pc: PolicyContext) => Action) & { literal: Action | null };

const ACTIONS: readonly string[] = ['ignore', 'detect', 'prevent'];

/** A literal action, or an expression that must give one when it runs. */
export function compileAction(value: unknown, env: CompileEnv, what: string): ActionFn {
  const v = String(value);
  if (!isExpression(v)) {
    if (!ACTIONS.includes(v)) throw new Error(`${what}: expected ignore, prevent or detect, got ${JSON.stringify(v)}`);
    const a = v as Action;
    return Object.assign(() => a, { literal: a });
  }
  const fn = compileValue(v, env);
  return Object.assign(
    (pc: PolicyContext): Action => {
      const got = fn(pc);
      if (ACTIONS.includes(got)) return got as Action;
      throw Object.assign(new Error(`${what} gave ${JSON.stringify(got)}, not ignore, prevent or detect`), { reason: 'ExpressionValueEvaluationFailure' });
    },
    { literal: null },
  );
}

// ---------- error records and the outcome ----------

/** One validation error as API Management logs it in the errors variable. */
export interface ValidationRecord {
  Name: string;
  Type: string;
  ValidationRule: string;
  Details: string;
  Action: 'detect' | 'prevent';
}

export interface Finding {
  record: ValidationRecord;
  /** What the client sees under prevent (API Management never shows response-side details). */
  publicMessage: string;
}

/** API Management's public text for every response-side (and internal) validation error. */
export const INTERNAL_ERROR = 'The request could not be processed due to an internal error. Contact the API owner.';

/** Lists this module created in context.Variables: several policies naming one variable add to one list. */
const ours = new WeakSet<object>();

export function finding(action: Action, name: string, type: string, rule: string, details: string, publicMessage: string, out: Finding[]): void {
  if (action === 'ignore') return;
  out.push({ record: { Name: name, Type: type, ValidationRule: rule, Details: details, Action: action }, publicMessage });
}

/**
 * Ends a validation policy's run: the errors go to the errors variable (when named; an empty list when there are
 * none), and the first `prevent` error fails the request as API Management does: 400 inbound, 502 outbound and
 * onError, LastError.Reason `Bad request` / `Response not allowed`, LastError.Message the details.
 */
export function conclude(pc: PolicyContext, policy: string, variable: string | undefined, findings: Finding[], request: boolean): void {
  if (variable !== undefined) {
    const prev = pc.variables.get(variable);
    const records = findings.map((f) => f.record);
    if (Array.isArray(prev) && ours.has(prev)) prev.push(...records);
    else {
      ours.add(records);
      pc.variables.set(variable, records);
    }
  }
  const stop = findings.find((f) => f.record.Action === 'prevent');
  if (stop === undefined) return;
  const status = request ? 400 : 502;
  throw new PolicyError(policy, request ? 'Bad request' : 'Response not allowed', stop.record.Details, errorResponse(status, stop.publicMessage));
}

// ---------- the operation's definition ----------

/** The response definition for a status: the exact one, else its class (`4XX`), else `default`. */
export function responseFor(op: Operation | null, status: number): OperationResponse | undefined {
  const r = op?.responses;
  if (r === undefined) return undefined;
  return r[String(status)] ?? r[`${Math.floor(status / 100)}XX`] ?? r[`${Math.floor(status / 100)}xx`] ?? r.default;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `#/$defs/Pet` at the root → `Pet` (API Management names the definition in its messages). */
export function definitionName(schema: JsonSchema | undefined, fallback: string): string {
  if (isObj(schema) && typeof schema.$ref === 'string') {
    const m = /^#\/\$defs\/([^/]+)$/.exec(schema.$ref);
    if (m) return decodeURIComponent(m[1]).replace(/~1/g, '/').replace(/~0/g, '~');
  }
  return fallback;
}

function deref(schema: unknown, root: unknown): unknown {
  let s = schema;
  for (let hops = 0; isObj(s) && typeof s.$ref === 'string' && hops < 32; hops++) {
    const m = /^#\/\$defs\/([^/]+)$/.exec(s.$ref);
    const defs = isObj(root) ? root.$defs : undefined;
    if (!m || !isObj(defs)) return s;
    s = defs[decodeURIComponent(m[1]).replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return s;
}

/** Whether a parameter's schema admits an array (then repeated values are its items, not an error). */
export function admitsArray(schema: JsonSchema | undefined, root: unknown = schema, depth = 0): boolean {
  const s = deref(schema, root);
  if (!isObj(s) || depth > 8) return false;
  if (s.type === 'array' || (Array.isArray(s.type) && s.type.includes('array'))) return true;
  if (s.type === undefined && s.items !== undefined) return true;
  for (const k of ['allOf', 'anyOf', 'oneOf']) {
    if (Array.isArray(s[k]) && (s[k] as unknown[]).some((b) => admitsArray(b as JsonSchema, root, depth + 1))) return true;
  }
  return false;
}

/** Declared property names of an object schema (through $ref and allOf), for exploded query objects. */
export function propertyNames(schema: JsonSchema | undefined, root: unknown = schema, depth = 0): string[] {
  const s = deref(schema, root);
  if (!isObj(s) || depth > 8) return [];
  const out = isObj(s.properties) ? Object.keys(s.properties) : [];
  for (const k of ['allOf', 'anyOf', 'oneOf']) {
    if (Array.isArray(s[k])) for (const b of s[k] as unknown[]) out.push(...propertyNames(b as JsonSchema, root, depth + 1));
  }
  return out;
}

/** A property's schema inside an object schema (through $ref and allOf), carrying the root's $defs; undefined when unlisted. */
export function propertySchema(schema: JsonSchema | undefined, name: string, root: unknown = schema, depth = 0): JsonSchema | undefined {
  const s = deref(schema, root);
  if (!isObj(s) || depth > 8) return undefined;
  if (isObj(s.properties) && Object.hasOwn(s.properties, name)) {
    const sub = s.properties[name];
    const defs = isObj(root) ? root.$defs : undefined;
    return isObj(sub) && defs !== undefined ? { ...sub, $defs: defs } : (sub as JsonSchema);
  }
  for (const k of ['allOf', 'anyOf', 'oneOf']) {
    if (!Array.isArray(s[k])) continue;
    for (const b of s[k] as unknown[]) {
      const found = propertySchema(b as JsonSchema, name, root, depth + 1);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

// ---------- allow-additional-properties ----------

const SINGLE = ['items', 'additionalItems', 'contains', 'propertyNames', 'unevaluatedItems'];
const MAP = ['properties', 'patternProperties'];
/** Keywords whose subschemas apply to the same value (its properties are closed by the schema around them). */
const SAME_SINGLE = ['not', 'if', 'then', 'else'];
const SAME_LIST = ['allOf', 'anyOf', 'oneOf'];

/**
 * The schema with API Management's allow-additional-properties override applied. `true`: `additionalProperties:
 * false` (and `unevaluatedProperties: false`) are dropped. `false`: every object value admits only the properties
 * its schema lists — `unevaluatedProperties: false` at each value position, so that properties listed by `allOf`
 * branches and `$ref`s still count (closing each branch on its own would reject every composed object).
 */
export function withAdditionalProperties(schema: JsonSchema, allow: boolean): JsonSchema {
  if (allow) return openAll(schema);
  const root = closed(schema);
  if (isObj(root) && isObj(root.$defs)) root.$defs = mapValues(root.$defs, open);
  return root;
}

function mapValues(o: Obj, f: (s: unknown) => unknown): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) Object.defineProperty(out, k, { value: f(v), enumerable: true, writable: true, configurable: true });
  return out;
}

function openAll(s: unknown): JsonSchema {
  if (Array.isArray(s)) return s.map(openAll) as unknown as JsonSchema;
  if (!isObj(s)) return s as JsonSchema;
  const out: Obj = {};
  for (const [k, v] of Object.entries(s)) {
    if ((k === 'additionalProperties' || k === 'unevaluatedProperties') && v === false) continue;
    // enum, const, default and examples hold values, not schemas: copied as they are.
    const value = k === 'enum' || k === 'const' || k === 'default' || k === 'examples' ? v : openAll(v);
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function couldBeObject(s: Obj): boolean {
  return s.type === undefined || s.type === 'object' || (Array.isArray(s.type) && s.type.includes('object'));
}

/** A schema at a value position: it lists the only properties the value may have. */
function closed(s: unknown): JsonSchema {
  const o = open(s);
  if (!isObj(o) || !couldBeObject(o)) return o as JsonSchema;
  o.unevaluatedProperties = false;
  return o;
}

/** A schema whose value is closed (or not) by the schema around it: its own property values are closed. */
function open(s: unknown): JsonSchema {
  if (!isObj(s)) return s as JsonSchema;
  const out: Obj = { ...s };
  // Forced off: extra properties are never evaluated, so the enclosing unevaluatedProperties rejects them.
  if (out.additionalProperties !== false) delete out.additionalProperties;
  if (out.unevaluatedProperties !== false) delete out.unevaluatedProperties;
  for (const k of SINGLE) if (k in out) out[k] = Array.isArray(out[k]) ? (out[k] as unknown[]).map(closed) : closed(out[k]);
  if (Array.isArray(out.prefixItems)) out.prefixItems = out.prefixItems.map(closed);
  for (const k of MAP) if (isObj(out[k])) out[k] = mapValues(out[k] as Obj, closed);
  for (const k of SAME_SINGLE) if (k in out) out[k] = open(out[k]);
  for (const k of SAME_LIST) if (Array.isArray(out[k])) out[k] = (out[k] as unknown[]).map(open);
  if (isObj(out.dependentSchemas)) out.dependentSchemas = mapValues(out.dependentSchemas, open);
  return out;
}

// ---------- messages ----------

/** `/lines/0/quantity` → `lines[0].quantity`. */
export function dottedPath(pointer: string): string {
  if (pointer === '') return '';
  let out = '';
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** One validator error as a sentence: `name: must be string.` (`Must be object.` for the value itself). */
export function describe(e: ValidationError): string {
  const path = dottedPath(e.path);
  return path === '' ? `${e.message[0].toUpperCase()}${e.message.slice(1)}.` : `${path}: ${e.message}.`;
}

/** 1-based line and position (column) of the value at a JSON pointer in valid JSON text; 1,1 when not found. */
export function locate(text: string, pointer: string): { line: number; position: number } {
  const segs = pointer === '' ? [] : pointer.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  let i = 0;
  const ws = () => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r' || text[i] === '\uFEFF')) i++;
  };
  const skipString = () => {
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
  };
  const skipValue = () => {
    ws();
    if (text[i] === '"') return skipString();
    if (text[i] !== '{' && text[i] !== '[') {
      while (i < text.length && !',]} \t\r\n'.includes(text[i])) i++;
      return;
    }
    let depth = 0;
    do {
      const c = text[i];
      if (c === '"') {
        skipString();
        continue;
      }
      if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') depth--;
      i++;
    } while (depth > 0 && i < text.length);
  };
  ws();
  let found = true;
  for (const seg of segs) {
    ws();
    if (text[i] === '{') {
      i++;
      let hit = false;
      for (;;) {
        ws();
        if (text[i] !== '"') break;
        const start = i;
        skipString();
        let key: string;
        try {
          key = JSON.parse(text.slice(start, i)) as string;
        } catch {
          break;
        }
        ws();
        i++; // ':'
        ws();
        if (key === seg) {
          hit = true;
          break;
        }
        skipValue();
        ws();
        if (text[i] === ',') i++;
      }
      if (!hit) found = false;
    } else if (text[i] === '[') {
      i++;
      const want = Number(seg);
      for (let n = 0; n < want; n++) {
        skipValue();
        ws();
        if (text[i] !== ',') {
          found = false;
          break;
        }
        i++;
      }
      ws();
    } else found = false;
    if (!found) break;
  }
  if (!found) i = 0;
  let line = 1;
  let lineStart = 0;
  for (let k = 0; k < i && k < text.length; k++) {
    if (text.charCodeAt(k) === 10) {
      line++;
      lineStart = k + 1;
    }
  }
  return { line, position: i - lineStart + 1 };
}

// ---------- bodies ----------

export type BodyRead = { kind: 'none' } | { kind: 'body'; bytes: Buffer } | { kind: 'tooLarge'; size: number };

/** Content-Length when it is one number; -1 otherwise. */
export function contentLength(headers: string[]): number {
  const v = getHeader(headers, 'content-length');
  return v !== undefined && /^\d+$/.test(v.trim()) ? Number(v.trim()) : -1;
}

async function* stitched(head: Buffer[], it: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  try {
    for (const c of head) yield c;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield r.value;
    }
  } finally {
    await it.return?.();
  }
}

/**
 * The request body, read no further than `max` bytes. Larger (by Content-Length, or counted as it arrives): what was
 * read is put back in front of the rest, which streams on to the backend untouched. A body no larger than `max`
 * becomes `pc.req.body` (forwarded with its exact length).
 */
export async function readRequestBody(pc: PolicyContext, max: number): Promise<BodyRead> {
  const req = pc.req;
  if (req.body !== null) return req.body.length > max ? { kind: 'tooLarge', size: req.body.length } : { kind: 'body', bytes: req.body };
  const stream = req.stream;
  if (stream === null) return { kind: 'none' };
  const declared = contentLength(req.headers);
  if (declared > max) return { kind: 'tooLarge', size: declared };
  const it = stream[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  for (;;) {
    const r = await it.next();
    if (r.done) break;
    chunks.push(r.value);
    size += r.value.length;
    if (size > max) {
      req.stream = stitched(chunks, it);
      return { kind: 'tooLarge', size };
    }
  }
  const bytes = Buffer.concat(chunks, size);
  req.body = bytes;
  req.stream = null;
  return { kind: 'body', bytes };
}

export type Decoded = { ok: true; bytes: Buffer } | { ok: false; tooLarge: true; size: number } | { ok: false; tooLarge: false; message: string };

/** The body with its Content-Encoding undone (gzip, deflate, br), never more than `max` bytes. */
export function decodeBody(bytes: Buffer, encoding: string | undefined, max: number): Decoded {
  const enc = (encoding ?? '').trim().toLowerCase();
  if (enc === '' || enc === 'identity') return { ok: true, bytes };
  const opts = { maxOutputLength: max + 1 };
  try {
    let out: Buffer;
    if (enc === 'gzip' || enc === 'x-gzip') out = gunzipSync(bytes, opts);
    else if (enc === 'br') out = brotliDecompressSync(bytes, opts);
    else if (enc === 'deflate') {
      try {
        out = inflateSync(bytes, opts);
      } catch (err) {
        if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw err;
        out = inflateRawSync(bytes, opts);
      }
    } else return { ok: false, tooLarge: false, message: `Content-Encoding ${enc} is not supported.` };
    return out.length > max ? { ok: false, tooLarge: true, size: out.length } : { ok: true, bytes: out };
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') return { ok: false, tooLarge: true, size: max + 1 };
    return { ok: false, tooLarge: false, message: `The ${enc} body cannot be decompressed: ${(err as Error).message}.` };
  }
}

// ---------- parameters and headers ----------

export type ParamProblem = { kind: 'multiple' } | { kind: 'parse' | 'conform'; message: string };

const TYPE_ERROR = /^must be (integer|number|boolean|null|array|object)\b/;

/**
 * One parameter's raw values (percent-decoded; several for a repeated query parameter or header) against its
 * schema: several values where the schema takes one, a value that cannot be read as the schema's type, or one
 * that does not conform. Null when it is fine.
 */
export function checkParameter(param: OperationParameter, raws: readonly string[], validator: SchemaValidator | undefined): ParamProblem | null {
  if (raws.length > 1 && !admitsArray(param.schema)) return { kind: 'multiple' };
  if (validator === undefined) return null;
  const value = coerceParameter(param, raws.length === 1 ? raws[0] : raws);
  const r = validator.validate(value);
  if (r.ok) return null;
  const message = r.errors.map(describe).join(' ');
  const unreadable = typeof value === 'string' && r.errors.some((e) => e.path === '' && TYPE_ERROR.test(e.message));
  return { kind: unreadable ? 'parse' : 'conform', message };
}

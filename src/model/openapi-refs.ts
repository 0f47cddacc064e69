// `$ref` resolution across OpenAPI files, and schema bundling: every referenced schema becomes one `$defs` entry (so
// recursive schemas stay finite) and OpenAPI 3.0 schemas are rewritten as JSON Schema 2020-12.
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { checkLinearPattern } from './linear-regexp.ts';
import { URL_PATTERN, parseSource, pointerSegment, problemAt } from './openapi-source.ts';
import type { SourceDoc, TextLoader } from './openapi-source.ts';
import { didYouMean } from './suggest.ts';
import type { JsonSchema, Problem } from './types.ts';

/** A value inside a source document: where it is (pointer, container and key) for problems and relative `$ref`s. */
export interface Loc {
  src: SourceDoc;
  value: unknown;
  /** JSON pointer inside `src` (`""` for the root). */
  pointer: string;
  parent?: unknown;
  key?: string | number;
}

interface SchemaDef {
  name: string;
  schema: JsonSchema;
  /** Names of the defs this one refers to: anywhere, and without descending into a property or item. */
  deps: Set<string>;
  inPlace: Set<string>;
  /** Where the def's schema is, for problems about it. */
  at: Loc;
}

interface DepSink {
  all: Set<string>;
  inPlace: Set<string>;
}

export interface RefState {
  load: TextLoader;
  /** Loaded documents by id; null when the document could not be read or parsed. */
  docs: Map<string, SourceDoc | null>;
  loadErrors: Map<string, string>;
  problems: Problem[];
  dialect: '3.0' | '3.1';
  /** Id and display name of the root document (other files are named relative to it). */
  rootId: string;
  rootFile: string;
  defs: Map<string, SchemaDef>;
  defsByName: Map<string, SchemaDef>;
}

export function newRefState(load: TextLoader, rootId: string, rootFile: string): RefState {
  return {
    load,
    docs: new Map(),
    loadErrors: new Map(),
    problems: [],
    dialect: '3.0',
    rootId,
    rootFile,
    defs: new Map(),
    defsByName: new Map(),
  };
}

export const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export function child(loc: Loc, key: string | number): Loc {
  const v = loc.value as Record<string | number, unknown>;
  const value = v !== null && typeof v === 'object' && Object.hasOwn(v, key) ? v[key] : undefined;
  return { src: loc.src, value, pointer: `${loc.pointer}/${pointerSegment(key)}`, parent: loc.value, key };
}

/** A problem at `loc` (its key with `at: 'key'`). */
export function report(st: RefState, loc: Loc, message: string, at: 'key' | 'value' = 'value'): void {
  const container = loc.parent ?? loc.value;
  const key = loc.parent === undefined ? undefined : loc.key;
  st.problems.push(problemAt(loc.src, container, key, loc.pointer ? `#${loc.pointer}` : '', message, at));
}

function displayName(st: RefState, id: string): string {
  if (URL_PATTERN.test(id) || URL_PATTERN.test(st.rootId)) return id;
  const rel = relative(dirname(st.rootId), id);
  return isAbsolute(rel) ? rel : join(dirname(st.rootFile), rel);
}

/** Reads and parses a document once; undefined (with the reason in `loadErrors`) when it cannot be. */
export function loadDoc(st: RefState, id: string): SourceDoc | undefined {
  if (st.docs.has(id)) return st.docs.get(id) ?? undefined;
  const got = st.load(id);
  let doc: SourceDoc | undefined;
  if ('error' in got) st.loadErrors.set(id, got.error);
  else {
    const before = st.problems.length;
    doc = parseSource(got.text, id, id === st.rootId ? st.rootFile : displayName(st, id), st.problems);
    if (!doc && st.problems.length > before) st.loadErrors.set(id, 'it has YAML errors');
  }
  st.docs.set(id, doc ?? null);
  return doc;
}

function resolveId(base: string, docPart: string): string {
  if (URL_PATTERN.test(docPart)) return docPart;
  if (URL_PATTERN.test(base)) return URL.canParse(docPart, base) ? new URL(docPart, base).href : docPart;
  let path = docPart;
  try {
    path = decodeURIComponent(docPart);
  } catch {
    // Not percent-encoded: use as written.
  }
  return resolve(dirname(base), path);
}

/** The target of `holder.$ref`; undefined (and a problem at the `$ref`) when it does not resolve. */
export function followRef(st: RefState, holder: Loc): Loc | undefined {
  const refLoc = child(holder, '$ref');
  const ref = refLoc.value;
  if (typeof ref !== 'string') {
    report(st, refLoc, `$ref must be a string, got ${JSON.stringify(ref)}`);
    return undefined;
  }
  const hash = ref.indexOf('#');
  const docPart = hash < 0 ? ref : ref.slice(0, hash);
  const fragment = hash < 0 ? '' : ref.slice(hash + 1);
  let src = holder.src;
  if (docPart) {
    const id = resolveId(holder.src.id, docPart);
    const doc = loadDoc(st, id);
    if (!doc) {
      report(st, refLoc, `cannot resolve $ref ${JSON.stringify(ref)}: ${st.loadErrors.get(id) ?? 'unreadable'}`);
      return undefined;
    }
    src = doc;
  }
  if (fragment && !fragment.startsWith('/')) {
    report(st, refLoc, `cannot resolve $ref ${JSON.stringify(ref)}: only JSON-pointer fragments ("#/components/...") are supported`);
    return undefined;
  }
  let loc: Loc = { src, value: src.root, pointer: '' };
  for (const raw of fragment ? fragment.slice(1).split('/') : []) {
    let seg = raw;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      // Keep the raw segment.
    }
    seg = seg.replace(/~1/g, '/').replace(/~0/g, '~');
    const v = loc.value;
    const found = Array.isArray(v) ? /^(?:0|[1-9]\d*)$/.test(seg) && Number(seg) < v.length : isObject(v) && Object.hasOwn(v, seg);
    if (!found) {
      const hint = isObject(v) ? didYouMean(seg, Object.keys(v)) : '';
      const where = loc.pointer ? `#${loc.pointer}` : 'the document root';
      report(st, refLoc, `$ref ${JSON.stringify(ref)} not found: no ${JSON.stringify(seg)} in ${where}${docPart ? ` of ${src.file}` : ''}${hint}`);
      return undefined;
    }
    loc = child(loc, Array.isArray(v) ? Number(seg) : seg);
  }
  return loc;
}

/** Follows Reference Objects (`{ $ref }`, for parameters, responses, examples…) to the object they name. */
export function deref(st: RefState, loc: Loc): Loc | undefined {
  const seen = new Set<string>();
  let cur = loc;
  while (isObject(cur.value) && Object.hasOwn(cur.value, '$ref')) {
    const id = `${cur.src.id}#${cur.pointer}`;
    if (seen.has(id)) {
      report(st, child(cur, '$ref'), `circular $ref ${JSON.stringify(cur.value.$ref)}`);
      return undefined;
    }
    seen.add(id);
    const next = followRef(st, cur);
    if (!next) return undefined;
    cur = next;
  }
  return cur;
}

// ---------- schemas ----------

/** Keywords holding one subschema; those applying to the instance itself (not a child of it) are "in place". */
const ONE = new Set(['items', 'additionalProperties', 'not', 'if', 'then', 'else', 'propertyNames', 'contains', 'unevaluatedItems', 'unevaluatedProperties', 'contentSchema', 'additionalItems']);
const MAP = new Set(['properties', 'patternProperties', 'dependentSchemas']);
const LIST = new Set(['allOf', 'anyOf', 'oneOf', 'prefixItems']);
const IN_PLACE = new Set(['not', 'if', 'then', 'else', 'dependentSchemas', 'allOf', 'anyOf', 'oneOf']);
/** OpenAPI-only annotations and identifiers that would change how `$ref`s resolve in the bundle. */
const DROP = new Set(['discriminator', 'xml', 'externalDocs', 'example', 'nullable', '$schema', '$id', '$anchor', '$defs', 'definitions', '$comment']);
const TYPES = new Set(['string', 'number', 'integer', 'boolean', 'array', 'object', 'null']);

function defName(st: RefState, target: Loc): string {
  const last = target.key === undefined ? 'schema' : String(target.key);
  const base = last.replace(/[^A-Za-z0-9_.-]+/g, '_').slice(0, 60) || 'schema';
  let name = base;
  for (let n = 2; st.defsByName.has(name); n++) name = `${base}-${n}`;
  return name;
}

/** `#/$defs/Name` for the schema `holder.$ref` names, converting it the first time it is seen. */
function defRef(st: RefState, holder: Loc, sink: DepSink, inPlace: boolean): string | undefined {
  const target = followRef(st, holder);
  if (!target) return undefined;
  const id = `${target.src.id}#${target.pointer}`;
  let def = st.defs.get(id);
  if (!def) {
    def = { name: defName(st, target), schema: true, deps: new Set(), inPlace: new Set(), at: target };
    st.defs.set(id, def);
    st.defsByName.set(def.name, def);
    def.schema = convertSchema(st, target, { all: def.deps, inPlace: def.inPlace }, true);
  }
  sink.all.add(def.name);
  if (inPlace) sink.inPlace.add(def.name);
  return `#/$defs/${def.name}`;
}

function checkPattern(st: RefState, loc: Loc, pattern: unknown, at: 'key' | 'value'): void {
  if (typeof pattern !== 'string') {
    report(st, loc, `a pattern must be a string, got ${JSON.stringify(pattern)}`, at);
    return;
  }
  const message = checkLinearPattern(pattern);
  if (message) report(st, loc, message, at);
}

function checkType(st: RefState, loc: Loc): void {
  const t = loc.value;
  const types = Array.isArray(t) && st.dialect === '3.1' ? t : [t];
  for (const one of types) {
    if (typeof one !== 'string' || !TYPES.has(one)) {
      report(st, loc, `unknown schema type ${JSON.stringify(one)}${typeof one === 'string' ? didYouMean(one, [...TYPES]) : ''}`);
      return;
    }
  }
}

/** One schema, its nested schemas converted and its `$ref`s pointing into the bundle's `$defs`. */
export function convertSchema(st: RefState, loc: Loc, sink: DepSink, inPlace: boolean): JsonSchema {
  const v = loc.value;
  // Booleans are 2020-12 schemas; OpenAPI 3.0 allows them for additionalProperties (accepted anywhere here).
  if (typeof v === 'boolean') return v;
  if (!isObject(v)) {
    report(st, loc, `expected a schema (a mapping), got ${JSON.stringify(v)}`);
    return true;
  }
  const out: Record<string, unknown> = {};
  if (Object.hasOwn(v, '$ref')) {
    const ref = defRef(st, loc, sink, inPlace);
    // OpenAPI 3.0 ignores a Reference Object's siblings; 3.1 (JSON Schema 2020-12) applies them too.
    if (st.dialect === '3.0') return ref ? { $ref: ref } : true;
    if (ref) out.$ref = ref;
  }
  for (const [k, val] of Object.entries(v)) {
    if (k === '$ref' || k.startsWith('x-') || DROP.has(k)) continue;
    // `examples` is not a 3.0 schema keyword (3.0 has `example`, turned into `examples` below).
    if (k === 'examples' && st.dialect === '3.0') continue;
    const c = child(loc, k);
    if (ONE.has(k) && (isObject(val) || typeof val === 'boolean')) {
      out[k] = convertSchema(st, c, sink, inPlace && IN_PLACE.has(k));
    } else if (MAP.has(k)) {
      if (!isObject(val)) {
        report(st, c, `${k} must be a mapping of schemas`);
        continue;
      }
      const m: Record<string, unknown> = {};
      for (const name of Object.keys(val)) {
        if (k === 'patternProperties') checkPattern(st, child(c, name), name, 'key');
        Object.defineProperty(m, name, {
          value: convertSchema(st, child(c, name), sink, inPlace && IN_PLACE.has(k)),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      out[k] = m;
    } else if (LIST.has(k)) {
      if (!Array.isArray(val)) {
        report(st, c, `${k} must be a list of schemas`);
        continue;
      }
      out[k] = val.map((_, i) => convertSchema(st, child(c, i), sink, inPlace && IN_PLACE.has(k)));
    } else {
      if (k === 'pattern') checkPattern(st, c, val, 'value');
      if (k === 'type') checkType(st, c);
      if (k === 'required' && !(Array.isArray(val) && val.every((r) => typeof r === 'string'))) {
        report(st, c, 'required must be a list of property names');
      }
      out[k] = val;
    }
  }
  if (Object.hasOwn(v, 'example') && !Object.hasOwn(out, 'examples')) out.examples = [v.example];
  return st.dialect === '3.0' ? from30(v, out) : out;
}

/** OpenAPI 3.0 → JSON Schema 2020-12: `nullable`, boolean `exclusiveMinimum`/`exclusiveMaximum`. */
function from30(v: Record<string, unknown>, out: Record<string, unknown>): JsonSchema {
  for (const [flag, bound] of [['exclusiveMinimum', 'minimum'], ['exclusiveMaximum', 'maximum']] as const) {
    if (typeof v[flag] !== 'boolean') continue;
    delete out[flag];
    if (v[flag] === true && typeof v[bound] === 'number') {
      out[flag] = v[bound];
      delete out[bound];
    }
  }
  if (v.nullable !== true) return out;
  if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
  if (typeof out.type === 'string') {
    out.type = [out.type, 'null'];
    return out;
  }
  // `nullable` without `type` (common with allOf: [$ref]): the schema, or null.
  return out.type === undefined && Object.keys(out).length > 0 ? { anyOf: [out, { type: 'null' }] } : out;
}

/** A self-contained schema for `loc`: converted, with the `$defs` it needs (transitively) at its root. */
export function bundleSchema(st: RefState, loc: Loc): JsonSchema {
  const sink: DepSink = { all: new Set(), inPlace: new Set() };
  const schema = convertSchema(st, loc, sink, true);
  if (sink.all.size === 0 || typeof schema === 'boolean') return schema;
  const defs: Record<string, JsonSchema> = {};
  const queue = [...sink.all];
  for (let i = 0; i < queue.length; i++) {
    const def = st.defsByName.get(queue[i]);
    if (!def || Object.hasOwn(defs, def.name)) continue;
    defs[def.name] = def.schema;
    queue.push(...def.deps);
  }
  return { ...schema, $defs: defs };
}

/**
 * Schemas that reach themselves without descending into a property or item (`A: { allOf: [$ref: A] }`) would
 * recurse forever at validation: one problem per such schema.
 */
export function checkSchemaCycles(st: RefState): void {
  for (const def of st.defsByName.values()) {
    const seen = new Set<string>();
    const stack = [...def.inPlace];
    while (stack.length > 0) {
      const name = stack.pop() as string;
      if (name === def.name) {
        report(st, def.at, `schema ${JSON.stringify(def.name)} refers to itself without descending into a property or item (it would recurse forever)`, 'key');
        break;
      }
      if (seen.has(name)) continue;
      seen.add(name);
      stack.push(...(st.defsByName.get(name)?.inPlace ?? []));
    }
  }
}

// `{{name}}` references to NamedValues: found in the parsed YAML (so an unknown name is reported at its line and
// column), then substituted into copies of the resources that use them. As in API Management the substitution is
// textual and one level deep (a value is not scanned again); unlike it, never inside `@(...)` expressions, whose
// compile errors quote their source. Messages name NamedValues and secrets, never a value.
import { createHmac, randomBytes } from 'node:crypto';
import { isMap, isPair, isScalar, isSeq } from 'yaml';
import type { DocContext } from './doc-context.ts';
import { report } from './doc-context.ts';
import { namedValueValueProblem } from './named-value-fields.ts';
import { secretRefKey, type NamedValueInputs } from './named-value-types.ts';
import type { ParsedResource } from './parse-documents.ts';
import { didYouMean } from './suggest.ts';
import type { ApiPolicySpec, NamedValueResource, PolicyFragmentSpec } from './types.ts';

/** `{{name}}` or `{{namespace/name}}`, names as metadata names are. */
export const NAMED_VALUE_REF = /\{\{([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\/[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)?)\}\}/g;
/** Kinds whose strings may hold references. */
export const NAMED_VALUE_KINDS: readonly string[] = ['ApiPolicy', 'PolicyFragment', 'Backend', 'IdentityProvider'];

interface RefSite {
  ref: string;
  line: number;
  col: number;
}

/** References by parsed Document (the piece cache hands out the same Document for the same text): offsets, walked once. */
const refsByDoc = new WeakMap<object, ReadonlyArray<{ ref: string; offset: number | undefined }>>();

/** Every reference in a document's string scalars (keys too), with the position of the scalar that holds it. */
function refSites(cx: DocContext): RefSite[] {
  const doc = cx.doc;
  if (!doc) return [];
  let found = refsByDoc.get(doc);
  if (found === undefined) {
    const list: Array<{ ref: string; offset: number | undefined }> = [];
    const walk = (node: unknown): void => {
      if (isMap(node) || isSeq(node)) for (const item of node.items) walk(item);
      else if (isPair(node)) {
        walk(node.key);
        walk(node.value);
      } else if (isScalar(node) && typeof node.value === 'string' && node.value.includes('{{')) {
        for (const m of node.value.matchAll(NAMED_VALUE_REF)) list.push({ ref: m[1], offset: node.range?.[0] });
      }
    };
    walk(doc.contents);
    found = list;
    refsByDoc.set(doc, found);
  }
  const shift = cx.lineShift ?? 0;
  return found.map(({ ref, offset }) => {
    if (offset === undefined) return { ref, ...cx.start };
    const at = cx.lineAt(offset);
    return { ref, line: at.line + shift, col: at.col };
  });
}

const qualify = (ref: string, namespace: string): string => (ref.includes('/') ? ref : `${namespace}/${ref}`);

function problemAt(cx: DocContext, site: { line: number; col: number }, path: string, message: string): void {
  cx.problems.push({ file: cx.file, line: site.line, col: site.col, path, message });
}

/** A per-process key: versions change when a substituted value changes, without the version revealing it. */
const VERSION_KEY = randomBytes(32);

export interface NamedValueResolution {
  /** Substituted copy → the resource as written. */
  unresolved: Map<object, object>;
  /** The values that came from `env` or `secret` (not plain ones), by qualified NamedValue name: see redactSubstituted. */
  hidden: Map<string, string>;
  /** Mixed into the config version: changes when a used value changes. '' when nothing was substituted. */
  digest: string;
}

/**
 * Checks every reference (unknown names, references outside NAMED_VALUE_KINDS or inside expressions); with `inputs`,
 * also resolves the referenced NamedValues and replaces each resource that uses one, in `parsed`, by a substituted
 * copy. Problems go to each document's context.
 */
export function resolveNamedValues(parsed: ParsedResource[], inputs: NamedValueInputs | undefined): NamedValueResolution {
  const table = new Map<string, ParsedResource>();
  for (const p of parsed) if (p.resource.kind === 'NamedValue') table.set(`${p.resource.metadata.namespace}/${p.resource.metadata.name}`, p);
  const used = new Map<ParsedResource, Set<string>>();
  for (const item of parsed) {
    if (item.resource.kind === 'NamedValue' || !item.cx.doc) continue;
    const ns = item.resource.metadata.namespace;
    const sites = refSites(item.cx);
    if (sites.length === 0) continue;
    if (!NAMED_VALUE_KINDS.includes(item.resource.kind)) {
      for (const s of sites) problemAt(item.cx, s, '', `{{${s.ref}}}: named values are substituted only in ${NAMED_VALUE_KINDS.join(', ')} documents`);
      continue;
    }
    const refs = new Set<string>();
    for (const s of sites) {
      const key = qualify(s.ref, ns);
      if (table.has(key)) {
        refs.add(key);
        continue;
      }
      const [kns, name] = key.split('/');
      const known = [...table.keys()].filter((k) => k.startsWith(`${kns}/`)).map((k) => k.slice(kns.length + 1));
      problemAt(item.cx, s, '', `{{${s.ref}}}: NamedValue ${JSON.stringify(name)} not found in namespace ${JSON.stringify(kns)}${didYouMean(name, known)}`);
    }
    const spec = item.resource.spec as Partial<ApiPolicySpec & PolicyFragmentSpec> | undefined;
    for (const e of spec?.expressions ?? []) {
      if (!e.source.match(NAMED_VALUE_REF)) continue;
      item.cx.problems.push({ file: e.file, line: e.line, col: e.col, path: e.path, message: 'named values ({{name}}) cannot be used inside @(...) expressions: set the value with a policy attribute, or read it from a variable set by one' });
    }
    if (refs.size > 0) used.set(item, refs);
  }
  const unresolved = new Map<object, object>();
  const hidden = new Map<string, string>();
  if (inputs === undefined || used.size === 0) return { unresolved, hidden, digest: '' };

  // The values of the NamedValues some resource uses; a missing or unusable one is reported at the NamedValue.
  const values = new Map<string, string>();
  for (const key of new Set([...used.values()].flatMap((s) => [...s]))) {
    const nv = table.get(key)!;
    const spec = (nv.resource as NamedValueResource).spec;
    if (!spec) continue;
    let value: string | undefined;
    let path = 'spec.value';
    if (spec.value !== undefined) value = spec.value;
    else if (spec.env !== undefined) {
      path = 'spec.env';
      value = inputs.env[spec.env];
      if (value === undefined) report(nv.cx, path, `environment variable ${spec.env} is not set on this node`);
    } else if (spec.secret !== undefined) {
      path = 'spec.secret';
      value = inputs.secrets?.[secretRefKey(spec.secret, spec.version)];
      if (value === undefined) {
        report(nv.cx, path, inputs.secrets === undefined
          ? `secret ${JSON.stringify(spec.secret)} needs a control plane (a standalone gateway has no secret store): use spec.env here`
          : `secret ${JSON.stringify(spec.secret)}${spec.version !== undefined ? ` version ${spec.version}` : ''} is not available from the control plane (missing, disabled, or not readable there)`);
      }
    }
    if (value === undefined) continue;
    const why = namedValueValueProblem(value);
    if (why !== undefined) report(nv.cx, path, `the value of NamedValue ${JSON.stringify(key)} ${why}`);
    else {
      values.set(key, value);
      if (spec.value === undefined) hidden.set(key, value);
    }
  }
  const mac = createHmac('sha256', VERSION_KEY);
  for (const [k, v] of [...values].sort(([a], [b]) => (a < b ? -1 : 1))) mac.update(`${k}\0${v}\0`);
  for (const [item] of used) {
    const ns = item.resource.metadata.namespace;
    const replace = (text: string): string => text.replace(NAMED_VALUE_REF, (whole, ref: string) => values.get(qualify(ref, ns)) ?? whole);
    const copy = substitute(item.resource, replace, new Set(['expressions'])) as typeof item.resource;
    unresolved.set(copy, item.resource);
    item.resource = copy;
  }
  return { unresolved, hidden, digest: values.size > 0 ? mac.digest('hex') : '' };
}

/** Per Config (not cloned to workers: a WeakMap entry, not a field): the hidden values substituted into it. */
const hiddenByConfig = new WeakMap<object, ReadonlyMap<string, string>>();

export function rememberHidden(config: object, hidden: ReadonlyMap<string, string>): void {
  if (hidden.size > 0) hiddenByConfig.set(config, hidden);
}

/**
 * `text` (a build error, a NACK reason) with every env or secret value substituted into any of `configs` replaced by
 * its `{{name}}`: a data-plane check may quote an attribute (an invalid CIDR, an origin), and that attribute may hold
 * a secret.
 */
export function redactSubstituted(text: string, ...configs: ReadonlyArray<object | undefined>): string {
  const pairs: Array<[string, string]> = [];
  for (const c of configs) if (c !== undefined) pairs.push(...(hiddenByConfig.get(c) ?? []));
  if (pairs.length === 0) return text;
  let out = text;
  for (const [key, value] of pairs.sort((a, b) => b[1].length - a[1].length)) out = out.split(value).join(`{{${key}}}`);
  return out;
}

/** A deep copy of plain data with `replace` applied to every string holding a reference (keys left as they are). */
function substitute(value: unknown, replace: (text: string) => string, skip: ReadonlySet<string>): unknown {
  if (typeof value === 'string') return value.includes('{{') ? replace(value) : value;
  if (Array.isArray(value)) return value.map((v) => substitute(v, replace, skip));
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, substitute(v, replace, skip)]));
  const proto = value !== null && typeof value === 'object' ? Object.getPrototypeOf(value) : undefined;
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as object)) out[k] = skip.has(k) ? v : substitute(v, replace, skip);
    return out;
  }
  return value;
}

/**
 * `view` (plain data, Maps, arrays built from `config`) with every resource that had `{{name}}` references replaced
 * by its written form: what views of a running config (the admin port's `/config`) must show.
 */
export function asWritten<T>(config: { unresolved?: Map<object, object> }, view: T): T {
  const map = config.unresolved;
  if (map === undefined || map.size === 0) return view;
  const walk = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v;
    const original = map.get(v);
    if (original !== undefined) return original;
    if (Array.isArray(v)) return v.map(walk);
    if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, walk(x)]));
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return v;
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
  };
  return walk(view) as T;
}

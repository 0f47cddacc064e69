// Walks a YAML node against a field descriptor: converts values, fills defaults, and records problems with positions.
import { isAlias, isMap, isNode, isScalar, isSeq } from 'yaml';
import { formatDuration, formatSize, parseDuration, parseSize } from '../lib/duration.ts';
import { childPath, report, show } from './doc-context.ts';
import type { DocContext } from './doc-context.ts';
import { defaultOf } from './field.ts';
import type { AltField, DictField, Field, ListField, ObjField } from './field.ts';
import { didYouMean } from './suggest.ts';
import { parseStatusRange } from './value-checks.ts';

function isAbsent(node: unknown): boolean {
  return node === null || node === undefined || (isScalar(node) && node.value === null);
}

function kindOf(node: unknown): string {
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  return isScalar(node) ? show(node.value) : 'nothing';
}

/** `Gateway.spec.listeners[0]`: names the place a field lives, for messages. */
function where(cx: DocContext, path: string): string {
  return path ? `${cx.kind}.${path}` : cx.kind || 'document';
}

function rangeText(min: number | undefined, max: number | undefined): string {
  if (min !== undefined && max !== undefined) return `between ${min} and ${max}`;
  return min !== undefined ? `at least ${min}` : `at most ${max}`;
}

function inRange(value: number, f: { min?: number; max?: number }): boolean {
  return (f.min === undefined || value >= f.min) && (f.max === undefined || value <= f.max);
}

/**
 * A block scalar's position is where its content starts (the first non-empty line after the `|` or `>` header), with
 * its indentation kept: a problem inside the value (an expression's column) can then be placed on its own line.
 * (For `>`, lines after the first are folded in the value, so those positions are approximate.)
 */
function blockPosition(cx: DocContext, path: string, headerOffset: number): void {
  const text = cx.text!;
  let i = text.indexOf('\n', headerOffset);
  if (i === -1) return void cx.values.set(path, cx.lineAt(headerOffset));
  i++;
  for (;;) {
    let j = i;
    while (text.charCodeAt(j) === 32) j++;
    // A blank line inside the leading part: skip it (YAML takes the indentation from the first non-empty line).
    if (text.charCodeAt(j) === 10) {
      i = j + 1;
      continue;
    }
    if (j >= text.length) return void cx.values.set(path, cx.lineAt(headerOffset));
    cx.values.set(path, cx.lineAt(j));
    (cx.blockIndent ??= new Map()).set(path, j - i);
    return;
  }
}

/**
 * The decoded value, or undefined when the node is not acceptable (a problem has been recorded).
 * The caller handles absence; `node` is a present YAML node.
 */
export function decode(node: unknown, field: Field, cx: DocContext, path: string): unknown {
  // Positions point at the use site, so an alias reports where it is used, not where the anchor is.
  const range = (node as { range?: [number, number, number] } | undefined)?.range;
  if (range) {
    const type = (node as { type?: string }).type;
    if ((type === 'BLOCK_LITERAL' || type === 'BLOCK_FOLDED') && cx.text !== undefined) blockPosition(cx, path, range[0]);
    else cx.values.set(path, cx.lineAt(range[0]));
  }
  if (isAlias(node)) {
    const target = cx.doc ? node.resolve(cx.doc) : undefined;
    if (!target) return fail(cx, path, `unknown alias *${node.source} (anchors only reach within one document)`);
    node = target;
  }
  if (field.t === 'ref') return decode(node, field.resolve(), cx, path);
  if (field.t === 'any') return toPlain(node, cx);
  if (field.t === 'alt') {
    const shape = isMap(node) ? field.map : isSeq(node) ? field.list : isScalar(node) ? field.scalar : undefined;
    if (shape === undefined) return fail(cx, path, `expected ${altExpected(field)}, got ${kindOf(node)}`);
    return decode(node, shape, cx, path);
  }
  if (field.t === 'obj') return decodeObj(node, field, cx, path);
  if (field.t === 'list') return decodeList(node, field, cx, path);
  if (field.t === 'dict') return decodeDict(node, field, cx, path);
  if (!isScalar(node)) return fail(cx, path, `expected ${expected(field)}, got ${kindOf(node)}`);
  return decodeScalar(node.value, field, cx, path);
}

/** A YAML node as plain data (aliases resolved within the document). */
function toPlain(node: unknown, cx: DocContext): unknown {
  if (isNode(node)) return cx.doc ? node.toJS(cx.doc) : node.toJSON();
  return node;
}

function fail(cx: DocContext, path: string, message: string): undefined {
  report(cx, path, message);
  return undefined;
}

function expected(field: Field): string {
  switch (field.t) {
    case 'str':
      return 'a string';
    case 'int':
      return 'an integer';
    case 'num':
      return 'a number';
    case 'bool':
      return 'true or false';
    case 'duration':
      return 'a duration such as "10s", "250ms", "1m30s" or "PT1M"';
    case 'size':
      return 'a size such as "512B", "64KiB" or "1MiB"';
    case 'enum':
      if (field.values.length === 1) return JSON.stringify(field.values[0]);
      return `one of ${field.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'statusRange':
      return 'a status such as 503, "500-599" or "5xx"';
    default:
      return 'a scalar';
  }
}

function decodeScalar(v: unknown, field: Field, cx: DocContext, path: string): unknown {
  const bad = (): undefined => fail(cx, path, `expected ${expected(field)}, got ${show(v)}`);
  switch (field.t) {
    case 'str': {
      if (typeof v !== 'string') return bad();
      const message = field.check?.(v);
      return message ? fail(cx, path, message) : v;
    }
    case 'int':
    case 'num': {
      if (typeof v !== 'number' || !Number.isFinite(v) || (field.t === 'int' && !Number.isInteger(v))) return bad();
      return inRange(v, field) ? v : fail(cx, path, `must be ${rangeText(field.min, field.max)}, got ${v}`);
    }
    case 'bool':
      return typeof v === 'boolean' ? v : bad();
    case 'duration':
    case 'size': {
      const n = typeof v === 'string' || typeof v === 'number' ? (field.t === 'size' ? parseSize : parseDuration)(v) : undefined;
      if (n === undefined) return bad();
      if (field.min === undefined || n >= field.min) return n;
      return fail(cx, path, `must be at least ${(field.t === 'size' ? formatSize : formatDuration)(field.min)}, got ${show(v)}`);
    }
    case 'enum':
      if (typeof v === 'string' && field.values.includes(v)) return v;
      return fail(cx, path, `expected ${expected(field)}, got ${show(v)}${didYouMean(String(v), field.values)}`);
    case 'statusRange':
      return parseStatusRange(v) ?? bad();
    default:
      return bad();
  }
}

function decodeObj(node: unknown, field: ObjField, cx: DocContext, path: string): unknown {
  if (!isMap(node)) return fail(cx, path, `expected a mapping of fields in ${where(cx, path)}, got ${kindOf(node)}`);
  const out: Record<string, unknown> = {};
  const present = new Set<string>();
  let unknown = 0;
  for (const pair of node.items) {
    const keyNode = pair.key;
    const key = isScalar(keyNode) ? keyNode.value : undefined;
    const keyRange = (keyNode as { range?: [number, number, number] } | null)?.range;
    if (typeof key !== 'string') {
      if (keyRange) cx.values.set(`${path}[?]`, cx.lineAt(keyRange[0]));
      report(cx, `${path}[?]`, `field names must be plain strings in ${where(cx, path)}`);
      continue;
    }
    const p = childPath(path, key);
    if (keyRange) cx.keys.set(p, cx.lineAt(keyRange[0]));
    let f = Object.hasOwn(field.fields, key) ? field.fields[key] : undefined;
    if (!f && field.patternFields !== undefined && new RegExp(field.patternFields.pattern).test(key)) {
      const problem = field.patternFields.check(key);
      if (problem !== undefined) {
        report(cx, p, problem, 'key');
        continue;
      }
      f = field.patternFields.field;
    }
    if (!f) {
      unknown++;
      report(cx, p, `unknown field ${JSON.stringify(key)} in ${where(cx, path)}${didYouMean(key, Object.keys(field.fields))}`, 'key');
      continue;
    }
    if (isAbsent(pair.value)) continue;
    present.add(key);
    const v = decode(pair.value, f, cx, p);
    if (v !== undefined) out[key] = v;
  }
  for (const [name, f] of Object.entries(field.fields)) {
    if (present.has(name)) continue;
    if (f.required) {
      report(cx, childPath(path, name), `missing required field ${JSON.stringify(name)} in ${where(cx, path)}`, 'key');
      continue;
    }
    const d = defaultOf(f);
    if (d !== undefined) out[name] = d;
  }
  if (field.oneOf) {
    const given = field.oneOf.filter((n) => present.has(n));
    // An unknown (misspelt) name already said what is wrong: listing every choice adds nothing.
    if (given.length !== 1 && !(given.length === 0 && unknown > 0)) {
      const names = field.oneOf.map((n) => JSON.stringify(n)).join(' or ');
      report(cx, path, `${where(cx, path)} needs exactly one of ${names}${given.length ? `, got ${given.length}` : ''}`);
    }
  }
  return out;
}

function altExpected(field: AltField): string {
  const shapes: string[] = [];
  if (field.scalar) shapes.push(expected(field.scalar));
  if (field.list) shapes.push('a list');
  if (field.map) shapes.push('a mapping');
  return shapes.length > 1 ? `${shapes.slice(0, -1).join(', ')} or ${shapes.at(-1)}` : (shapes[0] ?? 'nothing');
}

function decodeList(node: unknown, field: ListField, cx: DocContext, path: string): unknown {
  if (!isSeq(node)) return fail(cx, path, `expected a list, got ${kindOf(node)}`);
  const out: unknown[] = [];
  node.items.forEach((item, i) => {
    const p = childPath(path, i);
    if (isAbsent(item)) {
      const range = (item as { range?: [number, number, number] } | null)?.range;
      if (range) cx.values.set(p, cx.lineAt(range[0]));
      report(cx, p, 'empty list item');
      out.push(undefined);
      return;
    }
    // Invalid items stay as holes so that later checks report the right index.
    out.push(decode(item, field.items, cx, p));
  });
  if (field.minItems && node.items.length < field.minItems) {
    report(cx, path, `needs at least ${field.minItems} item${field.minItems > 1 ? 's' : ''}`);
  }
  return out;
}

function decodeDict(node: unknown, field: DictField, cx: DocContext, path: string): unknown {
  if (!isMap(node)) return fail(cx, path, `expected a mapping, got ${kindOf(node)}`);
  const out: Record<string, unknown> = {};
  for (const pair of node.items) {
    const key = isScalar(pair.key) ? pair.key.value : undefined;
    const keyRange = (pair.key as { range?: [number, number, number] } | null)?.range;
    const p = childPath(path, String(key));
    if (keyRange) cx.keys.set(p, cx.lineAt(keyRange[0]));
    const keyProblem = typeof key !== 'string' ? 'keys must be strings' : field.keyCheck?.(key);
    if (keyProblem) {
      report(cx, p, keyProblem, 'key');
      continue;
    }
    if (isAbsent(pair.value)) {
      report(cx, p, `no value for ${JSON.stringify(key)}`, 'key');
      continue;
    }
    const v = decode(pair.value, field.values, cx, p);
    // defineProperty, so that a `__proto__` key is data and never a prototype.
    if (v !== undefined) Object.defineProperty(out, key as string, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

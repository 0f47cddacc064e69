// Reads an OpenAPI document (YAML or JSON) into plain data while remembering where every key and value sits.
import { readFileSync } from 'node:fs';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document } from 'yaml';
import type { LinePos } from './doc-context.ts';
import type { Problem } from './types.ts';

/** Positions of one mapping or list: the container itself, and each entry's key and value. */
export interface Located {
  at: LinePos;
  keys: Map<string | number, LinePos>;
  values: Map<string | number, LinePos>;
}

export interface SourceDoc {
  /** Absolute path (or URL) the document was read from; relative `$ref`s resolve against it. */
  id: string;
  /** The name used in problems (relative to the config file when the config was named relatively). */
  file: string;
  root: unknown;
  where: WeakMap<object, Located>;
}

/** Returns a document's text, or why it cannot; the model layer's default reads local files only. */
export type TextLoader = (id: string) => { text: string } | { error: string };

export const URL_PATTERN = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

export const readLocalFile: TextLoader = (id) => {
  if (URL_PATTERN.test(id)) return { error: `cannot read ${id}: documents are read from local files only (URL import is not supported yet)` };
  try {
    return { text: readFileSync(id, 'utf8') };
  } catch (err) {
    return { error: `cannot read ${id}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
};

type Range = { range?: [number, number, number] | null };

/** Parses `text` (JSON is YAML too); YAML errors become problems at their position. */
export function parseSource(text: string, id: string, file: string, problems: Problem[]): SourceDoc | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, version: '1.2' });
  const lineAt = (offset: number): LinePos => lineCounter.linePos(offset);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = lineAt(e.pos[0]);
      problems.push({ file, line: pos.line, col: pos.col, path: '', message: `YAML: ${e.message.split('\n')[0]}` });
    }
    return undefined;
  }
  const where = new WeakMap<object, Located>();
  const start = lineAt(0);
  const root = toData(doc.contents, doc, where, lineAt, start, new Set());
  return { id, file, root, where };
}

function posOf(node: unknown, lineAt: (o: number) => LinePos, fallback: LinePos): LinePos {
  const r = (node as Range | null)?.range;
  return r ? lineAt(r[0]) : fallback;
}

function setData(target: Record<string, unknown>, key: string, value: unknown): void {
  // defineProperty, so that a `__proto__` key is data and never a prototype.
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

/** Plain data from a YAML node; aliases are followed (a self-referencing alias becomes null). */
function toData(
  node: unknown,
  doc: Document,
  where: WeakMap<object, Located>,
  lineAt: (o: number) => LinePos,
  fallback: LinePos,
  active: Set<unknown>,
): unknown {
  if (isAlias(node)) {
    const target = node.resolve(doc);
    if (!target || active.has(target)) return null;
    return toData(target, doc, where, lineAt, fallback, active);
  }
  if (isScalar(node)) return node.value;
  if (isMap(node) || isSeq(node)) {
    active.add(node);
    const at = posOf(node, lineAt, fallback);
    const loc: Located = { at, keys: new Map(), values: new Map() };
    let out: Record<string, unknown> | unknown[];
    if (isSeq(node)) {
      const arr: unknown[] = [];
      node.items.forEach((item, i) => {
        loc.values.set(i, posOf(item, lineAt, at));
        arr.push(toData(item, doc, where, lineAt, at, active));
      });
      out = arr;
    } else {
      const obj: Record<string, unknown> = {};
      for (const pair of node.items) {
        const k = isScalar(pair.key) ? pair.key.value : pair.key;
        // Unquoted `200:` is a number in YAML; OpenAPI keys are strings.
        const key = k === null || k === undefined ? '' : typeof k === 'object' ? JSON.stringify(toData(k, doc, where, lineAt, at, active)) : String(k);
        const keyPos = posOf(pair.key, lineAt, at);
        loc.keys.set(key, keyPos);
        loc.values.set(key, posOf(pair.value, lineAt, keyPos));
        setData(obj, key, toData(pair.value, doc, where, lineAt, keyPos, active));
      }
      out = obj;
    }
    active.delete(node);
    where.set(out, loc);
    return out;
  }
  return null;
}

/** Position of `container[key]` (its key with `at: 'key'`), or of the container itself. */
export function positionIn(src: SourceDoc, container: unknown, key?: string | number, at: 'key' | 'value' = 'value'): LinePos {
  const loc = container !== null && typeof container === 'object' ? src.where.get(container) : undefined;
  if (!loc) return { line: 1, col: 1 };
  if (key === undefined) return loc.at;
  return (at === 'key' ? loc.keys.get(key) : loc.values.get(key)) ?? loc.keys.get(key) ?? loc.at;
}

/** `/paths/~1pets/get` style pointer segment. */
export function pointerSegment(key: string | number): string {
  return String(key).replace(/~/g, '~0').replace(/\//g, '~1');
}

export function problemAt(
  src: SourceDoc,
  container: unknown,
  key: string | number | undefined,
  pointer: string,
  message: string,
  at: 'key' | 'value' = 'value',
): Problem {
  const { line, col } = positionIn(src, container, key, at);
  return { file: src.file, line, col, path: pointer, message };
}

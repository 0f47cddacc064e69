// Per-document bookkeeping: where each path sits in the source, and the problems found so far.
import type { Document } from 'yaml';
import type { Problem } from './types.ts';

export interface LinePos {
  line: number;
  col: number;
}

export interface DocContext {
  file: string;
  /** Directory that relative file paths in this document resolve against. */
  baseDir: string;
  kind: string;
  /** Position of the value node at each path (`spec.listeners[0].port`). */
  values: Map<string, LinePos>;
  /** Position of the key node at each path that has one. */
  keys: Map<string, LinePos>;
  /** Where the document starts: the fallback for problems with no better place. */
  start: LinePos;
  problems: Problem[];
  /** Source offset → 1-based line and column. */
  lineAt: (offset: number) => LinePos;
  /** The parsed document, to resolve aliases against. */
  doc?: Document;
  /**
   * Lines to add to the positions in `values` and `keys` (not to `start`): a document decoded once and kept (see
   * parse-documents.ts) records them relative to its piece of text, and the piece may sit lower in a later text.
   */
  lineShift?: number;
  /** The text the node offsets refer to (to find where a block scalar's content starts). */
  text?: string;
  /**
   * Block scalars (`|`, `>`): their content's indentation (columns before it), by path. `values` then holds the
   * content's first line and column, not the indicator's, so positions inside the value can be found.
   */
  blockIndent?: Map<string, number>;
}

export function newDocContext(
  o: Pick<DocContext, 'file' | 'baseDir' | 'start' | 'problems' | 'lineAt' | 'doc'> & Partial<Pick<DocContext, 'kind' | 'values' | 'keys' | 'lineShift' | 'text'>>,
): DocContext {
  return { kind: '', values: new Map(), keys: new Map(), ...o };
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** `spec` + `listeners` → `spec.listeners`; keys that are not identifiers are bracketed and quoted. */
export function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (!PLAIN_KEY.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path ? `${path}.${key}` : key;
}

/** `spec.listeners[0].port` → `spec.listeners[0]` → `spec.listeners` → `spec` → ``. */
export function parentPath(path: string): string {
  const m = /^(.*?)(?:\.[A-Za-z_][A-Za-z0-9_-]*|\[[^\]]*\]|\["(?:[^"\\]|\\.)*"\])$/.exec(path);
  return m ? m[1] : '';
}

/**
 * The position of a path's value node, or with `at: 'key'` of its key (so a missing field points at its
 * parent's key); walks up to the nearest ancestor that was seen.
 */
export function positionOf(cx: DocContext, path: string, at: 'value' | 'key' = 'value'): LinePos {
  for (let p = path; ; p = parentPath(p)) {
    const pos = (at === 'key' ? cx.keys.get(p) : undefined) ?? cx.values.get(p);
    if (pos) return cx.lineShift ? { line: pos.line + cx.lineShift, col: pos.col } : pos;
    if (p === '') return cx.start;
  }
}

export function report(cx: DocContext, path: string, message: string, at: 'value' | 'key' = 'value'): void {
  const { line, col } = positionOf(cx, path, at);
  cx.problems.push({ file: cx.file, line, col, path, message });
}

/** Render a value briefly for a message. */
export function show(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(JSON.stringify(value) ?? value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

// Config resources as the control plane stores them: one YAML document per key, split from request bodies, validated whole.
import { LineCounter, parse, parseAllDocuments } from 'yaml';
import { KINDS } from '../model/kinds.ts';
import { parseDocuments, type ParsedResource } from '../model/parse-documents.ts';
import { report } from '../model/doc-context.ts';
import type { Problem } from '../model/types.ts';
import { assembleConfig } from '../model/validate.ts';

export const CONFIG_PREFIX = '/config/';

/** One resource document of a request body (or of the store). */
export interface ConfigDocument {
  kind: string;
  namespace: string;
  name: string;
  /** `/config/<Kind>/<namespace>/<name>`. */
  key: string;
  /** The document's own text, as sent (one document, no `---`). */
  text: string;
  /** 1-based line of the document's first line in the body. */
  line: number;
}

export function configKey(kind: string, namespace: string, name: string): string {
  return `${CONFIG_PREFIX}${kind}/${namespace}/${name}`;
}

export function parseConfigKey(key: string): { kind: string; namespace: string; name: string } | undefined {
  if (!key.startsWith(CONFIG_PREFIX)) return undefined;
  const parts = key.slice(CONFIG_PREFIX.length).split('/');
  return parts.length === 3 ? { kind: parts[0], namespace: parts[1], name: parts[2] } : undefined;
}

/** The known kind a user typed: exact, any case, or plural (`meshservices`), as kubectl accepts. */
export function resolveKind(typed: string): string | undefined {
  const kinds = Object.keys(KINDS);
  if (kinds.includes(typed)) return typed;
  const t = typed.toLowerCase();
  return kinds.find((k) => {
    const l = k.toLowerCase();
    return t === l || t === `${l}s` || t === `${l}es` || (l.endsWith('y') && t === `${l.slice(0, -1)}ies`);
  });
}

/** Keys sorted so that maps compare equal whatever order their fields were written in. */
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
  }
  return v;
}

/** The document as plain data (undefined when it does not parse). */
export function documentValue(text: string): unknown {
  try {
    return parse(text, { version: '1.2' });
  } catch {
    return undefined;
  }
}

/** Whether two document texts say the same thing (formatting, comments and field order aside). */
export function sameDocument(a: string, b: string): boolean {
  return JSON.stringify(canonical(documentValue(a))) === JSON.stringify(canonical(documentValue(b)));
}

/**
 * The resource documents of a body (YAML, several documents, or one JSON object): each with its kind, namespace,
 * name and own text. Documents that do not say what they are (no kind or name, bad YAML) are left out here; the
 * validation of the whole config reports them.
 */
export function splitDocuments(text: string): ConfigDocument[] {
  const lineCounter = new LineCounter();
  const out: ConfigDocument[] = [];
  const docs = parseAllDocuments(text, { lineCounter, version: '1.2', prettyErrors: false });
  for (const doc of Array.isArray(docs) ? docs : []) {
    if (doc.errors.length > 0 || doc.contents === null || !doc.contents.range) continue;
    const value = doc.toJS() as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } } | null;
    const kind = value?.kind;
    const name = value?.metadata?.name;
    const namespace = value?.metadata?.namespace ?? 'default';
    if (typeof kind !== 'string' || typeof name !== 'string' || typeof namespace !== 'string') continue;
    const [start, end] = doc.contents.range;
    const lineStart = text.lastIndexOf('\n', start - 1) + 1; // keep the first line's indentation
    let own = text.slice(lineStart, end).replace(/\s+$/, '') + '\n';
    // A slice that does not stand alone (flow context, odd indentation) is stored re-serialized instead.
    if (JSON.stringify(canonical(documentValue(own))) !== JSON.stringify(canonical(value))) own = doc.toString();
    out.push({ kind, namespace, name, key: configKey(kind, namespace, name), text: own, line: lineCounter.linePos(lineStart).line });
  }
  return out;
}

/**
 * Validates the config that would result: `stored` (key → text, what stays in the store) plus the request's body,
 * as one config so cross-references resolve. Problems in the body name `request.file` with positions in its text;
 * problems in stored documents name their key. Every problem is returned.
 */
export function checkConfig(stored: ReadonlyMap<string, string>, request?: { text: string; file: string }): Problem[] {
  const problems: Problem[] = [];
  const parsed: ParsedResource[] = [];
  const files: string[] = [];
  // Stored documents get stand-in file names (their keys are shown in problems); file paths in them are absolute.
  const display = new Map<string, string>();
  let i = 0;
  for (const [key, text] of stored) {
    const file = `stored-${i++}`;
    display.set(file, key);
    files.push(file);
    parsed.push(...parseDocuments(text, file, problems, { baseDir: '' }).resources);
  }
  if (request) {
    files.push(request.file);
    // Nodes read the files a config names on their own hosts: a path relative to anything here would mean nothing there.
    const mine = parseDocuments(request.text, request.file, problems, { baseDir: '' }).resources;
    for (const r of mine) {
      // Grants come from approved AccessRequests (who, by whom, until when: all audited), never from a config change.
      if (r.resource.kind === 'AccessGrant') report(r.cx, 'kind', 'AccessGrant is made by the control plane when an AccessRequest is approved: use `lockgate access request` and `lockgate access approve`');
    }
    parsed.push(...mine);
  }
  // A check: the config's version (a hash of every text and imported file) is not needed.
  const result = assembleConfig(parsed, problems, null, files);
  return result.problems.map((p) => ({ ...p, file: display.get(p.file) ?? p.file }));
}

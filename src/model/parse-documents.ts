// Parses one YAML text into resources: syntax errors, kind dispatch, field decoding and per-resource checks.
import { dirname } from 'node:path';
import { LineCounter, isMap, isScalar, parseAllDocuments } from 'yaml';
import type { Document } from 'yaml';
import { decode } from './decode.ts';
import { newDocContext, report } from './doc-context.ts';
import type { DocContext } from './doc-context.ts';
import { KINDS, documentFields } from './kinds.ts';
import { didYouMean } from './suggest.ts';
import type { AnyResource, Problem } from './types.ts';

export interface ParsedResource {
  resource: AnyResource;
  /** Positions inside the resource's document, for problems found across resources. */
  cx: DocContext;
}

function decodeDocument(doc: Document, cx: DocContext): AnyResource | undefined {
  const root = doc.contents;
  if (root?.range) cx.values.set('', cx.lineAt(root.range[0]));
  if (!isMap(root)) {
    report(cx, '', `a document must be a mapping with apiVersion, kind, metadata and spec`);
    return undefined;
  }
  const kindPair = root.items.find((p) => isScalar(p.key) && p.key.value === 'kind');
  if (!kindPair) {
    report(cx, 'kind', `missing required field "kind" (one of ${Object.keys(KINDS).join(', ')})`);
    return undefined;
  }
  const kindNode = kindPair.value;
  const kind = isScalar(kindNode) ? kindNode.value : undefined;
  if (isScalar(kindNode) && kindNode.range) cx.values.set('kind', cx.lineAt(kindNode.range[0]));
  if (typeof kind !== 'string' || !Object.hasOwn(KINDS, kind)) {
    const hint = typeof kind === 'string' ? didYouMean(kind, Object.keys(KINDS)) : '';
    report(cx, 'kind', `unknown kind ${JSON.stringify(kind)}${hint}; known kinds: ${Object.keys(KINDS).join(', ')}`);
    return undefined;
  }
  cx.kind = kind;
  const raw = decode(root, documentFields(kind), cx, '') as AnyResource;
  const keyPos = isScalar(kindPair.key) && kindPair.key.range ? cx.lineAt(kindPair.key.range[0]) : cx.start;
  raw.source = { file: cx.file, line: keyPos.line, col: keyPos.col };
  if (raw.spec) KINDS[kind].finish(raw.spec as never, cx);
  return raw;
}

/** Every resource in the text (documents with problems included, so later checks see them) and every problem. */
export function parseDocuments(
  text: string,
  file: string,
  /** Where problems go, now and from later cross-resource checks (one list for all files of a config). */
  problems: Problem[] = [],
): { resources: ParsedResource[]; problems: Problem[] } {
  const resources: ParsedResource[] = [];
  const lineCounter = new LineCounter();
  const lineAt = (offset: number) => lineCounter.linePos(offset);
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, version: '1.2' });
  // An empty text parses to an EmptyStream, which is not an array.
  for (const doc of Array.isArray(docs) ? docs : []) {
    const start = lineAt(doc.range[0]);
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = lineAt(e.pos[0]);
        problems.push({ file, line: pos.line, col: pos.col, path: '', message: `YAML: ${e.message.split('\n')[0]}` });
      }
      continue;
    }
    if (doc.contents === null) continue;
    const cx = newDocContext({ file, baseDir: dirname(file), start, problems, lineAt, doc });
    const resource = decodeDocument(doc, cx);
    if (typeof resource?.metadata?.name === 'string') resources.push({ resource, cx });
  }
  return { resources, problems };
}

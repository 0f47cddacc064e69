// Parses one YAML text into resources: syntax errors, kind dispatch, field decoding and per-resource checks.
import { dirname } from 'node:path';
import { LineCounter, isMap, isScalar, parseAllDocuments } from 'yaml';
import type { Document } from 'yaml';
import { decode } from './decode.ts';
import { newDocContext, report } from './doc-context.ts';
import type { DocContext, LinePos } from './doc-context.ts';
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

/** One YAML document of a text, and the text's line and column of an offset into the source it was parsed from. */
interface PlacedDocument {
  doc: Document.Parsed;
  lineAt: (offset: number) => LinePos;
}

/** A piece of text (see yamlDocuments) parsed without errors: its documents and its own line counter. */
interface CachedPiece {
  docs: Document.Parsed[];
  lines: LineCounter;
}

/**
 * Parsed pieces by their text, least recently used first. The YAML parse is most of the cost of loading a config
 * (a 10,000-route config is ~0.5 MiB of YAML and ~0.4 s to parse), and a node or the control plane parses nearly
 * the same text again on every change: only the document that changed needs parsing again. Documents are only read
 * after the parse (decode builds new values), so one can serve many parses. Bounded by source size: the parsed form
 * takes ~30× the text, so 2 MiB of text (a config of ~35,000 routes, or a smaller one and the pieces its recent
 * changes replaced) holds at most ~60 MiB.
 */
const pieceCache = new Map<string, CachedPiece>();
let pieceCacheBytes = 0;
const PIECE_CACHE_MAX_BYTES = 2 * 1024 * 1024;
/** A piece runs to the first `---` line after this many characters (small documents share one); shorter texts are parsed whole. */
const PIECE_MIN_BYTES = 256;

function parsePiece(slice: string): CachedPiece | undefined {
  const hit = pieceCache.get(slice);
  if (hit) {
    pieceCache.delete(slice); // to the most recently used end
    pieceCache.set(slice, hit);
    return hit;
  }
  // A slice of a string keeps the whole string alive, and so would the parsed nodes' source texts: a copy of its
  // own, so that a cached piece holds on to its bytes only, never to the whole config it was cut from.
  // (UTF-16 both ways: every code unit kept, a lone surrogate too.)
  const piece = Buffer.from(slice, 'utf16le').toString('utf16le');
  const lines = new LineCounter();
  const parsed = parseAllDocuments(piece, { lineCounter: lines, prettyErrors: false, version: '1.2' });
  const docs = Array.isArray(parsed) ? parsed : [];
  // A piece with errors is not cached, and the caller parses the whole text instead: its errors are reported exactly
  // as a parse of the whole text reports them (positions, and what a syntax error swallows beyond a `---` line).
  if (docs.some((d) => d.errors.length > 0)) return undefined;
  const entry = { docs, lines };
  if (piece.length <= PIECE_CACHE_MAX_BYTES / 4) {
    pieceCache.set(piece, entry);
    pieceCacheBytes += piece.length;
    for (const [key] of pieceCache) {
      if (pieceCacheBytes <= PIECE_CACHE_MAX_BYTES) break;
      pieceCache.delete(key);
      pieceCacheBytes -= key.length;
    }
  }
  return entry;
}

/**
 * The YAML documents of a text. A line that is exactly `---` always starts a new document (YAML forbids that line
 * inside any node, so no document spans one), and what follows it does not depend on what came before, except for
 * directives (`%YAML`, `%TAG`): so the text is cut before each such line, each piece is parsed on its own (or taken
 * from the cache) and its positions are shifted by the lines before it. Texts with a directive or a byte order mark,
 * and texts with a YAML error anywhere, are parsed whole, as they always were.
 */
function yamlDocuments(text: string, reuse: boolean): PlacedDocument[] {
  const whole = (): PlacedDocument[] => {
    const lineCounter = new LineCounter();
    const lineAt = (offset: number): LinePos => lineCounter.linePos(offset);
    const docs = parseAllDocuments(text, { lineCounter, prettyErrors: false, version: '1.2' });
    // An empty text parses to an EmptyStream, which is not an array.
    return (Array.isArray(docs) ? docs : []).map((doc) => ({ doc, lineAt }));
  };
  if (!reuse || text.length < PIECE_MIN_BYTES * 2 || text.includes('\uFEFF') || /^%/m.test(text)) return whole();
  const out: PlacedDocument[] = [];
  let start = 0;
  let line = 0; // lines before `start`
  while (start < text.length) {
    let end = text.indexOf('\n---\n', start);
    while (end !== -1 && end + 1 - start < PIECE_MIN_BYTES) end = text.indexOf('\n---\n', end + 1);
    end = end === -1 ? text.length : end + 1;
    const piece = text.slice(start, end);
    const parsed = parsePiece(piece);
    if (!parsed) return whole();
    const before = line;
    const lineAt =
      before === 0
        ? parsed.lines.linePos
        : (offset: number): LinePos => {
            const p = parsed.lines.linePos(offset); // a new object each call
            p.line += before;
            return p;
          };
    for (const doc of parsed.docs) out.push({ doc, lineAt });
    for (let nl = piece.indexOf('\n'); nl !== -1; nl = piece.indexOf('\n', nl + 1)) line++;
    start = end;
  }
  return out;
}

/** Every resource in the text (documents with problems included, so later checks see them) and every problem. */
export function parseDocuments(
  text: string,
  file: string,
  /** Where problems go, now and from later cross-resource checks (one list for all files of a config). */
  problems: Problem[] = [],
  /**
   * `reuse: false` parses the whole text afresh (what the cache must be indistinguishable from; tests compare).
   * `baseDir`: where relative file paths resolve (default: the file's directory); '' = nowhere, a relative path is a
   * problem (config applied to the control plane is read on every node's own host).
   */
  options: { reuse?: boolean; baseDir?: string } = {},
): { resources: ParsedResource[]; problems: Problem[] } {
  const resources: ParsedResource[] = [];
  for (const { doc, lineAt } of yamlDocuments(text, options.reuse !== false)) {
    const start = lineAt(doc.range[0]);
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = lineAt(e.pos[0]);
        problems.push({ file, line: pos.line, col: pos.col, path: '', message: `YAML: ${e.message.split('\n')[0]}` });
      }
      continue;
    }
    if (doc.contents === null) continue;
    const cx = newDocContext({ file, baseDir: options.baseDir ?? dirname(file), start, problems, lineAt, doc });
    const resource = decodeDocument(doc, cx);
    if (typeof resource?.metadata?.name === 'string') resources.push({ resource, cx });
  }
  return { resources, problems };
}

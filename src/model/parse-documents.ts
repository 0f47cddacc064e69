// Parses one YAML text into resources: syntax errors, kind dispatch, field decoding and per-resource checks.
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import { LineCounter, isMap, isScalar, parseAllDocuments } from 'yaml';
import type { Document } from 'yaml';
import { decode } from './decode.ts';
import { newDocContext, report } from './doc-context.ts';
import type { DocContext, LinePos } from './doc-context.ts';
import { KINDS, documentFields } from './kinds.ts';
import { SEPARATOR, configDocuments } from './snapshot-delta.ts';
import { didYouMean } from './suggest.ts';
import type { AnyResource, ApiResource, Problem } from './types.ts';

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
  const keyPos = isScalar(kindPair.key) && kindPair.key.range ? cx.lineAt(kindPair.key.range[0]) : undefined;
  raw.source = keyPos ? { file: cx.file, line: keyPos.line + (cx.lineShift ?? 0), col: keyPos.col } : { file: cx.file, line: cx.start.line, col: cx.start.col };
  if (raw.spec) KINDS[kind].finish(raw.spec as never, cx);
  return raw;
}

/** One YAML document of a text, and the text's line and column of an offset into the source it was parsed from. */
interface PlacedDocument {
  doc: Document.Parsed;
  lineAt: (offset: number) => LinePos;
  /**
   * For a document of a cached piece: its piece's own positions (line 1 = the piece's first line) and the lines
   * before the piece. The same text parses to the same Document object, so decoded results can be kept by it.
   */
  piece?: { lineAt: (offset: number) => LinePos; shift: number };
  /** The text the document's offsets refer to (its piece's, or the whole text). */
  text: string;
}

/** A piece of text (see yamlDocuments) parsed without errors: its documents and its own line counter. */
interface CachedPiece {
  /** SHA-256 of `text`, made when a config digest first needs it (configTextDigest). */
  digest?: Buffer;
  docs: Document.Parsed[];
  lines: LineCounter;
  /** The piece's own text (the cache key; never a slice of a larger text) and its number of `\n`. */
  text: string;
  newlines: number;
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
    pieceCache.delete(slice); // to the most recently used end, keyed by its own copy (a slice keeps its whole text alive)
    pieceCache.set(hit.text, hit);
    return hit;
  }
  // A byte order mark or a directive anywhere means the text is parsed whole (yamlDocuments): no cached piece has one.
  if (slice.includes('\uFEFF') || hasDirective(slice)) return undefined;
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
  let newlines = 0;
  for (let nl = piece.indexOf('\n'); nl !== -1; nl = piece.indexOf('\n', nl + 1)) newlines++;
  const entry = { docs, lines, text: piece, newlines };
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
    return (Array.isArray(docs) ? docs : []).map((doc) => ({ doc, lineAt, text }));
  };
  // The pieces a caller noted for this very text (the same string objects apply after apply, so their cache lookups
  // hash nothing again); else cut here.
  const pieces = noted !== undefined && noted.text === text ? noted.pieces : undefined;
  if (!reuse || text.length < PIECE_MIN_BYTES * 2) return whole();
  // A noted text is not scanned whole: its pieces are (parsePiece: new ones only, a cached piece has neither). Reading
  // the text would flatten one a node built by concatenating its documents (snapshot-delta), a 0.5 MiB copy per apply.
  if (pieces === undefined && (text.includes('\uFEFF') || hasDirective(text))) return whole();
  const out: PlacedDocument[] = [];
  let start = 0;
  let next = 0; // index of the next noted piece
  let line = 0; // lines before the piece
  while (pieces ? next < pieces.length : start < text.length) {
    let piece: string;
    if (pieces) piece = pieces[next++];
    else {
      let end = text.indexOf('\n---\n', start);
      while (end !== -1 && end + 1 - start < PIECE_MIN_BYTES) end = text.indexOf('\n---\n', end + 1);
      end = end === -1 ? text.length : end + 1;
      piece = text.slice(start, end);
      start = end;
    }
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
    for (const doc of parsed.docs) out.push({ doc, lineAt, piece: { lineAt: parsed.lines.linePos, shift: before }, text: parsed.text });
    line += parsed.newlines;
  }
  return out;
}

/** A line starting with `%` (a YAML directive), found without scanning every line break (`%` itself is rare). */
function hasDirective(text: string): boolean {
  for (let i = text.indexOf('%'); i !== -1; i = text.indexOf('%', i + 1)) {
    if (i === 0) return true;
    const c = text.charCodeAt(i - 1);
    if (c === 10 || c === 13) return true;
  }
  return false;
}

/** The pieces of one config text, noted by whoever holds them (see noteConfigPieces). */
let noted: { text: string; pieces: readonly string[] } | undefined;

/**
 * Tells the parser that `text` is exactly `pieces.join('')`, cut as configTextDigest cuts it: each piece after the
 * first starts with the `---` line of a `\n---\n` (a snapshot a node rebuilt from a delta: snapshot-delta's
 * configPieces). Parsing that text then takes these pieces instead of cutting and hashing the text, and its digest
 * reuses each piece's. One text is noted at a time.
 */
export function noteConfigPieces(text: string, pieces: readonly string[]): void {
  noted = { text, pieces };
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

/**
 * A config text's digest, what its version is made from: SHA-256 over the SHA-256 of each of its documents, the text
 * cut by snapshot-delta's configDocuments (each piece after the first is `---\n` + a document), so it is the same
 * however the text was parsed. For a text whose pieces were noted (a node's snapshot rebuilt from a
 * delta: the pieces are that very cut), a piece's digest is kept with its parse and only changed documents are hashed
 * again: hashing all 0.5 MiB of a 10,000-route config was a fifth of a node's parse on every apply.
 */
export function configTextDigest(text: string): Buffer {
  const outer = createHash('sha256');
  // (No pieces noted for '' is the empty cut, not configDocuments' one empty document: cut it below.)
  if (noted !== undefined && noted.text === text && noted.pieces.length > 0) {
    for (const piece of noted.pieces) {
      const cached = pieceCache.get(piece);
      outer.update(cached === undefined ? sha256(piece) : (cached.digest ??= sha256(cached.text)));
    }
    return outer.digest();
  }
  // The same pieces as configPieces(configDocs(text)), each hashed as `---\n` + document without making that string.
  configDocuments(text).forEach((doc, i) => outer.update(i === 0 ? sha256(doc) : createHash('sha256').update(SEPARATOR).update(doc).digest()));
  return outer.digest();
}

/**
 * Decoded documents kept by their parsed Document (the piece cache hands out the same Document for the same text):
 * a 10,000-route config is decoded and checked in ~150 ms, and a node or the control plane decodes nearly the same
 * documents again on every change. Only Apis are kept: they hold nearly all of a large config (its operations), their
 * decoding reads nothing but their own text (an OpenAPI import reads files: not kept), and the cross-resource checks
 * only set a few of their top-level fields, which every use gets its own copy of. Other kinds are small, or carry
 * their file and line inside their spec (ApiPolicy expressions), and are decoded each time.
 */
interface KeptApi {
  /** Deep-frozen: every use gets a copy of the parts the cross-resource checks write (see apiWorkingCopy). */
  resource: ApiResource;
  /** Positions relative to the piece (line 1 = its first line). */
  values: Map<string, LinePos>;
  keys: Map<string, LinePos>;
  source: LinePos;
}
const kept = new WeakMap<Document, Map<string, KeptApi>>();

/** Resources decoded from a kept document, back to what they were copied from. */
const keptOrigin = new WeakMap<object, ApiResource>();

/** `kind: Api` with no `spec.import` (peeked at without decoding). */
function keptKind(doc: Document): boolean {
  const root = doc.contents;
  if (!isMap(root)) return false;
  let api = false;
  for (const p of root.items) {
    if (!isScalar(p.key)) continue;
    if (p.key.value === 'kind') api = isScalar(p.value) && p.value.value === 'Api';
    else if (p.key.value === 'spec' && isMap(p.value) && p.value.items.some((q) => isScalar(q.key) && q.key.value === 'import')) return false;
  }
  return api;
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
}

/**
 * A use's own Api: new top-level objects and new copies of the operations that name a Backend (the cross-resource
 * checks qualify `backend`, `revisionOf`, `versionSet`, `version`, `meshService`); the rest is shared and frozen.
 */
function apiWorkingCopy(r: ApiResource, source: ApiResource['source']): ApiResource {
  const spec = r.spec;
  // (A spread, not slice() or map(): on a frozen array those take V8's slow path, ~40× the time.)
  const operations = noBackendOperations.has(spec.operations) ? [...spec.operations] : spec.operations.map((op) => (op.backend === undefined ? op : { ...op }));
  const copy: ApiResource = { ...r, source, spec: { ...spec, operations } };
  keptOrigin.set(copy, r);
  return copy;
}

/**
 * Kept Apis' (frozen) operation lists in which no operation names a Backend: a use's copy is then the list's items
 * as they are, without looking at each (mapping 100 operations of each of 100 Apis, per parse, was a sixth of a
 * node's apply at 10,000 routes).
 */
const noBackendOperations = new WeakSet<object>();

/** The frozen Api a use's copy was made from (the same object for every use of the same document), or undefined. */
export function keptOriginOf(r: object): object | undefined {
  return keptOrigin.get(r);
}

/**
 * True when two Apis decoded from kept documents come from the same document and the cross-resource checks gave
 * them the same values: the same Api, with no need to compare its operations (callers use it to send or rebuild
 * only what changed). False when either was not kept, or when unsure.
 */
export function sameKeptApi(a: ApiResource, b: ApiResource): boolean {
  if (a === b) return true;
  const o = keptOrigin.get(a);
  if (o === undefined || o !== keptOrigin.get(b)) return false;
  const x = a.spec;
  const y = b.spec;
  if (x.backend !== y.backend || x.revisionOf !== y.revisionOf || x.versionSet !== y.versionSet || x.version !== y.version || x.meshService !== y.meshService) return false;
  if (a.metadata !== b.metadata && JSON.stringify(a.metadata) !== JSON.stringify(b.metadata)) return false;
  for (let i = 0; i < x.operations.length; i++) if (x.operations[i].backend !== y.operations[i].backend) return false;
  return true;
}

function keptResource(
  doc: Document.Parsed,
  piece: NonNullable<PlacedDocument['piece']>,
  o: { file: string; baseDir: string; start: LinePos; problems: Problem[] },
): ParsedResource {
  let byDir = kept.get(doc);
  const hit = byDir?.get(o.baseDir);
  if (hit !== undefined) {
    const cx = newDocContext({ ...o, lineAt: piece.lineAt, doc, kind: 'Api', values: hit.values, keys: hit.keys, lineShift: piece.shift });
    return { resource: apiWorkingCopy(hit.resource, { file: o.file, line: hit.source.line + piece.shift, col: hit.source.col }), cx };
  }
  const before = o.problems.length;
  const cx = newDocContext({ ...o, lineAt: piece.lineAt, doc, lineShift: piece.shift });
  const resource = decodeDocument(doc, cx) as ApiResource;
  // Only a document that decoded cleanly is kept: one with problems is reported afresh each time, as before.
  if (o.problems.length > before || typeof resource?.metadata?.name !== 'string' || !resource.spec || !resource.source) return { resource, cx };
  const source = { line: resource.source.line - piece.shift, col: resource.source.col };
  const pristine: ApiResource = { ...resource };
  delete pristine.source;
  deepFreeze(pristine);
  if (Array.isArray(pristine.spec.operations) && pristine.spec.operations.every((op) => op.backend === undefined)) noBackendOperations.add(pristine.spec.operations);
  if (byDir === undefined) kept.set(doc, (byDir = new Map()));
  byDir.set(o.baseDir, { resource: pristine, values: cx.values, keys: cx.keys, source });
  return { resource: apiWorkingCopy(pristine, resource.source), cx };
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
  const baseDir = options.baseDir ?? dirname(file);
  for (const { doc, lineAt, piece, text: docText } of yamlDocuments(text, options.reuse !== false)) {
    const start = lineAt(doc.range[0]);
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = lineAt(e.pos[0]);
        problems.push({ file, line: pos.line, col: pos.col, path: '', message: `YAML: ${e.message.split('\n')[0]}` });
      }
      continue;
    }
    if (doc.contents === null) continue;
    if (piece !== undefined && keptKind(doc)) {
      const r = keptResource(doc, piece, { file, baseDir, start, problems });
      if (typeof r.resource?.metadata?.name === 'string') resources.push(r);
      continue;
    }
    const cx = newDocContext({ file, baseDir, start, problems, lineAt, doc, text: docText });
    const resource = decodeDocument(doc, cx);
    if (typeof resource?.metadata?.name === 'string') resources.push({ resource, cx });
  }
  return { resources, problems };
}

// Snapshot deltas: what changed between two snapshots sent on one stream, so a node is not sent (and does not read,
// decode and cut up) its whole config again when one document of it changed.
//
// The control plane sends a stream's first snapshot whole, then deltas against the one it sent before (the stream is
// ordered, so the node has always received that base: applied or not). A delta carries every snapshot field except
// the config text, and the new config as a list of its documents, each either the index of an equal document of the
// base or its text. Both ends cut a config text into documents with the same pure function (configDocuments), so the
// delta does not depend on how the control plane assembled the text, and the node checks the rebuilt text's length
// and the base it was made against; any mismatch and the node reconnects, which starts with a whole snapshot again.
import type { Snapshot } from './snapshot.ts';

export interface SnapshotDelta {
  /** The snapshot it applies to: its version, endpoints version and config length. */
  base: { version: number; endpointsVersion: number; configLength: number };
  /** The new snapshot, less its config. */
  snapshot: Omit<Snapshot, 'config'>;
  /** The new config's documents: an index into the base's documents, or a document's text. */
  docs: Array<number | string>;
  /** The new config text's length (a check that the node rebuilt the very text). */
  configLength: number;
}

/** What stands between two documents of a config text. */
export const SEPARATOR = '---\n';

/**
 * A config text cut before every line that is exactly `---` (after the first line): the documents, such that
 * `docs.join('---\n') === text` for every text. The snapshot compiler joins documents that way.
 */
export function configDocuments(text: string): string[] {
  const parts = text.split('\n---\n');
  for (let i = 0; i < parts.length - 1; i++) parts[i] += '\n';
  return parts;
}

/**
 * Rebuilds a config text from its documents. Concatenated, not joined: V8 keeps the result as a rope of the documents'
 * strings, and the parser (told the pieces: noteConfigPieces) and the config digest read the pieces, so a node never
 * copies the 0.5 MiB text of a 10,000-route config whole (a flat copy per apply was a large object for its old
 * generation every time).
 */
export function joinConfigDocuments(docs: readonly string[]): string {
  let text = docs.length > 0 ? docs[0] : '';
  for (let i = 1; i < docs.length; i++) text = text + SEPARATOR + docs[i];
  return text;
}

/**
 * The delta from `base` to `next`, or undefined when a whole snapshot is the better message (no document in common).
 * `baseDocs` and `nextDocs` are configDocuments of their configs (callers cache them per snapshot).
 */
export function snapshotDelta(base: Snapshot, baseDocs: readonly string[], next: Snapshot, nextDocs: readonly string[]): SnapshotDelta | undefined {
  const index = new Map<string, number>();
  // The first of equal documents (two equal documents are interchangeable).
  for (let i = baseDocs.length - 1; i >= 0; i--) index.set(baseDocs[i], i);
  let kept = 0;
  const docs = nextDocs.map((d) => {
    const i = index.get(d);
    if (i === undefined) return d;
    kept++;
    return i;
  });
  if (kept === 0) return undefined;
  const { config, ...rest } = next;
  return {
    base: { version: base.version, endpointsVersion: base.endpointsVersion, configLength: base.config.length },
    snapshot: rest,
    docs,
    configLength: config.length,
  };
}

/** A document as it appears inside a JSON string (JSON escaping is per character, so documents escape one by one). */
export function escapeDocument(doc: string): string {
  return JSON.stringify(doc).slice(1, -1);
}

/**
 * A config's documents; the same JSON-escaped (what the snapshot's JSON is made of); and each after its `---` line
 * (what the parser takes as pieces: noteConfigPieces). Kept per document, so a delta's unchanged documents bring
 * their strings along, and nothing of them is escaped, concatenated or hashed again.
 */
export interface ConfigDocs {
  docs: string[];
  escaped: string[];
  separated: string[];
}

export function configDocs(config: string): ConfigDocs {
  const docs = configDocuments(config);
  return { docs, escaped: docs.map(escapeDocument), separated: docs.map((d) => SEPARATOR + d) };
}

/** The pieces the parser may take for the config `docs` join to (see noteConfigPieces): `pieces.join('') === config`. */
export function configPieces(d: ConfigDocs): string[] {
  return d.docs.map((doc, i) => (i === 0 ? doc : d.separated[i]));
}

/**
 * The snapshot a delta describes, built on `base` (the last snapshot received on the stream) and its documents, with
 * its JSON on demand (in parts that join to JSON.stringify of it; only the new documents are escaped, so a node saves
 * it without serializing the whole config again); or a string saying why it cannot be (made against another base, or does not rebuild).
 */
export function applySnapshotDelta(base: Snapshot | undefined, baseDocs: ConfigDocs | undefined, delta: SnapshotDelta): { snapshot: Snapshot; docs: ConfigDocs; json: () => string[] } | string {
  if (base === undefined || baseDocs === undefined) return 'a delta arrived before any snapshot';
  const b = delta.base;
  if (typeof b !== 'object' || b === null || b.version !== base.version || b.endpointsVersion !== base.endpointsVersion || b.configLength !== base.config.length) {
    return `a delta against version ${b?.version}/${b?.endpointsVersion} arrived, but the last snapshot received is ${base.version}/${base.endpointsVersion}`;
  }
  if (!Array.isArray(delta.docs) || typeof delta.snapshot !== 'object' || delta.snapshot === null || Array.isArray(delta.snapshot)) return 'a malformed delta (no docs or snapshot)';
  const docs: string[] = [];
  const escaped: string[] = [];
  const separated: string[] = [];
  for (const d of delta.docs) {
    if (typeof d === 'string') {
      docs.push(d);
      escaped.push(escapeDocument(d));
      separated.push(SEPARATOR + d);
    } else if (Number.isInteger(d) && d >= 0 && d < baseDocs.docs.length) {
      docs.push(baseDocs.docs[d]);
      escaped.push(baseDocs.escaped[d]);
      separated.push(baseDocs.separated[d]);
    } else return `a malformed delta (document reference ${JSON.stringify(d)} of ${baseDocs.docs.length})`;
  }
  const config = joinConfigDocuments(docs);
  if (config.length !== delta.configLength) return `a delta rebuilt to ${config.length} characters of config, not ${delta.configLength}`;
  const { config: _ignored, ...rest } = delta.snapshot as Snapshot;
  // Made when asked for (a node writes it to disk at most once a second), in parts: joined, the 0.6 MiB of a
  // 10,000-route snapshot would be one more large string for the node's old generation (the writer encodes the parts).
  const json = (): string[] => {
    const head = JSON.stringify(rest);
    const parts = [`${head.length > 2 ? `${head.slice(0, -1)},` : '{'}"config":"`];
    for (let i = 0; i < escaped.length; i++) parts.push(i === 0 ? escaped[i] : `---\\n${escaped[i]}`);
    parts.push('"}');
    return parts;
  };
  return { snapshot: { ...rest, config }, docs: { docs, escaped, separated }, json };
}

// The node's last good snapshot on disk, in a versioned format, so it can serve when the control plane is unreachable.
import { readFile } from 'node:fs/promises';
import { snapshotSchemaSupported, type Snapshot } from '../model/snapshot.ts';
import { writeFileAtomic } from './atomic-file.ts';

/** The file format this code writes and reads; an unknown format is ignored (with a message), never guessed at. */
export const SNAPSHOT_FILE_FORMAT = 1;

export interface SnapshotFile {
  format: number;
  /** When it was written (epoch ms). */
  savedAt: number;
  snapshot: Snapshot;
}

export type LoadedSnapshot =
  | { ok: true; snapshot: Snapshot; savedAt: number }
  | { ok: false; missing: boolean; message: string };

/**
 * `json`: the snapshot's JSON text when the caller has it already (as received, or in parts that join to it: a
 * delta-built snapshot), so a large one is not serialized again.
 */
export async function saveSnapshotFile(path: string, snapshot: Snapshot, now: number = Date.now(), json?: string | readonly string[]): Promise<void> {
  if (json === undefined) {
    const file: SnapshotFile = { format: SNAPSHOT_FILE_FORMAT, savedAt: now, snapshot };
    await writeFileAtomic(path, JSON.stringify(file));
    return;
  }
  const head = `{"format":${SNAPSHOT_FILE_FORMAT},"savedAt":${Number(now)},"snapshot":`;
  await writeFileAtomic(path, typeof json === 'string' ? `${head}${json}}` : [head, ...json, '}']);
}

export async function loadSnapshotFile(path: string): Promise<LoadedSnapshot> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    return { ok: false, missing, message: missing ? `no saved snapshot at ${path}` : `cannot read ${path}: ${(err as Error).message}` };
  }
  let file: Partial<SnapshotFile>;
  try {
    file = JSON.parse(text) as Partial<SnapshotFile>;
  } catch {
    return { ok: false, missing: false, message: `${path} is not JSON: ignored` };
  }
  if (typeof file !== 'object' || file === null || file.format !== SNAPSHOT_FILE_FORMAT) {
    return { ok: false, missing: false, message: `${path} has snapshot file format ${JSON.stringify(file?.format)}, this node reads format ${SNAPSHOT_FILE_FORMAT}: ignored` };
  }
  const s = file.snapshot;
  if (typeof s !== 'object' || s === null || typeof s.config !== 'string' || !Number.isSafeInteger(s.version)) {
    return { ok: false, missing: false, message: `${path} holds no snapshot: ignored` };
  }
  if (!snapshotSchemaSupported(s.schema)) return { ok: false, missing: false, message: `${path} holds a snapshot of schema ${JSON.stringify(s.schema)}, which this node cannot read: ignored` };
  return { ok: true, snapshot: s, savedAt: typeof file.savedAt === 'number' ? file.savedAt : 0 };
}

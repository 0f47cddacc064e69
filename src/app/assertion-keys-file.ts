// A node's end-user assertion keys on disk: written from the snapshot (0600, the signing key is in it) under a name
// that changes with the content, so a key change changes the data plane's config and is picked up like any other.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AssertionKeys } from '../model/snapshot.ts';

const PREFIX = 'assertion-keys-';

/** Writes the keys (if that version is not there yet) and returns the file's path. */
export function writeAssertionKeys(dir: string, keys: AssertionKeys): string {
  const text = JSON.stringify(keys);
  const file = join(dir, `${PREFIX}${createHash('sha256').update(text).digest('hex').slice(0, 16)}.json`);
  if (existsSync(file)) return file;
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
  return file;
}

/** Removes every other keys file of `dir` (after the config that reads `current` was applied). */
export function removeStaleAssertionKeys(dir: string, current: string | undefined): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    const p = join(dir, n);
    if (n.startsWith(PREFIX) && n.endsWith('.json') && p !== current) rmSync(p, { force: true });
  }
}

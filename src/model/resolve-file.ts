// Resolves a file named in config against the config file's directory and reports it when it is not there.
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { report } from './doc-context.ts';
import type { DocContext } from './doc-context.ts';

/** The absolute path; a problem at `path` when no regular file exists there (load time only, never per request). */
export function resolveFile(cx: DocContext, path: string, name: string): string {
  const abs = resolve(cx.baseDir, name);
  const stat = statSync(abs, { throwIfNoEntry: false });
  if (!stat) report(cx, path, `file not found: ${abs}`);
  else if (!stat.isFile()) report(cx, path, `not a regular file: ${abs}`);
  return abs;
}

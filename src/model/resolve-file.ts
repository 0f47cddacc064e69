// Resolves a file named in config against the config file's directory and reports it when it is not there.
import { statSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { report } from './doc-context.ts';
import type { DocContext } from './doc-context.ts';

/** The absolute path; a problem at `path` when no regular file exists there (load time only, never per request). */
export function resolveFile(cx: DocContext, path: string, name: string): string {
  if (cx.baseDir === '' && !isAbsolute(name)) {
    report(cx, path, `relative path ${JSON.stringify(name)}: config applied to the control plane is read on each node's own host, so file paths must be absolute`);
    return name;
  }
  const abs = resolve(cx.baseDir, name);
  const stat = statSync(abs, { throwIfNoEntry: false });
  if (!stat) report(cx, path, `file not found: ${abs}`);
  else if (!stat.isFile()) report(cx, path, `not a regular file: ${abs}`);
  return abs;
}

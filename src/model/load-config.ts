// Entry point for config: reads YAML files or text, and returns the validated Config or every problem found.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDocuments } from './parse-documents.ts';
import type { ParsedResource } from './parse-documents.ts';
import type { NamedValueInputs } from './named-value-types.ts';
import type { Config, Problem } from './types.ts';
import { assembleConfig } from './validate.ts';

export { configSchema } from './schema.ts';
export { defaultGateway } from './default-gateway.ts';

export interface LoadResult {
  /** Present only when there are no problems. */
  config?: Config;
  problems: Problem[];
}

/** One text (e.g. a body sent to the admin API); `file` names it in problems and anchors relative file paths. */
export function parseConfigText(text: string, file: string, namedValues?: NamedValueInputs): LoadResult {
  const { resources, problems } = parseDocuments(text, file);
  return assembleConfig(resources, problems, [text], [file], namedValues);
}

function problemAt(file: string, message: string): Problem {
  return { file, line: 1, col: 1, path: '', message };
}

/** Files to read: a directory contributes its *.yaml and *.yml files, sorted by name. */
async function expand(paths: string[], problems: Problem[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    try {
      if (!(await stat(path)).isDirectory()) {
        files.push(path);
        continue;
      }
      const names = (await readdir(path)).filter((n) => /\.ya?ml$/.test(n)).sort();
      if (names.length === 0) problems.push(problemAt(path, 'directory has no .yaml or .yml files'));
      files.push(...names.map((n) => join(path, n)));
    } catch (err) {
      problems.push(problemAt(path, `cannot read: ${(err as Error).message}`));
    }
  }
  return files;
}

/**
 * Loads files and directories as one config: resources may reference each other across files.
 * Never throws for bad input; unreadable paths are problems too.
 */
export async function loadConfigFiles(paths: string[], namedValues?: NamedValueInputs): Promise<LoadResult> {
  const problems: Problem[] = [];
  const files = await expand(paths, problems);
  const texts: string[] = [];
  const resources: ParsedResource[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      problems.push(problemAt(file, `cannot read: ${(err as Error).message}`));
      continue;
    }
    texts.push(text);
    // Cross-resource checks report through each document's context later: share one problem list.
    resources.push(...parseDocuments(text, file, problems).resources);
  }
  return assembleConfig(resources, problems, texts, files, namedValues);
}

/** One line per problem: `file:line:col: message (path)`. */
export function formatProblems(problems: Problem[]): string {
  return problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.message}${p.path ? ` (${p.path})` : ''}`).join('\n');
}

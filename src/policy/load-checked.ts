// Loading config for use: the model's validation plus the checks that need the expression engine (a layer above the model).
import { loadConfigFiles, parseConfigText, type LoadResult } from '../model/load-config.ts';
import type { NamedValueInputs } from '../model/named-value-types.ts';
import { checkConfigExpressions } from './config-expressions.ts';

function withExpressions(r: LoadResult): LoadResult {
  if (!r.config) return r;
  const problems = checkConfigExpressions(r.config);
  return problems.length > 0 ? { problems } : r;
}

/** Files and directories → a Config whose every expression compiles, or every problem with file:line:col. */
export async function loadCheckedConfig(paths: string[], namedValues?: NamedValueInputs): Promise<LoadResult> {
  return withExpressions(await loadConfigFiles(paths, namedValues));
}

export function parseCheckedConfig(text: string, file: string, namedValues?: NamedValueInputs): LoadResult {
  return withExpressions(parseConfigText(text, file, namedValues));
}

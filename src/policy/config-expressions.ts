// Load-time check of every expression in a config: each one must compile and stay under the cost limit; problems carry file:line:col.
import type { Config, ExpressionSite, Problem } from '../model/types.ts';
import { compileExpression, type CompiledExpression } from './expression.ts';

/** Line and column of `offset` inside an expression that starts at (line, col) in its file. */
function at(source: string, line: number, col: number, offset: number, indent = 0): { line: number; col: number } {
  const before = source.slice(0, offset);
  const nl = before.lastIndexOf('\n');
  if (nl === -1) return { line, col: col + offset };
  return { line: line + before.split('\n').length - 1, col: indent + offset - nl };
}

export function checkConfigExpressions(config: Config): Problem[] {
  const problems: Problem[] = [];
  /** Compiles the expression at `site`; its problems are reported where they are in the file. */
  const check = (site: ExpressionSite): CompiledExpression | null => {
    const r = compileExpression(site.source);
    if (r.ok) return r.expr;
    for (const e of r.problems) {
      const pos = at(site.source, site.line, site.col, e.offset, site.indent);
      problems.push({ file: site.file, line: pos.line, col: pos.col, path: site.path, message: `expression: ${e.message}` });
    }
    return null;
  };
  // Fragments are checked where they are defined (once, even when included in many places or nowhere).
  for (const p of [...(config.apiPolicies ?? []), ...(config.policyFragments ?? [])]) for (const site of p.spec.expressions) check(site);
  // AccessPolicy `cel` rules: a condition, so the result must be a boolean.
  for (const p of config.accessPolicies ?? []) {
    for (const site of p.spec.expressions ?? []) {
      const expr = check(site);
      if (expr !== null && expr.type !== 'bool' && expr.type !== 'dyn') {
        problems.push({ file: site.file, line: site.line, col: site.col, path: site.path, message: `expression: a cel rule must be a condition (bool), this one is ${expr.type}` });
      }
    }
  }
  return problems.sort((a, b) => (a.file === b.file ? a.line - b.line || a.col - b.col : a.file < b.file ? -1 : 1));
}

// Policy attribute values: literals, `@(…)` CEL expressions, and JSON templates whose strings may be expressions.
import { compileExpression, type CompiledExpression } from '../policy/expression.ts';
import { expressionText } from '../model/validate-api-policy.ts';
import { PolicyError, type PolicyContext } from './policy-context.ts';
import type { CompileEnv } from './policy-pipeline.ts';
import { contextFor } from './policy-expression-context.ts';

const NONE: ReadonlySet<string> = new Set();

export type ValueFn = ((pc: PolicyContext) => string) & { reads: ReadonlySet<string> };
export type ConditionFn = ((pc: PolicyContext) => boolean) & { reads: ReadonlySet<string> };
export interface TemplateFn {
  fn: (pc: PolicyContext) => unknown;
  reads: ReadonlySet<string>;
}

export function isExpression(v: string): boolean {
  return expressionText(v) !== undefined;
}

/** The attribute's values: `value` and/or `values`. */
export function valueList(attrs: Record<string, unknown>, _env: CompileEnv): string[] {
  const out: string[] = [];
  if (typeof attrs.value === 'string') out.push(attrs.value);
  if (Array.isArray(attrs.values)) out.push(...(attrs.values as string[]));
  return out;
}

/** Compiles an expression; load-time validation already reported bad ones, so failing here is a bug or a race. */
export function compileExpr(source: string, env: CompileEnv): CompiledExpression {
  const r = compileExpression(source);
  if (!r.ok) throw new Error(`expression ${JSON.stringify(source)}: ${r.problems.map((p) => p.message).join('; ')}`);
  void env;
  return r.expr;
}

/** Evaluates with the request's context; a runtime error becomes a policy failure (LastError reason ExpressionValueEvaluationFailure). */
function evaluate(expr: CompiledExpression, pc: PolicyContext): unknown {
  try {
    return expr.evaluate(contextFor(pc));
  } catch (err) {
    if (err instanceof PolicyError) throw err;
    throw Object.assign(new Error(`expression evaluation failed: ${(err as Error).message}`), { reason: 'ExpressionValueEvaluationFailure' });
  }
}

function text(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  if (typeof v === 'bigint' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x));
}

export function compileValue(v: string, env: CompileEnv): ValueFn {
  const src = expressionText(v);
  if (src === undefined) return Object.assign(() => v, { reads: NONE });
  const expr = compileExpr(src, env);
  return Object.assign((pc: PolicyContext) => text(evaluate(expr, pc)), { reads: expr.reads });
}

/** A condition: an expression with or without `@(…)`; it must give a boolean. */
export function compileCondition(v: string, env: CompileEnv): ConditionFn {
  const expr = compileExpr(expressionText(v) ?? v, env);
  return Object.assign(
    (pc: PolicyContext) => {
      const r = evaluate(expr, pc);
      if (typeof r !== 'boolean') throw Object.assign(new Error(`condition ${JSON.stringify(v)} gave ${typeof r}, not a boolean`), { reason: 'ExpressionValueEvaluationFailure' });
      return r;
    },
    { reads: expr.reads },
  );
}

/** Any value: `@(…)` strings anywhere inside become expressions (a whole-string expression keeps its type). */
export function compileTemplate(value: unknown, env: CompileEnv): TemplateFn {
  const reads = new Set<string>();
  const build = (v: unknown): ((pc: PolicyContext) => unknown) => {
    if (typeof v === 'string') {
      const src = expressionText(v);
      if (src === undefined) return () => v;
      const expr = compileExpr(src, env);
      for (const r of expr.reads) reads.add(r);
      return (pc) => plain(evaluate(expr, pc));
    }
    if (Array.isArray(v)) {
      const items = v.map(build);
      return (pc) => items.map((f) => f(pc));
    }
    if (v !== null && typeof v === 'object') {
      const entries = Object.entries(v).map(([k, x]) => [k, build(x)] as const);
      return (pc) => Object.fromEntries(entries.map(([k, f]) => [k, f(pc)]));
    }
    return () => v;
  };
  return { fn: build(value), reads };
}

/** CEL integers may come back as bigint: JSON bodies want numbers. */
function plain(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), plain(x)]));
  if (Array.isArray(v)) return v.map(plain);
  return v;
}

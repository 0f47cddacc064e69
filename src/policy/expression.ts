// CEL expressions compiled once per config version: load-time checks (context fields, regexes, types, cost) and a fast evaluator.
import { Environment } from '@marcbachmann/cel-js';
import { CONTEXT_SHAPE, ExpressionError, mapEntry, type ExpressionContext, type Shape } from './expression-context.ts';
import { DEFAULT_MAX_COST, estimateCost, sizeOfShape } from './expression-cost.ts';
import { compileRe2, type LinearRegex } from './regex.ts';

export { ExpressionError } from './expression-context.ts';
export { DEFAULT_MAX_COST } from './expression-cost.ts';

export const MAX_SOURCE_LENGTH = 8192;

export interface ExpressionProblem {
  message: string;
  /** UTF-16 offset into the source. */
  offset: number;
  length?: number;
}

export interface CompiledExpression {
  readonly source: string;
  /** Throws an ExpressionError on a runtime error (missing key, type mismatch, value over its cap…). */
  evaluate(context: ExpressionContext): unknown;
  /** Worst-case cost estimate (expression-cost.ts units). */
  readonly cost: number;
  /** Static CEL result type: 'bool', 'string', 'int', 'dyn', … */
  readonly type: string;
  /** Context areas read: 'Request.Headers', 'Request.Body', 'Response.Body', 'Variables', 'Claims', … */
  readonly reads: ReadonlySet<string>;
}

export interface CompileOptions {
  /** Reject above this estimated cost (default DEFAULT_MAX_COST). */
  maxCost?: number;
  /** Always use the interpreter (tests compare it with the fast path). */
  noFastPath?: boolean;
}

export type CompileResult = { ok: true; expr: CompiledExpression } | { ok: false; problems: ExpressionProblem[] };

// CEL's `matches` runs on JavaScript's backtracking RegExp in cel-js and cannot be overridden, so calls are renamed
// to this RE2-backed function before the final parse. Same length as "matches": every offset stays valid.
const RE2_FN = '__re2__';
const regexCache = new Map<string, LinearRegex>();

function re2Test(s: string, pattern: string): boolean {
  let re = regexCache.get(pattern);
  if (re === undefined) {
    const c = compileRe2(pattern);
    if (!c.ok) throw new ExpressionError('invalid_regex', c.message);
    re = c.regex;
    if (regexCache.size < 10_000) regexCache.set(pattern, re);
  }
  return re.test(s);
}

const LIMITS = { maxAstNodes: 2000, maxDepth: 48 };

function withRe2(env: Environment): Environment {
  return env
    .registerFunction(`string.${RE2_FN}(string): bool`, (s: string, p: string) => re2Test(s, p), { async: false })
    .registerFunction(`${RE2_FN}(string, string): bool`, (s: string, p: string) => re2Test(s, p), { async: false });
}

/** Evaluation: `context` is dyn (plain objects and Maps projected from the ExpressionContext). */
const evalEnv = withRe2(new Environment({ limits: LIMITS }).registerVariable('context', 'dyn'));

/** Type checking only: `context` typed from CONTEXT_SHAPE, so `context.Request.Method + 1` fails at load. */
const checkEnv = ((): Environment => {
  const env = new Environment({ limits: LIMITS });
  const typeOf = (sh: Shape): string => {
    switch (sh.kind) {
      case 'string':
        return 'string';
      case 'int':
        return 'int';
      case 'dyn':
        return 'dyn';
      case 'map':
        return `map<string, ${typeOf(sh.value)}>`;
      case 'object': {
        const fields: Record<string, string> = {};
        for (const [k, v] of Object.entries(sh.fields)) fields[k] = typeOf(v);
        env.registerType(`lockgate.${sh.name}`, { fields });
        return `lockgate.${sh.name}`;
      }
    }
  };
  return withRe2(env.registerVariable('context', typeOf(CONTEXT_SHAPE)));
})();

interface Node {
  op: string;
  args: unknown;
  start: number;
  end: number;
}

function children(n: Node): Node[] {
  const out: Node[] = [];
  const add = (x: unknown): void => {
    if (Array.isArray(x)) x.forEach(add);
    else if (x !== null && typeof x === 'object' && 'op' in x) out.push(x as Node);
  };
  add(n.args);
  return out;
}

function celErrorInfo(err: unknown): { code: string; summary: string; start: number; end: number } {
  const e = err as { code?: string; summary?: string; message?: string; range?: { start: number; end: number } };
  const summary = (e.summary ?? e.message ?? String(err)).replaceAll(RE2_FN, 'matches');
  return { code: e.code ?? 'error', summary, start: e.range?.start ?? 0, end: e.range?.end ?? 0 };
}

/** Offset of the method name of `recv.name(…)`: skip the receiver's closing parentheses, blanks and `//` comments. */
function methodNameOffset(src: string, from: number): number {
  let i = from;
  let dot = false;
  while (i < src.length) {
    const c = src[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || (c === ')' && !dot)) i++;
    else if (c === '/' && src[i + 1] === '/') while (i < src.length && src[i] !== '\n') i++;
    else if (c === '.' && !dot) {
      dot = true;
      i++;
    } else return dot ? i : -1;
  }
  return -1;
}

/** `matches` → the RE2 function; the pattern must be a literal so that it is compiled (or rejected) at load. */
function rewriteMatches(src: string, root: Node, problems: ExpressionProblem[]): string {
  const at: number[] = [];
  const walk = (n: Node): void => {
    if (n.op === 'call' || n.op === 'rcall') {
      const name = (n.args as unknown[])[0] as string;
      const fnArgs = (n.op === 'call' ? (n.args as [string, Node[]])[1] : (n.args as [string, Node, Node[]])[2]) ?? [];
      if (name === RE2_FN) problems.push({ message: `unknown function ${RE2_FN}`, offset: n.start, length: n.end - n.start });
      if (name === 'matches') {
        const pos = n.op === 'call' ? n.start : methodNameOffset(src, (n.args as [string, Node])[1].end);
        if (pos >= 0 && src.startsWith('matches', pos)) at.push(pos);
        const pattern = fnArgs[n.op === 'call' ? 1 : 0];
        if (pattern !== undefined) {
          if (pattern.op !== 'value' || typeof pattern.args !== 'string') {
            problems.push({ message: 'the pattern of matches() must be a string literal (it is compiled when the config loads)', offset: pattern.start, length: pattern.end - pattern.start });
          } else {
            const c = compileRe2(pattern.args);
            if (!c.ok) problems.push({ message: c.message, offset: pattern.start, length: pattern.end - pattern.start });
            else if (regexCache.size < 10_000) regexCache.set(pattern.args, c.regex);
          }
        }
      }
    }
    children(n).forEach(walk);
  };
  walk(root);
  let out = src;
  for (const p of at) out = out.slice(0, p) + RE2_FN + out.slice(p + RE2_FN.length);
  return out;
}

function findCall(n: Node, name: string): Node | undefined {
  if ((n.op === 'call' || n.op === 'rcall') && (n.args as unknown[])[0] === name) return n;
  for (const c of children(n)) {
    const f = findCall(c, name);
    if (f !== undefined) return f;
  }
  return undefined;
}

/** A member chain from `context`: the fixed fields it walks, and the map key it then reads, if literal. */
interface Chain {
  node: Node;
  path: string[];
  end: Shape;
  mapKey?: string;
  /** Steps after the map key (dynamic values). */
  rest: number;
  presence: boolean;
}

const ABSENT: Record<string, string> = {
  Response: 'context.Response is not available: there is no response yet',
  LastError: 'context.LastError is not available: no policy has failed',
};

function fieldList(sh: Extract<Shape, { kind: 'object' }>): string {
  return Object.keys(sh.fields).join(', ');
}

/** Validates every use of `context` and collects the chains (for reads, projection and the fast path). */
function collectChains(root: Node, problems: ExpressionProblem[]): Chain[] {
  const chains: Chain[] = [];
  const range = (n: Node): { offset: number; length: number } => ({ offset: n.start, length: n.end - n.start });

  const chainSteps = (n: Node): { names: { name: string; node: Node; literal: boolean }[] } | null => {
    const names: { name: string; node: Node; literal: boolean }[] = [];
    let cur = n;
    for (;;) {
      if (cur.op === '.') {
        const [t, name] = cur.args as [Node, string];
        names.unshift({ name, node: cur, literal: false });
        cur = t;
      } else if (cur.op === '[]') {
        const [t, i] = cur.args as [Node, Node];
        if (i.op !== 'value' || typeof i.args !== 'string') return null;
        names.unshift({ name: i.args, node: cur, literal: true });
        cur = t;
      } else break;
    }
    return cur.op === 'id' && cur.args === 'context' ? { names } : null;
  };

  const record = (n: Node, scope: ReadonlySet<string>, presence: boolean): boolean => {
    if (scope.has('context')) return false;
    const c = chainSteps(n);
    if (c === null) return false;
    let shape: Shape = CONTEXT_SHAPE;
    const path: string[] = [];
    let mapKey: string | undefined;
    let i = 0;
    for (; i < c.names.length; i++) {
      const step = c.names[i];
      if (shape.kind === 'object') {
        const f: Shape | undefined = shape.fields[step.name];
        if (f === undefined) {
          const label = ['context', ...path].join('.');
          const hint = label === 'context.Subscription' && /key/i.test(step.name) ? ' (subscription keys are never exposed to expressions)' : '';
          problems.push({ message: `${label} has no field "${step.name}"${hint}; fields: ${fieldList(shape)}`, ...range(step.node) });
          return true;
        }
        path.push(step.name);
        shape = f;
        continue;
      }
      if (shape.kind === 'map') {
        mapKey = step.name;
        if (shape.lowerCaseKeys && mapKey !== mapKey.toLowerCase()) {
          problems.push({ message: `header names in context.${path.join('.')} are lower-case: write "${mapKey.toLowerCase()}"`, ...range(step.node) });
        }
        i++;
      }
      break;
    }
    chains.push({ node: n, path, end: shape, mapKey, rest: c.names.length - i, presence: presence && mapKey === undefined && i === c.names.length });
    return true;
  };

  const visit = (n: Node, scope: ReadonlySet<string>): void => {
    if ((n.op === '.' || n.op === '[]') && record(n, scope, false)) return;
    if (n.op === 'id' && n.args === 'context' && !scope.has('context')) {
      problems.push({ message: 'context must be followed by a field, e.g. context.Request.Method', ...range(n) });
      return;
    }
    if (n.op === '[]') {
      const [t, i] = n.args as [Node, Node];
      const inner = scope.has('context') ? null : chainSteps(t);
      if (inner !== null && !(i.op === 'value' && typeof i.args === 'string')) {
        // `context.Request[x]`: a computed field name on a fixed-shape object.
        let sh: Shape | undefined = CONTEXT_SHAPE;
        for (const s of inner.names) sh = sh?.kind === 'object' ? sh.fields[s.name] : undefined;
        if (sh?.kind === 'object') {
          problems.push({ message: `fields of context${inner.names.map((s) => `.${s.name}`).join('')} must be named, not computed`, ...range(i) });
          return;
        }
      }
    }
    if (n.op === 'call') {
      const [name, args] = n.args as [string, Node[]];
      if (name === 'has' && args.length === 1 && args[0].op === '.' && record(args[0], scope, true)) return;
    }
    if (n.op === 'rcall') {
      const [name, target, args] = n.args as [string, Node, Node[]];
      const isLoop = ['all', 'exists', 'exists_one', 'map', 'filter'].includes(name) && args.length >= 2 && args[0]?.op === 'id';
      const isBind = name === 'bind' && target.op === 'id' && target.args === 'cel' && args.length === 3 && args[0]?.op === 'id';
      if (isLoop || isBind) {
        const v = args[0].args as string;
        const inner = new Set(scope).add(v);
        if (isLoop) {
          visit(target, scope);
          args.slice(1).forEach((a) => visit(a, inner));
        } else {
          visit(args[1], scope);
          visit(args[2], inner);
        }
        return;
      }
    }
    for (const c of children(n)) visit(c, scope);
  };
  visit(root, new Set());
  return chains;
}

function readsOf(chains: readonly Chain[]): Set<string> {
  const reads = new Set<string>();
  for (const c of chains) {
    if (c.presence || c.path.length === 0) continue;
    const [top, second] = c.path;
    if (top === 'Request' || top === 'Response') {
      const sh = CONTEXT_SHAPE.fields[top] as Extract<Shape, { kind: 'object' }>;
      for (const f of second === undefined ? Object.keys(sh.fields) : [second]) reads.add(`${top}.${f}`);
    } else reads.add(top === 'User' ? 'Claims' : top);
  }
  return reads;
}

type Omitted = Map<string, ExpressionError>;
type Projector = (view: unknown, omitted: Omitted) => unknown;
interface PNode {
  kind: 'value' | 'presence' | 'fields';
  fields: Map<string, PNode>;
  /** For a map read only with literal keys: just those entries (no need to build the whole map). */
  keys?: Set<string>;
}

function projectionTree(chains: readonly Chain[]): PNode {
  const root: PNode = { kind: 'fields', fields: new Map() };
  for (const c of chains) {
    let node = root;
    c.path.forEach((name, i) => {
      const last = i === c.path.length - 1;
      let child = node.fields.get(name);
      if (child === undefined) node.fields.set(name, (child = { kind: last ? 'presence' : 'fields', fields: new Map() }));
      if (!last) {
        if (child.kind === 'presence') child.kind = 'fields';
      } else if (c.mapKey !== undefined) {
        if (child.kind !== 'value') child.keys = new Set();
        child.kind = 'value';
        child.keys?.add(c.mapKey);
      } else if (!c.presence) {
        child.kind = 'value';
        child.keys = undefined;
      }
      node = child;
    });
  }
  return root;
}

function compileProjector(node: PNode, shape: Shape): Projector {
  if (node.kind === 'presence') return () => true;
  if (node.kind === 'value' && shape.kind !== 'object') return (v) => v;
  const sh = shape as Extract<Shape, { kind: 'object' }>;
  const entries = node.kind === 'value' ? Object.keys(sh.fields).map((k): [string, PNode] => [k, { kind: 'value', fields: new Map() }]) : [...node.fields];
  const parts = entries.map(([name, child]) => {
    const f = sh.fields[name];
    // has() on a field that is always there must not call its getter (it could read a body).
    const always = child.kind === 'presence' && !(f.kind === 'object' && f.optional);
    const keys = child.kind === 'value' && child.keys !== undefined ? [...child.keys] : undefined;
    return { name, always, keys, project: compileProjector(child, f) };
  });
  return (view, omitted) => {
    const out: Record<string, unknown> = {};
    for (const p of parts) {
      if (p.always) {
        out[p.name] = true;
        continue;
      }
      let v: unknown;
      try {
        if (p.keys !== undefined) {
          const m = new Map<string, unknown>();
          for (const k of p.keys) {
            const e = mapEntry(view, p.name, k);
            if (e !== undefined) m.set(k, e);
          }
          out[p.name] = m;
          continue;
        }
        v = (view as Record<string, unknown>)[p.name];
      } catch (err) {
        if (!(err instanceof ExpressionError)) throw err;
        omitted.set(p.name, err);
        continue;
      }
      if (v === undefined) {
        omitted.set(p.name, new ExpressionError('unavailable', ABSENT[p.name] ?? `context field ${p.name} is not available`));
        continue;
      }
      out[p.name] = p.project(v, omitted);
    }
    return out;
  };
}

type FastFn = (ctx: ExpressionContext) => unknown;

/** A direct accessor for `context.A.B`, `context.A.Map["k"]`, and those compared with a literal of the same type. */
function fastPath(root: Node, chains: readonly Chain[]): FastFn | undefined {
  const access = (c: Chain): FastFn | undefined => {
    if (c.presence || c.rest > 0 || c.end.kind === 'object' || c.path.length === 0) return undefined;
    const { path, mapKey, node } = c;
    const steps = mapKey === undefined ? path : path.slice(0, -1);
    const last = path[path.length - 1];
    const where = { offset: node.start, length: node.end - node.start };
    const fail = (e: ExpressionError): never => {
      throw new ExpressionError(e.code, e.message, where.offset, where.length, { cause: e });
    };
    return (ctx) => {
      let v: unknown = ctx;
      try {
        for (const name of steps) {
          v = (v as Record<string, unknown>)[name];
          if (v === undefined) fail(new ExpressionError('unavailable', ABSENT[name] ?? `context field ${name} is not available`));
        }
        if (mapKey === undefined) return v;
        const out = mapEntry(v, last, mapKey);
        if (out === undefined) fail(new ExpressionError('no_such_key', `No such key: ${mapKey}`));
        return out;
      } catch (err) {
        if (err instanceof ExpressionError && err.length === 0) fail(err);
        throw err;
      }
    };
  };
  const leafType = (c: Chain): string | undefined => {
    const sh = c.mapKey !== undefined && c.end.kind === 'map' ? c.end.value : c.end;
    return c.mapKey === undefined && c.end.kind === 'map' ? undefined : sh.kind === 'string' ? 'string' : sh.kind === 'int' ? 'bigint' : undefined;
  };
  const only = chains.length === 1 ? chains[0] : undefined;
  if (only === undefined) return undefined;
  if (only.node === root) return access(only);
  if (root.op !== '==' && root.op !== '!=') return undefined;
  const [a, b] = root.args as [Node, Node];
  const lit = a === only.node ? b : b === only.node ? a : undefined;
  if (lit === undefined || lit.op !== 'value' || typeof lit.args !== leafType(only)) return undefined;
  const get = access(only);
  if (get === undefined) return undefined;
  const value = lit.args;
  return root.op === '==' ? (ctx) => get(ctx) === value : (ctx) => get(ctx) !== value;
}

function problem(err: unknown): ExpressionProblem {
  const e = celErrorInfo(err);
  return { message: e.summary, offset: e.start, length: Math.max(0, e.end - e.start) };
}

function snippet(src: string, start: number, end: number): string {
  const s = src.slice(start, end).replace(/\s+/g, ' ');
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

export function compileExpression(source: string, opts: CompileOptions = {}): CompileResult {
  if (source.length > MAX_SOURCE_LENGTH) {
    return { ok: false, problems: [{ message: `expression is ${source.length} characters long, over the limit of ${MAX_SOURCE_LENGTH}`, offset: 0, length: source.length }] };
  }
  let ast: Node;
  try {
    ast = evalEnv.parse(source).ast as unknown as Node;
  } catch (err) {
    return { ok: false, problems: [problem(err)] };
  }
  const problems: ExpressionProblem[] = [];
  const rewritten = rewriteMatches(source, ast, problems);
  let parsed: ReturnType<Environment['parse']>;
  try {
    parsed = evalEnv.parse(rewritten);
  } catch (err) {
    return { ok: false, problems: [problem(err)] };
  }
  ast = parsed.ast as unknown as Node;
  // Fail closed: a `matches` left over would run on the backtracking engine.
  const left = findCall(ast, 'matches');
  if (left !== undefined) problems.push({ message: 'matches() could not be moved to the linear-time engine; rewrite the call', offset: left.start, length: left.end - left.start });
  const chains = collectChains(ast, problems);
  if (problems.length > 0) return { ok: false, problems };

  const checked = checkEnv.check(rewritten);
  if (!checked.valid) return { ok: false, problems: [problem(checked.error)] };
  // Type-check the evaluation AST now, not on the first request.
  const evalCheck = parsed.check();
  if (!evalCheck.valid) return { ok: false, problems: [problem(evalCheck.error)] };

  const maxCost = opts.maxCost ?? DEFAULT_MAX_COST;
  const est = estimateCost(parsed.ast, new Map([['context', sizeOfShape(CONTEXT_SHAPE)]]));
  if (!(est.cost <= maxCost)) {
    const { start, end, cost } = est.hotspot;
    const fmt = (n: number): string => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'unbounded');
    const part = start === ast.start && end === ast.end ? '' : `; most of it is \`${snippet(source, start, end)}\` (${fmt(cost)})`;
    return {
      ok: false,
      problems: [{ message: `estimated cost ${fmt(est.cost)} is over the limit of ${fmt(maxCost)} (worst case, with request data at its size caps)${part}`, offset: start, length: end - start }],
    };
  }

  const project = compileProjector(projectionTree(chains), CONTEXT_SHAPE);
  const interpret = (ctx: ExpressionContext): unknown => {
    const omitted: Omitted = new Map();
    const context = project(ctx, omitted);
    try {
      return parsed({ context });
    } catch (err) {
      if (err instanceof ExpressionError && err.length > 0) throw err;
      const e = celErrorInfo(err);
      const m = /^No such key: (\w+)$/.exec(e.summary);
      const cause = m ? omitted.get(m[1]) : undefined;
      throw new ExpressionError(cause?.code ?? e.code, cause?.message ?? e.summary, e.start, e.end - e.start, { cause: err });
    }
  };
  const fast = opts.noFastPath ? undefined : fastPath(ast, chains);
  return { ok: true, expr: { source, evaluate: fast ?? interpret, cost: est.cost, type: checked.type ?? 'dyn', reads: readsOf(chains) } };
}

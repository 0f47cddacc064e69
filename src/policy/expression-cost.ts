// Static worst-case cost of a CEL expression, as Kubernetes estimates CEL cost: every request-derived value at its size cap.
import type { ASTNode } from '@marcbachmann/cel-js';
import type { Shape } from './expression-context.ts';

/**
 * Units: one per AST node evaluated, one per ten characters a string function scans, one per input character
 * for `matches` (RE2 is linear but costs tens of nanoseconds per character). Comprehensions multiply their body
 * by the most elements their range can have.
 */
export const DEFAULT_MAX_COST = 100_000;

/** The largest a value can be: string/bytes length, list/map entry count, element/key sizes, object fields. */
export interface Size {
  readonly str: number;
  readonly count: number;
  readonly elem?: Size;
  readonly key?: Size;
  readonly fields?: Readonly<Record<string, Size>>;
  /** Bound on the work to walk the whole value (dyn values whose total size is capped). */
  readonly total?: number;
}

export interface CostEstimate {
  cost: number;
  /** The deepest sub-expression carrying at least half of the cost (for the error message). */
  hotspot: { start: number; end: number; cost: number };
}

const SCALAR: Size = { str: 0, count: 0 };
/** A number or timestamp printed as a string. */
const PRINTED: Size = { str: 32, count: 0 };

function dyn(str: number, count: number, total?: number): Size {
  const d: { str: number; count: number; total?: number; elem?: Size; key?: Size } = { str, count, total };
  d.elem = d;
  d.key = d;
  return d;
}

/** The worst-case size of a value of this shape. */
export function sizeOfShape(shape: Shape): Size {
  switch (shape.kind) {
    case 'string':
      return { str: shape.max, count: 0 };
    case 'int':
      return SCALAR;
    case 'map':
      return { str: 0, count: shape.entries, key: { str: shape.keyMax, count: 0 }, elem: sizeOfShape(shape.value) };
    case 'dyn':
      return dyn(shape.string, shape.entries, tenth(shape.totalChars) + shape.totalNodes);
    case 'object': {
      const fields: Record<string, Size> = {};
      for (const [k, v] of Object.entries(shape.fields)) fields[k] = sizeOfShape(v);
      return { str: 0, count: Object.keys(fields).length, fields };
    }
  }
}

const tenth = (n: number): number => Math.ceil(n / 10);

function maxSize(a: Size, b: Size, depth = 0): Size {
  if (a === b) return a;
  if (depth > 3) return a.str + a.count >= b.str + b.count ? a : b;
  const elem = a.elem && b.elem ? maxSize(a.elem, b.elem, depth + 1) : (a.elem ?? b.elem);
  const key = a.key && b.key ? maxSize(a.key, b.key, depth + 1) : (a.key ?? b.key);
  return { str: Math.max(a.str, b.str), count: Math.max(a.count, b.count), elem, key, fields: a.fields === b.fields ? a.fields : undefined };
}

/** Comparing two values: strings by their shorter length, lists and maps element by element. */
function eqCost(a: Size, b: Size, depth = 0): number {
  let c = tenth(Math.min(a.str, b.str));
  if (depth < 3 && a.count > 0 && b.count > 0) c += Math.min(a.count, b.count) * (1 + eqCost(a.elem ?? SCALAR, b.elem ?? SCALAR, depth + 1));
  return Math.max(1, Math.min(c, a.total ?? Infinity, b.total ?? Infinity));
}

interface Node {
  op: string;
  args: unknown;
  start: number;
  end: number;
}

interface Est {
  cost: number;
  size: Size;
}

const COMPREHENSIONS: Record<string, number[]> = { all: [2], exists: [2], exists_one: [2], filter: [2], map: [2, 3] };

class Estimator {
  readonly spots: { start: number; end: number; cost: number; depth: number }[] = [];

  visit(n: Node, scope: ReadonlyMap<string, Size>, mult: number, depth: number): Est {
    const r = this.#visit(n, scope, mult, depth);
    this.spots.push({ start: n.start, end: n.end, cost: r.cost * mult, depth });
    return r;
  }

  #visit(n: Node, scope: ReadonlyMap<string, Size>, mult: number, depth: number): Est {
    const sub = (x: Node, s = scope, m = mult): Est => this.visit(x, s, m, depth + 1);
    const args = n.args as Node[];
    switch (n.op) {
      case 'value': {
        const v = n.args;
        if (typeof v === 'string') return { cost: 0, size: { str: v.length, count: 0 } };
        if (v instanceof Uint8Array) return { cost: 0, size: { str: v.length, count: 0 } };
        return { cost: 0, size: SCALAR };
      }
      case 'id':
        return { cost: 1, size: scope.get(n.args as string) ?? dyn(0, 0) };
      case '.':
      case '.?': {
        const [target, name] = n.args as [Node, string];
        const t = sub(target);
        return { cost: 1 + t.cost, size: t.size.fields?.[name] ?? t.size.elem ?? SCALAR };
      }
      case '[]':
      case '[?]': {
        const t = sub(args[0]);
        const i = sub(args[1]);
        const lit = args[1].op === 'value' && typeof args[1].args === 'string' ? t.size.fields?.[args[1].args] : undefined;
        return { cost: 1 + t.cost + i.cost, size: lit ?? t.size.elem ?? SCALAR };
      }
      case 'list': {
        let cost = 10;
        let elem: Size | undefined;
        for (const a of args) {
          const e = sub(a);
          cost += e.cost;
          elem = elem ? maxSize(elem, e.size) : e.size;
        }
        return { cost, size: { str: 0, count: args.length, elem: elem ?? SCALAR } };
      }
      case 'map': {
        let cost = 30;
        let key: Size | undefined;
        let elem: Size | undefined;
        for (const [k, v] of n.args as [Node, Node][]) {
          const ke = sub(k);
          const ve = sub(v);
          cost += ke.cost + ve.cost;
          key = key ? maxSize(key, ke.size) : ke.size;
          elem = elem ? maxSize(elem, ve.size) : ve.size;
        }
        return { cost, size: { str: 0, count: (n.args as unknown[]).length, key: key ?? SCALAR, elem: elem ?? SCALAR } };
      }
      case '?:': {
        const [c, a, b] = args.map((x) => sub(x));
        return { cost: 1 + c.cost + Math.max(a.cost, b.cost), size: maxSize(a.size, b.size) };
      }
      case '&&':
      case '||':
      case '-':
      case '*':
      case '/':
      case '%': {
        const [a, b] = args.map((x) => sub(x));
        return { cost: 1 + a.cost + b.cost, size: SCALAR };
      }
      case '!_':
      case '-_':
        return { cost: 1 + sub(n.args as Node).cost, size: SCALAR };
      case '==':
      case '!=': {
        const [a, b] = args.map((x) => sub(x));
        return { cost: a.cost + b.cost + eqCost(a.size, b.size), size: SCALAR };
      }
      case '<':
      case '<=':
      case '>':
      case '>=': {
        const [a, b] = args.map((x) => sub(x));
        return { cost: 1 + a.cost + b.cost + tenth(Math.min(a.size.str, b.size.str)), size: SCALAR };
      }
      case '+': {
        const [a, b] = args.map((x) => sub(x));
        const str = a.size.str + b.size.str;
        const count = a.size.count + b.size.count;
        const elem = a.size.elem && b.size.elem ? maxSize(a.size.elem, b.size.elem) : (a.size.elem ?? b.size.elem);
        return { cost: 1 + a.cost + b.cost + tenth(str) + count, size: { str, count, elem } };
      }
      case 'in': {
        const [a, b] = args.map((x) => sub(x));
        const scan = Math.max(b.size.count * eqCost(a.size, b.size.elem ?? SCALAR), tenth(b.size.str));
        return { cost: 1 + a.cost + b.cost + scan, size: SCALAR };
      }
      case 'call': {
        const [name, fnArgs] = n.args as [string, Node[]];
        if (name === 'has' && fnArgs.length === 1) return { cost: 1 + sub(fnArgs[0]).cost, size: SCALAR };
        const ests = fnArgs.map((x) => sub(x));
        return callCost(name, undefined, ests);
      }
      case 'rcall': {
        const [name, target, fnArgs] = n.args as [string, Node, Node[]];
        if (COMPREHENSIONS[name]?.includes(fnArgs.length) && fnArgs[0].op === 'id') {
          const range = sub(target);
          const count = range.size.count;
          // A map's loop variable takes its keys, a list's its elements.
          const iter = range.size.key ?? range.size.elem ?? SCALAR;
          const inner = new Map(scope).set(fnArgs[0].args as string, iter);
          let body = 1;
          let last: Size = SCALAR;
          for (const b of fnArgs.slice(1)) {
            const e = sub(b, inner, mult * Math.max(1, count));
            body += e.cost;
            last = e.size;
          }
          const size = name === 'map' ? { str: 0, count, elem: last } : name === 'filter' ? { str: 0, count, elem: iter } : SCALAR;
          return { cost: range.cost + count * body, size };
        }
        if (name === 'bind' && target.op === 'id' && target.args === 'cel' && fnArgs.length === 3 && fnArgs[0].op === 'id') {
          const init = sub(fnArgs[1]);
          const body = sub(fnArgs[2], new Map(scope).set(fnArgs[0].args as string, init.size));
          return { cost: 1 + init.cost + body.cost, size: body.size };
        }
        const recv = sub(target);
        const out = callCost(name, recv, fnArgs.map((x) => sub(x)));
        return { cost: out.cost + recv.cost, size: out.size };
      }
      default:
        // An operator this estimator does not know: fail safe.
        return { cost: Infinity, size: SCALAR };
    }
  }
}

/** A function's own cost plus its arguments' (not its receiver's). */
function callCost(name: string, recv: Est | undefined, args: Est[]): Est {
  const argCost = args.reduce((s, a) => s + a.cost, 0);
  const first = recv?.size ?? args[0]?.size ?? SCALAR;
  const arg0 = (recv ? args[0]?.size : args[1]?.size) ?? SCALAR;
  const own = (cost: number, size: Size = SCALAR): Est => ({ cost: 1 + argCost + cost, size });
  switch (name) {
    case 'size':
    case 'at':
      return own(0);
    case 'matches':
    case '__re2__':
      return own(first.str);
    case 'contains':
    case 'indexOf':
    case 'lastIndexOf':
      return own(tenth(first.str));
    case 'startsWith':
    case 'endsWith':
      return own(tenth(arg0.str));
    case 'lowerAscii':
    case 'upperAscii':
    case 'trim':
    case 'substring':
      return own(tenth(first.str), { str: first.str, count: 0 });
    case 'split':
      return own(tenth(first.str), { str: 0, count: first.str + 1, elem: { str: first.str, count: 0 } });
    case 'join': {
      const str = first.count * ((first.elem?.str ?? 0) + arg0.str);
      return own(tenth(str), { str, count: 0 });
    }
    case 'string':
      return own(tenth(first.str), recv ? { str: first.str, count: 0 } : maxSize(PRINTED, { str: first.str, count: 0 }));
    case 'bytes':
      return own(tenth(first.str), { str: first.str, count: 0 });
    case 'hex':
      return own(tenth(first.str), { str: 2 * first.str, count: 0 });
    case 'base64':
      return own(tenth(first.str), { str: Math.ceil((4 * first.str) / 3) + 4, count: 0 });
    case 'json':
      return own(first.str, dyn(first.str, first.str));
    case 'dyn':
      return own(0, first);
    default:
      // Conversions (int, double, timestamp, duration, …) and timestamp getters: linear in their input at most.
      return own(tenth(args.reduce((s, a) => s + a.size.str, recv?.size.str ?? 0)), SCALAR);
  }
}

/** The worst-case cost of `ast`; `vars` gives the size of each variable (`context`). */
export function estimateCost(ast: ASTNode, vars: ReadonlyMap<string, Size>): CostEstimate {
  const e = new Estimator();
  const { cost } = e.visit(ast as unknown as Node, vars, 1, 0);
  let hotspot = { start: ast.start, end: ast.end, cost };
  let depth = -1;
  for (const s of e.spots) {
    if (s.cost * 2 >= cost && s.depth > depth) {
      depth = s.depth;
      hotspot = { start: s.start, end: s.end, cost: s.cost };
    }
  }
  return { cost, hotspot };
}

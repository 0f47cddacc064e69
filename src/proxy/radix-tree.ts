// Segment tree for path templates and prefixes: static segments found by hash, one param child per node, `/*` prefix ends.

/**
 * A parsed path template. `/orders/{id}/items/*` → segments `['orders', null, 'items']`
 * (null = one-segment parameter), paramNames `['id']`, prefix true.
 * `/*` has no segments and is a prefix of every path; `/` is the one empty segment `['']`.
 */
export interface Template {
  segments: Array<string | null>;
  paramNames: string[];
  /** Ends in `/*`: matches the path up to here, then nothing or `/...` (segment boundary). */
  prefix: boolean;
}

/** A tree node: the path up to here is fixed; children continue it by one segment. */
export interface TreeNode<C> {
  /** The static segment leading into this node ('' for the root and param nodes). */
  segment: string;
  /** Next static sibling whose segment has the same hash (collision chain). */
  next: TreeNode<C> | null;
  /** The static child when there is exactly one: no Map, no hash, one less cache miss per level. */
  only: TreeNode<C> | null;
  /** Static children by segmentHash, once there are two or more. */
  statics: Map<number, TreeNode<C>> | null;
  param: TreeNode<C> | null;
  /** First candidate of the templates that end exactly here; the caller chains and orders the rest. */
  end: C | null;
  /** First candidate of the `/*` templates whose static part ends here. */
  prefix: C | null;
}

/** Picks a candidate from a terminal's chain (given its head) or none, which makes the lookup backtrack. */
export type Select<C, A, B> = (head: C, a: A, b: B) => C | undefined;

const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * Parses a full path template; a string result is the problem with it. Segments and names go
 * through `intern`, so the thousands of `items` or `id` in a big config are one hot string.
 */
export function parseTemplate(path: string, intern = new Map<string, string>()): Template | string {
  const one = (s: string) => intern.get(s) ?? (intern.set(s, s), s);
  if (path.charCodeAt(0) !== 47) return 'must start with "/"';
  const prefix = path.endsWith('/*');
  const body = prefix ? path.slice(0, -2) : path;
  const raw = body === '' ? [] : body.slice(1).split('/');
  const segments: Array<string | null> = [];
  const paramNames: string[] = [];
  for (const seg of raw) {
    if (seg.includes('*')) return '"*" may only be the whole last segment ("/*", a prefix)';
    if (seg.length > 2 && seg.startsWith('{') && seg.endsWith('}')) {
      const name = seg.slice(1, -1);
      if (!PARAM_NAME.test(name) || name === '__proto__') return `bad parameter name "${name}"`;
      if (paramNames.includes(name)) return `parameter "${name}" appears twice`;
      paramNames.push(one(name));
      segments.push(null);
    } else if (seg.includes('{') || seg.includes('}')) {
      return `a parameter must be a whole segment ("{name}"), got "${seg}"`;
    } else {
      segments.push(one(seg));
    }
  }
  return { segments, paramNames, prefix };
}

export function createNode<C>(segment = ''): TreeNode<C> {
  return { segment, next: null, only: null, statics: null, param: null, end: null, prefix: null };
}

/** Returns (creating the path to it) the node where `template` ends: its `end` or, for `/*`, its `prefix`. */
export function terminalNode<C>(root: TreeNode<C>, template: Template): TreeNode<C> {
  let node = root;
  for (const seg of template.segments) node = seg === null ? (node.param ??= createNode()) : staticChild(node, seg);
  return node;
}

function staticChild<C>(node: TreeNode<C>, seg: string): TreeNode<C> {
  if (node.only !== null && node.only.segment === seg) return node.only;
  if (node.only === null && node.statics === null) return (node.only = createNode<C>(seg));
  if (node.statics === null) {
    node.statics = new Map();
    linkChild(node.statics, node.only as TreeNode<C>);
    node.only = null;
  }
  for (let c: TreeNode<C> | null | undefined = node.statics.get(segmentHash(seg, 0, seg.length)); c !== undefined && c !== null; c = c.next) {
    if (c.segment === seg) return c;
  }
  return linkChild(node.statics, createNode<C>(seg));
}

function linkChild<C>(statics: Map<number, TreeNode<C>>, child: TreeNode<C>): TreeNode<C> {
  const h = segmentHash(child.segment, 0, child.segment.length);
  child.next = statics.get(h) ?? null;
  statics.set(h, child);
  return child;
}

/** FNV-1a over char codes, kept in Smi range so Map lookups stay on the fast integer path. */
export function segmentHash(s: string, from: number, to: number): number {
  let h = FNV_OFFSET;
  for (let i = from; i < to; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV_PRIME);
  return h & SMI_MASK;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;
const SMI_MASK = 0x3fffffff;

/**
 * Depth-first lookup in precedence order: at each segment the static child, then the param
 * child, then this node's prefix list; a template ending here is tried before all of them.
 * So the first segment where two routes differ decides: static > param > shorter prefix.
 * `params` receives [start, end) offsets of each param segment on the accepted branch.
 * Hashing a slice of `path` instead of slicing it keeps the walk allocation-free.
 */
export function lookupTree<C, A, B>(
  root: TreeNode<C>,
  path: string,
  select: Select<C, A, B>,
  a: A,
  b: B,
  params: Int32Array,
): C | undefined {
  if (path.charCodeAt(0) !== 47) return undefined;
  return walk(root, path, 0, 0, select, a, b, params);
}

function walk<C, A, B>(
  node: TreeNode<C>,
  path: string,
  pos: number,
  depth: number,
  select: Select<C, A, B>,
  a: A,
  b: B,
  params: Int32Array,
): C | undefined {
  const len = path.length;
  if (pos === len) {
    if (node.end !== null) {
      const c = select(node.end, a, b);
      if (c !== undefined) return c;
    }
  } else {
    // path[pos] is '/': the next segment is [start, end). One pass finds its end and, when
    // there are static children to look up, its hash (a char loop beats indexOf here).
    const start = pos + 1;
    let end = start;
    if (node.statics !== null) {
      let h = FNV_OFFSET;
      for (let c = 0; end < len && (c = path.charCodeAt(end)) !== 47; end++) h = Math.imul(h ^ c, FNV_PRIME);
      let child: TreeNode<C> | null | undefined = node.statics.get(h & SMI_MASK);
      for (; child !== undefined && child !== null; child = child.next) {
        if (child.segment.length === end - start && path.startsWith(child.segment, start)) {
          const c = walk(child, path, end, depth, select, a, b, params);
          if (c !== undefined) return c;
          break;
        }
      }
    } else {
      while (end < len && path.charCodeAt(end) !== 47) end++;
      const child = node.only;
      if (child !== null && child.segment.length === end - start && path.startsWith(child.segment, start)) {
        const c = walk(child, path, end, depth, select, a, b, params);
        if (c !== undefined) return c;
      }
    }
    if (node.param !== null && end > start) {
      params[2 * depth] = start;
      params[2 * depth + 1] = end;
      const c = walk(node.param, path, end, depth + 1, select, a, b, params);
      if (c !== undefined) return c;
    }
  }
  // Reached only at a segment boundary, so a prefix here never matches `/admin` for `/administrator`.
  if (node.prefix !== null) return select(node.prefix, a, b);
  return undefined;
}

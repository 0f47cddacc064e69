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
  /** segmentHash of `segment`, compared before the text when probing a parent's table. */
  hash: number;
  /** The static child when there is exactly one: no table, no hash, one less cache miss per level. */
  only: TreeNode<C> | null;
  /**
   * Static children once there are two or more: open addressing on `hash` with linear probing,
   * a power-of-two length at least twice the count, so a probe ends at a null slot. A slot holds
   * the child itself: one cache line for the slot and one for the child, where a Map costs a bucket,
   * an entry and then the child.
   */
  table: Array<TreeNode<C> | null> | null;
  /** Children in `table`. */
  count: number;
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
  return { segment, hash: segmentHash(segment, 0, segment.length), only: null, table: null, count: 0, param: null, end: null, prefix: null };
}

/** Returns (creating the path to it) the node where `template` ends: its `end` or, for `/*`, its `prefix`. */
export function terminalNode<C>(root: TreeNode<C>, template: Template): TreeNode<C> {
  let node = root;
  for (const seg of template.segments) node = seg === null ? (node.param ??= createNode()) : staticChild(node, seg);
  return node;
}

function staticChild<C>(node: TreeNode<C>, seg: string): TreeNode<C> {
  if (node.only !== null && node.only.segment === seg) return node.only;
  if (node.only === null && node.table === null) return (node.only = createNode<C>(seg));
  if (node.table === null) {
    node.table = [null, null, null, null];
    insertChild(node, node.only as TreeNode<C>);
    node.only = null;
  }
  const table = node.table;
  const h = segmentHash(seg, 0, seg.length);
  for (let i = h & (table.length - 1), c = table[i]; c !== null; i = (i + 1) & (table.length - 1), c = table[i]) {
    if (c.segment === seg) return c;
  }
  return insertChild(node, createNode<C>(seg));
}

/** Adds a child to the node's table, doubling it first when it would be more than half full. */
function insertChild<C>(node: TreeNode<C>, child: TreeNode<C>): TreeNode<C> {
  let table = node.table as Array<TreeNode<C> | null>;
  if ((node.count + 1) * 2 > table.length) {
    const old = table;
    table = node.table = new Array<TreeNode<C> | null>(old.length * 2).fill(null);
    for (const c of old) if (c !== null) place(table, c);
  }
  place(table, child);
  node.count++;
  return child;
}

function place<C>(table: Array<TreeNode<C> | null>, child: TreeNode<C>): void {
  const mask = table.length - 1;
  let i = child.hash & mask;
  while (table[i] !== null) i = (i + 1) & mask;
  table[i] = child;
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
    const table = node.table;
    if (table !== null) {
      let h = FNV_OFFSET;
      for (let c = 0; end < len && (c = path.charCodeAt(end)) !== 47; end++) h = Math.imul(h ^ c, FNV_PRIME);
      h &= SMI_MASK;
      const mask = table.length - 1;
      for (let i = h & mask, child = table[i]; child !== null; i = (i + 1) & mask, child = table[i]) {
        if (child.hash === h && child.segment.length === end - start && path.startsWith(child.segment, start)) {
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

/**
 * The trees of a router compiled for lookups. Every node except the roots is one record of RECORD
 * slots in one array, found by open addressing on (parent id, segment hash); a record holds its
 * segment and its candidate chain heads directly. A lookup step then reads one 64-byte record, where
 * the object tree reads a table object, its element store and a node of 88 bytes (8-byte fields:
 * Node runs without pointer compression), one to three cache lines each, and then the candidate. At
 * 10,000 routes every step is a cache miss, so the lines touched are the cost (docs/performance.md).
 */
export interface FlatTree<C> {
  /** Records (see the field constants); slots hold small integers, strings and candidates. */
  readonly records: Array<number | string | C | null>;
  /** Hashed slots - 1 (a power of two minus one); root records follow the hashed slots. */
  readonly mask: number;
}

// Record fields. PARENT is the parent's id (ids start at 1, so 0 marks an empty slot); KEY is the
// segment's hash, or PARAM_KEY for a param child; ID is the node's own id (its children's PARENT).
const PARENT = 0;
const KEY = 1;
/** The static segment (interned by parseTemplate, so the strings a lookup compares stay cached). */
const SEG = 2;
const ID = 3;
/** Head of the candidates ending at this node, or null. */
const END = 4;
/** Head of the `/*` candidates whose static part ends here, or null. */
const PREFIX = 5;
const FLAGS = 6;
/** Head of the candidates ending right after this node's param segment (`/items/{id}`): no param record to read. */
const PARAM_END = 7;
const RECORD = 8;
const PARAM_KEY = -1;
/** The node has static children. */
const HAS_STATIC = 1;
/** The node's param child has children or a prefix of its own: it has a record (key PARAM_KEY). */
const HAS_PARAM = 2;
/**
 * Records start this many slots into the array. An array this large is a large object whose elements
 * start 32 bytes past a 64-byte boundary (V8 12/13, checked with %DebugPrint), so 4 slots of 8 bytes
 * put every 64-byte record on one cache line. Another layout only costs the alignment.
 */
const RECORD_PAD = 4;

function slotOf(parent: number, key: number, mask: number): number {
  let h = Math.imul(key ^ Math.imul(parent, 0x9e3779b1), 0x85ebca6b);
  h ^= h >>> 15;
  return h & mask;
}

function hasStatic<C>(node: TreeNode<C>): boolean {
  return node.only !== null || node.table !== null;
}

function staticChildren<C>(node: TreeNode<C>): TreeNode<C>[] {
  if (node.only !== null) return [node.only];
  return node.table === null ? [] : node.table.filter((c): c is TreeNode<C> => c !== null);
}

/** Compiles the trees; returns the flat tree and each root's record offset, in the order given. */
export function compileTrees<C>(roots: TreeNode<C>[]): { tree: FlatTree<C>; rootRecords: number[] } {
  const rows: Array<Array<number | string | C | null>> = [];
  const rootRows: Array<Array<number | string | C | null>> = [];
  let nextId = 1;
  const visit = (node: TreeNode<C>, parent: number, key: number, isParam: boolean, into: typeof rows): void => {
    const id = nextId++;
    const p = node.param;
    const paramRecord = p !== null && (hasStatic(p) || p.param !== null || p.prefix !== null);
    const flags = (hasStatic(node) ? HAS_STATIC : 0) | (paramRecord ? HAS_PARAM : 0);
    // A param child's own `end` is its parent's PARAM_END.
    into.push([parent, key, isParam ? 0 : node.segment, id, isParam ? null : node.end, node.prefix, flags, p === null ? null : p.end]);
    for (const child of staticChildren(node)) visit(child, id, child.hash, false, rows);
    if (paramRecord) visit(p, id, PARAM_KEY, true, rows);
  };
  for (const root of roots) visit(root, 0, 0, false, rootRows);
  let slots = 8;
  while (slots < 2 * rows.length) slots *= 2;
  const mask = slots - 1;
  const records = new Array<number | string | C | null>(RECORD_PAD + (slots + rootRows.length) * RECORD).fill(0);
  const place = (row: Array<number | string | C | null>, at: number): void => {
    for (let f = 0; f < RECORD; f++) records[at + f] = row[f];
  };
  for (const row of rows) {
    let s = slotOf(row[PARENT] as number, row[KEY] as number, mask);
    while (records[RECORD_PAD + s * RECORD + PARENT] !== 0) s = (s + 1) & mask;
    place(row, RECORD_PAD + s * RECORD);
  }
  const rootRecords = rootRows.map((row, i) => {
    const at = RECORD_PAD + (slots + i) * RECORD;
    place(row, at);
    return at;
  });
  return { tree: { records, mask }, rootRecords };
}

/** lookupTree on a compiled tree, from the root record `root`: same order, same offsets in `params`. */
export function lookupFlat<C, A, B>(
  tree: FlatTree<C>,
  root: number,
  path: string,
  select: Select<C, A, B>,
  a: A,
  b: B,
  params: Int32Array,
): C | undefined {
  if (path.charCodeAt(0) !== 47) return undefined;
  return flatWalk(tree, root, path, 0, 0, select, a, b, params);
}

/** The record of the child of node `id` under `key`, or -1. Static children are confirmed by their text. */
function findChild<C>(tree: FlatTree<C>, id: number, key: number, path: string, start: number, end: number): number {
  const r = tree.records;
  const mask = tree.mask;
  for (let s = slotOf(id, key, mask); ; s = (s + 1) & mask) {
    const at = RECORD_PAD + s * RECORD;
    const parent = r[at + PARENT];
    if (parent === 0) return -1;
    if (parent === id && r[at + KEY] === key) {
      if (key === PARAM_KEY) return at;
      const seg = r[at + SEG] as string;
      if (seg.length === end - start && path.startsWith(seg, start)) return at;
    }
  }
}

function flatWalk<C, A, B>(
  tree: FlatTree<C>,
  at: number,
  path: string,
  pos: number,
  depth: number,
  select: Select<C, A, B>,
  a: A,
  b: B,
  params: Int32Array,
): C | undefined {
  const r = tree.records;
  const len = path.length;
  if (pos === len) {
    const end = r[at + END] as C | null;
    if (end !== null) {
      const c = select(end, a, b);
      if (c !== undefined) return c;
    }
  } else {
    const start = pos + 1;
    let end = start;
    const flags = r[at + FLAGS] as number;
    if ((flags & HAS_STATIC) !== 0) {
      let h = FNV_OFFSET;
      for (let c = 0; end < len && (c = path.charCodeAt(end)) !== 47; end++) h = Math.imul(h ^ c, FNV_PRIME);
      const child = findChild(tree, r[at + ID] as number, h & SMI_MASK, path, start, end);
      if (child !== -1) {
        const c = flatWalk(tree, child, path, end, depth, select, a, b, params);
        if (c !== undefined) return c;
      }
    } else {
      while (end < len && path.charCodeAt(end) !== 47) end++;
    }
    const paramEnd = r[at + PARAM_END] as C | null;
    if (end > start && (paramEnd !== null || (flags & HAS_PARAM) !== 0)) {
      params[2 * depth] = start;
      params[2 * depth + 1] = end;
      if (end === len && paramEnd !== null) {
        const c = select(paramEnd, a, b);
        if (c !== undefined) return c;
      }
      if ((flags & HAS_PARAM) !== 0) {
        const c = flatWalk(tree, findChild(tree, r[at + ID] as number, PARAM_KEY, path, 0, 0), path, end, depth + 1, select, a, b, params);
        if (c !== undefined) return c;
      }
    }
  }
  // Reached only at a segment boundary, so a prefix here never matches `/admin` for `/administrator`.
  const prefix = r[at + PREFIX] as C | null;
  if (prefix !== null) return select(prefix, a, b);
  return undefined;
}

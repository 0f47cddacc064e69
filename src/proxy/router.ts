// Gateway router: host → segment tree → method and header candidates, built once per config version.
import type { HeaderMatch } from '../model/types.ts';
import { compileHeaderMatches, headersMatch } from './header-match.ts';
import type { CompiledHeader } from './header-match.ts';
import { createHostTable, hostTableEntry, normalizeHostPattern, resolveHosts, resolveWildcards, ANY_HOST } from './host-table.ts';
import { compileTrees, createNode, lookupFlat, parseTemplate, terminalNode } from './radix-tree.ts';
import type { FlatTree, Template, TreeNode } from './radix-tree.ts';

export interface RouteEntry<T> {
  /** Exact `api.example.com`, wildcard `*.example.com` (any depth of subdomain), `[]` = any host. */
  hostnames: string[];
  /** Full template: `/orders` exact, `/orders/*` prefix on a segment boundary, `/orders/{id}`, `/orders/{id}/items/*`. */
  path: string;
  /** Upper-case; `['*']` = any. HEAD is not implied by GET. */
  methods: string[];
  /** All must hold. Names are case-insensitive; `present: false` requires the header to be absent. */
  headers: HeaderMatch[];
  value: T;
}

export interface RouteMatch<T> {
  readonly value: T;
  /** Raw (undecoded) segments by name; null without params: such hits return one shared frozen object per route. */
  readonly params: Readonly<Record<string, string>> | null;
}

/**
 * Lookup order: host tables most specific first (exact name, wildcards longest suffix first,
 * then the any-host table, as nginx falls back to its default server); in each table the
 * segment tree, where a fully static path is found first. The first table with a route whose path, method and
 * headers all match wins. Within a table, the first segment where routes differ decides
 * (static > `{param}` > prefix ending there), so a longer prefix beats a shorter one; routes
 * on one path rank by header conditions, then explicit methods before `*`, then config order.
 * A route whose method or headers do not match is skipped for the next less specific one.
 */
export interface Router<T> {
  /** `hostname` lower-case without port or trailing dot; `path` canonical (no decoding here). */
  match(hostname: string, path: string, method: string, rawHeaders: string[]): RouteMatch<T> | undefined;
  /**
   * For the cold path after match() returned undefined: the sorted methods of routes whose
   * host, path and headers match. Empty → 404; non-empty → the proxy may answer 405 with this
   * as `Allow` (or 404 like APIM). Kept off match() so a hit carries no extra flag or work.
   */
  allowedMethods(hostname: string, path: string, rawHeaders: string[]): string[];
  /** Entries accepted (an entry dropped for every host as a conflict or invalid is not counted). */
  readonly size: number;
}

export interface BuiltRouter<T> {
  router: Router<T>;
  /** Invalid entries and conflicts (same host, path, methods and headers: the later one is ignored). */
  problems: string[];
  /**
   * The same routes with new values: `values[i]` for `entries[i]`. For entries whose hostnames, path, methods and
   * headers are those this router was built from (sameRouteShapes), it equals buildRouter of them, in a fraction of
   * the time: nothing is parsed, hashed, checked or copied again; only the chains holding a changed value get new
   * candidates, patched into the compiled tree in place.
   *
   * So it consumes this router: the tree is shared, this `router` answers with the new values from then on, and this
   * BuiltRouter cannot be rebound again (the returned one can). The runtime calls it last, once nothing can fail, and
   * installs the new version at once (a request matches synchronously: none sees a half-patched tree, and requests of
   * the old version in flight have matched already). Copying the ~4 MiB tree instead cost ~4 ms and a large object
   * for the old generation on every version. `values` is taken over (kept as the values bound): not to be changed after.
   */
  rebind(values: readonly T[]): BuiltRouter<T>;
}

function sameList<V>(a: readonly V[], b: readonly V[], same: (x: V, y: V) => boolean): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!same(a[i], b[i])) return false;
  return true;
}

const sameString = (x: string, y: string): boolean => x === y;
const sameHeader = (x: HeaderMatch, y: HeaderMatch): boolean =>
  x === y || (x.name === y.name && x.exact === y.exact && x.prefix === y.prefix && x.present === y.present);

/** True when two entry lists route alike: the same hostnames, paths, methods and headers in the same order (values aside). */
export function sameRouteShapes<T>(a: readonly RouteEntry<T>[], b: readonly RouteEntry<T>[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = b[i];
    if (x === y) continue; // an entry taken over from the last version
    if (x.path !== y.path || !sameList(x.hostnames, y.hostnames, sameString) || !sameList(x.methods, y.methods, sameString) || !sameList(x.headers, y.headers, sameHeader)) return false;
  }
  return true;
}

/**
 * One route in one host table; candidates at the same path node form a chain, most specific first.
 * A route without params is its own match result (`value`, `params: null`; frozen once the router
 * is built), so such a hit allocates nothing and reads no object besides the candidate and its value:
 * at 10,000 routes every extra object on the way is another cache miss.
 */
interface Candidate<T> {
  readonly value: T;
  readonly params: null;
  /** null = any method. */
  methods: string[] | null;
  headers: CompiledHeader[];
  next: Candidate<T> | null;
  paramNames: string[];
}

/**
 * One host's routes: the root record of its tree in the router's compiled tree. Fully static paths
 * are tree terminals too: one walk, no second lookup structure to miss in.
 */
interface PathTable {
  /** While building, the index of the table's object tree; then its root record. */
  root: number;
}

export function buildRouter<T>(entries: RouteEntry<T>[]): BuiltRouter<T> {
  const problems: string[] = [];
  const hosts = createHostTable<PathTable>();
  const seen = new Map<string, number>();
  const intern = new Map<string, string>();
  // Equal lists (`['id']`, `['GET', 'POST']`) are shared: read on every hit, one hot copy beats thousands of cold ones.
  const lists = new Map<string, string[]>();
  const share = (list: string[]) => lists.get(list.join('\n')) ?? (lists.set(list.join('\n'), list), list);
  const trees: TreeNode<Candidate<T>>[] = [];
  const tables: PathTable[] = [];
  const newTable = (): PathTable => {
    const table = { root: trees.push(createNode()) - 1 };
    tables.push(table);
    return table;
  };
  const candidates: Candidate<T>[] = [];
  /** The entry each candidate was made for (an entry has one per host). */
  const entryOf: number[] = [];
  let size = 0;
  let maxParams = 0;
  entries.forEach((entry, i) => {
    const where = `route #${i} (${entry.path})`;
    const template = parseTemplate(entry.path, intern);
    if (typeof template === 'string') return void problems.push(`${where}: path ${template}`);
    const upper = entry.methods.map((m) => m.toUpperCase());
    if (upper.length === 0) return void problems.push(`${where}: no methods (use ["*"] for any)`);
    const headers = compileHeaderMatches(entry.headers);
    if (typeof headers === 'string') return void problems.push(`${where}: ${headers}`);
    const keys = new Set<string>();
    for (const h of entry.hostnames) {
      const key = normalizeHostPattern(h);
      if (key === undefined) problems.push(`${where}: invalid hostname "${h}"`);
      else keys.add(key);
    }
    if (entry.hostnames.length === 0) keys.add(ANY_HOST);
    const methods = upper.includes('*') ? null : share([...new Set(upper)].sort());
    const conflict = conflictKey(template, methods, headers);
    let added = false;
    for (const key of keys) {
      const prev = seen.get(`${key}\n${conflict}`);
      if (prev !== undefined) {
        problems.push(`${where}: same host "${key || '*'}", path, methods and headers as route #${prev}; ignored there`);
        continue;
      }
      seen.set(`${key}\n${conflict}`, i);
      const cand: Candidate<T> = { value: entry.value, params: null, methods, headers, next: null, paramNames: share(template.paramNames) };
      candidates.push(cand);
      entryOf.push(i);
      const node = terminalNode(trees[hostTableEntry(hosts, key, newTable).root], template);
      if (template.prefix) node.prefix = insertOrdered(node.prefix, cand);
      else node.end = insertOrdered(node.end, cand);
      added = true;
    }
    if (added) size++;
    maxParams = Math.max(maxParams, template.paramNames.length);
  });

  // Chains are final now; a param-less candidate is handed out as the match result.
  for (const c of candidates) Object.freeze(c);
  const { tree, rootRecords } = compileTrees(trees);
  tables.forEach((table, i) => (table.root = rootRecords[i]));
  // Where the candidates sit in the records, and which candidate each is: a rebind copies the records and patches these.
  const at = new Map<Candidate<T>, number>();
  candidates.forEach((c, k) => at.set(c, k));
  const slots: number[] = [];
  const slotCandidate: number[] = [];
  tree.records.forEach((v, i) => {
    if (typeof v !== 'object' || v === null) return;
    slots.push(i);
    slotCandidate.push(at.get(v as Candidate<T>)!);
  });
  const nextOf = candidates.map((c) => (c.next === null ? -1 : at.get(c.next)!));
  // For each entry, the slots whose chains hold one of its candidates (an entry has one per host).
  const slotsOfEntry: number[][] = entries.map(() => []);
  for (let j = 0; j < slots.length; j++) {
    for (let k = slotCandidate[j]; k !== -1; k = nextOf[k]) slotsOfEntry[entryOf[k]].push(j);
  }
  // The closures below share this scope's context with the building callbacks: let go of what only building needed.
  candidates.length = 0;
  trees.length = 0;
  seen.clear();
  at.clear();
  const router = compiledRouter(hosts, tree, size, maxParams);
  const built = (current: readonly T[]): BuiltRouter<T> => {
    let spent = false;
    return {
      router,
      problems,
      rebind: (values) => {
        if (problems.length > 0) throw new Error('a router built with problems cannot be rebound');
        if (spent) throw new Error('this router was rebound already: rebind the BuiltRouter that returned');
        if (values.length !== current.length) throw new Error('rebind takes one value per entry the router was built from');
        spent = true;
        return built(patch(values, current));
      },
    };
  };
  /** Patches the chains holding a changed value (the whole chain: a frozen candidate's `next` is fixed); returns the values now bound. */
  const patch = (values: readonly T[], current: readonly T[]): readonly T[] => {
    const records = tree.records;
    const redo = new Set<number>();
    for (let i = 0; i < values.length; i++) if (values[i] !== current[i]) for (const j of slotsOfEntry[i]) redo.add(j);
    const chain: Candidate<T>[] = [];
    const ks: number[] = [];
    for (const j of redo) {
      chain.length = 0;
      ks.length = 0;
      for (let c = records[slots[j]] as Candidate<T> | null, k = slotCandidate[j]; c !== null; c = c.next, k = nextOf[k]) {
        chain.push(c);
        ks.push(k);
      }
      let next: Candidate<T> | null = null;
      for (let i = chain.length - 1; i >= 0; i--) {
        const c = chain[i];
        next = Object.freeze({ value: values[entryOf[ks[i]]], params: null, methods: c.methods, headers: c.headers, next, paramNames: c.paramNames });
      }
      records[slots[j]] = next;
    }
    // Kept as the values now bound (rebind takes the array over: no copy of 10,000 entries per version).
    return values;
  };
  return built(entries.map((e) => e.value));
}

function compiledRouter<T>(hosts: ReturnType<typeof createHostTable<PathTable>>, tree: FlatTree<Candidate<T>>, size: number, maxParams: number): Router<T> {
  const chain: PathTable[] = [];
  const offsets = new Int32Array(2 * maxParams);
  return {
    size,
    match(hostname, path, method, rawHeaders) {
      // Host tables are resolved lazily: most requests are answered by the first one tried.
      const exact = hosts.exact.size === 0 ? undefined : hosts.exact.get(hostname);
      if (exact !== undefined) {
        const m = matchTable(tree, exact, path, method, rawHeaders, offsets);
        if (m !== undefined) return m;
      }
      const n = resolveWildcards(hosts, hostname, chain, 0);
      for (let i = 0; i < n; i++) {
        const m = matchTable(tree, chain[i], path, method, rawHeaders, offsets);
        if (m !== undefined) return m;
      }
      return hosts.any === undefined ? undefined : matchTable(tree, hosts.any, path, method, rawHeaders, offsets);
    },
    allowedMethods(hostname, path, rawHeaders) {
      const heads: Candidate<T>[] = [];
      const n = resolveHosts(hosts, hostname, chain);
      for (let i = 0; i < n; i++) lookupFlat(tree, chain[i].root, path, collectHead, heads, undefined, offsets);
      const allowed = new Set<string>();
      for (const head of heads) {
        for (let c: Candidate<T> | null = head; c !== null; c = c.next) {
          if (!headersMatch(c.headers, rawHeaders)) continue;
          if (c.methods === null) return ['*'];
          for (const m of c.methods) allowed.add(m);
        }
      }
      return [...allowed].sort();
    },
  };
}

function matchTable<T>(tree: FlatTree<Candidate<T>>, table: PathTable, path: string, method: string, rawHeaders: string[], offsets: Int32Array): RouteMatch<T> | undefined {
  const c = lookupFlat(tree, table.root, path, selectCandidate, method, rawHeaders, offsets);
  return c === undefined ? undefined : c.paramNames.length === 0 ? c : withParams(c, path, offsets);
}

/** A select that never picks, so lookupTree visits every terminal matching the path. */
function collectHead<T>(head: Candidate<T>, out: Candidate<T>[]): undefined {
  out.push(head);
  return undefined;
}

function withParams<T>(c: Candidate<T>, path: string, offsets: Int32Array): RouteMatch<T> {
  const params: Record<string, string> = {};
  const names = c.paramNames;
  for (let i = 0; i < names.length; i++) params[names[i]] = path.slice(offsets[2 * i], offsets[2 * i + 1]);
  return { value: c.value, params };
}

/** First candidate in chain order whose method and headers match; chains are short. */
function selectCandidate<T>(head: Candidate<T>, method: string, rawHeaders: string[]): Candidate<T> | undefined {
  for (let c: Candidate<T> | null = head; c !== null; c = c.next) {
    if (c.methods !== null && c.methods.indexOf(method) === -1) continue;
    if (c.headers.length !== 0 && !headersMatch(c.headers, rawHeaders)) continue;
    return c;
  }
  return undefined;
}

/** Higher first: header conditions count double, an explicit method list adds one. */
function rank<T>(c: Candidate<T>): number {
  return c.headers.length * 2 + (c.methods === null ? 0 : 1);
}

/** Inserts by rank (higher first), after equals so config order breaks ties; returns the new head. */
function insertOrdered<T>(head: Candidate<T> | null, cand: Candidate<T>): Candidate<T> {
  if (head === null || rank(head) < rank(cand)) {
    cand.next = head;
    return cand;
  }
  let p = head;
  while (p.next !== null && rank(p.next) >= rank(cand)) p = p.next;
  cand.next = p.next;
  p.next = cand;
  return head;
}

function conflictKey(template: Template, methods: string[] | null, headers: CompiledHeader[]): string {
  // Param names do not matter: `/a/{x}` and `/a/{y}` are the same route.
  const path = template.segments.map((s) => (s === null ? '{}' : s)).join('/') + (template.prefix ? '/*' : '');
  const conditions = headers.map((h) => `${h.name}:${h.kind}:${h.value}`).sort();
  return JSON.stringify([path, methods ?? ['*'], conditions]);
}

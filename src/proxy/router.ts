// Gateway router: host → exact path Map → segment tree → method and header candidates, built once per config version.
import type { HeaderMatch } from '../model/types.ts';
import { compileHeaderMatches, headersMatch } from './header-match.ts';
import type { CompiledHeader } from './header-match.ts';
import { createHostTable, hostTableEntry, normalizeHostPattern, resolveHosts, ANY_HOST } from './host-table.ts';
import { createNode, lookupTree, parseTemplate, terminalList } from './radix-tree.ts';
import type { Template, TreeNode } from './radix-tree.ts';

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
  /** null when the route has no template params: static and prefix matches return a shared frozen object. */
  readonly params: Readonly<Record<string, string>> | null;
}

/**
 * Lookup order: host tables most specific first (exact name, wildcards longest suffix first,
 * then the any-host table, as nginx falls back to its default server); in each table the
 * exact static path Map, then the tree. The first table with a route whose path, method and
 * headers all match wins. Within a table, the first segment where routes differ decides
 * (static > `{param}` > prefix ending there), so a longer prefix beats a shorter one.
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
}

interface Candidate<T> {
  value: T;
  /** null = any method. */
  methods: string[] | null;
  headers: CompiledHeader[];
  paramNames: string[];
  /** Prebuilt for routes without params, so such hits allocate nothing. */
  result: RouteMatch<T> | null;
  order: number;
}

interface PathTable<T> {
  statics: Map<string, Candidate<T>[]>;
  root: TreeNode<Candidate<T>>;
}

export function buildRouter<T>(entries: RouteEntry<T>[]): BuiltRouter<T> {
  const problems: string[] = [];
  const hosts = createHostTable<PathTable<T>>();
  const seen = new Map<string, number>();
  const newTable = (): PathTable<T> => ({ statics: new Map(), root: createNode() });
  let size = 0;
  let maxParams = 0;
  entries.forEach((entry, i) => {
    const where = `route #${i} (${entry.path})`;
    const template = parseTemplate(entry.path);
    if (typeof template === 'string') return void problems.push(`${where}: path ${template}`);
    const methods = entry.methods.map((m) => m.toUpperCase());
    if (methods.length === 0) return void problems.push(`${where}: no methods (use ["*"] for any)`);
    const headers = compileHeaderMatches(entry.headers);
    if (typeof headers === 'string') return void problems.push(`${where}: ${headers}`);
    const keys = new Set<string>();
    for (const h of entry.hostnames) {
      const key = normalizeHostPattern(h);
      if (key === undefined) problems.push(`${where}: invalid hostname "${h}"`);
      else keys.add(key);
    }
    if (entry.hostnames.length === 0) keys.add(ANY_HOST);
    const cand: Candidate<T> = {
      value: entry.value,
      methods: methods.includes('*') ? null : [...new Set(methods)].sort(),
      headers,
      paramNames: template.paramNames,
      result: template.paramNames.length === 0 ? Object.freeze({ value: entry.value, params: null }) : null,
      order: i,
    };
    const conflict = conflictKey(template, cand);
    let added = false;
    for (const key of keys) {
      const prev = seen.get(`${key}\n${conflict}`);
      if (prev !== undefined) {
        problems.push(`${where}: same host "${key || '*'}", path, methods and headers as route #${prev}; ignored there`);
        continue;
      }
      seen.set(`${key}\n${conflict}`, i);
      const table = hostTableEntry(hosts, key, newTable);
      const isStatic = !template.prefix && template.paramNames.length === 0;
      let list = isStatic ? table.statics.get(entry.path) : terminalList(table.root, template);
      if (list === undefined) table.statics.set(entry.path, (list = []));
      insertOrdered(list, cand);
      added = true;
    }
    if (added) size++;
    maxParams = Math.max(maxParams, template.paramNames.length);
  });

  const chain: PathTable<T>[] = [];
  const offsets = new Int32Array(2 * maxParams);
  const router: Router<T> = {
    size,
    match(hostname, path, method, rawHeaders) {
      const n = resolveHosts(hosts, hostname, chain);
      for (let i = 0; i < n; i++) {
        const table = chain[i];
        const list = table.statics.size === 0 ? undefined : table.statics.get(path);
        if (list !== undefined) {
          const c = selectCandidate(list, method, rawHeaders);
          if (c !== undefined) return c.result as RouteMatch<T>;
        }
        const c = lookupTree(table.root, path, selectCandidate, method, rawHeaders, offsets);
        if (c !== undefined) return c.result ?? withParams(c, path, offsets);
      }
      return undefined;
    },
    allowedMethods(hostname, path, rawHeaders) {
      const lists: Candidate<T>[][] = [];
      const n = resolveHosts(hosts, hostname, chain);
      for (let i = 0; i < n; i++) {
        const list = chain[i].statics.get(path);
        if (list !== undefined) lists.push(list);
        lookupTree(chain[i].root, path, collectList, lists, undefined, offsets);
      }
      const allowed = new Set<string>();
      for (const list of lists) {
        for (const c of list) {
          if (!headersMatch(c.headers, rawHeaders)) continue;
          if (c.methods === null) return ['*'];
          for (const m of c.methods) allowed.add(m);
        }
      }
      return [...allowed].sort();
    },
  };
  return { router, problems };
}

function collectList<T>(list: Candidate<T>[], out: Candidate<T>[][]): undefined {
  out.push(list);
  return undefined;
}

function withParams<T>(c: Candidate<T>, path: string, offsets: Int32Array): RouteMatch<T> {
  const params: Record<string, string> = {};
  const names = c.paramNames;
  for (let i = 0; i < names.length; i++) params[names[i]] = path.slice(offsets[2 * i], offsets[2 * i + 1]);
  return { value: c.value, params };
}

/** First candidate in list order whose method and headers match; candidates are few per node. */
function selectCandidate<T>(list: Candidate<T>[], method: string, rawHeaders: string[]): Candidate<T> | undefined {
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c.methods !== null && c.methods.indexOf(method) === -1) continue;
    if (c.headers.length !== 0 && !headersMatch(c.headers, rawHeaders)) continue;
    return c;
  }
  return undefined;
}

/** More header conditions first, then explicit methods before `*`, then config order. */
function insertOrdered<T>(list: Candidate<T>[], cand: Candidate<T>): void {
  const rank = (c: Candidate<T>) => c.headers.length * 2 + (c.methods === null ? 0 : 1);
  let i = list.length;
  while (i > 0 && rank(list[i - 1]) < rank(cand)) i--;
  list.splice(i, 0, cand);
}

function conflictKey<T>(template: Template, cand: Candidate<T>): string {
  // Param names do not matter: `/a/{x}` and `/a/{y}` are the same route.
  const path = template.segments.map((s) => (s === null ? '{}' : s)).join('/') + (template.prefix ? '/*' : '');
  const headers = cand.headers.map((h) => `${h.name}:${h.kind}:${h.value}`).sort();
  return JSON.stringify([path, cand.methods ?? ['*'], headers]);
}

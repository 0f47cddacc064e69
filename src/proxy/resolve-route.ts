// Canonical path and route for a request target: the strict default first, then the lenient path options an Api opted into.
import { canonicalPath } from '../lib/canonical-path.ts';
import { DEFAULT_PATH_OPTIONS, type Runtime, type RouteTarget } from './runtime.ts';
import type { RouteMatch } from './router.ts';

export type Resolved = { path: string; query: string; match: RouteMatch<RouteTarget> | undefined } | { error: string };

/**
 * Only an Api whose pathOptions accept what the strict default rejects may take such a path; the common
 * case (a clean path) costs one canonicalization and one lookup.
 */
export function resolveRoute(rt: Runtime, target: string, hostname: string, method: string, raw: string[]): Resolved {
  const cp = canonicalPath(target, DEFAULT_PATH_OPTIONS);
  if (!('error' in cp)) return { path: cp.path, query: cp.query, match: rt.router.match(hostname, cp.path, method, raw) };
  for (const opts of rt.lenientPathOptions) {
    const alt = canonicalPath(target, opts);
    if ('error' in alt) continue;
    const m = rt.router.match(hostname, alt.path, method, raw);
    if (m && m.value.pathOptions === opts) return { path: alt.path, query: alt.query, match: m };
  }
  return cp;
}

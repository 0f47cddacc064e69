// Where an Api's operations are routed once versions and revisions are applied: shared by the conflict check and the data plane.
import type { ApiSpec, ApiVersionSetSpec, HeaderMatch } from './types.ts';

/** Pseudo-header carrying a `;rev=N` the request named (real header names cannot contain ':'). */
export const REVISION_HEADER = ':rev';
/** Pseudo-header carrying the version query parameter `name` (scheme query). */
export const queryHeader = (name: string): string => `:query:${name.toLowerCase()}`;

export interface RouteVariant {
  /** Replaces the Api path when matching: `/orders/v2` for a path-scheme version. */
  path: string;
  /** Extra header conditions (version header, version query, revision). */
  headers: HeaderMatch[];
  /** Distinguishes variants on one path for conflict messages and checks. */
  tag: string;
}

/** The variants an Api is reachable at. `set` is its version set's spec (undefined when unversioned). */
export function routeVariants(api: ApiSpec, set: ApiVersionSetSpec | undefined): RouteVariant[] {
  const out: RouteVariant[] = [];
  if (set === undefined || api.version === undefined) {
    out.push({ path: api.path, headers: [], tag: '' });
  } else {
    const isDefault = set.defaultVersion === api.version;
    const v = api.version;
    if (set.scheme === 'path') {
      out.push({ path: api.path === '/' ? `/${v}` : `${api.path}/${v}`, headers: [], tag: '' });
      if (isDefault) out.push({ path: api.path, headers: [], tag: '' });
    } else {
      const name = set.scheme === 'header' ? set.headerName.toLowerCase() : queryHeader(set.queryName);
      const label = set.scheme === 'header' ? `header ${set.headerName}` : `query ${set.queryName}`;
      out.push({ path: api.path, headers: [{ name, exact: v }], tag: `${label}=${v}` });
      if (isDefault) out.push({ path: api.path, headers: [{ name, present: false }], tag: `${label} absent` });
    }
  }
  if (api.revisionOf !== undefined) {
    for (const r of out) {
      r.headers = [...r.headers, { name: REVISION_HEADER, exact: String(api.revision) }];
      r.tag = `${r.tag} ;rev=${api.revision}`.trim();
    }
  }
  return out;
}

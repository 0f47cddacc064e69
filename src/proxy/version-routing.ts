// What the router matches on when Apis have revisions or query-scheme versions: `;rev=N` and the version query
// parameter become pseudo-headers (names with ':' no client can send), so the router's header conditions pick them.
import { REVISION_HEADER, queryHeader } from '../model/api-routes.ts';

export interface RoutingInput {
  /** The request target without `;rev=N`. */
  target: string;
  /** Headers for matching: the client's, plus pseudo-headers when any apply. */
  matchHeaders: string[];
  /** The revision named with `;rev=N`, or 0. */
  revision: number;
}

const REV = /;rev=(\d{1,6})(?=[/?]|$)/;

/** `queryNames`: the version query parameters of query-scheme sets (lower-case); empty in most configs. */
export function routingInput(target: string, raw: string[], hasRevisions: boolean, queryNames: readonly string[]): RoutingInput {
  let matchHeaders = raw;
  let revision = 0;
  if (hasRevisions) {
    const q = target.indexOf('?');
    const m = REV.exec(q === -1 ? target : target.slice(0, q));
    if (m !== null) {
      revision = Number(m[1]);
      target = target.slice(0, m.index) + target.slice(m.index + m[0].length);
      matchHeaders = [...raw, REVISION_HEADER, String(revision)];
    }
  }
  if (queryNames.length > 0) {
    const q = target.indexOf('?');
    if (q !== -1) {
      for (const [name, value] of new URLSearchParams(target.slice(q + 1))) {
        const lower = name.toLowerCase();
        if (!queryNames.includes(lower)) continue;
        if (matchHeaders === raw) matchHeaders = [...raw];
        matchHeaders.push(queryHeader(lower), value);
      }
    }
  }
  return { target, matchHeaders, revision };
}

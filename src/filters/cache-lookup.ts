// cache-lookup: answers a GET from the response cache (reference/apim.md §1.10, §2.10); on a miss it notes the
// key for cache-store and removes conditional headers so the backend sends a whole response to store.
import { getHeader, removeHeader } from '../proxy/policy-context.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import {
  CONDITIONAL_REQUEST_HEADERS,
  authorizationOf,
  checkCachingType,
  compileChoice,
  compileFlag,
  downstreamCacheControl,
  pickVariant,
  responseKey,
  setCacheControl,
  setLookupState,
  type Downstream,
  type StoredResponse,
} from '../proxy/policy-cache.ts';
import { responseCacheOf } from '../proxy/response-cache.ts';

const DOWNSTREAM: readonly Downstream[] = ['none', 'private', 'public'];

function names(v: unknown, split: boolean): string[] {
  if (!Array.isArray(v)) return [];
  const out: string[] = [];
  for (const item of v as string[]) {
    for (const n of split ? item.split(';') : [item]) {
      const t = n.trim();
      if (t) out.push(split ? t : t.toLowerCase());
    }
  }
  return out;
}

export const cacheLookupPolicy: PolicyFactory = (attrs, env) => {
  checkCachingType(attrs.cachingType);
  const allowPrivate = compileFlag(attrs.allowPrivateResponseCaching ?? false, 'allowPrivateResponseCaching', env);
  const mustRevalidate = compileFlag(attrs.mustRevalidate ?? true, 'mustRevalidate', env);
  const downstream = compileChoice(attrs.downstreamCachingType ?? 'none', DOWNSTREAM, 'downstreamCachingType', env);
  const parts = { varyByHeader: names(attrs.varyByHeader, false), varyByQueryParameter: names(attrs.varyByQueryParameter, true) };
  const cache = responseCacheOf(env.services);
  const reads = [allowPrivate.reads, mustRevalidate.reads, downstream.reads];
  return {
    name: 'cache-lookup',
    path: env.entry.path,
    needsRequestBody: reads.some((r) => r.has('Request.Body')),
    run(pc) {
      // API Management looks up GET requests only. A range request is passed through untouched.
      if (pc.req.method !== 'GET' || getHeader(pc.req.headers, 'range') !== undefined) return;
      if (authorizationOf(pc) !== undefined && !allowPrivate(pc)) return;
      const key = responseKey(pc, parts);
      const state = { key, headers: pc.req.headers.slice(), downstream: downstream(pc), mustRevalidate: mustRevalidate(pc) };
      const now = cache.now();
      const hit = cache.get(key);
      const v = hit === undefined ? undefined : pickVariant(hit.value as StoredResponse[], state.headers, now);
      if (v === undefined) {
        setLookupState(pc, state);
        for (const h of CONDITIONAL_REQUEST_HEADERS) removeHeader(pc.req.headers, h);
        return;
      }
      const headers = v.headers.slice();
      setCacheControl(headers, downstreamCacheControl(state.downstream, state.mustRevalidate, (v.expiresAt - now) / 1000));
      pc.res?.capture?.abandon();
      pc.res = { status: v.status, reason: '', headers, body: v.body, capture: null };
      // The rest of inbound and the backend are skipped; outbound goes on after cache-store (API Management).
      pc.stopped = true;
      pc.resumeOutboundAfter = 'cache-store';
    },
  };
};

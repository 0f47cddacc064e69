// cache-store: keeps the response of a request cache-lookup missed (reference/apim.md §1.10, §2.10). The body is
// read as it streams to the client (no buffering); it is stored once it has arrived whole.
import { getHeader } from '../proxy/policy-context.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import {
  compileDuration,
  compileFlag,
  directives,
  downstreamCacheControl,
  lookupStateOf,
  ownBytes,
  setCacheControl,
  storableHeaders,
  teeBody,
  unstorableReason,
  variantsBytes,
  withVariant,
  type StoredResponse,
} from '../proxy/policy-cache.ts';
import { responseCacheOf } from '../proxy/response-cache.ts';

export const cacheStorePolicy: PolicyFactory = (attrs, env) => {
  const duration = compileDuration(attrs.duration, 'duration', env);
  const cacheResponse = compileFlag(attrs.cacheResponse ?? false, 'cacheResponse', env);
  const cache = responseCacheOf(env.services);
  return {
    name: 'cache-store',
    path: env.entry.path,
    // The body is read off the stream when the response is stored, never buffered for it (see teeBody).
    needsResponseBody: duration.reads.has('Response.Body') || cacheResponse.reads.has('Response.Body'),
    run(pc) {
      const state = lookupStateOf(pc);
      const res = pc.res;
      // Without a cache-lookup that missed for this request (not a GET, Authorization not allowed, a hit) there is nothing to store.
      if (state === undefined || res === null || pc.req.method !== 'GET') return;
      if (res.status !== 200 && !cacheResponse(pc)) return;
      if (unstorableReason(res) !== undefined) return;
      const ms = duration(pc);
      if (!(ms > 0)) return;
      const headers = storableHeaders(res.headers);
      const encoding = (getHeader(res.headers, 'content-encoding') ?? '').trim().toLowerCase();
      const vary: Array<[string, string | undefined]> = [];
      for (const n of directives(getHeader(res.headers, 'vary'))) {
        if (n !== 'accept-encoding') vary.push([n, getHeader(state.headers, n)]);
      }
      const declared = getHeader(res.headers, 'content-length');
      const status = res.status;
      const key = state.key;
      const put = (body: Buffer | null) => {
        if (body === null) return;
        if (declared !== undefined && Number(declared) !== body.length) return;
        const now = cache.now();
        const v: StoredResponse = { status, headers, body, encoding, vary, expiresAt: now + ms };
        const prev = cache.peek(key);
        const list = withVariant(prev === undefined ? [] : (prev.value as StoredResponse[]), v, now);
        let last = 0;
        for (const x of list) last = Math.max(last, x.expiresAt);
        cache.set(key, list, variantsBytes(list), last - now);
      };
      // What the client gets now says how long it may keep it, as a hit would.
      setCacheControl(res.headers, downstreamCacheControl(state.downstream, state.mustRevalidate, ms / 1000));
      if (res.body !== null) put(res.body.length <= cache.maxEntryBytes ? ownBytes(res.body) : null);
      else if (res.capture !== null) teeBody(res.capture, cache.maxEntryBytes, () => pc.ex.errorCode !== '', put);
      else put(Buffer.alloc(0));
    },
  };
};

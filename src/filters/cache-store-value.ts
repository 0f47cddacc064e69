// cache-store-value: stores a value under a key for cache-lookup-value (reference/apim.md §1.10).
import { compileTemplate, compileValue } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { checkCachingType, compileDuration, valueBytes, valueKey } from '../proxy/policy-cache.ts';
import { responseCacheOf } from '../proxy/response-cache.ts';

export const cacheStoreValuePolicy: PolicyFactory = (attrs, env) => {
  checkCachingType(attrs.cachingType);
  const key = compileValue(String(attrs.key), env);
  const value = compileTemplate(attrs.value, env);
  const duration = compileDuration(attrs.duration, 'duration', env);
  const cache = responseCacheOf(env.services);
  const reads = [key.reads, value.reads, duration.reads];
  return {
    name: 'cache-store-value',
    path: env.entry.path,
    needsRequestBody: reads.some((r) => r.has('Request.Body')),
    needsResponseBody: reads.some((r) => r.has('Response.Body')),
    run(pc) {
      const v = value.fn(pc);
      // A value too large for one entry, or a duration of 0 or less, is not kept (and the key's old value goes).
      cache.set(valueKey(key(pc)), v, valueBytes(v), duration(pc));
    },
  };
};

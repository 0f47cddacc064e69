// cache-remove-value: removes a value cache-store-value stored (reference/apim.md §1.10).
import { compileValue } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { checkCachingType, valueKey } from '../proxy/policy-cache.ts';
import { responseCacheOf } from '../proxy/response-cache.ts';

export const cacheRemoveValuePolicy: PolicyFactory = (attrs, env) => {
  checkCachingType(attrs.cachingType);
  const key = compileValue(String(attrs.key), env);
  const cache = responseCacheOf(env.services);
  return {
    name: 'cache-remove-value',
    path: env.entry.path,
    needsRequestBody: key.reads.has('Request.Body'),
    needsResponseBody: key.reads.has('Response.Body'),
    run(pc) {
      cache.delete(valueKey(key(pc)));
    },
  };
};

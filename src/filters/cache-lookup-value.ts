// cache-lookup-value: reads a value cache-store-value stored under a key into a variable (reference/apim.md §1.10).
import { compileTemplate, compileValue } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { checkCachingType, valueKey } from '../proxy/policy-cache.ts';
import { responseCacheOf } from '../proxy/response-cache.ts';

export const cacheLookupValuePolicy: PolicyFactory = (attrs, env) => {
  checkCachingType(attrs.cachingType);
  const key = compileValue(String(attrs.key), env);
  const variable = String(attrs.variableName);
  const fallback = attrs.defaultValue === undefined ? null : compileTemplate(attrs.defaultValue, env);
  const cache = responseCacheOf(env.services);
  const reads = [key.reads, fallback?.reads ?? new Set<string>()];
  return {
    name: 'cache-lookup-value',
    path: env.entry.path,
    needsRequestBody: reads.some((r) => r.has('Request.Body')),
    needsResponseBody: reads.some((r) => r.has('Response.Body')),
    run(pc) {
      const hit = cache.get(valueKey(key(pc)));
      // A miss without a default leaves the variable unset (API Management's samples test ContainsKey).
      if (hit !== undefined) pc.variables.set(variable, hit.value);
      else if (fallback !== null) pc.variables.set(variable, fallback.fn(pc));
    },
  };
};

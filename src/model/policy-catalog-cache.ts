// The caching policies: the response cache (cache-lookup, cache-store) and the key/value cache (cache-*-value).
import { parseDuration } from '../lib/duration.ts';
import { any, bool, list, obj, oneOf, str, type Check } from './field.ts';
import { ALL, type PolicyDef } from './policy-def.ts';

/** A duration with a unit, or an expression (which may give seconds, as in API Management). */
const durationOrExpression: Check = (v) => {
  // (validate-api-policy's expressionText, inlined: importing it would close an import cycle through the catalog.)
  if (v.length >= 3 && v.startsWith('@(') && v.endsWith(')')) return undefined;
  const ms = /[a-zA-Z]/.test(v) ? parseDuration(v) : undefined;
  if (ms !== undefined && ms > 0) return undefined;
  if (/^\d+(?:\.\d+)?$/.test(v)) return `a duration needs a unit: write "${v}s" for ${v} seconds`;
  return 'must be a duration such as "300s", "1h" or "PT1H", or an expression @(…) giving seconds';
};

const cachingType = oneOf(['prefer-external', 'external', 'internal'], 'Which cache: Lockgate has only the built-in one (internal), which prefer-external uses; external is refused.', {
  default: 'prefer-external',
});

const duration = (what: string) =>
  str(`${what} A duration ("300s", "1h"), or an expression @(…) giving seconds (as in API Management) or a duration.`, {
    required: true,
    check: durationOrExpression,
  });

export const CACHE_POLICIES: Record<string, PolicyDef> = {
  'cache-lookup': {
    attrs: obj(
      {
        varyByDeveloper: bool('Cache per developer (API Management). Lockgate always keeps responses per subscription, so this changes nothing.', false),
        varyByDeveloperGroups: bool('Cache per developer group (API Management). As varyByDeveloper: responses are always per subscription.', false),
        cachingType,
        downstreamCachingType: any('Cache-Control sent with a cached response: `none` (no-store), `private` or `public` (with max-age = the time the entry has left); or an expression giving one.', {
          default: 'none',
        }),
        mustRevalidate: any('Add must-revalidate to a private or public Cache-Control: true, false or an expression.', { default: true }),
        allowPrivateResponseCaching: any('Cache requests that carry an Authorization header (each Authorization value gets entries of its own): true, false or an expression.', {
          default: false,
        }),
        varyByHeader: list(str('A header name'), 'Request headers whose values select separate entries (Accept, Accept-Language, …).', { default: [] }),
        varyByQueryParameter: list(str('A query parameter name (or several separated by ";")'), 'Query parameters whose values select separate entries; the others are not part of the key.', {
          default: [],
        }),
      },
      'Answers a GET from the response cache when it holds a fresh response for it: the backend and the rest of the pipeline are skipped.',
    ),
    sections: ['inbound'],
  },
  'cache-store': {
    attrs: obj(
      {
        duration: duration('How long the response stays cached.'),
        cacheResponse: any('Store the response whatever its status (true), or only a 200 (false): true, false or an expression.', { default: false }),
      },
      'Stores the response of a request cache-lookup looked up (GET only) for the next ones.',
    ),
    sections: ['outbound'],
  },
  'cache-lookup-value': {
    attrs: obj(
      {
        key: str('The key (an expression when written @(…)).', { required: true }),
        variableName: str('Variable that receives the cached value.', { required: true }),
        defaultValue: any('Value the variable gets on a miss (a literal or an expression @(…)); without it a miss leaves the variable unset.', { optional: true }),
        cachingType,
      },
      'Reads a value stored by cache-store-value into a variable.',
    ),
    sections: ALL,
  },
  'cache-store-value': {
    attrs: obj(
      {
        key: str('The key (an expression when written @(…)).', { required: true }),
        value: any('The value: a literal, or an expression @(…) (its type is kept).', { required: true }),
        duration: duration('How long the value stays cached.'),
        cachingType,
      },
      'Stores a value in the cache under a key, for cache-lookup-value.',
    ),
    sections: ALL,
  },
  'cache-remove-value': {
    attrs: obj(
      {
        key: str('The key (an expression when written @(…)).', { required: true }),
        cachingType,
      },
      'Removes a value stored by cache-store-value.',
    ),
    sections: ALL,
  },
};

// The Api kind's fields, defaults and descriptions (the single source for decoding, docs and the JSON Schema).
import { bool, int, list, obj, oneOf, str } from './field.ts';
import { authenticationFields } from './identity-provider-fields.ts';
import {
  checkApiPath,
  checkBackendRef,
  checkHeaderName,
  checkHostPattern,
  checkMethod,
  checkName,
  checkNotEmpty,
  checkUrlTemplate,
} from './value-checks.ts';

/** A version id: a path segment, header or query value (letters, digits, ".", "-", "_"). */
function checkVersionId(v: string): string | undefined {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(v) ? undefined : `version ${JSON.stringify(v)} must be letters, digits, ".", "-" or "_" (at most 63)`;
}

const headerMatch = obj(
  {
    name: str('Header name (case-insensitive).', { required: true, check: checkHeaderName }),
    exact: str('Matches when the value equals this.', { optional: true }),
    prefix: str('Matches when the value starts with this.', { optional: true }),
    present: bool('true: the header must be present; false: it must be absent. Implied true when neither exact nor prefix is set.'),
  },
  'A request header condition; set at most one of exact, prefix, present.',
);

const operation = obj(
  {
    name: str('Unique name within the Api.', { check: checkName, defaultText: 'methods and template, e.g. "get-items-id"' }),
    method: str('One HTTP method, as in API Management; shorthand for methods: [METHOD].', { optional: true, check: checkMethod }),
    methods: list(str('HTTP method', { check: checkMethod }), 'Methods matched (upper-cased); ["*"] matches any.', {
      default: ['*'],
      minItems: 1,
    }),
    urlTemplate: str(
      'Path relative to the Api path: "/items" exact, "/items/{id}" one segment, "/items/*" the rest (last segment only).',
      { required: true, check: checkUrlTemplate },
    ),
    headers: list(headerMatch, 'Header conditions; all must hold.', { default: [] }),
    backend: str('Backend for this operation instead of the Api\'s ("name" or "namespace/name").', {
      optional: true,
      check: checkBackendRef,
    }),
    authentication: { ...authenticationFields, description: 'End-user authentication for this operation instead of the Api\'s.' },
  },
  'A method and URL template served by the Api.',
);

export const apiFields = obj(
  {
    displayName: str('Human-readable name.', { optional: true }),
    hostnames: list(str('Hostname', { check: checkHostPattern }), 'Hosts served: "api.example.com" or "*.example.com"; empty serves any host.', {
      default: [],
    }),
    path: str('Base path: "/" or "/orders" (no trailing slash).', { default: '/', check: checkApiPath }),
    backend: str('Backend receiving requests: "name" in this namespace or "namespace/name".', {
      required: true,
      check: checkBackendRef,
    }),
    errorStyle: oneOf(['lockgate', 'apim'], 'Shape of error bodies.', { default: 'lockgate' }),
    stripPath: bool('Remove the base path before forwarding.', false),
    pathOptions: obj(
      {
        escapedSlashes: oneOf(['reject', 'decode'], '%2F and %5C in the path: reject with 400, or decode.', { default: 'reject' }),
        backslash: oneOf(['reject', 'slash'], 'A literal "\\" in the path: reject with 400, or treat as "/".', { default: 'reject' }),
        semicolon: oneOf(['keep', 'strip', 'reject'], 'Path parameters after ";": reject with 400 (servlet backends read /..;/ as /../), strip before matching, or keep.', {
          default: 'reject',
        }),
      },
      'How ambiguous request paths are handled before matching.',
    ),
    import: obj(
      {
        openapi: str(
          'OpenAPI 3.0 or 3.1 document (YAML or JSON) whose operations the Api serves; a relative path resolves against the config file, and the file must exist. URLs are not supported yet.',
          { required: true, check: checkNotEmpty },
        ),
      },
      'Operations imported from an OpenAPI document, added after the hand-written ones; a hand-written operation with the same method and template replaces the imported one.',
      { optional: true },
    ),
    operations: list(operation, 'Operations; empty sends every method and path under the base path to backend.', { default: [] }),
    subscriptionRequired: bool(
      'Requests need an active subscription key for this Api (or for all Apis). API Management defaults to true; Lockgate to false, so an Api is open until you opt in.',
      false,
    ),
    versionSet: str('The ApiVersionSet this Api is one version of ("name" or "namespace/name"); the set says how a request names its version.', { optional: true, check: checkBackendRef }),
    version: str('This Api\'s version in its set, e.g. "v2" (a path segment, header value or query value by the set\'s scheme).', { optional: true, check: checkVersionId }),
    revision: int('This Api\'s revision number. The current revision serves requests; another revision of the same Api (revisionOf) is reached with ";rev=N" after the Api path.', { default: 1, min: 1 }),
    revisionOf: str('Makes this Api a non-current revision of another Api ("name" or "namespace/name"): same path, hosts and version, reached only as PATH;rev=N/…, for testing before it becomes current.', { optional: true, check: checkBackendRef }),
    meshService: str('Marks this Api as a sidecar\'s inbound route for a MeshService ("name" or "namespace/name"): AccessPolicies targeting it are enforced here.', {
      optional: true,
      check: checkBackendRef,
    }),
    subscriptionKeyParameterNames: obj(
      {
        header: str('Request header carrying the key.', { default: 'Ocp-Apim-Subscription-Key', check: checkHeaderName }),
        query: str('Query parameter carrying the key, read only when the header is absent.', { default: 'subscription-key' }),
      },
      'Where the subscription key is read from; it is removed before forwarding.',
    ),
    authentication: authenticationFields,
  },
  'An API published on the gateway: hosts, base path, operations and the backend they go to.',
);

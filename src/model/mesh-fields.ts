// The mesh kinds' fields (Mesh, MeshService, MeshRoute, AccessPolicy) and the value checks only they use.
import { backendFields, faultField } from './backend-fields.ts';
import { bool, dict, duration, int, list, obj, oneOf, str } from './field.ts';
import type { ObjField } from './field.ts';
import { checkAccessPath, checkAccessSource, checkRoutePath, checkServiceRef, checkTrustDomain, checkUpperMethod } from './mesh-checks.ts';
import { checkHeaderName, checkMethod, checkName } from './value-checks.ts';

export const meshFields = obj(
  {
    trustDomain: str('SPIFFE trust domain of every workload identity (lower-case, DNS-like).', { default: 'lockgate.local', check: checkTrustDomain }),
    mtls: oneOf(['strict', 'permissive'], 'Default inbound mTLS mode: strict, or permissive (also accepts plaintext, for migrating services in).', {
      default: 'strict',
    }),
    defaultAccess: oneOf(['allow', 'audit', 'deny'], 'Calls no AccessPolicy decides: allow, audit (log what would be denied, allow it) or deny.', {
      default: 'audit',
    }),
    certificateLifetime: duration('Workload certificate lifetime, 10s to 90d for real use (5s is accepted, for tests); renewed at half life.', { default: 24 * 3_600_000, min: 5_000 }),
    maxHops: int('Requests that have crossed this many sidecars are refused with 508 (a routing loop).', { default: 16, min: 1, max: 255 }),
  },
  'Mesh-wide settings shared by every node; at most one Mesh document, built-in defaults when absent.',
);

// The traffic-policy blocks are the Backend's, so a MeshService and a Backend of type mesh read the same way.
const backendSpecFields = backendFields.fields as Record<string, ObjField>;
const lbFields = backendSpecFields.loadBalancing.fields;

const meshPort = obj(
  {
    name: str('Port name, unique within the service.', { check: checkName, defaultText: '"<protocol>-<port>", e.g. "http-8080"' }),
    port: int('Port callers address.', { required: true, min: 1, max: 65535 }),
    protocol: oneOf(['http', 'grpc', 'tcp'], 'http (HTTP/1.1, and HTTP/2 with prior knowledge), grpc, or tcp (opaque, passed through).', {
      default: 'http',
    }),
  },
  'A port of the service.',
);

export const meshServiceFields = obj(
  {
    ports: list(meshPort, 'Ports of the service, unique by name and number.', {
      default: [{ name: 'http-80', port: 80, protocol: 'http' }],
      minItems: 1,
    }),
    mtls: oneOf(['strict', 'permissive'], "This service's inbound mTLS mode; the Mesh's when unset.", { optional: true }),
    loadBalancing: obj(
      { ...lbFields, algorithm: { ...lbFields.algorithm, default: 'ewma' } },
      'Load balancing over the endpoints (EWMA by default: latency-aware, so one slow endpoint gets little traffic).',
    ),
    timeouts: obj(
      {
        request: duration('Whole request, first byte sent to last byte received; 0 = none (streams).', { default: 0, min: 0 }),
        perTry: duration('One attempt, until the response headers; 0 = the request timeout.', { default: 30_000, min: 0 }),
        connect: duration('TCP and TLS connect timeout.', { default: 1000, min: 1 }),
        idle: duration('Idle pooled connection lifetime.', { default: 4000, min: 1 }),
      },
      'Timeouts of calls to the service.',
    ),
    retries: obj(backendSpecFields.retries.fields, 'Retries with a budget (20% of the request rate plus 10/s by default).'),
    outlierDetection: obj(backendSpecFields.outlierDetection.fields, 'Eject endpoints that keep failing.'),
    localityPreference: bool("Prefer endpoints in the caller's zone, then region; fail over to the next locality when none is healthy.", true),
  },
  'A service in the mesh: its ports and the traffic policy its callers use.',
);

const routeMatch = obj(
  {
    path: obj(
      {
        type: oneOf(['exact', 'prefix'], 'exact, or prefix (segment-wise: "/api" matches "/api" and "/api/x", not "/apix").', { default: 'prefix' }),
        value: str('Path, starting with "/".', { required: true, check: checkRoutePath }),
      },
      'Path condition.',
      { optional: true },
    ),
    headers: dict(str('Exact value'), 'Header name → exact value (names are case-insensitive).', { default: {}, keyCheck: checkHeaderName }),
    methods: list(str('Method', { check: checkMethod }), 'Any of these methods; empty = any.', { default: [] }),
  },
  'Conditions that must all hold.',
);

const routeBackend = obj(
  {
    service: str('MeshService: "name" or "namespace/name".', { required: true, check: checkServiceRef }),
    version: str('Only endpoints whose "version" label has this value (a subset); every endpoint when unset.', { optional: true }),
    weight: int('Relative share of requests (exact, smooth weighted round-robin); 0 gets nothing.', { default: 1, min: 0, max: 10_000 }),
  },
  'A destination of a rule.',
);

const partialTimeouts = obj(
  {
    request: duration('Whole request; 0 = none.', { optional: true, min: 0 }),
    perTry: duration('One attempt, until the response headers.', { optional: true, min: 0 }),
    connect: duration('Connect timeout.', { optional: true, min: 1 }),
    idle: duration('Idle pooled connection lifetime.', { optional: true, min: 1 }),
  },
  "Override the service's timeouts for this rule.",
  { optional: true },
);

const retryFields = backendSpecFields.retries.fields;
const partialRetries = obj(
  Object.fromEntries(Object.entries(retryFields).map(([k, f]) => [k, { ...f, default: undefined, optional: true }])),
  "Override the service's retries for this rule.",
  { optional: true },
);

const routeRule = obj(
  {
    name: str('Rule name (for logs and metrics).', { optional: true, check: checkName }),
    matches: list(routeMatch, 'A request matches the rule when any one of these matches; empty = every request.', { default: [] }),
    backends: list(routeBackend, 'Weighted destinations; the route\'s own service when unset.', { defaultText: '"[{ service: <spec.service> }]"', minItems: 1 }),
    timeouts: partialTimeouts,
    retries: partialRetries,
    fault: faultField,
  },
  'A routing rule; the first rule that matches wins.',
);

export const meshRouteFields = obj(
  {
    service: str('The MeshService whose callers this route applies to: "name" or "namespace/name".', { required: true, check: checkServiceRef }),
    rules: list(routeRule, 'Rules in order; the first match wins.', { required: true, minItems: 1 }),
  },
  'Routing for calls to one MeshService: header and path matches, weighted splits, timeouts, retries, faults.',
);

const accessRule = obj(
  {
    sources: list(str('Source', { check: checkAccessSource }), 'Callers: "*" (any authenticated workload), a service ("orders", "shop/orders") or a SPIFFE ID; empty = any caller.', {
      default: [],
    }),
    methods: list(str('Method', { check: checkUpperMethod }), 'Upper-case methods; empty = any.', { default: [] }),
    paths: list(str('Path', { check: checkAccessPath }), 'Exact paths, or prefixes ending in "*" ("/admin/*"); empty = any.', { default: [] }),
    ports: list(int('Port', { min: 1, max: 65535 }), 'Service ports; empty = any.', { default: [] }),
  },
  'Conditions that must all hold; each list matches any of its entries.',
);

export const accessPolicyFields = obj(
  {
    target: obj(
      {
        service: str('The MeshService protected: "name" or "namespace/name".', { required: true, check: checkServiceRef }),
        ports: list(int('Port', { min: 1, max: 65535 }), 'Its ports this policy covers; empty = all.', { default: [] }),
      },
      'What the policy protects.',
      { required: true },
    ),
    mode: oneOf(['enforce', 'audit'], 'enforce, or audit: log what would be denied and allow it (onboarding).', { default: 'enforce' }),
    allow: list(accessRule, 'Calls matching any of these are allowed (unless a deny rule matches).', { default: [] }),
    deny: list(accessRule, 'Calls matching any of these are denied; deny wins over allow.', { default: [] }),
  },
  'Service-to-service authorization: who may call a MeshService, on which ports, methods and paths.',
);

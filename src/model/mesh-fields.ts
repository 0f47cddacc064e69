// The mesh kinds' fields (Mesh, MeshService, MeshRoute, AccessPolicy) and the value checks only they use.
import { backendFields, faultField } from './backend-fields.ts';
import { alt, bool, dict, duration, int, list, obj, oneOf, ref, str } from './field.ts';
import type { AltField, ObjField, StrField } from './field.ts';
import { checkAccessPath, checkAccessSource, checkCidr, checkClaimKey, checkDate, checkDays, checkRoutePath, checkServiceRef, checkTimeOfDay, checkTimeZone, checkTrustDomain, checkUpperMethod } from './mesh-checks.ts';
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

/** A string criterion: `value`, `[a, b]` (any of them), or `{ is | in | startsWith | endsWith | contains: … }`. */
const stringMatch = (what: string): AltField =>
  alt(`${what}: a value (equal), a list (any of them), or one of is, in, startsWith, endsWith, contains.`, {
    scalar: str('Equal to this.'),
    list: list(str('Value'), 'Any of these.', { minItems: 1 }),
    map: obj(
      {
        is: str('Equal to this.', { optional: true }),
        in: list(str('Value'), 'Any of these.', { optional: true, minItems: 1 }),
        startsWith: str('Starts with this.', { optional: true }),
        endsWith: str('Ends with this.', { optional: true }),
        contains: str('Contains this.', { optional: true }),
      },
      'One operator.',
      { oneOf: ['is', 'in', 'startsWith', 'endsWith', 'contains'] },
    ),
  });

/** A list criterion: `value` (the list has it), `[a, b]` (has any), or `{ has | hasAny | hasAll: … }`. */
const listMatch = (what: string): AltField =>
  alt(`${what}: a value (has it), a list (has any of them), or one of has, hasAny, hasAll.`, {
    scalar: str('Has this.'),
    list: list(str('Value'), 'Has any of these.', { minItems: 1 }),
    map: obj(
      {
        has: str('Has this.', { optional: true }),
        hasAny: list(str('Value'), 'Has any of these.', { optional: true, minItems: 1 }),
        hasAll: list(str('Value'), 'Has all of these.', { optional: true, minItems: 1 }),
      },
      'One operator.',
      { oneOf: ['has', 'hasAny', 'hasAll'] },
    ),
  });

/** `x` or `[x, y]`: one value or a list of them. */
const oneOrMany = (item: StrField, description: string): AltField => alt(description, { scalar: item, list: list(item, description, { minItems: 1 }) });

const timeWindow = obj(
  {
    after: str('From this time of day, "HH:MM" (24 h), inclusive.', { optional: true, check: checkTimeOfDay }),
    before: str('Until this time of day, "HH:MM", exclusive; earlier than `after` spans midnight.', { optional: true, check: checkTimeOfDay }),
    days: oneOrMany(str('Day', { check: checkDays }), 'Days of the week: "mon"…"sun", ranges "mon-fri", or a list.'),
    from: str('From this date, "YYYY-MM-DD", inclusive.', { optional: true, check: checkDate }),
    until: str('Until this date, "YYYY-MM-DD", exclusive.', { optional: true, check: checkDate }),
    timeZone: str('IANA time zone the times and dates are in.', { default: 'UTC', check: checkTimeZone }),
  },
  'When the rule holds: time of day, days of the week, dates, in a time zone.',
  { optional: true },
);

const accessRuleRef = ref('AccessRule', 'A nested rule.', () => accessRule);

const accessRule: ObjField = obj(
  {
    sources: list(str('Source', { check: checkAccessSource }), 'Callers: "*" (any authenticated workload), a service ("orders", "shop/orders") or a SPIFFE ID; empty = any caller.', {
      default: [],
    }),
    source: oneOrMany(str('Source', { check: checkAccessSource }), 'The calling workload (same values as `sources`).'),
    methods: list(str('Method', { check: checkUpperMethod }), 'Upper-case methods; empty = any.', { default: [] }),
    method: oneOrMany(str('Method', { check: checkUpperMethod }), 'Method or methods (same as `methods`).'),
    paths: list(str('Path', { check: checkAccessPath }), 'Exact paths, or prefixes ending in "*" ("/admin/*"); empty = any.', { default: [] }),
    path: oneOrMany(str('Path', { check: checkAccessPath }), 'Path or paths on the canonical path (same as `paths`).'),
    ports: list(int('Port', { min: 1, max: 65535 }), 'Service ports; empty = any.', { default: [] }),
    authenticated: bool('true: an end user was identified (validated token or assertion); false: none was.'),
    user: stringMatch("The end user's subject (`sub`)"),
    email: stringMatch("The end user's email"),
    domain: stringMatch("The domain of the end user's email (lower-case)"),
    groups: listMatch("The end user's groups"),
    sourceIp: oneOrMany(str('CIDR', { check: checkCidr }), 'Client address: addresses or CIDRs ("10.0.0.0/8").'),
    time: timeWindow,
    cel: str('A CEL expression over `context` (the one policies use) that must be true.', { optional: true }),
    grant: bool('true: the end user holds an approved, unexpired AccessRequest grant for this target covering the method and path (just-in-time access); false: holds none.'),
    all: list(accessRuleRef, 'Every one of these rules matches.', { optional: true, minItems: 1 }),
    any: list(accessRuleRef, 'At least one of these rules matches.', { optional: true, minItems: 1 }),
    none: list(accessRuleRef, 'None of these rules matches.', { optional: true, minItems: 1 }),
  },
  'Criteria that must all hold; each list matches any of its entries. `claim/<path>` keys match a claim by dotted path, like groups.',
  { patternFields: { pattern: '^claim/', check: checkClaimKey, field: listMatch('A claim (dotted path after "claim/")') } },
);

export const accessPolicyFields = obj(
  {
    target: obj(
      {
        service: str('The MeshService protected (at its sidecars): "name" or "namespace/name".', { optional: true, check: checkServiceRef }),
        ports: list(int('Port', { min: 1, max: 65535 }), 'Its ports this policy covers; empty = all.', { default: [] }),
        api: str('The Api protected (at the gateway), by name.', { optional: true, check: checkName }),
        operation: str("One of the Api's operations (its name); all of them when unset.", { optional: true }),
      },
      'What the policy protects: a MeshService or an Api.',
      { required: true, oneOf: ['service', 'api'] },
    ),
    mode: oneOf(['enforce', 'audit'], 'enforce, or audit: log what would be denied and allow it (onboarding).', { default: 'enforce' }),
    allow: list(accessRule, 'Calls matching any of these are allowed (unless a deny rule matches).', { default: [] }),
    deny: list(accessRule, 'Calls matching any of these are denied; deny wins over allow.', { default: [] }),
    requests: obj(
      {
        approvers: list(str('Group'), 'Groups whose members may approve or deny requests (never their own).', { required: true, minItems: 1 }),
        minApprovals: int('Approvals a request needs.', { default: 1, min: 1, max: 10 }),
        forceApprovers: list(str('Group'), 'Groups whose single approval is enough (flagged in the audit trail).', { default: [] }),
        maxDuration: duration('Longest access a request may ask for; longer asks are capped.', { default: 8 * 3_600_000, min: 60_000 }),
        reviewWithin: duration('A request not reviewed within this expires.', { default: 3_600_000, min: 60_000 }),
      },
      'Just-in-time access to this target: `lockgate access request` asks, approvers approve, and rules with `grant: true` let the requester in until the grant ends.',
      { optional: true },
    ),
  },
  'Who may call a MeshService (at its sidecars) or an Api (at the gateway): workload identity, end-user identity, method, path, address and time.',
);

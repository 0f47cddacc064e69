// The Backend kind's fields, defaults and descriptions (the single source for decoding, docs and the JSON Schema).
import { bool, dict, duration, int, list, num, obj, oneOf, statusRange, str } from './field.ts';
import type { Field } from './field.ts';
import { checkSpiffeId } from './mesh-checks.ts';
import {
  checkBackendRef,
  checkHeaderName,
  checkHostPattern,
  checkLabelKey,
  checkMethod,
  checkName,
  checkNotEmpty,
  checkOriginUrl,
  checkRequestPath,
} from './value-checks.ts';

const faultPercent = (what: string) => num(`Percent of requests that get the ${what} (0–100).`, { required: true, min: 0, max: 100 });

/** Fault injection, shared with MeshRoute rules (mesh-fields.ts). */
export const faultField: Field = obj(
  {
    delay: obj(
      { percent: faultPercent('delay'), duration: duration('Added before the request is forwarded.', { required: true, min: 1 }) },
      'Delay some requests.',
      { optional: true },
    ),
    abort: obj(
      {
        percent: faultPercent('abort'),
        status: int('Status returned instead of forwarding.', { required: true, min: 400, max: 599 }),
      },
      'Answer some requests with an error status without forwarding them.',
      { optional: true },
    ),
  },
  'Fault injection for resilience testing: delay and/or abort a percentage of requests.',
  { optional: true },
);

const endpoint = obj(
  {
    url: str('Origin "http://host:port" or "https://host:port", or "unix:/path" (plaintext HTTP, or h2c with protocol h2, over a Unix domain socket).', {
      required: true,
      check: checkOriginUrl,
      format: 'uri',
    }),
    weight: int('Relative share of requests; 0 drains the endpoint.', { default: 1, min: 0, max: 10_000 }),
    labels: dict(str('Label value'), 'Labels: region and zone (locality preference), version (MeshRoute subsets).', {
      default: {},
      keyCheck: checkLabelKey,
    }),
  },
  'One upstream server.',
);

const breakerRule = obj(
  {
    name: str('Rule name.', { check: checkName, defaultText: '"rule-<index>"' }),
    count: int('Trip after this many failures within interval.', { optional: true, min: 1 }),
    percentage: num('Trip when this percent of requests fail within interval.', { optional: true, min: 1, max: 100 }),
    minRequests: int('Requests needed in interval before percentage applies.', { default: 10, min: 1 }),
    interval: duration('Window failures are counted in.', { default: 10_000, min: 1 }),
    statusCodeRanges: list(statusRange('Failure status or range'), 'Statuses counted as failures.', {
      default: [{ min: 500, max: 599 }],
    }),
    errorReasons: bool('Connect failures, resets and timeouts count as failures.', true),
    tripDuration: duration('How long the breaker stays open.', { default: 30_000, min: 1 }),
    acceptRetryAfter: bool('A Retry-After from the backend sets the trip duration.', false),
  },
  'A circuit-breaker rule: set exactly one of count or percentage.',
  { oneOf: ['count', 'percentage'] },
);

const retryStatus = int('Status', { min: 100, max: 599 });

export const backendFields = obj(
  {
    type: oneOf(['url', 'mesh'], 'url: the endpoints listed here; mesh: the endpoints of meshService, from the registry.', { default: 'url' }),
    url: str('Shorthand for one endpoint with weight 1.', { check: checkOriginUrl, format: 'uri' }),
    endpoints: list(endpoint, 'Upstream servers (set this or url; optional for type mesh; none for a split).', { minItems: 1 }),
    split: list(
      obj(
        {
          backend: str('Another Backend (not itself a split): "name" or "namespace/name".', { required: true, check: checkBackendRef }),
          weight: int('Relative share of requests (exact, smooth weighted round-robin); 0 gets nothing.', { default: 1, min: 0, max: 10_000 }),
        },
        'One leg of the split.',
      ),
      'A weighted split over other Backends (canary); such a Backend has no endpoints.',
      { optional: true, minItems: 1 },
    ),
    meshService: str('For type mesh: the MeshService called, "name" or "namespace/name"; its traffic policy applies unless set here.', {
      optional: true,
      check: checkBackendRef,
    }),
    fault: faultField,
    locality: obj(
      {
        region: str("The caller's region.", { optional: true, check: checkNotEmpty }),
        zone: str("The caller's zone.", { optional: true, check: checkNotEmpty }),
      },
      "The caller's own locality: endpoints whose region/zone labels match are preferred, the next locality when none is healthy.",
      { optional: true },
    ),
    loadBalancing: obj(
      {
        algorithm: oneOf(['round-robin', 'weighted-round-robin', 'least-request', 'ewma', 'consistent-hash'], 'How an endpoint is picked.', {
          default: 'round-robin',
        }),
        hashOn: obj(
          {
            header: str('Hash this request header.', { optional: true, check: checkHeaderName }),
            cookie: str('Hash this cookie.', { optional: true, check: checkNotEmpty }),
            clientIp: bool('Hash the client address.'),
          },
          'For consistent-hash: the key (set one); defaults to the client address.',
          { optional: true },
        ),
      },
      'Load balancing.',
    ),
    healthCheck: obj(
      {
        enabled: bool('Probe endpoints; true when the healthCheck block is present.', true),
        path: str('Path probed with GET.', { default: '/healthz', check: checkRequestPath }),
        interval: duration('Time between probes.', { default: 10_000, min: 1 }),
        timeout: duration('Probe timeout (less than interval).', { default: 2000, min: 1 }),
        healthyThreshold: int('Passes before an endpoint is healthy again.', { default: 2, min: 1 }),
        unhealthyThreshold: int('Failures before an endpoint is unhealthy.', { default: 3, min: 1 }),
        expectedStatuses: list(statusRange('Healthy status or range'), 'Statuses that pass: 200, "200-399", "2xx".', {
          default: [{ min: 200, max: 399 }],
          minItems: 1,
        }),
      },
      'Active health checks; off unless this block is present.',
      { whenAbsent: { enabled: false } },
    ),
    outlierDetection: obj(
      {
        enabled: bool('Eject endpoints that keep failing.', true),
        consecutiveErrors: int('Consecutive failures (5xx, connect errors) before ejection.', { default: 5, min: 1 }),
        baseEjectionTime: duration('First ejection time; grows with each ejection.', { default: 30_000, min: 1 }),
        maxEjectionPercent: int('Most endpoints ejected at once, in percent.', { default: 50, min: 0, max: 100 }),
      },
      'Passive health: eject endpoints from live traffic errors.',
    ),
    timeouts: obj(
      {
        connect: duration('TCP (and TLS) connect timeout.', { default: 5000, min: 1 }),
        perTry: duration('Timeout of one attempt, until the response headers.', { default: 30_000, min: 1 }),
        idle: duration('Idle keep-alive connection lifetime; below common server keep-alive (5 s).', { default: 4000, min: 1 }),
      },
      'Upstream timeouts.',
    ),
    retries: obj(
      {
        attempts: int('Extra attempts after the first.', { default: 1, min: 0, max: 10 }),
        statuses: list(retryStatus, 'Retry on these statuses (connect failures and resets always qualify).', {
          default: [502, 503, 504],
        }),
        methods: list(str('Method', { check: checkMethod }), 'Only idempotent methods by default.', {
          default: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'],
        }),
        budgetPercent: num('Retries may add at most this percent of the request rate (plus minPerSecond).', { default: 20, min: 0, max: 100 }),
        minPerSecond: num('Retries per second always allowed, on top of budgetPercent.', { default: 10, min: 0 }),
        backoff: duration('Base backoff between attempts (with jitter).', { default: 25, min: 0 }),
      },
      'Retries.',
    ),
    circuitBreaker: obj({ rules: list(breakerRule, 'Rules; any one trips the breaker.', { default: [] }) }, 'Circuit breaker.'),
    maxPendingRequests: int('Requests waiting for a connection per endpoint; 503 beyond it.', { default: 1024, min: 0 }),
    maxConnections: int('Connections per endpoint.', { default: 128, min: 1 }),
    dnsRefresh: duration('Re-resolve hostnames this often when DNS gives no TTL.', { default: 30_000, min: 1 }),
    protocol: oneOf(['http1', 'h2'], 'Protocol spoken to the endpoints.', { default: 'http1' }),
    tls: obj(
      {
        caFile: str('PEM CA bundle to verify the server; the system roots when unset.', { optional: true, check: checkNotEmpty }),
        serverName: str('SNI and name to verify; the URL host when unset.', { optional: true, check: checkHostPattern }),
        verify: bool('Verify the server certificate.', true),
        certFile: str('Client certificate (mutual TLS), with keyFile.', { optional: true, check: checkNotEmpty }),
        keyFile: str('Client key, with certFile.', { optional: true, check: checkNotEmpty }),
        spiffeIds: list(str('SPIFFE ID', { check: checkSpiffeId }), "Expected peer SPIFFE IDs (any one), checked instead of the host name (mesh mTLS).", {
          optional: true,
          minItems: 1,
        }),
        generation: str('Opaque; a change makes the gateway open new connection pools (certificate rotation).', { optional: true }),
      },
      'TLS to https endpoints.',
      { optional: true },
    ),
  },
  'Where an Api sends requests: endpoints, balancing, health, timeouts, retries and circuit breaking. Set url or endpoints, or split, or type mesh with meshService.',
);

// Diagnostics-channel names: the data plane publishes here; telemetry subscribes. Nothing else couples them.
import diagnostics from 'node:diagnostics_channel';

/** Published once per finished request with the request's Exchange record. */
export const requestEnd = diagnostics.channel('lockgate:request:end');
/** Published when a breaker changes state: { backend, state }. */
export const breakerState = diagnostics.channel('lockgate:breaker:state');
/** Published when the HTTP/1.1 parser refuses a request head (no request record exists): { status }. */
export const requestRefused = diagnostics.channel('lockgate:request:refused');
/** Published when a request is shed for overload: { reason }. */
export const requestShed = diagnostics.channel('lockgate:request:shed');
/** Published on an upstream connect error: { backend, endpoint, code }. */
export const upstreamConnectError = diagnostics.channel('lockgate:upstream:connect-error');
/** Published when a config version is activated or rejected: { version, ok, problems }. */
export const configEvent = diagnostics.channel('lockgate:config');

/** What the log-to policy publishes on `policyLog`: the access log writes it as one JSON line. */
export interface PolicyLogEvent {
  requestId: string;
  traceId: string;
  /** The policy's loggerId. */
  logger: string;
  api: string;
  operation: string;
  /** The event as JSON text (already size-capped by the policy). */
  eventJson: string;
}
/** Published by the log-to policy (API Management's log-to-eventhub): a PolicyLogEvent. */
export const policyLog = diagnostics.channel('lockgate:policy:log');

/** What the emit-metric policy publishes on `policyMetric`: a counter increment. */
export interface PolicyMetricEvent {
  /** The Prometheus name, ending in `_total`. */
  name: string;
  labels: Record<string, string>;
  value: number;
}
/** Published by the emit-metric policy: a PolicyMetricEvent; the metrics registry counts it (with a cardinality cap). */
export const policyMetric = diagnostics.channel('lockgate:policy:metric');

/** What the data plane publishes on `accessDecision`: a mesh inbound request the AccessPolicies deny or would deny (audit). */
export interface AccessDecisionEvent {
  requestId: string;
  traceId: string;
  /** The decision id (also on Exchange.decision and in the 403 body). */
  decision: string;
  /** `deny`: refused (403); `audit`: would be denied, allowed; `allow` (on `allowSample` only): a sampled allow. */
  outcome: 'deny' | 'audit' | 'allow';
  /** `namespace/name` of the deciding policy, or `mesh-default`. */
  policy: string;
  reasons: string[];
  /** The caller's SPIFFE ID ('' = plaintext or no client certificate). */
  sourceId: string;
  /** Qualified `namespace/name` of the destination MeshService. */
  service: string;
  port: number;
  method: string;
  path: string;
  /** Gateway decisions: the Api (`namespace/name`, also in `service`) and operation. */
  api?: string;
  operation?: string;
  /** The client address the decision saw. */
  sourceIp?: string;
  /** The end user the decision saw (what `lockgate explain --decision` replays). */
  user?: { sub?: string; email?: string; groups?: string[] };
  /** When it was decided (ms since the epoch). */
  at?: number;
}
/** Published for every access decision that denies or would deny: an AccessDecisionEvent. */
export const accessDecision = diagnostics.channel('lockgate:access:decision');
/** One allowed decision in every ALLOW_SAMPLE_EVERY (access-gate.ts), for the audit trail's sample of allows. */
export const allowSample = diagnostics.channel('lockgate:access:allow-sample');

// The gateway's AccessPolicy check (identity issue §3): decided after the inbound authentication policies (or where an
// access-check policy stands), recorded on the exchange and published like the sidecars' decisions.
import { decideAccess, type AccessDecision } from '../policy/access-decision.ts';
import type { ExpressionContext } from '../policy/expression-context.ts';
import { accessDecision, allowSample, type AccessDecisionEvent } from '../telemetry/channels.ts';
import { accessDeniedError } from './error-response.ts';
import type { Exchange } from './exchange.ts';
import { PolicyError, jsonResponse, type PolicyContext, type RouteAccess } from './policy-context.ts';
import { contextFor } from './policy-expression-context.ts';

/** What the gateway knows of the request when it decides. */
export interface GatewayAccessInput {
  /** The end user's claims (validate-jwt), or null. */
  claims: Readonly<Record<string, unknown>> | null;
  /** Client headers, flat [name, value, …]. */
  headers: readonly string[];
  /** The pipeline's `context`, for `cel` rules. */
  expression?: () => ExpressionContext;
}

/** Decides, sets `ex.decision` (`<id>:<allow|deny|audit>`), and publishes every decision that denies or would deny. */
export function decideGatewayAccess(access: RouteAccess, ex: Exchange, input: GatewayAccessInput): AccessDecision {
  const d = decideAccess(access.compiled, {
    sourceId: ex.peerId,
    service: '',
    api: access.target.api,
    operation: access.target.operation,
    port: 0,
    method: ex.method,
    path: ex.path,
    claims: input.claims,
    sourceIp: ex.clientIp,
    headers: input.headers,
    requestId: ex.requestId,
    expression: input.expression,
  });
  publishDecision(ex, d, access.target.api, 0, ex.peerId, { api: access.target.api, operation: access.target.operation, sourceIp: ex.clientIp, claims: input.claims });
  return d;
}

/** One allow in this many is published (a sample for the audit trail); denies and audit decisions always are. */
export const ALLOW_SAMPLE_EVERY = 100;
let allowsSeen = 0;

/** Records a decision on the exchange and publishes it when it denies or would deny (gateway and sidecars alike). */
export function publishDecision(
  ex: Pick<Exchange, 'method' | 'path' | 'requestId' | 'traceId' | 'decision'>,
  d: AccessDecision,
  service: string,
  port: number,
  sourceId: string,
  facts: { api?: string; operation?: string; sourceIp?: string; claims?: Readonly<Record<string, unknown>> | null } = {},
): void {
  const outcome = !d.allow ? 'deny' : d.wouldDeny ? 'audit' : 'allow';
  ex.decision = `${d.id}:${outcome}`;
  // Allows are the bulk: one in ALLOW_SAMPLE_EVERY goes out on its own channel (the audit trail's sample).
  if (outcome === 'allow' ? !allowSample.hasSubscribers || ++allowsSeen % ALLOW_SAMPLE_EVERY !== 0 : !accessDecision.hasSubscribers) return;
  const event: AccessDecisionEvent = {
    requestId: ex.requestId,
    traceId: ex.traceId,
    decision: d.id,
    outcome,
    policy: d.policy,
    reasons: d.reasons,
    sourceId,
    service,
    port,
    method: ex.method,
    path: ex.path,
    at: Date.now(),
  };
  if (facts.api !== undefined) {
    event.api = facts.api;
    if (facts.operation) event.operation = facts.operation;
  }
  if (facts.sourceIp) event.sourceIp = facts.sourceIp;
  const c = facts.claims;
  if (c) {
    const g = c.groups;
    event.user = {
      ...(typeof c.sub === 'string' ? { sub: c.sub } : {}),
      ...(typeof c.email === 'string' ? { email: c.email } : {}),
      ...(Array.isArray(g) ? { groups: g.filter((x): x is string => typeof x === 'string') } : {}),
    };
  }
  (outcome === 'allow' ? allowSample : accessDecision).publish(event);
}

/**
 * Decides the pipeline's pending AccessPolicy check once (after inbound, at an access-check policy, or at the latest
 * before forward-request calls the backend); a denial is a policy error with the 403 body, so onError runs as for
 * validate-jwt.
 */
export function enforceAccess(pc: PolicyContext): void {
  const a = pc.access;
  if (a === null) return;
  pc.access = null;
  const d = decideGatewayAccess(a, pc.ex, { claims: pc.claims, headers: pc.clientHeaders, expression: () => contextFor(pc) });
  if (d.allow) return;
  throw new PolicyError('access-check', 'AccessDenied', `access denied by ${d.policy} (decision ${d.id})`, jsonResponse(403, accessDeniedError(pc.ex.requestId, d.policy, d.id, a.hop)));
}

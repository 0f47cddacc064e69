// log-to: API Management's log-to-eventhub for Lockgate: a custom event, written by the access log as one JSON line
// with the request id. Published on a diagnostics channel, so it costs nothing when no access log listens.
import { compileTemplate } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import type { PolicyContext } from '../proxy/policy-context.ts';
import { policyLog, type PolicyLogEvent } from '../telemetry/channels.ts';

/** Largest event written whole (characters of JSON); a larger one is written as its first part, marked truncated. */
export const MAX_EVENT_CHARS = 8192;

/** The event as JSON text within MAX_EVENT_CHARS. */
export function eventJson(v: unknown): string {
  const text = typeof v === 'string' ? JSON.stringify(v) : (JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x)) ?? 'null');
  if (text.length <= MAX_EVENT_CHARS) return text;
  const raw = typeof v === 'string' ? v : text;
  return JSON.stringify({ truncated: true, value: raw.slice(0, MAX_EVENT_CHARS) });
}

export const logToPolicy: PolicyFactory = (attrs, env) => {
  const value = compileTemplate(attrs.value, env);
  const logger = typeof attrs.loggerId === 'string' ? attrs.loggerId : 'default';
  return {
    name: 'log-to',
    path: env.entry.path,
    needsRequestBody: value.reads.has('Request.Body'),
    needsResponseBody: value.reads.has('Response.Body'),
    run(pc: PolicyContext) {
      if (!policyLog.hasSubscribers) return;
      const ex = pc.ex;
      const event: PolicyLogEvent = { requestId: ex.requestId, traceId: ex.traceId, logger, api: ex.api, operation: ex.operation, eventJson: eventJson(value.fn(pc)) };
      policyLog.publish(event);
    },
  };
};

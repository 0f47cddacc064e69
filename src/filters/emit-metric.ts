// emit-metric: adds to a Prometheus counter labelled with the policy's dimensions. The metrics registry of each worker
// caps the distinct label sets per metric and counts what it drops (lockgate_emit_metric_dropped_total).
import { compileValue, isExpression, type ValueFn } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import type { PolicyContext } from '../proxy/policy-context.ts';
import { policyMetric, type PolicyMetricEvent } from '../telemetry/channels.ts';

/** API Management allows at most 10 dimensions per emit-metric. */
export const MAX_DIMENSIONS = 10;
/** Label values are cut to this many characters. */
export const MAX_LABEL_VALUE = 128;

/** Dimensions that may leave out their value: the gateway fills them in (API Management's default dimensions). */
const DEFAULT_DIMENSIONS: Record<string, (pc: PolicyContext) => string> = {
  apiId: (pc) => pc.route.api,
  operationId: (pc) => pc.route.operation,
  productId: (pc) => pc.product,
  subscriptionId: (pc) => pc.subscription?.id ?? '',
  userId: (pc) => (typeof pc.claims?.sub === 'string' ? pc.claims.sub : ''),
  gatewayId: (pc) => pc.facts?.gateway ?? '',
};

export const emitMetricPolicy: PolicyFactory = (attrs, env) => {
  const base = String(attrs.name);
  const full = typeof attrs.namespace === 'string' ? `${attrs.namespace}_${base}` : base;
  const name = full.endsWith('_total') ? full : `${full}_total`;
  const dims = (attrs.dimensions as Array<{ name: string; value?: string }> | undefined) ?? [];
  if (dims.length > MAX_DIMENSIONS) throw new Error(`at most ${MAX_DIMENSIONS} dimensions are allowed, got ${dims.length}`);
  const seen = new Set<string>();
  const compiled: ValueFn[] = [];
  const labels: Array<[string, (pc: PolicyContext) => string]> = dims.map((d) => {
    if (seen.has(d.name)) throw new Error(`dimension ${JSON.stringify(d.name)} appears twice`);
    seen.add(d.name);
    if (d.value !== undefined) {
      const f: ValueFn = compileValue(d.value, env);
      compiled.push(f);
      return [d.name, f];
    }
    const dflt = DEFAULT_DIMENSIONS[d.name];
    if (dflt === undefined) throw new Error(`dimension ${JSON.stringify(d.name)} needs a value (only ${Object.keys(DEFAULT_DIMENSIONS).join(', ')} may leave it out)`);
    return [d.name, dflt];
  });
  const raw = attrs.value ?? 1;
  let value: (pc: PolicyContext) => number;
  if (typeof raw === 'number') {
    if (!Number.isFinite(raw) || raw < 0) throw new Error(`value must be a number ≥ 0, got ${raw}`);
    value = () => raw;
  } else if (typeof raw === 'string' && isExpression(raw)) {
    const f = compileValue(raw, env);
    compiled.push(f);
    value = (pc) => Number(f(pc));
  } else if (typeof raw === 'string' && Number.isFinite(Number(raw)) && Number(raw) >= 0 && raw.trim() !== '') {
    const n = Number(raw);
    value = () => n;
  } else throw new Error(`value must be a number ≥ 0 or an expression written @(…), got ${JSON.stringify(raw)}`);
  return {
    name: 'emit-metric',
    path: env.entry.path,
    needsRequestBody: compiled.some((f) => f.reads.has('Request.Body')),
    needsResponseBody: compiled.some((f) => f.reads.has('Response.Body')),
    run(pc: PolicyContext) {
      if (!policyMetric.hasSubscribers) return;
      const l: Record<string, string> = {};
      for (const [k, f] of labels) {
        const v = f(pc);
        l[k] = v.length > MAX_LABEL_VALUE ? v.slice(0, MAX_LABEL_VALUE) : v;
      }
      const event: PolicyMetricEvent = { name, labels: l, value: value(pc) };
      policyMetric.publish(event);
    },
  };
};

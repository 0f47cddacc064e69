// rate-limit: at most `calls` per `renewalPeriod` per subscription (only requests that came with a key are counted).
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { countersOf, limitHeaders, rateLimited, rateSpec, reportRemaining, resultSlot } from '../proxy/policy-limits.ts';

export const rateLimitPolicy: PolicyFactory = (attrs, env) => {
  const calls = Number(attrs.calls);
  const period = Number(attrs.renewalPeriod);
  if (period > 300_000) throw new Error('renewalPeriod is at most 300s for rate-limit (use quota for longer periods), as in API Management');
  const counter = rateSpec(calls, period, 'fixedWindow');
  if (counter.kind !== 'window') throw new Error('unreachable');
  const headers = limitHeaders(attrs);
  const store = countersOf(env.services);
  const out = resultSlot();
  // One counter per subscription and policy placement: the same subscription has separate limits per Api.
  const place = `${env.entry.file}:${env.entry.line}:${env.entry.col}`;
  return {
    name: 'rate-limit',
    path: env.entry.path,
    run(pc) {
      const sub = pc.subscription;
      if (sub === null) return;
      const r = store.increment(`rate|${sub.id}|${place}`, 1, calls, counter.spec, Date.now(), out) as typeof out;
      if (!r.admitted) rateLimited(pc, 'rate-limit', headers, r);
      reportRemaining(pc, headers, r, calls);
    },
  };
};

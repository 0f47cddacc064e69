// rate-limit-by-key: at most `calls` per `renewalPeriod` per counter-key value, exact across worker threads.
import { compileCondition, compileValue } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { countersOf, keyText, limitHeaders, rateLimited, rateSpec, reportRemaining, resultSlot } from '../proxy/policy-limits.ts';

export const rateLimitByKeyPolicy: PolicyFactory = (attrs, env) => {
  const calls = Number(attrs.calls);
  const period = Number(attrs.renewalPeriod);
  const counter = rateSpec(calls, period, String(attrs.algorithm ?? 'fixedWindow'));
  const key = compileValue(`@(${String(attrs.counterKey).replace(/^@\((.*)\)$/s, '$1')})`, env);
  const condition = typeof attrs.incrementCondition === 'string' ? compileCondition(attrs.incrementCondition, env) : null;
  const cost = Number(attrs.incrementCount ?? 1);
  const headers = limitHeaders(attrs);
  const store = countersOf(env.services);
  const out = resultSlot();
  if (condition !== null && counter.kind === 'gcra') throw new Error('incrementCondition needs the fixed window (algorithm: fixedWindow)');
  return {
    name: 'rate-limit-by-key',
    path: env.entry.path,
    needsRequestBody: key.reads.has('Request.Body'),
    needsResponseBody: condition?.reads.has('Response.Body') ?? false,
    run(pc) {
      const k = `rl|${keyText(key(pc))}`;
      const now = Date.now();
      if (counter.kind === 'gcra') {
        const r = store.takeGcra(k, cost, counter.spec, now, out) as typeof out;
        if (!r.admitted) rateLimited(pc, 'rate-limit-by-key', headers, r);
        return reportRemaining(pc, headers, r, calls);
      }
      if (condition === null) {
        const r = store.increment(k, cost, calls, counter.spec, now, out) as typeof out;
        if (!r.admitted) rateLimited(pc, 'rate-limit-by-key', headers, r);
        return reportRemaining(pc, headers, r, calls);
      }
      // Counted once the response is known, when the condition holds (API Management defers it the same way):
      // the limit is checked now against what earlier requests counted.
      const r = store.peek(k, calls, counter.spec, now, out) as typeof out;
      if (!r.admitted) rateLimited(pc, 'rate-limit-by-key', headers, r);
      reportRemaining(pc, headers, r, calls);
      (pc.deferred ??= []).push((p) => {
        if (condition(p)) store.increment(k, cost, Infinity, counter.spec, Date.now(), resultSlot());
      });
    },
  };
};

// quota-by-key: calls and/or bandwidth per renewal period per counter-key value; counters survive restarts (--data-dir).
import { compileCondition, compileValue } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { countersOf, keyText, quotaExceeded, resultSlot } from '../proxy/policy-limits.ts';
import { windowSpec } from '../proxy/counter-store.ts';
import { getHeader } from '../proxy/policy-context.ts';

export const quotaByKeyPolicy: PolicyFactory = (attrs, env) => {
  const calls = attrs.calls === undefined ? null : Number(attrs.calls);
  // Configured as a size; counted in KB as API Management does.
  const bandwidth = attrs.bandwidth === undefined ? null : Math.max(1, Math.floor(Number(attrs.bandwidth) / 1024));
  if (calls === null && bandwidth === null) throw new Error('needs calls, bandwidth, or both');
  const period = Number(attrs.renewalPeriod);
  if (period !== 0 && period < 300_000) throw new Error('renewalPeriod must be 0 (a lifetime quota) or at least 300s, as in API Management');
  const origin = Date.parse(String(attrs.firstPeriodStart ?? '0001-01-01T00:00:00Z'));
  if (Number.isNaN(origin)) throw new Error(`firstPeriodStart ${JSON.stringify(attrs.firstPeriodStart)} is not an ISO 8601 date`);
  const spec = windowSpec(period, { originMs: period === 0 ? 0 : ((origin % period) + period) % period, durable: true });
  const key = compileValue(`@(${String(attrs.counterKey).replace(/^@\((.*)\)$/s, '$1')})`, env);
  const condition = typeof attrs.incrementCondition === 'string' ? compileCondition(attrs.incrementCondition, env) : null;
  const store = countersOf(env.services);
  const out = resultSlot();
  return {
    name: 'quota-by-key',
    path: env.entry.path,
    needsRequestBody: key.reads.has('Request.Body'),
    needsResponseBody: condition?.reads.has('Response.Body') ?? false,
    run(pc) {
      const k = keyText(key(pc));
      const now = Date.now();
      const callsKey = `quota-calls|${k}`;
      const bytesKey = `quota-kb|${k}`;
      // Several quota policies on one key value count a request once.
      const first = !(pc.counted ??= new Set()).has(callsKey);
      pc.counted.add(callsKey);
      if (calls !== null) {
        const r = condition === null && first ? store.increment(callsKey, 1, calls, spec, now, out) : store.peek(callsKey, calls, spec, now, out);
        if (!(r as typeof out).admitted) quotaExceeded('quota-by-key', 'calls', r as typeof out);
      }
      if (bandwidth !== null) {
        const r = store.peek(bytesKey, bandwidth, spec, now, out) as typeof out;
        if (!r.admitted) quotaExceeded('quota-by-key', 'bandwidth', r);
      }
      if (!first || (condition === null && bandwidth === null)) return;
      (pc.deferred ??= []).push((p) => {
        if (condition !== null && !condition(p)) return;
        const t = Date.now();
        if (condition !== null && calls !== null) store.increment(callsKey, 1, Infinity, spec, t, resultSlot());
        if (bandwidth !== null) {
          // Bytes in and out, counted in KB as API Management does; a streamed response counts its Content-Length.
          const resBytes = p.res?.body?.length ?? Number(getHeader(p.res?.headers ?? [], 'content-length') ?? 0);
          const kb = Math.ceil(((p.req.body?.length ?? p.ex.bytesIn) + resBytes) / 1024);
          if (kb > 0) store.increment(bytesKey, kb, Infinity, spec, t, resultSlot());
        }
      });
    },
  };
};

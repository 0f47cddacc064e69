// quota: calls and/or bandwidth per renewal period per subscription (product scope), persisted like quota-by-key.
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { countersOf, quotaExceeded, resultSlot } from '../proxy/policy-limits.ts';
import { windowSpec } from '../proxy/counter-store.ts';
import { getHeader } from '../proxy/policy-context.ts';

export const quotaPolicy: PolicyFactory = (attrs, env) => {
  const calls = attrs.calls === undefined ? null : Number(attrs.calls);
  // Configured as a size; counted in KB as API Management does.
  const bandwidth = attrs.bandwidth === undefined ? null : Math.max(1, Math.floor(Number(attrs.bandwidth) / 1024));
  if (calls === null && bandwidth === null) throw new Error('needs calls, bandwidth, or both');
  const spec = windowSpec(Number(attrs.renewalPeriod), { durable: true });
  const store = countersOf(env.services);
  const out = resultSlot();
  return {
    name: 'quota',
    path: env.entry.path,
    run(pc) {
      const sub = pc.subscription;
      if (sub === null) return;
      const now = Date.now();
      const callsKey = `sub-quota-calls|${sub.id}`;
      const bytesKey = `sub-quota-kb|${sub.id}`;
      const first = !(pc.counted ??= new Set()).has(callsKey);
      pc.counted.add(callsKey);
      if (calls !== null) {
        const r = (first ? store.increment(callsKey, 1, calls, spec, now, out) : store.peek(callsKey, calls, spec, now, out)) as typeof out;
        if (!r.admitted) quotaExceeded('quota', 'calls', r);
      }
      if (bandwidth === null) return;
      const r = store.peek(bytesKey, bandwidth, spec, now, out) as typeof out;
      if (!r.admitted) quotaExceeded('quota', 'bandwidth', r);
      if (!first) return;
      (pc.deferred ??= []).push((p) => {
        const resBytes = p.res?.body?.length ?? Number(getHeader(p.res?.headers ?? [], 'content-length') ?? 0);
        const kb = Math.ceil(((p.req.body?.length ?? p.ex.bytesIn) + resBytes) / 1024);
        if (kb > 0) store.increment(bytesKey, kb, Infinity, spec, Date.now(), resultSlot());
      });
    },
  };
};

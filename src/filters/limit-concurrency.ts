// limit-concurrency: runs its policies for at most maxCount requests per key value at once; over the limit the
// request fails at once with 429 (API Management's behaviour: no queueing). Counts are per worker thread.
import { compileValue } from '../proxy/policy-values.ts';
import type { PolicyFactory, PolicyServices } from '../proxy/policy-pipeline.ts';
import { runSteps } from '../proxy/policy-run.ts';
import { PolicyError, type PolicyContext } from '../proxy/policy-context.ts';
import { keyText } from '../proxy/policy-limits.ts';
import type { PolicyEntry } from '../model/types.ts';

/** Requests in flight per key value, shared by every limit-concurrency of a worker and kept across config reloads. */
export function concurrencyOf(services: PolicyServices): Map<string, number> {
  let m = services.concurrency as Map<string, number> | undefined;
  if (m === undefined) {
    m = new Map();
    services.concurrency = m;
  }
  return m;
}

export const limitConcurrencyPolicy: PolicyFactory = (attrs, env) => {
  const key = compileValue(String(attrs.key), env);
  const max = Number(attrs.maxCount);
  const steps = env.compileList((attrs.policies as PolicyEntry[] | undefined) ?? []);
  const counts = concurrencyOf(env.services);
  const release = (k: string): void => {
    const n = (counts.get(k) ?? 1) - 1;
    if (n <= 0) counts.delete(k);
    else counts.set(k, n);
  };
  return {
    name: 'limit-concurrency',
    path: env.entry.path,
    children: steps,
    needsRequestBody: key.reads.has('Request.Body'),
    needsResponseBody: key.reads.has('Response.Body'),
    run(pc: PolicyContext) {
      const k = keyText(key(pc));
      const n = counts.get(k) ?? 0;
      if (n >= max) {
        // API Management answers 429 without a body.
        throw new PolicyError('limit-concurrency', 'ConcurrencyLimitExceeded', `more than ${max} concurrent requests for this key`, { status: 429, reason: '', headers: [], body: Buffer.alloc(0), capture: null });
      }
      counts.set(k, n + 1);
      let r: void | Promise<void>;
      try {
        r = runSteps(steps, pc);
      } catch (err) {
        release(k);
        throw err;
      }
      if (r === undefined) {
        release(k);
        return;
      }
      return r.finally(() => release(k));
    },
  };
};

// retry: runs its policies once, then again (up to `count` times) while the condition holds, waiting as API Management does.
import { compileCondition } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { runSteps } from '../proxy/policy-run.ts';
import { PolicyError } from '../proxy/policy-context.ts';
import type { PolicyEntry } from '../model/types.ts';

/** Wait before retry `n` (1-based), reference/apim.md §2.12. */
export function retryDelay(n: number, interval: number, delta: number | undefined, maxInterval: number | undefined, firstFast: boolean, random: () => number = Math.random): number {
  if (firstFast && n === 1) return 0;
  let wait = interval;
  if (delta !== undefined && maxInterval !== undefined) {
    wait = interval + (2 ** n - 1) * delta * (0.8 + 0.4 * random());
    wait = Math.min(wait, maxInterval);
  } else if (delta !== undefined) {
    wait = interval + (n - 1) * delta;
  }
  return wait;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const retryPolicy: PolicyFactory = (attrs, env) => {
  const condition = compileCondition(String(attrs.condition), env);
  const count = Number(attrs.count);
  const interval = Number(attrs.interval);
  const delta = attrs.delta === undefined ? undefined : Number(attrs.delta);
  const maxInterval = attrs.maxInterval === undefined ? undefined : Number(attrs.maxInterval);
  const firstFast = attrs.firstFastRetry === true;
  const steps = env.compileList((attrs.policies as PolicyEntry[] | undefined) ?? []);
  return {
    name: 'retry',
    path: env.entry.path,
    children: steps,
    // A request body must be replayable.
    needsRequestBody: true,
    needsResponseBody: condition.reads.has('Response.Body'),
    async run(pc) {
      for (let n = 0; ; n++) {
        let failure: PolicyError | null = null;
        try {
          const r = runSteps(steps, pc);
          if (r !== undefined) await r;
        } catch (err) {
          if (!(err instanceof PolicyError)) throw err;
          // A failed try: the condition sees it as context.LastError and the error response.
          failure = err;
          pc.lastError = { source: err.source, reason: err.reason, message: err.message, scope: env.entry.scope ?? '', section: pc.section, path: env.entry.path, policyId: '' };
          pc.res = err.response;
        }
        if (pc.stopped || n >= count || !condition(pc)) {
          if (failure !== null) throw failure;
          return;
        }
        const wait = retryDelay(n + 1, interval, delta, maxInterval, firstFast);
        if (wait > 0) await sleep(wait);
        pc.lastError = null;
      }
    },
  };
};

// choose: runs the policies of the first `when` whose condition holds, else `otherwise`.
import { compileCondition } from '../proxy/policy-values.ts';
import type { PolicyFactory, Step } from '../proxy/policy-pipeline.ts';
import { runSteps } from '../proxy/policy-run.ts';
import type { PolicyEntry } from '../model/types.ts';

export const choosePolicy: PolicyFactory = (attrs, env) => {
  const branches = (attrs.when as Array<{ condition: string; policies?: PolicyEntry[] }>).map((w) => ({
    condition: compileCondition(w.condition, env),
    steps: env.compileList(w.policies ?? []),
  }));
  const otherwise = env.compileList((attrs.otherwise as PolicyEntry[] | undefined) ?? []);
  const children: Step[] = [...branches.flatMap((b) => b.steps), ...otherwise];
  const reads = branches.map((b) => b.condition.reads);
  return {
    name: 'choose',
    path: env.entry.path,
    children,
    needsRequestBody: reads.some((r) => r.has('Request.Body')),
    needsResponseBody: reads.some((r) => r.has('Response.Body')),
    run(pc) {
      for (const b of branches) if (b.condition(pc)) return runSteps(b.steps, pc);
      return runSteps(otherwise, pc);
    },
  };
};

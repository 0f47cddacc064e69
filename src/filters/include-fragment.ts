// include-fragment: runs a PolicyFragment's policies at this point (the config loader put them in `policies`).
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { runSteps } from '../proxy/policy-run.ts';
import type { PolicyEntry } from '../model/types.ts';

export const includeFragmentPolicy: PolicyFactory = (attrs, env) => {
  const list = attrs.policies as PolicyEntry[] | undefined;
  if (list === undefined) throw new Error(`PolicyFragment ${JSON.stringify(attrs.fragmentId)} was not resolved`);
  const steps = env.compileList(list);
  return {
    name: 'include-fragment',
    path: env.entry.path,
    children: steps,
    run: (pc) => runSteps(steps, pc),
  };
};

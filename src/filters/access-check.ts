// access-check: decides the route's gateway AccessPolicies here instead of right after inbound (identity issue §3).
import { enforceAccess } from '../proxy/access-gate.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';

export const accessCheckPolicy: PolicyFactory = (_attrs, env) => ({
  name: 'access-check',
  path: env.entry.path,
  run(pc) {
    enforceAccess(pc);
  },
});

// set-status: sets the status of the response (the one returned, or the one return-response builds).
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';

export const setStatusPolicy: PolicyFactory = (attrs, env) => {
  const code = Number(attrs.code);
  const reason = typeof attrs.reason === 'string' ? attrs.reason : '';
  return {
    name: 'set-status',
    path: env.entry.path,
    run(pc) {
      // Inbound there is no response yet: start the one a later return-response (or the backend) replaces.
      pc.res ??= { status: 200, reason: '', headers: [], body: null, capture: null };
      pc.res.status = code;
      pc.res.reason = reason;
    },
  };
};

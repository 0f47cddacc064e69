// set-backend-service: sends the request to another Backend, or to a base URL.
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';

export const setBackendServicePolicy: PolicyFactory = (attrs, env) => {
  const target = typeof attrs.backendId === 'string' ? env.backends.byName(attrs.backendId) : env.backends.forUrl(String(attrs.baseUrl));
  return {
    name: 'set-backend-service',
    path: env.entry.path,
    run(pc) {
      pc.cluster = target;
    },
  };
};

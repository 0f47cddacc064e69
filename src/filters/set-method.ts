// set-method: changes the method of the backend request.
import { compileValue } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,32}$/;

export const setMethodPolicy: PolicyFactory = (attrs, env) => {
  const method = compileValue(String(attrs.method), env);
  return {
    name: 'set-method',
    path: env.entry.path,
    run(pc) {
      const m = method(pc).toUpperCase();
      if (!TOKEN.test(m)) throw new Error(`${JSON.stringify(m)} is not an HTTP method`);
      pc.req.method = m;
    },
  };
};

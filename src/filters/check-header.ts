// check-header: rejects a request without the header, or with a value that is not allowed (API Management's messages).
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { PolicyError, errorResponse, getHeader } from '../proxy/policy-context.ts';

export const checkHeaderPolicy: PolicyFactory = (attrs, env) => {
  const name = String(attrs.name);
  const lower = name.toLowerCase();
  const status = Number(attrs.failedCheckHttpcode);
  const message = String(attrs.failedCheckErrorMessage);
  const ignoreCase = attrs.ignoreCase === true;
  const allowed = ((attrs.values ?? []) as string[]).map((v) => (ignoreCase ? v.toLowerCase() : v));
  return {
    name: 'check-header',
    path: env.entry.path,
    run(pc) {
      const value = getHeader(pc.req.headers, lower);
      if (value === undefined) {
        throw new PolicyError('check-header', 'HeaderNotFound', `Header ${name} was not found in the request. Access denied.`, errorResponse(status, message));
      }
      if (allowed.length === 0) return;
      const v = ignoreCase ? value.toLowerCase() : value;
      if (!allowed.includes(v)) {
        throw new PolicyError('check-header', 'HeaderValueNotAllowed', `Header ${name} value of ${value} is not allowed. Access denied.`, errorResponse(status, message));
      }
    },
  };
};

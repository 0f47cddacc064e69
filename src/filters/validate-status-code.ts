// validate-status-code: checks that the response status is one the operation declares (its code, its class such as
// 4XX, or a default response), so backend errors the API does not document do not leak; API Management's actions.
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { INTERNAL_ERROR, compileAction, conclude, finding, responseFor, type ActionFn, type Finding } from '../proxy/policy-validation.ts';

export const validateStatusCodePolicy: PolicyFactory = (attrs, env) => {
  const unspecified = compileAction(attrs.unspecifiedStatusCodeAction, env, 'unspecifiedStatusCodeAction');
  const variable = attrs.errorsVariableName as string | undefined;
  const overrides = new Map<number, ActionFn>();
  for (const [i, s] of ((attrs.statusCodes ?? []) as Array<{ code: number; action: string }>).entries()) {
    overrides.set(Number(s.code), compileAction(s.action, env, `statusCodes[${i}].action`));
  }
  const op = env.route.spec;
  return {
    name: 'validate-status-code',
    path: env.entry.path,
    run(pc) {
      const res = pc.res;
      if (res === null) return;
      const out: Finding[] = [];
      if (responseFor(op, res.status) === undefined) {
        const action = (overrides.get(res.status) ?? unspecified)(pc);
        finding(action, String(res.status), 'StatusCode', 'Unspecified', `Response status code ${res.status} is not allowed.`, INTERNAL_ERROR, out);
      }
      conclude(pc, 'validate-status-code', variable, out, false);
    },
  };
};

// set-variable: stores a value (a literal or an expression's result) in context.Variables.
import { compileTemplate } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';

export const setVariablePolicy: PolicyFactory = (attrs, env) => {
  const name = String(attrs.name);
  const value = compileTemplate(attrs.value, env);
  return {
    name: 'set-variable',
    path: env.entry.path,
    needsRequestBody: value.reads.has('Request.Body'),
    needsResponseBody: value.reads.has('Response.Body'),
    run(pc) {
      pc.variables.set(name, value.fn(pc));
    },
  };
};

// validate-headers: checks the response headers against the headers the operation declares for the response's
// status (declared ones against their schemas, undeclared ones by their presence), with API Management's actions.
import type { OperationParameter } from '../model/types.ts';
import { createSchemaCompiler, type SchemaValidator } from '../policy/schema-validator.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { INTERNAL_ERROR, checkParameter, compileAction, conclude, finding, responseFor, type ActionFn, type Finding } from '../proxy/policy-validation.ts';

/**
 * Response headers that are never "unspecified": framing and connection headers, Date, the gateway's request id,
 * and Content-Type, which OpenAPI does not let a response declare as a header. A per-header override still applies.
 */
const IMPLICIT_HEADERS = new Set(['content-type', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'date', 'x-request-id']);

interface DeclaredHeader {
  param: OperationParameter;
  required: boolean;
  validator: SchemaValidator | undefined;
}

export const validateHeadersPolicy: PolicyFactory = (attrs, env) => {
  const specified = compileAction(attrs.specifiedHeaderAction, env, 'specifiedHeaderAction');
  const unspecified = compileAction(attrs.unspecifiedHeaderAction, env, 'unspecifiedHeaderAction');
  const variable = attrs.errorsVariableName as string | undefined;
  const overrides = new Map<string, ActionFn>();
  for (const [i, h] of ((attrs.headers ?? []) as Array<{ name: string; action: string }>).entries()) {
    overrides.set(h.name.toLowerCase(), compileAction(h.action, env, `headers[${i}].action`));
  }
  // Each response definition's headers, compiled once (keyed by the definition object).
  const op = env.route.spec;
  const compiler = createSchemaCompiler();
  const byResponse = new Map<object, Map<string, DeclaredHeader>>();
  for (const [status, res] of Object.entries(op?.responses ?? {})) {
    const headers = new Map<string, DeclaredHeader>();
    for (const [name, h] of Object.entries(res.headers ?? {})) {
      const lower = name.toLowerCase();
      if (lower === 'content-type') continue;
      let validator: SchemaValidator | undefined;
      if (h.schema !== undefined) {
        const r = compiler.compile(h.schema);
        if (!r.ok) throw new Error(`the schema of header ${name} in response ${status} does not compile: ${r.problems.join('; ')}`);
        validator = r.validator;
      }
      headers.set(lower, { param: { name, in: 'header', required: h.required, schema: h.schema }, required: h.required, validator });
    }
    byResponse.set(res, headers);
  }
  const NONE = new Map<string, DeclaredHeader>();

  return {
    name: 'validate-headers',
    path: env.entry.path,
    run(pc) {
      const res = pc.res;
      if (res === null) return;
      const def = responseFor(op, res.status);
      const declared = def === undefined ? NONE : (byResponse.get(def) ?? NONE);
      const present = new Map<string, string[]>();
      for (let i = 0; i < res.headers.length; i += 2) {
        const list = present.get(res.headers[i]);
        if (list === undefined) present.set(res.headers[i], [res.headers[i + 1]]);
        else list.push(res.headers[i + 1]);
      }
      const out: Finding[] = [];
      for (const [key, d] of declared) {
        const action = (overrides.get(key) ?? specified)(pc);
        if (action === 'ignore') continue;
        const name = d.param.name;
        const raws = present.get(key) ?? [];
        if (raws.length === 0) {
          if (d.required) finding(action, name, 'ResponseHeader', 'IncorrectMessage', `Response must contain the header ${name}, which the definition requires.`, INTERNAL_ERROR, out);
          continue;
        }
        const problem = checkParameter(d.param, raws, d.validator);
        if (problem === null) continue;
        const details =
          problem.kind === 'multiple'
            ? `Response cannot contain multiple values for the header ${name}.`
            : problem.kind === 'parse'
              ? `Value of the header ${name} couldn't be parsed according to the definition. ${problem.message}`
              : `Value of the header ${name} does not conform to the definition. ${problem.message}`;
        finding(action, name, 'ResponseHeader', 'IncorrectMessage', details, INTERNAL_ERROR, out);
      }
      for (const key of present.keys()) {
        if (declared.has(key)) continue;
        const override = overrides.get(key);
        if (override === undefined && IMPLICIT_HEADERS.has(key)) continue;
        finding((override ?? unspecified)(pc), key, 'ResponseHeader', 'Unspecified', `Unspecified header ${key} is not allowed.`, INTERNAL_ERROR, out);
      }
      conclude(pc, 'validate-headers', variable, out, false);
    },
  };
};

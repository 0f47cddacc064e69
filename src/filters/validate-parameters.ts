// validate-parameters: checks the request's path, query and header parameters against the operation's imported
// definition (declared ones against their schemas, undeclared ones by their presence), with API Management's actions.
import type { OperationParameter } from '../model/types.ts';
import { coerceParameter, createSchemaCompiler, type SchemaValidator } from '../policy/schema-validator.ts';
import type { PolicyContext } from '../proxy/policy-context.ts';
import { templateParams } from '../proxy/policy-expression-context.ts';
import type { CompileEnv, PolicyFactory } from '../proxy/policy-pipeline.ts';
import {
  checkParameter,
  compileAction,
  conclude,
  describe,
  finding,
  propertyNames,
  propertySchema,
  type Action,
  type ActionFn,
  type Finding,
} from '../proxy/policy-validation.ts';

type Where = 'path' | 'query' | 'header';

const TYPE: Record<Where, string> = { path: 'PathParameter', query: 'QueryParameter', header: 'RequestHeader' };
const LABEL: Record<Where, string> = { path: 'path parameter', query: 'query parameter', header: 'header' };

/**
 * Request headers that are never "unspecified": framing and connection headers, the ones the gateway sets itself
 * (forwarding, request id, trace context), and Accept, Content-Type and Authorization, which OpenAPI does not let a
 * definition declare as parameters. A per-header override still applies to them.
 */
const IMPLICIT_HEADERS = new Set([
  'host',
  'content-length',
  'content-type',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'proxy-connection',
  'via',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-request-id',
  'traceparent',
  'tracestate',
  'accept',
  'authorization',
]);

/** Headers the gateway writes into the backend request itself (request id, forwarding, trace context). */
const GATEWAY_SET = new Set(['x-request-id', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'via', 'traceparent', 'tracestate']);

interface Group {
  specified: ActionFn;
  unspecified: ActionFn;
  overrides: Map<string, ActionFn>;
}

interface Declared {
  param: OperationParameter;
  where: Where;
  /** The name as looked up: lower-case for headers. */
  key: string;
  validator: SchemaValidator | undefined;
  /** A query object spread over several keys (deepObject `f[a]=1`, or exploded form `a=1&b=2`). */
  spread: 'deep' | 'form' | null;
  /** Exploded form objects: the keys (property names) it takes. */
  keys: string[];
}

function group(raw: unknown, top: { specified: ActionFn; unspecified: ActionFn }, headers: boolean, env: CompileEnv, what: string): Group {
  const g = (raw ?? {}) as { specifiedParameterAction?: string; unspecifiedParameterAction?: string; parameters?: Array<{ name: string; action: string }> };
  const overrides = new Map<string, ActionFn>();
  for (const [i, p] of (g.parameters ?? []).entries()) {
    overrides.set(headers ? p.name.toLowerCase() : p.name, compileAction(p.action, env, `${what}.parameters[${i}].action`));
  }
  return {
    specified: g.specifiedParameterAction === undefined ? top.specified : compileAction(g.specifiedParameterAction, env, `${what}.specifiedParameterAction`),
    unspecified: g.unspecifiedParameterAction === undefined ? top.unspecified : compileAction(g.unspecifiedParameterAction, env, `${what}.unspecifiedParameterAction`),
    overrides,
  };
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function isObjectSchema(p: OperationParameter): boolean {
  const s = p.schema;
  if (s === undefined || typeof s === 'boolean') return false;
  const t = s.type;
  if (t === 'object' || (Array.isArray(t) && t.includes('object'))) return true;
  return t === undefined && propertyNames(s).length > 0;
}

export const validateParametersPolicy: PolicyFactory = (attrs, env) => {
  const top = {
    specified: compileAction(attrs.specifiedParameterAction, env, 'specifiedParameterAction'),
    unspecified: compileAction(attrs.unspecifiedParameterAction, env, 'unspecifiedParameterAction'),
  };
  const groups: Record<Where, Group> = {
    path: group(attrs.path, top, false, env, 'path'),
    query: group(attrs.query, top, false, env, 'query'),
    header: group(attrs.headers, top, true, env, 'headers'),
  };
  const variable = attrs.errorsVariableName as string | undefined;
  const op = env.route.spec;
  const compiler = createSchemaCompiler();
  const declared: Declared[] = [];
  for (const param of op?.parameters ?? []) {
    if (param.in === 'cookie') continue;
    const where = param.in;
    let validator: SchemaValidator | undefined;
    if (param.schema !== undefined) {
      const r = compiler.compile(param.schema);
      if (!r.ok) throw new Error(`the schema of ${LABEL[where]} ${param.name} does not compile: ${r.problems.join('; ')}`);
      validator = r.validator;
    }
    let spread: Declared['spread'] = null;
    if (where === 'query' && param.contentType === undefined && isObjectSchema(param)) {
      const style = param.style ?? 'form';
      if (style === 'deepObject') spread = 'deep';
      else if (style === 'form' && param.explode !== false) spread = 'form';
    }
    declared.push({ param, where, key: where === 'header' ? param.name.toLowerCase() : param.name, validator, spread, keys: spread === 'form' ? propertyNames(param.schema) : [] });
  }
  const cookies = (op?.parameters ?? []).some((p) => p.in === 'cookie');
  const template = env.route.urlTemplate;

  /** A spread query object rebuilt from its keys, each value read as its property's schema says. */
  const spreadObject = (d: Declared, query: Map<string, string[]>, used: Set<string>): Record<string, unknown> | undefined => {
    const out: Record<string, unknown> = {};
    let any = false;
    for (const [k, values] of query) {
      let prop: string | undefined;
      if (d.spread === 'deep') {
        const m = k.startsWith(`${d.param.name}[`) && k.endsWith(']') ? k.slice(d.param.name.length + 1, -1) : undefined;
        prop = m;
      } else if (d.keys.includes(k)) prop = k;
      if (prop === undefined) continue;
      used.add(k);
      any = true;
      const sub = propertySchema(d.param.schema, prop);
      const value = sub === undefined ? values[0] : coerceParameter({ name: prop, in: 'query', required: false, schema: sub }, values.length === 1 ? values[0] : values);
      Object.defineProperty(out, prop, { value, enumerable: true, writable: true, configurable: true });
    }
    return any ? out : undefined;
  };

  return {
    name: 'validate-parameters',
    path: env.entry.path,
    run(pc: PolicyContext) {
      const out: Finding[] = [];
      const actionFor = (where: Where, key: string, specified: boolean): Action => {
        const g = groups[where];
        return (g.overrides.get(key) ?? (specified ? g.specified : g.unspecified))(pc);
      };

      // Values as the request carries them now.
      const pathValues = templateParams(template, pc.req.originalPath);
      const query = new Map<string, string[]>();
      for (const [k, v] of new URLSearchParams(pc.req.query)) {
        const list = query.get(k);
        if (list === undefined) query.set(k, [v]);
        else list.push(v);
      }
      // Headers as earlier policies left them, except the ones the gateway sets for the backend: those as the client sent them.
      const headers = new Map<string, string[]>();
      const add = (name: string, value: string) => {
        const list = headers.get(name);
        if (list === undefined) headers.set(name, [value]);
        else list.push(value);
      };
      const h = pc.req.headers;
      for (let i = 0; i < h.length; i += 2) if (!GATEWAY_SET.has(h[i])) add(h[i], h[i + 1]);
      const c = pc.clientHeaders;
      for (let i = 0; i < c.length; i += 2) {
        const name = c[i].toLowerCase();
        if (GATEWAY_SET.has(name)) add(name, c[i + 1]);
      }
      const usedQuery = new Set<string>();
      const usedHeaders = new Set<string>();

      for (const d of declared) {
        const { param, where, key } = d;
        if (where === 'query') usedQuery.add(key);
        if (where === 'header') usedHeaders.add(key);
        const action = actionFor(where, key, true);
        if (action === 'ignore') continue;
        const label = LABEL[where];
        if (d.spread !== null) {
          const value = spreadObject(d, query, usedQuery);
          if (value === undefined) {
            if (param.required) finding(action, param.name, TYPE[where], 'IncorrectMessage', `Request must contain the ${label} ${param.name}, which the definition requires.`, `Request must contain the ${label} ${param.name}, which the definition requires.`, out);
            continue;
          }
          const r = d.validator?.validate(value);
          if (r !== undefined && !r.ok) {
            const message = r.errors.map(describe).join(' ');
            finding(action, param.name, TYPE[where], 'IncorrectMessage', `Value of the ${label} ${param.name} does not conform to the definition. ${message}`, `The value of the ${label} ${param.name} does not conform to the definition. ${message}`, out);
          }
          continue;
        }
        let raws: string[];
        if (where === 'path') {
          const v = pathValues.get(param.templateName ?? param.name);
          raws = v === undefined ? [] : [decode(v)];
        } else if (where === 'query') raws = query.get(key) ?? [];
        else raws = headers.get(key) ?? [];
        if (raws.length === 0) {
          if (param.required) {
            const text = `Request must contain the ${label} ${param.name}, which the definition requires.`;
            finding(action, param.name, TYPE[where], 'IncorrectMessage', text, text, out);
          }
          continue;
        }
        const problem = checkParameter(param, raws, d.validator);
        if (problem === null) continue;
        if (problem.kind === 'multiple') {
          const text = `Request cannot contain multiple values for the ${label} ${param.name}.`;
          finding(action, param.name, TYPE[where], 'IncorrectMessage', text, text, out);
        } else if (problem.kind === 'parse') {
          finding(action, param.name, TYPE[where], 'IncorrectMessage', `Value of the ${label} ${param.name} cannot be parsed according to the definition. ${problem.message}`, `Value of the ${label} ${param.name} couldn't be parsed according to the definition. ${problem.message}`, out);
        } else {
          finding(action, param.name, TYPE[where], 'IncorrectMessage', `Value of the ${label} ${param.name} does not conform to the definition. ${problem.message}`, `The value of the ${label} ${param.name} does not conform to the definition. ${problem.message}`, out);
        }
      }

      for (const k of query.keys()) {
        if (usedQuery.has(k)) continue;
        const text = `Unspecified query parameter ${k} is not allowed.`;
        finding(actionFor('query', k, false), k, TYPE.query, 'Unspecified', text, text, out);
      }
      for (const k of headers.keys()) {
        if (usedHeaders.has(k)) continue;
        const override = groups.header.overrides.get(k);
        if (override === undefined && (IMPLICIT_HEADERS.has(k) || (cookies && k === 'cookie'))) continue;
        const text = `Unspecified header ${k} is not allowed.`;
        finding((override ?? groups.header.unspecified)(pc), k, TYPE.header, 'Unspecified', text, text, out);
      }
      conclude(pc, 'validate-parameters', variable, out, true);
    },
  };
};

// set-header: adds, replaces, appends or removes a request header (inbound, backend) or a response header (outbound, onError).
import { compileValue, isExpression, valueList } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import type { PolicyContext } from '../proxy/policy-context.ts';
import { removeHeader } from '../proxy/policy-context.ts';
import { hasBadValueChar } from '../proxy/field-syntax.ts';

/** Framing is the gateway's: API Management refuses to change these too (reference/apim.md §2.5). */
const PROTECTED = new Set(['connection', 'content-length', 'keep-alive', 'transfer-encoding']);
/** Headers whose values may hold commas: several values become several header lines, not one joined line. */
const REPEATED = new Set(['user-agent', 'www-authenticate', 'proxy-authenticate', 'cookie', 'set-cookie', 'warning', 'date', 'expires', 'if-modified-since', 'if-unmodified-since', 'last-modified', 'retry-after']);

export const setHeaderPolicy: PolicyFactory = (attrs, env) => {
  const name = String(attrs.name).toLowerCase();
  if (PROTECTED.has(name)) throw new Error(`the ${name} header is the gateway's to set and cannot be changed`);
  if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) throw new Error(`${JSON.stringify(attrs.name)} is not a valid header name`);
  const action = String(attrs.existsAction ?? 'override');
  const texts = valueList(attrs, env);
  const values = texts.map((v) => compileValue(v, env));
  const onResponse = env.section === 'outbound' || env.section === 'onError';
  const joined = !REPEATED.has(name);
  // The common case, one value replacing the header: no list of values, and a literal checked once, here.
  const single = action === 'override' && values.length === 1 ? values[0] : null;
  const literal = single !== null && !isExpression(texts[0]) && !hasBadValueChar(texts[0]);
  return {
    name: 'set-header',
    path: env.entry.path,
    run(pc: PolicyContext) {
      const list = onResponse ? pc.res?.headers : pc.req.headers;
      if (list === undefined) return;
      if (single !== null) {
        const v = single(pc);
        if (!literal && hasBadValueChar(v)) throw new Error(`value for header ${name} contains a line break or NUL`);
        removeHeader(list, name);
        list.push(name, v);
        return;
      }
      const present = list.includes(name);
      if (action === 'delete') return removeHeader(list, name);
      if (action === 'skip' && present) return;
      const vals = values.map((f) => f(pc));
      for (const v of vals) if (hasBadValueChar(v)) throw new Error(`value for header ${name} contains a line break or NUL`);
      if (action === 'override') removeHeader(list, name);
      if (joined && action === 'append' && present) {
        // API Management appends to the header's value list: one line, comma-separated.
        const all: string[] = [];
        for (let i = 0; i < list.length; i += 2) if (list[i] === name) all.push(list[i + 1]);
        removeHeader(list, name);
        list.push(name, [...all, ...vals].join(','));
      } else if (vals.length === 0) {
        list.push(name, '');
      } else if (joined) {
        list.push(name, vals.join(','));
      } else {
        for (const v of vals) list.push(name, v);
      }
    },
  };
};

// set-query-parameter: adds, replaces, appends or removes a query parameter of the backend request.
import { compileValue, valueList } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';

function parse(query: string): Array<[string, string]> {
  if (query.length < 2) return [];
  return query.slice(1).split('&').filter(Boolean).map((part) => {
    const eq = part.indexOf('=');
    return eq === -1 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)];
  });
}

function decodedName(raw: string): string {
  try {
    return decodeURIComponent(raw.replaceAll('+', ' '));
  } catch {
    return raw;
  }
}

export const setQueryParameterPolicy: PolicyFactory = (attrs, env) => {
  const name = String(attrs.name);
  const action = String(attrs.existsAction ?? 'override');
  const values = valueList(attrs, env).map((v) => compileValue(v, env));
  return {
    name: 'set-query-parameter',
    path: env.entry.path,
    run(pc) {
      let pairs = parse(pc.req.query);
      const present = pairs.some(([n]) => decodedName(n) === name);
      if (action === 'skip' && present) return;
      if (action === 'delete' || action === 'override') pairs = pairs.filter(([n]) => decodedName(n) !== name);
      if (action !== 'delete') for (const f of values) pairs.push([encodeURIComponent(name), encodeURIComponent(f(pc))]);
      pc.req.query = pairs.length === 0 ? '' : `?${pairs.map(([n, v]) => `${n}=${v}`).join('&')}`;
    },
  };
};

// rewrite-uri: changes the backend path (and query) using the operation's template parameters.
import { compileValue, isExpression } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { templateParams } from '../proxy/policy-expression-context.ts';

function queryNames(query: string): Set<string> {
  const names = new Set<string>();
  for (const part of query.split('&')) if (part) names.add(part.split('=')[0]);
  return names;
}

export const rewriteUriPolicy: PolicyFactory = (attrs, env) => {
  const raw = String(attrs.template);
  const copyUnmatched = attrs.copyUnmatchedParams !== false;
  const dynamic = isExpression(raw) ? compileValue(raw, env) : null;
  if (dynamic === null && !raw.startsWith('/')) throw new Error(`template ${JSON.stringify(raw)} must start with "/"`);
  const opTemplate = env.route.urlTemplate;
  return {
    name: 'rewrite-uri',
    path: env.entry.path,
    run(pc) {
      const template = dynamic === null ? raw : dynamic(pc);
      const params = templateParams(opTemplate, pc.req.originalPath);
      let missing = '';
      const filled = template.replace(/\{([^}]+)\}/g, (_, name: string) => {
        const v = params.get(name);
        if (v === undefined) missing = name;
        return v ?? '';
      });
      if (missing) throw new Error(`template parameter {${missing}} is not in the operation's URL template ${opTemplate}`);
      const q = filled.indexOf('?');
      const path = q === -1 ? filled : filled.slice(0, q);
      let query = q === -1 ? '' : filled.slice(q + 1);
      if (copyUnmatched && pc.req.query.length > 1) {
        // Our operation templates match no query parameters, so every one the client sent is unmatched;
        // one the new template sets itself is not copied twice.
        const own = queryNames(query);
        const extra = pc.req.query.slice(1).split('&').filter((part) => part && !own.has(part.split('=')[0]));
        if (extra.length) query = query ? `${query}&${extra.join('&')}` : extra.join('&');
      }
      if (!path.startsWith('/') || /[\s\0]/.test(path)) throw new Error(`rewritten path ${JSON.stringify(path)} is not a valid path`);
      pc.req.path = path;
      pc.req.query = query ? `?${query}` : '';
    },
  };
};

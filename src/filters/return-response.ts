// return-response: ends the pipeline at once with a response built here (default 200, empty).
import { compileTemplate, compileValue } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import type { PolicyResponse } from '../proxy/policy-context.ts';

export const returnResponsePolicy: PolicyFactory = (attrs, env) => {
  const fromVar = typeof attrs.responseVariableName === 'string' ? attrs.responseVariableName : null;
  const status = typeof attrs.status === 'number' ? attrs.status : null;
  const reason = typeof attrs.reason === 'string' ? attrs.reason : '';
  const headers = Object.entries((attrs.headers ?? {}) as Record<string, string[]>).map(([name, vals]) => ({
    name: name.toLowerCase(),
    values: vals.map((v) => compileValue(v, env)),
  }));
  const body = attrs.body === undefined ? null : compileTemplate(attrs.body, env);
  const json = attrs.body !== undefined && typeof attrs.body !== 'string';
  return {
    name: 'return-response',
    path: env.entry.path,
    needsRequestBody: body?.reads.has('Request.Body') ?? false,
    needsResponseBody: body?.reads.has('Response.Body') ?? false,
    run(pc) {
      let res: PolicyResponse = { status: 200, reason: '', headers: [], body: null, capture: null };
      if (fromVar !== null) {
        const v = pc.variables.get(fromVar) as Partial<PolicyResponse> | undefined;
        if (v === undefined || typeof v !== 'object' || v === null) throw new Error(`variable ${JSON.stringify(fromVar)} holds no response`);
        res = { status: v.status ?? 200, reason: v.reason ?? '', headers: [...(v.headers ?? [])], body: v.body ?? null, capture: null };
      }
      if (status !== null) res.status = status;
      if (reason) res.reason = reason;
      for (const h of headers) {
        for (let i = res.headers.length - 2; i >= 0; i -= 2) if (res.headers[i] === h.name) res.headers.splice(i, 2);
        for (const f of h.values) res.headers.push(h.name, f(pc));
      }
      if (body !== null) {
        const v = body.fn(pc);
        res.body = Buffer.from(typeof v === 'string' ? v : JSON.stringify(v) ?? '');
        if (json && !res.headers.includes('content-type')) res.headers.push('content-type', 'application/json; charset=utf-8');
      }
      // The response a previous forward left streaming is not needed any more.
      pc.res?.capture?.abandon();
      pc.res = res;
      pc.stopped = true;
    },
  };
};

// send-request: calls a URL, waits for the response and stores it in a variable (API Management's IResponse fields).
import { compileRequest, displayUrl, httpClientOf, OutboundError, reasonOf, responseVariable } from '../proxy/policy-http-client.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';

export const sendRequestPolicy: PolicyFactory = (attrs, env) => {
  const name = String(attrs.responseVariableName);
  const ignoreError = attrs.ignoreError === true;
  const request = compileRequest(attrs, env);
  const client = httpClientOf(env.services);
  return {
    name: 'send-request',
    path: env.entry.path,
    needsRequestBody: request.needsRequestBody,
    needsResponseBody: request.needsResponseBody,
    run(pc) {
      // A bad URL or a failing expression is a policy error even with ignoreError (API Management: only the call's failure is ignored).
      const req = request.build(pc);
      return client(req).then(
        (res) => {
          pc.variables.set(name, responseVariable(res));
        },
        (err: unknown) => {
          if (ignoreError) {
            pc.variables.set(name, null);
            return;
          }
          const code = err instanceof OutboundError ? err.code : 'failed';
          throw Object.assign(new Error(`${req.method} ${displayUrl(req.url)}: ${(err as Error).message}`), { reason: reasonOf(code) });
        },
      );
    },
  };
};

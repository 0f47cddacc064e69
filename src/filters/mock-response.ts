// mock-response: answers with the operation's example (from the OpenAPI import), else a sample from its schema, else an empty body.
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { exampleFor } from '../policy/schema-validator.ts';

export const mockResponsePolicy: PolicyFactory = (attrs, env) => {
  const status = Number(attrs.statusCode ?? 200);
  const contentType = attrs.contentType as string | undefined;
  const op = env.route.spec;
  // Chosen once: the example does not depend on the request.
  const mock = op === null ? undefined : exampleFor(op, status, contentType);
  let body: Buffer | null = null;
  const headers: string[] = [];
  if (mock !== undefined) {
    const json = /[/+]json\b/i.test(mock.contentType);
    body = Buffer.from(typeof mock.value === 'string' && !json ? mock.value : JSON.stringify(mock.value));
    headers.push('content-type', mock.contentType === '*/*' ? 'application/octet-stream' : mock.contentType);
  } else if (contentType !== undefined) {
    headers.push('content-type', contentType);
  }
  return {
    name: 'mock-response',
    path: env.entry.path,
    run(pc) {
      pc.res?.capture?.abandon();
      pc.res = { status, reason: '', headers: [...headers], body, capture: null };
      pc.stopped = true;
    },
  };
};

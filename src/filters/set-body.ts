// set-body: replaces the request body (inbound, backend) or the response body (outbound, onError).
import { compileTemplate } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { removeHeader } from '../proxy/policy-context.ts';

export const setBodyPolicy: PolicyFactory = (attrs, env) => {
  const value = compileTemplate(attrs.value, env);
  const onResponse = env.section === 'outbound' || env.section === 'onError';
  const json = typeof attrs.value !== 'string';
  return {
    name: 'set-body',
    path: env.entry.path,
    // The old body is replaced, so it must have been read off the wire first (and a stream cannot be swapped).
    needsRequestBody: !onResponse || value.reads.has('Request.Body'),
    needsResponseBody: onResponse || value.reads.has('Response.Body'),
    run(pc) {
      const v = value.fn(pc);
      const text = typeof v === 'string' ? v : JSON.stringify(v) ?? '';
      const body = Buffer.from(text);
      const target = onResponse ? pc.res : pc.req;
      if (target === null) return;
      target.body = body;
      if (onResponse && pc.res !== null) pc.res.capture = null;
      // The content changed: an old encoding or type would lie about it.
      removeHeader(target.headers, 'content-encoding');
      if (json) {
        removeHeader(target.headers, 'content-type');
        target.headers.push('content-type', 'application/json; charset=utf-8');
      }
    },
  };
};

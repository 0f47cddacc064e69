// find-and-replace: replaces every occurrence of a text in the request body (inbound, backend) or the response body (outbound, onError).
import { compileValue } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { onResponseSection, readableBody, replaceBody } from '../proxy/policy-body.ts';
import { PolicyError, errorResponse } from '../proxy/policy-context.ts';

/** Output cap when the pipeline runs without a request handler (Gateway.spec.limits.maxBufferedBody's default). */
const DEFAULT_MAX_BODY = 4 * 1024 * 1024;

/**
 * Every occurrence of `from` in `body` replaced by `to`, on bytes: content that is not UTF-8 passes untouched.
 * Null when the result would be longer than `max` bytes (a short `from` with a long `to` multiplies the body).
 */
export function replaceAll(body: Buffer, from: Buffer, to: Buffer, max = Infinity): Buffer | null {
  let at = body.indexOf(from);
  if (at < 0) return body;
  const parts: Buffer[] = [];
  let start = 0;
  let size = body.length;
  while (at >= 0) {
    size += to.length - from.length;
    if (size > max) return null;
    parts.push(body.subarray(start, at), to);
    start = at + from.length;
    at = body.indexOf(from, start);
  }
  parts.push(body.subarray(start));
  return Buffer.concat(parts, size);
}

export const findAndReplacePolicy: PolicyFactory = (attrs, env) => {
  const from = compileValue(String(attrs.from), env);
  const to = compileValue(String(attrs.to), env);
  if (attrs.from === '') throw new Error('`from` is empty: there is nothing to find');
  const onResponse = onResponseSection(env.section);
  return {
    name: 'find-and-replace',
    path: env.entry.path,
    needsRequestBody: !onResponse || from.reads.has('Request.Body') || to.reads.has('Request.Body'),
    needsResponseBody: onResponse,
    run(pc) {
      const target = readableBody(pc, onResponse, 'find-and-replace');
      if (target === null) return;
      const f = from(pc);
      // An expression that gives "" finds nothing (String.Replace would throw in API Management).
      if (f === '') return;
      const max = pc.forward?.maxBufferedBody ?? DEFAULT_MAX_BODY;
      const out = replaceAll(target.body, Buffer.from(f), Buffer.from(to(pc)), max);
      if (out === null) {
        const res = onResponse ? errorResponse(502, 'Bad gateway') : errorResponse(413, 'Request entity too large');
        throw new PolicyError('find-and-replace', 'BodyTooLarge', `the ${onResponse ? 'response' : 'request'} body would grow past ${max} bytes`, res);
      }
      if (out !== target.body) replaceBody(pc, onResponse, out);
    },
  };
};

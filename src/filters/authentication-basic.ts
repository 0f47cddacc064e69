// authentication-basic: sends the backend an Authorization: Basic header (RFC 7617, UTF-8) in place of any the client sent.
import { compileValue, isExpression } from '../proxy/policy-values.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { removeHeader } from '../proxy/policy-context.ts';

export const authenticationBasicPolicy: PolicyFactory = (attrs, env) => {
  const user = String(attrs.username);
  const pass = String(attrs.password);
  const username = compileValue(user, env);
  const password = compileValue(pass, env);
  // Literal credentials (the usual case): the header is built, and a bad username refused, when the config loads.
  const fixed = !isExpression(user) && !isExpression(pass);
  const header = (u: string, p: string): string => {
    if (u.includes(':')) throw new Error('the username cannot contain ":" (RFC 7617)');
    return `Basic ${Buffer.from(`${u}:${p}`, 'utf8').toString('base64')}`;
  };
  const constant = fixed ? header(user, pass) : '';
  return {
    name: 'authentication-basic',
    path: env.entry.path,
    needsRequestBody: username.reads.has('Request.Body') || password.reads.has('Request.Body'),
    run(pc) {
      const value = fixed ? constant : header(username(pc), password(pc));
      removeHeader(pc.req.headers, 'authorization');
      pc.req.headers.push('authorization', value);
    },
  };
};

// forward-request: sends the request to the backend (the built-in global backend section).
import { enforceAccess } from '../proxy/access-gate.ts';
import type { ServerResponse } from 'node:http';
import { canForwardDirect, forwardDirect, forwardRequest } from '../proxy/policy-forward.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { LockgateError } from '../lib/errors.ts';

export const forwardRequestPolicy: PolicyFactory = (attrs, env) => {
  const failOnErrorStatusCode = attrs.failOnErrorStatusCode === true;
  const bufferRequestBody = attrs.bufferRequestBody === true;
  // API Management buffers by default; we buffer only when an outbound policy reads the body (set by the runner).
  const streamOnly = attrs.bufferResponse === false;
  // Inside retry (or another policy) the response must come back to the pipeline.
  const nested = env.entry.path.includes('.policies[');
  return {
    name: 'forward-request',
    path: env.entry.path,
    needsRequestBody: bufferRequestBody,
    run(pc) {
      // An AccessPolicy check not made yet (an access-check policy in a branch not taken) is made before the backend.
      enforceAccess(pc);
      const bits = pc.forward;
      if (bits === null) throw new LockgateError('internal', 'forward-request outside a request');
      if (!failOnErrorStatusCode && canForwardDirect(pc, nested)) return forwardDirect(pc, bits, bits.res as ServerResponse);
      return forwardRequest(pc, bits, { buffer: !streamOnly && pc.bufferResponse, failOnErrorStatusCode });
    },
  };
};

// The policy registry: every ApiPolicy policy name → its factory. The composition root hands this to the data plane.
import type { PolicyRegistry } from '../proxy/policy-pipeline.ts';
import { checkHeaderPolicy } from './check-header.ts';
import { choosePolicy } from './choose.ts';
import { corsPolicy } from './cors.ts';
import { forwardRequestPolicy } from './forward-request.ts';
import { ipFilterPolicy } from './ip-filter.ts';
import { retryPolicy } from './retry.ts';
import { returnResponsePolicy } from './return-response.ts';
import { rewriteUriPolicy } from './rewrite-uri.ts';
import { setBackendServicePolicy } from './set-backend-service.ts';
import { setBodyPolicy } from './set-body.ts';
import { setHeaderPolicy } from './set-header.ts';
import { setMethodPolicy } from './set-method.ts';
import { setQueryParameterPolicy } from './set-query-parameter.ts';
import { setStatusPolicy } from './set-status.ts';
import { setVariablePolicy } from './set-variable.ts';
import { validateJwtPolicy } from './validate-jwt.ts';
import { rateLimitByKeyPolicy } from './rate-limit-by-key.ts';
import { rateLimitPolicy } from './rate-limit.ts';
import { quotaByKeyPolicy } from './quota-by-key.ts';
import { quotaPolicy } from './quota.ts';
import { mockResponsePolicy } from './mock-response.ts';

export const POLICY_REGISTRY: PolicyRegistry = {
  'forward-request': forwardRequestPolicy,
  'set-header': setHeaderPolicy,
  'set-query-parameter': setQueryParameterPolicy,
  'rewrite-uri': rewriteUriPolicy,
  'set-method': setMethodPolicy,
  'set-status': setStatusPolicy,
  'set-variable': setVariablePolicy,
  'set-body': setBodyPolicy,
  'return-response': returnResponsePolicy,
  'check-header': checkHeaderPolicy,
  'ip-filter': ipFilterPolicy,
  cors: corsPolicy,
  choose: choosePolicy,
  retry: retryPolicy,
  'set-backend-service': setBackendServicePolicy,
  'validate-jwt': validateJwtPolicy,
  'rate-limit-by-key': rateLimitByKeyPolicy,
  'rate-limit': rateLimitPolicy,
  'quota-by-key': quotaByKeyPolicy,
  quota: quotaPolicy,
  'mock-response': mockResponsePolicy,
};

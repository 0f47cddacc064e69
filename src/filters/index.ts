// The policy registry: every ApiPolicy policy name → its factory. The composition root hands this to the data plane.
import type { PolicyRegistry } from '../proxy/policy-pipeline.ts';
import { validateContentPolicy } from './validate-content.ts';
import { validateHeadersPolicy } from './validate-headers.ts';
import { validateParametersPolicy } from './validate-parameters.ts';
import { validateStatusCodePolicy } from './validate-status-code.ts';
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
import { accessCheckPolicy } from './access-check.ts';
import { setQueryParameterPolicy } from './set-query-parameter.ts';
import { setStatusPolicy } from './set-status.ts';
import { setVariablePolicy } from './set-variable.ts';
import { validateJwtPolicy } from './validate-jwt.ts';
import { rateLimitByKeyPolicy } from './rate-limit-by-key.ts';
import { rateLimitPolicy } from './rate-limit.ts';
import { quotaByKeyPolicy } from './quota-by-key.ts';
import { quotaPolicy } from './quota.ts';
import { mockResponsePolicy } from './mock-response.ts';
import { cacheLookupPolicy } from './cache-lookup.ts';
import { cacheStorePolicy } from './cache-store.ts';
import { cacheLookupValuePolicy } from './cache-lookup-value.ts';
import { cacheStoreValuePolicy } from './cache-store-value.ts';
import { cacheRemoveValuePolicy } from './cache-remove-value.ts';
import { sendRequestPolicy } from './send-request.ts';
import { sendOneWayRequestPolicy } from './send-one-way-request.ts';
import { authenticationCertificatePolicy } from './authentication-certificate.ts';
import { validateClientCertificatePolicy } from './validate-client-certificate.ts';
import { findAndReplacePolicy } from './find-and-replace.ts';
import { jsonToXmlPolicy } from './json-to-xml.ts';
import { xmlToJsonPolicy } from './xml-to-json.ts';
import { limitConcurrencyPolicy } from './limit-concurrency.ts';
import { includeFragmentPolicy } from './include-fragment.ts';
import { logToPolicy } from './log-to.ts';
import { emitMetricPolicy } from './emit-metric.ts';
import { authenticationBasicPolicy } from './authentication-basic.ts';

export const POLICY_REGISTRY: PolicyRegistry = {
  'forward-request': forwardRequestPolicy,
  'set-header': setHeaderPolicy,
  'set-query-parameter': setQueryParameterPolicy,
  'rewrite-uri': rewriteUriPolicy,
  'set-method': setMethodPolicy,
  'access-check': accessCheckPolicy,
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
  'cache-lookup': cacheLookupPolicy,
  'cache-store': cacheStorePolicy,
  'cache-lookup-value': cacheLookupValuePolicy,
  'cache-store-value': cacheStoreValuePolicy,
  'cache-remove-value': cacheRemoveValuePolicy,
  'send-request': sendRequestPolicy,
  'send-one-way-request': sendOneWayRequestPolicy,
  'authentication-certificate': authenticationCertificatePolicy,
  'validate-client-certificate': validateClientCertificatePolicy,
  'validate-content': validateContentPolicy,
  'validate-parameters': validateParametersPolicy,
  'validate-headers': validateHeadersPolicy,
  'validate-status-code': validateStatusCodePolicy,
  'find-and-replace': findAndReplacePolicy,
  'json-to-xml': jsonToXmlPolicy,
  'xml-to-json': xmlToJsonPolicy,
  'limit-concurrency': limitConcurrencyPolicy,
  'include-fragment': includeFragmentPolicy,
  'log-to': logToPolicy,
  'emit-metric': emitMetricPolicy,
  'authentication-basic': authenticationBasicPolicy,
};

// The core policies: routing, transformation, control flow, access control, JWT, limits.
import { any, bool, dict, duration, int, list, obj, oneOf, size, str } from './field.ts';
import { ALL, existsAction, policyList, values, type PolicyDef } from './policy-def.ts';

export const CORE_POLICIES: Record<string, PolicyDef> = {
  base: { attrs: obj({}, 'Inserts the parent scope\'s same section here; without it the parent section is not inherited.'), sections: ALL },
  'forward-request': {
    attrs: obj(
      {
        timeout: duration('How long to wait for the backend\'s response headers.', { default: 300_000, min: 1 }),
        bufferRequestBody: bool('Read the whole request body first (needed to retry a request with a body).', false),
        bufferResponse: bool('Read the whole response body before outbound policies run. Lockgate buffers only when an outbound policy needs the body; false streams even then.', true),
        failOnErrorStatusCode: bool('A 400–599 response from the backend jumps to onError.', false),
      },
      'Sends the request to the backend.',
    ),
    sections: ['backend'],
  },
  'set-header': {
    attrs: obj(
      {
        name: str('Header name.', { required: true }),
        existsAction,
        value: str('The value (an expression when written @(…)).', { optional: true }),
        values: values('Header'),
      },
      'Adds, replaces or removes a request header (inbound, backend) or a response header (outbound, onError).',
    ),
    sections: ALL,
  },
  'set-query-parameter': {
    attrs: obj(
      {
        name: str('Query parameter name.', { required: true }),
        existsAction,
        value: str('The value (an expression when written @(…)).', { optional: true }),
        values: values('Parameter'),
      },
      'Adds, replaces or removes a query parameter of the backend request.',
    ),
    sections: ['inbound', 'backend'],
  },
  'rewrite-uri': {
    attrs: obj(
      {
        template: str('The backend path and query, relative to the backend URL; {name} inserts a parameter of the operation\'s URL template. An expression must be the whole value.', { required: true }),
        copyUnmatchedParams: bool('Append query parameters of the request that the template does not use.', true),
      },
      'Changes the path (and query) sent to the backend.',
    ),
    sections: ['inbound'],
  },
  'access-check': {
    attrs: obj({}, "Decides the route's gateway AccessPolicies here (by default they are checked right after inbound, and at the latest before the backend call)."),
    sections: ['inbound', 'backend'],
  },
  'set-method': {
    attrs: obj({ method: str('The HTTP method (an expression when written @(…)).', { required: true }) }, 'Changes the backend request\'s method.'),
    sections: ['inbound', 'onError'],
  },
  'set-status': {
    attrs: obj(
      {
        code: int('Status code.', { required: true, min: 100, max: 599 }),
        reason: str('Reason phrase.', { optional: true }),
      },
      'Sets the response status.',
    ),
    sections: ALL,
  },
  'set-variable': {
    attrs: obj(
      {
        name: str('Variable name, read as context.Variables["name"].', { required: true }),
        value: any('The value: a literal, or an expression written @(…).', { required: true }),
      },
      'Stores a value in context.Variables.',
    ),
    sections: ALL,
  },
  'set-body': {
    attrs: obj(
      {
        value: any('The new body: a string (an expression when written @(…)) or a JSON value whose strings may be @(…) expressions (a JSON template).', { required: true }),
      },
      'Replaces the request body (inbound, backend) or the response body (outbound, onError).',
    ),
    sections: ['inbound', 'backend', 'outbound', 'onError'],
  },
  'return-response': {
    attrs: obj(
      {
        responseVariableName: str('Start from the response stored in this variable (by send-request).', { optional: true }),
        status: int('Status code.', { min: 100, max: 599, optional: true, defaultText: '200' }),
        reason: str('Reason phrase.', { optional: true }),
        headers: dict(list(str('Value'), 'Values.'), 'Response headers: name → values (each an expression when written @(…)).', { default: {} }),
        body: any('Body: a string (an expression when written @(…)) or a JSON value.', { optional: true }),
      },
      'Ends the pipeline at once and answers with this response; outbound and onError do not run.',
    ),
    sections: ALL,
  },
  'mock-response': {
    attrs: obj(
      {
        statusCode: int('Status of the example to return.', { default: 200, min: 100, max: 599 }),
        contentType: str('Content type of the example; the first the operation defines when unset.', { optional: true }),
      },
      'Answers with the operation\'s example response (from the OpenAPI import) without calling the backend.',
    ),
    sections: ['inbound', 'outbound', 'onError'],
  },
  'check-header': {
    attrs: obj(
      {
        name: str('Header to check.', { required: true }),
        failedCheckHttpcode: int('Status when the check fails.', { required: true, min: 400, max: 599 }),
        failedCheckErrorMessage: str('Message in the error body when the check fails.', { required: true }),
        ignoreCase: bool('Compare values without regard to case.', false),
        values: list(str('An allowed value'), 'Allowed values (any one matches); none means the header only has to be present.', { default: [] }),
      },
      'Rejects requests without the header or with a value not in the list.',
    ),
    sections: ['inbound'],
  },
  'ip-filter': {
    attrs: obj(
      {
        action: oneOf(['allow', 'forbid'], 'Allow only the listed addresses, or forbid them.', { required: true }),
        addresses: list(str('An IP address or CIDR'), 'Addresses or CIDR blocks.', { default: [] }),
        addressRanges: list(obj({ from: str('First address.', { required: true }), to: str('Last address.', { required: true }) }, 'An inclusive range.'), 'Address ranges.', { default: [] }),
      },
      'Allows or forbids callers by IP address (the client address after trusted proxies).',
    ),
    sections: ['inbound'],
  },
  cors: {
    attrs: obj(
      {
        allowCredentials: bool('Send Access-Control-Allow-Credentials: true.', false),
        terminateUnmatchedRequest: bool('A cross-origin request from an origin (or a preflight for a method or header) that is not allowed gets an empty 200 instead of going on without CORS headers.', true),
        allowedOrigins: list(str('"*" or an origin: scheme://host[:port]'), 'Origins allowed to call.', { required: true, minItems: 1 }),
        allowedMethods: list(str('A method, or "*"'), 'Methods allowed cross-origin.', { default: ['GET', 'POST'] }),
        preflightResultMaxAge: int('Seconds a browser may cache a preflight answer (Access-Control-Max-Age).', { default: 0, min: 0 }),
        allowedHeaders: list(str('A header name, or "*"'), 'Request headers allowed cross-origin.', { required: true }),
        exposeHeaders: list(str('A header name'), 'Response headers scripts may read.', { default: [] }),
      },
      'Answers CORS preflights and adds CORS headers to responses.',
    ),
    sections: ['inbound'],
  },
  choose: {
    attrs: obj(
      {
        when: list(
          obj({ condition: str('A boolean expression.', { required: true }), policies: policyList }, 'A branch.'),
          'Branches; the first whose condition is true runs.',
          { required: true, minItems: 1 },
        ),
        otherwise: policyList,
      },
      'Runs the policies of the first branch whose condition holds, else `otherwise`.',
    ),
    sections: ALL,
    // Conditions are expressions by definition.
    expressions: ['when[].condition'],
    nested: ['when[].policies', 'otherwise'],
  },
  retry: {
    attrs: obj(
      {
        condition: str('Retry while this boolean expression holds.', { required: true }),
        count: int('Most retries.', { required: true, min: 1, max: 50 }),
        interval: duration('Wait between tries.', { required: true }),
        maxInterval: duration('Cap on the wait (exponential back-off with `delta`).', { optional: true }),
        delta: duration('Added to the wait per retry (linear; exponential with `maxInterval`).', { optional: true }),
        firstFastRetry: bool('The first retry happens at once.', false),
        policies: policyList,
      },
      'Runs its policies, then again while the condition holds.',
    ),
    sections: ALL,
    expressions: ['condition'],
    nested: ['policies'],
  },
  'validate-jwt': {
    attrs: obj(
      {
        headerName: str('Header holding the token.', { optional: true, defaultText: '"Authorization" when no query parameter or cookie is named' }),
        queryParameterName: str('Query parameter holding the token.', { optional: true }),
        cookieName: str('Cookie holding the token (Lockgate addition).', { optional: true }),
        requireScheme: str('Scheme the Authorization header must use.', { optional: true, defaultText: '"Bearer"' }),
        failedValidationHttpcode: int('Status when validation fails.', { default: 401, min: 400, max: 599 }),
        failedValidationErrorMessage: str('Message in the error body.', { optional: true, defaultText: '"Invalid JWT." ("JWT not present." when there is no token)' }),
        requireExpirationTime: bool('Tokens must carry exp.', true),
        requireSignedTokens: bool('Tokens must be signed (false is refused: unsigned tokens are never accepted).', true),
        clockSkew: duration('Tolerance for exp, nbf and iat.', { default: 0 }),
        maxTokenAge: duration('Reject tokens issued (iat) longer ago than this (Lockgate addition).', { optional: true }),
        openidConfig: list(str('An OpenID discovery URL'), 'OpenID Connect discovery documents whose JWKS sign tokens (cached, refreshed hourly, refetched for an unknown kid at most every 5 minutes).', { default: [] }),
        issuerSigningKeys: list(
          obj(
            {
              hmac: str('HMAC secret, base64 (at least as long as the hash: 32 bytes for HS256).', { optional: true }),
              jwk: str('A public JWK as JSON text.', { optional: true }),
              pem: str('A PEM public key or certificate.', { optional: true }),
              kid: str('Matched against the token\'s kid.', { optional: true }),
            },
            'One key.',
            { oneOf: ['hmac', 'jwk', 'pem'] },
          ),
          'Static keys.',
          { default: [] },
        ),
        audiences: list(str('An audience'), 'Accepted aud values (any one).', { default: [] }),
        issuers: list(str('An issuer'), 'Accepted iss values (any one).', { default: [] }),
        requiredClaims: list(
          obj(
            {
              name: str('Claim name.', { required: true }),
              match: oneOf(['all', 'any'], 'Every value must be present, or any one.', { default: 'all' }),
              separator: str('Splits a multi-valued claim such as "read,write".', { optional: true }),
              values: list(str('A value'), 'Required values; none means the claim only has to be present.', { default: [] }),
            },
            'A required claim.',
          ),
          'Claims the token must carry.',
          { default: [] },
        ),
        allowedAlgorithms: list(str('A JWS algorithm, e.g. ES256'), 'Accepted algorithms (Lockgate addition); "none" never is.', { optional: true, defaultText: 'every supported asymmetric and HMAC algorithm the key allows' }),
        tokenType: str('Required typ header, e.g. "at+jwt" (Lockgate addition, RFC 8725).', { optional: true }),
        outputTokenVariableName: str('Store the verified claims in this variable.', { optional: true }),
      },
      'Validates a JWT (signature, expiry, issuer, audience, claims); later policies read its claims as context.User.',
    ),
    sections: ['inbound'],
  },
  'rate-limit-by-key': {
    attrs: obj(
      {
        calls: int('Most calls per period per key value.', { required: true, min: 1 }),
        renewalPeriod: duration('The window: fixed, aligned to multiples of this length (UTC).', { required: true, min: 1000 }),
        counterKey: str('Expression for the key; calls with the same value share one counter, across Apis and worker threads.', { required: true }),
        incrementCondition: str('Count the call only when this expression holds, evaluated on the response (the check then applies from the next call).', { optional: true }),
        incrementCount: int('How much one call counts.', { default: 1, min: 0 }),
        algorithm: oneOf(['fixedWindow', 'gcra'], 'fixedWindow never admits more than `calls` per window; gcra (a token bucket, burst = calls) spreads them evenly.', { default: 'fixedWindow' }),
        retryAfterHeaderName: str('Header carrying the seconds to wait on a 429.', { default: 'Retry-After' }),
        retryAfterVariableName: str('Variable to store the seconds to wait in.', { optional: true }),
        remainingCallsHeaderName: str('Response header with the calls left in the window.', { optional: true }),
        remainingCallsVariableName: str('Variable to store the calls left in.', { optional: true }),
        totalCallsHeaderName: str('Response header with `calls`.', { optional: true }),
      },
      'Limits the call rate per key (for example per client IP or per subscription); over the limit: 429 with Retry-After.',
    ),
    sections: ['inbound'],
    expressions: ['counterKey', 'incrementCondition'],
  },
  'rate-limit': {
    attrs: obj(
      {
        calls: int('Most calls per period per subscription.', { required: true, min: 1 }),
        renewalPeriod: duration('The window (at most 300s, as in API Management).', { required: true, min: 1000 }),
        retryAfterHeaderName: str('Header carrying the seconds to wait on a 429.', { default: 'Retry-After' }),
        retryAfterVariableName: str('Variable to store the seconds to wait in.', { optional: true }),
        remainingCallsHeaderName: str('Response header with the calls left in the window.', { optional: true }),
        remainingCallsVariableName: str('Variable to store the calls left in.', { optional: true }),
        totalCallsHeaderName: str('Response header with `calls`.', { optional: true }),
      },
      'Limits the call rate per subscription; requests without a subscription key are not counted.',
    ),
    sections: ['inbound'],
  },
  'quota-by-key': {
    attrs: obj(
      {
        calls: int('Most calls per period per key value.', { optional: true, min: 1 }),
        bandwidth: size('Most request plus response bytes per period per key value (counted in KB).', { optional: true, min: 1024 }),
        renewalPeriod: duration('The period: at least 300s, or 0 for a quota that never renews.', { required: true, min: 0 }),
        counterKey: str('Expression for the key; the counter is shared by every Api using the same value.', { required: true }),
        incrementCondition: str('Count the call only when this expression holds, evaluated on the response.', { optional: true }),
        firstPeriodStart: str('Periods are aligned to this instant (ISO 8601).', { default: '0001-01-01T00:00:00Z' }),
      },
      'A volume quota per key; counters are flushed to the data directory every second and survive a restart. Over it: 403 with Retry-After.',
    ),
    sections: ['inbound'],
    expressions: ['counterKey', 'incrementCondition'],
  },
  quota: {
    attrs: obj(
      {
        calls: int('Most calls per period per subscription.', { optional: true, min: 1 }),
        bandwidth: size('Most request plus response bytes per period per subscription (counted in KB).', { optional: true, min: 1024 }),
        renewalPeriod: duration('The period; 0 for a quota that never renews.', { required: true, min: 0 }),
      },
      'A volume quota per subscription; requests without a subscription key are not counted.',
    ),
    sections: ['inbound'],
  },
  'set-backend-service': {
    attrs: obj(
      {
        baseUrl: str('Backend base URL, e.g. http://10.0.0.5:8080/api.', { optional: true }),
        backendId: str('A Backend resource ("name" or "namespace/name").', { optional: true }),
      },
      'Sends the request to another backend.',
      { oneOf: ['baseUrl', 'backendId'] },
    ),
    sections: ['inbound', 'backend'],
  },
};


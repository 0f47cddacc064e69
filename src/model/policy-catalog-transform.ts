// Body transformation (find-and-replace, json-to-xml, xml-to-json), limit-concurrency, fragments, logging and
// metrics, and authentication-basic.
import { any, bool, int, list, obj, oneOf, str } from './field.ts';
import { ALL, policyList, type PolicyDef } from './policy-def.ts';

/** Prometheus metric and label names (the exposition format's rules). */
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export const TRANSFORM_POLICIES: Record<string, PolicyDef> = {
  'find-and-replace': {
    attrs: obj(
      {
        from: str('The text to find (an expression when written @(…)); every occurrence is replaced, case-sensitively.', { required: true }),
        to: str('The replacement (an expression when written @(…)).', { required: true }),
      },
      'Replaces text in the request body (inbound, backend) or the response body (outbound, onError).',
    ),
    sections: ALL,
  },
  'json-to-xml': {
    attrs: obj(
      {
        apply: oneOf(['always', 'content-type-json'], 'Convert always, or only when the body\'s Content-Type is JSON.', { required: true }),
        considerAcceptHeader: bool('Convert only when the request\'s Accept header asks for XML; false converts regardless.', true),
        parseDate: bool('Normalise date strings (/Date(ms)/ → ISO 8601); false copies them as they are.', true),
        namespaceSeparator: str('What a ":" in a JSON property name becomes in the element name; ":" keeps prefixed names.', { default: '_', check: (v) => (v.length === 1 ? undefined : 'must be one character') }),
        namespacePrefix: str('Properties named this (usually "xmlns") or "xmlns:p" become namespace declarations on their element.', { optional: true }),
        attributeBlockName: str('The properties of an object member with this name become attributes of its element.', { optional: true }),
      },
      'Converts a JSON request body (inbound) or response body (outbound, onError) to XML.',
    ),
    sections: ['inbound', 'outbound', 'onError'],
  },
  'xml-to-json': {
    attrs: obj(
      {
        kind: oneOf(['javascript-friendly', 'direct'], 'direct keeps the document as it is (declaration, comments, prefixes, xmlns); javascript-friendly keeps elements and attributes by local name.', { required: true }),
        apply: oneOf(['always', 'content-type-xml'], 'Convert always, or only when the body\'s Content-Type is XML.', { required: true }),
        considerAcceptHeader: bool('Convert only when the request\'s Accept header asks for JSON; false converts regardless.', true),
        alwaysArrayChildElements: bool('Every child element becomes a JSON array, even a single one.', false),
      },
      'Converts an XML request body (inbound) or response body (outbound, onError) to JSON. DOCTYPEs are refused; depth and size are bounded.',
    ),
    sections: ['inbound', 'outbound', 'onError'],
  },
  'limit-concurrency': {
    attrs: obj(
      {
        key: str('The key (an expression when written @(…)); requests with the same value share one count.', { required: true }),
        maxCount: int('Most requests with one key value running the policies at once (per worker thread).', { required: true, min: 1 }),
        policies: policyList,
      },
      'Runs its policies for at most maxCount requests per key at once; over the limit the request fails at once with 429.',
    ),
    sections: ALL,
    nested: ['policies'],
  },
  'include-fragment': {
    attrs: obj(
      { fragmentId: str('A PolicyFragment ("name" or "namespace/name"): its policies run here.', { required: true }) },
      'Inserts the policies of a PolicyFragment at this point.',
    ),
    sections: ALL,
  },
  'log-to': {
    attrs: obj(
      {
        loggerId: str('Name of the log the event belongs to (written as "logger").', { default: 'default' }),
        value: any('The event: a string (an expression when written @(…)) or a JSON value whose strings may be @(…) expressions.', { required: true }),
      },
      'Writes a custom event to the access log as a JSON line with the request id (API Management\'s log-to-eventhub).',
    ),
    sections: ALL,
  },
  'emit-metric': {
    attrs: obj(
      {
        name: str('Metric name (Prometheus syntax); exported as a counter, with "_total" appended when missing.', {
          required: true,
          check: (v) => (!METRIC_NAME.test(v) ? 'must match [a-zA-Z_:][a-zA-Z0-9_:]*' : v.startsWith('lockgate_') ? 'the lockgate_ prefix is the gateway\'s own' : undefined),
        }),
        namespace: str('Put in front of the name as "namespace_name".', { optional: true, check: (v) => (METRIC_NAME.test(v) ? undefined : 'must match [a-zA-Z_:][a-zA-Z0-9_:]*') }),
        value: any('Added to the counter: a number ≥ 0, or an expression written @(…) giving one.', { default: 1 }),
        dimensions: list(
          obj(
            {
              name: str('Label name; without a value, one of apiId, operationId, productId, subscriptionId, userId, gatewayId.', {
                required: true,
                check: (v) => (LABEL_NAME.test(v) && !v.startsWith('__') ? undefined : 'must match [a-zA-Z_][a-zA-Z0-9_]* (and not start with "__")'),
              }),
              value: str('Label value (an expression when written @(…)).', { optional: true }),
            },
            'One dimension.',
          ),
          'Dimensions (labels), at most 10.',
          { required: true, minItems: 1 },
        ),
      },
      'Adds to a Prometheus counter on the gateway\'s /metrics, labelled with the dimensions (distinct label sets per metric are capped).',
    ),
    sections: ALL,
  },
  'authentication-basic': {
    attrs: obj(
      {
        username: str('User name (an expression when written @(…)); it cannot contain ":".', { required: true }),
        password: str('Password (an expression when written @(…)).', { required: true }),
      },
      'Sends the backend an Authorization: Basic header with these credentials (replacing any the client sent).',
    ),
    sections: ['inbound'],
  },
};

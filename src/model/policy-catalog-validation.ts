// The validation policies (API Management's content validation group): validate-content, validate-parameters,
// validate-headers and validate-status-code, checked against the operation's imported OpenAPI definition.
import { bool, int, list, obj, oneOf, size, str } from './field.ts';
import type { Check } from './field.ts';
import type { PolicyDef } from './policy-def.ts';

/** API Management's ceiling for validate-content's max-size. */
export const VALIDATE_CONTENT_MAX_SIZE = 102_400;

const ACTIONS = ['ignore', 'prevent', 'detect'];

/** An action: `ignore`, `prevent` or `detect`, or an expression giving one (checked when it runs). */
const actionCheck: Check = (v) => {
  if (ACTIONS.includes(v) || (v.startsWith('@(') && v.endsWith(')'))) return undefined;
  const near = ACTIONS.find((a) => a.toLowerCase() === v.toLowerCase());
  return `expected "ignore", "prevent" or "detect" (or an expression), got ${JSON.stringify(v)}${near ? ` (did you mean "${near}"?)` : ''}`;
};

const action = (description: string, o: { required?: boolean; optional?: boolean } = { required: true }) =>
  str(`${description} \`ignore\`, \`prevent\` or \`detect\` (an expression when written @(…)).`, { ...o, check: actionCheck, pattern: '^(ignore|prevent|detect|@\\(.*\\))$' });

const errorsVariableName = str('Variable (context.Variables) that receives the list of validation errors, each {Name, Type, ValidationRule, Details, Action}.', { optional: true });

const overrides = (one: string, withUnspecified: boolean) =>
  list(
    obj(
      {
        name: str(`${one[0].toUpperCase()}${one.slice(1)} name${one === 'header' ? ' (case-insensitive)' : ''}.`, { required: true }),
        action: action('What to do for it:'),
      },
      `An override for one ${one}.`,
    ),
    withUnspecified
      ? `Actions for named ${one}s: instead of specifiedParameterAction for a declared one, of unspecifiedParameterAction for an undeclared one.`
      : `Actions for named ${one}s, instead of specifiedParameterAction.`,
    { default: [] },
  );

const parameterGroup = (what: string, one: string, withUnspecified: boolean) =>
  obj(
    {
      specifiedParameterAction: action(`For ${what} the definition declares (overrides the policy's):`, { optional: true }),
      ...(withUnspecified ? { unspecifiedParameterAction: action(`For ${what} the definition does not declare (overrides the policy's):`, { optional: true }) } : {}),
      parameters: overrides(one, withUnspecified),
    },
    `Settings for ${what}.`,
    { optional: true },
  );

export const VALIDATION_POLICIES: Record<string, PolicyDef> = {
  'validate-content': {
    attrs: obj(
      {
        unspecifiedContentTypeAction: action('For a body whose content type the operation does not declare:'),
        maxSize: size(`Largest body, checked against Content-Length (or the bytes read when there is none; the decompressed length for a compressed body). At most ${VALIDATE_CONTENT_MAX_SIZE} bytes, as in API Management.`, { required: true, min: 0 }),
        sizeExceededAction: action('For a body larger than maxSize:'),
        errorsVariableName,
        contentTypeMap: obj(
          {
            anyContentTypeValue: str('Validate every body as this content type, whatever it says.', { optional: true }),
            missingContentTypeValue: str('Validate a body without a Content-Type as this content type.', { optional: true }),
            types: list(
              obj(
                {
                  from: str('An incoming content type (media type, case-insensitive).', { optional: true }),
                  when: str('A condition: map when this expression holds.', { optional: true }),
                  to: str('The content type to validate as.', { required: true }),
                },
                'One mapping.',
                { oneOf: ['from', 'when'] },
              ),
              'Mappings, tried in order; the first match wins over anyContentTypeValue and missingContentTypeValue.',
              { default: [] },
            ),
          },
          'Maps the incoming content type to the one used to pick the schema.',
          { optional: true },
        ),
        content: list(
          obj(
            {
              type: str('Content type to validate (after contentTypeMap); absent: every content type the operation declares.', { optional: true }),
              validateAs: oneOf(['json', 'xml', 'soap'], 'Validation engine (Lockgate validates JSON only).', { default: 'json' }),
              action: action('For a body that does not match its schema:'),
              allowAdditionalProperties: bool('Override the schema\'s additionalProperties: true allows properties it does not list, false forbids them.'),
            },
            'Which bodies to validate against the operation\'s schema, and what to do when one does not match.',
          ),
          'Content types whose bodies are validated; a declared content type with no entry here is not validated.',
          { default: [] },
        ),
      },
      'Validates the size and content of the request body (inbound) or response body (outbound, onError) against the operation\'s imported schema.',
    ),
    sections: ['inbound', 'outbound', 'onError'],
    expressions: ['contentTypeMap.types[].when'],
  },
  'validate-parameters': {
    attrs: obj(
      {
        specifiedParameterAction: action('For parameters the operation declares (path, query, header):'),
        unspecifiedParameterAction: action('For query parameters and headers the operation does not declare:'),
        errorsVariableName,
        headers: parameterGroup('headers', 'header', true),
        query: parameterGroup('query parameters', 'query parameter', true),
        path: parameterGroup('path parameters', 'path parameter', false),
      },
      'Validates the request\'s path, query and header parameters against the operation\'s imported definition.',
    ),
    sections: ['inbound'],
  },
  'validate-headers': {
    attrs: obj(
      {
        specifiedHeaderAction: action('For response headers the operation declares for this status:'),
        unspecifiedHeaderAction: action('For response headers it does not declare:'),
        errorsVariableName,
        headers: list(
          obj({ name: str('Header name.', { required: true }), action: action('What to do for it:') }, 'An override for one header.'),
          'Per-header actions, instead of specifiedHeaderAction or unspecifiedHeaderAction.',
          { default: [] },
        ),
      },
      'Validates the response headers against the operation\'s imported definition of the response.',
    ),
    sections: ['outbound', 'onError'],
  },
  'validate-status-code': {
    attrs: obj(
      {
        unspecifiedStatusCodeAction: action('For a response status the operation does not declare:'),
        errorsVariableName,
        statusCodes: list(
          obj({ code: int('Status code.', { required: true, min: 100, max: 599 }), action: action('What to do for it when the operation does not declare it:') }, 'An override for one status.'),
          'Per-status actions for undeclared statuses (a declared status is always allowed).',
          { default: [] },
        ),
      },
      'Checks that the response status is one the operation declares.',
    ),
    sections: ['outbound', 'onError'],
  },
};

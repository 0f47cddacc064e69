// The ApiVersionSet kind's fields: how the versions of one API are told apart (API Management's version sets).
import { obj, oneOf, str } from './field.ts';
import { checkHeaderName } from './value-checks.ts';

export const apiVersionSetFields = obj(
  {
    displayName: str('Human-readable name.', { optional: true }),
    scheme: oneOf(['path', 'header', 'query'], 'Where a request names its version: a path segment after the Api path (/orders/v2/…), a header, or a query parameter.', { required: true }),
    headerName: str('The header for scheme header.', { default: 'Api-Version', check: checkHeaderName }),
    queryName: str('The query parameter for scheme query.', { default: 'api-version' }),
    defaultVersion: str('The version a request that names none goes to; unset: such a request gets 404.', { optional: true }),
  },
  'A version set: Apis that are versions of one API (each Api names the set and its version).',
);

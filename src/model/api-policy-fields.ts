// The ApiPolicy kind's fields: a scope and API Management's four sections, each a list of policies.
import { bool, obj, str } from './field.ts';
import { policyList } from './policy-catalog.ts';

const section = (what: string) => ({ ...policyList, description: what, optional: true });

export const apiPolicyFields = obj(
  {
    scope: obj(
      {
        global: bool('Every Api of the gateway.'),
        product: str('A Product ("name" or "namespace/name"): requests that came in through it.', { optional: true }),
        api: str('An Api ("name" or "namespace/name").', { optional: true }),
        operation: str('An operation of `api` (its name).', { optional: true }),
      },
      'Where the policy attaches: global, product, api, or api + operation. The effective policy of a request merges global → product → api → operation wherever a section holds `base`.',
      { required: true },
    ),
    inbound: section('Runs on the request before it is forwarded.'),
    backend: section('Forwards the request (forward-request); the built-in global backend section is `forward-request`.'),
    outbound: section('Runs on the response before it is returned.'),
    onError: section('Runs when a policy or the backend call fails; context.LastError says what happened.'),
  },
  'An API Management policy document: inbound, backend, outbound and onError policies attached at one scope.',
);

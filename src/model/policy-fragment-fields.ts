// The PolicyFragment kind's fields: API Management's policy fragment, a named list of policies (no sections, no base).
import { obj, str } from './field.ts';
import { policyList } from './policy-catalog.ts';

export const policyFragmentFields = obj(
  {
    description: str('What the fragment does.', { optional: true }),
    policies: { ...policyList, description: 'The policies include-fragment inserts, in order. No `base`, and no include-fragment (fragments do not nest).', required: true },
  },
  'A reusable list of policies that ApiPolicies insert with include-fragment; each policy must be allowed in the section it is included in.',
);

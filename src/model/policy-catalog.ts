// Every ApiPolicy policy Lockgate implements: the catalog files of each group, merged. Adding a group is adding an import.
import { obj } from './field.ts';
import type { ObjField } from './field.ts';
import { setPolicyEntry, type PolicyDef } from './policy-def.ts';
import { CORE_POLICIES } from './policy-catalog-core.ts';
import { CACHE_POLICIES } from './policy-catalog-cache.ts';
import { INTEGRATION_POLICIES } from './policy-catalog-integration.ts';
import { VALIDATION_POLICIES } from './policy-catalog-validation.ts';
import { TRANSFORM_POLICIES } from './policy-catalog-transform.ts';

export type { PolicyDef } from './policy-def.ts';
export { policyList } from './policy-def.ts';

export const POLICIES: Record<string, PolicyDef> = { ...CORE_POLICIES, ...CACHE_POLICIES, ...INTEGRATION_POLICIES, ...VALIDATION_POLICIES, ...TRANSFORM_POLICIES };

/** One policy in a list: a mapping with exactly one key, the policy's name. */
export const policyEntry: ObjField = obj(
  Object.fromEntries(Object.entries(POLICIES).map(([name, d]) => [name, { ...d.attrs, optional: true }])),
  'One policy: a mapping with one key, the policy name, whose value holds its attributes.',
  { oneOf: Object.keys(POLICIES) },
);

setPolicyEntry(() => policyEntry);

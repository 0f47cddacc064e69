// The shape of one policy's definition, shared by the catalog files (one per group of policies).
import { list, oneOf, ref, str } from './field.ts';
import type { Field, ObjField } from './field.ts';
import type { PolicySection } from './types.ts';

export interface PolicyDef {
  attrs: ObjField;
  /** Sections the policy may appear in (API Management's rule for each policy). */
  sections: readonly PolicySection[];
  /** Attributes that are always an expression (`@(…)` optional); other string attributes are one only when written `@(…)`. */
  expressions?: readonly string[];
  /** Attributes holding nested policy lists (walked for placement and expressions). */
  nested?: readonly string[];
}

export const ALL: readonly PolicySection[] = ['inbound', 'backend', 'outbound', 'onError'];

let entryField: (() => Field) | null = null;

/** Set once by policy-catalog.ts: a policy list item (a one-key mapping naming any policy). */
export function setPolicyEntry(f: () => Field): void {
  entryField = f;
}

/** A policy list: used by ApiPolicy sections and by policies that contain policies (resolved lazily: it contains itself). */
export const policyList: Field = ref('policyList', 'Policies, run in order.', () => list(entryField!(), 'Policies, run in order.'));

export const values = (what: string) => list(str(`${what} value (an expression when written @(…))`), `${what} values.`, { optional: true });
export const existsAction = oneOf(['override', 'skip', 'append', 'delete'], 'What to do when it already exists.', { default: 'override' });

// `kind: RoleBinding`: who may do what through the admin API and CLI. People signed in with an IdentityProvider get a
// role (viewer, operator, approver, admin) by group or by user, over namespaces and optionally only some APIs or
// services of them, so several teams share one installation.
import { report, type DocContext } from './doc-context.ts';
import { list, obj, oneOf, str } from './field.ts';
import type { Check } from './field.ts';
import { checkServiceRef } from './mesh-checks.ts';
import type { RoleBindingSpec } from './types.ts';
import { checkBackendRef, checkName, checkNotEmpty } from './value-checks.ts';

export const ADMIN_ROLES = ['viewer', 'operator', 'approver', 'admin'] as const;

const checkNamespace: Check = (v) => (v === '*' ? undefined : checkName(v));

export const roleBindingFields = obj(
  {
    role: oneOf(ADMIN_ROLES, 'viewer reads config, nodes and access requests; operator also applies and deletes config and makes join tokens; approver also reviews and revokes access requests; admin may do everything, including managing roles and admin tokens (over all namespaces: secrets, keys, the CA, backups, the audit log).', { required: true }),
    provider: str('The IdentityProvider whose users this binds ("name" or "namespace/name"); a token from another provider never matches.', { required: true, check: checkBackendRef }),
    groups: list(str('Group', { check: checkNotEmpty }), "Members of any of these groups (the provider's groups claim) get the role.", { default: [] }),
    users: list(str('User', { check: checkNotEmpty }), 'These users (by email or by sub) get the role.', { default: [] }),
    namespaces: list(str('Namespace, or "*" for all', { check: checkNamespace }), 'Where the role applies; "*" is every namespace and the installation-wide resources.', { required: true, minItems: 1 }),
    apis: list(str('Api ("name" or "namespace/name")', { check: checkBackendRef }), 'Only these Apis (and the policies, products and access policies that concern only them) of those namespaces; with services, either.', { default: [] }),
    services: list(str('MeshService ("name" or "namespace/name")', { check: checkServiceRef }), 'Only these MeshServices (and their routes and access policies) of those namespaces; with apis, either.', { default: [] }),
  },
  'A role for the people of an IdentityProvider group (or named users) over namespaces, optionally narrowed to APIs or services.',
);

/** A problem with a role's scope: where (`namespaces`, `apis[2]`, …) and what. */
export interface ScopeProblem {
  at: string;
  message: string;
}

/**
 * The rules a role's scope follows wherever it is written (a RoleBinding, an admin token): "*" stands alone, a
 * qualified API or service sits in one of the namespaces, and with "*" every name is qualified.
 */
export function roleScopeProblems(scope: { namespaces?: readonly unknown[]; apis?: readonly unknown[]; services?: readonly unknown[] }): ScopeProblem[] {
  const out: ScopeProblem[] = [];
  const namespaces = scope.namespaces ?? [];
  const all = namespaces.includes('*');
  if (all && namespaces.length > 1) out.push({ at: 'namespaces', message: '"*" already means every namespace; list it alone' });
  for (const field of ['apis', 'services'] as const) {
    (scope[field] ?? []).forEach((ref, i) => {
      if (typeof ref !== 'string') return;
      if (!ref.includes('/')) {
        if (all) out.push({ at: `${field}[${i}]`, message: 'with namespaces ["*"], name each API or service as "namespace/name"' });
        return;
      }
      const ns = ref.split('/')[0];
      if (!all && !namespaces.includes(ns)) out.push({ at: `${field}[${i}]`, message: `namespace "${ns}" is not one of the namespaces` });
    });
  }
  return out;
}

/** Checks across fields: someone is bound, and the scope follows roleScopeProblems. */
export function finishRoleBinding(spec: RoleBindingSpec, cx: DocContext): void {
  if ((spec.groups?.length ?? 0) === 0 && (spec.users?.length ?? 0) === 0) report(cx, 'spec', 'bind at least one group or user');
  for (const p of roleScopeProblems(spec)) report(cx, `spec.${p.at}`, p.message);
}

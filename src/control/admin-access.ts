// Who may do what at the admin API: roles (viewer, operator, approver, admin) over namespaces, optionally narrowed to
// APIs or services. A caller's access is the union of its role grants: from RoleBindings for a person signed in with an
// IdentityProvider, from the token record for an automation token; the bootstrap token and the operator certificate
// hold everything.
import type { Config, RoleBindingSpec } from '../model/types.ts';
import { qualifyProviderRef } from '../model/identity-refs.ts';

export type AdminRole = RoleBindingSpec['role'];

/**
 * - read: config, nodes, access requests (and, over all namespaces: the audit log, secret metadata, the CA);
 * - write: apply and delete config, make join tokens (over all namespaces: set and delete secrets);
 * - review: approve, deny and revoke access requests for targets in scope;
 * - reveal: read a secret's value (admin over all namespaces only);
 * - manage: RoleBindings and admin tokens within scope (over all namespaces: keys, the CA, backups, the master key).
 */
export type AdminAction = 'read' | 'write' | 'review' | 'reveal' | 'manage';

const ACTIONS: Readonly<Record<AdminRole, readonly AdminAction[]>> = {
  viewer: ['read'],
  approver: ['read', 'review'],
  operator: ['read', 'write'],
  admin: ['read', 'write', 'review', 'reveal', 'manage'],
};

/** What a role may do (for whoami and docs). */
export function actionsOf(role: AdminRole): readonly AdminAction[] {
  return ACTIONS[role];
}

/** One role over a scope, and where it comes from (a RoleBinding, a token). */
export interface RoleGrant {
  role: AdminRole;
  /** Namespaces, or ['*'] for all (and the installation-wide resources). */
  namespaces: readonly string[];
  /** When either is non-empty, only resources that concern only these ("namespace/name", or "name" in any bound namespace). */
  apis?: readonly string[];
  services?: readonly string[];
  source: string;
}

/**
 * What a request touches: a namespace and the APIs and services the resource concerns ("namespace/name"); or the
 * whole installation ('cluster': secrets, keys, the CA, backups, the audit log).
 */
export type AdminTarget = 'cluster' | { namespace: string; apis?: readonly string[]; services?: readonly string[] };

function narrowed(g: RoleGrant): boolean {
  return (g.apis?.length ?? 0) > 0 || (g.services?.length ?? 0) > 0;
}

function listed(refs: readonly string[] | undefined, ref: string, namespaces: readonly string[]): boolean {
  if (refs === undefined) return false;
  const [ns, name] = ref.split('/');
  return refs.some((r) => (r.includes('/') ? r === ref : r === name && (namespaces.includes('*') || namespaces.includes(ns))));
}

function covers(g: RoleGrant, action: AdminAction, t: AdminTarget): boolean {
  if (!ACTIONS[g.role].includes(action)) return false;
  const all = g.namespaces.includes('*');
  if (t === 'cluster') return all && !narrowed(g);
  if (!all && !g.namespaces.includes(t.namespace)) return false;
  if (!narrowed(g)) return true;
  const apis = t.apis ?? [];
  const services = t.services ?? [];
  // A narrowed role reaches a resource only when the resource concerns something and all of it is in the role's lists.
  if (apis.length + services.length === 0) return false;
  return apis.every((a) => listed(g.apis, a, g.namespaces)) && services.every((s) => listed(g.services, s, g.namespaces));
}

function describeTarget(t: AdminTarget): string {
  if (t === 'cluster') return 'the whole installation';
  const what = [...(t.apis ?? []).map((a) => `api ${a}`), ...(t.services ?? []).map((s) => `service ${s}`)];
  return `namespace ${t.namespace}${what.length > 0 ? ` (${what.join(', ')})` : ''}`;
}

export class AdminAccess {
  readonly grants: readonly RoleGrant[];
  /** The bootstrap token, the operator certificate: every action everywhere. */
  readonly full: boolean;

  private constructor(grants: readonly RoleGrant[], full: boolean) {
    this.grants = grants;
    this.full = full;
  }

  static everything(source: string): AdminAccess {
    return new AdminAccess([{ role: 'admin', namespaces: ['*'], source }], true);
  }

  static of(grants: readonly RoleGrant[]): AdminAccess {
    return new AdminAccess(grants, false);
  }

  allows(action: AdminAction, target: AdminTarget): boolean {
    return this.full || this.grants.some((g) => covers(g, action, target));
  }

  /** Whether some grant lets the caller `action` something in `namespace` (a list there is then not a blanket 403). */
  reaches(action: AdminAction, namespace: string): boolean {
    return this.full || this.grants.some((g) => ACTIONS[g.role].includes(action) && (g.namespaces.includes('*') || g.namespaces.includes(namespace)));
  }

  /** The grant that allows it (the first), for the audit trail. */
  grantFor(action: AdminAction, target: AdminTarget): RoleGrant | undefined {
    return this.grants.find((g) => covers(g, action, target)) ?? (this.full ? this.grants[0] : undefined);
  }

  /** Whether the caller may do `action` somewhere (e.g. to list what it may see). */
  anywhere(action: AdminAction): boolean {
    return this.full || this.grants.some((g) => ACTIONS[g.role].includes(action));
  }

  /** A sentence for a 403: what was needed, and what the caller has. */
  denial(subject: string, action: AdminAction, target: AdminTarget): string {
    const need = `${action} on ${describeTarget(target)}`;
    if (this.grants.length === 0) return `${subject} has no role (RoleBindings give people roles); ${need} was refused`;
    const has = this.grants.map((g) => `${g.role} in ${g.namespaces.join(',')}${narrowed(g) ? ` for ${[...(g.apis ?? []), ...(g.services ?? [])].join(',')}` : ''}`);
    return `${subject} may not ${need}: roles held: ${has.join('; ')}`;
  }

  /**
   * Whether every grant of `other` is within what this caller may manage: a team admin hands out roles (tokens,
   * RoleBindings) inside its own scope only.
   */
  mayGrant(other: readonly RoleGrant[]): boolean {
    // A grant over no namespace grants nothing anyone could check: refused rather than vacuously allowed.
    if (other.some((o) => o.namespaces.length === 0)) return false;
    if (this.full) return true;
    return other.every((o) => {
      // Over "*" even a narrowed role reaches documents of every namespace (an AccessPolicy elsewhere naming the
      // service): only an admin of the whole installation grants it.
      if (o.namespaces.includes('*')) return this.allows('manage', 'cluster');
      if (!narrowed(o)) return o.namespaces.every((ns) => this.allows('manage', { namespace: ns }));
      // What the narrowed role reaches: documents of each of its namespaces concerning its APIs and services (a bare
      // name in any of its namespaces). The granter must manage all of that, with one of its grants.
      const all = (refs: readonly string[] | undefined): string[] => (refs ?? []).flatMap((r) => (r.includes('/') ? [r] : o.namespaces.map((n) => `${n}/${r}`)));
      const apis = all(o.apis);
      const services = all(o.services);
      return o.namespaces.every((ns) => this.allows('manage', { namespace: ns, apis, services }));
    });
  }
}

/** The person RoleBindings are matched against. */
export interface BoundPerson {
  sub: string;
  email?: string;
  groups: readonly string[];
  /** The IdentityProviders ("namespace/name") that validated the person's token. */
  providers: readonly string[];
}

/** The role grants a config's RoleBindings give a person. */
export function roleGrantsOf(config: Config | undefined, person: BoundPerson): RoleGrant[] {
  const out: RoleGrant[] = [];
  for (const b of config?.roleBindings ?? []) {
    const s = b.spec;
    if (!person.providers.includes(qualifyProviderRef(s.provider, b.metadata.namespace))) continue;
    const byUser = s.users.some((u) => u === person.sub || (person.email !== undefined && u.toLowerCase() === person.email.toLowerCase()));
    const byGroup = s.groups.some((g) => person.groups.includes(g));
    if (!byUser && !byGroup) continue;
    out.push({ role: s.role, namespaces: s.namespaces, ...(s.apis.length > 0 ? { apis: s.apis } : {}), ...(s.services.length > 0 ? { services: s.services } : {}), source: `RoleBinding ${b.metadata.namespace}/${b.metadata.name}` });
  }
  return out;
}

const qualify = (ref: unknown, ns: string): string | undefined => (typeof ref !== 'string' || ref === '' ? undefined : ref.includes('/') ? ref : `${ns}/${ref}`);

/**
 * The target a config document is: its namespace and the APIs and services it concerns (an Api itself; a policy or
 * product by the Api it names; a MeshService itself; a route or AccessPolicy by its service or api). Read from the
 * raw document, so an invalid one is still placed.
 */
export function documentTarget(kind: string, namespace: string, name: string, raw: unknown): { namespace: string; apis: string[]; services: string[] } {
  const spec = (typeof raw === 'object' && raw !== null ? (raw as { spec?: unknown }).spec : undefined) as Record<string, unknown> | undefined;
  const apis: string[] = [];
  const services: string[] = [];
  const add = (to: string[], ref: unknown): void => {
    const q = qualify(ref, namespace);
    if (q !== undefined && !to.includes(q)) to.push(q);
  };
  switch (kind) {
    case 'Api':
      apis.push(`${namespace}/${name}`);
      break;
    case 'MeshService':
      services.push(`${namespace}/${name}`);
      break;
    case 'ApiPolicy': {
      const scope = spec?.scope as Record<string, unknown> | undefined;
      add(apis, scope?.api);
      break;
    }
    case 'Product':
      if (Array.isArray(spec?.apis)) for (const a of spec.apis) add(apis, a);
      break;
    case 'MeshRoute':
      add(services, spec?.service);
      break;
    case 'AccessPolicy': {
      const t = spec?.target as Record<string, unknown> | undefined;
      add(apis, t?.api);
      add(services, t?.service);
      break;
    }
    default:
  }
  return { namespace, apis, services };
}

// Who is calling and how people sign in, and automation tokens:
//   GET    /v1/auth/providers      (no auth) the IdentityProviders `lockgate login` can use (their CLI client)
//   GET    /v1/auth/whoami         the caller: subject, how it authenticated, its roles
//   POST   /v1/admin-tokens        an automation token with a role over a scope (within the caller's own admin scope)
//   GET    /v1/admin-tokens        the tokens the caller could have made
//   DELETE /v1/admin-tokens/{id}   revoke one
import { parseDuration } from '../lib/duration.ts';
import { checkServiceRef } from '../model/mesh-checks.ts';
import { ADMIN_ROLES, roleScopeProblems } from '../model/role-binding-fields.ts';
import { checkBackendRef, checkName } from '../model/value-checks.ts';
import type { AuditSink } from '../store/audit-record.ts';
import type { ConfigStore } from '../store/config-store.ts';
import { actionsOf, type AdminRole, type RoleGrant } from './admin-access.ts';
import { auditRecorder, callerActor, reasonOf } from './audit-api.ts';
import { ADMIN_TOKEN_PREFIX, adminTokenSubject, grantOfRecord, newAdminToken, type AdminTokenRecord } from './bootstrap-token.ts';
import { ControlError, readJsonObject, sendJson } from './control-server.ts';
import type { Caller, ControlRoute, RouteContext } from './control-routes.ts';
import type { LoginProvider } from './people-auth.ts';

export interface AdminAuthApiDeps {
  store: ConfigStore;
  loginProviders: () => Promise<LoginProvider[]>;
  now?: () => number;
  audit?: AuditSink;
  log?: (event: string, fields: Record<string, unknown>) => void;
}

/** Automation tokens live at most a year (a CI system rotates them; none lives forever). */
const MAX_TTL_MS = 366 * 86_400_000;
const DEFAULT_TTL_MS = 90 * 86_400_000;

function viewOfRecord(id: string, r: AdminTokenRecord): Record<string, unknown> {
  const g = grantOfRecord(id, r);
  return {
    id, role: g.role, namespaces: g.namespaces, ...(g.apis ? { apis: g.apis } : {}), ...(g.services ? { services: g.services } : {}),
    ...(r.description !== undefined ? { description: r.description } : {}), createdAt: r.createdAt,
    ...(r.createdBy !== undefined ? { createdBy: r.createdBy } : {}), ...(r.expiresAt !== undefined ? { expiresAt: r.expiresAt } : {}),
    bootstrap: r.role === undefined,
  };
}

function names(v: unknown, field: string, check: (s: string) => string | undefined): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new ControlError('bad_request', `${field} must be a list of strings`);
  for (const x of v as string[]) {
    const problem = check(x);
    if (problem !== undefined) throw new ControlError('bad_request', `${field}: ${JSON.stringify(x)}: ${problem}`);
  }
  return [...new Set(v as string[])];
}

/** The access the caller holds, described for whoami. */
function rolesOf(caller: Extract<Caller, { kind: 'admin' }>): Array<Record<string, unknown>> {
  return caller.access.grants.map((g) => ({ role: g.role, namespaces: g.namespaces, ...(g.apis ? { apis: g.apis } : {}), ...(g.services ? { services: g.services } : {}), actions: actionsOf(g.role), source: g.source }));
}

export function adminAuthApiRoutes(deps: AdminAuthApiDeps): ControlRoute[] {
  const now = deps.now ?? Date.now;
  const record = auditRecorder(deps.audit, deps.log);
  const admin = (cx: RouteContext): Extract<Caller, { kind: 'admin' }> => {
    if (cx.caller.kind !== 'admin') throw new ControlError('forbidden', 'this route is for administrators');
    return cx.caller;
  };
  const stored = async (cx: RouteContext): Promise<Array<{ id: string; record: AdminTokenRecord }>> => {
    const { kvs } = await deps.store.range(ADMIN_TOKEN_PREFIX, { signal: cx.signal });
    const out: Array<{ id: string; record: AdminTokenRecord }> = [];
    for (const kv of kvs) {
      try {
        out.push({ id: kv.key.slice(ADMIN_TOKEN_PREFIX.length), record: JSON.parse(kv.value) as AdminTokenRecord });
      } catch {
        // A record that does not parse verifies nothing; it is not listed either.
      }
    }
    return out;
  };
  return [
    {
      method: 'GET', path: '/v1/auth/providers', auth: 'none',
      handle: async (_req, res) => sendJson(res, 200, { providers: await deps.loginProviders() }),
    },
    {
      method: 'GET', path: '/v1/auth/whoami', auth: 'admin',
      handle: async (_req, res, cx) => {
        const c = admin(cx);
        const person = c.person === undefined ? undefined : { sub: c.person.sub, ...(c.person.email ? { email: c.person.email } : {}), groups: c.person.groups, issuer: c.person.issuer, providers: c.person.providers ?? [] };
        sendJson(res, 200, { subject: c.subject, via: c.via, ...(person ? { person } : {}), full: c.access.full, roles: rolesOf(c) });
      },
    },
    {
      method: 'POST', path: '/v1/admin-tokens', auth: 'admin',
      handle: async (req, res, cx) => {
        const c = admin(cx);
        const b = await readJsonObject(req, cx.signal);
        if (typeof b.role !== 'string' || !(ADMIN_ROLES as readonly string[]).includes(b.role)) throw new ControlError('bad_request', `role must be one of ${ADMIN_ROLES.join(', ')}`);
        const namespaces = names(b.namespaces, 'namespaces', (v) => (v === '*' ? undefined : checkName(v)));
        if (namespaces.length === 0) throw new ControlError('bad_request', 'namespaces must name at least one namespace (or "*")');
        const apis = names(b.apis, 'apis', checkBackendRef);
        const services = names(b.services, 'services', checkServiceRef);
        const scopeProblem = roleScopeProblems({ namespaces, apis, services })[0];
        if (scopeProblem !== undefined) throw new ControlError('bad_request', `${scopeProblem.at}: ${scopeProblem.message}`);
        let ttlMs = DEFAULT_TTL_MS;
        if (b.ttl !== undefined) {
          const t = typeof b.ttl === 'string' || typeof b.ttl === 'number' ? parseDuration(b.ttl) : undefined;
          if (t === undefined || t <= 0 || t > MAX_TTL_MS) throw new ControlError('bad_request', 'ttl must be a duration from 1s to 366d, e.g. "90d"');
          ttlMs = t;
        }
        if (b.description !== undefined && (typeof b.description !== 'string' || b.description.length > 200)) throw new ControlError('bad_request', 'description must be a string of at most 200 characters');
        const grant: RoleGrant = { role: b.role as AdminRole, namespaces, ...(apis.length ? { apis } : {}), ...(services.length ? { services } : {}), source: 'new token' };
        if (!c.access.mayGrant([grant])) {
          throw new ControlError('forbidden', `${c.subject} may not hand out ${grant.role} in ${namespaces.join(',')}: making a token needs the admin role over everything the token covers`);
        }
        const t = now();
        // A token made by a token lives no longer than its maker.
        let expiresAt = t + ttlMs;
        const maker = /^admin-token:([0-9a-f]{16})$/.exec(c.subject);
        if (maker !== null) {
          const kv = await deps.store.get(ADMIN_TOKEN_PREFIX + maker[1], { signal: cx.signal });
          const parentEnd = kv === undefined ? Number.NaN : Date.parse((JSON.parse(kv.value) as AdminTokenRecord).expiresAt ?? '');
          if (Number.isFinite(parentEnd)) expiresAt = Math.min(expiresAt, parentEnd);
        }
        const description = typeof b.description === 'string' && b.description !== '' ? b.description : 'automation';
        const made = newAdminToken(new Date(t), description);
        const rec: AdminTokenRecord = {
          ...made.record, role: grant.role, namespaces, ...(apis.length ? { apis } : {}), ...(services.length ? { services } : {}),
          expiresAt: new Date(expiresAt).toISOString(), createdBy: c.subject,
        };
        const w = await deps.store.put(ADMIN_TOKEN_PREFIX + made.id, JSON.stringify(rec), { ifModRevision: 0, signal: cx.signal });
        if (!w.ok) throw new ControlError('conflict', 'a token with the same id appeared concurrently; retry');
        await record({
          actor: callerActor(c), action: 'admin-token.create', target: adminTokenSubject(made.id), reason: reasonOf(req), requestId: cx.requestId,
          details: { role: grant.role, namespaces: namespaces.join(','), apis: apis.join(','), services: services.join(','), expiresAt: rec.expiresAt!, description },
        });
        deps.log?.('admin_token_created', { id: made.id, role: grant.role, namespaces, by: c.subject, requestId: cx.requestId });
        sendJson(res, 201, { ...viewOfRecord(made.id, rec), token: made.token }, { 'cache-control': 'no-store' });
      },
    },
    {
      method: 'GET', path: '/v1/admin-tokens', auth: 'admin',
      handle: async (_req, res, cx) => {
        const c = admin(cx);
        const tokens = (await stored(cx)).filter((t) => c.access.mayGrant([grantOfRecord(t.id, t.record)])).map((t) => viewOfRecord(t.id, t.record));
        sendJson(res, 200, { tokens });
      },
    },
    {
      method: 'DELETE', path: '/v1/admin-tokens/{id}', auth: 'admin',
      handle: async (req, res, cx) => {
        const c = admin(cx);
        const id = cx.params.id;
        if (!/^[0-9a-f]{16}$/.test(id)) throw new ControlError('not_found', `no admin token ${id}`);
        const kv = await deps.store.get(ADMIN_TOKEN_PREFIX + id, { signal: cx.signal });
        if (kv === undefined) throw new ControlError('not_found', `no admin token ${id}`);
        let rec: AdminTokenRecord;
        try {
          rec = JSON.parse(kv.value) as AdminTokenRecord;
        } catch {
          rec = { hash: '', createdAt: '' };
        }
        if (!c.access.mayGrant([grantOfRecord(id, rec)])) throw new ControlError('forbidden', `${c.subject} may not revoke a token wider than its own admin scope`);
        const w = await deps.store.delete(ADMIN_TOKEN_PREFIX + id, { ifModRevision: kv.modRevision, signal: cx.signal });
        if (!w.ok) throw new ControlError('conflict', 'the token changed while being revoked; retry');
        await record({ actor: callerActor(c), action: 'admin-token.revoke', target: adminTokenSubject(id), reason: reasonOf(req), requestId: cx.requestId, details: { role: rec.role ?? 'admin', bootstrap: rec.role === undefined } });
        deps.log?.('admin_token_revoked', { id, by: c.subject, requestId: cx.requestId });
        sendJson(res, 200, { id, revoked: true });
      },
    },
  ];
}

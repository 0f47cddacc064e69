// The just-in-time access API: people (IdentityProvider bearer tokens) request and review; administrators list and revoke.
//   POST /v1/access/requests                 request (a person)
//   GET  /v1/access/requests[?state=]        a person sees their own and those they may review; an admin sees all
//   GET  /v1/access/requests/{id}
//   POST /v1/access/requests/{id}/approve    a reviewer (never the requester)
//   POST /v1/access/requests/{id}/deny
//   POST /v1/access/requests/{id}/revoke     the requester, a reviewer, or an admin
import { parseDuration } from '../lib/duration.ts';
import { parseConfigText } from '../model/load-config.ts';
import type { NodeIdentity } from '../model/snapshot.ts';
import type { AccessRequestSettings, Config } from '../model/types.ts';
import type { ConfigStore } from '../store/config-store.ts';
import { AccessRequestError, type AccessRequests, type AccessRequestRecord, type AccessRequestState, type AccessTarget, type Person, type SettingsLookup } from './access-requests.ts';
import { CONFIG_PREFIX } from './config-documents.ts';
import { ControlError, readJsonObject, sendJson } from './control-server.ts';
import type { ControlRequest, ControlRoute, RouteContext } from './control-routes.ts';
import { AdminAccess, type AdminTarget } from './admin-access.ts';
import { PeopleAuth } from './people-auth.ts';
import type { GrantSource } from './snapshot-compiler.ts';

const STATES: readonly AccessRequestState[] = ['pending', 'approved', 'denied', 'expired', 'revoked'];

/** The stored config, parsed once per store revision (requests and reviews are rare). */
export function storedConfig(store: ConfigStore): () => Promise<Config | undefined> {
  let at = -1;
  let cached: Config | undefined;
  return async () => {
    const rev = await store.revision();
    if (rev !== at) {
      const { kvs } = await store.range(CONFIG_PREFIX);
      cached = kvs.length === 0 ? undefined : parseConfigText(kvs.map((kv) => kv.value).join('\n---\n'), 'store').config;
      at = rev;
    }
    return cached;
  };
}

/** The review settings for a target: the AccessPolicy of that target with `requests` (the first by name when several). */
export function settingsFromConfig(config: () => Promise<Config | undefined>): SettingsLookup {
  return async (t: AccessTarget) => {
    const c = await config();
    if (c === undefined) return { error: 'the stored config does not validate or is empty: no AccessPolicy says who reviews requests' };
    const what = t.service !== undefined ? `service ${t.service}` : `api ${t.api}`;
    const found: Array<{ policy: string; settings: AccessRequestSettings }> = [];
    for (const p of c.accessPolicies ?? []) {
      const s = p.spec.requests;
      if (s === undefined) continue;
      const ns = p.metadata.namespace;
      const q = (x: string): string => (x.includes('/') ? x : `${ns}/${x}`);
      const tt = p.spec.target;
      const hit = t.service !== undefined ? tt.service !== undefined && q(tt.service) === t.service
        : tt.api !== undefined && q(tt.api) === t.api && (tt.operation === undefined || tt.operation === t.operation);
      if (hit) found.push({ policy: `${ns}/${p.metadata.name}`, settings: s });
    }
    if (found.length === 0) return { error: `no AccessPolicy for ${what} accepts access requests (add spec.requests with approvers to one)` };
    found.sort((a, b) => (a.policy < b.policy ? -1 : 1));
    return found[0];
  };
}

/** Grants as AccessGrant documents for the nodes that enforce them: a sidecar of the service, or the gateways (Apis). */
export function grantSource(requests: AccessRequests): GrantSource {
  return {
    get revision() {
      return requests.revision;
    },
    docsFor(identity: NodeIdentity): string {
      const self = `${identity.namespace}/${identity.service}`;
      const docs: string[] = [];
      for (const g of requests.grants()) {
        const mine = identity.kind === 'sidecar' ? g.spec.target.service === self : g.spec.target.api !== undefined;
        if (!mine) continue;
        docs.push(`${JSON.stringify({ apiVersion: 'lockgate.dev/v1alpha1', kind: 'AccessGrant', metadata: { name: g.id, namespace: g.namespace }, spec: g.spec })}\n`);
      }
      return docs.join('---\n');
    },
  };
}

/** An admin token or certificate, or a person (signed in with an IdentityProvider; the roles RoleBindings give them). */
type Who = { kind: 'admin'; subject: string; access: AdminAccess } | { kind: 'person'; person: Person; access: AdminAccess };

/** What a request is about, as the admin API's access checks see it. */
function targetOf(t: AccessTarget): AdminTarget {
  const ref = t.service ?? t.api ?? '';
  const namespace = ref.split('/')[0];
  return t.service !== undefined ? { namespace, services: [ref] } : { namespace, apis: [ref] };
}

function bearer(req: ControlRequest): string | undefined {
  const h = req.headers.authorization;
  const m = typeof h === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(h) : null;
  return m?.[1];
}

async function who(req: ControlRequest, cx: RouteContext, people: PeopleAuth): Promise<Who> {
  if (cx.caller.kind === 'admin') {
    const c = cx.caller;
    return c.person !== undefined ? { kind: 'person', person: c.person, access: c.access } : { kind: 'admin', subject: c.subject, access: c.access };
  }
  const token = bearer(req);
  if (token === undefined) throw new ControlError('unauthorized', 'authentication required: a bearer token from an IdentityProvider (or an admin token)', { headers: { 'www-authenticate': 'Bearer' } });
  if (token.startsWith('lgadm.')) throw new ControlError('unauthorized', 'the admin token is not valid (unknown, revoked or expired)', { headers: { 'www-authenticate': 'Bearer error="invalid_token"' } });
  if (!PeopleAuth.looksLikeJwt(token)) throw new ControlError('unauthorized', 'the bearer token is not valid', { headers: { 'www-authenticate': 'Bearer error="invalid_token"' } });
  const r = await people.authenticate(token);
  if (!r.ok) throw new ControlError('unauthorized', `the token is not valid: ${r.error}`, { headers: { 'www-authenticate': 'Bearer error="invalid_token"' } });
  return { kind: 'person', person: r.person, access: AdminAccess.of(r.roles) };
}

function personOnly(w: Who, what: string): Person {
  if (w.kind !== 'person') throw new ControlError('forbidden', `${what} is done by a person (an IdentityProvider token), not with the admin token`);
  return w.person;
}

const str = (v: unknown, name: string): string | undefined => {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ControlError('bad_request', `${name} must be a string`);
  return v;
};
const strList = (v: unknown, name: string): string[] | undefined => {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new ControlError('bad_request', `${name} must be a list of strings`);
  return v as string[];
};

function toControl(err: unknown): never {
  if (err instanceof AccessRequestError) throw new ControlError(err.code, err.message);
  throw err;
}

/** What a caller may see of a request (everything: it holds no secret). */
function view(r: AccessRequestRecord, now: number): Record<string, unknown> {
  const active = r.state === 'approved' && r.endsAt !== undefined && Date.parse(r.endsAt) > now;
  return { ...r, active, approvals: r.reviews.filter((v) => v.decision === 'approve').length };
}

export interface AccessApiDeps {
  requests: AccessRequests;
  people: PeopleAuth;
  now?: () => number;
}

export function accessApiRoutes(deps: AccessApiDeps): ControlRoute[] {
  const { requests, people } = deps;
  const now = deps.now ?? Date.now;
  const load = (id: string): AccessRequestRecord => {
    const r = requests.get(id);
    if (r === undefined) throw new ControlError('not_found', `no access request ${id}`);
    return r;
  };
  const visibleTo = (w: Who) => (r: AccessRequestRecord): boolean =>
    w.access.allows('read', targetOf(r.target)) || (w.kind === 'person' && (r.requester.sub === w.person.sub || requests.reviewerGroups(r, w.person).as.length > 0));
  /** The role that lets this person review the request's target, described for the audit trail. */
  const reviewRole = (w: Who, r: AccessRequestRecord): string | undefined => {
    const g = w.access.grantFor('review', targetOf(r.target));
    return g === undefined ? undefined : `${g.role} (${g.source})`;
  };
  return [
    {
      method: 'POST', path: '/v1/access/requests', auth: 'none',
      handle: async (req, res, cx) => {
        const p = personOnly(await who(req, cx, people), 'requesting access');
        const b = await readJsonObject(req, cx.signal);
        const t = (b.target ?? {}) as Record<string, unknown>;
        const service = str(t.service, 'target.service');
        const api = str(t.api, 'target.api');
        const q = (x: string | undefined): string | undefined => (x === undefined ? undefined : x.includes('/') ? x : `default/${x}`);
        const target: AccessTarget = { ...(service !== undefined ? { service: q(service) } : {}), ...(api !== undefined ? { api: q(api) } : {}), ...(t.operation !== undefined ? { operation: str(t.operation, 'target.operation') } : {}) };
        const d = b.duration;
        const durationMs = d === undefined ? undefined : parseDuration(d as string | number);
        if (d !== undefined && durationMs === undefined) throw new ControlError('bad_request', 'duration must be a duration such as "30m" or "2h"');
        const r = await requests.create(p, { target, methods: strList(b.methods, 'methods'), paths: strList(b.paths, 'paths'), reason: str(b.reason, 'reason'), durationMs }, cx.requestId).catch(toControl);
        sendJson(res, 201, view(r, now()));
      },
    },
    {
      method: 'GET', path: '/v1/access/requests', auth: 'none',
      handle: async (req, res, cx) => {
        const w = await who(req, cx, people);
        const state = cx.query.get('state') ?? undefined;
        if (state !== undefined && !STATES.includes(state as AccessRequestState)) throw new ControlError('bad_request', `state must be one of ${STATES.join(', ')}`);
        const list = requests.list({ state: state as AccessRequestState | undefined, visible: visibleTo(w) });
        sendJson(res, 200, { requests: list.map((r) => view(r, now())) });
      },
    },
    {
      method: 'GET', path: '/v1/access/requests/{id}', auth: 'none',
      handle: async (req, res, cx) => {
        const w = await who(req, cx, people);
        const r = load(cx.params.id);
        if (!visibleTo(w)(r)) throw new ControlError('not_found', `no access request ${cx.params.id}`);
        sendJson(res, 200, view(r, now()));
      },
    },
    ...(['approve', 'deny'] as const).map((action): ControlRoute => ({
      method: 'POST', path: `/v1/access/requests/{id}/${action}`, auth: 'none',
      handle: async (req, res, cx) => {
        const w = await who(req, cx, people);
        const p = personOnly(w, `${action === 'approve' ? 'approving' : 'denying'} a request`);
        const b = await readJsonObject(req, cx.signal);
        const role = reviewRole(w, load(cx.params.id));
        const r = await requests[action](cx.params.id, p, str(b.comment, 'comment'), cx.requestId, role).catch(toControl);
        sendJson(res, 200, view(r, now()));
      },
    })),
    {
      method: 'POST', path: '/v1/access/requests/{id}/revoke', auth: 'none',
      handle: async (req, res, cx) => {
        const w = await who(req, cx, people);
        const b = await readJsonObject(req, cx.signal);
        const mayReview = w.access.allows('review', targetOf(load(cx.params.id).target));
        const actor = w.kind === 'admin' ? { sub: w.subject, admin: mayReview } : { sub: w.person.email ?? w.person.sub, person: w.person, admin: mayReview };
        const r = await requests.revoke(cx.params.id, actor, str(b.reason, 'reason') ?? '', cx.requestId).catch(toControl);
        sendJson(res, 200, view(r, now()));
      },
    },
  ];
}

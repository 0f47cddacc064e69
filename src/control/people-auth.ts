// People at the control plane: a bearer token from one of the config's IdentityProviders (the same validation the
// gateway does: discovery, JWKS, allowed algorithms, exp required, audience), read as a Person (sub, email, groups).
import { parseConfigText } from '../model/load-config.ts';
import { OidcClient, type OidcClientDeps } from '../proxy/oidc-client.ts';
import type { Config, IdentityProviderSpec } from '../model/types.ts';
import type { ConfigStore } from '../store/config-store.ts';
import type { Person } from './access-requests.ts';
import { AdminAccess, roleGrantsOf, type RoleGrant } from './admin-access.ts';
import type { AdminTokenVerifier } from './control-server.ts';
import { CONFIG_PREFIX } from './config-documents.ts';

export type PersonResult = { ok: true; person: Person; roles: RoleGrant[] } | { ok: false; error: string };

/** Someone who may use the CLI's device login: the provider's public CLI client. */
export interface LoginProvider {
  name: string;
  issuer: string;
  clientId: string;
  scopes: string[];
}

/**
 * At the control plane a provider also accepts ID tokens issued to its CLI client (`lockgate login`), next to the
 * bearer audiences the gateway accepts.
 */
function controlPlaneSpec(spec: IdentityProviderSpec): IdentityProviderSpec {
  if (spec.cliClientId === undefined) return spec;
  const audience = spec.audience.length > 0 ? spec.audience : [spec.clientId];
  return { ...spec, audience: [...new Set([...audience, spec.cliClientId])] };
}

/** The issuer of a JWT, read without verifying (only to pick the provider that then verifies it). */
function issuerOf(token: string): string | undefined {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[1].length > 16_384) return undefined;
  try {
    const iss = (JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as { iss?: unknown }).iss;
    return typeof iss === 'string' ? iss : undefined;
  } catch {
    return undefined;
  }
}

export class PeopleAuth {
  readonly #store: ConfigStore;
  readonly #deps: OidcClientDeps;
  #revision = -1;
  #config: Config | undefined;
  /** Providers by issuer ("namespace/name" and client), several when namespaces each configure the same issuer. */
  #byIssuer = new Map<string, Array<{ key: string; client: OidcClient }>>();
  readonly #clients = new Map<string, OidcClient>();

  constructor(store: ConfigStore, deps: OidcClientDeps = {}) {
    this.#store = store;
    this.#deps = deps;
  }

  /** Whether a token looks like a JWT (people) rather than an admin token (opaque). */
  static looksLikeJwt(token: string): boolean {
    return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
  }

  async authenticate(token: string): Promise<PersonResult> {
    await this.#refresh();
    const iss = issuerOf(token);
    if (iss === undefined) return { ok: false, error: 'the token is not a JWT with an issuer' };
    const candidates = this.#byIssuer.get(iss);
    if (candidates === undefined) return { ok: false, error: `no IdentityProvider has issuer ${iss}` };
    // Every provider with this issuer checks the token (their audiences may differ); the person is who the first
    // accepting one maps, and RoleBindings match on any provider that accepted it.
    let person: Person | undefined;
    const providers: string[] = [];
    let error = '';
    for (const { key, client } of candidates) {
      const r = await client.bearer.validate(token);
      if (!r.ok) {
        error ||= `${client.name}: ${r.detail || r.message}`;
        continue;
      }
      providers.push(key);
      if (person !== undefined) continue;
      const claims = client.mapClaims(r.claims);
      const sub = claims.sub;
      if (typeof sub !== 'string' || sub === '') return { ok: false, error: 'the token has no sub' };
      const g = claims.groups;
      const groups = Array.isArray(g) ? g.filter((x): x is string => typeof x === 'string') : typeof g === 'string' ? [g] : [];
      const exp = r.claims.exp;
      person = { sub, ...(typeof claims.email === 'string' ? { email: claims.email } : {}), groups, issuer: iss, ...(typeof exp === 'number' ? { tokenExpiresAt: exp * 1000 } : {}) };
    }
    if (person === undefined) return { ok: false, error };
    person.providers = providers;
    return { ok: true, person, roles: roleGrantsOf(this.#config, { ...person, providers }) };
  }

  /** The providers `lockgate login` can use: those with a CLI client. */
  async loginProviders(): Promise<LoginProvider[]> {
    await this.#refresh();
    const out: LoginProvider[] = [];
    for (const [key, r] of this.#config?.identityProviders ?? []) {
      const s = r.spec;
      if (s.cliClientId === undefined) continue;
      out.push({ name: key, issuer: s.issuer, clientId: s.cliClientId, scopes: [...new Set([...s.scopes, 'offline_access'])] });
    }
    return out;
  }

  /** Rebuilds the provider table when the stored config changed (clients kept while their spec is the same). */
  /** One rebuild at a time: a slow one finishing after a newer one must not bring back the older config. */
  #refresh(): Promise<void> {
    const run = this.#refreshing.then(() => this.#rebuild());
    this.#refreshing = run.catch(() => {});
    return run;
  }

  #refreshing: Promise<void> = Promise.resolve();

  async #rebuild(): Promise<void> {
    const revision = await this.#store.revision();
    if (revision === this.#revision) return;
    const { kvs } = await this.#store.range(CONFIG_PREFIX);
    this.#revision = revision;
    const { config } = parseConfigText(kvs.map((kv) => kv.value).join('\n---\n'), 'store');
    // A stored config that does not validate keeps the providers and bindings of the last one that did.
    if (config === undefined && kvs.length > 0) return;
    this.#config = config;
    const next = new Map<string, Array<{ key: string; client: OidcClient }>>();
    const used = new Set<string>();
    for (const [name, r] of config?.identityProviders ?? []) {
      const spec = controlPlaneSpec(r.spec);
      const key = `${name} ${JSON.stringify(spec)}`;
      let c = this.#clients.get(key);
      if (c === undefined) {
        try {
          c = new OidcClient(name, spec, this.#deps);
        } catch {
          continue;
        }
        this.#clients.set(key, c);
      }
      const list = next.get(r.spec.issuer) ?? [];
      list.push({ key: name, client: c });
      next.set(r.spec.issuer, list);
      used.add(key);
    }
    for (const [key, c] of this.#clients) {
      if (used.has(key)) continue;
      c.close();
      this.#clients.delete(key);
    }
    this.#byIssuer = next;
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}

/**
 * The admin API's bearer tokens: Lockgate admin tokens (`lgadm.…`: the bootstrap token, automation tokens) and people's
 * IdentityProvider tokens (a JWT; roles from RoleBindings, possibly none: such a person may still request access).
 */
export function adminAndPeopleVerifier(tokens: AdminTokenVerifier, people: PeopleAuth): AdminTokenVerifier {
  return async (token, signal) => {
    // `lgadm.<id>.<secret>` has a JWT's shape too: Lockgate's own tokens are told apart by their prefix.
    if (token.startsWith('lgadm.') || !PeopleAuth.looksLikeJwt(token)) return tokens(token, signal);
    const r = await people.authenticate(token);
    if (!r.ok) return { error: r.error };
    return { subject: r.person.email ?? r.person.sub, access: AdminAccess.of(r.roles), via: 'person', person: r.person, ...(r.person.tokenExpiresAt !== undefined ? { expiresAt: r.person.tokenExpiresAt } : {}) };
  };
}

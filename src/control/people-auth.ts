// People at the control plane: a bearer token from one of the config's IdentityProviders (the same validation the
// gateway does: discovery, JWKS, allowed algorithms, exp required, audience), read as a Person (sub, email, groups).
import { parseConfigText } from '../model/load-config.ts';
import { OidcClient, type OidcClientDeps } from '../proxy/oidc-client.ts';
import type { ConfigStore } from '../store/config-store.ts';
import type { Person } from './access-requests.ts';
import { CONFIG_PREFIX } from './config-documents.ts';

export type PersonResult = { ok: true; person: Person } | { ok: false; error: string };

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
  #byIssuer = new Map<string, OidcClient>();
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
    const client = this.#byIssuer.get(iss);
    if (client === undefined) return { ok: false, error: `no IdentityProvider has issuer ${iss}` };
    const r = await client.bearer.validate(token);
    if (!r.ok) return { ok: false, error: `${client.name}: ${r.detail || r.message}` };
    const claims = client.mapClaims(r.claims);
    const sub = claims.sub;
    if (typeof sub !== 'string' || sub === '') return { ok: false, error: 'the token has no sub' };
    const g = claims.groups;
    const groups = Array.isArray(g) ? g.filter((x): x is string => typeof x === 'string') : typeof g === 'string' ? [g] : [];
    return { ok: true, person: { sub, ...(typeof claims.email === 'string' ? { email: claims.email } : {}), groups, issuer: iss } };
  }

  /** Rebuilds the provider table when the stored config changed (clients kept while their spec is the same). */
  async #refresh(): Promise<void> {
    const revision = await this.#store.revision();
    if (revision === this.#revision) return;
    const { kvs } = await this.#store.range(CONFIG_PREFIX);
    this.#revision = revision;
    const { config } = parseConfigText(kvs.map((kv) => kv.value).join('\n---\n'), 'store');
    const next = new Map<string, OidcClient>();
    for (const [name, r] of config?.identityProviders ?? []) {
      const key = `${name} ${JSON.stringify(r.spec)}`;
      let c = this.#clients.get(key);
      if (c === undefined) {
        try {
          c = new OidcClient(name, r.spec, this.#deps);
        } catch {
          continue;
        }
        this.#clients.set(key, c);
      }
      next.set(r.spec.issuer, c);
    }
    this.#byIssuer = next;
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }
}

// Per config version: one OidcClient per IdentityProvider (kept across versions while its spec is unchanged) and each route's RouteAuth.
import type { ApiAuthentication, ApiResource, Config, Operation } from '../model/types.ts';
import { qualifyProviderRef } from '../model/identity-refs.ts';
import type { IdentityRuntime } from './login-endpoints.ts';
import { OidcClient, type OidcClientDeps } from './oidc-client.ts';
import type { RouteAuth } from './route-auth.ts';
import { MemorySessionStore, type SessionStore } from './session-store.ts';

/** What the composition root may put in PolicyServices for identity (all optional). */
export interface IdentityServices {
  /** The session store every worker shares; default one in-memory store per process. */
  sessions?: SessionStore;
  /** Clients kept across config versions, by name and spec. */
  oidcClients?: Map<string, OidcClient>;
  oidcDeps?: OidcClientDeps;
}

let fallbackStore: MemorySessionStore | undefined;

export interface BuiltIdentity {
  identity: IdentityRuntime | null;
  /** The RouteAuth for an operation of an Api (the operation's own block, else the Api's); null: no authentication. */
  routeAuth(api: ApiResource, op: Operation): RouteAuth | null;
  problems: string[];
}

export function buildIdentity(config: Config, services: IdentityServices): BuiltIdentity {
  const providers = config.identityProviders;
  if (providers === undefined || providers.size === 0) return { identity: null, routeAuth: () => null, problems: [] };
  const cache = services.oidcClients ?? new Map<string, OidcClient>();
  const clients = new Map<string, OidcClient>();
  const problems: string[] = [];
  for (const [name, r] of providers) {
    const key = `${name} ${JSON.stringify(r.spec)} ${r.spec.clientSecretEnv !== undefined ? process.env[r.spec.clientSecretEnv] ?? '' : ''}`;
    let c = cache.get(key);
    if (c === undefined) {
      try {
        c = new OidcClient(name, r.spec, services.oidcDeps);
        cache.set(key, c);
      } catch (err) {
        problems.push(`IdentityProvider ${name}: ${(err as Error).message}`);
        continue;
      }
    }
    clients.set(name, c);
  }
  const sessions = services.sessions ?? (fallbackStore ??= new MemorySessionStore());
  const memo = new Map<ApiAuthentication, RouteAuth>();
  const routeAuth = (api: ApiResource, op: Operation): RouteAuth | null => {
    const a = op.authentication ?? api.spec.authentication;
    if (a === undefined) return null;
    let ra = memo.get(a);
    if (ra === undefined) {
      const list = a.providers.map((p) => clients.get(qualifyProviderRef(p, api.metadata.namespace))).filter((c): c is OidcClient => c !== undefined);
      const login = a.login && list[0]?.canLogin === true ? list[0] : null;
      ra = { providers: list, byIssuer: new Map(list.map((c) => [c.spec.issuer, c])), login, required: a.required, sessions };
      memo.set(a, ra);
    }
    return ra;
  };
  return { identity: { clients, sessions }, routeAuth, problems };
}

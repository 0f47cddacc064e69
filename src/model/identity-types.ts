// The decoded shapes of an IdentityProvider and of an Api's (or operation's) `authentication` block.

export interface IdentityProviderSpec {
  issuer: string;
  discovery?: string;
  clientId: string;
  /** A `{{named-value}}` reference stays as written here; the secrets layer resolves it. */
  clientSecret?: string;
  clientSecretFile?: string;
  clientSecretEnv?: string;
  /** The public client `lockgate login` uses (device flow); its ID tokens are accepted at the admin API. */
  cliClientId?: string;
  scopes: string[];
  audience: string[];
  allowedAlgorithms: string[];
  claims: { groups: string };
  /** ms */
  clockSkew: number;
  redirectUrl?: string;
  postLogoutRedirectUrl?: string;
  /** ms each */
  session: { refreshBefore: number; maxAge: number; idleTimeout: number };
}

export interface ApiAuthentication {
  /** IdentityProviders as written ("name" in the Api's namespace or "namespace/name"; see qualifyProviderRef). */
  providers: string[];
  login: boolean;
  required: boolean;
}

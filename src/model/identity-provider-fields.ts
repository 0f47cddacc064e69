// The IdentityProvider kind's fields (an OpenID Connect issuer) and an Api's `authentication` block that names providers.
import { bool, duration, list, obj, str } from './field.ts';
import { checkBackendRef, checkNotEmpty } from './value-checks.ts';

/** Asymmetric algorithms only by default: a third-party issuer never shares an HMAC secret with us (as Pomerium). */
export const DEFAULT_PROVIDER_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

function checkHttpUrl(v: string): string | undefined {
  try {
    const u = new URL(v);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return `${JSON.stringify(v)} is not an http(s) URL`;
    if (u.hash !== '' || u.search !== '') return `${JSON.stringify(v)} must not have a query or fragment`;
    return undefined;
  } catch {
    return `${JSON.stringify(v)} is not a URL`;
  }
}

function checkEnvName(v: string): string | undefined {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(v) ? undefined : `${JSON.stringify(v)} is not an environment variable name`;
}

export const identityProviderFields = obj(
  {
    issuer: str('The issuer URL exactly as the provider writes it in `iss` and in its discovery document; bearer tokens are matched to their provider by it.', {
      required: true,
      check: checkHttpUrl,
    }),
    discovery: str('The discovery document, when not at `<issuer>/.well-known/openid-configuration`.', { optional: true, check: checkHttpUrl }),
    clientId: str('The client id registered at the provider (the ID token audience).', { required: true, check: checkNotEmpty }),
    clientSecret: str('The client secret, usually a `{{named-value}}` reference; needed for browser login. Set at most one of clientSecret, clientSecretFile, clientSecretEnv.', { optional: true }),
    clientSecretFile: str('A file holding the client secret (trailing newline ignored), read each time a config version is built.', { optional: true, check: checkNotEmpty }),
    clientSecretEnv: str('An environment variable holding the client secret, read by the gateway when it builds the config.', { optional: true, check: checkEnvName }),
    cliClientId: str('A public client (no secret) registered at the provider for `lockgate login` (the device-code flow); the control plane accepts ID tokens issued to it at the admin API, where RoleBindings give people their roles.', {
      optional: true,
      check: checkNotEmpty,
    }),
    scopes: list(str('Scope', { check: checkNotEmpty }), 'Scopes asked for at login; `openid` is required, add `offline_access` for refresh tokens where the provider needs it.', {
      default: ['openid', 'email', 'profile'],
      minItems: 1,
    }),
    audience: list(str('Audience', { check: checkNotEmpty }), 'Audiences a bearer token must name (one is enough); empty: the clientId, so only tokens issued for this client pass.', { default: [] }),
    allowedAlgorithms: list(str('JWS algorithm', { check: checkNotEmpty }), 'Signature algorithms accepted from this issuer: asymmetric only (`none` never, and HMAC needs a shared secret no JWKS publishes).', {
      default: DEFAULT_PROVIDER_ALGORITHMS,
      minItems: 1,
    }),
    claims: obj(
      {
        groups: str('The claim that holds the user\'s groups; its value becomes `groups` for AccessPolicies.', { default: 'groups', check: checkNotEmpty }),
      },
      'Where the end user\'s attributes are found in the provider\'s tokens.',
    ),
    clockSkew: duration('Leeway for exp, nbf and iat (at most 60s).', { default: 0 }),
    redirectUrl: str('The callback URL registered at the provider; default: the request\'s scheme and host + `/.lockgate/callback`.', { optional: true, check: checkHttpUrl }),
    postLogoutRedirectUrl: str('Where the provider sends the browser after logout (must be registered there as a post-logout redirect URI).', { optional: true, check: checkHttpUrl }),
    session: obj(
      {
        refreshBefore: duration('Refresh tokens this long before the access or ID token expires (at most half their lifetime).', { default: 60_000, min: 1 }),
        maxAge: duration('A session ends this long after login, whatever refreshes happen.', { default: 12 * 3_600_000, min: 1000 }),
        idleTimeout: duration('A session unused this long ends.', { default: 3_600_000, min: 1000 }),
      },
      'Browser sessions created by this provider\'s logins.',
    ),
  },
  'An OpenID Connect issuer: discovery, signing keys, the client the gateway logs users in with.',
);

export const authenticationFields = obj(
  {
    providers: list(str('IdentityProvider ("name" or "namespace/name")', { check: checkBackendRef }), 'IdentityProviders whose tokens this Api accepts; a bearer token goes to the one whose issuer matches its `iss`.', {
      required: true,
      minItems: 1,
    }),
    login: bool('Browsers without a token or session are sent to sign in (authorization-code flow with PKCE) and get a session cookie; the first provider is used.', false),
    required: bool('Requests without a valid token or session get 401 (or the login redirect). false: anonymous requests pass with no end user, a bad token is still refused.', true),
  },
  'Who the end user is: bearer tokens from these providers, and with login a browser session.',
  { optional: true },
);

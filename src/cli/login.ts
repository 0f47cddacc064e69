// `lockgate login|logout|whoami`: a person signs in to a control plane with the device flow; the sign-in is stored.
import { parseArgs } from 'node:util';
import { ADMIN_CLIENT_OPTIONS, ADMIN_CLIENT_USAGE, AdminClientError, adminRequest, describeError, resolveTarget, type AdminTarget } from './admin-client.ts';
import { loadCredential, removeCredential, saveCredential, type Credential } from './credentials.ts';
import { deviceLogin, type DeviceAuthorization } from './device-flow.ts';
import type { Verb } from './verb.ts';

const DEFAULT_SCOPES = ['openid', 'email', 'profile', 'groups', 'offline_access'];

interface ProviderInfo {
  name: string;
  issuer: string;
  clientId: string;
  scopes?: string[];
}

interface RoleView {
  role: string;
  namespaces: string[];
  apis?: string[];
  services?: string[];
  source?: string;
}

interface WhoAmI {
  subject: string;
  via: string;
  person?: { sub?: string; email?: string; groups?: string[]; issuer?: string };
  roles: RoleView[];
}

const list = (v: string[] | undefined): string => (v === undefined || v.length === 0 ? '*' : v.join(','));

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  return [head, ...rows].map((r) => r.map((v, c) => v.padEnd(widths[c])).join('  ').trimEnd()).join('\n');
}

/** Who the control plane says you are, and your roles (a table). */
export function describeWhoAmI(w: WhoAmI, stored?: Credential): string {
  const p = w.person;
  const how = w.via === 'person' && p !== undefined
    ? `person (${[p.issuer ? `from ${p.issuer}` : '', p.groups?.length ? `groups ${p.groups.join(', ')}` : 'no groups'].filter(Boolean).join('; ')})`
    : w.via === 'token' ? 'admin token' : w.via;
  const lines = [`subject  ${w.subject}`, `via      ${how}`];
  if (stored !== undefined) lines.push(`sign-in  ${stored.provider}, ID token valid until ${stored.expiresAt}${stored.refreshToken ? ' (renewed automatically)' : ''}`);
  if (w.roles.length === 0) lines.push('roles    none: an administrator grants roles with a RoleBinding');
  else lines.push('', table(['ROLE', 'NAMESPACES', 'APIS', 'SERVICES', 'SOURCE'], w.roles.map((r) => [r.role, list(r.namespaces), list(r.apis), list(r.services), r.source ?? '-'])));
  return lines.join('\n');
}

async function whoami(target: AdminTarget, unauthorized = ': run `lockgate login`, or give --token'): Promise<WhoAmI> {
  const reply = await adminRequest(target, 'GET', '/v1/auth/whoami');
  if (reply.status === 401) throw new AdminClientError(`${describeError(reply).replace(/: give an admin token.*$/, '')}${unauthorized}`);
  if (reply.status !== 200) throw new AdminClientError(describeError(reply));
  return JSON.parse(reply.text) as WhoAmI;
}

function fail(verb: string, err: unknown): number {
  if (!(err instanceof AdminClientError)) throw err;
  process.stderr.write(`lockgate ${verb}: ${err.message}\n`);
  return 1;
}

const LOGIN_USAGE = `Usage: lockgate login [--provider NAME] [connection options]

Signs you in to a control plane as a person, with the OAuth 2.0 device authorization grant: open the
printed address in any browser, sign in at your identity provider, and confirm the code. The ID token
(and a refresh token) are stored for this control plane in <config dir>/credentials.json, readable
by you only; the other commands use them when no --token is given, renewing the ID token before it
expires. <config dir> is $LOCKGATE_CONFIG_DIR, else $XDG_CONFIG_HOME/lockgate, else ~/.config/lockgate
(%APPDATA%\\lockgate on Windows).

The control plane lists the IdentityProviders a person can sign in with (those with a cliClientId).

Options:
  --provider NAME      the IdentityProvider (namespace/name, or name) when there are several

${ADMIN_CLIENT_USAGE}`;

export const loginVerb: Verb = {
  summary: 'sign in to a control plane as a person (OpenID Connect device flow)',
  usage: LOGIN_USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...ADMIN_CLIENT_OPTIONS, provider: { type: 'string' } } });
    if (positionals.length > 0) {
      process.stderr.write(`${LOGIN_USAGE}\n`);
      return 1;
    }
    try {
      // The stored sign-in may be the expired one this replaces: never use it here.
      const target = await resolveTarget(values, process.env, { storedToken: async () => undefined });
      const origin = target.url.origin;
      const reply = await adminRequest({ ...target, token: undefined }, 'GET', '/v1/auth/providers');
      if (reply.status === 404) throw new AdminClientError(`the control plane at ${origin} does not offer sign-in for people (no /v1/auth/providers): use --token`);
      if (reply.status !== 200) throw new AdminClientError(describeError(reply));
      const providers = (JSON.parse(reply.text) as { providers?: ProviderInfo[] }).providers ?? [];
      if (providers.length === 0) {
        throw new AdminClientError(`the control plane at ${origin} has no IdentityProvider to sign in with: an administrator sets spec.cliClientId on one (a public client registered at the provider for the device authorization grant)`);
      }
      let chosen: ProviderInfo | undefined;
      if (values.provider !== undefined) {
        const want = values.provider;
        const matches = providers.filter((p) => p.name === want || p.name.split('/').pop() === want);
        if (matches.length !== 1) throw new AdminClientError(`${matches.length === 0 ? 'no' : 'more than one'} IdentityProvider ${JSON.stringify(want)}: choose one of ${providers.map((p) => p.name).join(', ')}`);
        chosen = matches[0];
      } else if (providers.length === 1) chosen = providers[0];
      else {
        process.stderr.write(`lockgate login: several IdentityProviders; choose one with --provider NAME:\n${providers.map((p) => `  ${p.name}  (${p.issuer})`).join('\n')}\n`);
        return 1;
      }
      const scopes = chosen.scopes?.length ? chosen.scopes : DEFAULT_SCOPES;
      process.stderr.write(`Signing in to ${origin} with ${chosen.name} (${chosen.issuer})\n`);
      const tokens = await deviceLogin(chosen.issuer, chosen.clientId, {
        scopes: scopes.includes('openid') ? scopes : ['openid', ...scopes],
        onCode(auth: DeviceAuthorization) {
          const mins = Math.max(1, Math.round((auth.expiresAt - Date.now()) / 60_000));
          process.stderr.write(`To sign in, open ${auth.verificationUriComplete ?? auth.verificationUri} and enter code ${auth.userCode}\n`);
          process.stderr.write(`(the code expires in ${mins} minute${mins === 1 ? '' : 's'}, at ${new Date(auth.expiresAt).toLocaleTimeString()}; waiting…)\n`);
        },
      });
      // Ask the control plane before storing anything: a token it refuses is no sign-in.
      const me = await whoami({ ...target, token: tokens.idToken }, ` (the control plane refused the ID token from ${chosen.name}; nothing was stored)`);
      const claims = tokens.claims;
      const subject = typeof claims.email === 'string' ? claims.email : typeof claims.sub === 'string' ? claims.sub : me.subject;
      const credential: Credential = {
        provider: chosen.name,
        issuer: chosen.issuer,
        clientId: chosen.clientId,
        tokenEndpoint: tokens.endpoints.tokenEndpoint,
        idToken: tokens.idToken,
        ...(tokens.refreshToken !== undefined ? { refreshToken: tokens.refreshToken } : {}),
        expiresAt: new Date(tokens.expiresAt).toISOString(),
        subject,
      };
      const file = await saveCredential(origin, credential);
      process.stderr.write(`Signed in; the sign-in is stored in ${file}${tokens.refreshToken === undefined ? ' (no refresh token: sign in again when it expires)' : ''}\n`);
      process.stdout.write(`${describeWhoAmI(me, credential)}\n`);
      return 0;
    } catch (err) {
      return fail('login', err);
    }
  },
};

const LOGOUT_USAGE = `Usage: lockgate logout [connection options]

Forgets the sign-in \`lockgate login\` stored for this control plane (its ID and refresh tokens). The
session at the identity provider is not ended; sign out there too on a shared machine.

${ADMIN_CLIENT_USAGE}`;

export const logoutVerb: Verb = {
  summary: 'forget the stored sign-in for a control plane',
  usage: LOGOUT_USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...ADMIN_CLIENT_OPTIONS } });
    if (positionals.length > 0) {
      process.stderr.write(`${LOGOUT_USAGE}\n`);
      return 1;
    }
    try {
      let origin: string;
      try {
        origin = (await resolveTarget(values, process.env, { storedToken: async () => undefined })).url.origin;
      } catch (err) {
        // Forgetting needs only the URL, not the CA file.
        const url = values['control-plane'] ?? process.env.LOCKGATE_CONTROL_PLANE;
        if (url === undefined || !URL.canParse(url)) throw err;
        origin = new URL(url).origin;
      }
      const stored = await loadCredential(origin);
      if (!(await removeCredential(origin))) {
        process.stderr.write(`not signed in to ${origin}\n`);
        return 0;
      }
      process.stderr.write(`signed out of ${origin}${stored?.subject ? ` (was ${stored.subject} with ${stored.provider})` : ''}\n`);
      return 0;
    } catch (err) {
      return fail('logout', err);
    }
  },
};

const WHOAMI_USAGE = `Usage: lockgate whoami [--json] [connection options]

Who the control plane takes you for with the token in use (--token, $LOCKGATE_TOKEN, or the sign-in
\`lockgate login\` stored), how you were authenticated, and your roles with the RoleBinding each comes from.

Options:
  --json               print the JSON the API returned

${ADMIN_CLIENT_USAGE}`;

export const whoamiVerb: Verb = {
  summary: 'show who you are to the control plane, and your roles',
  usage: WHOAMI_USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...ADMIN_CLIENT_OPTIONS, json: { type: 'boolean', default: false } } });
    if (positionals.length > 0) {
      process.stderr.write(`${WHOAMI_USAGE}\n`);
      return 1;
    }
    try {
      const target = await resolveTarget(values);
      if (target.token === undefined) throw new AdminClientError('not signed in: run `lockgate login`, or give --token');
      const me = await whoami(target);
      if (values.json) {
        process.stdout.write(`${JSON.stringify(me, null, 2)}\n`);
        return 0;
      }
      const stored = await loadCredential(target.url.origin);
      process.stdout.write(`${describeWhoAmI(me, stored?.idToken === target.token ? stored : undefined)}\n`);
      return 0;
    } catch (err) {
      return fail('whoami', err);
    }
  },
};

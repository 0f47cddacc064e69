// The CLI's credential store: a person's ID and refresh tokens per control plane, in the user's config directory.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AdminClientError } from './admin-client-error.ts';
import { DeviceFlowError, refresh as refreshTokens, type RequestOptions } from './device-flow.ts';

/** One control plane's stored sign-in. */
export interface Credential {
  /** The IdentityProvider (namespace/name) it came from. */
  provider: string;
  issuer: string;
  clientId: string;
  tokenEndpoint: string;
  idToken: string;
  refreshToken?: string;
  /** When the ID token expires (ISO 8601). */
  expiresAt: string;
  subject?: string;
}

export interface StoreOptions {
  env?: Record<string, string | undefined>;
  platform?: NodeJS.Platform;
  home?: string;
}

export interface FreshOptions extends StoreOptions, RequestOptions {
  now?: () => number;
  /** The token refresh (device-flow's by default), injectable for tests. */
  refresh?: typeof refreshTokens;
}

const FILE = 'credentials.json';
const REFRESH_BEFORE_MS = 60_000;

/** `$LOCKGATE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/lockgate`, else `~/.config/lockgate` (`%APPDATA%\lockgate` on Windows). */
export function configDir(opts: StoreOptions = {}): string {
  const env = opts.env ?? process.env;
  if (env.LOCKGATE_CONFIG_DIR) return path.resolve(env.LOCKGATE_CONFIG_DIR);
  // The XDG spec says to ignore a relative XDG_CONFIG_HOME.
  if (env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME)) return path.join(env.XDG_CONFIG_HOME, 'lockgate');
  if ((opts.platform ?? process.platform) === 'win32' && env.APPDATA) return path.win32.join(env.APPDATA, 'lockgate');
  return path.join(opts.home ?? os.homedir(), '.config', 'lockgate');
}

export function credentialsFile(opts: StoreOptions = {}): string {
  return path.join(configDir(opts), FILE);
}

/** Entries are keyed by the control plane's origin (`https://host:port`). */
export function originOf(controlPlane: string | URL): string {
  return new URL(controlPlane).origin;
}

const isString = (v: unknown): v is string => typeof v === 'string';

function invalid(file: string, why: string): AdminClientError {
  return new AdminClientError(`${file} is not a valid credentials file (${why}): delete it and run \`lockgate login\` again`);
}

async function readStore(file: string): Promise<Record<string, Credential>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new AdminClientError(`cannot read ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw invalid(file, (err as Error).message);
  }
  const creds = (doc as { credentials?: unknown } | null)?.credentials;
  if (doc === null || typeof doc !== 'object' || (doc as { version?: unknown }).version !== 1 || creds === null || typeof creds !== 'object' || Array.isArray(creds)) {
    throw invalid(file, 'expected { "version": 1, "credentials": { … } }');
  }
  const out: Record<string, Credential> = {};
  for (const [origin, c] of Object.entries(creds as Record<string, Partial<Credential> | null>)) {
    const ok = c !== null && typeof c === 'object' && [c.provider, c.issuer, c.clientId, c.tokenEndpoint, c.idToken, c.expiresAt].every(isString)
      && (c.refreshToken === undefined || isString(c.refreshToken)) && (c.subject === undefined || isString(c.subject)) && !Number.isNaN(Date.parse(c.expiresAt!));
    if (!ok) throw invalid(file, `the entry for ${origin} lacks provider, issuer, clientId, tokenEndpoint, idToken or expiresAt`);
    out[origin] = c as Credential;
  }
  return out;
}

/** Writes a temporary file (0600) beside the real one, then renames it over: a reader sees the old file or the new one. */
async function writeStore(file: string, creds: Record<string, Credential>): Promise<void> {
  const dir = path.dirname(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  if (Object.keys(creds).length === 0) {
    await rm(file, { force: true });
    return;
  }
  const temp = path.join(dir, `.${FILE}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(temp, 'wx', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify({ version: 1, credentials: creds }, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(temp, file);
  } catch (err) {
    await rm(temp, { force: true });
    throw new AdminClientError(`cannot write ${file}: ${(err as Error).message}`);
  }
}

export async function loadCredential(controlPlane: string | URL, opts: StoreOptions = {}): Promise<Credential | undefined> {
  const store = await readStore(credentialsFile(opts));
  return Object.hasOwn(store, originOf(controlPlane)) ? store[originOf(controlPlane)] : undefined;
}

/** Stores (or replaces) the credential for one control plane; returns the file's path. */
export async function saveCredential(controlPlane: string | URL, credential: Credential, opts: StoreOptions = {}): Promise<string> {
  const file = credentialsFile(opts);
  const store = await readStore(file);
  store[originOf(controlPlane)] = credential;
  await writeStore(file, store);
  return file;
}

/** Forgets one control plane's credential; false when there was none. */
export async function removeCredential(controlPlane: string | URL, opts: StoreOptions = {}): Promise<boolean> {
  const file = credentialsFile(opts);
  const store = await readStore(file);
  const origin = originOf(controlPlane);
  if (!Object.hasOwn(store, origin)) return false;
  delete store[origin];
  await writeStore(file, store);
  return true;
}

/**
 * The stored ID token for a control plane, refreshed first when it expires within a minute and a refresh token is
 * stored (the result is saved). Undefined when nothing is stored; an AdminClientError when the sign-in has run out.
 */
export async function freshIdToken(controlPlane: string | URL, opts: FreshOptions = {}): Promise<string | undefined> {
  const now = opts.now ?? Date.now;
  const origin = originOf(controlPlane);
  const cred = await loadCredential(origin, opts);
  if (cred === undefined) return undefined;
  const exp = Date.parse(cred.expiresAt);
  if (exp - now() > REFRESH_BEFORE_MS) return cred.idToken;
  const who = `${cred.subject ?? 'your sign-in'} with ${cred.provider}`;
  if (cred.refreshToken === undefined) {
    if (exp > now()) return cred.idToken;
    throw new AdminClientError(`the sign-in to ${origin} (${who}) expired at ${cred.expiresAt}: run \`lockgate login\` again`);
  }
  try {
    const t = await (opts.refresh ?? refreshTokens)(cred.tokenEndpoint, cred.clientId, cred.refreshToken, opts);
    const next: Credential = { ...cred, idToken: t.idToken, expiresAt: new Date(t.expiresAt).toISOString(), ...(t.refreshToken !== undefined ? { refreshToken: t.refreshToken } : {}) };
    await saveCredential(origin, next, opts);
    return next.idToken;
  } catch (err) {
    if (!(err instanceof DeviceFlowError)) throw err;
    // Another lockgate process may have used the (rotating) refresh token a moment ago and stored its result.
    const again = await loadCredential(origin, opts);
    if (again !== undefined && again.idToken !== cred.idToken && Date.parse(again.expiresAt) > now()) return again.idToken;
    // The provider is unreachable but the token still works for a few seconds: use it.
    if (err.code === 'unreachable' && exp > now()) return cred.idToken;
    throw new AdminClientError(`the sign-in to ${origin} (${who}) has expired and could not be renewed (${err.message}): run \`lockgate login\` again`, { cause: err });
  }
}

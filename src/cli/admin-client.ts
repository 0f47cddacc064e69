// The admin-API client the CLI verbs share: finds the control plane, trusts it by CA file and SPIFFE ID, sends requests.
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import type { PeerCertificate } from 'node:tls';
import { spiffeIdFromAltNames } from '../ca/peer-identity.ts';
import { parseWorkloadId } from '../lib/spiffe-id.ts';
import { formatProblems } from '../model/load-config.ts';
import type { Problem } from '../model/types.ts';
import { AdminClientError } from './admin-client-error.ts';
import { freshIdToken } from './credentials.ts';

export const ADMIN_CLIENT_OPTIONS = {
  'control-plane': { type: 'string' },
  token: { type: 'string' },
  'ca-file': { type: 'string' },
  'data-dir': { type: 'string' },
} as const;

export const ADMIN_CLIENT_USAGE = `Connection options:
  --control-plane URL  the control plane's admin API (or $LOCKGATE_CONTROL_PLANE)
  --token TOKEN        an admin token, e.g. the bootstrap token (or $LOCKGATE_TOKEN); without one, the
                       person's sign-in that lockgate login stored for this control plane
  --ca-file FILE       PEM roots to verify the control plane with (or $LOCKGATE_CA_FILE)
  --data-dir DIR       read URL and CA file from DIR/control-plane.json (a local control plane)`;

/** `--reason TEXT` for verbs that change something: sent as x-lockgate-reason and kept in the audit trail. */
export const REASON_OPTION = { reason: { type: 'string' } } as const;
export const reasonUsage = (width: number): string => `  ${'--reason TEXT'.padEnd(width)}  why (kept with the change in the audit trail: lockgate audit export)`;

/** The request header for `--reason` (control characters, which a header cannot carry, become spaces). */
export function reasonHeaders(reason: string | undefined): Record<string, string> {
  const text = (reason ?? '').replace(/[\u0000-\u001f\u007f]/g, ' ').trim();
  return text === '' ? {} : { 'x-lockgate-reason': text.slice(0, 500) };
}

export { AdminClientError };

export interface AdminTarget {
  url: URL;
  token?: string;
  ca: string;
  /** The exact identity to expect, when control-plane.json names it; else any trust domain's control-plane ID. */
  spiffeId?: string;
}

type Values = { 'control-plane'?: string; token?: string; 'ca-file'?: string; 'data-dir'?: string };

export interface ResolveDeps {
  /** The token for a control plane when none is given (default: the `lockgate login` credential, refreshed if due). */
  storedToken?: (origin: string, env: Record<string, string | undefined>) => Promise<string | undefined>;
}

/**
 * Flags first, then the environment, then `<data-dir>/control-plane.json`. With no token by flag or environment, the
 * person's stored sign-in for that control plane (`lockgate login`), if any.
 */
export async function resolveTarget(values: Values, env: Record<string, string | undefined> = process.env, deps: ResolveDeps = {}): Promise<AdminTarget> {
  let url = values['control-plane'] ?? env.LOCKGATE_CONTROL_PLANE;
  let caFile = values['ca-file'] ?? env.LOCKGATE_CA_FILE;
  let spiffeId: string | undefined;
  const dataDir = values['data-dir'] ?? (url === undefined ? env.LOCKGATE_DATA_DIR : undefined);
  if (dataDir !== undefined) {
    const file = join(dataDir, 'control-plane.json');
    let info: { url?: string; caFile?: string; spiffeId?: string };
    try {
      info = JSON.parse(await readFile(file, 'utf8'));
    } catch (err) {
      throw new AdminClientError(`cannot read ${file} (is a control plane running with --data-dir ${dataDir}?): ${(err as Error).message}`);
    }
    url ??= info.url;
    caFile ??= info.caFile;
    if (url === info.url) spiffeId = info.spiffeId;
  }
  if (url === undefined) throw new AdminClientError('no control plane: give --control-plane URL (or $LOCKGATE_CONTROL_PLANE) or --data-dir DIR');
  if (caFile === undefined) throw new AdminClientError('no CA file to verify the control plane with: give --ca-file FILE (or $LOCKGATE_CA_FILE)');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new AdminClientError(`--control-plane ${JSON.stringify(url)} is not a URL`);
  }
  if (parsed.protocol !== 'https:') throw new AdminClientError('the control plane speaks HTTPS only: give an https:// URL');
  let ca: string;
  try {
    ca = await readFile(caFile, 'utf8');
  } catch (err) {
    throw new AdminClientError(`cannot read the CA file ${caFile}: ${(err as Error).message}`);
  }
  const token = (values.token ?? env.LOCKGATE_TOKEN) || (await (deps.storedToken ?? ((origin, e) => freshIdToken(origin, { env: e })))(parsed.origin, env));
  return { url: parsed, ca, spiffeId, ...(token ? { token } : {}) };
}

/**
 * The control plane's certificate carries only a SPIFFE URI SAN, so Node's hostname check cannot apply: the chain is
 * verified against the CA file by OpenSSL, then this checks the identity is a control plane's.
 */
function checkControlPlane(expected: string | undefined): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    let id: string;
    try {
      id = spiffeIdFromAltNames(cert.subjectaltname);
    } catch (err) {
      return new Error(`the server is not a Lockgate control plane: ${(err as Error).message}`);
    }
    const w = parseWorkloadId(id);
    const ok = expected !== undefined ? id === expected : w !== null && w.namespace === 'lockgate-system' && w.service === 'control-plane';
    return ok ? undefined : new Error(`the server's identity is ${id}, expected ${expected ?? 'spiffe://<trust-domain>/ns/lockgate-system/sa/control-plane'}`);
  };
}

export interface AdminReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

export async function adminRequest(
  target: AdminTarget,
  method: string,
  path: string,
  opts: { body?: string; contentType?: string; headers?: Record<string, string>; signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<AdminReply> {
  const signal = AbortSignal.any([opts.signal ?? new AbortController().signal, AbortSignal.timeout(opts.timeoutMs ?? 30_000)]);
  const headers: Record<string, string> = { accept: 'application/json', ...opts.headers };
  if (target.token) headers.authorization = `Bearer ${target.token}`;
  if (opts.body !== undefined) headers['content-type'] = opts.contentType ?? 'application/yaml';
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(path, target.url),
      { method, headers, ca: target.ca, checkServerIdentity: checkControlPlane(target.spiffeId), signal, agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
        res.on('error', reject);
      },
    );
    req.on('error', (err: Error & { code?: string }) => {
      const why = err.name === 'AbortError' || err.name === 'TimeoutError' ? 'no answer in time' : err.message;
      reject(new AdminClientError(`cannot reach the control plane at ${target.url.origin}: ${why}`));
    });
    req.end(opts.body);
  });
}

interface ErrorBody {
  error?: { code?: string; message?: string; requestId?: string; problems?: Problem[] };
}

/** The error a reply carries, as lines for stderr (problems one per line as file:line:col: message). */
export function describeError(reply: AdminReply, mapProblem: (p: Problem) => Problem = (p) => p): string {
  let body: ErrorBody;
  try {
    body = JSON.parse(reply.text) as ErrorBody;
  } catch {
    return `HTTP ${reply.status}: ${reply.text.slice(0, 500)}`;
  }
  const e = body.error ?? {};
  if (reply.status === 401) return `${e.message ?? 'unauthorized'}: give an admin token with --token or $LOCKGATE_TOKEN, or sign in with lockgate login`;
  if (Array.isArray(e.problems) && e.problems.length > 0) {
    const n = e.problems.length;
    return `${formatProblems(e.problems.map(mapProblem))}\n${n} problem${n === 1 ? '' : 's'} found`;
  }
  return `${e.message ?? `HTTP ${reply.status}`}${e.requestId ? ` (request ${e.requestId})` : ''}`;
}

// `lockgate secrets set|get|list|disable|enable|delete|rotate-master`: the control plane's versioned secrets through the
// admin API. Values are read from stdin or a file, never from the command line by default (argv shows in ps and history).
import { readFile, stat } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ADMIN_CLIENT_OPTIONS, ADMIN_CLIENT_USAGE, AdminClientError, adminRequest, describeError, resolveTarget, type AdminTarget } from './admin-client.ts';
import type { Verb } from './verb.ts';

const USAGE = `Usage: lockgate secrets set NAME [--from-file FILE | --value VALUE] [connection options]
       lockgate secrets get NAME [--reveal] [--version N] [-o json] [connection options]
       lockgate secrets list [-o json] [connection options]
       lockgate secrets disable|enable NAME --version N [connection options]
       lockgate secrets delete NAME [connection options]
       lockgate secrets rotate-master --new-key-file FILE [connection options]

Secrets kept by the control plane, each set a new version, sealed at rest under the master key. A NamedValue with
spec.secret: NAME puts a secret into config as {{named-value}} without the config ever holding it.

  set            store a new version. The value is read from standard input (a pipe or a prompt-less
                 terminal read until end of input; one trailing newline is dropped), or from --from-file.
                 --value VALUE works too but leaks into shell history and ps: avoid it.
  get            the secret's versions (metadata only); with --reveal, the value itself (needs the reveal
                 permission; every reveal is recorded in the audit log). --version N: that version.
  list           every secret: newest enabled version, number of versions, last change. Never values.
  disable/enable a version: a disabled version cannot be read (get without --version skips it)
  delete         every version of the secret
  rotate-master  re-wrap every secret's data key and the CA's private keys under a new master key
                 (32 random bytes, base64 or hex, in FILE, mode 0600; \`openssl rand -base64 32\`), with no
                 downtime. The old key is no longer needed afterwards; see docs/secrets.md.

Options:
  --from-file FILE     set: read the value from FILE (the whole file, as is)
  --value VALUE        set: the value on the command line (discouraged)
  --reveal             get: print the value
  --version N          get/disable/enable: that version
  --new-key-file FILE  rotate-master: the new master key
  -o, --output FORMAT  text (default) or json

${ADMIN_CLIENT_USAGE}`;

interface VersionInfo { name: string; version: number; createdAt: number; createdBy?: string; enabled: boolean; keyId: string }
interface Summary { name: string; latest: number | null; versions: number; updatedAt: number }

const iso = (ms: number): string => new Date(ms).toISOString();

async function call(target: AdminTarget, method: string, path: string, body?: unknown): Promise<unknown> {
  const reply = await adminRequest(target, method, path, body === undefined ? {} : { body: JSON.stringify(body), contentType: 'application/json' });
  if (reply.status < 200 || reply.status > 299) throw new AdminClientError(describeError(reply));
  return JSON.parse(reply.text) as unknown;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('reading the secret value from standard input; end with Ctrl-D\n');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function readSecretFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new AdminClientError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

async function readKeyFile(path: string): Promise<string> {
  let mode: number;
  try {
    mode = (await stat(path)).mode;
  } catch (err) {
    throw new AdminClientError(`cannot read the new master key file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) throw new AdminClientError(`the new master key file ${path} is readable by others (mode ${(mode & 0o777).toString(8)}): run \`chmod 600 ${path}\``);
  const bytes = await readFile(path);
  // A file of 32 raw bytes travels as base64; a text key (hex or base64) as written. The control plane checks it.
  const text = bytes.length === 32 ? bytes.toString('base64') : bytes.toString('utf8').trim();
  bytes.fill(0);
  return text;
}

function versionLine(v: VersionInfo): string {
  return `${String(v.version).padStart(4)}  ${v.enabled ? 'enabled ' : 'disabled'}  ${iso(v.createdAt)}  ${v.createdBy ?? '-'}  ${v.keyId}`;
}

export const secretsVerb: Verb = {
  summary: 'set, show, list and rotate the control plane\'s secrets',
  usage: USAGE,
  async run(args) {
    let parsed;
    try {
      parsed = parseArgs({
        args,
        allowPositionals: true,
        options: {
          ...ADMIN_CLIENT_OPTIONS,
          'from-file': { type: 'string' }, value: { type: 'string' }, reveal: { type: 'boolean', default: false },
          version: { type: 'string' }, 'new-key-file': { type: 'string' }, output: { type: 'string', short: 'o', default: 'text' },
        },
      });
    } catch (err) {
      process.stderr.write(`lockgate secrets: ${(err as Error).message}\n${USAGE}\n`);
      return 1;
    }
    const { values, positionals } = parsed;
    const [cmd, name, ...extra] = positionals;
    const needsName = cmd === 'set' || cmd === 'get' || cmd === 'disable' || cmd === 'enable' || cmd === 'delete';
    const noName = cmd === 'list' || cmd === 'rotate-master';
    const version = values.version;
    const ok = extra.length === 0 && ((needsName && name !== undefined) || (noName && name === undefined)) &&
      (values.output === 'text' || values.output === 'json') &&
      (version === undefined || ((cmd === 'get' || cmd === 'disable' || cmd === 'enable') && /^[1-9]\d{0,9}$/.test(version))) &&
      ((cmd !== 'disable' && cmd !== 'enable') || version !== undefined) &&
      (!values.reveal || cmd === 'get') &&
      ((values['from-file'] === undefined && values.value === undefined) || (cmd === 'set' && (values['from-file'] === undefined || values.value === undefined))) &&
      ((cmd === 'rotate-master') === (values['new-key-file'] !== undefined));
    if (!ok) {
      process.stderr.write(`${USAGE}\n`);
      return 1;
    }
    const json = values.output === 'json';
    const out = (body: unknown, text: string): void => void process.stdout.write(json ? `${JSON.stringify(body, null, 2)}\n` : text);
    try {
      const target = await resolveTarget(values);
      const path = name === undefined ? '' : `/v1/secrets/${encodeURIComponent(name)}`;
      switch (cmd) {
        case 'set': {
          if (values.value !== undefined) process.stderr.write('lockgate secrets: warning: --value puts the secret in shell history and the process list; prefer stdin or --from-file\n');
          const value = values.value ?? (values['from-file'] !== undefined ? await readSecretFile(values['from-file']) : await readStdin());
          if (value === '') throw new AdminClientError('the value is empty');
          const info = (await call(target, 'PUT', path, { value })) as VersionInfo;
          out(info, `secret ${info.name} version ${info.version} stored\n`);
          return 0;
        }
        case 'get': {
          if (values.reveal) {
            const body = (await call(target, 'GET', `${path}?reveal=true${version ? `&version=${version}` : ''}`)) as VersionInfo & { value: string };
            out(body, `${body.value}\n`);
            return 0;
          }
          if (version !== undefined) {
            const v = (await call(target, 'GET', `${path}?version=${version}`)) as VersionInfo;
            out(v, `VERSION  STATE     CREATED                   BY  KEY\n${versionLine(v)}\n`);
            return 0;
          }
          const body = (await call(target, 'GET', path)) as { name: string; latest: number | null; versions: VersionInfo[] };
          out(body, `secret ${body.name}, latest enabled version ${body.latest ?? 'none'}\nVERSION  STATE     CREATED                   BY  KEY\n${body.versions.map(versionLine).join('\n')}\n`);
          return 0;
        }
        case 'list': {
          const body = (await call(target, 'GET', '/v1/secrets')) as { items: Summary[] };
          const w = Math.max(4, ...body.items.map((s) => s.name.length));
          const lines = body.items.map((s) => `${s.name.padEnd(w)}  ${String(s.latest ?? '-').padStart(6)}  ${String(s.versions).padStart(8)}  ${iso(s.updatedAt)}`);
          out(body, body.items.length === 0 ? 'no secrets\n' : `${'NAME'.padEnd(w)}  LATEST  VERSIONS  UPDATED\n${lines.join('\n')}\n`);
          return 0;
        }
        case 'disable':
        case 'enable': {
          const info = (await call(target, 'PATCH', `${path}/${version}`, { enabled: cmd === 'enable' })) as VersionInfo;
          out(info, `secret ${info.name} version ${info.version} ${info.enabled ? 'enabled' : 'disabled'}\n`);
          return 0;
        }
        case 'delete': {
          const body = (await call(target, 'DELETE', path)) as { name: string; deletedVersions: number };
          out(body, `secret ${body.name} deleted (${body.deletedVersions} version${body.deletedVersions === 1 ? '' : 's'})\n`);
          return 0;
        }
        default: {
          const key = await readKeyFile(values['new-key-file']!);
          const r = (await call(target, 'POST', '/v1/secrets:rotate-master', { key })) as { previousKeyId: string; keyId: string; secretsRewrapped: number; next?: string };
          out(r, `master key rotated from ${r.previousKeyId} to ${r.keyId}: ${r.secretsRewrapped} secret version(s) and the CA's keys re-wrapped\n${r.next ? `next: ${r.next}\n` : 'the control plane loads the new key from its data directory from now on; the old key is no longer needed\n'}`);
          return 0;
        }
      }
    } catch (err) {
      if (!(err instanceof AdminClientError)) throw err;
      process.stderr.write(`lockgate secrets: ${err.message}\n`);
      return 1;
    }
  },
};

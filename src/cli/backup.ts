// `lockgate backup -o FILE`: the control plane's whole store (config, CA, registry, nodes, token hashes), encrypted.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeFileAtomic } from '../agent/atomic-file.ts';
import { CA_STATE_KEY, CONTROL_PLANE_FILE, MASTER_KEY_FILE } from '../app/control-plane.ts';
import { CertificateAuthority } from '../ca/certificate-authority.ts';
import { envelopeCipher } from '../control/backup-api.ts';
import { LocalKeyWrapper, MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, SecretsError, type KeyWrapper } from '../secrets/key-wrapper.ts';
import { BackupError, backupStore, readBackupHeader, type BackupHeader } from '../store/backup-archive.ts';
import type { ConfigStore } from '../store/config-store.ts';
import { CONFIG_DB, SqliteConfigStore } from '../store/sqlite-config-store.ts';
import { ADMIN_CLIENT_OPTIONS, ADMIN_CLIENT_USAGE, AdminClientError, adminRequest, describeError, resolveTarget } from './admin-client.ts';
import type { Verb } from './verb.ts';

const USAGE = `Usage: lockgate backup -o FILE [--offline] [connection options]

Writes an encrypted archive (mode 0600) of everything the control plane stores, read at one
revision: config documents, the certificate authority (its private keys stay sealed), registered
endpoints, node records and the hashes of admin and join tokens. \`lockgate restore\` brings it back.

Live: the running control plane makes the archive (GET /v1/backup; needs an admin token).
Offline: with --data-dir DIR and no control plane running there (or with --offline), the store
DIR/${CONFIG_DB} is read directly, with the master key from ${MASTER_KEY_ENV},
${MASTER_KEY_FILE_ENV} or DIR/${MASTER_KEY_FILE}. An offline backup of a running control plane is refused.

The archive is sealed under the control plane's master key, and that key is NOT in the archive:
keep it (for a generated key, the file DIR/${MASTER_KEY_FILE}) somewhere safe, apart from the
backup. Restoring needs the same key.

Options:
  -o, --output FILE    where to write the archive (replaced atomically)
  --offline            read DIR/${CONFIG_DB} directly instead of asking the control plane

${ADMIN_CLIENT_USAGE}`;

/** The pid of the control plane `<dataDir>/control-plane.json` names, when that process is alive. */
export function runningControlPlane(dataDir: string): number | undefined {
  let pid: unknown;
  try {
    pid = (JSON.parse(readFileSync(join(dataDir, CONTROL_PLANE_FILE), 'utf8')) as { pid?: unknown }).pid;
  } catch {
    return undefined;
  }
  if (typeof pid !== 'number' || !Number.isSafeInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM' ? pid : undefined; // EPERM: alive, another user's
  }
}

/** The master key as the control plane picks it: the environment, else `<dataDir>/master.key` (never generated here). */
export async function masterKeyOf(dataDir: string, env: Record<string, string | undefined> = process.env): Promise<{ wrapper: KeyWrapper; source: string } | undefined> {
  if (env[MASTER_KEY_ENV]) return { wrapper: await LocalKeyWrapper.fromEnv(env), source: MASTER_KEY_ENV };
  if (env[MASTER_KEY_FILE_ENV]) return { wrapper: await LocalKeyWrapper.fromEnv(env), source: `${MASTER_KEY_FILE_ENV} (${env[MASTER_KEY_FILE_ENV]})` };
  const file = join(dataDir, MASTER_KEY_FILE);
  if (!existsSync(file)) return undefined;
  return { wrapper: await LocalKeyWrapper.fromFile(file), source: file };
}

/** The trust domain of the stored CA, checking that `wrapper` opens it (a backup under another key would not restore). */
export async function storedTrustDomain(store: ConfigStore, wrapper: KeyWrapper, what: string): Promise<string | undefined> {
  const kv = await store.get(CA_STATE_KEY);
  if (!kv) return undefined;
  try {
    return (await CertificateAuthority.load(kv.value, [wrapper])).trustDomain;
  } catch (err) {
    throw new AdminClientError(`${what}: the stored certificate authority does not open with master key ${wrapper.keyId}: ${(err as Error).message}`);
  }
}

/** Tells where the master key the archive needs lives, since it is not in the archive. */
async function keyNote(header: BackupHeader, dataDir: string | undefined, offlineSource: string | undefined): Promise<string> {
  const generated = dataDir === undefined ? undefined : join(dataDir, MASTER_KEY_FILE);
  let isGenerated = offlineSource !== undefined && offlineSource === generated;
  if (offlineSource === undefined && generated !== undefined && existsSync(generated)) {
    try {
      isGenerated = (await LocalKeyWrapper.fromFile(generated)).keyId === header.keyId;
    } catch {
      // unreadable here: say nothing about it
    }
  }
  const head = `the master key (id ${header.keyId}) is NOT in the archive, and the archive cannot be restored without it.`;
  if (isGenerated) {
    return `${head}\nIt is the generated key ${generated}: copy that file somewhere safe, apart from the archive. Restore with\n` +
      `  ${MASTER_KEY_FILE_ENV}=<copy of ${MASTER_KEY_FILE}> lockgate restore --data-dir NEW_DIR -i FILE\nor copy it into NEW_DIR/${MASTER_KEY_FILE} (mode 0600) first.`;
  }
  return `${head}\nKeep the key the control plane was given (${MASTER_KEY_ENV} or ${MASTER_KEY_FILE_ENV}); restore with the same one set.`;
}

async function offlineBackup(dataDir: string): Promise<{ text: string; header: BackupHeader; source: string }> {
  const pid = runningControlPlane(dataDir);
  if (pid !== undefined) {
    throw new AdminClientError(`the control plane of ${dataDir} is running (pid ${pid}): take a live backup (without --offline, with --token), ` +
      `or stop it first (if no control plane runs there, remove ${join(dataDir, CONTROL_PLANE_FILE)})`);
  }
  if (!existsSync(join(dataDir, CONFIG_DB))) throw new AdminClientError(`no store in ${dataDir} (${CONFIG_DB} is missing)`);
  const key = await masterKeyOf(dataDir);
  if (!key) throw new AdminClientError(`no master key: set ${MASTER_KEY_ENV} or ${MASTER_KEY_FILE_ENV}, or put it in ${join(dataDir, MASTER_KEY_FILE)}`);
  const store = SqliteConfigStore.open(dataDir);
  try {
    const trustDomain = await storedTrustDomain(store, key.wrapper, `cannot back up ${dataDir}`);
    if (trustDomain === undefined) process.stderr.write(`note: the store in ${dataDir} holds no certificate authority yet\n`);
    const made = await backupStore(store, { trustDomain: trustDomain ?? '', cipher: envelopeCipher(key.wrapper) });
    return { ...made, source: key.source };
  } finally {
    await store.close();
  }
}

export const backupVerb: Verb = {
  summary: 'write an encrypted backup of the control plane\'s store and CA',
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { ...ADMIN_CLIENT_OPTIONS, output: { type: 'string', short: 'o' }, offline: { type: 'boolean', default: false } },
    });
    if (positionals.length > 0 || values.output === undefined || values.output === '') {
      process.stderr.write(`${USAGE}\n`);
      return 1;
    }
    const remote = values['control-plane'] ?? process.env.LOCKGATE_CONTROL_PLANE;
    const dataDir = values['data-dir'] ?? (remote === undefined ? process.env.LOCKGATE_DATA_DIR : undefined);
    try {
      let made: { text: string; header: BackupHeader };
      let from: string;
      let offlineSource: string | undefined;
      if (values.offline || (remote === undefined && dataDir !== undefined && runningControlPlane(dataDir) === undefined)) {
        if (dataDir === undefined) throw new AdminClientError('--offline needs --data-dir DIR (or $LOCKGATE_DATA_DIR)');
        const r = await offlineBackup(dataDir);
        made = r;
        offlineSource = r.source;
        from = `offline, from ${join(dataDir, CONFIG_DB)}`;
      } else {
        const target = await resolveTarget(values);
        const reply = await adminRequest(target, 'GET', '/v1/backup', { timeoutMs: 120_000 });
        if (reply.status !== 200) throw new AdminClientError(describeError(reply));
        const { payload: _payload, ...header } = readBackupHeader(reply.text);
        made = { text: reply.text, header };
        from = `live, from ${target.url.origin}`;
      }
      await writeFileAtomic(values.output, made.text, 0o600);
      const h = made.header;
      process.stdout.write(`wrote ${values.output} (${from}): ${h.keys} keys at revision ${h.revision}, trust domain ${JSON.stringify(h.trustDomain)}, sealed under master key ${h.keyId}\n`);
      process.stdout.write(`${await keyNote(h, dataDir, offlineSource)}\n`);
      return 0;
    } catch (err) {
      if (err instanceof AdminClientError || err instanceof BackupError || err instanceof SecretsError) {
        process.stderr.write(`lockgate backup: ${err.message}\n`);
        return 1;
      }
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR' || code === 'ENOTDIR') {
        process.stderr.write(`lockgate backup: cannot write ${values.output}: ${code}\n`);
        return 1;
      }
      throw err;
    }
  },
};

// `lockgate restore --data-dir DIR -i FILE [--force]`: writes a `lockgate backup` archive into a new, stopped data dir.
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CA_BUNDLE_FILE, CA_STATE_KEY, CONTROL_PLANE_FILE, MASTER_KEY_FILE } from '../app/control-plane.ts';
import { CertificateAuthority } from '../ca/certificate-authority.ts';
import { envelopeCipher } from '../control/backup-api.ts';
import { MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, SecretsError } from '../secrets/key-wrapper.ts';
import { BackupError, openBackupArchive, readBackupHeader, restoreIntoStore, type BackupEntry } from '../store/backup-archive.ts';
import { CONFIG_DB, SqliteConfigStore } from '../store/sqlite-config-store.ts';
import { AdminClientError } from './admin-client.ts';
import { masterKeyOf, runningControlPlane } from './backup.ts';
import type { Verb } from './verb.ts';

/** What a control plane leaves in its data dir: --force deletes these and nothing else (master.key is kept). */
const CONTROL_PLANE_FILES = [CONFIG_DB, `${CONFIG_DB}-wal`, `${CONFIG_DB}-shm`, `${CONFIG_DB}-journal`, CONTROL_PLANE_FILE, CA_BUNDLE_FILE];

const USAGE = `Usage: lockgate restore --data-dir DIR -i FILE [--force]

Writes every key of a \`lockgate backup\` archive (config, certificate authority, registry, node
records, token hashes) into the store of DIR, which must be new: absent, empty, or holding only
${MASTER_KEY_FILE}. With --force, the control plane's files in DIR are deleted first:
  ${CONTROL_PLANE_FILES.filter((f) => !f.endsWith('-journal')).join(', ')}
(${MASTER_KEY_FILE} and anything else there are kept). No control plane may be running on DIR.

The archive opens only with the master key it was sealed under (it is not in the archive): from
${MASTER_KEY_ENV}, ${MASTER_KEY_FILE_ENV}, or DIR/${MASTER_KEY_FILE}. Start the control plane with the same key.

After a restore the mesh keeps its identities: the same root and intermediate, so every node's
certificate is still trusted, the same node records, and the same admin tokens. Store revisions
start over (config versions count from 1 again); nodes get a full snapshot when they reconnect, so
nothing depends on the old numbers. Join tokens come back as they were at the backup: one used
after the backup was taken is usable again until it expires.

Options:
  --data-dir DIR   the data dir to restore into (or $LOCKGATE_DATA_DIR)
  -i, --input FILE the archive \`lockgate backup\` wrote
  --force          delete the control plane's files in DIR first`;

/** Unused, unexpired join tokens among the entries (they can be spent again). */
function liveJoinTokens(entries: readonly BackupEntry[], now: number): number {
  let n = 0;
  for (const e of entries) {
    if (!e.key.startsWith('/tokens/join/')) continue;
    try {
      const t = JSON.parse(e.value) as { used?: unknown; expiresAt?: unknown };
      if (t.used !== true && typeof t.expiresAt === 'number' && t.expiresAt > now) n++;
    } catch {
      // not ours to judge
    }
  }
  return n;
}

/** Makes DIR ready: absent → created (0700); else only master.key may be there, unless --force deletes our files. */
async function prepareDataDir(dir: string, force: boolean): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new AdminClientError(`cannot read ${dir}: ${(err as NodeJS.ErrnoException).code}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return [];
  }
  const others = names.filter((n) => n !== MASTER_KEY_FILE);
  if (others.length === 0) return [];
  if (!force) {
    throw new AdminClientError(`${dir} is not empty (${others.slice(0, 5).join(', ')}${others.length > 5 ? ', …' : ''}): restore into a new data dir, ` +
      `or give --force to delete the control plane's files there (${MASTER_KEY_FILE} is kept)`);
  }
  for (const f of CONTROL_PLANE_FILES) await rm(join(dir, f), { force: true });
  return others.filter((n) => !CONTROL_PLANE_FILES.includes(n));
}

export const restoreVerb: Verb = {
  summary: 'restore a `lockgate backup` archive into a new data dir',
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { 'data-dir': { type: 'string' }, input: { type: 'string', short: 'i' }, force: { type: 'boolean', default: false } },
    });
    const dataDir = values['data-dir'] ?? process.env.LOCKGATE_DATA_DIR;
    if (positionals.length > 0 || values.input === undefined || dataDir === undefined || dataDir === '') {
      process.stderr.write(`${USAGE}\n`);
      return 1;
    }
    try {
      let text: string;
      try {
        text = await readFile(values.input, 'utf8');
      } catch (err) {
        throw new AdminClientError(`cannot read ${values.input}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      const header = readBackupHeader(text);
      const pid = runningControlPlane(dataDir);
      if (pid !== undefined) {
        throw new AdminClientError(`a control plane is running on ${dataDir} (pid ${pid}): stop it, and restore into a new data dir ` +
          `(if none runs there, remove ${join(dataDir, CONTROL_PLANE_FILE)})`);
      }
      const key = await masterKeyOf(dataDir);
      if (!key) {
        throw new AdminClientError(`no master key: the backup is sealed under master key ${header.keyId}. Set ${MASTER_KEY_FILE_ENV} to the key file ` +
          `kept with the backup (or ${MASTER_KEY_ENV} to the key), or copy it to ${join(dataDir, MASTER_KEY_FILE)} (mode 0600)`);
      }
      // Everything is checked before anything in DIR is touched: the key, the payload, the CA inside it.
      const { entries } = await openBackupArchive(text, envelopeCipher(key.wrapper));
      const caState = entries.find((e) => e.key === CA_STATE_KEY);
      let trustDomain = header.trustDomain;
      if (caState) {
        try {
          trustDomain = (await CertificateAuthority.load(caState.value, [key.wrapper])).trustDomain;
        } catch (err) {
          throw new AdminClientError(`the backup's certificate authority does not open with master key ${key.wrapper.keyId}: ${(err as Error).message}`);
        }
      } else process.stderr.write('note: the backup holds no certificate authority; the control plane will make a new one\n');
      const kept = await prepareDataDir(dataDir, values.force);
      const store = SqliteConfigStore.open(dataDir);
      let revision: number;
      try {
        revision = await restoreIntoStore(store, entries);
      } finally {
        await store.close();
      }
      const out = (line: string): void => void process.stdout.write(`${line}\n`);
      out(`restored ${entries.length} keys into ${join(dataDir, CONFIG_DB)} (backup of ${header.createdAt} at revision ${header.revision}; ` +
        `trust domain ${JSON.stringify(trustDomain)}; the store is now at revision ${revision})`);
      out('store revisions start over: nodes get a full snapshot when they reconnect, so nothing depends on the old numbers');
      if (kept.length > 0) out(`left in place in ${dataDir}: ${kept.join(', ')}`);
      const tokens = liveJoinTokens(entries, Date.now());
      if (tokens > 0) out(`${tokens} unused join token(s) came back: one spent after the backup was taken can be spent again until it expires`);
      if (key.source === join(dataDir, MASTER_KEY_FILE)) out(`start it with: lockgate control-plane --data-dir ${dataDir}`);
      else {
        out(`start it with the same master key set (${key.source}): lockgate control-plane --data-dir ${dataDir}`);
        out(`(without it, the control plane would generate ${join(dataDir, MASTER_KEY_FILE)} and could not open the CA)`);
      }
      return 0;
    } catch (err) {
      if (err instanceof AdminClientError || err instanceof BackupError || err instanceof SecretsError) {
        process.stderr.write(`lockgate restore: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
  },
};

// Where the control plane's master keys come from, and how a rotated key is made to survive a restart: the environment
// (LOCKGATE_MASTER_KEY(_FILE), plus LOCKGATE_MASTER_KEY_PREVIOUS(_FILE) to finish an interrupted rotation), else
// `<data-dir>/master.key` (generated on first start), with `master.key.next` holding a key being rotated to.
import { randomBytes } from 'node:crypto';
import { rename, rm } from 'node:fs/promises';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../agent/atomic-file.ts';
import { LocalKeyWrapper, MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, type KeyWrapper } from '../secrets/key-wrapper.ts';
import { MasterKeys } from '../secrets/master-keys.ts';

export const MASTER_KEY_FILE = 'master.key';
export const NEXT_MASTER_KEY_FILE = 'master.key.next';
export const PREVIOUS_MASTER_KEY_ENV = 'LOCKGATE_MASTER_KEY_PREVIOUS';
export const PREVIOUS_MASTER_KEY_FILE_ENV = 'LOCKGATE_MASTER_KEY_PREVIOUS_FILE';

export interface MasterKeySource {
  keys: MasterKeys;
  /** Data-dir keys only: write the key being rotated to (before anything is sealed under it). */
  persistNext?: (keyText: string, keyId: string) => Promise<void>;
  /** Data-dir keys only: the rotated-to key replaces master.key. */
  commit?: () => Promise<void>;
}

async function previousFromEnv(env: Record<string, string | undefined>): Promise<KeyWrapper[]> {
  if (!env[PREVIOUS_MASTER_KEY_ENV] && !env[PREVIOUS_MASTER_KEY_FILE_ENV]) return [];
  return [await LocalKeyWrapper.fromEnv({ [MASTER_KEY_ENV]: env[PREVIOUS_MASTER_KEY_ENV], [MASTER_KEY_FILE_ENV]: env[PREVIOUS_MASTER_KEY_FILE_ENV] })];
}

export async function loadMasterKeys(dataDir: string, env: Record<string, string | undefined>, log: (line: string) => void): Promise<MasterKeySource> {
  if (env[MASTER_KEY_ENV] || env[MASTER_KEY_FILE_ENV]) {
    return { keys: new MasterKeys(await LocalKeyWrapper.fromEnv(env), await previousFromEnv(env)) };
  }
  const file = join(dataDir, MASTER_KEY_FILE);
  const nextFile = join(dataDir, NEXT_MASTER_KEY_FILE);
  try {
    writeFileSync(file, randomBytes(32).toString('base64') + '\n', { flag: 'wx', mode: 0o600 });
    log(`generated a master key in ${file} (mode 0600): back it up, the CA's private keys and the secrets cannot be opened without it; ` +
      `set ${MASTER_KEY_ENV} or ${MASTER_KEY_FILE_ENV} to keep it elsewhere`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const current = await LocalKeyWrapper.fromFile(file);
  const extra: KeyWrapper[] = [...(await previousFromEnv(env))];
  if (existsSync(nextFile)) {
    // A rotation stopped before it finished: records may be sealed under either key, so both open.
    const next = await LocalKeyWrapper.fromFile(nextFile);
    extra.push(next);
    log(`a master key rotation did not finish (${nextFile} exists): run \`lockgate secrets rotate-master --new-key-file FILE\` again with that key to finish it`);
  }
  return {
    keys: new MasterKeys(current, extra),
    persistNext: (keyText) => writeFileAtomic(nextFile, `${keyText}\n`, 0o600),
    commit: async () => {
      await rename(nextFile, file);
      await rm(nextFile, { force: true });
    },
  };
}

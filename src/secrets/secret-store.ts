// The versioned secret store (Key Vault's role): every set is a new version, sealed with its own data key under the
// master key, one store key per version under `/secrets/` (never under `/config/`, so no config read shows them).
import type { ConfigStore, KeyValue } from '../store/config-store.ts';
import { open, seal } from './envelope.ts';
import { SecretsError, type KeyWrapper } from './key-wrapper.ts';

export const SECRETS_PREFIX = '/secrets/';
/** A secret's value: 1 to this many bytes of UTF-8 text. */
export const MAX_SECRET_BYTES = 64 * 1024;
const NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
const VERSION_DIGITS = 10;

/** What is known about one version without opening it (all any listing shows). */
export interface SecretVersionInfo {
  name: string;
  version: number;
  createdAt: number;
  createdBy?: string;
  enabled: boolean;
  /** The master key its data key is wrapped under (an id, not a key). */
  keyId: string;
}

export interface SecretSummary {
  name: string;
  /** The newest enabled version (what `get` without a version opens); null when every version is disabled. */
  latest: number | null;
  versions: number;
  updatedAt: number;
}

/** The stored record of one version. */
interface StoredVersion {
  name: string;
  version: number;
  createdAt: number;
  createdBy?: string;
  enabled: boolean;
  /** envelope.seal() text; its aad binds it to this name and version. */
  envelope: string;
}

export interface SecretStoreOptions {
  store: ConfigStore;
  /** Seals under `current`, opens with any of `all()` (the current master key and, mid-rotation, the previous ones). */
  keys: { readonly current: KeyWrapper; all(): readonly KeyWrapper[] };
  now?: () => number;
}

export function checkSecretName(name: string): void {
  if (!NAME.test(name)) {
    throw new SecretsError('secret_invalid', `${JSON.stringify(name.slice(0, 80))} is not a valid secret name: use lower-case letters, digits and "-", start and end with a letter or digit, at most 63 characters`);
  }
}

/** The store key of one version; versions sort by number because they are zero-padded. */
export function secretKey(name: string, version: number): string {
  return `${SECRETS_PREFIX}${name}/${String(version).padStart(VERSION_DIGITS, '0')}`;
}

const aadOf = (name: string, version: number): string => `lockgate secret\0${name}\0${version}`;

function parseRecord(kv: KeyValue): StoredVersion {
  let r: StoredVersion;
  try {
    r = JSON.parse(kv.value) as StoredVersion;
  } catch (err) {
    throw new SecretsError('envelope_invalid', `the record at ${kv.key} is not JSON`, { cause: err });
  }
  if (typeof r?.name !== 'string' || !Number.isInteger(r.version) || typeof r.envelope !== 'string') {
    throw new SecretsError('envelope_invalid', `the record at ${kv.key} is malformed`);
  }
  return r;
}

function kidOf(envelope: string): string {
  try {
    const kid = (JSON.parse(envelope) as { kid?: unknown }).kid;
    return typeof kid === 'string' ? kid : '';
  } catch {
    return '';
  }
}

function infoOf(r: StoredVersion): SecretVersionInfo {
  return { name: r.name, version: r.version, createdAt: r.createdAt, ...(r.createdBy !== undefined ? { createdBy: r.createdBy } : {}), enabled: r.enabled, keyId: kidOf(r.envelope) };
}

export class SecretStore {
  readonly #o: SecretStoreOptions;
  readonly #now: () => number;

  constructor(o: SecretStoreOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** Stores `value` as the next version of `name` (creating the secret). Concurrent sets get distinct versions. */
  async set(name: string, value: string, opts: { by?: string; signal?: AbortSignal } = {}): Promise<SecretVersionInfo> {
    checkSecretName(name);
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes === 0) throw new SecretsError('secret_invalid', 'a secret value cannot be empty');
    if (bytes > MAX_SECRET_BYTES) throw new SecretsError('secret_invalid', `a secret value is at most ${MAX_SECRET_BYTES} bytes (this one is ${bytes})`);
    for (let attempt = 0; attempt < 20; attempt++) {
      const versions = await this.#records(name, opts.signal);
      const version = (versions.at(-1)?.record.version ?? 0) + 1;
      const record: StoredVersion = {
        name, version, createdAt: this.#now(), ...(opts.by !== undefined ? { createdBy: opts.by } : {}), enabled: true,
        envelope: await seal(value, this.#o.keys.current, aadOf(name, version), opts.signal),
      };
      const put = await this.#o.store.put(secretKey(name, version), JSON.stringify(record), { ifModRevision: 0, signal: opts.signal });
      if (put.ok) return infoOf(record);
    }
    throw new SecretsError('secret_conflict', `secret ${name} is being written by others; retry`);
  }

  /** The value of `version` (or the newest enabled version). Disabled versions cannot be read. */
  async get(name: string, opts: { version?: number; signal?: AbortSignal } = {}): Promise<{ info: SecretVersionInfo; value: string }> {
    const r = await this.#pick(name, opts.version, opts.signal);
    if (!r.enabled) throw new SecretsError('secret_invalid', `version ${r.version} of secret ${name} is disabled`);
    const plain = await open(r.envelope, this.#o.keys.all(), aadOf(r.name, r.version), opts.signal);
    try {
      return { info: infoOf(r), value: plain.toString('utf8') };
    } finally {
      plain.fill(0);
    }
  }

  /** Every version of `name`, oldest first (metadata only). */
  async versions(name: string, signal?: AbortSignal): Promise<SecretVersionInfo[]> {
    checkSecretName(name);
    const list = await this.#records(name, signal);
    if (list.length === 0) throw new SecretsError('secret_not_found', `no secret named ${name}`);
    return list.map((x) => infoOf(x.record));
  }

  /** One line per secret (names, versions, times; never values). */
  async list(signal?: AbortSignal): Promise<SecretSummary[]> {
    const { kvs } = await this.#o.store.range(SECRETS_PREFIX, { signal });
    const by = new Map<string, SecretSummary>();
    for (const kv of kvs) {
      const r = parseRecord(kv);
      const s = by.get(r.name) ?? { name: r.name, latest: null, versions: 0, updatedAt: 0 };
      s.versions++;
      s.updatedAt = Math.max(s.updatedAt, r.createdAt);
      if (r.enabled) s.latest = r.version;
      by.set(r.name, s);
    }
    return [...by.values()];
  }

  /** Enables or disables one version (a disabled version cannot be read; `get` without a version skips it). */
  async setEnabled(name: string, version: number, enabled: boolean, signal?: AbortSignal): Promise<SecretVersionInfo> {
    checkSecretName(name);
    for (let attempt = 0; attempt < 20; attempt++) {
      const kv = await this.#o.store.get(secretKey(name, version), { signal });
      if (!kv) throw new SecretsError('secret_not_found', `secret ${name} has no version ${version}`);
      const r = parseRecord(kv);
      if (r.enabled === enabled) return infoOf(r);
      const next = { ...r, enabled };
      const put = await this.#o.store.put(kv.key, JSON.stringify(next), { ifModRevision: kv.modRevision, signal });
      if (put.ok) return infoOf(next);
    }
    throw new SecretsError('secret_conflict', `secret ${name} is being written by others; retry`);
  }

  /** Deletes every version of `name` at once. */
  async delete(name: string, signal?: AbortSignal): Promise<number> {
    checkSecretName(name);
    const list = await this.#records(name, signal);
    if (list.length === 0) throw new SecretsError('secret_not_found', `no secret named ${name}`);
    const r = await this.#o.store.putMany(list.map((x) => ({ key: x.kv.key, delete: true as const, ifModRevision: x.kv.modRevision })), { signal });
    if (!r.ok) throw new SecretsError('secret_conflict', `secret ${name} changed while it was being deleted; retry`);
    return list.length;
  }

  /**
   * Re-wraps every version not sealed under the current master key (master-key rotation), `batchSize` records per
   * store write, each with compare-and-swap, so sets and disables during the rotation are never lost. Every record
   * stays readable throughout (the old key still opens what is not done yet). Returns how many were re-wrapped and
   * how many remain under another key (0 unless records were written with an unknown key).
   */
  async rewrap(opts: { batchSize?: number; signal?: AbortSignal; onBatch?: (done: number) => void | Promise<void> } = {}): Promise<{ rewrapped: number; remaining: number }> {
    const batchSize = Math.max(1, opts.batchSize ?? 100);
    let rewrapped = 0;
    for (let pass = 0; pass < 10; pass++) {
      const current = this.#o.keys.current;
      const { kvs } = await this.#o.store.range(SECRETS_PREFIX, { signal: opts.signal });
      const todo = kvs.filter((kv) => kidOf(parseRecord(kv).envelope) !== current.keyId);
      if (todo.length === 0) return { rewrapped, remaining: 0 };
      let conflicts = 0;
      for (let i = 0; i < todo.length; i += batchSize) {
        const ops = [];
        for (const kv of todo.slice(i, i + batchSize)) {
          const r = parseRecord(kv);
          const plain = await open(r.envelope, this.#o.keys.all(), aadOf(r.name, r.version), opts.signal);
          try {
            const envelope = await seal(plain, current, aadOf(r.name, r.version), opts.signal);
            ops.push({ key: kv.key, value: JSON.stringify({ ...r, envelope }), ifModRevision: kv.modRevision });
          } finally {
            plain.fill(0);
          }
        }
        const put = await this.#o.store.putMany(ops, { signal: opts.signal });
        if (put.ok) {
          rewrapped += ops.length;
          await opts.onBatch?.(rewrapped);
        } else conflicts++; // someone wrote one of these meanwhile: the next pass reads them again
      }
      if (conflicts === 0) return { rewrapped, remaining: 0 };
    }
    const { kvs } = await this.#o.store.range(SECRETS_PREFIX, { signal: opts.signal });
    return { rewrapped, remaining: kvs.filter((kv) => kidOf(parseRecord(kv).envelope) !== this.#o.keys.current.keyId).length };
  }

  /** How many versions are wrapped under each master key id. */
  async keyUsage(signal?: AbortSignal): Promise<Record<string, number>> {
    const { kvs } = await this.#o.store.range(SECRETS_PREFIX, { signal });
    const out: Record<string, number> = {};
    for (const kv of kvs) {
      const kid = kidOf(parseRecord(kv).envelope);
      out[kid] = (out[kid] ?? 0) + 1;
    }
    return out;
  }

  async #records(name: string, signal?: AbortSignal): Promise<Array<{ kv: KeyValue; record: StoredVersion }>> {
    const { kvs } = await this.#o.store.range(`${SECRETS_PREFIX}${name}/`, { signal });
    return kvs.map((kv) => ({ kv, record: parseRecord(kv) }));
  }

  async #pick(name: string, version: number | undefined, signal?: AbortSignal): Promise<StoredVersion> {
    checkSecretName(name);
    if (version !== undefined) {
      if (!Number.isInteger(version) || version < 1) throw new SecretsError('secret_invalid', 'a version is a whole number from 1');
      const kv = await this.#o.store.get(secretKey(name, version), { signal });
      if (!kv) throw new SecretsError('secret_not_found', `secret ${name} has no version ${version}`);
      return parseRecord(kv);
    }
    const list = await this.#records(name, signal);
    if (list.length === 0) throw new SecretsError('secret_not_found', `no secret named ${name}`);
    const latest = list.filter((x) => x.record.enabled).at(-1);
    if (!latest) throw new SecretsError('secret_invalid', `every version of secret ${name} is disabled`);
    return latest.record;
  }
}

// The values of the secrets that NamedValues name (`spec.secret`), opened ahead of time so the snapshot compiler
// (synchronous) can put them into gateway snapshots. Only referenced secrets are held; refreshed when a NamedValue or
// a secret changes. Never logged: errors name the secret and the reason only.
import { parse } from 'yaml';
import { secretRefKey } from '../model/named-value-types.ts';
import type { SecretStore } from '../secrets/secret-store.ts';
import { SECRETS_PREFIX } from '../secrets/secret-store.ts';
import type { ConfigStore } from '../store/config-store.ts';

export const NAMED_VALUE_PREFIX = '/config/NamedValue/';

export interface SecretRef {
  secret: string;
  version?: number;
}

/** What the snapshot compiler reads. */
export interface SecretValueSource {
  /** Changes whenever a held value changes. */
  readonly generation: number;
  /** The values of `refs` that could be opened, keyed as NamedValueInputs.secrets. */
  valuesFor(refs: readonly SecretRef[]): Record<string, string>;
}

/** The secret a NamedValue document names, read leniently (validation is the node's job). */
export function secretRefOf(text: string): SecretRef | undefined {
  let doc: unknown;
  try {
    doc = parse(text, { version: '1.2' });
  } catch {
    return undefined;
  }
  const spec = (doc as { spec?: { secret?: unknown; version?: unknown } } | null)?.spec;
  if (typeof spec?.secret !== 'string') return undefined;
  return { secret: spec.secret, ...(Number.isInteger(spec.version) ? { version: spec.version as number } : {}) };
}

export class SecretValueCache implements SecretValueSource {
  readonly #store: ConfigStore;
  readonly #secrets: SecretStore;
  readonly #onError: (err: unknown) => void;
  readonly #listeners = new Set<() => void>();
  readonly #ac = new AbortController();
  #values = new Map<string, string>();
  #generation = 0;
  #running: Promise<void> | undefined;
  #again = false;

  private constructor(store: ConfigStore, secrets: SecretStore, onError: (err: unknown) => void) {
    this.#store = store;
    this.#secrets = secrets;
    this.#onError = onError;
  }

  /** Opens every referenced secret once, then follows NamedValue and secret changes until close(). */
  static async open(o: { store: ConfigStore; secrets: SecretStore; onError?: (err: unknown) => void }): Promise<SecretValueCache> {
    const c = new SecretValueCache(o.store, o.secrets, o.onError ?? (() => {}));
    const from = (await o.store.revision()) + 1;
    await c.refresh();
    for (const prefix of [NAMED_VALUE_PREFIX, SECRETS_PREFIX]) void c.#follow(prefix, from);
    return c;
  }

  get generation(): number {
    return this.#generation;
  }

  valuesFor(refs: readonly SecretRef[]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const r of refs) {
      const key = secretRefKey(r.secret, r.version);
      const v = this.#values.get(key);
      if (v !== undefined) out[key] = v;
    }
    return out;
  }

  /** Called after the held values changed (the compiler recompiles and streams push). */
  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Re-reads which secrets are named and opens them; concurrent calls coalesce into one more run. */
  refresh(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#load().catch((err: unknown) => this.#ac.signal.aborted || this.#onError(err));
      } while (this.#again && !this.#ac.signal.aborted);
    })().finally(() => (this.#running = undefined));
    return this.#running;
  }

  close(): void {
    this.#ac.abort();
    this.#values.clear();
  }

  async #load(): Promise<void> {
    const signal = this.#ac.signal;
    const { kvs } = await this.#store.range(NAMED_VALUE_PREFIX, { signal });
    const refs = new Map<string, SecretRef>();
    for (const kv of kvs) {
      const r = secretRefOf(kv.value);
      if (r) refs.set(secretRefKey(r.secret, r.version), r);
    }
    const next = new Map<string, string>();
    for (const [key, r] of refs) {
      try {
        next.set(key, (await this.#secrets.get(r.secret, { version: r.version, signal })).value);
      } catch (err) {
        // The node reports the NamedValue as unavailable (a NACK with its line and column); here, why.
        this.#onError(new Error(`secret ${key} named by a NamedValue cannot be opened: ${(err as Error).message}`, { cause: err }));
      }
    }
    const same = next.size === this.#values.size && [...next].every(([k, v]) => this.#values.get(k) === v);
    if (same) return;
    this.#values = next;
    this.#generation++;
    for (const l of this.#listeners) l();
  }

  async #follow(prefix: string, from: number): Promise<void> {
    const signal = this.#ac.signal;
    while (!signal.aborted) {
      try {
        for await (const ev of this.#store.watch(prefix, from, signal)) {
          if (ev.type === 'COMPACTED') from = 0;
          else from = ev.modRevision + 1;
          void this.refresh();
        }
        return; // the store closed
      } catch (err) {
        if (signal.aborted) return;
        this.#onError(err);
        await new Promise((r) => setTimeout(r, 1000).unref());
      }
    }
  }
}

// The /config/ documents in memory, kept current by a store watch: what the snapshot compiler reads on the push path.
import { parse } from 'yaml';
import type { ChangeEvent, ConfigStore } from '../store/config-store.ts';

const CONFIG = '/config/';
/** CA state lives under /ca/: a write there may be a root rotation step, so listeners re-read the trust bundle. */
const CA = '/ca/';

/** One stored resource (`/config/<Kind>/<namespace>/<name>` → one YAML document). */
export interface ConfigDoc {
  key: string;
  kind: string;
  namespace: string;
  name: string;
  /** The document text, ending with a newline. */
  text: string;
  /** The MeshService it is about (MeshRoute `service`, AccessPolicy `target.service`, mesh Backend `meshService`). */
  ref?: string;
  /** Services a MeshRoute's rules split to. */
  targets: string[];
  /** The parsed spec, kept for the Mesh only. */
  spec?: unknown;
  /** The Api an AccessPolicy targets (a gateway gets it). */
  api?: string;
}

export interface ConfigIndexOptions {
  store: ConfigStore;
  signal?: AbortSignal;
  onError?: (err: unknown) => void;
}

/** The reference a document makes, read leniently (validation is the node's job): qualified `namespace/name`. */
export function documentRefs(kind: string, namespace: string, text: string): { ref?: string; targets: string[]; spec?: unknown; api?: string } {
  if (kind !== 'MeshRoute' && kind !== 'AccessPolicy' && kind !== 'Backend' && kind !== 'Mesh') return { targets: [] };
  let doc: unknown;
  try {
    doc = parse(text, { version: '1.2' });
  } catch {
    return { targets: [] };
  }
  const spec = (doc as { spec?: Record<string, unknown> } | null)?.spec;
  if (typeof spec !== 'object' || spec === null) return { targets: [] };
  const q = (s: unknown): string | undefined => (typeof s === 'string' && s !== '' ? (s.includes('/') ? s : `${namespace}/${s}`) : undefined);
  if (kind === 'AccessPolicy') {
    const target = spec.target as { service?: unknown; api?: unknown } | undefined;
    const api = q(target?.api);
    return { ref: q(target?.service), targets: [], ...(api !== undefined ? { api } : {}) };
  }
  if (kind === 'Backend') return { ref: spec.type === 'mesh' ? q(spec.meshService) : undefined, targets: [] };
  if (kind === 'Mesh') return { targets: [], spec };
  const targets = new Set<string>();
  for (const rule of Array.isArray(spec.rules) ? spec.rules : []) {
    const bs = (rule as { backends?: unknown } | null)?.backends;
    for (const b of Array.isArray(bs) ? bs : []) {
      const t = q((b as { service?: unknown } | null)?.service);
      if (t) targets.add(t);
    }
  }
  return { ref: q(spec.service), targets: [...targets] };
}

function docOf(key: string, value: string): ConfigDoc | undefined {
  const [kind, namespace, name, ...rest] = key.slice(CONFIG.length).split('/');
  if (!kind || !namespace || !name || rest.length > 0) return undefined;
  const text = value.endsWith('\n') ? value : `${value}\n`;
  return { key, kind, namespace, name, text, ...documentRefs(kind, namespace, text) };
}

export class ConfigIndex {
  readonly #store: ConfigStore;
  readonly #onError: (err: unknown) => void;
  readonly #ac = new AbortController();
  readonly #listeners = new Set<() => void>();
  #docs = new Map<string, ConfigDoc>();
  #byKind: Map<string, ConfigDoc[]> | undefined;
  #version = 0;
  #pending: ChangeEvent[] = [];
  #flushScheduled = false;

  private constructor(o: ConfigIndexOptions) {
    this.#store = o.store;
    this.#onError = o.onError ?? ((err) => process.stderr.write(`config index: ${(err as Error).message}\n`));
    o.signal?.addEventListener('abort', () => this.close(), { once: true });
  }

  static async open(o: ConfigIndexOptions): Promise<ConfigIndex> {
    const ix = new ConfigIndex(o);
    await ix.#reload();
    void ix.#watchConfig();
    void ix.#watchCa();
    return ix;
  }

  /** The store revision the documents reflect (the revision of the last /config/ change seen, or of the last full read). */
  get version(): number {
    return this.#version;
  }

  /** Documents of one kind in key order; the same array until the next change. */
  byKind(kind: string): readonly ConfigDoc[] {
    if (!this.#byKind) {
      const m = new Map<string, ConfigDoc[]>();
      const keys = [...this.#docs.keys()].sort();
      for (const k of keys) {
        const d = this.#docs.get(k)!;
        let list = m.get(d.kind);
        if (!list) m.set(d.kind, (list = []));
        list.push(d);
      }
      this.#byKind = m;
    }
    return this.#byKind.get(kind) ?? [];
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tells listeners to look again (e.g. the trust bundle changed). */
  notify(): void {
    for (const l of this.#listeners) {
      try {
        l();
      } catch (err) {
        this.#onError(err);
      }
    }
  }

  close(): void {
    this.#ac.abort();
    this.#listeners.clear();
  }

  async #reload(): Promise<void> {
    const { kvs, revision } = await this.#store.range(CONFIG, { signal: this.#ac.signal });
    const docs = new Map<string, ConfigDoc>();
    for (const kv of kvs) {
      const d = docOf(kv.key, kv.value);
      if (d) docs.set(kv.key, d);
    }
    this.#docs = docs;
    this.#byKind = undefined;
    this.#pending = [];
    this.#version = Math.max(this.#version, revision);
  }

  // Events of one revision arrive one by one: apply them together, after the watch has handed over the whole batch,
  // so nobody compiles half a transaction under the new version.
  #flush(): void {
    this.#flushScheduled = false;
    if (this.#pending.length === 0) return;
    for (const ev of this.#pending) {
      if (ev.type === 'PUT') {
        const d = docOf(ev.key, ev.value!);
        if (d) this.#docs.set(ev.key, d);
      } else {
        this.#docs.delete(ev.key);
      }
      this.#version = Math.max(this.#version, ev.modRevision);
    }
    this.#pending = [];
    this.#byKind = undefined;
    this.notify();
  }

  async #watchConfig(): Promise<void> {
    const signal = this.#ac.signal;
    let from = this.#version + 1;
    while (!signal.aborted) {
      try {
        let compacted = false;
        for await (const ev of this.#store.watch(CONFIG, from, signal)) {
          if (ev.type === 'COMPACTED') {
            compacted = true;
            break;
          }
          this.#pending.push(ev);
          from = ev.modRevision + 1;
          if (!this.#flushScheduled) {
            this.#flushScheduled = true;
            setImmediate(() => this.#flush());
          }
        }
        if (!compacted) return; // the store closed or we were closed
        await this.#reload();
        from = this.#version + 1;
        this.notify();
      } catch (err) {
        if (signal.aborted) return;
        this.#onError(err);
        await new Promise((r) => setTimeout(r, 1000).unref());
        try {
          await this.#reload();
          from = this.#version + 1;
          this.notify();
        } catch {
          // try again on the next pass
        }
      }
    }
  }

  async #watchCa(): Promise<void> {
    const signal = this.#ac.signal;
    while (!signal.aborted) {
      try {
        let compacted = false;
        for await (const ev of this.#store.watch(CA, 0, signal)) {
          if (ev.type === 'COMPACTED') compacted = true;
          else this.notify();
        }
        if (!compacted) return;
      } catch (err) {
        if (signal.aborted) return;
        this.#onError(err);
        await new Promise((r) => setTimeout(r, 1000).unref());
      }
    }
  }
}

// The endpoint registry: sidecars' inbound addresses by service, kept in the store and expired when a node goes away.
import type { ConfigStore } from '../store/config-store.ts';
import type { EndpointRecord } from '../model/snapshot.ts';

const PREFIX = '/registry/';
export const DEFAULT_REGISTRY_GRACE_MS = 30_000;

export interface EndpointRegistryOptions {
  store: ConfigStore;
  now?: () => number;
  /** A record outlives its node's stream by this long (a restart or a network blip keeps it), then it is removed. */
  graceMs?: number;
  /** How often expired records are looked for; default a third of the grace period. */
  sweepIntervalMs?: number;
  signal?: AbortSignal;
}

type ChangeListener = (services: ReadonlySet<string>) => void;

function keyOf(service: string, node: string): string {
  return `${PREFIX}${service}/${node}`;
}

/** Checks a registration from a node; undefined when valid, else the problem. */
export function endpointProblem(r: { address?: unknown; labels?: unknown; healthy?: unknown }): string | undefined {
  if (typeof r.address !== 'string' || !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(r.address) || Number(r.address.slice(r.address.lastIndexOf(':') + 1)) > 65535) {
    return 'address must be host:port (an IPv6 host in brackets)';
  }
  if (r.labels !== undefined) {
    if (typeof r.labels !== 'object' || r.labels === null || Array.isArray(r.labels)) return 'labels must be an object of strings';
    const entries = Object.entries(r.labels);
    if (entries.length > 64) return 'at most 64 labels';
    for (const [k, v] of entries) {
      if (!/^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/.test(k) || typeof v !== 'string' || v.length > 256) return `label "${k}" must be a short name with a string value`;
    }
  }
  if (r.healthy !== undefined && typeof r.healthy !== 'boolean') return 'healthy must be true or false';
  return undefined;
}

/**
 * One writer (this control plane) keeps an in-memory copy and writes through to the store, so reads on the push path
 * never touch the store. `revision` is the store revision of the last registry write: monotonic across restarts.
 */
export class EndpointRegistry {
  readonly #store: ConfigStore;
  readonly #now: () => number;
  readonly #graceMs: number;
  /** Qualified service → node → record. */
  readonly #byService = new Map<string, Map<string, EndpointRecord>>();
  /** Sorted arrays handed out, rebuilt only when the service changes (so callers can compare by identity). */
  readonly #lists = new Map<string, readonly EndpointRecord[]>();
  readonly #streams = new Map<string, number>();
  readonly #goneSince = new Map<string, number>();
  readonly #listeners = new Set<ChangeListener>();
  readonly #timer: NodeJS.Timeout;
  #revision = 0;
  #closed = false;

  private constructor(o: EndpointRegistryOptions) {
    this.#store = o.store;
    this.#now = o.now ?? Date.now;
    this.#graceMs = o.graceMs ?? DEFAULT_REGISTRY_GRACE_MS;
    const every = o.sweepIntervalMs ?? Math.max(250, Math.floor(this.#graceMs / 3));
    this.#timer = setInterval(() => void this.sweep().catch(() => {}), every);
    this.#timer.unref();
  }

  /** Loads what the store holds; every loaded node gets the grace period from now to come back. */
  static async open(o: EndpointRegistryOptions): Promise<EndpointRegistry> {
    const r = new EndpointRegistry(o);
    const { kvs, revision } = await o.store.range(PREFIX, { signal: o.signal });
    r.#revision = revision;
    const t = r.#now();
    for (const kv of kvs) {
      const rec = JSON.parse(kv.value) as EndpointRecord;
      r.#set(rec);
      r.#goneSince.set(rec.node, t);
    }
    return r;
  }

  get revision(): number {
    return this.#revision;
  }

  /** Qualified names of the services with at least one record. */
  services(): string[] {
    return [...this.#byService.keys()].sort();
  }

  /** The service's records sorted by node; the same array until the service changes. */
  endpoints(service: string): readonly EndpointRecord[] {
    let list = this.#lists.get(service);
    if (!list) {
      const m = this.#byService.get(service);
      list = Object.freeze(m ? [...m.values()].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0)) : []);
      this.#lists.set(service, list);
    }
    return list;
  }

  /** Registers or updates a node's endpoint for its service. */
  async register(rec: EndpointRecord, signal?: AbortSignal): Promise<void> {
    const value: EndpointRecord = { service: rec.service, node: rec.node, address: rec.address, labels: { ...rec.labels }, healthy: rec.healthy, spiffeId: rec.spiffeId };
    const old = this.#byService.get(rec.service)?.get(rec.node);
    if (old && JSON.stringify(old) === JSON.stringify(value)) return; // a repeated registration is not a change
    const w = await this.#store.put(keyOf(rec.service, rec.node), JSON.stringify(value), { signal });
    this.#revision = Math.max(this.#revision, w.revision);
    this.#set(value);
    if (!this.#streams.has(rec.node) && !this.#goneSince.has(rec.node)) this.#goneSince.set(rec.node, this.#now());
    this.#emit(new Set([rec.service]));
  }

  /** Removes one node's endpoint (drain); true when there was one. */
  async deregister(service: string, node: string, signal?: AbortSignal): Promise<boolean> {
    if (!this.#byService.get(service)?.has(node)) return false;
    const w = await this.#store.delete(keyOf(service, node), { signal });
    this.#revision = Math.max(this.#revision, w.revision);
    this.#unset(service, node);
    this.#emit(new Set([service]));
    return true;
  }

  /** A node's stream opened (several may overlap during a reconnect). */
  nodeConnected(node: string): void {
    this.#streams.set(node, (this.#streams.get(node) ?? 0) + 1);
    this.#goneSince.delete(node);
  }

  /** A node's stream closed: its records expire after the grace period unless it comes back. */
  nodeDisconnected(node: string): void {
    const n = (this.#streams.get(node) ?? 1) - 1;
    if (n > 0) {
      this.#streams.set(node, n);
      return;
    }
    this.#streams.delete(node);
    this.#goneSince.set(node, this.#now());
  }

  /** Removes the records of nodes gone longer than the grace period; returns how many. */
  async sweep(): Promise<number> {
    if (this.#closed) return 0;
    const t = this.#now();
    const expired: Array<{ service: string; node: string }> = [];
    for (const [service, m] of this.#byService) {
      for (const node of m.keys()) {
        const since = this.#goneSince.get(node);
        if (since !== undefined && t - since >= this.#graceMs) expired.push({ service, node });
      }
    }
    if (expired.length === 0) return 0;
    const w = await this.#store.putMany(expired.map((e) => ({ key: keyOf(e.service, e.node), delete: true as const })));
    this.#revision = Math.max(this.#revision, w.revision);
    for (const e of expired) {
      this.#unset(e.service, e.node);
      if (!this.#streams.has(e.node)) this.#goneSince.delete(e.node);
    }
    this.#emit(new Set(expired.map((e) => e.service)));
    return expired.length;
  }

  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  close(): void {
    this.#closed = true;
    clearInterval(this.#timer);
    this.#listeners.clear();
  }

  #set(rec: EndpointRecord): void {
    let m = this.#byService.get(rec.service);
    if (!m) this.#byService.set(rec.service, (m = new Map()));
    m.set(rec.node, rec);
    this.#lists.delete(rec.service);
  }

  #unset(service: string, node: string): void {
    const m = this.#byService.get(service);
    m?.delete(node);
    if (m?.size === 0) this.#byService.delete(service);
    this.#lists.delete(service);
  }

  #emit(services: ReadonlySet<string>): void {
    for (const l of this.#listeners) l(services);
  }
}

// What the control plane knows about each node: identity, the snapshot version sent and acknowledged, connection state,
// the certificate last issued to it (which root it chains to), the trust bundle last sent, and its app's address.
import { createHash } from 'node:crypto';
import type { ConfigStore } from '../store/config-store.ts';
import type { NodeIdentity, SnapshotAck } from '../model/snapshot.ts';

const PREFIX = '/nodes/';

/** The version-skew policy, stated where node versions are shown. */
export const VERSION_SKEW_POLICY = 'nodes accept snapshots of schema major 1, any minor; a node NACKs an unknown major and keeps its last good snapshot';

/** Where a sidecar's local app listens (what `lockgate check` looks at: TCP lets other local processes skip mTLS). */
export interface AppAddress {
  /** `host:port` for tcp, an absolute socket path for unix. */
  address: string;
  transport: 'tcp' | 'unix';
}

/** A certificate the control plane issued to a node (at join or renewal). */
export interface IssuedRecord {
  /** SHA-256 fingerprint (as openssl prints it) of the root the certificate chains to. */
  root: string | undefined;
  notAfter: number;
  /** The control plane's clock at issuance (notBefore is backdated for skew, so it says less about the life used). */
  issuedAt: number;
}

/** The identity of a trust bundle: SHA-256 (hex) of its PEM roots, each trimmed, joined by newlines. */
export function bundleFingerprint(bundle: readonly string[]): string {
  return createHash('sha256').update(bundle.map((p) => p.trim()).join('\n')).digest('hex');
}

export interface NodeStatus {
  id: string;
  identity: NodeIdentity;
  joinedAt: number;
  connected: boolean;
  /** Last time the node's stream was open or it called the API. */
  lastSeen: number;
  /** The snapshot schema the node says it speaks (sent when its stream opens). */
  schema?: string;
  /** The last snapshot sent: config version and endpoints version. */
  sentVersion?: number;
  sentEndpointsVersion?: number;
  sentAt?: number;
  /** The last version the node accepted. */
  ackedVersion?: number;
  /** The node's last answer, ACK or NACK, with the NACK's reason. */
  lastAnswer?: { version: number; ok: boolean; reason?: string; at: number };
  /** Fingerprint of the root the node's last issued certificate chains to (see IssuedRecord). */
  root?: string;
  certificateNotAfter?: number;
  certificateIssuedAt?: number;
  /** bundleFingerprint() of the trust bundle last sent to the node (in a snapshot, or a join or renew answer). */
  bundleFingerprint?: string;
  /** The sidecar's local app, when it said where it runs. */
  app?: AppAddress;
}

export interface NodeTrackerOptions {
  store: ConfigStore;
  now?: () => number;
  /** Changes are written at most this often (a busy mesh acks a lot); joins are written at once. */
  flushDelayMs?: number;
  /** bundleFingerprint() of the trust bundle a snapshot sent now carries (the CA's current one). */
  bundleFingerprint?: () => string;
  signal?: AbortSignal;
  onError?: (err: unknown) => void;
}

export class NodeTracker {
  readonly #store: ConfigStore;
  readonly #now: () => number;
  readonly #flushDelayMs: number;
  readonly #nodes = new Map<string, NodeStatus>();
  readonly #streams = new Map<string, number>();
  readonly #dirty = new Set<string>();
  readonly #onError: (err: unknown) => void;
  readonly #bundleFingerprint: (() => string) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(o: NodeTrackerOptions) {
    this.#store = o.store;
    this.#now = o.now ?? Date.now;
    this.#flushDelayMs = o.flushDelayMs ?? 1000;
    this.#bundleFingerprint = o.bundleFingerprint;
    this.#onError = o.onError ?? ((err) => process.stderr.write(`node tracker: ${(err as Error).message}\n`));
  }

  static async open(o: NodeTrackerOptions): Promise<NodeTracker> {
    const t = new NodeTracker(o);
    const { kvs } = await o.store.range(PREFIX, { signal: o.signal });
    for (const kv of kvs) {
      const n = JSON.parse(kv.value) as NodeStatus;
      t.#nodes.set(n.id, { ...n, connected: false }); // no stream survives a control-plane restart
    }
    return t;
  }

  get(id: string): NodeStatus | undefined {
    const n = this.#nodes.get(id);
    return n && { ...n };
  }

  list(): NodeStatus[] {
    return [...this.#nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map((n) => ({ ...n }));
  }

  /**
   * A node joined (or re-joined with a new token): written to the store before the join answers. `issued` is the
   * certificate it receives and `bundle` the bundleFingerprint() of the trust bundle in the answer.
   */
  async joined(id: string, identity: NodeIdentity, signal?: AbortSignal, more: { issued?: IssuedRecord; bundle?: string; app?: AppAddress } = {}): Promise<void> {
    const t = this.#now();
    const prev = this.#nodes.get(id);
    const n: NodeStatus = prev ? { ...prev, identity, joinedAt: t, lastSeen: t } : { id, identity, joinedAt: t, connected: false, lastSeen: t };
    if (more.issued) setIssued(n, more.issued);
    if (more.bundle !== undefined) n.bundleFingerprint = more.bundle;
    if (more.app !== undefined) n.app = { ...more.app };
    this.#nodes.set(id, n);
    this.#dirty.delete(id);
    await this.#store.put(PREFIX + id, JSON.stringify(n), { signal });
  }

  connected(id: string, schema: string | undefined): void {
    this.#streams.set(id, (this.#streams.get(id) ?? 0) + 1);
    this.#update(id, (n) => {
      n.connected = true;
      if (schema !== undefined) n.schema = schema;
    });
  }

  disconnected(id: string): void {
    const left = (this.#streams.get(id) ?? 1) - 1;
    if (left > 0) this.#streams.set(id, left);
    else this.#streams.delete(id);
    this.#update(id, (n) => {
      n.connected = left > 0;
    });
  }

  seen(id: string): void {
    this.#update(id, () => {});
  }

  sent(id: string, version: number, endpointsVersion: number): void {
    this.#update(id, (n) => {
      n.sentVersion = version;
      n.sentEndpointsVersion = endpointsVersion;
      n.sentAt = this.#now();
      // Called right after the snapshot was compiled, so the CA's bundle now is the one it carries.
      if (this.#bundleFingerprint) n.bundleFingerprint = this.#bundleFingerprint();
    });
  }

  /** The node renewed: `issued` is its new certificate, `bundle` the fingerprint of the bundle in the answer. */
  issued(id: string, issued: IssuedRecord, bundle?: string): void {
    this.#update(id, (n) => {
      setIssued(n, issued);
      if (bundle !== undefined) n.bundleFingerprint = bundle;
    });
  }

  /** Where the node's app listens (undefined: it no longer says). */
  app(id: string, app: AppAddress | undefined): void {
    this.#update(id, (n) => {
      if (app === undefined) delete n.app;
      else n.app = { ...app };
    });
  }

  /** Records an ACK or NACK (reasons are cut to 4 KiB: they are for people). */
  answered(ack: SnapshotAck): void {
    const t = this.#now();
    this.#update(ack.node, (n) => {
      n.lastAnswer = { version: ack.version, ok: ack.ok, at: t, ...(ack.ok ? {} : { reason: String(ack.reason ?? 'no reason given').slice(0, 4096) }) };
      if (ack.ok) n.ackedVersion = Math.max(n.ackedVersion ?? 0, ack.version);
    });
  }

  /** Writes pending changes now. */
  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const ids = [...this.#dirty];
    this.#dirty.clear();
    const ops = ids.flatMap((id) => {
      const n = this.#nodes.get(id);
      return n ? [{ key: PREFIX + id, value: JSON.stringify(n) }] : [];
    });
    if (ops.length === 0) return this.#flushing;
    this.#flushing = this.#flushing.then(() => this.#store.putMany(ops)).then(() => {}, (err) => this.#onError(err));
    return this.#flushing;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const [id, n] of this.#nodes) {
      if (n.connected) {
        n.connected = false;
        this.#dirty.add(id);
      }
    }
    await this.flush();
  }

  #update(id: string, change: (n: NodeStatus) => void): void {
    const n = this.#nodes.get(id);
    if (!n) return;
    change(n);
    n.lastSeen = this.#now();
    if (this.#closed) return;
    this.#dirty.add(id);
    if (!this.#timer) {
      this.#timer = setTimeout(() => void this.flush(), this.#flushDelayMs);
      this.#timer.unref();
    }
  }
}

function setIssued(n: NodeStatus, issued: IssuedRecord): void {
  if (issued.root === undefined) delete n.root;
  else n.root = issued.root;
  n.certificateNotAfter = issued.notAfter;
  n.certificateIssuedAt = issued.issuedAt;
}

// Compiles per-node snapshots from the store's /config/ documents, the endpoint registry and the trust bundle.
//
// What each node gets (the rest of the mesh's config is none of its business):
// - a sidecar of service S: the Mesh, every MeshService and every MeshRoute (with the endpoints of every registered
//   service), and the AccessPolicies that target S. Every service, not only those S is allowed to call: whether a
//   call is allowed is decided, and logged with its reasons, by the destination's sidecar (deny rules, audit mode),
//   so a caller must be able to route the call; and a policy change then re-pushes only the target's sidecars.
// - a gateway: the edge kinds (its Gateway, Apis, Backends, Products, version sets, policies, fragments), the Mesh,
//   every MeshService, the MeshRoutes of the services its `type: mesh` Backends name, and the endpoints of those
//   services (and of the services those routes split to).
// Compiled once per config version and node kind/namespace/service, and shared by every node of that service.
import type { ConfigStore } from '../store/config-store.ts';
import { parseDuration } from '../lib/duration.ts';
import { MAX_LEAF_LIFETIME_MS, MIN_LEAF_LIFETIME_MS } from '../ca/certificate-authority.ts';
import { DEFAULT_MESH } from '../model/mesh-types.ts';
import { SNAPSHOT_SCHEMA, type AssertionKeys, type EndpointRecord, type NodeIdentity, type Snapshot } from '../model/snapshot.ts';
import { ConfigIndex, type ConfigDoc } from './config-index.ts';
import { secretRefOf, type SecretRef, type SecretValueSource } from './secret-values.ts';

/** Edge kinds a gateway gets, besides the Mesh and the MeshServices. */
export const GATEWAY_KINDS: readonly string[] = ['Gateway', 'Api', 'Backend', 'Product', 'ApiVersionSet', 'ApiPolicy', 'PolicyFragment', 'NamedValue', 'IdentityProvider'];

/** What the compiler reads from the registry. */
export interface EndpointSource {
  readonly revision: number;
  services(): string[];
  endpoints(service: string): readonly EndpointRecord[];
}

export interface SnapshotCompilerOptions {
  store: ConfigStore;
  registry: EndpointSource;
  /** The CA's current roots (several during a root rotation). */
  trustBundle: () => string[];
  /** The end-user assertion keys every node gets (issuer, published keys, signing key); absent = none. */
  assertionKeys?: { current(): AssertionKeys; key(): string };
  /** Values of the secrets NamedValues name: a gateway's snapshot carries those of its NamedValues (beside the config). */
  secretValues?: SecretValueSource;
  /** Approved just-in-time access: AccessGrant documents for the nodes that enforce their targets. */
  grants?: GrantSource;
  /** The audit trail's signed head to publish (a revision that moves when a newer one should go out). */
  auditHead?: { readonly revision: number; current(): Snapshot['auditHead'] };
  signal?: AbortSignal;
  onError?: (err: unknown) => void;
}

/** AccessGrant documents (text, `---`-joined, each ending with a newline) for one node, and a revision that moves with them. */
export interface GrantSource {
  readonly revision: number;
  docsFor(identity: NodeIdentity): string;
}

interface ConfigPart {
  version: number;
  text: string;
  /** Services whose endpoints the node gets; null = every registered service. */
  services: readonly string[] | null;
  /** The secrets its NamedValues name. */
  secretRefs?: SecretRef[];
}

interface Built {
  snapshot: Snapshot;
  bundleKey: string;
  endpointsVersion: number;
}

type KeySource = NonNullable<SnapshotCompilerOptions['assertionKeys']>;

export function identityKey(id: NodeIdentity): string {
  return `${id.kind}/${id.namespace}/${id.service}`;
}

function joinDocs(docs: readonly ConfigDoc[]): string {
  return docs.map((d) => d.text).join('---\n');
}

function sameEndpoints(a: Record<string, readonly EndpointRecord[]>, b: Record<string, readonly EndpointRecord[]>): boolean {
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  for (const k of ka) if (a[k] !== b[k]) return false;
  return true;
}

export class SnapshotCompiler {
  readonly #watcher: ConfigIndex;
  readonly #registry: EndpointSource;
  readonly #trustBundle: () => string[];
  readonly #assertionKeys: KeySource | undefined;
  readonly #grants: GrantSource | undefined;
  readonly #auditHead: SnapshotCompilerOptions['auditHead'];
  readonly #secretValues: SecretValueSource | undefined;
  readonly #parts = new Map<string, ConfigPart>();
  readonly #built = new Map<string, Built>();
  #sidecarShared: { version: number; text: string } | undefined;

  private constructor(watcher: ConfigIndex, o: SnapshotCompilerOptions) {
    this.#watcher = watcher;
    this.#registry = o.registry;
    this.#trustBundle = o.trustBundle;
    this.#assertionKeys = o.assertionKeys;
    this.#grants = o.grants;
    this.#auditHead = o.auditHead;
    this.#secretValues = o.secretValues;
  }

  static async open(o: SnapshotCompilerOptions): Promise<SnapshotCompiler> {
    const watcher = await ConfigIndex.open({ store: o.store, signal: o.signal, onError: o.onError });
    return new SnapshotCompiler(watcher, o);
  }

  /** The config version: the store revision the current /config/ documents were read at. */
  get version(): number {
    return this.#watcher.version;
  }

  /** Called after the config or the trust bundle changed (bursts are not coalesced here: streams do that). */
  onChange(listener: () => void): () => void {
    return this.#watcher.onChange(listener);
  }

  /** Mesh-wide settings the control plane itself needs (certificate lifetime for join and renew). */
  meshSettings(): { trustDomain: string; certificateLifetime: number } {
    const mesh = this.#watcher.byKind('Mesh')[0];
    const spec = (mesh?.spec ?? {}) as { trustDomain?: unknown; certificateLifetime?: unknown };
    const life = typeof spec.certificateLifetime === 'string' || typeof spec.certificateLifetime === 'number' ? parseDuration(spec.certificateLifetime) : undefined;
    return {
      trustDomain: typeof spec.trustDomain === 'string' ? spec.trustDomain : DEFAULT_MESH.trustDomain,
      certificateLifetime: life !== undefined && life >= MIN_LEAF_LIFETIME_MS && life <= MAX_LEAF_LIFETIME_MS ? life : DEFAULT_MESH.certificateLifetime,
    };
  }

  /**
   * The node's snapshot. Returns the very same object while nothing this node gets has changed (its version then
   * stays that of the config it was built from), so a stream pushes only when `compile(...) !== lastSent`.
   */
  compile(identity: NodeIdentity): Snapshot {
    const key = identityKey(identity);
    const part = this.#configPart(identity, key);
    const endpointsVersion = this.#registry.revision;
    const bundle = this.#trustBundle();
    // The assertion keys change like the bundle does (rotation steps): one key for both.
    // A changed secret value is a new snapshot for the nodes whose NamedValues name secrets.
    const secretRefs = part.secretRefs ?? [];
    const secretsKey = secretRefs.length > 0 && this.#secretValues ? this.#secretValues.generation : '';
    const bundleKey = `${bundle.join('\n')}\0${this.#assertionKeys?.key() ?? ''}\0${secretsKey}\0${this.#grants?.revision ?? 0}\0${this.#auditHead?.revision ?? 0}`;
    const prev = this.#built.get(key);
    if (prev && prev.snapshot.version === part.version && prev.endpointsVersion === endpointsVersion && prev.bundleKey === bundleKey) return prev.snapshot;
    const endpoints: Record<string, readonly EndpointRecord[]> = {};
    for (const s of part.services ?? this.#registry.services()) {
      const list = this.#registry.endpoints(s);
      if (list.length > 0) endpoints[s] = list;
    }
    // Grants ride in the config text (AccessGrant documents), so nodes validate and apply them like any config.
    const grantText = this.#grants?.docsFor(identity) ?? '';
    const text = grantText === '' ? part.text : part.text === '' ? grantText : `${part.text}---\n${grantText}`;
    if (prev && prev.snapshot.config === text && prev.bundleKey === bundleKey && sameEndpoints(prev.snapshot.endpoints, endpoints)) {
      this.#built.set(key, { ...prev, endpointsVersion });
      return prev.snapshot;
    }
    const snapshot: Snapshot = {
      schema: SNAPSHOT_SCHEMA,
      version: part.version,
      endpointsVersion,
      node: { kind: identity.kind, namespace: identity.namespace, service: identity.service, spiffeId: identity.spiffeId },
      config: text,
      endpoints: endpoints as Record<string, EndpointRecord[]>,
      trustBundle: bundle,
      ...(this.#assertionKeys ? { identity: this.#assertionKeys.current() } : {}),
      ...(this.#auditHead?.current() ? { auditHead: this.#auditHead.current() } : {}),
      ...(secretRefs.length > 0 && this.#secretValues ? { secrets: this.#secretValues.valuesFor(secretRefs) } : {}),
    };
    this.#built.set(key, { snapshot, bundleKey, endpointsVersion });
    return snapshot;
  }

  /** Re-reads the trust bundle (after a root rotation step) and tells listeners when it changed. */
  trustBundleChanged(): void {
    this.#watcher.notify();
  }

  close(): void {
    this.#watcher.close();
  }

  #configPart(identity: NodeIdentity, key: string): ConfigPart {
    const version = this.#watcher.version;
    const cached = this.#parts.get(key);
    if (cached?.version === version) return cached;
    const part = identity.kind === 'gateway' ? this.#gatewayPart(identity, version) : this.#sidecarPart(identity, version);
    // Keep the previous text when it did not change, so compile() can tell by identity and skip a push.
    if (cached && cached.text === part.text) part.text = cached.text;
    this.#parts.set(key, part);
    return part;
  }

  #sidecarPart(identity: NodeIdentity, version: number): ConfigPart {
    const w = this.#watcher;
    if (this.#sidecarShared?.version !== version) {
      const shared = joinDocs([...w.byKind('Mesh'), ...w.byKind('MeshService'), ...w.byKind('MeshRoute')]);
      this.#sidecarShared = { version, text: shared };
    }
    const self = `${identity.namespace}/${identity.service}`;
    const policies = w.byKind('AccessPolicy').filter((d) => d.ref === self);
    const shared = this.#sidecarShared.text;
    const text = policies.length === 0 ? shared : shared === '' ? joinDocs(policies) : `${shared}---\n${joinDocs(policies)}`;
    return { version, text, services: null };
  }

  #gatewayPart(identity: NodeIdentity, version: number): ConfigPart {
    const w = this.#watcher;
    const gateways = w.byKind('Gateway');
    const own = gateways.filter((d) => d.namespace === identity.namespace && d.name === identity.service);
    // The Gateway named after this node; else the only one there is; else none (the data plane's default listeners).
    const gateway = own.length > 0 ? own : gateways.length === 1 ? gateways : [];
    const backends = w.byKind('Backend');
    const services = new Set<string>();
    for (const b of backends) if (b.ref) services.add(b.ref);
    const routes = w.byKind('MeshRoute').filter((r) => r.ref !== undefined && services.has(r.ref));
    for (const r of routes) for (const t of r.targets) services.add(t);
    const docs = [
      ...w.byKind('Mesh'), ...gateway,
      ...GATEWAY_KINDS.filter((k) => k !== 'Gateway').flatMap((k) => w.byKind(k)),
      ...w.byKind('MeshService'), ...routes,
      // AccessPolicies of the edge: those that target an Api (the gateway decides them; issue 5 §3).
      ...w.byKind('AccessPolicy').filter((d) => d.api !== undefined),
    ];
    const secretRefs = w.byKind('NamedValue').map((d) => secretRefOf(d.text)).filter((r): r is SecretRef => r !== undefined);
    return { version, text: joinDocs(docs), services: [...services].sort(), ...(secretRefs.length > 0 ? { secretRefs } : {}) };
  }
}

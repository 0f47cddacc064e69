// The snapshot: what the control plane sends each node and the node keeps on disk (the contract between the two planes).

/** `major.minor`. A node refuses (NACKs) a snapshot whose major it does not know; minors only add optional fields. */
export const SNAPSHOT_SCHEMA = '1.1';

/** Version-skew policy: a node accepts snapshots of its own major version and any minor version. */
export function snapshotSchemaSupported(schema: string): boolean {
  const [major] = SNAPSHOT_SCHEMA.split('.');
  return typeof schema === 'string' && schema.split('.')[0] === major && /^\d+\.\d+$/.test(schema);
}

export type NodeKind = 'gateway' | 'sidecar';

/** A node's identity as the control plane knows it (from its certificate, never from what it claims). */
export interface NodeIdentity {
  kind: NodeKind;
  namespace: string;
  /** The service a sidecar stands beside; for a gateway, the gateway's own workload name. */
  service: string;
  /** `spiffe://<trust-domain>/ns/<namespace>/sa/<service>`. */
  spiffeId: string;
}

/** A registered endpoint of a mesh service: a sidecar's inbound listener. */
export interface EndpointRecord {
  /** Qualified `namespace/service`. */
  service: string;
  /** Node id (unique per sidecar process). */
  node: string;
  /** Address other sidecars connect to: `host:port` of the inbound mTLS listener. */
  address: string;
  /** `region`, `zone`, `version` and any other labels. */
  labels: Record<string, string>;
  healthy: boolean;
  /** The workload's SPIFFE ID: callers check the peer certificate against it. */
  spiffeId: string;
}

export interface Snapshot {
  schema: string;
  /** The config store revision this snapshot was compiled from (monotonic). */
  version: number;
  /** The registry's revision, so a node can tell an endpoint change from a config change. */
  endpointsVersion: number;
  node: NodeIdentity;
  /**
   * The config documents this node needs, as YAML text (several documents): a gateway gets the edge
   * kinds, a sidecar the Mesh, MeshServices it serves or calls, their MeshRoutes and AccessPolicies.
   * Nodes parse it with the same loader as files (`parseConfigText`), so problems have line and column.
   */
  config: string;
  /** Endpoints of every service the node may call, by qualified service name. */
  endpoints: Record<string, EndpointRecord[]>;
  /** PEM root certificates the node trusts (several during a root rotation). */
  trustBundle: string[];
  /** End-user assertion keys (schema 1.1): the issuer, the published keys, and the key this node signs with. */
  identity?: AssertionKeys;
  /**
   * The audit trail's signed head (count, last hash) as of at most a few seconds ago (schema 1.1): every node keeps
   * one in its last-good snapshot, so a trail cut back on the control plane disagrees with heads kept elsewhere
   * (`lockgate audit verify --head FILE`).
   */
  auditHead?: { version: 1; algorithm: 'Ed25519'; keyId: string; signature: string; count: number; lastHash: string; time: string };
  /**
   * Values of the control-plane secrets the config's NamedValues name (`spec.secret`), keyed `name` or `name@version`
   * (named-value-types.ts secretRefKey). The node substitutes them when it loads `config`, which never holds them.
   * Absent when the config names none (an optional field: schema 1.1).
   */
  secrets?: Record<string, string>;
}

/** A public key as published in snapshots and at /.well-known/lockgate/jwks.json. */
export interface PublicJwk {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  kid: string;
  alg: 'ES256';
  use: 'sig';
}

/** What a node is given: the issuer, the keys it accepts, and (for nodes that mint) the key it signs with. */
export interface AssertionKeys {
  issuer: string;
  keys: PublicJwk[];
  signing?: PublicJwk & { d: string };
}


/** A node's answer to a snapshot. */
export interface SnapshotAck {
  node: string;
  version: number;
  ok: boolean;
  /** For a NACK: why (problems, an unknown schema major, …). */
  reason?: string;
}

// The mesh vocabulary (Mesh, MeshService, MeshRoute, AccessPolicy): the types live in types.ts (Config needs them); the defaults live here.
import type { MeshResource, MeshSpec } from './types.ts';

export type {
  AccessDefault,
  MtlsMode,
  MeshSpec,
  MeshPortProtocol,
  MeshPort,
  MeshTimeouts,
  MeshServiceSpec,
  MeshRouteMatch,
  MeshRouteBackend,
  MeshFault,
  MeshRouteRule,
  MeshRouteSpec,
  AccessRule,
  AccessPolicySpec,
  MeshResource,
  MeshServiceResource,
  MeshRouteResource,
  AccessPolicyResource,
} from './types.ts';

/** The mesh defaults (reference/mesh.md Appendix B): used when a config has no `kind: Mesh`. */
export const DEFAULT_MESH: MeshSpec = {
  trustDomain: 'lockgate.local',
  mtls: 'strict',
  defaultAccess: 'audit',
  certificateLifetime: 24 * 3600_000,
  maxHops: 16,
};

/** The Mesh resource a config without `kind: Mesh` gets (namespace `default`, name `default`). */
export function defaultMeshResource(): MeshResource {
  return {
    apiVersion: 'lockgate.dev/v1alpha1',
    kind: 'Mesh',
    metadata: { name: 'default', namespace: 'default', labels: {} },
    spec: { ...DEFAULT_MESH },
  };
}

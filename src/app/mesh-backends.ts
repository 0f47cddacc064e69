// Completes `type: mesh` Backends for the data plane: endpoints from the registry, mTLS with the node's own certificate.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { workloadId } from '../lib/spiffe-id.ts';
import type { EndpointRecord } from '../model/snapshot.ts';
import type { BackendResource, BackendSpec, Config, Endpoint, UpstreamTls } from '../model/types.ts';
import type { CertFiles } from './sidecar-config.ts';

/** Who the node is in the mesh: its certificate files and trust domain. */
export interface MeshClient {
  /** cert.pem (leaf + intermediate), key.pem, bundle.pem and a generation that changes with their contents. */
  certs: CertFiles;
  /** The trust domain of the node's certificate (a peer's expected ID while none is registered). */
  trustDomain: string;
}

/** A Backend the data plane can call a MeshService through (not a split, which has legs of its own). */
function isMeshBackend(b: BackendResource): boolean {
  return b.spec.type === 'mesh' && b.spec.meshService !== undefined && b.spec.split === undefined;
}

/** The expected workload ID of a service that has no registered endpoint to name one. */
function serviceId(trustDomain: string, service: string): string {
  const [ns, name] = service.split('/');
  return workloadId(trustDomain, ns, name);
}

/** A copy of `config` with some Backends' specs replaced, and a version that moves when any replacement does. */
function withBackends(config: Config, specs: Map<string, BackendSpec>): Config {
  if (specs.size === 0) return config;
  const backends = new Map(config.backends);
  const h = createHash('sha256').update(config.version);
  for (const [key, spec] of [...specs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    backends.set(key, { ...config.backends.get(key)!, spec });
    h.update('\0').update(key).update('\0').update(JSON.stringify(spec));
  }
  // The data plane reuses a cluster whose spec is unchanged; the version is what /config and the metrics show.
  return { ...config, backends, version: h.digest('hex').slice(0, 12) };
}

/**
 * Joined mode: every `type: mesh` Backend gets the MeshService's registered, healthy endpoints (`https://<address>`,
 * with their labels, for locality and subsets) and mTLS with the node's own certificate; the peer is verified against
 * the trust bundle and the endpoints' SPIFFE IDs (the service's workload ID while none is registered). Endpoints or
 * TLS written on such a Backend are replaced: the registry and the node's identity are the truth here. Its traffic
 * policy (inherited from the MeshService by the loader, overridden field by field) is kept. A Backend with no
 * endpoint left answers 503 `no_healthy_endpoint` at once. Pure: the result is a new Config, `config` is untouched.
 */
export function completeMeshBackends(config: Config, endpoints: Readonly<Record<string, readonly EndpointRecord[]>>, client: MeshClient): Config {
  const specs = new Map<string, BackendSpec>();
  for (const [key, b] of config.backends) {
    if (!isMeshBackend(b)) continue;
    const service = b.spec.meshService!;
    const seen = new Set<string>();
    const eps: EndpointRecord[] = [];
    for (const e of endpoints[service] ?? []) {
      // Two records for one address (a node re-registered under a new id) would be one pool listed twice.
      if (!e.healthy || seen.has(e.address)) continue;
      seen.add(e.address);
      eps.push(e);
    }
    const ids = [...new Set(eps.map((e) => e.spiffeId))].sort();
    const tls: UpstreamTls = {
      caFile: client.certs.bundleFile,
      certFile: client.certs.certFile,
      keyFile: client.certs.keyFile,
      verify: true,
      spiffeIds: ids.length > 0 ? ids : [serviceId(client.trustDomain, service)],
      generation: client.certs.generation,
    };
    const list: Endpoint[] = eps.map((e) => ({ url: `https://${e.address}`, weight: 1, labels: { ...e.labels } }));
    specs.set(key, { ...b.spec, endpoints: list, tls });
  }
  return withBackends(config, specs);
}

/** SHA-256 of files' contents (a short hex prefix): a certificate generation. */
export function hashFiles(paths: readonly string[]): string {
  const h = createHash('sha256');
  for (const p of paths) h.update(readFileSync(p)).update('\0');
  return h.digest('hex').slice(0, 16);
}

/**
 * Standalone (file) mode: a `type: mesh` Backend lists its endpoints and client certificate itself (no registry,
 * no renewal). What is added: the peer's expected SPIFFE ID, when TLS names none (a sidecar's certificate has
 * only a URI SAN, so the host name check could never pass), and a generation from the certificate files' contents,
 * so a reload after the files were replaced (SIGHUP) opens new pools. Backends without `tls` are left alone
 * (plaintext to a permissive sidecar); unreadable files are left for the data plane to report.
 */
export function completeStandaloneMeshBackends(config: Config, fileHash: (paths: readonly string[]) => string = hashFiles): Config {
  const specs = new Map<string, BackendSpec>();
  for (const [key, b] of config.backends) {
    const tls = b.spec.tls;
    if (!isMeshBackend(b) || tls === undefined) continue;
    const next: UpstreamTls = { ...tls };
    if (next.spiffeIds === undefined && next.verify) next.spiffeIds = [serviceId(config.mesh.spec.trustDomain, b.spec.meshService!)];
    if (next.generation === undefined) {
      const files = [next.caFile, next.certFile, next.keyFile].filter((f): f is string => f !== undefined);
      try {
        if (files.length > 0) next.generation = fileHash(files);
      } catch {
        // The cluster reads them again and reports what is wrong.
      }
    }
    if (JSON.stringify(next) !== JSON.stringify(tls)) specs.set(key, { ...b.spec, tls: next });
  }
  return withBackends(config, specs);
}

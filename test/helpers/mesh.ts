// Test helper: a real mesh CA, workload certificate dirs, snapshots, and in-process sidecars on 127.0.0.1.
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/ca/certificate-authority.ts';
import { SNAPSHOT_SCHEMA, type EndpointRecord, type Snapshot } from '../../src/model/snapshot.ts';
import { Sidecar } from '../../src/app/sidecar.ts';

export const TRUST_DOMAIN = 'lockgate.local';

export function idOf(namespace: string, service: string, td = TRUST_DOMAIN): string {
  return `spiffe://${td}/ns/${namespace}/sa/${service}`;
}

export interface Workload {
  dir: string;
  spiffeId: string;
  /** Issues a new certificate into the same files (rotation). */
  renew(lifetimeMs?: number): Promise<void>;
}

export class TestMesh {
  readonly ca: CertificateAuthority;
  readonly root: string;
  readonly #sidecars: Sidecar[] = [];

  private constructor(ca: CertificateAuthority, root: string) {
    this.ca = ca;
    this.root = root;
  }

  static async create(trustDomain = TRUST_DOMAIN): Promise<TestMesh> {
    return new TestMesh(await CertificateAuthority.create({ trustDomain }), mkdtempSync(join(tmpdir(), 'lockgate-mesh-')));
  }

  /** A workload's cert dir: cert.pem (leaf + intermediate), key.pem, bundle.pem. */
  async workload(namespace: string, service: string, lifetimeMs = 3600_000, ca: CertificateAuthority = this.ca): Promise<Workload> {
    const dir = mkdtempSync(join(this.root, `${service}-`));
    const spiffeId = idOf(namespace, service, ca.trustDomain);
    const write = async (lifetime: number): Promise<void> => {
      const c = await ca.issueWithKey(spiffeId, lifetime);
      writeFileSync(join(dir, 'key.pem'), c.keyPem, { mode: 0o600 });
      writeFileSync(join(dir, 'cert.pem'), c.chainPem);
      writeFileSync(join(dir, 'bundle.pem'), this.ca.trustBundle().join('\n'));
    };
    await write(lifetimeMs);
    return { dir, spiffeId, renew: (l = lifetimeMs) => write(l) };
  }

  snapshot(node: { namespace: string; service: string }, config: string, endpoints: Record<string, EndpointRecord[]> = {}, version = 1): Snapshot {
    return {
      schema: SNAPSHOT_SCHEMA,
      version,
      endpointsVersion: version,
      node: { kind: 'sidecar', namespace: node.namespace, service: node.service, spiffeId: idOf(node.namespace, node.service, this.ca.trustDomain) },
      config,
      endpoints,
      trustBundle: this.ca.trustBundle(),
    };
  }

  /** Starts a sidecar in this process; closed by close(). */
  async sidecar(w: Workload, service: string, appUrl: string, snap: Snapshot, labels: Record<string, string> = {}): Promise<Sidecar> {
    const s = new Sidecar({
      service,
      spiffeId: w.spiffeId,
      appUrl,
      certDir: w.dir,
      inbound: { address: '127.0.0.1', port: 0 },
      outbound: { address: '127.0.0.1', port: 0 },
      labels,
      accessLog: 'off',
    });
    this.#sidecars.push(s);
    const r = await s.apply(snap);
    if (!r.ok) throw new Error(`sidecar ${service}: ${r.reason}`);
    return s;
  }

  async close(): Promise<void> {
    await Promise.all(this.#sidecars.splice(0).map((s) => s.close()));
    rmSync(this.root, { recursive: true, force: true });
  }
}

export function endpoint(namespace: string, service: string, port: number, labels: Record<string, string> = {}, node = `${service}-1`): EndpointRecord {
  return { service: `${namespace}/${service}`, node, address: `127.0.0.1:${port}`, labels, healthy: true, spiffeId: idOf(namespace, service) };
}

/** YAML for a Mesh and MeshServices (one http port 80 each), plus extra documents. */
export function meshYaml(opts: { defaultAccess?: string; mtls?: string; services: Array<{ ns: string; name: string }>; extra?: string }): string {
  const docs = [
    `apiVersion: lockgate.dev/v1alpha1\nkind: Mesh\nmetadata: { name: default }\nspec: { trustDomain: ${TRUST_DOMAIN}, defaultAccess: ${opts.defaultAccess ?? 'allow'}, mtls: ${opts.mtls ?? 'strict'} }`,
    ...opts.services.map((s) => `apiVersion: lockgate.dev/v1alpha1\nkind: MeshService\nmetadata: { name: ${s.name}, namespace: ${s.ns} }\nspec:\n  ports: [{ name: http, port: 80, protocol: http }]`),
  ];
  if (opts.extra) docs.push(opts.extra);
  return docs.join('\n---\n');
}

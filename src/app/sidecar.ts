// A mesh sidecar: an inbound and an outbound data plane built from the node's snapshot, rebuilt on every new one.
import { X509Certificate, createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseCheckedConfig } from '../policy/load-checked.ts';
import { formatProblems } from '../model/load-config.ts';
import { SNAPSHOT_SCHEMA, snapshotSchemaSupported, type Snapshot } from '../model/snapshot.ts';
import type { Config } from '../model/types.ts';
import { AdminServer } from '../admin/admin-server.ts';
import { renderPrometheus } from '../telemetry/metrics.ts';
import { DataPlane } from './data-plane.ts';
import { removeStaleAssertionKeys, writeAssertionKeys } from './assertion-keys-file.ts';
import { inboundConfigText, outboundConfigText, type CertFiles, type SidecarLayout } from './sidecar-config.ts';

export interface SidecarOptions {
  /** Qualified `namespace/service`. */
  service: string;
  spiffeId: string;
  /** `http://host:port` of the local app. */
  appUrl: string;
  /** Holds cert.pem (leaf + intermediate), key.pem and bundle.pem. */
  certDir: string;
  inbound: { address: string; port: number };
  outbound: { address: string; port: number };
  /** Local admin port (health, readiness, metrics); undefined = none. */
  admin?: { address: string; port: number };
  labels?: Record<string, string>;
  /** Access log destination: a path, `stdout`, `stderr` or `off`. */
  accessLog?: string;
  /** When the workload certificate expires (epoch ms); default: read from cert.pem at each scrape. */
  certificateNotAfter?: () => number | undefined;
}

export type ApplyResult = { ok: true } | { ok: false; reason: string };

/** The certificate files of a cert dir and a generation that changes with their contents. */
export function certFilesIn(dir: string): CertFiles {
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const bundleFile = join(dir, 'bundle.pem');
  const h = createHash('sha256');
  for (const f of [certFile, keyFile, bundleFile]) h.update(readFileSync(f));
  return { certFile, keyFile, bundleFile, generation: h.digest('hex').slice(0, 16) };
}

export class Sidecar {
  readonly #opts: SidecarOptions;
  #inbound: DataPlane | null = null;
  #outbound: DataPlane | null = null;
  #admin: AdminServer | null = null;
  #snapshot: Snapshot | null = null;
  #ports = { inbound: 0, outbound: 0, admin: 0 };
  #inboundConfig: Config | null = null;
  #outboundConfig: Config | null = null;
  #closed = false;

  constructor(opts: SidecarOptions) {
    this.#opts = opts;
  }

  get ports(): { inbound: number; outbound: number; admin: number } {
    return { ...this.#ports };
  }

  get version(): number {
    return this.#snapshot?.version ?? 0;
  }

  #layout(certs: CertFiles, assertionKeysFile: string | undefined): SidecarLayout {
    const o = this.#opts;
    return {
      service: o.service,
      spiffeId: o.spiffeId,
      inbound: { address: o.inbound.address, port: this.#ports.inbound || o.inbound.port },
      outbound: { address: o.outbound.address, port: this.#ports.outbound || o.outbound.port },
      appUrl: o.appUrl,
      labels: o.labels ?? {},
      certs,
      accessLog: o.accessLog ?? 'stdout',
      ...(assertionKeysFile !== undefined ? { assertionKeysFile } : {}),
    };
  }

  /** Builds both configs from a snapshot; problems are returned, never thrown (the running config keeps serving). */
  #build(snap: Snapshot): { inbound: Config; outbound: Config; keysFile: string | undefined } | { reason: string } {
    if (!snapshotSchemaSupported(snap.schema)) return { reason: `snapshot schema ${JSON.stringify(snap.schema)} is not supported (this node reads ${SNAPSHOT_SCHEMA.split('.')[0]}.x)` };
    const file = `snapshot-v${snap.version}`;
    const mesh = parseCheckedConfig(snap.config, file);
    if (!mesh.config) return { reason: `snapshot config rejected:\n${formatProblems(mesh.problems)}` };
    let certs: CertFiles;
    try {
      certs = certFilesIn(this.#opts.certDir);
    } catch (err) {
      return { reason: `certificate files: ${(err as Error).message}` };
    }
    let keysFile: string | undefined;
    try {
      keysFile = snap.identity === undefined ? undefined : writeAssertionKeys(this.#opts.certDir, snap.identity);
    } catch (err) {
      return { reason: `assertion keys: ${(err as Error).message}` };
    }
    const layout = this.#layout(certs, keysFile);
    let inText: string;
    let outText: string;
    try {
      inText = inboundConfigText(snap, mesh.config, layout);
      outText = outboundConfigText(snap, mesh.config, layout);
    } catch (err) {
      return { reason: (err as Error).message };
    }
    const inbound = parseCheckedConfig(inText, `${file}/inbound`);
    if (!inbound.config) return { reason: `inbound config rejected:\n${formatProblems(inbound.problems)}` };
    const outbound = parseCheckedConfig(outText, `${file}/outbound`);
    if (!outbound.config) return { reason: `outbound config rejected:\n${formatProblems(outbound.problems)}` };
    return { inbound: inbound.config, outbound: outbound.config, keysFile };
  }

  /** Applies a snapshot: the first one starts the listeners; later ones swap configs atomically. */
  async apply(snap: Snapshot): Promise<ApplyResult> {
    if (this.#closed) return { ok: false, reason: 'sidecar is shutting down' };
    const built = this.#build(snap);
    if ('reason' in built) return { ok: false, reason: built.reason };
    if (this.#outbound === null) {
      // Outbound first: it owns the thread's telemetry, so the inbound plane's requests are counted too.
      const outbound = new DataPlane(built.outbound);
      const inbound = new DataPlane(built.inbound, { telemetryOf: outbound });
      this.#outbound = outbound;
      this.#inbound = inbound;
      this.#ports.outbound = (await outbound.listen()).outbound;
      this.#ports.inbound = (await inbound.listen()).inbound;
      if (this.#opts.admin) {
        this.#admin = new AdminServer({
          ready: () => this.#snapshot !== null && !this.#closed,
          metrics: async () => this.#metrics(),
          config: () => ({ version: this.#snapshot?.version, inbound: this.#inboundConfig, outbound: this.#outboundConfig }),
        });
        this.#ports.admin = await this.#admin.listen(this.#opts.admin.port, this.#opts.admin.address);
      }
    } else {
      const a = this.#outbound.apply(built.outbound);
      if (!a.ok) return { ok: false, reason: a.problems.join('\n') };
      const b = this.#inbound!.apply(built.inbound);
      if (!b.ok) return { ok: false, reason: b.problems.join('\n') };
    }
    this.#inboundConfig = built.inbound;
    this.#outboundConfig = built.outbound;
    this.#snapshot = snap;
    removeStaleAssertionKeys(this.#opts.certDir, built.keysFile);
    return { ok: true };
  }

  /** New certificate files were written: rebuild from the current snapshot (new handshakes and pools use them). */
  async reloadCertificates(): Promise<ApplyResult> {
    if (this.#snapshot === null) return { ok: true };
    return this.apply(this.#snapshot);
  }

  /** The workload certificate's expiry (epoch ms), or undefined when it cannot be read. */
  certificateNotAfter(): number | undefined {
    const given = this.#opts.certificateNotAfter?.();
    if (given !== undefined) return given;
    try {
      return Date.parse(new X509Certificate(readFileSync(join(this.#opts.certDir, 'cert.pem'))).validTo);
    } catch {
      return undefined;
    }
  }

  #metrics(): string {
    const s = this.#outbound?.metricsSnapshot();
    if (!s) return '';
    const extra: Record<string, number> = { lockgate_config_version: this.#snapshot?.version ?? 0 };
    const notAfter = this.certificateNotAfter();
    // Linkerd's identity_cert_expiration_timestamp_seconds, by another name: alert when it comes near.
    if (notAfter !== undefined) extra[`lockgate_certificate_expiry_timestamp_seconds{spiffe_id="${this.#opts.spiffeId}"}`] = Math.floor(notAfter / 1000);
    return renderPrometheus(s, extra);
  }

  /** Drain: stop accepting, finish in-flight requests (inbound last, so peers' calls in flight complete). */
  async drain(deadlineMs: number): Promise<void> {
    this.#closed = true;
    await this.#outbound?.drain(deadlineMs);
    await this.#inbound?.drain(deadlineMs);
    await this.#admin?.close();
    this.#inbound = this.#outbound = null;
  }

  async close(): Promise<void> {
    await this.drain(0);
  }
}

// A sidecar joined to the control plane: join, certificates and renewal, snapshot stream, endpoint registration, drain.
import { join } from 'node:path';
import { ControlClient } from '../agent/control-client.ts';
import { Sidecar } from './sidecar.ts';
import { DecisionBatcher } from '../telemetry/decision-batcher.ts';

export interface JoinedSidecarOptions {
  /** Qualified `namespace/service` asked for on the command line (the join token decides; a mismatch is refused). */
  service: string;
  appUrl: string;
  dataDir: string;
  controlPlane: string;
  token: string | undefined;
  inbound: { address: string; port: number };
  outbound: { address: string; port: number };
  admin?: { address: string; port: number };
  /** Address peers dial for the inbound listener (default: the inbound address, or 127.0.0.1 for a wildcard). */
  advertise?: string;
  labels: Record<string, string>;
  accessLog: string;
  drainMs: number;
  /** Operator-facing lines (JSON) go here; default stderr. */
  log?: (event: string, fields: Record<string, unknown>) => void;
}

export interface JoinedSidecar {
  sidecar: Sidecar;
  client: ControlClient;
  /** Deregisters first (callers stop picking this endpoint), then drains, then closes the stream. */
  stop(): Promise<void>;
}

/** The app's address for the registry: `host:port` over TCP, or the socket path of a `unix:` app. */
function appAddress(appUrl: string): { address: string; transport: 'tcp' | 'unix' } {
  if (appUrl.startsWith('unix:')) return { address: appUrl.slice(5), transport: 'unix' };
  const u = new URL(appUrl);
  return { address: u.host, transport: 'tcp' };
}

const defaultLog = (event: string, fields: Record<string, unknown>): void => {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), component: 'sidecar', event, ...fields }) + '\n');
};

/** Starts a joined sidecar; resolves once it serves (from a fresh snapshot, or the last good one on disk). */
export async function startJoinedSidecar(opts: JoinedSidecarOptions, onReady?: (s: Sidecar) => void): Promise<JoinedSidecar> {
  const log = opts.log ?? defaultLog;
  const certDir = join(opts.dataDir, 'certs');
  // Assigned once the client has joined (the sidecar needs its identity); the client's callbacks run after that.
  // eslint-disable-next-line prefer-const
  let sidecar: Sidecar | undefined;
  let registered = false;
  let resolveReady: () => void = () => {};
  const ready = new Promise<void>((r) => (resolveReady = r));
  const client: ControlClient = new ControlClient({
    url: opts.controlPlane,
    dataDir: opts.dataDir,
    certDir,
    log,
    onSnapshot: async (snap) => {
      const r = await sidecar!.apply(snap);
      if (r.ok) {
        resolveReady();
        if (!registered) {
          registered = true;
          const host = opts.advertise ?? (opts.inbound.address === '0.0.0.0' || opts.inbound.address === '::' ? '127.0.0.1' : opts.inbound.address);
          void client.register({ address: `${host}:${sidecar!.ports.inbound}`, labels: opts.labels, healthy: true, app: appAddress(opts.appUrl) });
        }
      }
      return r;
    },
    onCertificate: async () => {
      const r = await sidecar!.reloadCertificates();
      if (!r.ok) log('certificate_reload_failed', { reason: r.reason });
      else log('certificate_reloaded', { version: sidecar!.version });
    },
  });
  let node = (await client.load()) ? client.node : undefined;
  if (node === undefined) {
    if (!opts.token) throw new Error(`${opts.dataDir} has not joined a mesh yet: pass --token (lockgate token create --service NAME)`);
    node = await client.join(opts.token);
  }
  const joined = `${node!.namespace}/${node!.service}`;
  if (joined !== opts.service) {
    await client.close();
    throw new Error(`this node's identity is ${joined} (${node!.spiffeId}), not ${opts.service}: use a token created for ${opts.service} or another --data-dir`);
  }
  sidecar = new Sidecar({
    service: joined,
    spiffeId: node!.spiffeId,
    appUrl: opts.appUrl,
    certDir,
    inbound: opts.inbound,
    outbound: opts.outbound,
    admin: opts.admin,
    labels: opts.labels,
    accessLog: opts.accessLog,
    certificateNotAfter: () => client.status.certificateNotAfter,
  });
  // Serve from the last good snapshot while the control plane is unreachable; the stream replaces it when it comes.
  const lastGood = await client.loadLastGood();
  if (lastGood !== undefined) {
    const r = await sidecar.apply(lastGood);
    if (r.ok) {
      log('serving_last_good_snapshot', { version: lastGood.version });
      resolveReady();
    } else log('last_good_snapshot_rejected', { reason: r.reason });
  }
  client.start();
  // Denies (and a sample of allows) into the control plane's audit trail, batched, at most 200 a second.
  const decisions = new DecisionBatcher((batch, dropped) => void client.reportDecisions(batch, dropped)).subscribe();
  await ready;
  onReady?.(sidecar);
  const s = sidecar;
  return {
    sidecar: s,
    client,
    stop: async () => {
      await client.deregister(AbortSignal.timeout(2000)).catch(() => false);
      await s.drain(opts.drainMs);
      decisions.close();
      await client.close();
    },
  };
}

/** The CLI's joined mode: runs until SIGTERM/SIGINT, then drains. */
export async function runJoinedSidecar(opts: JoinedSidecarOptions): Promise<number> {
  let j: JoinedSidecar;
  try {
    j = await startJoinedSidecar(opts);
  } catch (err) {
    process.stderr.write(`lockgate sidecar: ${(err as Error).message}\n`);
    return 1;
  }
  process.stdout.write(JSON.stringify({ event: 'ready', ...j.sidecar.ports, version: j.sidecar.version, spiffeId: j.client.node?.spiffeId }) + '\n');
  return await new Promise<number>((resolve) => {
    const stop = (): void => void j.stop().then(() => resolve(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

// A gateway joined to the control plane: its own mesh identity, the edge config from snapshots, mesh Backends over mTLS.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { writeAssertionKeys } from './assertion-keys-file.ts';
import { ControlClient, type ApplyResult } from '../agent/control-client.ts';
import { formatProblems } from '../model/load-config.ts';
import { SNAPSHOT_SCHEMA, snapshotSchemaSupported, type Snapshot } from '../model/snapshot.ts';
import type { Config } from '../model/types.ts';
import { parseCheckedConfig } from '../policy/load-checked.ts';
import { GatewaySupervisor, type SupervisorOptions } from './gateway-supervisor.ts';
import { completeMeshBackends, type MeshClient } from './mesh-backends.ts';
import { certFilesIn } from './sidecar.ts';

export interface JoinedGatewayOptions {
  /** `https://host:port` of the control plane. */
  controlPlane: string;
  /** A one-time join token made with `--kind gateway`; not needed once the data dir has joined. */
  token: string | undefined;
  /** node.json, certs/, the last good snapshot, and the subscription and quota stores. */
  dataDir: string;
  workers: number;
  /** Override the admin port (0 = any); undefined keeps the config's. */
  adminPort?: number;
  drainTimeoutMs?: number;
  /** Watch the listeners' certificate files (default true). */
  watch?: boolean;
  /** Node events (join, snapshots, renewals) as JSON lines; default stderr. */
  log?: (event: string, fields: Record<string, unknown>) => void;
  /** The supervisor's log (workers, applies); default stderr. */
  supervisorLog?: SupervisorOptions['log'];
  /** Gives up waiting for the first config (from the stream or the last good snapshot). */
  signal?: AbortSignal;
}

export interface JoinedGateway {
  supervisor: GatewaySupervisor;
  client: ControlClient;
  /** The snapshot version being served. */
  readonly snapshotVersion: number | undefined;
  /** Rebuilds from the current snapshot with the certificate files as they are now (SIGHUP). */
  reload(reason: string): Promise<ApplyResult>;
  /** Stops taking snapshots, then drains the workers. */
  stop(): Promise<void>;
}

const defaultLog = (event: string, fields: Record<string, unknown>): void => {
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), component: 'gateway', event, ...fields }) + '\n');
};

/**
 * A gateway snapshot → the Config its data plane serves: the edge config, validated like files (problems with line
 * and column, relative paths resolved from `file`'s directory), with every `type: mesh` Backend completed from the
 * snapshot's endpoints and the node's certificate. Problems are returned as a NACK reason, never thrown.
 */
export function gatewayConfigOf(snap: Snapshot, o: { file: string; client: MeshClient; env?: Record<string, string | undefined>; keysDir?: string }): { config: Config } | { reason: string } {
  if (!snapshotSchemaSupported(snap.schema)) return { reason: `snapshot schema ${JSON.stringify(snap.schema)} is not supported (this node reads ${SNAPSHOT_SCHEMA.split('.')[0]}.x)` };
  // NamedValues resolve here, on the node: secret values travel beside the config text, never inside it.
  const parsed = parseCheckedConfig(snap.config, o.file, { env: o.env ?? process.env, secrets: snap.secrets ?? {} });
  if (!parsed.config) return { reason: `snapshot config rejected:\n${formatProblems(parsed.problems)}` };
  let config: Config;
  try {
    config = completeMeshBackends(parsed.config, snap.endpoints ?? {}, o.client);
  } catch (err) {
    return { reason: `mesh Backends: ${(err as Error).message}` };
  }
  if (snap.identity === undefined || o.keysDir === undefined) return { config };
  try {
    return { config: withAssertions(config, snap.node.spiffeId, writeAssertionKeys(o.keysDir, snap.identity)) };
  } catch (err) {
    return { reason: `assertion keys: ${(err as Error).message}` };
  }
}

/**
 * A joined gateway is a mesh node: its identity is its certificate's, and it asserts the end users it validated to
 * the mesh services it calls (x-lockgate-assertion, minted with the snapshot's signing key).
 */
export function withAssertions(config: Config, spiffeId: string, keysFile: string): Config {
  const g = config.gateway;
  const mesh = g.spec.mesh ?? { maxHops: 16, defaultAccess: config.mesh.spec.defaultAccess };
  const spec = { ...g.spec, mesh: { ...mesh, identity: spiffeId, assertions: { keysFile, exchange: false, userHeaders: false, forwardBearer: g.spec.mesh?.assertions?.forwardBearer ?? false } } };
  const version = createHash('sha256').update(config.version).update('\0').update(keysFile).digest('hex').slice(0, 12);
  return { ...config, gateway: { ...g, spec }, version };
}

function sameStrings(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.length === b.length && a.every((x, i) => x === b[i]));
}

/** Joins (or loads the identity in the data dir), then serves from the first snapshot or the last good one on disk. */
export async function startJoinedGateway(opts: JoinedGatewayOptions): Promise<JoinedGateway> {
  const log = opts.log ?? defaultLog;
  const certDir = join(opts.dataDir, 'certs');
  const supervisor = new GatewaySupervisor({
    files: [],
    workers: opts.workers,
    adminPort: opts.adminPort,
    watch: opts.watch,
    drainTimeoutMs: opts.drainTimeoutMs,
    dataDir: opts.dataDir,
    log: opts.supervisorLog,
    // Denies (and a sample of allows) go to the control plane's audit trail (workers start after the client exists).
    onDecisions: (batch, dropped) => void client.reportDecisions(batch, dropped),
  });
  let trustDomain = '';
  let current: Snapshot | undefined;
  let started = false;
  let startAttempted = false;
  let chain: Promise<unknown> = Promise.resolve();
  let settle: { resolve: () => void; reject: (err: Error) => void } = { resolve: () => {}, reject: () => {} };
  const ready = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  ready.catch(() => {});

  /** The certificate files as last read, and the trust bundle of the snapshot they were read for. */
  let certsRead: { certs: ReturnType<typeof certFilesIn>; bundle: readonly string[] } | undefined;
  /** Builds and serves one snapshot; serialized, so a renewal and a snapshot never interleave. */
  const serve = (snap: Snapshot, reason: string, force: boolean): Promise<ApplyResult> => {
    const run = chain.then(async (): Promise<ApplyResult> => {
      // The files change only with a renewal (`force`) or a new trust bundle, which the client writes before this.
      let certs = !force && certsRead !== undefined && sameStrings(certsRead.bundle, snap.trustBundle) ? certsRead.certs : undefined;
      if (certs === undefined) {
        try {
          certs = certFilesIn(certDir);
        } catch (err) {
          return { ok: false, reason: `certificate files: ${(err as Error).message}` };
        }
        certsRead = { certs, bundle: snap.trustBundle };
      }
      const built = gatewayConfigOf(snap, { file: join(opts.dataDir, `snapshot-v${snap.version}.yaml`), client: { certs, trustDomain }, keysDir: certDir });
      if ('reason' in built) return { ok: false, reason: built.reason };
      if (!started) {
        startAttempted = true;
        try {
          await supervisor.startWith(built.config);
        } catch (err) {
          const message = `the gateway could not start: ${(err as Error).message}`;
          settle.reject(new Error(message));
          return { ok: false, reason: message };
        }
        started = true;
        current = snap;
        settle.resolve();
        return { ok: true };
      }
      const r = await supervisor.apply(built.config, reason, { force });
      if (!r.ok) return { ok: false, reason: r.problems };
      current = snap;
      return { ok: true };
    });
    chain = run.catch(() => {});
    return run;
  };

  const client: ControlClient = new ControlClient({
    url: opts.controlPlane,
    dataDir: opts.dataDir,
    certDir,
    log,
    onSnapshot: (snap) => serve(snap, `snapshot ${snap.version}`, false),
    onCertificate: async () => {
      if (current === undefined) return;
      // New files, new generation: new connections and pools use the new certificate; old pools close gracefully.
      const r = await serve(current, 'certificate', true);
      if (r.ok) log('certificate_reloaded', { version: current.version });
      else log('certificate_reload_failed', { reason: r.reason });
    },
  });
  const fail = async (err: unknown): Promise<never> => {
    await client.close();
    // Also when the start failed half way: a worker that did start is stopped, no restart is left pending.
    if (startAttempted) await supervisor.drain();
    throw err;
  };
  try {
    let node = (await client.load()) ? client.node : undefined;
    if (node === undefined) {
      if (!opts.token) throw new Error(`${opts.dataDir} has not joined a mesh yet: pass --token (lockgate token create --kind gateway --service NAME)`);
      try {
        node = await client.join(opts.token, { signal: opts.signal });
      } catch (err) {
        throw new Error(`joining the control plane at ${opts.controlPlane} failed: ${(err as Error).message}`, { cause: err });
      }
    }
    if (node.kind !== 'gateway') throw new Error(`${opts.dataDir} joined as a ${node.kind} (${node.spiffeId}): a gateway needs a token made with --kind gateway, or another --data-dir`);
    trustDomain = node.trustDomain;
    // Serve the last good snapshot while the control plane is unreachable; the stream replaces it when it comes.
    const lastGood = await client.loadLastGood();
    if (lastGood !== undefined) {
      const r = await serve(lastGood, 'last good snapshot', false);
      if (r.ok) log('serving_last_good_snapshot', { version: lastGood.version });
      else log('last_good_snapshot_rejected', { reason: r.reason });
    }
    client.start();
    const aborted = opts.signal === undefined ? undefined : new Promise<never>((_, reject) => {
      const onAbort = (): void => reject(opts.signal!.reason instanceof Error ? opts.signal!.reason : new Error('aborted'));
      if (opts.signal!.aborted) onAbort();
      else opts.signal!.addEventListener('abort', onAbort, { once: true });
    });
    aborted?.catch(() => {});
    await (aborted ? Promise.race([ready, aborted]) : ready);
  } catch (err) {
    return fail(err);
  }
  return {
    supervisor,
    client,
    get snapshotVersion() {
      return current?.version;
    },
    reload: (reason) => (current === undefined ? Promise.resolve({ ok: true } as ApplyResult) : serve(current, reason, true)),
    stop: async () => {
      await client.close();
      await supervisor.drain();
    },
  };
}

/** The CLI's joined mode: runs until SIGTERM/SIGINT, then drains. */
export async function runJoinedGateway(opts: JoinedGatewayOptions): Promise<number> {
  let g: JoinedGateway;
  try {
    g = await startJoinedGateway(opts);
  } catch (err) {
    process.stderr.write(`lockgate gateway: ${(err as Error).message}\n`);
    return 1;
  }
  const sup = g.supervisor;
  // The same machine-readable line as file mode, plus the snapshot served and the gateway's identity.
  process.stdout.write(JSON.stringify({ event: 'listening', ports: sup.ports, admin: sup.adminPort, version: sup.config.version, snapshot: g.snapshotVersion, spiffeId: g.client.node?.spiffeId }) + '\n');
  process.on('SIGHUP', () => void g.reload('SIGHUP'));
  process.on('SIGUSR1', () => sup.reopenLogs());
  return await new Promise<number>((resolve) => {
    const stop = (): void => void g.stop().then(() => resolve(0));
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

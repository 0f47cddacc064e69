// Composition root of `lockgate control-plane`: SQLite store, master key, CA, own certificate, HTTPS server, admin, node
// and CA APIs; CA changes (root rotation, intermediate renewal) reach the server's certificate, the bundle file and nodes.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../agent/atomic-file.ts';
import { adminApiRoutes } from '../control/admin-api.ts';
import { adminTokenVerifier, ensureBootstrapToken } from '../control/bootstrap-token.ts';
import { CA_STATE_KEY, caApiRoutes, intermediateRenewalDue, StoredCa } from '../control/ca-api.ts';
import { CONFIG_PREFIX } from '../control/config-documents.ts';
import type { ControlRoute } from '../control/control-routes.ts';
import { ControlServer, type ControlServerTls } from '../control/control-server.ts';
import { openNodeApi, type NodeApi } from '../control/node-api.ts';
import { workloadId } from '../lib/spiffe-id.ts';
import { parseConfigText } from '../model/load-config.ts';
import { DEFAULT_MESH } from '../model/mesh-types.ts';
import { LocalKeyWrapper, MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, type KeyWrapper } from '../secrets/key-wrapper.ts';
import type { ConfigStore } from '../store/config-store.ts';
import { SqliteConfigStore } from '../store/sqlite-config-store.ts';

export { CA_STATE_KEY };
export const CONTROL_PLANE_FILE = 'control-plane.json';
export const CA_BUNDLE_FILE = 'ca-bundle.pem';
export const MASTER_KEY_FILE = 'master.key';
export const DEFAULT_LISTEN = { host: '127.0.0.1', port: 7443 };
/** How often the intermediate's remaining life is looked at (see intermediateRenewalDue). */
export const INTERMEDIATE_CHECK_MS = 3_600_000;

/** What `<data-dir>/control-plane.json` says, so the CLI and local nodes can find and trust the control plane. */
export interface ControlPlaneInfo {
  url: string;
  caFile: string;
  spiffeId: string;
  trustDomain: string;
  pid: number;
}

export interface ControlPlaneOptions {
  dataDir: string;
  host?: string;
  port?: number;
  version: string;
  env?: Record<string, string | undefined>;
  now?: () => number;
  /** A line for stdout (the bootstrap token, the listening event). */
  out?: (line: string) => void;
  /** A note for the operator (stderr). */
  log?: (line: string) => void;
}

export function controlPlaneSpiffeId(trustDomain: string): string {
  return workloadId(trustDomain, 'lockgate-system', 'control-plane');
}

/** The master key from the environment, else `<dataDir>/master.key` (generated, 0600, on first start). */
async function masterKey(dataDir: string, env: Record<string, string | undefined>, log: (line: string) => void): Promise<KeyWrapper> {
  if (env[MASTER_KEY_ENV] || env[MASTER_KEY_FILE_ENV]) return LocalKeyWrapper.fromEnv(env);
  const file = join(dataDir, MASTER_KEY_FILE);
  try {
    writeFileSync(file, randomBytes(32).toString('base64') + '\n', { flag: 'wx', mode: 0o600 });
    log(`generated a master key in ${file} (mode 0600): back it up, the CA's private keys cannot be opened without it; ` +
      `set ${MASTER_KEY_ENV} or ${MASTER_KEY_FILE_ENV} to keep it elsewhere`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return LocalKeyWrapper.fromFile(file);
}

/** Mesh settings from the stored config (defaults when there is no Mesh or the stored config does not validate). */
async function meshSettings(store: ConfigStore, log: (line: string) => void): Promise<{ trustDomain: string; certificateLifetime: number }> {
  const { kvs } = await store.range(CONFIG_PREFIX);
  if (kvs.length === 0) return DEFAULT_MESH;
  const { config, problems } = parseConfigText(kvs.map((kv) => kv.value).join('\n---\n'), 'store');
  if (!config) {
    log(`the stored config has ${problems.length} problem(s); using the default mesh settings`);
    return DEFAULT_MESH;
  }
  return config.mesh.spec;
}

function clientUrl(server: ControlServer): string {
  const h = server.host;
  const host = h === '0.0.0.0' ? '127.0.0.1' : h === '::' ? '[::1]' : h.includes(':') ? `[${h}]` : h;
  return `https://${host}:${server.port}`;
}

export class ControlPlane {
  readonly info: ControlPlaneInfo;
  readonly #store: ConfigStore;
  readonly #server: ControlServer;
  readonly #nodeApi: NodeApi | undefined;
  readonly #ac = new AbortController();
  #renewTimer: NodeJS.Timeout | undefined;
  #intermediateTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  private constructor(info: ControlPlaneInfo, store: ConfigStore, server: ControlServer, nodeApi: NodeApi | undefined) {
    this.info = info;
    this.#store = store;
    this.#server = server;
    this.#nodeApi = nodeApi;
  }

  static async start(opts: ControlPlaneOptions): Promise<ControlPlane> {
    const out = opts.out ?? ((line: string) => void process.stdout.write(line + '\n'));
    const log = opts.log ?? ((line: string) => void process.stderr.write(`control-plane: ${line}\n`));
    const event = (name: string, fields: Record<string, unknown>): void => log(JSON.stringify({ event: name, ...fields }));
    const now = opts.now ?? Date.now;
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    const store = SqliteConfigStore.open(opts.dataDir);
    let server: ControlServer | undefined;
    let nodeApi: NodeApi | undefined;
    let cp: ControlPlane | undefined;
    try {
      const wrapper = await masterKey(opts.dataDir, opts.env ?? process.env, log);
      const mesh = await meshSettings(store, log);
      const { stored, created } = await StoredCa.open({ store, wrapper, now, trustDomain: mesh.trustDomain, onError: (err) => log(`certificate authority: ${(err as Error).message}`) });
      const trustDomain = stored.ca.trustDomain;
      if (created) log(`created a certificate authority for trust domain "${trustDomain}"`);
      else if (trustDomain !== mesh.trustDomain) log(`the Mesh names trust domain "${mesh.trustDomain}" but the CA was made for "${trustDomain}"; the CA's is used`);
      const spiffeId = controlPlaneSpiffeId(trustDomain);
      const lifetime = mesh.certificateLifetime;
      let own: { notAfter: number; issuedAt: number } | undefined;
      const issue = async (): Promise<{ tls: ControlServerTls & { ca: string[] }; renewAt: number }> => {
        const issuedAt = now();
        const c = await stored.ca.issueWithKey(spiffeId, lifetime);
        own = { notAfter: c.notAfter, issuedAt };
        // Half of the life from issuance (notBefore is backdated for clock skew, so it would renew too early).
        return { tls: { cert: c.chainPem, key: c.keyPem, ca: stored.ca.trustBundle() }, renewAt: issuedAt + (c.notAfter - issuedAt) / 2 };
      };
      const first = await issue();
      nodeApi = await openNodeApi({ store, ca: stored.view, now, log: event });
      const api = nodeApi;
      const leafLifetime = (): number => api.compiler.meshSettings().certificateLifetime;
      const routes: ControlRoute[] = [
        ...adminApiRoutes({ store, version: opts.version, now, status: () => ({ trustDomain, spiffeId, time: new Date(now()).toISOString() }) }),
        ...api.routes,
        ...caApiRoutes({ ca: stored, nodes: () => api.tracker.list(), lifetimeMs: leafLifetime, controlPlane: () => own, now, log: event }),
        ...(await import('../control/backup-api.ts')).backupApiRoutes({ store, wrapper, trustDomain, now, log: event }),
      ];
      server = await ControlServer.listen({
        routes, tls: first.tls, trustDomain, verifyAdminToken: adminTokenVerifier(store),
        host: opts.host ?? DEFAULT_LISTEN.host, port: opts.port ?? DEFAULT_LISTEN.port,
      });
      const caFile = join(opts.dataDir, CA_BUNDLE_FILE);
      await writeFileAtomic(caFile, stored.ca.trustBundle().join(''), 0o644);
      const info: ControlPlaneInfo = { url: clientUrl(server), caFile, spiffeId, trustDomain, pid: process.pid };
      await writeFileAtomic(join(opts.dataDir, CONTROL_PLANE_FILE), JSON.stringify(info, null, 2) + '\n', 0o644);
      const plane = new ControlPlane(info, store, server, nodeApi);
      cp = plane;
      const live = server;
      // One renewal at a time: a timer and a CA change may both want one.
      let renewing: Promise<number> = Promise.resolve(first.renewAt);
      const renew = (): Promise<number> => {
        renewing = renewing.catch(() => 0).then(async () => {
          const next = await issue();
          live.updateTls(next.tls);
          await writeFileAtomic(caFile, next.tls.ca.join(''), 0o644);
          return next.renewAt;
        });
        return renewing;
      };
      plane.#scheduleRenewal(first.renewAt, renew, log, now);
      // Every change (a rotation step, a new intermediate, a restored state) reissues our certificate from the issuing
      // intermediate and trusts client certificates from every root in the bundle, before nodes are told: a node that
      // receives the new bundle reconnects at once, and must find a certificate it can verify.
      stored.onChange(async () => {
        try {
          plane.#scheduleRenewal(await renew(), renew, log, now);
        } finally {
          api.compiler.trustBundleChanged();
        }
      });
      void stored.follow(plane.#ac.signal);
      plane.#watchIntermediate(stored, leafLifetime, event, now);
      // Made only once everything else worked, and printed right away: a start that fails (a busy port) loses no token.
      const bootstrap = await ensureBootstrapToken(store, { now });
      if (bootstrap.token !== undefined) {
        out(`bootstrap admin token (shown only this once; only its hash is stored): ${bootstrap.token}`);
      }
      out(JSON.stringify({ event: 'listening', url: info.url, caFile, spiffeId, trustDomain, pid: process.pid }));
      return plane;
    } catch (err) {
      if (cp) await cp.close();
      else {
        await server?.close();
        await nodeApi?.close();
        await store.close();
      }
      throw err;
    }
  }

  /** Renews the control plane's own certificate at half its life (picking up trust bundle changes then); retries every 30 s. */
  #scheduleRenewal(at: number, renew: () => Promise<number>, log: (line: string) => void, now: () => number): void {
    if (this.#closing) return;
    clearTimeout(this.#renewTimer); // one timer, whoever renewed last
    const delay = Math.min(Math.max(at - now(), 1000), 2 ** 31 - 1);
    this.#renewTimer = setTimeout(() => {
      void renew().then(
        (next) => this.#scheduleRenewal(next, renew, log, now),
        (err: unknown) => {
          log(`renewing the control plane certificate failed, retrying in 30 s: ${(err as Error).message}`);
          this.#scheduleRenewal(now() + 30_000, renew, log, now);
        },
      );
    }, delay);
    this.#renewTimer.unref();
  }

  /** Now and then every INTERMEDIATE_CHECK_MS: a new intermediate before the old one gets close to its end. */
  #watchIntermediate(stored: StoredCa, leafLifetime: () => number, event: (name: string, fields: Record<string, unknown>) => void, now: () => number): void {
    let warned = false;
    const check = async (): Promise<void> => {
      const ca = stored.ca;
      const inter = ca.intermediateInfo();
      const root = ca.rotationStatus().roots.find((r) => r.active)!;
      if (!intermediateRenewalDue(inter, root.notAfter, leafLifetime(), now())) {
        const threshold = 30 * 86_400_000;
        if (!warned && !inter.revoked && inter.notAfter - now() < threshold && root.notAfter <= inter.notAfter + 3_600_000) {
          warned = true;
          event('ca_root_expiring', { root: root.fingerprint, notAfter: new Date(root.notAfter).toISOString(), hint: 'the intermediate cannot outlive the root: run lockgate ca rotate start' });
        }
        return;
      }
      await stored.change('renew-intermediate', (c) => c.renewIntermediate(), this.#ac.signal);
      event('ca_intermediate_renewed', { fingerprint: stored.ca.intermediateInfo().fingerprint, notAfter: new Date(stored.ca.intermediateInfo().notAfter).toISOString(), automatic: true });
    };
    const run = (): void => void check().catch((err: unknown) => {
      if (!this.#ac.signal.aborted) event('ca_intermediate_renewal_failed', { error: (err as Error).message });
    });
    run();
    this.#intermediateTimer = setInterval(run, INTERMEDIATE_CHECK_MS);
    this.#intermediateTimer.unref();
  }

  get url(): string {
    return this.info.url;
  }

  /** Ends streams, stops the server, then the node API and the store. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#renewTimer);
      clearInterval(this.#intermediateTimer);
      this.#ac.abort();
      await this.#server.close();
      await this.#nodeApi?.close();
      await this.#store.close();
    })();
    return this.#closing;
  }
}

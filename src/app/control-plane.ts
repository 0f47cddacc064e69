// Composition root of `lockgate control-plane`: SQLite store, master key, CA, own certificate, HTTPS server, admin and node APIs.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../agent/atomic-file.ts';
import { CertificateAuthority } from '../ca/certificate-authority.ts';
import { adminApiRoutes } from '../control/admin-api.ts';
import { adminTokenVerifier, ensureBootstrapToken } from '../control/bootstrap-token.ts';
import { CONFIG_PREFIX } from '../control/config-documents.ts';
import type { ControlRoute } from '../control/control-routes.ts';
import { ControlServer } from '../control/control-server.ts';
import { openNodeApi, type NodeApi } from '../control/node-api.ts';
import { workloadId } from '../lib/spiffe-id.ts';
import { parseConfigText } from '../model/load-config.ts';
import { DEFAULT_MESH } from '../model/mesh-types.ts';
import { LocalKeyWrapper, MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, type KeyWrapper } from '../secrets/key-wrapper.ts';
import type { ConfigStore } from '../store/config-store.ts';
import { SqliteConfigStore } from '../store/sqlite-config-store.ts';

export const CA_STATE_KEY = '/ca/state';
export const CONTROL_PLANE_FILE = 'control-plane.json';
export const CA_BUNDLE_FILE = 'ca-bundle.pem';
export const MASTER_KEY_FILE = 'master.key';
export const DEFAULT_LISTEN = { host: '127.0.0.1', port: 7443 };

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

async function openCa(store: ConfigStore, wrapper: KeyWrapper, trustDomain: string, log: (line: string) => void): Promise<CertificateAuthority> {
  const stored = await store.get(CA_STATE_KEY);
  if (stored) {
    const ca = await CertificateAuthority.load(stored.value, [wrapper]);
    if (ca.trustDomain !== trustDomain) log(`the Mesh names trust domain "${trustDomain}" but the CA was made for "${ca.trustDomain}"; the CA's is used`);
    return ca;
  }
  const ca = await CertificateAuthority.create({ trustDomain });
  const result = await store.put(CA_STATE_KEY, await ca.save(wrapper), { ifModRevision: 0 });
  if (!result.ok) return CertificateAuthority.load((await store.get(CA_STATE_KEY))!.value, [wrapper]); // another start won
  log(`created a certificate authority for trust domain "${trustDomain}"`);
  return ca;
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
  #renewTimer: NodeJS.Timeout | undefined;
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
    const now = opts.now ?? Date.now;
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    const store = SqliteConfigStore.open(opts.dataDir);
    let server: ControlServer | undefined;
    let nodeApi: NodeApi | undefined;
    let cp: ControlPlane | undefined;
    try {
      const wrapper = await masterKey(opts.dataDir, opts.env ?? process.env, log);
      const mesh = await meshSettings(store, log);
      const ca = await openCa(store, wrapper, mesh.trustDomain, log);
      const spiffeId = controlPlaneSpiffeId(ca.trustDomain);
      const lifetime = mesh.certificateLifetime;
      const issue = async () => {
        const issuedAt = now();
        const c = await ca.issueWithKey(spiffeId, lifetime);
        // Half of the life from issuance (notBefore is backdated for clock skew, so it would renew too early).
        return { tls: { cert: c.chainPem, key: c.keyPem, ca: ca.trustBundle() }, renewAt: issuedAt + (c.notAfter - issuedAt) / 2 };
      };
      const first = await issue();
      nodeApi = await openNodeApi({ store, ca, now, log: (event, fields) => log(JSON.stringify({ event, ...fields })) });
      const routes: ControlRoute[] = [...adminApiRoutes({ store, version: opts.version, now, status: () => ({ trustDomain: ca.trustDomain, spiffeId }) }), ...nodeApi.routes];
      server = await ControlServer.listen({
        routes, tls: first.tls, trustDomain: ca.trustDomain, verifyAdminToken: adminTokenVerifier(store),
        host: opts.host ?? DEFAULT_LISTEN.host, port: opts.port ?? DEFAULT_LISTEN.port,
      });
      const caFile = join(opts.dataDir, CA_BUNDLE_FILE);
      await writeFileAtomic(caFile, ca.trustBundle().join(''), 0o644);
      const info: ControlPlaneInfo = { url: clientUrl(server), caFile, spiffeId, trustDomain: ca.trustDomain, pid: process.pid };
      await writeFileAtomic(join(opts.dataDir, CONTROL_PLANE_FILE), JSON.stringify(info, null, 2) + '\n', 0o644);
      cp = new ControlPlane(info, store, server, nodeApi);
      const live = server;
      const renew = async (): Promise<number> => {
        const next = await issue();
        live.updateTls(next.tls);
        await writeFileAtomic(caFile, next.tls.ca.join(''), 0o644);
        return next.renewAt;
      };
      cp.#scheduleRenewal(first.renewAt, renew, log, now);
      // Made only once everything else worked, and printed right away: a start that fails (a busy port) loses no token.
      const bootstrap = await ensureBootstrapToken(store, { now });
      if (bootstrap.token !== undefined) {
        out(`bootstrap admin token (shown only this once; only its hash is stored): ${bootstrap.token}`);
      }
      out(JSON.stringify({ event: 'listening', url: info.url, caFile, spiffeId, trustDomain: ca.trustDomain, pid: process.pid }));
      return cp;
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

  get url(): string {
    return this.info.url;
  }

  /** Ends streams, stops the server, then the node API and the store. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#renewTimer);
      await this.#server.close();
      await this.#nodeApi?.close();
      await this.#store.close();
    })();
    return this.#closing;
  }
}

// Composition root of `lockgate control-plane`: SQLite store, master key, CA, own certificate, HTTPS server, admin, node
// and CA APIs; CA changes (root rotation, intermediate renewal) reach the server's certificate, the bundle file and nodes.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../agent/atomic-file.ts';
import { adminApiRoutes } from '../control/admin-api.ts';
import { auditApiRoutes } from '../control/audit-api.ts';
import { adminTokenVerifier, ensureBootstrapToken } from '../control/bootstrap-token.ts';
import { CA_STATE_KEY, caApiRoutes, caAuditState, intermediateRenewalDue, StoredCa } from '../control/ca-api.ts';
import { CONFIG_PREFIX } from '../control/config-documents.ts';
import type { ControlRoute } from '../control/control-routes.ts';
import { ControlServer, type ControlServerTls } from '../control/control-server.ts';
import { openNodeApi, type NodeApi } from '../control/node-api.ts';
import { workloadId } from '../lib/spiffe-id.ts';
import { parseConfigText } from '../model/load-config.ts';
import { DEFAULT_MESH } from '../model/mesh-types.ts';
import { masterKeyRotation } from '../control/master-key-rotation.ts';
import { secretsApiRoutes } from '../control/secrets-api.ts';
import { SecretValueCache } from '../control/secret-values.ts';
import { SecretStore } from '../secrets/secret-store.ts';
import { loadMasterKeys, MASTER_KEY_FILE } from './master-key-source.ts';
import type { ConfigStore } from '../store/config-store.ts';
import { SqliteConfigStore } from '../store/sqlite-config-store.ts';
import { AssertionKeyStore } from '../control/assertion-keys.ts';
import { AccessRequests } from '../control/access-requests.ts';
import { accessApiRoutes, grantSource, settingsFromConfig, storedConfig } from '../control/access-api.ts';
import { adminAndPeopleVerifier, PeopleAuth } from '../control/people-auth.ts';
import { adminAuthApiRoutes } from '../control/admin-auth-api.ts';
import { assertionKeyRoutes } from '../control/assertion-keys-api.ts';
import { AuditLog, SYSTEM_ACTOR } from '../store/audit-log.ts';
import type { SignedAuditHead } from '../store/audit-record.ts';
import type { Snapshot } from '../model/snapshot.ts';

export { CA_STATE_KEY };
export const CONTROL_PLANE_FILE = 'control-plane.json';
export const CA_BUNDLE_FILE = 'ca-bundle.pem';
export { MASTER_KEY_FILE };
export const DEFAULT_LISTEN = { host: '127.0.0.1', port: 7443 };
/** How often the intermediate's remaining life is looked at (see intermediateRenewalDue). */
export const INTERMEDIATE_CHECK_MS = 3_600_000;
/** How often assertion keys are looked at (a published key starts signing within this of its time). */
export const ASSERTION_KEY_CHECK_MS = 5_000;
/** How often access requests are checked for expiry (nodes end access by the clock; this records it). */
export const ACCESS_SWEEP_MS = 1_000;

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

/** How often at most a newer audit head goes out in snapshots (each one is a push to every node). */
export const AUDIT_HEAD_PUBLISH_MS = 10_000;

/**
 * The audit head nodes get in their snapshots: the newest, at most every AUDIT_HEAD_PUBLISH_MS (a burst of changes
 * is one push, not one per record).
 */
function publishedHead(audit: AuditLog, changed: () => void): { readonly revision: number; current(): Snapshot['auditHead'] } {
  let head = audit.currentHead();
  let revision = 0;
  let timer: NodeJS.Timeout | undefined;
  audit.onHead(() => {
    if (timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      head = audit.currentHead();
      revision++;
      changed();
    }, AUDIT_HEAD_PUBLISH_MS);
    timer.unref();
  });
  return {
    get revision() {
      return revision;
    },
    current: () => head,
  };
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
  #audit: AuditLog | undefined;
  readonly #ac = new AbortController();
  #renewTimer: NodeJS.Timeout | undefined;
  #intermediateTimer: NodeJS.Timeout | undefined;
  #assertionTimer: NodeJS.Timeout | undefined;
  #accessTimer: NodeJS.Timeout | undefined;
  #people: PeopleAuth | undefined;
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
    let audit: AuditLog | undefined;
    try {
      const master = await loadMasterKeys(opts.dataDir, opts.env ?? process.env, log);
      const wrapper = master.keys;
      // The audit trail (`<data-dir>/audit.db`, head in audit-head.json): admin and CA changes are recorded there.
      audit = await AuditLog.open({ dataDir: opts.dataDir, wrapper, openWith: () => wrapper.all(), writeFile: (p, t) => writeFileAtomic(p, t, 0o644), now, log: event });
      const auditLog = audit;
      const mesh = await meshSettings(store, log);
      const { stored, created } = await StoredCa.open({ store, wrapper, openWith: () => wrapper.all(), now, trustDomain: mesh.trustDomain, onError: (err) => log(`certificate authority: ${(err as Error).message}`) });
      const trustDomain = stored.ca.trustDomain;
      const secrets = new SecretStore({ store, keys: wrapper, now });
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
      // End-user assertion keys (identity issue §2): in every snapshot, at /.well-known/lockgate/jwks.json.
      // Rotation steps are audited (published, retired); the rotation a person asks for is also recorded by its route.
      const keyEvent = (name: string, fields: Record<string, unknown>): void => {
        event(name, fields);
        // Rotation steps (the first key, made at the first start, is no rotation).
        if (name !== 'assertion_key_published' && name !== 'assertion_key_retired') return;
        const details: Record<string, string> = {};
        for (const [k, v] of Object.entries(fields)) if (typeof v === 'string') details[k] = v;
        void auditLog.append({ actor: SYSTEM_ACTOR, action: `identity.${name.replace(/_/g, '-')}`, target: 'identity/assertion-keys', reason: details.reason ?? '', details })
          .catch((err: unknown) => event('audit_append_failed', { action: name, error: (err as Error).message }));
      };
      const assertionKeys = await AssertionKeyStore.open({ store, wrapper, openWith: () => wrapper.all(), issuer: spiffeId, now, log: keyEvent });
      // Values of the secrets NamedValues name, for gateway snapshots (never logged; see docs/secrets.md).
      const secretValues = await SecretValueCache.open({ store, secrets, onError: (err) => event('named_value_secret_unavailable', { error: (err as Error).message }) });
      // Just-in-time access (identity issue §4): requests reviewed by people, approved ones as grants in snapshots.
      const accessRequests = await AccessRequests.open({ store, settings: settingsFromConfig(storedConfig(store)), audit: auditLog, now, log: event });
      const people = new PeopleAuth(store);
      const auditHead = publishedHead(auditLog, () => {
        try {
          nodeApi?.compiler.trustBundleChanged();
        } catch {
          // closed meanwhile: nobody to tell
        }
      });
      nodeApi = await openNodeApi({ store, ca: stored.view, now, log: event, assertionKeys, secretValues, grants: grantSource(accessRequests), auditHead, audit: auditLog });
      const api = nodeApi;
      const leafLifetime = (): number => api.compiler.meshSettings().certificateLifetime;
      const routes: ControlRoute[] = [
        ...adminApiRoutes({ store, version: opts.version, now, status: () => ({ trustDomain, spiffeId, time: new Date(now()).toISOString() }), audit: auditLog, log: event }),
        ...auditApiRoutes({ audit: auditLog }),
        ...api.routes,
        ...assertionKeyRoutes({ keys: assertionKeys, log: event, audit: auditLog }),
        ...accessApiRoutes({ requests: accessRequests, people, now }),
        ...adminAuthApiRoutes({ store, loginProviders: () => people.loginProviders(), now, audit: auditLog, log: event }),
        ...caApiRoutes({ ca: stored, nodes: () => api.tracker.list(), lifetimeMs: leafLifetime, controlPlane: () => own, now, log: event, audit: auditLog }),
        ...(await import('../control/backup-api.ts')).backupApiRoutes({ store, wrapper, trustDomain, now, log: event }),
        ...secretsApiRoutes({
          secrets, log: event, audit: auditLog,
          rotateMaster: masterKeyRotation({
            keys: wrapper, secrets, persistNext: master.persistNext, commit: master.commit, log: event,
            sealed: [
              { what: 'ca', reseal: (signal) => stored.reseal(signal) },
              { what: 'assertion-keys', reseal: () => assertionKeys.reseal(wrapper.current) },
              { what: 'audit-log', reseal: () => auditLog.reseal() },
            ],
          }),
        }),
      ];
      server = await ControlServer.listen({
        routes, tls: first.tls, trustDomain, verifyAdminToken: adminAndPeopleVerifier(adminTokenVerifier(store, now), people),
        host: opts.host ?? DEFAULT_LISTEN.host, port: opts.port ?? DEFAULT_LISTEN.port,
      });
      const caFile = join(opts.dataDir, CA_BUNDLE_FILE);
      await writeFileAtomic(caFile, stored.ca.trustBundle().join(''), 0o644);
      const info: ControlPlaneInfo = { url: clientUrl(server), caFile, spiffeId, trustDomain, pid: process.pid };
      await writeFileAtomic(join(opts.dataDir, CONTROL_PLANE_FILE), JSON.stringify(info, null, 2) + '\n', 0o644);
      const plane = new ControlPlane(info, store, server, nodeApi);
      plane.#audit = auditLog;
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
      assertionKeys.onChange(() => api.compiler.trustBundleChanged());
      accessRequests.onChange(() => api.compiler.trustBundleChanged());
      plane.#people = people;
      plane.#sweepAccess(accessRequests, event);
      secretValues.onChange(() => api.compiler.trustBundleChanged());
      plane.#ac.signal.addEventListener('abort', () => secretValues.close(), { once: true });
      plane.#maintainAssertionKeys(assertionKeys, event);
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
        await audit?.close();
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

  /** Expires access requests not reviewed in time and grants that ended (the audit trail records both). */
  #sweepAccess(requests: AccessRequests, event: (name: string, fields: Record<string, unknown>) => void): void {
    const run = (): void => void requests.sweep().catch((err: unknown) => {
      if (!this.#ac.signal.aborted) event('access_sweep_failed', { error: (err as Error).message });
    });
    this.#accessTimer = setInterval(run, ACCESS_SWEEP_MS);
    this.#accessTimer.unref();
  }

  /** Activates published keys when their time comes, retires old ones, rotates old signing keys. */
  #maintainAssertionKeys(keys: AssertionKeyStore, event: (name: string, fields: Record<string, unknown>) => void): void {
    const run = (): void => void keys.maintain().catch((err: unknown) => {
      if (!this.#ac.signal.aborted) event('assertion_key_maintenance_failed', { error: (err as Error).message });
    });
    this.#assertionTimer = setInterval(run, ASSERTION_KEY_CHECK_MS);
    this.#assertionTimer.unref();
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
      const before = caAuditState(stored.ca);
      await stored.change('renew-intermediate', (c) => c.renewIntermediate(), this.#ac.signal);
      await this.#audit?.append({ actor: SYSTEM_ACTOR, action: 'ca.renew-intermediate', target: 'ca', reason: 'automatic: the intermediate was near the end of its life', before, after: caAuditState(stored.ca) })
        .catch((err: unknown) => event('audit_append_failed', { action: 'ca.renew-intermediate', error: (err as Error).message }));
      event('ca_intermediate_renewed', { fingerprint: stored.ca.intermediateInfo().fingerprint, notAfter: new Date(stored.ca.intermediateInfo().notAfter).toISOString(), automatic: true });
    };
    const run = (): void => void check().catch((err: unknown) => {
      if (!this.#ac.signal.aborted) event('ca_intermediate_renewal_failed', { error: (err as Error).message });
    });
    run();
    this.#intermediateTimer = setInterval(run, INTERMEDIATE_CHECK_MS);
    this.#intermediateTimer.unref();
  }

  /** The newest signed audit head ({count, lastHash, time, keyId, signature}), for publishing in snapshots. */
  currentAuditHead(): SignedAuditHead | undefined {
    return this.#audit?.currentHead();
  }

  /** Where later features (access requests, denies, secret reveals) record into the audit trail. */
  get audit(): AuditLog | undefined {
    return this.#audit;
  }

  get url(): string {
    return this.info.url;
  }

  /** Ends streams, stops the server, then the node API and the store. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      clearTimeout(this.#renewTimer);
      clearInterval(this.#intermediateTimer);
      clearInterval(this.#assertionTimer);
      clearInterval(this.#accessTimer);
      this.#people?.close();
      this.#ac.abort();
      await this.#server.close();
      await this.#nodeApi?.close();
      await this.#audit?.close();
      await this.#store.close();
    })();
    return this.#closing;
  }
}

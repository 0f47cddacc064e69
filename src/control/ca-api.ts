// The CA's admin routes (show, root rotation, intermediate renewal, the expiry gauge) and the store-backed holder
// every CA change goes through: a change is made on a fresh copy, saved with compare-and-swap, and only then served.
import { X509Certificate } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { CaError } from '../ca/ca-error.ts';
import { CertificateAuthority } from '../ca/certificate-authority.ts';
import type { KeyWrapper } from '../secrets/key-wrapper.ts';
import type { AuditSink } from '../store/audit-record.ts';
import type { ConfigStore } from '../store/config-store.ts';
import { auditRecorder, callerActor, reasonOf } from './audit-api.ts';
import { ControlError, sendJson } from './control-server.ts';
import type { ControlRequest, ControlRoute, RouteContext } from './control-routes.ts';
import { bundleFingerprint, type NodeStatus } from './node-tracker.ts';

/** Where the sealed CA state lives; config-index watches `/ca/`, so a write here pushes the new bundle to every node. */
export const CA_STATE_KEY = '/ca/state';

export type CaChange = 'rotate-start' | 'rotate-finish' | 'renew-intermediate' | 'reload';

export interface StoredCaOptions {
  store: ConfigStore;
  /** Seals the private keys on save and opens them on load. */
  wrapper: KeyWrapper;
  /** Every master key a stored state may be sealed under (mid-rotation: the new and the old); default [wrapper]. */
  openWith?: () => readonly KeyWrapper[];
  now?: () => number;
  /** A listener failed after a change was committed. */
  onError?: (err: unknown) => void;
}

/** The CA the control plane serves, kept equal to `/ca/state` in the store. */
export class StoredCa {
  readonly #o: StoredCaOptions;
  readonly #listeners = new Set<(change: CaChange) => void | Promise<void>>();
  #ca: CertificateAuthority;
  #revision: number;
  #queue: Promise<unknown> = Promise.resolve();

  /** A view for the node API and the snapshot compiler that always speaks for the current CA. */
  readonly view: {
    readonly trustDomain: string;
    trustBundle(): string[];
    issueFromCsr: CertificateAuthority['issueFromCsr'];
    issueWithKey: CertificateAuthority['issueWithKey'];
  };

  private constructor(o: StoredCaOptions, ca: CertificateAuthority, revision: number) {
    this.#o = o;
    this.#ca = ca;
    this.#revision = revision;
    // The trust domain is fixed for the life of the process (a restored CA of another domain is refused in refresh()).
    this.view = {
      trustDomain: ca.trustDomain,
      trustBundle: () => this.#ca.trustBundle(),
      issueFromCsr: (csr, id, ms) => this.#ca.issueFromCsr(csr, id, ms),
      issueWithKey: (id, ms) => this.#ca.issueWithKey(id, ms),
    };
  }

  /** Loads the stored CA, or creates one for `trustDomain` (`created` says so); when two starts race, one wins. */
  static async open(o: StoredCaOptions & { trustDomain: string; signal?: AbortSignal }): Promise<{ stored: StoredCa; created: boolean }> {
    const now = o.now ?? Date.now;
    const kv = await o.store.get(CA_STATE_KEY, { signal: o.signal });
    if (kv) return { stored: new StoredCa(o, await CertificateAuthority.load(kv.value, o.openWith?.() ?? [o.wrapper], { now }), kv.modRevision), created: false };
    const ca = await CertificateAuthority.create({ trustDomain: o.trustDomain, now });
    const put = await o.store.put(CA_STATE_KEY, await ca.save(o.wrapper), { ifModRevision: 0, signal: o.signal });
    if (put.ok) return { stored: new StoredCa(o, ca, put.revision), created: true };
    const won = (await o.store.get(CA_STATE_KEY, { signal: o.signal }))!;
    return { stored: new StoredCa(o, await CertificateAuthority.load(won.value, o.openWith?.() ?? [o.wrapper], { now }), won.modRevision), created: false };
  }

  get ca(): CertificateAuthority {
    return this.#ca;
  }

  /** The modRevision of `/ca/state` the served CA was loaded from or saved as. */
  get revision(): number {
    return this.#revision;
  }

  /** Called after every committed change (and after a reload of a state written by someone else), in order. */
  onChange(listener: (change: CaChange) => void | Promise<void>): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Applies `op` to a copy loaded from the store, saves the copy with compare-and-swap on the revision it was read
   * at, then serves it and tells listeners. A failing `op` or a lost race changes nothing (409 for the race).
   */
  change(change: Exclude<CaChange, 'reload'>, op: (ca: CertificateAuthority) => Promise<void>, signal?: AbortSignal): Promise<void> {
    return this.#exclusive(async () => {
      const kv = await this.#o.store.get(CA_STATE_KEY, { signal });
      if (!kv) throw new ControlError('unavailable', `the CA state is missing from the store (${CA_STATE_KEY})`);
      const copy = await CertificateAuthority.load(kv.value, this.#openWith(), { now: this.#o.now });
      await op(copy);
      const put = await this.#o.store.put(CA_STATE_KEY, await copy.save(this.#o.wrapper), { ifModRevision: kv.modRevision, signal });
      if (!put.ok) throw new ControlError('conflict', 'the CA state changed while this change was being made; retry');
      this.#ca = copy;
      this.#revision = put.revision;
      await this.#notify(change);
    });
  }

  /**
   * Saves the stored state again, its private keys sealed under the current master key (master-key rotation). The
   * CA does not change, so nobody is told; compare-and-swap as for changes.
   */
  reseal(signal?: AbortSignal): Promise<void> {
    return this.#exclusive(async () => {
      const kv = await this.#o.store.get(CA_STATE_KEY, { signal });
      if (!kv) throw new ControlError('unavailable', `the CA state is missing from the store (${CA_STATE_KEY})`);
      const copy = await CertificateAuthority.load(kv.value, this.#openWith(), { now: this.#o.now });
      const put = await this.#o.store.put(CA_STATE_KEY, await copy.save(this.#o.wrapper), { ifModRevision: kv.modRevision, signal });
      if (!put.ok) throw new ControlError('conflict', 'the CA state changed while it was being re-sealed; retry');
      this.#ca = copy;
      this.#revision = put.revision;
    });
  }

  #openWith(): readonly KeyWrapper[] {
    return this.#o.openWith?.() ?? [this.#o.wrapper];
  }

  /** Serves the stored state when it is newer than ours (a restore, another control plane); true when it was. */
  refresh(signal?: AbortSignal): Promise<boolean> {
    return this.#exclusive(async () => {
      const kv = await this.#o.store.get(CA_STATE_KEY, { signal });
      if (!kv || kv.modRevision <= this.#revision) return false;
      const ca = await CertificateAuthority.load(kv.value, this.#openWith(), { now: this.#o.now });
      if (ca.trustDomain !== this.#ca.trustDomain) {
        throw new CaError('ca_state_invalid', `the stored CA is for trust domain "${ca.trustDomain}", this control plane serves "${this.#ca.trustDomain}": restart it`);
      }
      this.#ca = ca;
      this.#revision = kv.modRevision;
      await this.#notify('reload');
      return true;
    });
  }

  /** Follows `/ca/state` until `signal` aborts, refreshing on writes made by others. */
  async follow(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        for await (const ev of this.#o.store.watch(CA_STATE_KEY, this.#revision + 1, signal)) {
          if (ev.type !== 'COMPACTED' && (ev.key !== CA_STATE_KEY || ev.modRevision <= this.#revision)) continue;
          // A state we cannot serve is reported once; the watch goes on (the next write may be a good one).
          await this.refresh(signal).catch((err: unknown) => void (signal.aborted || this.#o.onError?.(err)));
        }
        return; // the store closed
      } catch (err) {
        if (signal.aborted) return;
        this.#o.onError?.(err);
        await new Promise((r) => setTimeout(r, 1000).unref());
      }
    }
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #notify(change: CaChange): Promise<void> {
    for (const l of this.#listeners) {
      try {
        await l(change);
      } catch (err) {
        (this.#o.onError ?? ((e: unknown) => process.stderr.write(`ca: ${(e as Error).message}\n`)))(err);
      }
    }
  }
}

/** A node that still holds a certificate chaining to a root other than the active one. */
export interface OldRootHolder {
  id: string;
  spiffeId: string;
  /** The root its certificate chains to; null when the control plane never recorded one (issued by an older build). */
  root: string | null;
  certificateNotAfter: number | null;
  connected: boolean;
  lastSeen: number;
}

/**
 * Nodes a root rotation cannot finish without: their certificate chains to another root than `activeRoot` and has not
 * expired; or (no root recorded) they were seen within the last leaf lifetime.
 */
export function nodesOnOldRoots(nodes: readonly NodeStatus[], activeRoot: string, now: number, lifetimeMs: number): OldRootHolder[] {
  const held = nodes.filter((n) =>
    n.root !== undefined ? n.root !== activeRoot && (n.certificateNotAfter ?? 0) > now : n.connected || now - n.lastSeen < lifetimeMs);
  return held.map((n) => ({
    id: n.id, spiffeId: n.identity.spiffeId, root: n.root ?? null, certificateNotAfter: n.certificateNotAfter ?? null, connected: n.connected, lastSeen: n.lastSeen,
  }));
}

export interface CaApiDeps {
  ca: StoredCa;
  /** The node tracker's list. */
  nodes: () => readonly NodeStatus[];
  /** The Mesh's leaf lifetime now. */
  lifetimeMs: () => number;
  /** The control plane's own certificate (for the view and the expiry gauge). */
  controlPlane?: () => { notAfter: number; issuedAt: number } | undefined;
  now?: () => number;
  log?: (event: string, fields: Record<string, unknown>) => void;
  /** Records each rotation step and renewal (actor, reason, request id, the CA's public state before and after). */
  audit?: AuditSink;
}

const DAY_MS = 86_400_000;

/** The CA's public state as the audit trail keeps it: fingerprints and phase, never a key. */
export function caAuditState(ca: CertificateAuthority): string {
  const status = ca.rotationStatus();
  const inter = ca.intermediateInfo();
  return JSON.stringify({ phase: status.phase, roots: status.roots.map((r) => ({ fingerprint: r.fingerprint, active: r.active })), intermediate: inter.fingerprint });
}

/**
 * Whether the intermediate should be renewed now: less than max(30 d, 2 × max(leaf lifetime, 1 d)) of its life is
 * left (30 d so that `lockgate check`'s expiry warning means renewal is failing, 2 leaf lifetimes so no leaf is ever cut
 * short by it), it is not revoked (that is the operator's call), and a new one would outlive it (it cannot outlive the
 * root: near the root's end only a root rotation helps).
 */
export function intermediateRenewalDue(inter: { notAfter: number; revoked: boolean }, rootNotAfter: number, leafLifetimeMs: number, now: number): boolean {
  if (inter.revoked) return false;
  const threshold = Math.max(30 * DAY_MS, 2 * Math.max(leafLifetimeMs, DAY_MS));
  return inter.notAfter - now < threshold && rootNotAfter > inter.notAfter + 3_600_000;
}

function notBeforeOf(pem: string): number | null {
  try {
    return new X509Certificate(pem).validFromDate.getTime();
  } catch {
    return null;
  }
}

/** What GET /v1/ca answers (and the rotation routes, after their change). */
export function caView(deps: CaApiDeps): Record<string, unknown> {
  const now = (deps.now ?? Date.now)();
  const ca = deps.ca.ca;
  const status = ca.rotationStatus();
  const bundle = ca.trustBundle();
  const inter = ca.intermediateInfo();
  const active = status.roots.find((r) => r.active)!;
  const lifetimeMs = deps.lifetimeMs();
  const cp = deps.controlPlane?.();
  return {
    trustDomain: ca.trustDomain,
    bundleFingerprint: bundleFingerprint(bundle),
    roots: status.roots.map((r, i) => ({ ...r, notBefore: notBeforeOf(bundle[i]), certPem: bundle[i] })),
    intermediate: { fingerprint: inter.fingerprint, notBefore: inter.notBefore, notAfter: inter.notAfter, revoked: inter.revoked, root: active.fingerprint },
    rotation: { phase: status.phase, ...(status.startedAt !== undefined ? { startedAt: status.startedAt } : {}) },
    certificateLifetimeMs: lifetimeMs,
    ...(cp ? { controlPlane: cp } : {}),
    nodesOnOldRoot: nodesOnOldRoots(deps.nodes(), active.fingerprint, now, lifetimeMs),
    time: now,
  };
}

/** CA refusals as HTTP answers: a state conflict (rotation already running, none running, root expired) is a 409. */
function caFailure(err: unknown): unknown {
  if (!(err instanceof CaError)) return err;
  if (err.code === 'ca_rotation_in_progress' || err.code === 'ca_not_rotating' || err.code === 'ca_invalid_root') {
    return new ControlError('conflict', err.message, { details: { caCode: err.code }, cause: err });
  }
  if (err.code === 'ca_state_key' || err.code === 'ca_state_invalid') return new ControlError('unavailable', err.message, { cause: err });
  return err;
}

function flag(query: URLSearchParams, name: string): boolean {
  const v = query.get(name);
  if (v === null || v === 'false' || v === '0') return false;
  if (v === '' || v === 'true' || v === '1') return true;
  throw new ControlError('bad_request', `?${name} must be true or false`);
}

/** One line per node for the 409 of `rotate finish`. */
function holdersText(holders: readonly OldRootHolder[]): string {
  const shown = holders.slice(0, 20).map((h) => `${h.id} (${h.spiffeId}${h.root === null ? ', root unknown' : ''}${h.certificateNotAfter !== null ? `, certificate valid until ${new Date(h.certificateNotAfter).toISOString()}` : ''})`);
  return shown.join('; ') + (holders.length > shown.length ? `; and ${holders.length - shown.length} more` : '');
}

/** Prometheus text: `lockgate_certificate_expiry_timestamp_seconds{kind="root|intermediate|control-plane"}`. */
export function expiryMetrics(deps: CaApiDeps): string {
  const ca = deps.ca.ca;
  const inter = ca.intermediateInfo();
  const cp = deps.controlPlane?.();
  const name = 'lockgate_certificate_expiry_timestamp_seconds';
  const lines = [
    `# HELP ${name} When a certificate of the control plane expires (Unix time, seconds).`,
    `# TYPE ${name} gauge`,
    ...ca.rotationStatus().roots.map((r) => `${name}{kind="root",fingerprint="${r.fingerprint}",active="${r.active}"} ${r.notAfter / 1000}`),
    `${name}{kind="intermediate",fingerprint="${inter.fingerprint}"} ${inter.notAfter / 1000}`,
    ...(cp ? [`${name}{kind="control-plane"} ${cp.notAfter / 1000}`] : []),
  ];
  return `${lines.join('\n')}\n`;
}

export function caApiRoutes(deps: CaApiDeps): ControlRoute[] {
  const now = deps.now ?? Date.now;
  const log = deps.log ?? ((event, fields) => process.stderr.write(`${JSON.stringify({ event, ...fields })}\n`));
  const by = (caller: { kind: string; subject?: string }): string | undefined => (caller.kind === 'admin' ? caller.subject : undefined);
  const record = auditRecorder(deps.audit, deps.log);

  const run = async (change: Exclude<CaChange, 'reload'>, op: (ca: CertificateAuthority) => Promise<void>, signal: AbortSignal, req?: ControlRequest, cx?: RouteContext): Promise<void> => {
    let before = '';
    try {
      await deps.ca.change(change, async (ca) => {
        before = caAuditState(ca);
        await op(ca);
      }, signal);
    } catch (err) {
      throw caFailure(err);
    }
    if (req !== undefined && cx !== undefined) {
      await record({ actor: callerActor(cx.caller), action: `ca.${change}`, target: 'ca', reason: reasonOf(req), requestId: cx.requestId, before, after: caAuditState(deps.ca.ca) });
    }
  };

  return [
    {
      method: 'GET', path: '/v1/ca', auth: 'admin', cluster: 'read',
      handle: async (_req, res) => sendJson(res, 200, caView(deps)),
    },
    {
      method: 'POST', path: '/v1/ca/rotate/start', auth: 'admin', cluster: 'manage',
      handle: async (req, res, cx) => {
        await run('rotate-start', (ca) => ca.rotateStart(), cx.signal, req, cx);
        const status = deps.ca.ca.rotationStatus();
        log('ca_rotation_started', { roots: status.roots.map((r) => r.fingerprint), by: by(cx.caller), requestId: cx.requestId });
        sendJson(res, 200, caView(deps));
      },
    },
    {
      method: 'POST', path: '/v1/ca/rotate/finish', auth: 'admin', cluster: 'manage',
      handle: async (req, res, cx) => {
        const force = flag(cx.query, 'force');
        let forced: OldRootHolder[] = [];
        await run('rotate-finish', async (ca) => {
          const status = ca.rotationStatus();
          if (status.phase !== 'rotating') throw new CaError('ca_not_rotating', 'no root rotation is in progress (start one with lockgate ca rotate start)');
          const active = status.roots.find((r) => r.active)!.fingerprint;
          const holders = nodesOnOldRoots(deps.nodes(), active, now(), deps.lifetimeMs());
          if (holders.length > 0 && !force) {
            throw new ControlError('conflict',
              `${holders.length} node${holders.length === 1 ? '' : 's'} still hold${holders.length === 1 ? 's' : ''} a certificate chaining to the old root, ` +
              `and would be cut off: ${holdersText(holders)}. Wait until they renew (at half their certificate's life), or finish with ?force=true`,
              { details: { nodes: holders } });
          }
          forced = holders;
          await ca.rotateFinish();
        }, cx.signal, req, cx);
        log('ca_rotation_finished', { root: deps.ca.ca.rotationStatus().roots[0].fingerprint, forced: forced.map((h) => h.id), by: by(cx.caller), requestId: cx.requestId });
        sendJson(res, 200, { ...caView(deps), ...(forced.length > 0 ? { cutOff: forced } : {}) });
      },
    },
    {
      method: 'POST', path: '/v1/ca/intermediate/renew', auth: 'admin', cluster: 'manage',
      handle: async (req, res, cx) => {
        await run('renew-intermediate', (ca) => ca.renewIntermediate(), cx.signal, req, cx);
        log('ca_intermediate_renewed', { fingerprint: deps.ca.ca.intermediateInfo().fingerprint, by: by(cx.caller), requestId: cx.requestId });
        sendJson(res, 200, caView(deps));
      },
    },
    {
      // No authentication: every value here is in certificates the control plane shows in each TLS handshake anyway,
      // and a Prometheus scrape then needs no admin token.
      method: 'GET', path: '/metrics', auth: 'none',
      handle: async (_req, res) => {
        const text = expiryMetrics(deps);
        (res as ServerResponse).writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': String(Buffer.byteLength(text)) });
        res.end(text);
      },
    },
  ];
}

// The node side of the control plane: join, the snapshot stream (validate, apply, ACK/NACK, keep the last good one on
// disk), endpoint registration, certificate renewal, reconnects with backoff.
import type { ReportedDecision } from '../telemetry/decision-batcher.ts';
import { join as joinPath } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { constants, type ClientHttp2Stream } from 'node:http2';
import { createKeyAndCsr } from '../ca/csr.ts';
import { checkServerSpiffeId } from '../ca/peer-identity.ts';
import { SNAPSHOT_SCHEMA, snapshotSchemaSupported, type Snapshot, type SnapshotAck } from '../model/snapshot.ts';
import { applySnapshotDelta, configDocs, configPieces, type ConfigDocs, type SnapshotDelta } from '../model/snapshot-delta.ts';
import { noteConfigPieces } from '../model/parse-documents.ts';
import { backoffDelay, sleep } from './backoff.ts';
import { ControlSession } from './control-session.ts';
import { credentialFiles, loadNodeState, readCredentials, saveNodeState, writeCredentials, type CredentialFiles, type NodeState } from './credentials.ts';
import { controlPlaneSpiffeId, joinControlPlane } from './join.ts';
import { RenewalLoop } from './renewal.ts';
import { loadSnapshotFile, saveSnapshotFile } from './snapshot-file.ts';

export type ApplyResult = { ok: true } | { ok: false; reason: string };

export interface EndpointRegistration {
  address: string;
  labels?: Record<string, string>;
  healthy?: boolean;
  /** Where the sidecar's app listens, so `lockgate check` can tell whether it is reachable around the sidecar. */
  app?: { address: string; transport: 'tcp' | 'unix' };
}

export interface ControlClientOptions {
  /** `https://host:port` of the control plane. */
  url: string;
  /** Holds node.json and snapshot.json. */
  dataDir: string;
  /** Holds cert.pem, key.pem, bundle.pem (default `<dataDir>/certs`). */
  certDir?: string;
  /** Builds and swaps the data plane; a failure is NACKed with its reason and the running version keeps serving. */
  onSnapshot: (snapshot: Snapshot) => Promise<ApplyResult>;
  /** Checks a snapshot before onSnapshot (the app parses `config` with the model's loader); problems are NACKed. */
  validate?: (snapshot: Snapshot) => string[];
  /** New certificate or trust bundle files are in place: new connections should use them. */
  onCertificate?: (files: CredentialFiles) => void | Promise<void>;
  /** One line per event worth telling an operator. */
  log?: (event: string, fields: Record<string, unknown>) => void;
  now?: () => number;
  random?: () => number;
  /** Reconnect backoff: from initialMs doubling up to maxMs (default 200 ms … 10 s), jittered. */
  reconnect?: { initialMs?: number; maxMs?: number };
  /** No line (snapshot or heartbeat) for this long: the connection is dead, reconnect (default 45 s). */
  heartbeatTimeoutMs?: number;
  requestTimeoutMs?: number;
  renewRetryCapMs?: number;
}

export interface ClientStatus {
  connected: boolean;
  /** The version applied last (from the stream or from disk). */
  version: number | undefined;
  endpointsVersion: number | undefined;
  lastError: string | undefined;
  certificateNotAfter: number | undefined;
}

const SNAPSHOT_PREFIX = '{"type":"snapshot","snapshot":';
/** A snapshot's JSON as it came, or made on demand (a delta's); undefined: serialize the snapshot. */
type SnapshotJson = string | (() => readonly string[]) | undefined;
/** The last good snapshot is written to disk at most this often (the newest always, eventually). */
const SAVE_INTERVAL_MS = 1000;

/** The same snapshot (a reconnect sends the current one again: it is ACKed, not applied twice). */
function sameSnapshot(a: Snapshot, b: Snapshot): boolean {
  if (a === b) return true;
  if (a.version !== b.version || a.endpointsVersion !== b.endpointsVersion || a.schema !== b.schema || a.config !== b.config) return false;
  // secrets: a new secret version changes no config text, only the values beside it (schema 1.1); nor does an
  // assertion key rotation step (identity).
  return JSON.stringify([a.node, a.endpoints, a.trustBundle, a.secrets ?? null, a.identity ?? null, a.auditHead?.signature ?? null]) ===
    JSON.stringify([b.node, b.endpoints, b.trustBundle, b.secrets ?? null, b.identity ?? null, b.auditHead?.signature ?? null]);
}

export class ControlClient {
  readonly #o: ControlClientOptions;
  readonly #files: CredentialFiles;
  readonly #statePath: string;
  readonly #snapshotPath: string;
  readonly #now: () => number;
  readonly #ac = new AbortController();
  #state: NodeState | undefined;
  #creds: { chainPem: string; keyPem: string; bundle: string[] } | undefined;
  #session: ControlSession | undefined;
  #streamAc: AbortController | undefined;
  #restart = false;
  #loops: Array<Promise<void>> = [];
  #renewal: RenewalLoop | undefined;
  #endpoint: EndpointRegistration | undefined;
  #current: Snapshot | undefined;
  /**
   * The last snapshot received on this stream (applied or not) and its config documents: what the control plane's
   * next delta is made against. Reset when a stream opens.
   */
  #received: { snapshot: Snapshot; docs: ConfigDocs } | undefined;
  /** `key`: the snapshot's JSON (as a whole snapshot line carried it, or as a delta rebuilds it), saved as it is. */
  #pending: { snapshot: Snapshot; key: SnapshotJson } | undefined;
  #applying: Promise<void> | undefined;
  #toSave: { snapshot: Snapshot; key: SnapshotJson } | undefined;
  #saving: Promise<void> = Promise.resolve();
  #lastSaveAt = -Infinity;
  /** Counts bundle changes taken from the stream, so a renewal answer never overwrites a newer bundle. */
  #bundleEpoch = 0;
  #status: ClientStatus = { connected: false, version: undefined, endpointsVersion: undefined, lastError: undefined, certificateNotAfter: undefined };

  constructor(o: ControlClientOptions) {
    this.#o = o;
    this.#files = credentialFiles(o.certDir ?? joinPath(o.dataDir, 'certs'));
    this.#statePath = joinPath(o.dataDir, 'node.json');
    this.#snapshotPath = joinPath(o.dataDir, 'snapshot.json');
    this.#now = o.now ?? Date.now;
  }

  get files(): CredentialFiles {
    return { ...this.#files };
  }

  /** What the join returned (undefined before join() or load()). */
  get node(): NodeState | undefined {
    return this.#state && { ...this.#state };
  }

  get status(): ClientStatus {
    return { ...this.#status };
  }

  /** Reads node.json and the credentials; false when this data dir has not joined yet. */
  async load(): Promise<boolean> {
    const state = await loadNodeState(this.#statePath);
    if (!state) return false;
    this.#creds = await readCredentials(this.#files);
    this.#state = state;
    this.#status.certificateNotAfter = state.notAfter;
    return true;
  }

  /** Trades a one-time token for an identity; writes key (0600), certificate, bundle and node.json. */
  async join(token: string, o: { node?: string; endpoint?: EndpointRegistration; signal?: AbortSignal } = {}): Promise<NodeState> {
    const signal = o.signal ? AbortSignal.any([o.signal, this.#ac.signal]) : this.#ac.signal;
    const r = await joinControlPlane({ url: this.#o.url, token, node: o.node, endpoint: o.endpoint, signal, timeoutMs: this.#o.requestTimeoutMs });
    await mkdir(this.#o.dataDir, { recursive: true, mode: 0o700 });
    await writeCredentials(this.#files, { keyPem: r.keyPem, chainPem: r.chainPem, bundle: r.bundle });
    const state: NodeState = {
      format: 1, nodeId: r.nodeId, spiffeId: r.spiffeId, kind: r.kind, namespace: r.namespace, service: r.service,
      trustDomain: r.trustDomain, receivedAt: this.#now(), notAfter: r.notAfter,
    };
    await saveNodeState(this.#statePath, state);
    this.#state = state;
    this.#creds = { chainPem: r.chainPem, keyPem: r.keyPem, bundle: r.bundle };
    this.#status.certificateNotAfter = r.notAfter;
    if (o.endpoint) this.#endpoint = { ...o.endpoint };
    this.#log('joined', { node: r.nodeId, spiffeId: r.spiffeId, notAfter: new Date(r.notAfter).toISOString() });
    return { ...state };
  }

  /**
   * The last good snapshot from disk (to serve from while the control plane is unreachable), or undefined. The caller
   * applies it; it then counts as applied, so the same snapshot arriving on the stream is ACKed without a rebuild.
   */
  async loadLastGood(): Promise<Snapshot | undefined> {
    const r = await loadSnapshotFile(this.#snapshotPath);
    if (!r.ok) {
      if (!r.missing) this.#log('snapshot_file_ignored', { message: r.message });
      return undefined;
    }
    this.#current = r.snapshot;
    this.#status.version = r.snapshot.version;
    this.#status.endpointsVersion = r.snapshot.endpointsVersion;
    return r.snapshot;
  }

  /** Opens the stream (reconnecting forever) and starts certificate renewal. Needs join() or load() first. */
  start(): void {
    if (!this.#state || !this.#creds) throw new Error('the node has not joined: call join(token) or load() first');
    if (this.#loops.length > 0) return;
    if (this.#state.notAfter <= this.#now()) this.#log('certificate_expired', { notAfter: new Date(this.#state.notAfter).toISOString(), hint: 'join again with a new token' });
    this.#loops.push(this.#streamLoop());
    this.#renewal = new RenewalLoop({
      renew: (signal) => this.#renew(signal),
      current: () => ({ receivedAt: this.#state!.receivedAt, notAfter: this.#state!.notAfter }),
      now: this.#now,
      random: this.#o.random,
      retryCapMs: this.#o.renewRetryCapMs,
      onError: (err, attempt) => this.#log('renew_failed', { attempt, error: (err as Error).message, notAfter: new Date(this.#state!.notAfter).toISOString() }),
    });
    this.#renewal.start();
  }

  /** Registers this node's endpoint now (when reachable) and again after every reconnect. */
  async register(endpoint: EndpointRegistration, signal?: AbortSignal): Promise<boolean> {
    this.#endpoint = { ...endpoint };
    return this.#putEndpoint(signal);
  }

  /** Drain: removes this node's endpoint first, so callers stop picking it. */
  async deregister(signal?: AbortSignal): Promise<boolean> {
    this.#endpoint = undefined;
    if (!this.#state) return false;
    try {
      await this.#call('DELETE', `/v1/endpoints?node=${encodeURIComponent(this.#state.nodeId)}`, undefined, signal);
      return true;
    } catch (err) {
      this.#log('deregister_failed', { error: (err as Error).message });
      return false;
    }
  }

  async close(): Promise<void> {
    this.#ac.abort();
    await this.#renewal?.close();
    await Promise.allSettled(this.#loops);
    await this.#applying;
    await this.#saving;
    this.#session?.destroy();
    this.#session = undefined;
  }

  #log(event: string, fields: Record<string, unknown>): void {
    this.#o.log?.(event, { node: this.#state?.nodeId, ...fields });
  }

  #sessionNow(): ControlSession {
    if (!this.#session || this.#session.closed) {
      this.#session?.destroy();
      const c = this.#creds!;
      this.#session = new ControlSession(this.#o.url, {
        ca: c.bundle, cert: c.chainPem, key: c.keyPem, verify: true,
        checkServerIdentity: checkServerSpiffeId([controlPlaneSpiffeId(this.#state!.trustDomain)]),
      });
    }
    return this.#session;
  }

  /** New credentials: later calls connect with them, and the stream moves over to a new connection. */
  #credentialsChanged(): void {
    const old = this.#session;
    this.#session = undefined;
    old?.close();
    this.#restart = true;
    this.#streamAc?.abort();
  }

  /**
   * Hands a batch of access decisions (denies, audit decisions, sampled allows) to the control plane's audit trail.
   * Best effort: a failure is logged and the batch dropped (the node's access log still has every deny).
   */
  async reportDecisions(decisions: readonly ReportedDecision[], dropped: number): Promise<boolean> {
    if (!this.#state || (decisions.length === 0 && dropped === 0)) return false;
    try {
      await this.#call('POST', '/v1/decisions', { node: this.#state.nodeId, decisions, dropped });
      return true;
    } catch (err) {
      this.#log('decisions_report_failed', { count: decisions.length, error: (err as Error).message });
      return false;
    }
  }

  async #call(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
    const s = signal ? AbortSignal.any([signal, this.#ac.signal]) : this.#ac.signal;
    return (await this.#sessionNow().json(method, path, { body, signal: s, timeoutMs: this.#o.requestTimeoutMs })).body;
  }

  async #putEndpoint(signal?: AbortSignal): Promise<boolean> {
    const e = this.#endpoint;
    if (!e || !this.#state) return false;
    try {
      await this.#call('PUT', '/v1/endpoints', { node: this.#state.nodeId, address: e.address, labels: e.labels ?? {}, healthy: e.healthy ?? true, ...(e.app ? { app: e.app } : {}) }, signal);
      return true;
    } catch (err) {
      this.#log('register_failed', { error: (err as Error).message });
      return false;
    }
  }

  async #streamLoop(): Promise<void> {
    const signal = this.#ac.signal;
    let attempt = 0;
    while (!signal.aborted) {
      const ac = new AbortController();
      this.#streamAc = ac;
      this.#restart = false;
      const s = AbortSignal.any([signal, ac.signal]);
      try {
        const path = `/v1/stream?node=${encodeURIComponent(this.#state!.nodeId)}&schema=${SNAPSHOT_SCHEMA}&delta=1`;
        this.#received = undefined;
        const headerTimer = setTimeout(() => ac.abort(new Error('the control plane did not answer the stream request in time')), this.#o.requestTimeoutMs ?? 10_000);
        let opened;
        try {
          opened = await this.#sessionNow().open('GET', path, s);
        } finally {
          clearTimeout(headerTimer);
        }
        if (opened.status !== 200) {
          opened.stream.close(constants.NGHTTP2_CANCEL);
          throw new Error(`the control plane refused the stream: ${opened.status}${opened.status === 404 ? ' (unknown node: join again)' : ''}`);
        }
        this.#status.connected = true;
        this.#status.lastError = undefined;
        this.#log('connected', { url: this.#o.url });
        void this.#putEndpoint(s);
        await this.#readLines(opened.stream, ac, () => (attempt = 0));
        throw new Error('the control plane ended the stream');
      } catch (err) {
        if (signal.aborted) break;
        if (this.#restart) {
          this.#restart = false;
          continue; // moved to new credentials: reconnect at once
        }
        const message = (ac.signal.reason as Error | undefined)?.message ?? (err as Error).message;
        this.#status.lastError = message;
        this.#log('disconnected', { error: message });
      } finally {
        if (this.#status.connected) this.#status.connected = false;
      }
      await sleep(backoffDelay(attempt++, { ...this.#o.reconnect, random: this.#o.random }), signal);
    }
  }

  /** Splits the NDJSON stream into lines (a snapshot may span many chunks), with a heartbeat watchdog. */
  async #readLines(stream: ClientHttp2Stream, ac: AbortController, onData: () => void): Promise<void> {
    const timeoutMs = this.#o.heartbeatTimeoutMs ?? 45_000;
    const watchdog = setTimeout(() => ac.abort(new Error(`no heartbeat from the control plane for ${timeoutMs} ms`)), timeoutMs);
    const onAbort = (): void => stream.close(constants.NGHTTP2_CANCEL);
    ac.signal.addEventListener('abort', onAbort, { once: true });
    stream.setEncoding('utf8');
    const parts: string[] = [];
    try {
      for await (const chunk of stream as AsyncIterable<string>) {
        watchdog.refresh();
        let start = 0;
        for (let nl = chunk.indexOf('\n'); nl !== -1; nl = chunk.indexOf('\n', start)) {
          parts.push(chunk.slice(start, nl));
          const line = parts.join('');
          parts.length = 0;
          start = nl + 1;
          if (line !== '') {
            onData();
            this.#onLine(line, ac);
          }
        }
        if (start < chunk.length) parts.push(chunk.slice(start));
      }
    } finally {
      clearTimeout(watchdog);
      ac.signal.removeEventListener('abort', onAbort);
    }
    ac.signal.throwIfAborted();
  }

  #onLine(line: string, ac: AbortController): void {
    let msg: { type?: unknown; snapshot?: Snapshot; delta?: SnapshotDelta; message?: unknown };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      this.#log('stream_garbage', { length: line.length });
      return;
    }
    if (msg.type === 'snapshot' && typeof msg.snapshot === 'object' && msg.snapshot !== null) {
      const key = line.startsWith(SNAPSHOT_PREFIX) && line.endsWith('}') ? line.slice(SNAPSHOT_PREFIX.length, -1) : undefined;
      // Cut into documents now: the first parse then caches the very pieces the deltas that follow are made of.
      const docs = configDocs(msg.snapshot.config);
      this.#received = { snapshot: msg.snapshot, docs };
      noteConfigPieces(msg.snapshot.config, configPieces(docs));
      this.#take(msg.snapshot, key);
    } else if (msg.type === 'delta' && typeof msg.delta === 'object' && msg.delta !== null) {
      const r = this.#received;
      const built = applySnapshotDelta(r?.snapshot, r?.docs, msg.delta);
      if (typeof built === 'string') {
        // Cannot happen on an ordered stream unless one end is wrong: start over (a new stream begins whole).
        this.#log('delta_rejected', { reason: built });
        ac.abort(new Error(`reconnecting for a whole snapshot: ${built}`));
        return;
      }
      this.#received = { snapshot: built.snapshot, docs: built.docs };
      // Its config is those documents joined: the parser takes them as pieces (no cutting or hashing the text).
      noteConfigPieces(built.snapshot.config, configPieces(built.docs));
      this.#take(built.snapshot, built.json);
    } else if (msg.type === 'error') {
      this.#log('control_plane_error', { message: String(msg.message) });
    }
    // heartbeats only feed the watchdog; unknown line types are ignored (added by a newer minor version)
  }

  /**
   * Saves the running snapshot as the last good one, after the ACK rather than before it, and at most once a second:
   * a temp file, fsync and rename of the whole snapshot (~0.6 MB at 10,000 routes) is CPU and disk time that serving
   * a change need not wait for, and a burst of changes needs only its last one on disk. The newest is always written
   * (close() writes a pending one at once); a node that dies in between restarts from the one before, and the
   * control plane sends it the current one as it reconnects.
   */
  #save(snapshot: Snapshot, key: SnapshotJson): void {
    const idle = this.#toSave === undefined;
    this.#toSave = { snapshot, key };
    if (!idle) return;
    this.#saving = (async () => {
      await Promise.resolve(); // the caller's ACK goes out first
      while (this.#toSave) {
        const wait = this.#lastSaveAt + SAVE_INTERVAL_MS - performance.now();
        if (wait > 0) await sleep(wait, this.#ac.signal); // close() aborts it: a pending save is written at once
        const { snapshot: s, key: k } = this.#toSave;
        this.#lastSaveAt = performance.now();
        try {
          await saveSnapshotFile(this.#snapshotPath, s, this.#now(), typeof k === 'function' ? k() : k);
        } catch (err) {
          this.#log('snapshot_save_failed', { error: (err as Error).message });
        }
        if (this.#toSave.snapshot === s) this.#toSave = undefined;
      }
    })();
  }

  #take(snapshot: Snapshot, key: SnapshotJson): void {
    this.#pending = { snapshot, key }; // a newer snapshot replaces one not yet applied
    this.#applying ??= this.#applyPending().finally(() => (this.#applying = undefined));
  }

  async #applyPending(): Promise<void> {
    while (this.#pending && !this.#ac.signal.aborted) {
      const { snapshot, key } = this.#pending;
      this.#pending = undefined;
      const reason = this.#current !== undefined && sameSnapshot(snapshot, this.#current) ? undefined : await this.#apply(snapshot, key);
      await this.#ack({ node: this.#state!.nodeId, version: Number(snapshot.version) || 0, ok: reason === undefined, ...(reason === undefined ? {} : { reason }) });
    }
  }

  /** Validates and applies one snapshot; returns the NACK reason, or undefined when it is now the running one. */
  async #apply(s: Snapshot, key: SnapshotJson): Promise<string | undefined> {
    const started = performance.now();
    const keep = this.#current ? ` (keeping version ${this.#current.version})` : '';
    if (!snapshotSchemaSupported(s.schema)) {
      const reason = `unsupported snapshot schema ${JSON.stringify(s.schema)}: this node reads schema ${SNAPSHOT_SCHEMA.split('.')[0]}.x${keep}`;
      this.#log('snapshot_rejected', { version: s.version, reason });
      return reason;
    }
    let problems: string[];
    try {
      problems = this.#o.validate?.(s) ?? [];
    } catch (err) {
      problems = [`validation failed: ${(err as Error).message}`];
    }
    const bundleChanged = problems.length === 0 && (await this.#takeBundle(s.trustBundle));
    let result: ApplyResult;
    if (problems.length > 0) result = { ok: false, reason: problems.join('\n') };
    else {
      try {
        result = await this.#o.onSnapshot(s);
      } catch (err) {
        result = { ok: false, reason: `applying failed: ${(err as Error).message}` };
      }
    }
    if (!result.ok) {
      if (bundleChanged) await this.#o.onCertificate?.(this.files);
      this.#log('snapshot_rejected', { version: s.version, reason: result.reason + keep });
      return result.reason + keep;
    }
    this.#current = s;
    this.#status.version = s.version;
    this.#status.endpointsVersion = s.endpointsVersion;
    this.#save(s, key);
    // How long validating and swapping took (the time to serve a change, less the push and the ACK).
    this.#log('snapshot_applied', { version: s.version, endpointsVersion: s.endpointsVersion, ms: Math.round(performance.now() - started) });
    return undefined;
  }

  /** A snapshot's trust bundle differs from ours (a root rotation step): write it before the data plane rebuilds. */
  async #takeBundle(bundle: unknown): Promise<boolean> {
    if (!Array.isArray(bundle) || bundle.length === 0 || !bundle.every((p) => typeof p === 'string')) return false;
    const c = this.#creds!;
    if (bundle.length === c.bundle.length && bundle.every((p, i) => p.trim() === c.bundle[i].trim())) return false;
    await writeCredentials(this.#files, { bundle });
    this.#creds = { ...c, bundle: [...bundle] };
    this.#bundleEpoch++;
    this.#log('trust_bundle_updated', { roots: bundle.length });
    this.#credentialsChanged();
    return true;
  }

  async #ack(ack: SnapshotAck): Promise<void> {
    try {
      await this.#call('POST', '/v1/ack', ack);
    } catch (err) {
      // The control plane sends the current snapshot again on reconnect, and the answer goes with it.
      this.#log('ack_failed', { version: ack.version, error: (err as Error).message });
    }
  }

  async #renew(signal: AbortSignal): Promise<{ receivedAt: number; notAfter: number }> {
    const { keyPem, csrPem } = await createKeyAndCsr();
    const epoch = this.#bundleEpoch;
    const r = (await this.#call('POST', '/v1/renew', { csr: csrPem, node: this.#state!.nodeId }, signal)) as { certificate: string; notAfter: number; trustBundle: string[] };
    // A bundle that came on the stream while this renewal was in flight is newer than the answer's (a root rotation
    // finishing): keep it, or the retired root would come back until the next bundle change.
    const fresh = epoch === this.#bundleEpoch && Array.isArray(r.trustBundle) && r.trustBundle.length > 0;
    const bundle = fresh ? r.trustBundle : this.#creds!.bundle;
    await writeCredentials(this.#files, { keyPem, chainPem: r.certificate, bundle });
    const state: NodeState = { ...this.#state!, receivedAt: this.#now(), notAfter: r.notAfter };
    await saveNodeState(this.#statePath, state);
    this.#state = state;
    this.#creds = { chainPem: r.certificate, keyPem, bundle };
    this.#status.certificateNotAfter = r.notAfter;
    this.#log('renewed', { notAfter: new Date(r.notAfter).toISOString() });
    this.#credentialsChanged();
    try {
      await this.#o.onCertificate?.(this.files);
    } catch (err) {
      this.#log('certificate_reload_failed', { error: (err as Error).message });
    }
    return { receivedAt: state.receivedAt, notAfter: state.notAfter };
  }
}

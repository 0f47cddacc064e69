// Main thread of `lockgate gateway`: loads config, runs N worker threads on shared ports, reloads, drains and serves admin.
import type { ReportedDecision } from '../telemetry/decision-batcher.ts';
import { Worker } from 'node:worker_threads';
import { mkdtempSync, rmSync, watch, type FSWatcher } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../model/types.ts';
import type { SubscriptionRecord } from '../model/subscription.ts';
import { SubscriptionStore } from '../store/subscription-store.ts';
import { QuotaStore, startQuotaFlusher } from '../store/quota-store.ts';
import { SharedCounterTable } from '../proxy/shared-counter-table.ts';
import { formatProblems } from '../model/load-config.ts';
import { asWritten, redactSubstituted } from '../model/named-values.ts';
import { loadCheckedConfig } from '../policy/load-checked.ts';
import { AdminServer } from '../admin/admin-server.ts';
import { mergeSnapshots, renderPrometheus, type MetricsSnapshot } from '../telemetry/metrics.ts';
import type { FromWorker, ToWorker } from './gateway-worker.ts';
import { configMessage } from './config-message.ts';

/** How often the subscription store is checked for changes made by `lockgate subscription`. */
const SUBSCRIPTION_POLL_MS = 1000;
/** Counter slots (40 bytes each, 2.5 MiB): keys live beside each other only while their window is open. */
const COUNTER_CAPACITY = 65_536;

export interface SupervisorOptions {
  /**
   * Config files and directories (file mode: watched, reloaded). Empty when the config comes from elsewhere (a
   * control plane): then startWith() and apply() hand it over, and a reload re-applies the running one.
   */
  files: string[];
  workers: number;
  /** Override the admin port (0 = any); undefined keeps the config's. */
  adminPort?: number;
  watch?: boolean;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  drainTimeoutMs?: number;
  /** Directory of the gateway-local subscription store; subscriptions are off without it. */
  dataDir?: string;
  /** The worker entry module (tests substitute one that crashes). */
  workerUrl?: URL;
  /** File mode: turns every config loaded from the files into the one served (e.g. completing mesh Backends). */
  prepare?: (config: Config) => Config;
  /** Joined mode: the workers' access decisions (denies, sampled allows), batched, for the control plane's audit trail. */
  onDecisions?: (batch: ReportedDecision[], dropped: number) => void;
}

export type ApplyOutcome = { ok: boolean; problems: string };

/** How long apply() waits for the workers to answer before it reports the ones that did not. */
const APPLY_ANSWER_MS = 10_000;

interface PendingApply {
  version: string;
  waiting: Set<number>;
  accepted: number[];
  problems: string[];
  rejected: boolean;
  done: () => void;
}

interface Slot {
  worker: Worker | null;
  ready: boolean;
  restarts: number;
  /** The last config this worker was given (at start or in a message): the base of the next message's Api changes. */
  sent: Config | undefined;
}


/**
 * A data-plane thread's young generation. Measured (docs/performance.md): 16 MiB costs no CPU per request
 * against V8's default and keeps ~30 MiB less resident; 8 MiB starts to cost GC time.
 */
const WORKER_YOUNG_GENERATION_MB = 16;

const WORKER_URL = new URL(`./gateway-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

export class GatewaySupervisor {
  readonly #opts: SupervisorOptions;
  readonly #slots: Slot[] = [];
  readonly #log: NonNullable<SupervisorOptions['log']>;
  #config!: Config;
  #ports: Record<string, number> = {};
  #admin: AdminServer | null = null;
  adminPort = 0;
  #watchers: FSWatcher[] = [];
  #draining = false;
  #metricsId = 0;
  #reloadTimer: NodeJS.Timeout | null = null;
  #forceNext = false;
  #subs: SubscriptionStore | null = null;
  #subsRecords: SubscriptionRecord[] | null = null;
  #subsVersion = -1;
  #subsTimer: NodeJS.Timeout | null = null;
  /** rate-limit and quota counters shared by every worker (exact across threads); quotas persist under --data-dir. */
  #counters: SharedCounterTable | null = null;
  #quotas: QuotaStore | null = null;
  #quotaFlusher: ReturnType<typeof startQuotaFlusher> | null = null;
  /** Where every worker opens sessions.db (login sessions, store/sqlite-session-store.ts); a temporary one is removed at drain. */
  #sessionsDir: string | undefined;
  #sessionsTemp = false;
  readonly #pendingMetrics = new Map<number, { want: number; got: MetricsSnapshot[]; done: (s: MetricsSnapshot[]) => void }>();
  #pendingApply: PendingApply | null = null;
  #applyChain: Promise<unknown> = Promise.resolve();

  constructor(opts: SupervisorOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? ((level, msg, fields) => process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n'));
  }

  /** Per worker: ready or not, and how many times it was restarted. */
  workerStats(): Array<{ index: number; ready: boolean; restarts: number }> {
    return this.#slots.map((s, index) => ({ index, ready: s.ready, restarts: s.restarts }));
  }

  get ports(): Record<string, number> {
    return this.#ports;
  }

  get config(): Config {
    return this.#config;
  }

  /** Loads and validates; on problems returns them (nothing started). */
  async start(): Promise<{ ok: true } | { ok: false; problems: string }> {
    const { config, problems } = await this.#load();
    if (!config || problems.length) return { ok: false, problems: formatProblems(problems) };
    return this.startWith(config);
  }

  async #load(): ReturnType<typeof loadCheckedConfig> {
    // Standalone: NamedValues resolve from the file and this process's environment (spec.env).
    const r = await loadCheckedConfig(this.#opts.files, { env: process.env });
    const prepare = this.#opts.prepare;
    return r.config && r.problems.length === 0 && prepare ? { config: prepare(r.config), problems: r.problems } : r;
  }

  /**
   * Starts serving a config that is already loaded and validated (a control plane's snapshot): workers, shared
   * counters, stores under dataDir, admin port. Throws when a worker cannot start (a port in use).
   */
  async startWith(config: Config): Promise<{ ok: true }> {
    this.#config = config;
    if (this.#opts.dataDir !== undefined) {
      this.#subs = SubscriptionStore.open(this.#opts.dataDir);
      this.#subsVersion = this.#subs.dataVersion();
      this.#subsRecords = this.#subs.list();
      // The CLI writes from another process; the store's data_version moves on every commit it makes.
      this.#subsTimer = setInterval(() => this.#pollSubscriptions(), SUBSCRIPTION_POLL_MS);
      this.#subsTimer.unref();
    } else if (config.apis.some((a) => a.spec.subscriptionRequired)) {
      this.#log('warn', 'an Api requires subscription keys but the gateway has no --data-dir: every key will be refused');
    }
    if (this.#opts.dataDir !== undefined) {
      this.#quotas = QuotaStore.open(this.#opts.dataDir);
      this.#counters = SharedCounterTable.create(COUNTER_CAPACITY, { seed: this.#quotas.seed });
      const loaded = this.#quotas.load(this.#counters);
      this.#log('info', 'quota counters restored', { ...loaded });
      this.#quotaFlusher = startQuotaFlusher(this.#counters, this.#quotas, { onError: (err) => this.#log('error', 'quota flush failed', { error: err.message }) });
    } else {
      this.#counters = SharedCounterTable.create(COUNTER_CAPACITY);
    }
    // Login sessions must be seen by every worker (the callback and the next request may land on different ones).
    this.#sessionsDir = this.#opts.dataDir;
    if (this.#sessionsDir === undefined && this.#opts.workers > 1 && config.identityProviders !== undefined) {
      this.#sessionsDir = mkdtempSync(join(tmpdir(), 'lockgate-sessions-'));
      this.#sessionsTemp = true;
    }
    // The first worker binds (port 0 included); the others join its ports with SO_REUSEPORT.
    const first = await this.#spawn(0, {});
    this.#ports = first;
    await Promise.all(Array.from({ length: this.#opts.workers - 1 }, (_, i) => this.#spawn(i + 1, this.#ports)));
    const admin = config.gateway.spec.admin;
    if (admin.enabled) {
      this.#admin = new AdminServer({
        ready: () => !this.#draining && this.#slots.every((s) => s.ready),
        metrics: () => this.metricsText(),
        // As written: a `{{name}}` substituted with a secret shows as `{{name}}`.
        config: () => asWritten(this.#config, { version: this.#config.version, files: this.#config.files, gateway: this.#config.gateway, apis: this.#config.apis, backends: this.#config.backends, products: this.#config.products, apiPolicies: this.#config.apiPolicies, versionSets: [...(this.#config.versionSets?.values() ?? [])], policyFragments: this.#config.policyFragments ?? [] }),
      });
      this.adminPort = await this.#admin.listen(this.#opts.adminPort ?? admin.port, admin.address);
    }
    if (this.#opts.watch !== false) this.#watch();
    this.#log('info', 'gateway started', { version: config.version, ports: this.#ports, admin: this.adminPort, workers: this.#opts.workers });
    return { ok: true };
  }

  #spawn(index: number, ports: Record<string, number>): Promise<Record<string, number>> {
    const slot = (this.#slots[index] ??= { worker: null, ready: false, restarts: 0, sent: undefined });
    return new Promise((resolve, reject) => {
      const worker = new Worker(this.#opts.workerUrl ?? WORKER_URL, {
        workerData: { config: this.#config, ports, workerId: index, subscriptions: this.#subsRecords, counters: this.#counters!.buffer, sessionsDir: this.#sessionsDir, reportDecisions: this.#opts.onDecisions !== undefined },
        resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
      });
      slot.worker = worker;
      slot.ready = false;
      slot.sent = this.#config;
      worker.on('message', (m: FromWorker) => {
        switch (m.type) {
          case 'listening':
            slot.ready = true;
            resolve(m.ports);
            break;
          case 'fatal':
            reject(new Error(redactSubstituted(m.message, slot.sent, this.#config)));
            break;
          case 'applied': {
            // A build check may quote an attribute that a secret was substituted into.
            const problems = m.problems.map((p) => redactSubstituted(p, slot.sent, this.#config));
            if (!m.ok || problems.length) this.#log(m.ok ? 'warn' : 'error', 'config apply', { worker: index, version: m.version, problems });
            this.#answered(index, m.version, m.ok, problems);
            break;
          }
          case 'metrics': {
            const p = this.#pendingMetrics.get(m.id);
            if (p) {
              p.got.push(m.snapshot);
              if (p.got.length >= p.want) p.done(p.got);
            }
            break;
          }
          case 'drained':
            break;
          case 'decisions':
            this.#opts.onDecisions?.(m.batch, m.dropped);
            break;
        }
      });
      worker.on('error', (err) => {
        this.#log('error', 'worker crashed', { worker: index, error: err.message });
        if (!slot.ready) reject(err);
      });
      worker.on('exit', (code) => {
        slot.ready = false;
        slot.worker = null;
        this.#answered(index, null, false, []);
        if (this.#draining) return;
        // Supervise: restart with a small backoff that grows with repeated crashes.
        slot.restarts++;
        const delay = Math.min(5000, 100 * 2 ** Math.min(slot.restarts, 6));
        this.#log('warn', 'worker exited; restarting', { worker: index, code, delayMs: delay });
        setTimeout(() => {
          if (this.#draining) return; // drained while waiting: nothing to restart
          this.#spawn(index, this.#ports).catch((e: Error) => this.#log('error', 'restart failed', { error: e.message }));
        }, delay);
      });
    });
  }

  #pollSubscriptions(): void {
    const store = this.#subs;
    if (store === null) return;
    try {
      const v = store.dataVersion();
      if (v === this.#subsVersion) return;
      this.#subsVersion = v;
      const records = store.list();
      this.#subsRecords = records;
      this.#post({ type: 'subscriptions', records });
      this.#log('info', 'subscriptions reloaded', { count: records.length });
    } catch (err) {
      this.#log('error', 'subscription store unreadable; keeping the last good set', { error: (err as Error).message });
    }
  }

  #post(m: ToWorker): void {
    for (const s of this.#slots) s.worker?.postMessage(m);
  }

  /** Config files, plus every certificate and key the listeners read: rotating a certificate on disk reloads it. */
  #watchedFiles(): string {
    const certs = this.#config.gateway.spec.listeners.flatMap((l) => l.tls?.certificates.flatMap((c) => [c.certFile, c.keyFile]) ?? []);
    // Not from files (a control plane): config.files names the snapshot, which is nowhere on disk.
    const own = this.#opts.files.length === 0 ? [] : [...this.#opts.files, ...this.#config.files];
    return [...new Set([...own, ...certs])].join('\n');
  }

  #watch(): void {
    for (const w of this.#watchers) w.close();
    this.#watchers = [];
    const certs = new Set(this.#watchedFiles().split('\n').filter((f) => !this.#config.files.includes(f) && !this.#opts.files.includes(f)));
    for (const f of this.#watchedFiles().split('\n')) {
      if (f === '') continue; // nothing to watch (a joined gateway without listener certificates)
      try {
        this.#watchers.push(watch(f, { persistent: false }, () => this.scheduleReload(certs.has(f) ? 'certificate change' : 'file change', certs.has(f))));
      } catch (err) {
        this.#log('warn', 'cannot watch config file', { file: f, error: (err as Error).message });
      }
    }
  }

  /** Debounced: editors write files in several steps. `force` re-applies an unchanged config (certificates may have changed). */
  scheduleReload(reason: string, force = false): void {
    if (this.#reloadTimer) clearTimeout(this.#reloadTimer);
    this.#forceNext ||= force;
    this.#reloadTimer = setTimeout(() => {
      const f = this.#forceNext;
      this.#forceNext = false;
      void this.reload(reason, f);
    }, 150);
    this.#reloadTimer.unref();
  }

  /** Validate, then swap in every worker; a bad config keeps the old one serving and logs every problem. */
  async reload(reason: string, force = false): Promise<{ ok: boolean; problems: string }> {
    // Not from files: the running config again (listener certificates are read anew).
    if (this.#opts.files.length === 0) return this.apply(this.#config, reason, { force: true });
    const { config, problems } = await this.#load();
    if (!config || problems.length) {
      const text = formatProblems(problems);
      this.#log('error', 'config rejected; still serving the previous version', { reason, version: this.#config.version, problems: text.split('\n') });
      return { ok: false, problems: text };
    }
    if (config.version === this.#config.version && !force) return { ok: true, problems: '' };
    const watched = this.#watchedFiles();
    this.#config = config;
    if (this.#opts.watch !== false && this.#watchedFiles() !== watched) this.#watch();
    for (const i of this.#slots.keys()) this.#sendConfig(i, config);
    this.#log('info', 'config reloaded', { reason, version: config.version });
    return { ok: true, problems: '' };
  }

  /**
   * Swaps an already validated config (a control plane's snapshot) into every worker and waits for their answers.
   * When a worker cannot build it, the running config keeps serving everywhere and the problems are returned (for a
   * NACK); `problems` of an accepted config are warnings (a listener kept its previous certificates). An unchanged
   * version is not sent again unless `force` (certificates on disk may have changed). Calls are serialized.
   */
  apply(config: Config, reason: string, o: { force?: boolean } = {}): Promise<ApplyOutcome> {
    const run = this.#applyChain.then(() => this.#applyNow(config, reason, o.force === true));
    this.#applyChain = run.catch(() => {});
    return run;
  }

  async #applyNow(config: Config, reason: string, force: boolean): Promise<ApplyOutcome> {
    if (this.#draining) return { ok: false, problems: 'the gateway is shutting down' };
    if (config.version === this.#config.version && !force) return { ok: true, problems: '' };
    const previous = this.#config;
    const live = this.#slots.flatMap((s, i) => (s.worker ? [i] : []));
    const answers = await new Promise<PendingApply>((resolve) => {
      const timer = setTimeout(() => finish(), APPLY_ANSWER_MS);
      const pending: PendingApply = { version: config.version, waiting: new Set(live), accepted: [], problems: [], rejected: false, done: () => finish() };
      const finish = (): void => {
        clearTimeout(timer);
        if (this.#pendingApply === pending) this.#pendingApply = null;
        resolve(pending);
      };
      this.#pendingApply = pending;
      for (const i of live) this.#sendConfig(i, config);
      if (live.length === 0) finish();
    });
    if (answers.rejected) {
      // Builds are deterministic, so workers agree; should one have taken it anyway, it goes back to the running one.
      for (const i of answers.accepted) this.#sendConfig(i, previous);
      const problems = [...new Set(answers.problems)].join('\n');
      this.#log('error', 'config rejected; still serving the previous version', { reason, version: previous.version, rejected: config.version, problems: problems.split('\n') });
      return { ok: false, problems };
    }
    if (answers.waiting.size > 0) this.#log('warn', 'workers did not confirm the config in time', { version: config.version, workers: [...answers.waiting] });
    const watched = this.#watchedFiles();
    this.#config = config;
    // A worker restarted meanwhile started with the previous config.
    for (const [i, s] of this.#slots.entries()) if (s.worker && !live.includes(i)) this.#sendConfig(i, config);
    if (this.#opts.watch !== false && this.#watchedFiles() !== watched) this.#watch();
    this.#log('info', 'config applied', { reason, version: config.version });
    return { ok: true, problems: [...new Set(answers.problems)].join('\n') };
  }

  #sendConfig(index: number, config: Config): void {
    const slot = this.#slots[index];
    if (!slot.worker) return;
    slot.worker.postMessage(configMessage(slot.sent, config) satisfies ToWorker);
    slot.sent = config;
  }

  /** A worker's answer to a config (version null: the worker is gone and will not answer). */
  #answered(index: number, version: string | null, ok: boolean, problems: string[]): void {
    const p = this.#pendingApply;
    if (p === null || !p.waiting.has(index) || (version !== null && version !== p.version)) return;
    p.waiting.delete(index);
    if (version !== null) {
      if (ok) p.accepted.push(index);
      else p.rejected = true;
      p.problems.push(...problems);
    }
    if (p.waiting.size === 0) p.done();
  }

  async metricsText(): Promise<string> {
    const live = this.#slots.filter((s) => s.worker);
    const id = ++this.#metricsId;
    const snapshots = await new Promise<MetricsSnapshot[]>((resolve) => {
      const timer = setTimeout(() => {
        this.#pendingMetrics.delete(id);
        resolve(entry.got);
      }, 1000);
      const entry = { want: live.length, got: [] as MetricsSnapshot[], done: (s: MetricsSnapshot[]) => {
        clearTimeout(timer);
        this.#pendingMetrics.delete(id);
        resolve(s);
      } };
      this.#pendingMetrics.set(id, entry);
      for (const s of live) s.worker!.postMessage({ type: 'metrics', id } satisfies ToWorker);
      if (live.length === 0) entry.done([]);
    });
    return renderPrometheus(mergeSnapshots(snapshots), {
      [`lockgate_config_info{version="${this.#config.version}"}`]: 1,
      lockgate_workers: live.length,
      lockgate_workers_ready: this.#slots.filter((s) => s.ready).length,
    });
  }

  reopenLogs(): void {
    this.#post({ type: 'reopen-log' });
  }

  /** SIGTERM: readiness goes false, workers drain in-flight requests, then everything closes. */
  async drain(): Promise<void> {
    if (this.#draining) return;
    this.#draining = true;
    for (const w of this.#watchers) w.close();
    if (this.#subsTimer !== null) clearInterval(this.#subsTimer);
    this.#subs?.close();
    this.#subs = null;
    const deadlineMs = this.#opts.drainTimeoutMs ?? 25_000;
    const exits = this.#slots.map((s) => (s.worker ? new Promise<void>((r) => s.worker!.once('exit', () => r())) : Promise.resolve()));
    this.#post({ type: 'drain', deadlineMs });
    const hard = new Promise<void>((r) => setTimeout(r, deadlineMs + 2000).unref());
    await Promise.race([Promise.all(exits), hard]);
    for (const s of this.#slots) await s.worker?.terminate();
    // After the workers: the last counts they made are flushed, then the store closes.
    this.#quotaFlusher?.stop();
    this.#quotas?.close();
    if (this.#sessionsTemp && this.#sessionsDir !== undefined) rmSync(this.#sessionsDir, { recursive: true, force: true });
    await this.#admin?.close();
    this.#log('info', 'gateway stopped');
  }
}

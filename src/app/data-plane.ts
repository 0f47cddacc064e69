// Composition root of one data-plane thread: runtime, listeners, load shedder, access log and metrics wired together.
import type { SubscriptionRecord } from '../model/subscription.ts';
import { SubscriptionIndex } from '../proxy/subscription-index.ts';
import type { Config } from '../model/types.ts';
import { buildRuntime, retireRuntime, type PolicyHooks, type Runtime } from '../proxy/runtime.ts';
import { POLICY_REGISTRY } from '../filters/index.ts';
import type { PolicyServices } from '../proxy/policy-pipeline.ts';
import { GatewayListener } from '../proxy/gateway-listener.ts';
import { LoadShedder } from '../proxy/load-shedder.ts';
import type { DataPlaneState } from '../proxy/request-handler.ts';
import type { Exchange } from '../proxy/exchange.ts';
import { breakerState, configEvent, requestEnd, requestShed } from '../telemetry/channels.ts';
import { AccessLog } from '../telemetry/access-log.ts';
import { MetricsRegistry, type MetricsSnapshot } from '../telemetry/metrics.ts';
import { createOtlpTracer, type OtlpTracer } from '../telemetry/otlp-tracer.ts';

export interface DataPlaneOptions {
  /** Listener name → port to bind instead of the configured one (0 = any, or the port another worker bound). */
  ports?: Record<string, number>;
  accessLog?: boolean;
  workerId?: number;
  /** Services ApiPolicy policies share (the counter table of rate-limit-by-key, …). */
  policyServices?: PolicyServices;
  /**
   * Another data plane in this thread whose metrics registry and access log record this one's requests too
   * (a sidecar runs an inbound and an outbound plane: telemetry subscribes per thread, so one set counts both).
   */
  telemetryOf?: DataPlane;
}

function publishEnd(ex: Exchange): void {
  if (ex.errorCode === 'overloaded' && requestShed.hasSubscribers) requestShed.publish({ reason: 'event-loop-delay' });
  if (requestEnd.hasSubscribers) requestEnd.publish(ex);
}

export class DataPlane {
  readonly #state: DataPlaneState;
  readonly #listeners: GatewayListener[] = [];
  readonly #shedder: LoadShedder;
  readonly #accessLog: AccessLog | null;
  readonly metrics: MetricsRegistry;
  readonly #opts: DataPlaneOptions;
  readonly #ownsTelemetry: boolean;
  #tracer: OtlpTracer | undefined;
  #tracerKey = '';
  /** Policy implementations and the services they share (counters, key caches) across config versions. */
  readonly #policyHooks: PolicyHooks;

  /** Throws when the first config cannot be built (there is nothing older to keep serving). */
  constructor(config: Config, opts: DataPlaneOptions = {}) {
    this.#opts = opts;
    this.#policyHooks = { registry: POLICY_REGISTRY, services: opts.policyServices ?? {} };
    const built = buildRuntime(config, undefined, { onBreakerState: (backend, state) => breakerState.publish({ backend, state }) }, this.#policyHooks);
    if (!built.runtime) throw new Error(`config ${config.version} rejected:\n${built.problems.join('\n')}`);
    const gw = config.gateway.spec;
    this.#ownsTelemetry = opts.telemetryOf === undefined;
    this.metrics = opts.telemetryOf?.metrics ?? new MetricsRegistry();
    this.#accessLog = opts.telemetryOf !== undefined || opts.accessLog === false || !gw.accessLog.enabled ? null : new AccessLog(gw.accessLog.path, gw.accessLog.bufferLines);
    this.#state = { runtime: built.runtime, overloaded: false, draining: false, finish: publishEnd, subscriptions: null };
    this.#shedder = new LoadShedder(() => this.#state.runtime.gateway.overload.maxEventLoopDelay, (on) => {
      this.#state.overloaded = on;
    });
  }

  get runtime(): Runtime {
    return this.#state.runtime;
  }

  get accessLogDropped(): number {
    return this.#accessLog?.dropped ?? 0;
  }

  /** Starts, replaces or stops the OTLP exporter to match the config (loaded only when configured). */
  async #syncTracer(): Promise<void> {
    const t = this.#state.runtime.gateway.tracing;
    const key = t.otlpEndpoint ? JSON.stringify(t) : '';
    if (key === this.#tracerKey) return;
    this.#tracerKey = key;
    const old = this.#tracer;
    this.#tracer = t.otlpEndpoint
      ? await createOtlpTracer({ endpoint: t.otlpEndpoint, sampleRatio: t.sampleRatio, serviceName: t.serviceName, workerId: this.#opts.workerId })
      : undefined;
    await old?.close();
  }

  /** Binds every listener; returns the bound ports by listener name. */
  async listen(): Promise<Record<string, number>> {
    await this.#syncTracer();
    const gw = this.#state.runtime.gateway;
    const ports: Record<string, number> = {};
    for (const spec of gw.listeners) {
      const l = new GatewayListener(spec, gw.limits, this.#state);
      this.#listeners.push(l);
      ports[spec.name] = await l.listen(this.#opts.ports?.[spec.name] ?? spec.port);
    }
    return ports;
  }

  /** Swaps in a new config version atomically; requests in flight finish on the one they started with. */
  /** Replaces the subscriptions the request path checks keys against (null: none, every key is invalid). */
  setSubscriptions(records: SubscriptionRecord[] | null): void {
    this.#state.subscriptions = records === null ? null : new SubscriptionIndex(records);
  }

  apply(config: Config): { ok: boolean; problems: string[] } {
    const old = this.#state.runtime;
    const built = buildRuntime(config, old, { onBreakerState: (backend, state) => breakerState.publish({ backend, state }) }, this.#policyHooks);
    if (!built.runtime) {
      configEvent.publish({ version: config.version, ok: false, problems: built.problems });
      return { ok: false, problems: built.problems };
    }
    const problems: string[] = [];
    for (const l of this.#listeners) {
      const next = config.gateway.spec.listeners.find((s) => s.name === l.spec.name);
      if (!next) problems.push(`listener ${l.spec.name} removed: restart to apply`);
      else {
        try {
          l.reloadTls(next);
        } catch (err) {
          problems.push(`listener ${l.spec.name}: ${(err as Error).message} (kept the previous certificates)`);
        }
      }
    }
    this.#state.runtime = built.runtime;
    void retireRuntime(old, built.runtime);
    void this.#syncTracer().catch((err: Error) => problems.push(`tracing: ${err.message}`));
    configEvent.publish({ version: config.version, ok: true, problems });
    return { ok: true, problems };
  }

  metricsSnapshot(): MetricsSnapshot {
    const s = this.metrics.snapshot();
    s.counters.lockgate_access_log_dropped_total = this.accessLogDropped;
    const t = this.#tracer?.stats();
    if (t) {
      s.counters.lockgate_spans_exported_total = t.exported;
      s.counters.lockgate_spans_dropped_total = t.dropped;
      s.counters.lockgate_span_export_failures_total = t.failed;
    }
    return s;
  }

  reopenLog(): void {
    this.#accessLog?.reopen();
  }

  /** Graceful drain: stop accepting, finish in-flight requests, close keep-alive connections, then close pools. */
  async drain(deadlineMs: number): Promise<void> {
    this.#state.draining = true;
    const listeners = this.#listeners.splice(0);
    await Promise.all(listeners.map((l) => l.drain(deadlineMs)));
    await this.close();
  }

  async close(): Promise<void> {
    await this.#tracer?.close();
    this.#tracer = undefined;
    const listeners = this.#listeners.splice(0);
    await Promise.all(listeners.map((l) => l.drain(0)));
    this.#shedder.close();
    this.#accessLog?.close();
    if (this.#ownsTelemetry) this.metrics.close();
    await retireRuntime(this.#state.runtime, undefined);
  }
}

// Optional OTLP/HTTP span export: one SERVER span per sampled request, built from the requestEnd Exchange, batched off the request path.
import { hostname } from 'node:os';
import type * as OtelApi from '@opentelemetry/api';
import type { Attributes, HrTime, SpanContext } from '@opentelemetry/api';
import type * as OtelExporter from '@opentelemetry/exporter-trace-otlp-http';
import type * as OtelResources from '@opentelemetry/resources';
import type * as OtelSdk from '@opentelemetry/sdk-trace';
import type { BatchSpanProcessor, ReadableSpan, SpanExporter, TimedEvent } from '@opentelemetry/sdk-trace';
import type { Exchange } from '../proxy/exchange.ts';
import { requestEnd } from './channels.ts';
import { sampleThreshold, sampledByRatio } from '../lib/trace-context.ts';

export { sampleThreshold, sampledByRatio };

export interface OtlpTracerConfig {
  /** Full OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces (used as is). */
  endpoint: string;
  /** 0..1: share of traces the gateway starts that it exports; incoming traces follow their sampled flag. */
  sampleRatio: number;
  serviceName: string;
  workerId?: number;
  /** Spans waiting for export; past it spans are dropped and counted. Default 2048. */
  maxQueueSize?: number;
  /** Spans per OTLP request. Default 512. */
  maxExportBatchSize?: number;
  /** Longest wait before a partial batch is sent. Default 2000 ms. */
  scheduledDelayMs?: number;
  /** Deadline of one export request. Default 10000 ms. */
  exportTimeoutMs?: number;
}

/** The OpenTelemetry modules, loaded on demand by createOtlpTracer. */
export interface OtelModules {
  api: typeof OtelApi;
  sdk: typeof OtelSdk;
  exporter: typeof OtelExporter;
  resources: typeof OtelResources;
}

export interface OtlpTracerStats {
  exported: number;
  failed: number;
  dropped: number;
  queued: number;
}

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

/** HrTime of `baseMs` (epoch ms) plus `offsetMs`, added in nanoseconds so sub-ms offsets keep their precision. */
function hrAt(baseMs: number, offsetMs: number): HrTime {
  const whole = Math.floor(baseMs);
  let sec = Math.floor(whole / 1000);
  let ns = (whole - sec * 1000) * 1e6 + Math.round((baseMs - whole + offsetMs) * 1e6);
  if (ns >= 1e9 || ns < 0) {
    const carry = Math.floor(ns / 1e9);
    sec += carry;
    ns -= carry * 1e9;
  }
  return [sec, ns];
}

function phase(attrs: Attributes, key: string, from: number, to: number): void {
  if (from > 0 && to > 0) attrs[key] = to - from;
}

/**
 * Subscribes to requestEnd and exports sampled requests through the stock BatchSpanProcessor and OTLP/HTTP
 * JSON exporter. Spans are ReadableSpan-shaped objects built here rather than started through a Tracer:
 * the ids must be exactly the Exchange's (the span id already went upstream in traceparent), and a Tracer
 * would mint its own, and would also run on the request path. onEnd only needs the ReadableSpan
 * interface, which is stable across SDK versions; a custom IdGenerator cannot set a given parent id.
 */
export class OtlpTracer {
  readonly #otel: OtelModules;
  readonly #threshold: number;
  readonly #maxQueue: number;
  readonly #processor: BatchSpanProcessor;
  readonly #resource: ReadableSpan['resource'];
  readonly #scope = { name: 'lockgate' };
  #exported = 0;
  #failed = 0;
  #dropped = 0;
  /** Mirrors the processor's queue (it keeps its own count private) so drops are counted here, before it. */
  #queued = 0;
  #closed = false;

  readonly #onEnd = (msg: unknown): void => {
    const ex = msg as Exchange;
    // The only work an unsampled request costs: parent-based, else the deterministic ratio.
    if (ex.parentSpanId === '' ? this.#threshold === 0 || !sampledByRatio(ex.traceId, this.#threshold) : (ex.traceFlags & 1) === 0) return;
    if (this.#queued >= this.#maxQueue) {
      this.#dropped++;
      return;
    }
    this.#queued++;
    this.#processor.onEnd(this.#toSpan(ex));
  };

  constructor(cfg: OtlpTracerConfig, otel: OtelModules) {
    this.#otel = otel;
    this.#threshold = sampleThreshold(cfg.sampleRatio);
    this.#maxQueue = cfg.maxQueueSize ?? 2048;
    const timeout = cfg.exportTimeoutMs ?? 10_000;
    const inner = new otel.exporter.OTLPTraceExporter({ url: cfg.endpoint, timeoutMillis: timeout });
    // Counts what leaves the queue and how each export ended; the processor hands batches over synchronously.
    const counting: SpanExporter = {
      export: (spans, done) => {
        this.#queued -= spans.length;
        inner.export(spans, (result) => {
          if (result.code === 0) this.#exported += spans.length; // ExportResultCode.SUCCESS
          else this.#failed += spans.length;
          done(result);
        });
      },
      shutdown: () => inner.shutdown(),
      forceFlush: () => inner.forceFlush(),
    };
    this.#processor = new otel.sdk.BatchSpanProcessor({
      exporter: counting,
      maxQueueSize: this.#maxQueue,
      maxExportBatchSize: Math.min(cfg.maxExportBatchSize ?? 512, this.#maxQueue),
      scheduledDelayMillis: cfg.scheduledDelayMs ?? 2000,
      exportTimeoutMillis: timeout + 1000,
    });
    const worker = cfg.workerId ?? 0;
    this.#resource = otel.resources.resourceFromAttributes({
      'service.name': cfg.serviceName,
      'service.instance.id': `${hostname()}/${process.pid}/${worker}`,
      'lockgate.worker_id': worker,
    });
    requestEnd.subscribe(this.#onEnd);
  }

  #toSpan(ex: Exchange): ReadableSpan {
    const { SpanKind, SpanStatusCode } = this.#otel.api;
    const tEnd = ex.tEnd > 0 ? ex.tEnd : ex.tStart;
    const start = hrAt(ex.wallStart, 0);
    const end = hrAt(ex.wallStart, tEnd - ex.tStart);
    const error = ex.status >= 500 || ex.errorCode !== '';
    const method = KNOWN_METHODS.has(ex.method) ? ex.method : '_OTHER';
    const attributes: Attributes = {
      'http.request.method': method,
      'url.path': ex.path,
      'server.address': ex.host,
      'client.address': ex.clientIp,
      'http.response.status_code': ex.status,
      'http.request.body.size': ex.bytesIn,
      'http.response.body.size': ex.bytesOut,
      'lockgate.request_id': ex.requestId,
      'lockgate.listener': ex.listener,
      'lockgate.config_version': ex.configVersion,
      'lockgate.attempts': ex.attempts,
    };
    if (method === '_OTHER') attributes['http.request.method_original'] = ex.method;
    if (ex.api !== '') attributes['lockgate.api'] = ex.api;
    if (ex.operation !== '') attributes['lockgate.operation'] = ex.operation;
    if (ex.backend !== '') attributes['lockgate.backend'] = ex.backend;
    if (ex.endpoint !== '') attributes['lockgate.endpoint'] = ex.endpoint;
    if (error) attributes['error.type'] = ex.errorCode !== '' ? ex.errorCode : String(ex.status);
    // Same phase boundaries as the access log's durations, so a span and its log line agree.
    phase(attributes, 'lockgate.phase.routing_ms', ex.tStart, ex.tDispatch || tEnd);
    phase(attributes, 'lockgate.phase.upstream_connect_ms', ex.tDispatch, ex.tUpstreamStart);
    phase(attributes, 'lockgate.phase.upstream_response_ms', ex.tUpstreamStart, ex.tResponseStart);
    phase(attributes, 'lockgate.phase.total_ms', ex.tStart, tEnd);
    const events: TimedEvent[] = [];
    if (ex.tDispatch > 0) events.push({ name: 'dispatch', time: hrAt(ex.wallStart, ex.tDispatch - ex.tStart) });
    if (ex.tUpstreamStart > 0) events.push({ name: 'upstream_start', time: hrAt(ex.wallStart, ex.tUpstreamStart - ex.tStart) });
    if (ex.tResponseStart > 0) events.push({ name: 'response_start', time: hrAt(ex.wallStart, ex.tResponseStart - ex.tStart) });
    // Exported means sampled: the processor skips contexts without the sampled bit, whatever the request carried.
    const context: SpanContext = { traceId: ex.traceId, spanId: ex.spanId, traceFlags: 1, isRemote: false };
    const parent: SpanContext | undefined = ex.parentSpanId === ''
      ? undefined
      : { traceId: ex.traceId, spanId: ex.parentSpanId, traceFlags: ex.traceFlags, isRemote: true };
    return {
      name: ex.api !== '' ? `${method} ${ex.api}/${ex.operation}` : `${method} (no route)`,
      kind: SpanKind.SERVER,
      spanContext: () => context,
      parentSpanContext: parent,
      startTime: start,
      endTime: end,
      duration: hrAt(0, tEnd - ex.tStart),
      status: error ? { code: SpanStatusCode.ERROR, message: ex.errorCode } : { code: SpanStatusCode.UNSET },
      attributes,
      links: [],
      events,
      ended: true,
      resource: this.#resource,
      instrumentationScope: this.#scope,
      droppedAttributesCount: 0,
      droppedEventsCount: 0,
      droppedLinksCount: 0,
    };
  }

  stats(): OtlpTracerStats {
    return { exported: this.#exported, failed: this.#failed, dropped: this.#dropped, queued: this.#queued };
  }

  /** Stops taking spans, exports what is queued (bounded by the export timeout) and shuts the exporter down. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    requestEnd.unsubscribe(this.#onEnd);
    await this.#processor.shutdown().catch(() => {}); // failures are already counted in #failed
  }
}

/** Loads OpenTelemetry only when tracing is configured, so a gateway without it pays nothing at start-up. */
export async function createOtlpTracer(cfg: OtlpTracerConfig): Promise<OtlpTracer> {
  const [api, sdk, exporter, resources] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  return new OtlpTracer(cfg, { api, sdk, exporter, resources });
}

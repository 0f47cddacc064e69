// Per-worker request metrics fed by the channels, exported as plain snapshots that the main thread sums and renders.
import type { Exchange } from '../proxy/exchange.ts';
import { breakerState, requestEnd, requestShed } from './channels.ts';

/** Seconds; Prometheus-style upper bounds. */
export const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface HistogramData {
  counts: number[];
  sum: number;
  count: number;
}

/** One worker's metrics as plain data (crosses the worker boundary by postMessage). */
export interface MetricsSnapshot {
  counters: Record<string, number>;
  gauges: Record<string, number>;
  histograms: Record<string, HistogramData>;
}

function newHistogram(): HistogramData {
  return { counts: new Array(LATENCY_BUCKETS.length + 1).fill(0), sum: 0, count: 0 };
}

/** Buckets plus +Inf. A route's two histograms live in one Float64Array: [counts…, sum, count] twice. */
const NB = LATENCY_BUCKETS.length + 1;
const STRIDE = NB + 2;

function observeAt(d: Float64Array, o: number, seconds: number): void {
  let i = 0;
  while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]) i++;
  d[o + i]++;
  d[o + NB] += seconds;
  d[o + NB + 1]++;
}

/** A histogram series stored at `offset` in a route's array, materialized by snapshot(). */
interface HistogramView {
  readonly key: string;
  readonly data: Float64Array;
  readonly offset: number;
}

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** Series keys are the exposition's `name{labels}` text, so merging and rendering need no parsing. */
function key(name: string, labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${esc(v)}"`);
  return parts.length ? `${name}{${parts.join(',')}}` : name;
}

/** One `lockgate_requests_total` series, counted in place (no string-keyed lookup per request). */
interface StatusCount {
  readonly key: string;
  n: number;
}

class RouteSeries {
  readonly owner: MetricsRegistry;
  readonly byStatus = new Map<number, StatusCount>();
  /** The status seen last and its counter: most requests of a route share one status. */
  lastStatus = -1;
  lastCount: StatusCount | null = null;
  /** Request duration at 0, upstream duration at STRIDE: one contiguous block per route (few cache lines). */
  readonly data = new Float64Array(2 * STRIDE);
  readonly labels: Record<string, string>;
  constructor(owner: MetricsRegistry, labels: Record<string, string>) {
    this.owner = owner;
    this.labels = labels;
  }
}

export class MetricsRegistry {
  readonly counters: Record<string, number> = Object.create(null);
  readonly gauges: Record<string, number> = Object.create(null);
  readonly histograms: Record<string, HistogramData> = Object.create(null);
  /** Per route target (stable object per config version): the series keys, built once. */
  readonly #routes = new WeakMap<object, RouteSeries>();
  readonly #noRoute: RouteSeries;
  /** Every per-route histogram, folded into `histograms` by snapshot(). */
  readonly #views: HistogramView[] = [];
  /** Every per-route status counter, folded into `counters` by snapshot(). */
  readonly #statusCounts: StatusCount[] = [];
  readonly #onEnd = (m: unknown): void => this.record(m as Exchange);
  readonly #onShed = (): void => this.inc('lockgate_requests_shed_total', {});
  readonly #onBreaker = (m: unknown): void => {
    const { backend, state } = m as { backend: string; state: string };
    this.gauges[key('lockgate_breaker_open', { backend })] = state === 'closed' ? 0 : state === 'open' ? 1 : 0.5;
  };

  constructor() {
    this.#noRoute = this.#series({ api: '', operation: '', backend: '' });
    requestEnd.subscribe(this.#onEnd);
    requestShed.subscribe(this.#onShed);
    breakerState.subscribe(this.#onBreaker);
  }

  #series(labels: Record<string, string>): RouteSeries {
    // A reload builds new route objects and so new series: snapshot() sums series by key, so counts never reset.
    const s = new RouteSeries(this, labels);
    this.#views.push({ key: key('lockgate_request_duration_seconds', labels), data: s.data, offset: 0 });
    if (labels.backend) this.#views.push({ key: key('lockgate_upstream_duration_seconds', labels), data: s.data, offset: STRIDE });
    return s;
  }

  inc(name: string, labels: Record<string, string>, by = 1): void {
    const k = key(name, labels);
    this.counters[k] = (this.counters[k] ?? 0) + by;
  }

  record(ex: Exchange): void {
    let s: RouteSeries | undefined = this.#noRoute;
    const rk = ex.routeKey;
    if (rk !== null) {
      const slot = rk.telemetry;
      if (slot instanceof RouteSeries && slot.owner === this) s = slot;
      else {
        s = this.#routes.get(rk);
        if (s === undefined) {
          s = this.#series({ api: ex.api, operation: ex.operation, backend: ex.backend });
          this.#routes.set(rk, s);
        }
        // Route targets carry a slot for the data plane's own registry (one per thread).
        if ('telemetry' in rk && rk.telemetry === null) rk.telemetry = s;
      }
    }
    let c: StatusCount | null | undefined = s.lastCount;
    if (s.lastStatus !== ex.status || c === null) {
      c = s.byStatus.get(ex.status);
      if (c === undefined) {
        c = { key: key('lockgate_requests_total', { ...s.labels, status: String(ex.status) }), n: 0 };
        s.byStatus.set(ex.status, c);
        this.#statusCounts.push(c);
      }
      s.lastStatus = ex.status;
      s.lastCount = c;
    }
    c!.n++;
    observeAt(s.data, 0, (ex.tEnd - ex.tStart) / 1000);
    if (ex.tResponseStart > 0) observeAt(s.data, STRIDE, (ex.tResponseStart - ex.tDispatch) / 1000);
    if (ex.errorCode !== '') {
      this.inc('lockgate_request_errors_total', { code: ex.errorCode });
      if (ex.errorCode === 'upstream_connect') this.inc('lockgate_upstream_connect_errors_total', { backend: ex.backend });
    }
  }

  snapshot(): MetricsSnapshot {
    const counters: Record<string, number> = { ...this.counters };
    for (const c of this.#statusCounts) counters[c.key] = (counters[c.key] ?? 0) + c.n;
    const histograms = structuredClone(this.histograms);
    for (const v of this.#views) {
      const h = (histograms[v.key] ??= newHistogram());
      for (let i = 0; i < NB; i++) h.counts[i] += v.data[v.offset + i];
      h.sum += v.data[v.offset + NB];
      h.count += v.data[v.offset + NB + 1];
    }
    return { counters, gauges: { ...this.gauges }, histograms };
  }

  close(): void {
    requestEnd.unsubscribe(this.#onEnd);
    requestShed.unsubscribe(this.#onShed);
    breakerState.unsubscribe(this.#onBreaker);
  }
}

/** Sums snapshots from every worker; gauges take the maximum. */
export function mergeSnapshots(list: MetricsSnapshot[]): MetricsSnapshot {
  const out: MetricsSnapshot = { counters: {}, gauges: {}, histograms: {} };
  for (const s of list) {
    for (const [k, v] of Object.entries(s.counters)) out.counters[k] = (out.counters[k] ?? 0) + v;
    for (const [k, v] of Object.entries(s.gauges)) out.gauges[k] = Math.max(out.gauges[k] ?? -Infinity, v);
    for (const [k, h] of Object.entries(s.histograms)) {
      const t = (out.histograms[k] ??= newHistogram());
      for (let i = 0; i < t.counts.length; i++) t.counts[i] += h.counts[i];
      t.sum += h.sum;
      t.count += h.count;
    }
  }
  return out;
}

function family(k: string): string {
  const i = k.indexOf('{');
  return i < 0 ? k : k.slice(0, i);
}

function withLabel(k: string, label: string): string {
  const i = k.indexOf('{');
  return i < 0 ? `${k}_bucket{${label}}` : `${k.slice(0, i)}_bucket{${k.slice(i + 1, -1)},${label}}`;
}

/** Prometheus text exposition format 0.0.4. */
export function renderPrometheus(s: MetricsSnapshot, extra: Record<string, number> = {}): string {
  const lines: string[] = [];
  const typed = new Set<string>();
  const type = (name: string, t: string): void => {
    if (!typed.has(name)) {
      typed.add(name);
      lines.push(`# TYPE ${name} ${t}`);
    }
  };
  for (const k of Object.keys(s.counters).sort()) {
    type(family(k), 'counter');
    lines.push(`${k} ${s.counters[k]}`);
  }
  for (const [k, v] of Object.entries({ ...s.gauges, ...extra }).sort()) {
    type(family(k), 'gauge');
    lines.push(`${k} ${v}`);
  }
  for (const k of Object.keys(s.histograms).sort()) {
    const h = s.histograms[k];
    const name = family(k);
    type(name, 'histogram');
    let cum = 0;
    for (let i = 0; i < LATENCY_BUCKETS.length; i++) {
      cum += h.counts[i];
      lines.push(`${withLabel(k, `le="${LATENCY_BUCKETS[i]}"`)} ${cum}`);
    }
    lines.push(`${withLabel(k, 'le="+Inf"')} ${h.count}`);
    const labels = k.slice(name.length);
    lines.push(`${name}_sum${labels} ${h.sum}`, `${name}_count${labels} ${h.count}`);
  }
  return lines.join('\n') + '\n';
}

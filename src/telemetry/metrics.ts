// Per-worker request metrics fed by the channels, exported as plain snapshots that the main thread sums and renders.
import type { Exchange } from '../proxy/exchange.ts';
import { breakerState, policyMetric, requestEnd, requestRefused, requestShed, type PolicyMetricEvent } from './channels.ts';

/** Distinct label sets one emit-metric counter may have per worker; more are dropped and counted. */
export const MAX_METRIC_SERIES = 1000;

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

/**
 * A route's metrics live in one registry-wide Float64Array, STRIDE doubles per route, laid out for
 * the cache: its first status and that status's count, the two histograms' sums (request and upstream
 * duration), then bucket i of each histogram side by side. A request writes the count, two sums and
 * two buckets: for latencies up to 1 ms all in the block's first 64-byte line, up to 10 ms in the first
 * two, which share a 128-byte pair (the line the CPU's adjacent-line prefetch fetches with it).
 * A histogram's `count` is the sum of its buckets, added up by snapshot().
 */
const NB = LATENCY_BUCKETS.length + 1; // + the +Inf bucket
const STATUS0 = 0;
const COUNT0 = 1;
const SUM = 2;
const UP_SUM = 3;
const BUCKETS = 4;
/** 4 + 2 × 15 = 34 doubles, padded to three 128-byte pairs so blocks never share one. */
const STRIDE = 48;
/**
 * Blocks start this many doubles into the array. Arrays this large come from glibc's mmap path, 16
 * bytes past a page boundary, so 14 doubles (112 bytes) put every block on a 128-byte boundary
 * (checked with an LD_PRELOAD calloc shim: docs/performance.md). Another allocator only costs the
 * alignment, not correctness.
 */
const PAD = 14;

/**
 * Route targets carry a slot (`telemetry`) this thread's registry fills with a small integer: its tag
 * times 2^20 plus the series index. Reading it costs nothing (the handler just read the target), where
 * a series object would be one more cold object per request at 10,000 routes. Tags are unique per
 * thread, so another registry (tests) never takes a slot for its own; past 1,023 registries or 2^20
 * series a registry uses its WeakMap only.
 */
const SLOT_SPAN = 2 ** 20;
let nextTag = 1;

/** Adds one observation to the histogram whose sum is at `sum` and whose bucket i is at `first + 2i`. */
function observeAt(d: Float64Array, sum: number, first: number, seconds: number): void {
  let i = 0;
  while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]) i++;
  d[first + 2 * i]++;
  d[sum] += seconds;
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

/**
 * One route's series: labels and keys for snapshot(), and the statuses after the first. The counts
 * live in the registry's array at `offset` (see STRIDE); record() reads this object only when a route
 * answers a second, different status.
 */
class RouteSeries {
  readonly index: number;
  readonly offset: number;
  readonly labels: Record<string, string>;
  readonly durationKey: string;
  readonly upstreamKey: string | null;
  /** The `lockgate_requests_total` key of the first status (set with it). */
  key0 = '';
  /** Statuses after the first, created on demand. */
  others: Map<number, StatusCount> | null = null;
  constructor(index: number, offset: number, labels: Record<string, string>) {
    this.index = index;
    this.offset = offset;
    this.labels = labels;
    this.durationKey = key('lockgate_request_duration_seconds', labels);
    this.upstreamKey = labels.backend ? key('lockgate_upstream_duration_seconds', labels) : null;
  }
}

export class MetricsRegistry {
  readonly counters: Record<string, number> = Object.create(null);
  readonly gauges: Record<string, number> = Object.create(null);
  readonly histograms: Record<string, HistogramData> = Object.create(null);
  /** Per route target (stable object per config version): its series. */
  readonly #routes = new WeakMap<object, RouteSeries>();
  readonly #noRoute: RouteSeries;
  /** Every route series by index, folded into `counters` and `histograms` by snapshot(). */
  readonly #all: RouteSeries[] = [];
  /** All route blocks, STRIDE doubles per series after PAD, grown by doubling. */
  #hist = new Float64Array(PAD + STRIDE * 64);
  /** This registry's slot tag (see SLOT_SPAN); 0 = slots not used. */
  readonly #tag = nextTag < 1024 ? nextTag++ : 0;
  readonly #onEnd = (m: unknown): void => this.record(m as Exchange);
  readonly #onShed = (): void => this.inc('lockgate_requests_shed_total', {});
  readonly #onRefused = (m: unknown): void => this.inc('lockgate_requests_refused_total', { status: String((m as { status: number }).status) });
  /** emit-metric counters: metric name → the series keys it has (capped at MAX_METRIC_SERIES). */
  readonly #custom = new Map<string, Set<string>>();
  readonly #onMetric = (m: unknown): void => this.policyMetric(m as PolicyMetricEvent);
  readonly #onBreaker = (m: unknown): void => {
    const { backend, state } = m as { backend: string; state: string };
    this.gauges[key('lockgate_breaker_open', { backend })] = state === 'closed' ? 0 : state === 'open' ? 1 : 0.5;
  };

  constructor() {
    this.#noRoute = this.#series({ api: '', operation: '', backend: '' });
    requestEnd.subscribe(this.#onEnd);
    requestShed.subscribe(this.#onShed);
    requestRefused.subscribe(this.#onRefused);
    breakerState.subscribe(this.#onBreaker);
    policyMetric.subscribe(this.#onMetric);
  }

  /** An emit-metric increment: a value that is not a finite number ≥ 0, or a label set past the cap, is dropped and counted. */
  policyMetric(m: PolicyMetricEvent): void {
    if (!(Number.isFinite(m.value) && m.value >= 0)) {
      this.inc('lockgate_emit_metric_dropped_total', { metric: m.name, reason: 'value' });
      return;
    }
    const k = key(m.name, m.labels);
    let series = this.#custom.get(m.name);
    if (series === undefined) {
      series = new Set();
      this.#custom.set(m.name, series);
    }
    if (!series.has(k)) {
      if (series.size >= MAX_METRIC_SERIES) {
        this.inc('lockgate_emit_metric_dropped_total', { metric: m.name, reason: 'cardinality' });
        return;
      }
      series.add(k);
    }
    this.counters[k] = (this.counters[k] ?? 0) + m.value;
  }

  #series(labels: Record<string, string>): RouteSeries {
    // A reload builds new route objects and so new series: snapshot() sums series by key, so counts never reset.
    const index = this.#all.length;
    const offset = PAD + index * STRIDE;
    if (offset + STRIDE > this.#hist.length) {
      const grown = new Float64Array(PAD + (this.#hist.length - PAD) * 2);
      grown.set(this.#hist);
      this.#hist = grown;
    }
    this.#hist[offset + STATUS0] = -1;
    const s = new RouteSeries(index, offset, labels);
    this.#all.push(s);
    return s;
  }

  inc(name: string, labels: Record<string, string>, by = 1): void {
    const k = key(name, labels);
    this.counters[k] = (this.counters[k] ?? 0) + by;
  }

  record(ex: Exchange): void {
    let o = this.#noRoute.offset;
    const rk = ex.routeKey;
    if (rk !== null) {
      const slot = rk.telemetry;
      if (typeof slot === 'number' && slot >>> 20 === this.#tag) o = PAD + (slot & (SLOT_SPAN - 1)) * STRIDE;
      else o = this.#resolve(rk, ex).offset;
    }
    const h = this.#hist;
    const status = ex.status;
    if (h[o + STATUS0] === status) h[o + COUNT0]++;
    else this.#otherStatus(this.#all[(o - PAD) / STRIDE], status);
    observeAt(h, o + SUM, o + BUCKETS, (ex.tEnd - ex.tStart) / 1000);
    if (ex.tResponseStart > 0) observeAt(h, o + UP_SUM, o + BUCKETS + 1, (ex.tResponseStart - ex.tDispatch) / 1000);
    if (ex.errorCode !== '') {
      this.inc('lockgate_request_errors_total', { code: ex.errorCode });
      if (ex.errorCode === 'upstream_connect') this.inc('lockgate_upstream_connect_errors_total', { backend: ex.backend });
    }
  }

  /** The route's series, created on its first request; fills the route target's slot when it is free. */
  #resolve(rk: { telemetry?: unknown }, ex: Exchange): RouteSeries {
    let s = this.#routes.get(rk);
    if (s === undefined) {
      s = this.#series({ api: ex.api, operation: ex.operation, backend: ex.backend });
      this.#routes.set(rk, s);
    }
    // Route targets carry a slot for the data plane's own registry (one per thread).
    if (this.#tag !== 0 && s.index < SLOT_SPAN && 'telemetry' in rk && rk.telemetry === null) rk.telemetry = this.#tag * SLOT_SPAN + s.index;
    return s;
  }

  /** A status other than the route's first: the first one ever becomes the inline one, later ones go to `others`. */
  #otherStatus(s: RouteSeries, status: number): void {
    const h = this.#hist;
    if (h[s.offset + STATUS0] === -1) {
      h[s.offset + STATUS0] = status;
      h[s.offset + COUNT0] = 1;
      s.key0 = key('lockgate_requests_total', { ...s.labels, status: String(status) });
      return;
    }
    const others = (s.others ??= new Map());
    let c = others.get(status);
    if (c === undefined) {
      c = { key: key('lockgate_requests_total', { ...s.labels, status: String(status) }), n: 0 };
      others.set(status, c);
    }
    c.n++;
  }

  snapshot(): MetricsSnapshot {
    const counters: Record<string, number> = { ...this.counters };
    const histograms = structuredClone(this.histograms);
    const d = this.#hist;
    const fold = (k: string, sum: number, first: number): void => {
      const h = (histograms[k] ??= newHistogram());
      for (let i = 0; i < NB; i++) {
        h.counts[i] += d[first + 2 * i];
        h.count += d[first + 2 * i];
      }
      h.sum += d[sum];
    };
    for (const s of this.#all) {
      const count0 = d[s.offset + COUNT0];
      if (d[s.offset + STATUS0] !== -1) counters[s.key0] = (counters[s.key0] ?? 0) + count0;
      if (s.others !== null) for (const c of s.others.values()) counters[c.key] = (counters[c.key] ?? 0) + c.n;
      if (count0 > 0 || s.others !== null) {
        fold(s.durationKey, s.offset + SUM, s.offset + BUCKETS);
        if (s.upstreamKey !== null) fold(s.upstreamKey, s.offset + UP_SUM, s.offset + BUCKETS + 1);
      }
    }
    return { counters, gauges: { ...this.gauges }, histograms };
  }

  close(): void {
    requestEnd.unsubscribe(this.#onEnd);
    requestShed.unsubscribe(this.#onShed);
    requestRefused.unsubscribe(this.#onRefused);
    breakerState.unsubscribe(this.#onBreaker);
    policyMetric.unsubscribe(this.#onMetric);
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

// Open-loop latency: h2load at a fixed request rate (HTTP/1.1), percentiles computed from its per-request log.
import { execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const H2LOAD_BIN = process.env.LOCKGATE_BENCH_H2LOAD ?? '/usr/bin/h2load';
export const OPEN_LOOP_CONNECTIONS = 10;
/** The open-loop rate every system is measured at, besides half of its own maximum. */
export const FIXED_RATE = 1000;
export const INSTALL_HINT = 'install it with `apt-get install -y nghttp2-client` (Debian) or set LOCKGATE_BENCH_H2LOAD';

/** Why open-loop latency cannot be measured here, or null. */
export function h2loadMissing(): string | null {
  return existsSync(H2LOAD_BIN) ? null : `h2load not found at ${H2LOAD_BIN}; ${INSTALL_HINT}`;
}

export interface OpenLoopRun {
  /** CPU to pin h2load to (the load generator's). */
  cpu: number;
  port: number;
  /** Host header (`:authority`); h2load ignores `-H host:` over HTTP/1.1, so it is sent as `:authority`. */
  host: string;
  paths: string[];
  /** Total requests per second over all connections. */
  rate: number;
  durationS: number;
  /** Scratch directory for the URI list and the per-request log. */
  dir: string;
}

export interface OpenLoopResult {
  targetRps: number;
  /** Completed requests per second of the measured interval; well below the target means the system fell behind. */
  achievedRps: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  /** Failed, errored or timed-out requests, plus responses outside 2xx. */
  errors: number;
  /** Count by status of the responses outside 2xx (`-1` = failed stream), to say what the errors were. */
  otherStatuses: Record<string, number>;
}

/**
 * h2load's `--rps` is per connection, so the total rate is split over the connections. A one-second warm-up
 * (not in the log or the counts) lets connections open first. Note: over HTTP/1.1 a request that is due
 * while its connection still waits for the previous response is sent late and timed from when it is sent
 * (h2load does not correct coordinated omission); at the rates used (≤ half the closed-loop maximum, 10
 * connections) a connection is idle far more often than not, so this rarely happens.
 */
export function h2loadArgs(run: OpenLoopRun, uriFile: string, logFile: string): string[] {
  const perConnection = Math.max(0.1, Math.round((run.rate / OPEN_LOOP_CONNECTIONS) * 10) / 10);
  return [
    '-c', String(run.cpu), H2LOAD_BIN, '--h1', `--rps=${perConnection}`, `-c${OPEN_LOOP_CONNECTIONS}`, '-t1',
    `-D${run.durationS}`, '--warm-up-time=1', '-H', `:authority: ${run.host}`, `--log-file=${logFile}`, '-i', uriFile,
  ];
}

export interface H2loadSummary {
  total: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  status2xx: number;
}

/** Parses h2load's `requests:` and `status codes:` lines; throws on output without them (an h2load that failed to run). */
export function parseH2loadSummary(text: string): H2loadSummary {
  const requests = /^requests:\s+(\d+) total,\s+\d+ started,\s+\d+ done,\s+(\d+) succeeded,\s+(\d+) failed,\s+(\d+) errored,\s+(\d+) timeout/m.exec(text);
  if (requests === null) throw new Error(`unrecognised h2load output:\n${text.slice(-600)}`);
  const status = /^status codes:\s+(\d+) 2xx/m.exec(text);
  const [total, succeeded, failed, errored, timeout] = requests.slice(1).map(Number);
  return { total, succeeded, failed, errored, timeout, status2xx: status === null ? 0 : Number(status[1]) };
}

/**
 * Parses `--log-file` rows (`start µs since epoch <TAB> status <TAB> µs to end of response`): the durations
 * of successful (2xx) requests, the count of the others (status -1 = failed stream), and the span of start times.
 */
export function parseH2loadLog(text: string): { durationsUs: number[]; failures: number; spanUs: number; otherStatuses: Record<string, number> } {
  const durationsUs: number[] = [];
  const otherStatuses: Record<string, number> = {};
  let failures = 0;
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const [start, status, duration] = line.split('\t').map(Number);
    if (!Number.isFinite(start) || !Number.isFinite(status) || !Number.isFinite(duration)) throw new Error(`malformed h2load log line: ${line.slice(0, 100)}`);
    first = Math.min(first, start);
    last = Math.max(last, start + duration);
    if (status >= 200 && status < 300) durationsUs.push(duration);
    else {
      failures++;
      otherStatuses[status] = (otherStatuses[status] ?? 0) + 1;
    }
  }
  return { durationsUs, failures, spanUs: last > first ? last - first : 0, otherStatuses };
}

/** Nearest-rank percentile (p in 0..100) of ascending values; NaN for none. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

const RUNNING = new Set<ChildProcess>();

/** SIGKILLs any h2load still running (for an interrupted run). */
export function killOpenLoop(): void {
  for (const child of RUNNING) child.kill('SIGKILL');
}

/** Runs h2load once at `run.rate`; bounded by a kill timer well past its own duration. */
export function runOpenLoop(run: OpenLoopRun): Promise<OpenLoopResult> {
  const missing = h2loadMissing();
  if (missing !== null) return Promise.reject(new Error(missing));
  const tag = `${run.port}-${Math.round(run.rate)}`;
  const uriFile = join(run.dir, `h2load-uris-${tag}.txt`);
  const logFile = join(run.dir, `h2load-log-${tag}.tsv`);
  writeFileSync(uriFile, run.paths.map((p) => `http://127.0.0.1:${run.port}${p}\n`).join(''));
  return new Promise((resolve, reject) => {
    const child = execFile('taskset', h2loadArgs(run, uriFile, logFile), { encoding: 'utf8', timeout: (run.durationS + 20) * 1000, killSignal: 'SIGKILL', maxBuffer: 1 << 24 }, (error, stdout, stderr) => {
      RUNNING.delete(child);
      try {
        if (error !== null) throw new Error(`h2load failed: ${error.message}\n${stderr}${stdout.slice(-600)}`);
        const summary = parseH2loadSummary(stdout);
        const log = parseH2loadLog(existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
        if (log.durationsUs.length === 0) throw new Error(`h2load completed no successful request (${summary.total} total)`);
        const sorted = log.durationsUs.sort((a, b) => a - b);
        resolve({
          targetRps: run.rate,
          achievedRps: log.spanUs > 0 ? (sorted.length / log.spanUs) * 1e6 : 0,
          requests: sorted.length,
          p50Ms: percentile(sorted, 50) / 1000,
          p99Ms: percentile(sorted, 99) / 1000,
          // Failed streams are both in the summary and (as status -1) in the log: count each request once.
          errors: Math.max(log.failures, summary.total - sorted.length),
          otherStatuses: log.otherStatuses,
        });
      } catch (failure) {
        reject(failure as Error);
      } finally {
        rmSync(uriFile, { force: true });
        rmSync(logFile, { force: true });
      }
    });
    RUNNING.add(child);
  });
}

/** One open-loop figure: a system at one rate, next to direct (straight to the app) at the same rate just before. */
export interface OpenLoopEntry {
  system: string;
  /** `1000` (fixed) or `half-max` (half the system's own closed-loop req/s in this run). */
  rate: string;
  target_rps: number;
  achieved_rps: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  direct_p50_ms: number | null;
  direct_p99_ms: number | null;
  /** The system's latency minus direct's: what the two hops add. */
  added_p50_ms: number | null;
  added_p99_ms: number | null;
  errors: number | null;
  note?: string;
}

export interface OpenLoopReport {
  tool: string;
  connections: number;
  duration_s: number;
  /** Rounds per system and rate, the systems taking turns; each figure is the median over them. */
  rounds?: number;
  entries: OpenLoopEntry[];
  /** Set when nothing could be measured (h2load missing, no system measured). */
  note?: string;
}

const r3 = (n: number): number => Math.round(n * 1000) / 1000;

/** `latency-p50@<rate>:lockgate/bare-mesh` and p99: ratios of the added latency over direct (targets ≤ 1.25). */
export function openLoopRatios(report: OpenLoopReport | undefined): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const rate of [String(FIXED_RATE), 'half-max']) {
    const of = (system: string): OpenLoopEntry | undefined => report?.entries.find((e) => e.system === system && e.rate === rate);
    for (const p of ['p50', 'p99'] as const) {
      const key = p === 'p50' ? 'added_p50_ms' : 'added_p99_ms';
      const a = of('lockgate')?.[key];
      const b = of('bare-mesh')?.[key];
      out[`latency-${p}@${rate}:lockgate/bare-mesh`] = a === null || a === undefined || b === null || b === undefined || b <= 0 ? null : r3(a / b);
    }
  }
  return out;
}

// Turns measured rounds into the report: median round, ratios, the table, latest.json and the README section.
import { openLoopRatios } from './open-loop.ts';
import type { OpenLoopReport } from './open-loop.ts';
import { NODE_PEERS } from './scenarios.ts';

/** One system's numbers in one scenario, as written to latest.json; null numbers (with a note) for a system that could not run. */
export interface SystemResult {
  system: string;
  rps: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  cpu_us_per_req: number | null;
  /** Peak RSS; for a two-hop system, the larger hop's (each hop is one process, as a sidecar is). */
  rss_mb: number | null;
  anon_mb: number | null;
  /** Two-hop systems: peak RSS of hop A and hop B. */
  rss_hops_mb?: number[];
  /** Two-hop systems: CPU µs per request of hop A, then hop B (they add up to cpu_us_per_req). */
  cpu_hops_us_per_req?: number[];
  /** Why the numbers are null (not available, failed). */
  note?: string;
}

export interface ScenarioReport {
  name: string;
  results: SystemResult[];
  /** req/s ratios, and `cpu:`-prefixed CPU-per-request ratios; null when a side was not measured. */
  ratios: Record<string, number | null>;
  /** mesh-hop: open-loop latency at fixed rates (h2load). */
  openLoop?: OpenLoopReport;
}

export interface Report {
  date: string;
  node: string;
  cpus: number;
  scenarios: ScenarioReport[];
}

/** The median round by req/s (the lower middle for an even count), reported whole so its numbers belong together. */
export function medianRound<T extends { rps: number }>(rounds: T[]): T | undefined {
  if (rounds.length === 0) return undefined;
  const sorted = [...rounds].sort((a, b) => a.rps - b.rps);
  return sorted[Math.floor((sorted.length - 1) / 2)];
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  if (a === undefined || b === undefined || a === null || b === null || b === 0) return null;
  return Math.round((a / b) * 1000) / 1000;
}

export const ROUTE_SCENARIOS = ['routes-10', 'routes-10000'];
export const MESH_SCENARIO = 'mesh-hop';
export const MESH_IDENTITY_SCENARIO = 'mesh-identity';

/** mesh-identity's comparison: Lockgate's mesh-hop row, and the paired per-round ratios when measured side by side. */
export interface IdentityComparison {
  meshHopLockgate?: SystemResult;
  /** Median of per-round mesh-identity/mesh-hop req/s ratios (interleaved bursts), null when not paired. */
  pairedRps?: number | null;
  /** The same for CPU µs per request. */
  pairedCpu?: number | null;
}

/**
 * Ratios for one scenario. req/s: lockgate over bare-dispatch, the best Node peer and nginx
 * (route scenarios only against bare-dispatch, the peers have no routing); route scenarios add
 * CPU-per-request ratios, and routes-10000 compares Lockgate's CPU per request with routes-10.
 */
export function computeRatios(
  name: string, results: SystemResult[], routes10Lockgate?: SystemResult, pairedRoutesCpu?: number | null, smallGetLockgate?: SystemResult, pairedMeshRps?: number | null,
  identity?: IdentityComparison,
): Record<string, number | null> {
  const by = (system: string): SystemResult | undefined => results.find((r) => r.system === system);
  const lockgate = by('lockgate');
  if (name === MESH_IDENTITY_SCENARIO) {
    // Issue 5: end users through gateway and sidecar keep ≥ 0.85 of Lockgate's own mesh-hop req/s (same run); preferred
    // the median of per-round ratios of the interleaved measurement (measureMeshGroup), else the ratio of the rows.
    const hop = identity?.meshHopLockgate;
    return {
      'mesh-identity/mesh-hop': identity?.pairedRps ?? ratio(lockgate?.rps, hop?.rps),
      'cpu:mesh-identity/mesh-hop': identity?.pairedCpu ?? ratio(lockgate?.cpu_us_per_req, hop?.cpu_us_per_req),
    };
  }
  const bare = by('bare-dispatch');
  const ratios: Record<string, number | null> = { 'lockgate/bare-dispatch': ratio(lockgate?.rps, bare?.rps) };
  if (name === MESH_SCENARIO) {
    // Targets (issue 4): lockgate/bare-mesh ≥ 0.8, rss ≤ 1.25 (RSS is per process: the larger hop's); nginx has none.
    // req/s: preferred the median of per-round ratios of the paired measurement (measureMeshPair), as for routes.
    const mesh = by('bare-mesh');
    return {
      'lockgate/bare-mesh': pairedMeshRps ?? ratio(lockgate?.rps, mesh?.rps),
      'lockgate/nginx': ratio(lockgate?.rps, by('nginx')?.rps),
      'rss:lockgate/bare-mesh': ratio(lockgate?.rss_mb, mesh?.rss_mb),
      'cpu:lockgate/bare-mesh': ratio(lockgate?.cpu_us_per_req, mesh?.cpu_us_per_req),
    };
  }
  if (name === 'policy-chain') {
    // The issue's target: the whole chain keeps ≥ 0.75 of Lockgate's own small-get throughput (same run).
    return { 'policy-chain/small-get': ratio(lockgate?.rps, smallGetLockgate?.rps) };
  }
  if (ROUTE_SCENARIOS.includes(name)) {
    ratios['cpu:lockgate/bare-dispatch'] = ratio(lockgate?.cpu_us_per_req, bare?.cpu_us_per_req);
    if (name === 'routes-10000') {
      // Preferred: the median of per-round ratios of back-to-back runs (see pairedRatio); else the ratio of medians.
      ratios['cpu:routes-10000/routes-10'] = pairedRoutesCpu ?? ratio(lockgate?.cpu_us_per_req, routes10Lockgate?.cpu_us_per_req);
    }
    return ratios;
  }
  const peers = results.filter((r) => NODE_PEERS.includes(r.system as never) && r.rps !== null);
  const best = peers.length === 0 ? undefined : peers.reduce((a, b) => ((b.rps ?? 0) > (a.rps ?? 0) ? b : a));
  ratios['lockgate/best-node-peer'] = ratio(lockgate?.rps, best?.rps);
  ratios['lockgate/nginx'] = ratio(lockgate?.rps, by('nginx')?.rps);
  return ratios;
}

/**
 * Median over rounds of a[i] / b[i] (rounded to 3 places), for two series measured back to back in each
 * round. On a shared, noisy machine the speed drifts between rounds by more than the effect being
 * measured; a paired ratio cancels the drift that a ratio of two medians keeps. Null when no pair.
 */
export function pairedRatio(a: number[], b: number[]): number | null {
  const r: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] > 0 && b[i] > 0) r.push(a[i] / b[i]);
  if (r.length === 0) return null;
  r.sort((x, y) => x - y);
  const mid = r.length % 2 === 1 ? r[(r.length - 1) / 2] : (r[r.length / 2 - 1] + r[r.length / 2]) / 2;
  return Math.round(mid * 1000) / 1000;
}

/**
 * The round whose a[i] / b[i] is the median of the per-round ratios (the lower middle for an even count), or
 * undefined when no round has both. A paired measurement reports this round for both sides, so the table's two
 * rows belong to the same stretch of the machine's speed (two independent median rounds would not) and give the
 * paired ratio.
 */
export function medianPairRound(a: number[], b: number[]): number | undefined {
  const rounds: Array<{ i: number; r: number }> = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] > 0 && b[i] > 0) rounds.push({ i, r: a[i] / b[i] });
  if (rounds.length === 0) return undefined;
  rounds.sort((x, y) => x.r - y.r);
  return rounds[Math.floor((rounds.length - 1) / 2)].i;
}

/** Assembles the report; `results` maps scenario name to its systems' median-round results, in run order. */
export function buildReport(
  results: Map<string, SystemResult[]>, meta: { date: string; node: string; cpus: number }, pairedRoutesCpu?: number | null, openLoop?: OpenLoopReport, pairedMeshRps?: number | null,
  pairedIdentity?: { rps: number | null; cpu: number | null },
): Report {
  const routes10 = results.get('routes-10')?.find((r) => r.system === 'lockgate');
  const smallGet = results.get('small-get')?.find((r) => r.system === 'lockgate');
  const meshHopLockgate = results.get(MESH_SCENARIO)?.find((r) => r.system === 'lockgate');
  const identity: IdentityComparison = { meshHopLockgate, pairedRps: pairedIdentity?.rps, pairedCpu: pairedIdentity?.cpu };
  const scenarios = [...results].map(([name, list]): ScenarioReport => {
    const ratios = computeRatios(name, list, routes10, pairedRoutesCpu, smallGet, pairedMeshRps, identity);
    if (name !== MESH_SCENARIO || openLoop === undefined) return { name, results: list, ratios };
    return { name, results: list, ratios: { ...ratios, ...openLoopRatios(openLoop) }, openLoop };
  });
  return { ...meta, scenarios };
}

const fmt = (n: number | null | undefined, digits: number): string =>
  n === null || n === undefined ? 'n/a' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Under the main table: systems that did not run, mesh-hop's per-hop RSS, and the open-loop latencies. */
function extrasSection(report: Report): string {
  const lines: string[] = [];
  for (const s of report.scenarios) for (const r of s.results) if (r.note !== undefined) lines.push(`- ${s.name}/${r.system}: ${r.note}`);
  const mesh = report.scenarios.find((s) => s.name === MESH_SCENARIO);
  const hops = (mesh?.results ?? []).filter((r) => r.rss_hops_mb !== undefined).map((r) => `${r.system} ${r.rss_hops_mb?.map((m) => fmt(m, 1)).join(' / ')}`);
  if (hops.length > 0) lines.push('', `mesh-hop: CPU µs/req is the sum over both hops; peak RSS is the larger hop's, per hop (A / B, MB): ${hops.join('; ')}.`);
  const identity = report.scenarios.find((s) => s.name === MESH_IDENTITY_SCENARIO)?.results.find((r) => r.rss_hops_mb !== undefined);
  if (identity !== undefined) {
    lines.push('', `mesh-identity: 1,000 end users through Lockgate's gateway (validate-jwt, AccessPolicy, signed assertion) and sidecar b (assertion verified, AccessPolicy on workload and groups); CPU µs/req is the sum over both; peak RSS per hop (gateway / sidecar b, MB): ${identity.rss_hops_mb?.map((m) => fmt(m, 1)).join(' / ')}.`);
  }
  const ol = mesh?.openLoop;
  if (ol !== undefined) {
    lines.push('', `Open-loop latency through the two hops (${ol.tool}, ${ol.connections} connections, ${ol.duration_s}s per rate; "added" is the system's latency minus direct's, direct measured at the same rate just before):`, '');
    if (ol.note !== undefined) lines.push(`- ${ol.note}`);
    if (ol.entries.length > 0) {
      lines.push('| system | rate | target req/s | achieved | p50 ms | p99 ms | added p50 | added p99 | direct p50 | direct p99 |', '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|');
      for (const e of ol.entries) {
        lines.push(`| ${e.system} | ${e.rate} | ${fmt(e.target_rps, 0)} | ${fmt(e.achieved_rps, 0)} | ${fmt(e.p50_ms, 3)} | ${fmt(e.p99_ms, 3)} | ${fmt(e.added_p50_ms, 3)} | ${fmt(e.added_p99_ms, 3)} | ${fmt(e.direct_p50_ms, 3)} | ${fmt(e.direct_p99_ms, 3)} |`);
      }
      for (const e of ol.entries) if (e.note !== undefined) lines.push(`- ${e.system} @ ${e.rate}: ${e.note}`);
    }
  }
  return lines.length > 0 ? `\n${lines.join('\n')}\n` : '';
}

/** Markdown table: one row per scenario and system, then the ratios under each scenario. */
export function markdownTable(report: Report): string {
  const lines = [
    '| scenario | system | req/s | p50 ms | p99 ms | CPU µs/req | peak RSS MB | anon MB |',
    '|---|---|--:|--:|--:|--:|--:|--:|',
  ];
  for (const scenario of report.scenarios) {
    for (const r of scenario.results) {
      lines.push(`| ${scenario.name} | ${r.system} | ${fmt(r.rps, 0)} | ${fmt(r.p50_ms, 2)} | ${fmt(r.p99_ms, 2)} | ${fmt(r.cpu_us_per_req, 1)} | ${fmt(r.rss_mb, 1)} | ${fmt(r.anon_mb, 1)} |`);
    }
  }
  const ratioLines = report.scenarios
    .map((s) => `- ${s.name}: ${Object.entries(s.ratios).map(([k, v]) => `${k} ${v === null ? 'n/a' : fmt(v, 2)}`).join(', ')}`);
  return `${lines.join('\n')}\n\nRatios (req/s unless prefixed \`cpu:\`, which compares CPU µs per request, \`rss:\` peak RSS, \`latency-pNN@rate:\` open-loop added latency; \`cpu:routes-10000/routes-10\`, \`policy-chain/small-get\`, mesh-hop's \`lockgate/bare-mesh\` and \`mesh-identity/mesh-hop\` are medians of per-round ratios of paired runs):\n\n${ratioLines.join('\n')}\n${extrasSection(report)}`;
}

/** Fixed-width table for the terminal, with the extra columns that say whether the proxy was the bottleneck. */
export function terminalTable(rows: Array<SystemResult & { scenario: string; proxyCpuPct: number; core0Pct: number; errors: number }>): string {
  const header = ['scenario', 'system', 'req/s', 'p50ms', 'p99ms', 'cpuµs/req', 'rssMB', 'anonMB', 'proxy%', 'core0%', 'errors'];
  const body = rows.map((r) => [
    r.scenario, r.system, fmt(r.rps, 0), fmt(r.p50_ms, 2), fmt(r.p99_ms, 2), fmt(r.cpu_us_per_req, 1),
    fmt(r.rss_mb, 1), fmt(r.anon_mb, 1), fmt(r.proxyCpuPct, 0), fmt(r.core0Pct, 0), String(r.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(header), ...body.map(line)].join('\n');
}

export const README_START = '<!-- bench:start -->';
export const README_END = '<!-- bench:end -->';

/** Replaces the text between the markers; null when the markers are missing or out of order. */
export function replaceReadmeSection(readme: string, section: string): string | null {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < start) return null;
  return `${readme.slice(0, start + README_START.length)}\n${section.trimEnd()}\n${readme.slice(end)}`;
}

/** The README section: the table plus how it was measured and how to reproduce it. */
export function readmeSection(report: Report, setup: string): string {
  return `Measured ${report.date.slice(0, 10)} with Node ${report.node} on ${report.cpus} CPUs. ${setup}\n\n${markdownTable(report)}\nReproduce: \`npm run bench\` (see [bench/README.md](bench/README.md)).\n`;
}

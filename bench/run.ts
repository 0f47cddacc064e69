// `npm run bench`: Lockgate side by side with nginx, Node peers and a bare undici proxy, in one run.
// Flags: --only NAMES (scenarios and/or systems, comma-separated), --duration S, --warmup S, --mesh-warmup S, --rounds N,
// --mesh-rounds N, --pair-rounds N, --dry-run.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { coreBusy, readCores } from './measure.ts';
import { measurePair, measureUnit, writeRequestsFile } from './measure-unit.ts';
import type { Sample } from './measure-unit.ts';
import { createMeshCerts } from './mesh-certs.ts';
import type { MeshCerts } from './mesh-certs.ts';
import { MESH_OVERHEAD_S, MeshMemberError, OPEN_LOOP_ROUNDS, measureMeshGroup, measureMeshUnit, measureOpenLoop, meshUnavailable } from './mesh-hop.ts';
import type { MeshSample } from './mesh-hop.ts';
import { FIXED_RATE, H2LOAD_BIN, OPEN_LOOP_CONNECTIONS, h2loadMissing, killOpenLoop } from './open-loop.ts';
import type { OpenLoopEntry, OpenLoopReport } from './open-loop.ts';
import { startUpstream } from './nginx.ts';
import { killAllPinned } from './pinned-process.ts';
import { MESH_IDENTITY_SCENARIO, MESH_SCENARIO, buildReport, medianPairRound, medianRound, pairedRatio, readmeSection, replaceReadmeSection, terminalTable } from './report.ts';
import type { SystemResult } from './report.ts';
import { buildScenarios, parseOnly, selectScenarios } from './scenarios.ts';
import type { Scenario, SystemName } from './scenarios.ts';
import { ROOT, unavailable } from './systems.ts';
import { killWrk } from './wrk.ts';

const LOAD_CPU = 0;
const PROXY_CPU = 1;
/** Seconds per unit beyond warm-up and measurement (start, readiness, checks, stop), measured on a 2-vCPU VM. */
const OVERHEAD_S: Partial<Record<SystemName, number>> = { direct: 0.2, nginx: 0.5, lockgate: 2 };
const NODE_OVERHEAD_S = 1;
/** Native systems do not JIT: their warm-up only opens connections, so one second is enough. */
const NATIVE: SystemName[] = ['direct', 'nginx'];

const { values } = parseArgs({
  options: {
    only: { type: 'string' },
    duration: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '2' },
    // The two-hop group's Node processes start afresh every round, and V8 moves their hot paths from Maglev to
    // Turbofan only 4–5 s into the load (measured with --trace-opt: `proceed`, `handle`, `#attempt` compiled at
    // ~4.5 s, 25–70 ms each on the proxy CPU). With 2 s, the first measured burst paid those compiles (V8's
    // background threads 25–29 µs per request at each hop) and mesh-identity, which has more code to tier up,
    // lost 30–40 % of that burst: warm-up long enough that steady state is what is measured.
    'mesh-warmup': { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    // mesh-hop's and mesh-identity's ratios are the noisiest (two processes per system on one CPU): 5 rounds, ~20 s each.
    'mesh-rounds': { type: 'string', default: '5' },
    // The paired Lockgate measurements whose ratio is a target (routes-10000/routes-10 CPU, policy-chain/small-get):
    // their per-round ratios spread 0.94–1.28 on this VM, wider than the 5 % being checked, so the median takes 5 rounds.
    'pair-rounds': { type: 'string', default: '5' },
    'dry-run': { type: 'boolean', default: false },
  },
});
const durationS = Number(values.duration);
const warmupS = Number(values.warmup);
const meshWarmupS = Number(values['mesh-warmup']);
const rounds = Number(values.rounds);
const meshRounds = Number(values['mesh-rounds']);
const pairRounds = Number(values['pair-rounds']);
// wrk takes whole seconds (-d1.5s fails every run), so both must be integers.
if (!(durationS >= 1) || !(warmupS >= 0) || !Number.isInteger(durationS) || !Number.isInteger(warmupS) || !(meshWarmupS >= 0) || !Number.isInteger(meshWarmupS) || !Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(meshRounds) || meshRounds < 1 || !Number.isInteger(pairRounds) || pairRounds < 1) {
  console.error('usage: node bench/run.ts [--only NAMES] [--duration whole S>=1] [--warmup whole S>=0] [--mesh-warmup whole S>=0] [--rounds N>=1] [--mesh-rounds N>=1] [--pair-rounds N>=1] [--dry-run]');
  process.exit(2);
}
if (availableParallelism() < 2) console.error('warning: fewer than 2 CPUs; the proxy and the load generator share a core');

let only: ReturnType<typeof parseOnly>;
try {
  only = parseOnly(values.only);
} catch (error) {
  console.error((error as Error).message);
  process.exit(2);
}
const scenarios = selectScenarios(buildScenarios(), only);
/** Two-hop scenarios: started by mesh-hop.ts, measured for --mesh-rounds rounds. */
const MESH_SCENARIOS = [MESH_SCENARIO, MESH_IDENTITY_SCENARIO];
const skipped = new Map<SystemName, string>();
for (const scenario of scenarios) {
  for (const system of scenario.systems) {
    const reason = unavailable(system);
    if (reason !== null) skipped.set(system, reason);
  }
}
for (const [system, reason] of skipped) console.error(`skipping ${system}: ${reason}`);
// `scenario/system` → why it has no numbers; reported as a row of nulls with this note instead of failing the run.
const notes = new Map<string, string>();
for (const scenario of scenarios) {
  for (const system of scenario.systems) {
    const reason = skipped.get(system) ?? (MESH_SCENARIOS.includes(scenario.name) ? meshUnavailable(system) : null);
    if (reason === null) continue;
    notes.set(`${scenario.name}/${system}`, `not available: ${reason}`);
    if (!skipped.has(system)) console.error(`skipping ${scenario.name}/${system}: ${reason}`);
  }
}
interface Unit {
  scenario: Scenario;
  system: SystemName;
}
const units: Unit[] = scenarios.flatMap((s) => s.systems.filter((y) => !notes.has(`${s.name}/${y}`)).map((system) => ({ scenario: s, system })));
/** 1 s bursts per side in the paired route measurement (measurePair). */
const PAIR_BURSTS = 6;
const isMesh = (u: Unit): boolean => MESH_SCENARIOS.includes(u.scenario.name);
const PAIR_A = 'routes-10/lockgate';
const PAIR_B = 'routes-10000/lockgate';
/**
 * Lockgate in two scenarios whose ratio is a target (routes-10000/routes-10 CPU, policy-chain/small-get req/s): each
 * pair is measured side by side in alternating bursts (measurePair), at the first one's turn.
 */
const LOCKGATE_PAIRS: ReadonlyArray<readonly [string, string]> = [[PAIR_A, PAIR_B], ['small-get/lockgate', 'policy-chain/lockgate']];
const keyOf = (u: Unit): string => `${u.scenario.name}/${u.system}`;
const pairUnit = (key: string): Unit | undefined => units.find((u) => keyOf(u) === key);
/** A unit of a pair measured together (both in this run): --pair-rounds rounds. */
const isPaired = (u: Unit): boolean => LOCKGATE_PAIRS.some((p) => p.includes(keyOf(u)) && p.every((k) => pairUnit(k) !== undefined));
const roundsOf = (u: Unit): number => (isMesh(u) ? meshRounds : isPaired(u) ? pairRounds : rounds);
/** A unit's warm-up: --mesh-warmup for the two-hop systems, else --warmup; native systems at most 1 s. */
const warmupOf = (u: Unit): number => {
  const s = isMesh(u) ? meshWarmupS : warmupS;
  return NATIVE.includes(u.system) ? Math.min(s, 1) : s;
};
const unitS = (u: Unit): number => warmupOf(u) + durationS + ((isMesh(u) ? MESH_OVERHEAD_S : OVERHEAD_S)[u.system] ?? NODE_OVERHEAD_S);
// Open loop, per Node two-hop system: start, warm-up, then direct + system (each 1 s h2load warm-up + the duration) at two rates.
const openLoopSystems = units.filter((u) => u.scenario.name === MESH_SCENARIO && (u.system === 'bare-mesh' || u.system === 'lockgate'));
const openLoopS = openLoopSystems.reduce((sum, u) => sum + (MESH_OVERHEAD_S[u.system] ?? 2) + meshWarmupS + OPEN_LOOP_ROUNDS * 4 * (durationS + 1.5), 0);
const plannedS = units.reduce((sum, u) => sum + roundsOf(u) * unitS(u), 0) + openLoopS;
const meshNote = units.some(isMesh) ? `; ${MESH_SCENARIOS.filter((n) => units.some((u) => u.scenario.name === n)).join(', ')} ${meshRounds} rounds${openLoopSystems.length > 0 ? ' + open-loop latency' : ''}` : '';
const pairNote = units.some(isPaired) ? `; paired Lockgate units ${pairRounds} rounds` : '';
console.log(`plan: ${units.length} system×scenario pairs × ${rounds} rounds${meshNote}${pairNote}, ${warmupS}s warm-up (${meshWarmupS}s for two-hop systems; 1s for nginx/direct) + ${durationS}s measured each ≈ ${(plannedS / 60).toFixed(1)} min`);
if (values['dry-run']) {
  for (const u of units) console.log(`  ${u.scenario.name}/${u.system}${roundsOf(u) !== rounds ? ` (${roundsOf(u)} rounds)` : ''}`);
  if (openLoopSystems.length > 0) console.log(`  mesh-hop open loop: ${openLoopSystems.map((u) => u.system).join(', ')} and direct at ${FIXED_RATE} req/s and half of each one's maximum`);
  for (const [key, note] of notes) console.log(`  ${key}: ${note}`);
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'lockgate-bench-'));
const cleanup = (): void => {
  killWrk();
  killOpenLoop();
  killAllPinned();
  rmSync(dir, { recursive: true, force: true });
};
// An interrupted or timed-out run must not leave nginx or a proxy holding a CPU.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: stopping`);
    cleanup();
    process.exit(130);
  });
}
process.once('exit', cleanup);

const runStarted = Date.now();
// Other work on the box skews every number; say so up front rather than after eight minutes.
const idleCheck = readCores();
await sleep(1000);
const busyBefore = coreBusy(idleCheck, readCores());
if (busyBefore.some((b) => b > 0.2)) {
  console.error(`warning: CPUs already busy before the run (${busyBefore.map((b) => `${Math.round(b * 100)}%`).join(', ')}); results will be low and noisy`);
}
const { port: upstreamPort, process: upstream } = await startUpstream(dir, LOAD_CPU);
const ctx = { dir, proxyCpu: PROXY_CPU, upstreamPort, upstreamPid: upstream.pid };
const files = new Map(scenarios.map((s) => [s.name, writeRequestsFile(dir, s)]));
// The mesh-hop PKI (root, intermediate, leaves a and b), once per run.
const certs: MeshCerts | null = units.some(isMesh) ? await createMeshCerts(join(dir, 'mesh-pki')) : null;

// samples[scenario][system] = one Sample per successful round
const samples = new Map<string, Map<SystemName, Sample[]>>(scenarios.map((s) => [s.name, new Map()]));
const failed = new Set<string>();
const record = (scenario: Scenario, system: SystemName, sample: Sample, label: string, unitStarted: number): void => {
  const list = samples.get(scenario.name)?.get(system) ?? [];
  list.push(sample);
  samples.get(scenario.name)?.set(system, list);
  const hopCpu = (sample as Partial<MeshSample>).hopCpuUsPerReq;
  const hops = hopCpu === undefined ? '' : ` (hops ${hopCpu.map((c) => c.toFixed(1)).join(' + ')})`;
  console.log(`${label}: ${Math.round(sample.rps)} req/s, p99 ${sample.p99Ms.toFixed(2)} ms, ${sample.cpuUsPerReq.toFixed(1)} µs/req${hops}, proxy ${sample.proxyCpuPct.toFixed(0)}% core0 ${sample.core0Pct.toFixed(0)}% (${((Date.now() - unitStarted) / 1000).toFixed(1)}s)`);
};
// Lockgate's two hops and bare-mesh's, and Lockgate's mesh-identity, are one group (measureMeshGroup): interleaved bursts.
// The mesh-hop target is lockgate/bare-mesh, mesh-identity's is its req/s over mesh-hop/lockgate's.
const MESH_PAIR = ['lockgate', 'bare-mesh'] as const;
const meshPairKeys = MESH_PAIR.map((y) => `${MESH_SCENARIO}/${y}`);
const IDENTITY_KEY = `${MESH_IDENTITY_SCENARIO}/lockgate`;
const MESH_GROUP = [...meshPairKeys, IDENTITY_KEY];
const meshGroupNow = (): Unit[] => MESH_GROUP.map(pairUnit).filter((u): u is Unit => u !== undefined && !failed.has(keyOf(u)));
// Rounds in which mesh-hop's pair (Lockgate and bare-mesh) was measured together, rounds the group was measured in,
// and mesh-identity's samples with mesh-hop/lockgate's from the same group (its paired ratio).
const meshPaired = new Set<number>();
const meshGrouped = new Set<number>();
const identityPairs: Array<{ identity: Sample; hop: Sample }> = [];
for (let round = 1; round <= Math.max(rounds, meshRounds, pairRounds); round++) {
  for (const unit of units) {
    const { scenario, system } = unit;
    const key = keyOf(unit);
    if (failed.has(key)) continue;
    if (round > roundsOf(unit)) continue;
    if (MESH_GROUP.includes(key) && certs !== null && (meshGrouped.has(round) || meshGroupNow().length >= 2)) {
      if (meshGrouped.has(round)) continue;
      meshGrouped.add(round);
      // A member that does not start or crashes is dropped (with a note) and the rest measured again without it.
      for (let members = meshGroupNow(); members.length > 0; members = meshGroupNow()) {
        const unitStarted = Date.now();
        const keys = members.map(keyOf);
        try {
          const measured = await measureMeshGroup(
            members.map((u) => ({ system: u.system, scenario: u.scenario, requestsFile: files.get(u.scenario.name) ?? '' })), ctx, certs,
            { warmupS: meshWarmupS, durationS, loadCpu: LOAD_CPU, bursts: durationS },
          );
          measured.forEach((sample, i) => record(members[i].scenario, members[i].system, sample, `round ${round}/${meshRounds} ${keys[i]} (interleaved)`, unitStarted));
          if (meshPairKeys.every((k) => keys.includes(k))) meshPaired.add(round);
          const at = (k: string): Sample | undefined => measured[keys.indexOf(k)];
          const identity = at(IDENTITY_KEY);
          const hop = at(meshPairKeys[0]);
          if (identity !== undefined && hop !== undefined) identityPairs.push({ identity, hop });
        } catch (error) {
          const message = (error as Error).message;
          const bad = error instanceof MeshMemberError ? [keys[error.member]] : keys;
          for (const k of bad) {
            failed.add(k);
            notes.set(k, `failed: ${message.split('\n')[0]}`);
          }
          console.error(`round ${round}/${meshRounds} ${bad.join(' + ')}: FAILED, dropped from later rounds: ${message}`);
          if (error instanceof MeshMemberError) continue;
        }
        break;
      }
      continue;
    }
    // Two Lockgate scenarios whose ratio is a target are one paired measurement (measurePair): alternating bursts.
    const pair = LOCKGATE_PAIRS.find((p) => p.includes(key));
    const a = pair && pairUnit(pair[0]);
    const b = pair && pairUnit(pair[1]);
    if (pair !== undefined && a !== undefined && b !== undefined && !failed.has(pair[0]) && !failed.has(pair[1])) {
      if (key === pair[1]) continue; // measured at the first one's turn
      const unitStarted = Date.now();
      try {
        const [sa, sb] = await measurePair(
          { system: 'lockgate', scenario: a.scenario, requestsFile: files.get(a.scenario.name) ?? '' },
          { system: 'lockgate', scenario: b.scenario, requestsFile: files.get(b.scenario.name) ?? '' },
          ctx, { warmupS, durationS: PAIR_BURSTS, loadCpu: LOAD_CPU, bursts: PAIR_BURSTS },
        );
        record(a.scenario, 'lockgate', sa, `round ${round}/${pairRounds} ${pair[0]} (paired)`, unitStarted);
        record(b.scenario, 'lockgate', sb, `round ${round}/${pairRounds} ${pair[1]} (paired)`, unitStarted);
      } catch (error) {
        failed.add(pair[0]);
        failed.add(pair[1]);
        console.error(`round ${round}/${pairRounds} ${pair[0]} + ${pair[1]}: FAILED, dropped from later rounds: ${(error as Error).message}`);
      }
      continue;
    }
    const label = `round ${round}/${rounds} ${key}`;
    const unitStarted = Date.now();
    try {
      const options = { warmupS: warmupOf(unit), durationS, loadCpu: LOAD_CPU };
      const requestsFile = files.get(scenario.name) ?? '';
      const sample = isMesh(unit) && certs !== null
        ? await measureMeshUnit(system, scenario, ctx, certs, requestsFile, options)
        : await measureUnit(system, scenario, ctx, requestsFile, options);
      record(scenario, system, sample, label, unitStarted);
    } catch (error) {
      // A system that fails once is dropped from this scenario so one broken build cannot eat the budget.
      failed.add(key);
      notes.set(key, `failed: ${(error as Error).message.split('\n')[0]}`);
      console.error(`${label}: FAILED, dropped from later rounds: ${(error as Error).message}`);
    }
  }
}

// Open-loop latency for the Node two-hop systems, at 1,000 req/s and at half of each one's closed-loop maximum above.
let openLoop: OpenLoopReport | undefined;
const meshScenario = scenarios.find((s) => s.name === MESH_SCENARIO);
// bare-mesh first: the reference, then Lockgate.
const openLoopTargets = (['bare-mesh', 'lockgate'] as const).filter((y) => meshScenario?.systems.includes(y) === true);
if (meshScenario !== undefined && certs !== null && openLoopTargets.length > 0) {
  const missing = h2loadMissing();
  const nulls = (system: string, note: string): OpenLoopEntry[] => [String(FIXED_RATE), 'half-max'].map((rate) => ({
    system, rate, target_rps: rate === 'half-max' ? 0 : FIXED_RATE, achieved_rps: null, p50_ms: null, p99_ms: null,
    direct_p50_ms: null, direct_p99_ms: null, added_p50_ms: null, added_p99_ms: null, errors: null, note,
  }));
  if (missing !== null) {
    console.error(`open loop: not measured: ${missing}`);
    openLoop = { tool: 'h2load --h1 --rps', connections: OPEN_LOOP_CONNECTIONS, duration_s: durationS, entries: [], note: `not measured: ${missing}` };
  } else {
    const measured = openLoopTargets.flatMap((system) => {
      const max = medianRound(samples.get(MESH_SCENARIO)?.get(system) ?? []);
      return max === undefined ? [] : [{ system, maxRps: max.rps }];
    });
    openLoop = await measureOpenLoop(measured, meshScenario, ctx, certs, { loadCpu: LOAD_CPU, durationS, warmupS: meshWarmupS, requestsFile: files.get(MESH_SCENARIO) ?? '' });
    for (const system of openLoopTargets) {
      if (!measured.some((m) => m.system === system)) openLoop.entries.push(...nulls(system, notes.get(`${MESH_SCENARIO}/${system}`) ?? 'no closed-loop result'));
    }
    openLoop.tool = `h2load --h1 --rps (${H2LOAD_BIN})`;
  }
}

const upstreamStop = await upstream.stop();
if (!upstreamStop.clean) console.error('upstream nginx did not exit cleanly');

const round2 = (n: number, d: number): number => Math.round(n * 10 ** d) / 10 ** d;
// Paired measurements report one round for both sides: the one with the median per-round ratio (medianPairRound).
const seriesOf = (scenario: string, system: string): Sample[] => samples.get(scenario)?.get(system as SystemName) ?? [];
const pairedSample = new Map<string, Sample>();
for (const [a, b, metric] of [
  [PAIR_B, PAIR_A, (x: Sample) => x.cpuUsPerReq],
  ['policy-chain/lockgate', 'small-get/lockgate', (x: Sample) => x.rps],
  [meshPairKeys[0], meshPairKeys[1], (x: Sample) => x.rps],
] as const) {
  const [sa, ya] = a.split('/');
  const [sb, yb] = b.split('/');
  const i = medianPairRound(seriesOf(sa, ya).map(metric), seriesOf(sb, yb).map(metric));
  if (i !== undefined && seriesOf(sa, ya).length === seriesOf(sb, yb).length) for (const [k, s, y] of [[a, sa, ya], [b, sb, yb]]) pairedSample.set(k, seriesOf(s, y)[i]);
}
// mesh-identity's row: the group round with the median mesh-identity/mesh-hop ratio (mesh-hop/lockgate keeps its pair's round).
const identityRound = medianPairRound(identityPairs.map((p) => p.identity.rps), identityPairs.map((p) => p.hop.rps));
if (identityRound !== undefined) {
  pairedSample.set(IDENTITY_KEY, identityPairs[identityRound].identity);
  if (!pairedSample.has(meshPairKeys[0])) pairedSample.set(meshPairKeys[0], identityPairs[identityRound].hop);
}
const results = new Map<string, SystemResult[]>();
const rows: Parameters<typeof terminalTable>[0] = [];
for (const scenario of scenarios) {
  const list: SystemResult[] = [];
  for (const system of scenario.systems) {
    const median = pairedSample.get(`${scenario.name}/${system}`) ?? medianRound(samples.get(scenario.name)?.get(system) ?? []);
    if (median === undefined) {
      const note = notes.get(`${scenario.name}/${system}`);
      if (note !== undefined) list.push({ system, rps: null, p50_ms: null, p99_ms: null, cpu_us_per_req: null, rss_mb: null, anon_mb: null, note });
      continue;
    }
    const hops = (median as Partial<MeshSample>).hopRssMb;
    const result: SystemResult & { rps: number; p50_ms: number; p99_ms: number; cpu_us_per_req: number; rss_mb: number; anon_mb: number } = {
      system, rps: Math.round(median.rps), p50_ms: round2(median.p50Ms, 3), p99_ms: round2(median.p99Ms, 3),
      cpu_us_per_req: round2(median.cpuUsPerReq, 1), rss_mb: round2(median.rssMb, 1), anon_mb: round2(median.anonMb, 1),
    };
    if (hops !== undefined) result.rss_hops_mb = hops.map((m) => round2(m, 1));
    const hopCpu = (median as Partial<MeshSample>).hopCpuUsPerReq;
    if (hopCpu !== undefined) result.cpu_hops_us_per_req = hopCpu.map((c) => round2(c, 1));
    list.push(result);
    rows.push({ ...result, scenario: scenario.name, proxyCpuPct: median.proxyCpuPct, core0Pct: median.core0Pct, errors: median.errors });
  }
  if (list.length > 0) results.set(scenario.name, list);
}
// Per-round CPU of the two route runs (a unit dropped after a failure leaves its list short: pair by round).
const routeCpu = (name: string): number[] => (samples.get(name)?.get('lockgate') ?? []).map((x) => x.cpuUsPerReq);
const pairedRoutesCpu = failed.has('routes-10/lockgate') || failed.has('routes-10000/lockgate') ? null : pairedRatio(routeCpu('routes-10000'), routeCpu('routes-10'));
// Per-round req/s of the paired mesh-hop measurement (Lockgate and bare-mesh in alternating bursts).
const meshRps = (system: string): number[] => (samples.get(MESH_SCENARIO)?.get(system as SystemName) ?? []).map((x) => x.rps);
const pairedMeshRps = meshPairKeys.some((k) => failed.has(k)) || meshPaired.size === 0 ? null : pairedRatio(meshRps('lockgate'), meshRps('bare-mesh'));
// mesh-identity over Lockgate's mesh-hop, per group round in which both were measured.
const pairedIdentity = {
  rps: pairedRatio(identityPairs.map((p) => p.identity.rps), identityPairs.map((p) => p.hop.rps)),
  cpu: pairedRatio(identityPairs.map((p) => p.identity.cpuUsPerReq), identityPairs.map((p) => p.hop.cpuUsPerReq)),
};
const report = buildReport(results, { date: new Date().toISOString(), node: process.version, cpus: availableParallelism() }, pairedRoutesCpu, openLoop, pairedMeshRps, pairedIdentity);
// apply-to-served runs 21 processes for ~4.5 minutes, so it is its own command (npm run bench:apply); its last result
// is carried into latest.json with the time it was measured.
const applyFile = join(ROOT, 'bench', 'results', 'apply-to-served.json');
if (existsSync(applyFile)) {
  const a = JSON.parse(readFileSync(applyFile, 'utf8')) as {
    measuredAt: string; setup: { nodes: number; routes: number; applies: number }; applyToServedMs: { p50: number; p99: number; max: number };
    perNodeMs: { p50: number; p99: number }; target: { p99Ms: number };
  };
  report.scenarios.push({
    name: 'apply-to-served',
    results: [{
      system: 'lockgate', rps: null, p50_ms: a.applyToServedMs.p50, p99_ms: a.applyToServedMs.p99, cpu_us_per_req: null, rss_mb: null, anon_mb: null,
      note: `npm run bench:apply at ${a.measuredAt}: ${a.setup.nodes} nodes, ${a.setup.routes} routes, ${a.setup.applies} applies; slowest node per apply (max ${a.applyToServedMs.max} ms; per node p50 ${a.perNodeMs.p50} ms); target p99 <= ${a.target.p99Ms} ms`,
    }],
    ratios: {},
  });
} else {
  // Its result file is not committed (results/* is ignored but latest.json): a fresh checkout keeps the entry the last
  // full run carried, with its own measurement time, rather than losing it.
  const previous = join(ROOT, 'bench', 'results', 'latest.json');
  const kept = existsSync(previous)
    ? (JSON.parse(readFileSync(previous, 'utf8')) as { scenarios?: Array<{ name: string }> }).scenarios?.find((s) => s.name === 'apply-to-served')
    : undefined;
  if (kept !== undefined) report.scenarios.push(kept as (typeof report.scenarios)[number]);
}
console.log(`\n${terminalTable(rows)}\n`);
for (const s of report.scenarios) console.log(`${s.name}: ${JSON.stringify(s.ratios)}`);
for (const s of report.scenarios) for (const r of s.results) if (r.note !== undefined) console.log(`${s.name}/${r.system}: ${r.note}`);

// A narrowed run must not overwrite the full result the README quotes.
const full = values.only === undefined || values.only === '';
const resultsDir = join(ROOT, 'bench', 'results');
mkdirSync(resultsDir, { recursive: true });
const out = join(resultsDir, full ? 'latest.json' : 'partial.json');
writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
console.log(`\nwrote ${out}`);
const readmePath = join(ROOT, 'README.md');
if (full && existsSync(readmePath)) {
  const busy = busyBefore.some((b) => b > 0.2) ? ' Other load was on the machine when this run started, so these numbers are low and noisy.' : '';
  const roundNotes = [
    units.some(isMesh) && meshRounds !== rounds ? `${meshRounds} for mesh-hop and mesh-identity` : '',
    units.some(isPaired) && pairRounds !== rounds ? `${pairRounds} for the paired Lockgate units` : '',
  ].filter((t) => t !== '');
  const roundsText = roundNotes.length > 0 ? ` (${roundNotes.join(', ')})` : '';
  const setup = `wrk -t1 -c50 on CPU ${LOAD_CPU} with the upstream nginx, the proxy alone on CPU ${PROXY_CPU} (both hops of mesh-hop and mesh-identity); ${warmupS}s warm-up (${meshWarmupS}s for the two-hop systems, fresh every round: V8 tiers their hot paths up 4–5 s into the load), ${durationS}s measured, median of ${rounds} interleaved rounds${roundsText}; the pairs routes-10/routes-10000, small-get/policy-chain (Lockgate) run side by side in alternating 1 s bursts, and mesh-hop's Lockgate and bare-mesh with Lockgate's mesh-identity in 1 s bursts taking turns (one fixed order for three), each pair's rows from its round with the median ratio.${busy}`;
  const updated = replaceReadmeSection(readFileSync(readmePath, 'utf8'), readmeSection(report, setup));
  if (updated === null) console.log('README.md has no bench markers; not updated');
  else {
    writeFileSync(readmePath, updated);
    console.log('updated README.md Performance section');
  }
}
console.log(`total run time ${((Date.now() - runStarted) / 60000).toFixed(1)} min`);

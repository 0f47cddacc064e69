// One measurement: start a system, warm it up, measure one interval with wrk and /proc, stop it.
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requestsFileText } from './config.ts';
import { coreBusy, cpuUsPerRequest, median, readCores, readCpu, readMemory, ticksPerSecond } from './measure.ts';
import { portIsFree } from './net.ts';
import type { Scenario, SystemName } from './scenarios.ts';
import { startSystem } from './systems.ts';
import type { Context } from './systems.ts';
import { runWrk, type WrkResult } from './wrk.ts';

export interface Sample {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  cpuUsPerReq: number;
  rssMb: number;
  anonMb: number;
  /** Share of one core the measured process used; near 100 means it was the bottleneck. */
  proxyCpuPct: number;
  /** How busy the load-generator core was; near 100 means the number is a lower bound. */
  core0Pct: number;
  errors: number;
  warnings: string[];
}

export interface UnitOptions {
  warmupS: number;
  durationS: number;
  loadCpu: number;
}

/** Writes the scenario's request list for rotate.lua once per run; returns its path. */
export function writeRequestsFile(dir: string, scenario: Scenario): string {
  const file = join(dir, `requests-${scenario.name}.tsv`);
  writeFileSync(file, requestsFileText(scenario.requests));
  return file;
}

export async function measureUnit(system: SystemName, scenario: Scenario, ctx: Context, requestsFile: string, options: UnitOptions): Promise<Sample> {
  const running = await startSystem(system, scenario, ctx);
  const warnings: string[] = [];
  const wrkRun = { cpu: options.loadCpu, port: running.port, requestsFile, bodyBytes: scenario.bodyBytes };
  try {
    if (options.warmupS > 0) await runWrk({ ...wrkRun, durationS: options.warmupS });
    const cpuBefore = readCpu(running.pid);
    const coresBefore = readCores();
    const started = process.hrtime.bigint();
    const wrk = await runWrk({ ...wrkRun, durationS: options.durationS });
    const wallS = Number(process.hrtime.bigint() - started) / 1e9;
    const cpuAfter = readCpu(running.pid);
    const busy = coreBusy(coresBefore, readCores());
    const memory = readMemory(running.pid);
    if (running.crashed()) throw new Error(`${system} exited during the measurement`);
    const errors = wrk.non2xx + wrk.socketErrors;
    if (errors > 0) warnings.push(`${errors} failed requests (${wrk.non2xx} non-2xx, ${wrk.socketErrors} socket errors)`);
    const ticks = ticksPerSecond();
    const cpuSeconds = (cpuAfter.utime + cpuAfter.stime - cpuBefore.utime - cpuBefore.stime) / ticks;
    return {
      rps: wrk.rps,
      p50Ms: wrk.p50Ms,
      p99Ms: wrk.p99Ms,
      cpuUsPerReq: cpuUsPerRequest(cpuBefore, cpuAfter, wrk.requests, ticks),
      rssMb: memory.rssMb,
      anonMb: memory.anonMb,
      proxyCpuPct: (cpuSeconds / wallS) * 100,
      core0Pct: (busy[options.loadCpu] ?? 0) * 100,
      errors,
      warnings,
    };
  } finally {
    const stopped = await running.stop();
    if (!stopped.clean) warnings.push(`${system} did not exit cleanly (code ${stopped.code}, signal ${stopped.signal})`);
    if (system !== 'direct' && !(await portIsFree(running.port))) warnings.push(`port ${running.port} still in use after stop`);
    if (running.accessLog !== null) {
      // The access log is part of what is measured: an empty one means logging was not on.
      if (!existsSync(running.accessLog) || statSync(running.accessLog).size === 0) warnings.push('access log is empty');
      rmSync(running.accessLog, { force: true });
    }
    for (const warning of warnings) console.error(`  ! ${scenario.name}/${system}: ${warning}`);
  }
}

/**
 * Two systems (or one system in two scenarios) measured side by side: both run at once on the proxy
 * CPU, warmed up, then wrk alternates short bursts between them (A B, B A, A B, …) and each side's
 * CPU is summed over its own bursts. Used for `cpu:routes-10000/routes-10`, where the effect being
 * checked (≤ 5 %) is smaller than how much this shared VM's speed drifts between separate runs
 * seconds apart; alternating 1 s bursts cancels the drift. Returns one Sample per side.
 */
export async function measurePair(
  a: { system: SystemName; scenario: Scenario; requestsFile: string },
  b: { system: SystemName; scenario: Scenario; requestsFile: string },
  ctx: Context,
  options: UnitOptions & { bursts: number },
): Promise<[Sample, Sample]> {
  const sides = [a, b];
  const running = [await startSystem(a.system, a.scenario, ctx)];
  try {
    running.push(await startSystem(b.system, b.scenario, ctx));
  } catch (error) {
    await running[0].stop();
    throw error;
  }
  const totals = sides.map(() => ({ ticks: 0, requests: 0, wallS: 0, p50: [] as number[], p99: [] as number[], errors: 0, core0: 0 }));
  const warnings: string[][] = [[], []];
  try {
    const run = (i: number, durationS: number): Promise<WrkResult> =>
      runWrk({ cpu: options.loadCpu, port: running[i].port, requestsFile: sides[i].requestsFile, bodyBytes: sides[i].scenario.bodyBytes, durationS });
    for (let i = 0; i < 2; i++) if (options.warmupS > 0) await run(i, options.warmupS);
    const burstS = Math.max(1, Math.round(options.durationS / options.bursts));
    for (let k = 0; k < options.bursts; k++) {
      for (const i of k % 2 === 0 ? [0, 1] : [1, 0]) {
        const before = readCpu(running[i].pid);
        const coresBefore = readCores();
        const started = process.hrtime.bigint();
        const wrk = await run(i, burstS);
        const t = totals[i];
        t.wallS += Number(process.hrtime.bigint() - started) / 1e9;
        const after = readCpu(running[i].pid);
        t.ticks += after.utime + after.stime - before.utime - before.stime;
        t.requests += wrk.requests;
        t.p50.push(wrk.p50Ms);
        t.p99.push(wrk.p99Ms);
        t.errors += wrk.non2xx + wrk.socketErrors;
        t.core0 += (coreBusy(coresBefore, readCores())[options.loadCpu] ?? 0) * Number(process.hrtime.bigint() - started) / 1e9;
      }
    }
    const ticks = ticksPerSecond();
    return totals.map((t, i) => {
      if (running[i].crashed()) throw new Error(`${sides[i].system} exited during the measurement`);
      if (t.errors > 0) warnings[i].push(`${t.errors} failed requests`);
      const memory = readMemory(running[i].pid);
      return {
        rps: t.requests / t.wallS,
        p50Ms: median(t.p50),
        p99Ms: median(t.p99),
        cpuUsPerReq: t.requests > 0 ? ((t.ticks / ticks) * 1e6) / t.requests : 0,
        rssMb: memory.rssMb,
        anonMb: memory.anonMb,
        proxyCpuPct: ((t.ticks / ticks) / t.wallS) * 100,
        core0Pct: (t.core0 / t.wallS) * 100,
        errors: t.errors,
        warnings: warnings[i],
      };
    }) as [Sample, Sample];
  } finally {
    for (let i = 0; i < running.length; i++) {
      const stopped = await running[i].stop();
      if (!stopped.clean) warnings[i].push(`${sides[i].system} did not exit cleanly (code ${stopped.code}, signal ${stopped.signal})`);
      const log = running[i].accessLog;
      if (log !== null) {
        if (!existsSync(log) || statSync(log).size === 0) warnings[i].push('access log is empty');
        rmSync(log, { force: true });
      }
      for (const warning of warnings[i]) console.error(`  ! ${sides[i].scenario.name}/${sides[i].system}: ${warning}`);
    }
  }
}

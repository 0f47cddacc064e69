// One measurement: start a system, warm it up, measure one interval with wrk and /proc, stop it.
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { requestsFileText } from './config.ts';
import { coreBusy, cpuUsPerRequest, readCores, readCpu, readMemory, ticksPerSecond } from './measure.ts';
import { portIsFree } from './net.ts';
import type { Scenario, SystemName } from './scenarios.ts';
import { startSystem } from './systems.ts';
import type { Context } from './systems.ts';
import { runWrk } from './wrk.ts';

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

// Starts one system under test pinned to the proxy CPU, and waits until it forwards correctly.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lockgateYaml } from './config.ts';
import { freePort, httpGet, waitUntil } from './net.ts';
import { proxyConfig, startNginx } from './nginx.ts';
import { PinnedProcess } from './pinned-process.ts';
import type { StopResult } from './pinned-process.ts';
import type { Scenario, SystemName } from './scenarios.ts';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const LOCKGATE_BIN = join(ROOT, 'bin', 'lockgate.mjs');

export interface Context {
  dir: string;
  proxyCpu: number;
  upstreamPort: number;
  upstreamPid: number;
}

export interface Running {
  /** The process whose CPU and memory are measured (the upstream for `direct`). */
  pid: number;
  port: number;
  stop(): Promise<StopResult>;
  /** True when a started process died on its own. */
  crashed(): boolean;
  /** The access log file the system writes, checked and deleted after the stop (tens of MB per interval). */
  accessLog: string | null;
}

function accessLogOf(system: SystemName, scenario: Scenario, dir: string): string | null {
  if (system === 'lockgate') return join(dir, `lockgate-access-${scenario.name}.log`);
  if (system === 'nginx') return join(dir, 'proxy-access.log');
  return null;
}

const NODE_SCRIPTS: Partial<Record<SystemName, string>> = {
  '@fastify/http-proxy': 'bench/peers/fastify-proxy.ts',
  'http-proxy': 'bench/peers/http-proxy.ts',
  'bare-dispatch': 'bench/bare-dispatch.ts',
};

/** Why a system cannot run at all on this machine, or null. */
export function unavailable(system: SystemName): string | null {
  if (system === 'lockgate' && !existsSync(LOCKGATE_BIN)) return `${LOCKGATE_BIN} does not exist yet`;
  return null;
}

function launch(system: SystemName, scenario: Scenario, ctx: Context, port: number, adminPort: number): PinnedProcess {
  const log = join(ctx.dir, `${system.replace(/\W/g, '_')}-${scenario.name}.out`);
  const upstream = `http://127.0.0.1:${ctx.upstreamPort}`;
  if (system === 'nginx') return startNginx(ctx.dir, 'proxy', proxyConfig(ctx.dir, port, ctx.upstreamPort), ctx.proxyCpu);
  if (system === 'lockgate') {
    const config = join(ctx.dir, `lockgate-${scenario.name}.yaml`);
    const accessLogPath = accessLogOf(system, scenario, ctx.dir) ?? '';
    writeFileSync(config, lockgateYaml({ port, adminPort, upstreamPort: ctx.upstreamPort, accessLogPath, apis: scenario.apis, extraYaml: scenario.lockgate?.extraYaml }));
    const dataDir = scenario.lockgate?.prepareDataDir?.(ctx.dir);
    const extra = dataDir === undefined ? [] : ['--data-dir', dataDir];
    // LOCKGATE_BENCH_PROFILE_DIR: CPU-profile every Lockgate process (each thread writes a .cpuprofile there on exit).
    const prof = process.env.LOCKGATE_BENCH_PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', join(process.env.LOCKGATE_BENCH_PROFILE_DIR, scenario.name)] : [];
    return new PinnedProcess(ctx.proxyCpu, process.execPath, [...prof, LOCKGATE_BIN, 'gateway', '-c', config, '--workers', '1', ...extra], log);
  }
  const script = NODE_SCRIPTS[system];
  if (script === undefined) throw new Error(`no launcher for ${system}`);
  return new PinnedProcess(ctx.proxyCpu, process.execPath, [join(ROOT, script), '--port', String(port), '--upstream', upstream], log);
}

/** Sends a sample of the scenario's requests; every one must get 200 and the expected body size. */
export async function verify(port: number, scenario: Scenario): Promise<string | null> {
  const body = scenario.bodyBytes > 0 ? Buffer.alloc(scenario.bodyBytes, 'x') : undefined;
  for (const request of scenario.requests.slice(0, 25)) {
    const host = request.host === '' ? undefined : request.host;
    const { status, bytes } = await httpGet(port, request.path, { host, method: request.method, body, headers: request.headers, timeoutMs: 5000 });
    if (status !== 200 || bytes !== scenario.responseBytes) {
      return `${request.method} ${request.host || '-'} ${request.path}: status ${status}, ${bytes} bytes (want 200, ${scenario.responseBytes})`;
    }
  }
  return null;
}

/** Starts `system` for `scenario`; throws with the process's last output when it is not ready in time. */
export async function startSystem(system: SystemName, scenario: Scenario, ctx: Context): Promise<Running> {
  if (system === 'direct') {
    return { pid: ctx.upstreamPid, port: ctx.upstreamPort, stop: async () => ({ clean: true, code: 0, signal: null }), crashed: () => false, accessLog: null };
  }
  const port = await freePort();
  const adminPort = await freePort();
  const child = launch(system, scenario, ctx, port, adminPort);
  const alive = (): boolean => !child.exited;
  // Lockgate compiles its routes before /readyz says 200 (about 2 s for 10,000); a supervisor that keeps
  // restarting a broken worker never exits, so the deadline is what bounds a broken build.
  const ready = system === 'lockgate'
    ? await waitUntil(async () => (await httpGet(adminPort, '/readyz')).status === 200, 15_000, alive)
    : await waitUntil(async () => (await httpGet(port, '/')).status > 0, 15_000, alive);
  let problem = ready ? null : `not ready (${child.exited ? 'exited' : 'timed out'})`;
  if (problem === null) problem = await verify(port, scenario).catch((error: Error) => error.message);
  if (problem !== null) {
    await child.stop();
    throw new Error(`${system} in ${scenario.name}: ${problem}\n${child.tail()}`);
  }
  return { pid: child.pid, port, stop: () => child.stop(), crashed: () => child.exited, accessLog: accessLogOf(system, scenario, ctx.dir) };
}

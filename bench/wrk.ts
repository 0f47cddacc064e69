// Runs wrk (pinned, with the rotating Lua script) and parses its output into numbers.
import { execFile } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const WRK_BIN = process.env.LOCKGATE_BENCH_WRK ?? '/usr/bin/wrk';
export const ROTATE_LUA = fileURLToPath(new URL('./wrk/rotate.lua', import.meta.url));

export interface WrkResult {
  requests: number;
  durationS: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  /** Responses outside 2xx/3xx. */
  non2xx: number;
  /** connect + read + write + timeout socket errors. */
  socketErrors: number;
}

export interface WrkRun {
  cpu: number;
  port: number;
  durationS: number;
  requestsFile: string;
  bodyBytes: number;
  connections?: number;
}

/** The setup: one thread, 50 connections, latency percentiles on. */
export function wrkArgs(run: WrkRun): string[] {
  const args = ['-c', String(run.cpu), WRK_BIN, '-t1', `-c${run.connections ?? 50}`, `-d${run.durationS}s`, '--latency'];
  args.push('-s', ROTATE_LUA, `http://127.0.0.1:${run.port}`, '--', run.requestsFile);
  if (run.bodyBytes > 0) args.push(String(run.bodyBytes));
  return args;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60000 };

function durationMs(value: string, unit: string): number {
  const scale = UNIT_MS[unit];
  if (scale === undefined) throw new Error(`unknown wrk time unit ${unit}`);
  return Number(value) * scale;
}

/**
 * Parses wrk's stdout. The WRK_JSON line written by rotate.lua's done() is exact and wins;
 * without it the text summary (`--latency` distribution, request count, error lines) is used.
 */
export function parseWrkOutput(text: string): WrkResult {
  const json = /^WRK_JSON (\{.*\})$/m.exec(text);
  if (json !== null) {
    const data = JSON.parse(json[1]) as Record<string, number>;
    const durationS = data.duration_us / 1e6;
    return {
      requests: data.requests,
      durationS,
      rps: durationS > 0 ? data.requests / durationS : 0,
      p50Ms: data.p50_us / 1000,
      p99Ms: data.p99_us / 1000,
      non2xx: data.status,
      socketErrors: data.connect + data.read + data.write + data.timeout,
    };
  }
  const total = /^\s*(\d+) requests in ([\d.]+)(us|ms|s|m),/m.exec(text);
  if (total === null) throw new Error(`unrecognised wrk output:\n${text.slice(0, 500)}`);
  const percentile = (p: string): number => {
    const match = new RegExp(`^\\s*${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
    return match === null ? Number.NaN : durationMs(match[1], match[2]);
  };
  const rpsLine = /^Requests\/sec:\s+([\d.]+)/m.exec(text);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const requests = Number(total[1]);
  const durationS = durationMs(total[2], total[3]) / 1000;
  return {
    requests,
    durationS,
    rps: rpsLine === null ? requests / durationS : Number(rpsLine[1]),
    p50Ms: percentile('50'),
    p99Ms: percentile('99'),
    non2xx: non2xx === null ? 0 : Number(non2xx[1]),
    socketErrors: socket === null ? 0 : socket.slice(1).reduce((sum, n) => sum + Number(n), 0),
  };
}

const RUNNING = new Set<ChildProcess>();

/** SIGKILLs any wrk still running (for an interrupted run). */
export function killWrk(): void {
  for (const child of RUNNING) child.kill('SIGKILL');
}

/** Runs wrk once; bounded by a kill timer well past its own -d. */
export function runWrk(run: WrkRun): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const child = execFile('taskset', wrkArgs(run), { encoding: 'utf8', timeout: (run.durationS + 15) * 1000, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      RUNNING.delete(child);
      if (error !== null) {
        reject(new Error(`wrk failed: ${error.message}\n${stderr}`));
        return;
      }
      try {
        resolve(parseWrkOutput(stdout));
      } catch (parseError) {
        reject(parseError as Error);
      }
    });
    RUNNING.add(child);
  });
}

// Test helper: the real `lockgate control-plane` and CLI verbs as child processes, tracked so `after` hooks can kill them.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';

export const BIN = path.resolve(import.meta.dirname, '../../bin/lockgate.mjs');
/** The environment without LOCKGATE_* variables, so a developer's settings never leak into a test. */
export const CLEAN_ENV: Record<string, string | undefined> = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LOCKGATE_'))),
  NODE_COMPILE_CACHE: path.resolve(import.meta.dirname, '../../.cache/node'),
};

export interface ControlPlaneProcess {
  proc: ChildProcess;
  /** Every stdout line so far (the bootstrap token line, the listening event, …). */
  lines: string[];
  url: string;
  /** SIGTERM, SIGKILL after `stopGraceMs`; resolves with the exit code. */
  stop(): Promise<number | null>;
}

export interface ProcessOptions {
  /** Every process started is added here (and removed when it ends), for the caller's `after` hook. */
  children: Set<ChildProcess>;
  env?: Record<string, string | undefined>;
  startTimeoutMs: number;
  stopGraceMs: number;
}

/** Starts `lockgate control-plane --data-dir DIR --listen 127.0.0.1:0` and resolves once it prints its listening event. */
export async function startControlPlaneProcess(dataDir: string, o: ProcessOptions): Promise<ControlPlaneProcess> {
  const proc = spawn(process.execPath, [BIN, 'control-plane', '--data-dir', dataDir, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...CLEAN_ENV, ...o.env } });
  o.children.add(proc);
  const lines: string[] = [];
  let stderr = '';
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`control plane did not start in time; stderr:\n${stderr}`)), o.startTimeoutMs);
    createInterface({ input: proc.stdout!, crlfDelay: Infinity }).on('line', (line) => {
      lines.push(line);
      if (line.startsWith('{"event":"listening"')) {
        clearTimeout(timer);
        resolve(JSON.parse(line).url);
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`control plane exited with ${code}; stderr:\n${stderr}`));
    });
  });
  return {
    proc, lines, url,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = once(proc, 'exit');
        proc.kill('SIGTERM');
        const killer = setTimeout(() => proc.kill('SIGKILL'), o.stopGraceMs);
        await exited;
        clearTimeout(killer);
      }
      o.children.delete(proc);
      return proc.exitCode;
    },
  };
}

/** Runs `lockgate ARGS` to completion (bounded by `timeoutMs`); never rejects. */
export function runCli(args: string[], o: { children: Set<ChildProcess>; env?: Record<string, string>; timeoutMs: number }): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { env: { ...CLEAN_ENV, ...o.env }, timeout: o.timeoutMs }, (err, stdout, stderr) => {
      o.children.delete(child);
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
    o.children.add(child);
  });
}

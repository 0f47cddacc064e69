// A child process pinned to one CPU with taskset, its output in a file, stopped with SIGTERM then SIGKILL.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

export interface StopResult {
  /** Exited within the grace period on SIGTERM (exit code 0, or killed by SIGTERM itself). */
  clean: boolean;
  code: number | null;
  signal: string | null;
}

// Every child still running, so an interrupted run can kill exactly the processes it started.
const LIVE = new Set<PinnedProcess>();

/** SIGKILLs every child this module started that is still running (for exit and signal handlers). */
export function killAllPinned(): void {
  for (const child of LIVE) child.kill();
}

export class PinnedProcess {
  #child: ChildProcess;
  #logFile: string;
  #exit: Promise<{ code: number | null; signal: string | null }>;
  #exited = false;

  /** `taskset -c <cpu> <command> ...args`; taskset execs the command, so the pid is the command's. */
  constructor(cpu: number, command: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv) {
    this.#logFile = logFile;
    const fd = openSync(logFile, 'a');
    try {
      // A file, not a pipe: a chatty child must never block on an undrained pipe mid-measurement.
      this.#child = spawn('taskset', ['-c', String(cpu), command, ...args], {
        stdio: ['ignore', fd, fd],
        env: env ?? process.env,
      });
    } finally {
      closeSync(fd);
    }
    LIVE.add(this);
    this.#exit = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        this.#exited = true;
        LIVE.delete(this);
        resolve({ code, signal });
      });
      this.#child.once('error', () => {
        this.#exited = true;
        LIVE.delete(this);
        resolve({ code: -1, signal: null });
      });
    });
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  get exited(): boolean {
    return this.#exited;
  }

  /** The last lines the process wrote, to explain a failure. */
  tail(lines = 15): string {
    try {
      return readFileSync(this.#logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  async stop(graceMs = 5000): Promise<StopResult> {
    if (!this.#exited) this.#child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), graceMs);
    });
    const first = await Promise.race([this.#exit, timedOut]);
    clearTimeout(timer);
    if (first === 'timeout') {
      this.#child.kill('SIGKILL');
      const { code, signal } = await this.#exit;
      return { clean: false, code, signal };
    }
    const clean = first.code === 0 || first.signal === 'SIGTERM';
    return { clean, code: first.code, signal: first.signal };
  }

  /** Synchronous last resort for process exit handlers. */
  kill(): void {
    if (!this.#exited) this.#child.kill('SIGKILL');
  }
}

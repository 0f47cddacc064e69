// Test helper: runs `lockgate gateway` as a child process on port 0 and reports its ports; always cleaned up by stop().
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';

const BIN = path.resolve(import.meta.dirname, '../../bin/lockgate.mjs');

export interface GatewayProcess {
  proc: ChildProcess;
  ports: Record<string, number>;
  admin: number;
  dir: string;
  configFile: string;
  stdout: string[];
  stderr: string[];
  /** Rewrites the config file (the gateway reloads it on change). */
  writeConfig(yaml: string): void;
  /** SIGTERM and wait for exit; returns the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startGateway(yaml: string, opts: { workers?: number; args?: string[]; timeoutMs?: number } = {}): Promise<GatewayProcess> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-test-'));
  const configFile = path.join(dir, 'lockgate.yaml');
  writeFileSync(configFile, yaml);
  const proc = spawn(process.execPath, [BIN, 'gateway', '-c', configFile, '--workers', String(opts.workers ?? 1), '--admin-port', '0', ...(opts.args ?? [])], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_COMPILE_CACHE: path.resolve(import.meta.dirname, '../../.cache/node') },
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  let buf = '';
  const listening = new Promise<{ ports: Record<string, number>; admin: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start in time; stderr:\n${stderr.join('')}`)), opts.timeoutMs ?? 20_000);
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
      buf += c;
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        stdout.push(line);
        if (line.startsWith('{"event":"listening"')) {
          clearTimeout(timer);
          resolve(JSON.parse(line));
        }
      }
    });
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => stderr.push(c));
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited with ${code}; stderr:\n${stderr.join('')}`));
    });
  });
  let started;
  try {
    started = await listening;
  } catch (err) {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    proc,
    ports: started.ports,
    admin: started.admin,
    dir,
    configFile,
    stdout,
    stderr,
    writeConfig(y: string) {
      writeFileSync(configFile, y);
    },
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill(signal);
        const killer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        await once(proc, 'exit');
        clearTimeout(killer);
      }
      rmSync(dir, { recursive: true, force: true });
      return proc.exitCode;
    },
  };
}

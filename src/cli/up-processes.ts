// Child processes for `lockgate up`: start a lockgate verb, wait for its ready line, stop them all in reverse order.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/lockgate.mjs', import.meta.url));

export interface Child {
  name: string;
  proc: ChildProcess;
  /** Every stdout line so far (the ready line included). */
  lines: string[];
}

export class ProcessGroup {
  readonly #children: Child[] = [];
  readonly #logDir: string;
  readonly #show: (name: string, line: string) => boolean;

  /**
   * Every child's output after its ready line goes to `<logDir>/<name>.log`; lines `show` accepts are also printed
   * (the demo prints the gateway's access log and nothing else unless something fails).
   */
  constructor(logDir: string, show: (name: string, line: string) => boolean) {
    this.#logDir = logDir;
    this.#show = show;
  }

  #log(name: string, line: string): void {
    appendFileSync(join(this.#logDir, `${name}.log`), line + '\n');
    if (this.#show(name, line)) process.stdout.write(line + '\n');
  }

  /**
   * Runs `lockgate <args>` and resolves with the first stdout line `ready` accepts (a JSON event, usually).
   * Rejects with the child's output when it exits first or nothing comes within timeoutMs.
   */
  start(name: string, args: string[], ready: (line: string) => boolean, opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Child> {
    const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } });
    const child: Child = { name, proc, lines: [] };
    this.#children.push(child);
    let isReady = false;
    let errText = '';
    return new Promise<Child>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name} did not start within ${opts.timeoutMs ?? 30_000} ms:\n${errText}`)), opts.timeoutMs ?? 30_000);
      const onLine = (line: string): void => {
        child.lines.push(line);
        if (!isReady && ready(line)) {
          isReady = true;
          clearTimeout(timer);
          resolve(child);
        } else if (isReady) this.#log(name, line);
      };
      let buf = '';
      proc.stdout!.setEncoding('utf8').on('data', (c: string) => {
        buf += c;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          onLine(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
      proc.stderr!.setEncoding('utf8').on('data', (c: string) => {
        if (!isReady) errText += c;
        else for (const l of c.split('\n')) if (l.trim()) this.#log(name, l);
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        if (!isReady) reject(new Error(`${name} exited (${code}) before it was ready:\n${errText}${child.lines.join('\n')}`));
      });
    });
  }

  /** SIGTERM in reverse start order (clients before the control plane), SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    for (const c of this.#children.splice(0).reverse()) {
      if (c.proc.exitCode !== null || c.proc.signalCode !== null) continue;
      const exited = once(c.proc, 'exit');
      c.proc.kill('SIGTERM');
      const t = setTimeout(() => c.proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    }
  }
}

/** The first JSON stdout line with this `event`. */
export function jsonEvent(event: string): (line: string) => boolean {
  return (line) => line.startsWith('{') && line.includes(`"event":"${event}"`);
}

export function parseEvent<T>(child: Child, event: string): T {
  const line = child.lines.find(jsonEvent(event));
  if (!line) throw new Error(`${child.name} printed no ${event} event`);
  return JSON.parse(line) as T;
}

/** A free loopback port (for a listener another process must know before it starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

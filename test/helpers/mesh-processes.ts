// Test helper: a real mesh out of processes on 127.0.0.1 — `lockgate control-plane`, `lockgate sidecar`s, small apps, the CLI, constant load.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { connect as h2connect } from 'node:http2';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Pool, request } from 'undici';

export const BIN = path.resolve(import.meta.dirname, '../../bin/lockgate.mjs');
export const HEAD = 'apiVersion: lockgate.dev/v1alpha1';

// The children's environment: nothing leaks in from the developer's shell (master key, admin settings).
const ENV: Record<string, string> = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => !k.startsWith('LOCKGATE_') && v !== undefined)) as Record<string, string>;
ENV.NODE_COMPILE_CACHE = path.resolve(import.meta.dirname, '../../.cache/node');

export async function waitFor<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A child process whose stdout and stderr lines are kept (JSON lines parsed) for assertions and failure messages. */
export interface Child {
  proc: ChildProcess;
  stdout: string[];
  stderr: string[];
  /** stderr lines that parse as JSON objects (the sidecar's and agent's events). */
  events: Array<Record<string, unknown>>;
  /** SIGTERM, then SIGKILL after graceMs; resolves with the exit code (null when killed by a signal). */
  stop(graceMs?: number): Promise<number | null>;
  /** SIGKILL, resolves when it is gone. */
  kill(): Promise<void>;
  /** The last lines of output, for assertion messages. */
  tail(n?: number): string;
}

/** Every process, server and directory a test file starts, so one `after` hook can end them all even on failure. */
export class MeshWorld {
  readonly root: string;
  readonly #children = new Set<ChildProcess>();
  readonly #closers: Array<() => Promise<void>> = [];

  constructor(prefix = 'lockgate-e2e-') {
    this.root = mkdtempSync(path.join(os.tmpdir(), prefix));
  }

  dir(name: string): string {
    return path.join(this.root, name);
  }

  spawn(args: string[], untilLine: (line: string) => boolean, what: string, timeoutMs = 30_000): Promise<Child> {
    const proc = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: ENV });
    this.#children.add(proc);
    const stdout: string[] = [];
    const stderr: string[] = [];
    const events: Array<Record<string, unknown>> = [];
    const lines = (stream: NodeJS.ReadableStream, sink: string[], onLine: (l: string) => void): void => {
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
        sink.push(line);
        if (sink.length > 5000) sink.splice(0, 1000);
        onLine(line);
      });
    };
    const child: Child = {
      proc, stdout, stderr, events,
      tail: (n = 30) => `stdout:\n${stdout.slice(-n).join('\n')}\nstderr:\n${stderr.slice(-n).join('\n')}`,
      async stop(graceMs = 10_000) {
        if (proc.exitCode === null && proc.signalCode === null) {
          const exited = once(proc, 'exit');
          proc.kill('SIGTERM');
          const killer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
          await exited;
          clearTimeout(killer);
        }
        return proc.exitCode;
      },
      async kill() {
        if (proc.exitCode === null && proc.signalCode === null) {
          const exited = once(proc, 'exit');
          proc.kill('SIGKILL');
          await exited;
        }
      },
    };
    lines(proc.stderr!, stderr, (l) => {
      if (!l.startsWith('{')) return;
      try {
        events.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // a partial or foreign line: kept as text only
      }
    });
    return new Promise<Child>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`${what} did not start within ${timeoutMs} ms\n${child.tail()}`));
      }, timeoutMs);
      lines(proc.stdout!, stdout, (l) => {
        if (untilLine(l)) {
          clearTimeout(timer);
          resolve(child);
        }
      });
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${what} exited with ${code ?? signal} before it was ready\n${child.tail()}`));
      });
    });
  }

  /** Runs a CLI verb to completion (30 s at most). */
  cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = execFile(process.execPath, [BIN, ...args], { env: { ...ENV, ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
        this.#children.delete(child);
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
      });
      this.#children.add(child);
    });
  }

  onClose(fn: () => Promise<void>): void {
    this.#closers.push(fn);
  }

  /** SIGKILLs every child still running, closes servers, removes the directory. */
  async close(): Promise<void> {
    const exits: Array<Promise<unknown>> = [];
    for (const c of this.#children) {
      if (c.exitCode === null && c.signalCode === null) {
        exits.push(once(c, 'exit'));
        c.kill('SIGKILL');
      }
    }
    await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 5000).unref())]);
    for (const fn of this.#closers.splice(0).reverse()) await fn().catch(() => {});
    rmSync(this.root, { recursive: true, force: true });
  }
}

export interface ControlPlaneProc {
  child: Child;
  url: string;
  port: number;
  dataDir: string;
  caFile: string;
  /** The bootstrap admin token (printed at the first start; given again on restarts). */
  token: string;
}

/** `lockgate control-plane --data-dir D --listen 127.0.0.1:PORT` (0 = any). */
export async function startControlPlane(w: MeshWorld, dataDir: string, o: { port?: number; token?: string } = {}): Promise<ControlPlaneProc> {
  const child = await w.spawn(['control-plane', '--data-dir', dataDir, '--listen', `127.0.0.1:${o.port ?? 0}`], (l) => l.startsWith('{"event":"listening"'), 'control plane');
  const listening = JSON.parse(child.stdout.find((l) => l.startsWith('{"event":"listening"'))!) as { url: string; caFile: string };
  const tokenLine = child.stdout.find((l) => l.includes('bootstrap admin token'));
  const token = tokenLine ? tokenLine.slice(tokenLine.lastIndexOf(' ') + 1).trim() : o.token;
  if (!token) throw new Error('the control plane printed no bootstrap token and none was given');
  return { child, url: listening.url, port: Number(new URL(listening.url).port), dataDir, caFile: listening.caFile, token };
}

/** `lockgate apply -f FILE` with the YAML given, against the control plane; throws with its output on failure. */
export async function apply(w: MeshWorld, cp: ControlPlaneProc, yaml: string): Promise<string> {
  const file = path.join(w.root, `apply-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.yaml`);
  writeFileSync(file, yaml);
  const r = await w.cli(['apply', '-f', file, '--control-plane', cp.url, '--token', cp.token, '--ca-file', cp.caFile]);
  if (r.code !== 0) throw new Error(`lockgate apply failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** `lockgate token create --service NAME -n NS`: a one-time join token. */
export async function joinToken(w: MeshWorld, cp: ControlPlaneProc, service: string, namespace: string): Promise<string> {
  const r = await w.cli(['token', 'create', '--service', service, '-n', namespace, '--data-dir', cp.dataDir, '--token', cp.token]);
  if (r.code !== 0) throw new Error(`lockgate token create failed (${r.code}):\n${r.stderr}`);
  return r.stdout.trim();
}

export interface SidecarProc {
  child: Child;
  inbound: number;
  outbound: number;
  admin: number;
  dataDir: string;
  /** `http://127.0.0.1:<outbound>`. */
  origin: string;
  /** Certificate renewals the agent logged so far. */
  renewals(): number;
}

export interface SidecarArgs {
  service: string;
  namespace: string;
  app: number;
  dataDir: string;
  controlPlane: string;
  token?: string;
  labels?: Record<string, string>;
  /** Reuse a port (a restart on the same address). */
  inbound?: number;
}

/** `lockgate sidecar …` (joined), resolved when it prints its ready line. */
export async function startSidecar(w: MeshWorld, a: SidecarArgs): Promise<SidecarProc> {
  const args = [
    'sidecar', '--service', a.service, '-n', a.namespace, '--app', `127.0.0.1:${a.app}`, '--data-dir', a.dataDir,
    '--control-plane', a.controlPlane, '--inbound', `127.0.0.1:${a.inbound ?? 0}`, '--outbound', '127.0.0.1:0', '--admin', '127.0.0.1:0',
    '--access-log', 'off', '--drain-timeout', '2000',
    ...(a.token ? ['--token', a.token] : []),
    ...Object.entries(a.labels ?? {}).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
  ];
  const child = await w.spawn(args, (l) => l.startsWith('{"event":"ready"'), `sidecar ${a.namespace}/${a.service}`);
  const ready = JSON.parse(child.stdout.find((l) => l.startsWith('{"event":"ready"'))!) as { inbound: number; outbound: number; admin: number };
  return {
    child, dataDir: a.dataDir, inbound: ready.inbound, outbound: ready.outbound, admin: ready.admin,
    origin: `http://127.0.0.1:${ready.outbound}`,
    renewals: () => child.events.filter((e) => e.event === 'renewed').length,
  };
}

export interface AppServer {
  port: number;
  /** Requests seen: method, url, headers. */
  seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders }>;
  /** Keep only a count after this many (long load runs). */
  count: number;
  server: http.Server;
  close(): Promise<void>;
}

/** A small app: answers every request with JSON { app, method, url, headers }; `handle` may take over. */
export async function startApp(w: MeshWorld, name: string, handle?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean): Promise<AppServer> {
  const app: AppServer = { port: 0, seen: [], count: 0, server: http.createServer(), close: async () => {} };
  app.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    app.count++;
    if (app.seen.length < 2000) app.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      if (handle?.(req, res)) return;
      const text = JSON.stringify({ app: name, method: req.method, url: req.url, headers: req.headers });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    });
  });
  app.server.keepAliveTimeout = 30_000;
  app.port = await new Promise<number>((r) => app.server.listen(0, '127.0.0.1', () => r((app.server.address() as AddressInfo).port)));
  app.close = () => new Promise<void>((r) => {
    app.server.close(() => r());
    app.server.closeAllConnections();
  });
  w.onClose(app.close);
  return app;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- admin API bodies are read field by field in assertions
type Json = any;

/** One admin-API call over HTTP/2 with the bootstrap token, trusting the control plane's CA file. */
export async function adminCall(cp: ControlPlaneProc, method: string, p: string, body?: unknown): Promise<{ status: number; json: Json }> {
  const session = h2connect(cp.url, { ca: readFileSync(cp.caFile, 'utf8'), checkServerIdentity: () => undefined });
  session.on('error', () => {});
  try {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = session.request({ ':method': method, ':path': p, authorization: `Bearer ${cp.token}`, ...(text ? { 'content-type': 'application/json' } : {}) });
    req.setTimeout(10_000, () => req.close());
    req.end(text);
    const [headers, data] = await Promise.all([
      new Promise<Record<string, unknown>>((resolve, reject) => {
        req.once('response', resolve);
        req.once('error', reject);
        req.once('close', () => reject(new Error(`${method} ${p}: stream closed`)));
      }),
      (async () => {
        const chunks: Buffer[] = [];
        for await (const c of req) chunks.push(c as Buffer);
        return Buffer.concat(chunks).toString();
      })(),
    ]);
    return { status: Number(headers[':status']), json: data ? JSON.parse(data) : undefined };
  } finally {
    session.close();
  }
}

/** One request through a sidecar's outbound listener to a service (by Host), on a fresh connection. */
export async function callService(origin: string, host: string, p: string, method = 'GET'): Promise<{ status: number; json: Json; text: string }> {
  const r = await request(`${origin}${p}`, { method: method as 'GET', headers: { host }, reset: true, headersTimeout: 10_000, bodyTimeout: 10_000 });
  const text = await r.body.text();
  let json: Json;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.statusCode, json, text };
}

/** Waits until `n` consecutive calls give what `ok` accepts (Gateway API's rule for eventually consistent config). */
export async function consistently(what: string, call: () => Promise<{ status: number; json: Json }>, ok: (r: { status: number; json: Json }) => boolean, timeoutMs = 15_000, n = 3): Promise<number> {
  const started = Date.now();
  let good = 0;
  let last: { status: number; json: Json } | undefined;
  while (good < n) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: no ${n} consecutive good answers in ${timeoutMs} ms; last ${JSON.stringify(last)}`);
    try {
      last = await call();
      good = ok(last) ? good + 1 : 0;
    } catch (err) {
      last = { status: -1, json: (err as Error).message };
      good = 0;
    }
    if (good < n) await new Promise((r) => setTimeout(r, good > 0 ? 10 : 100));
  }
  return Date.now() - started;
}

export interface LoadTally {
  ok: number;
  failed: number;
  /** The first failures: status and body, or the error. */
  failures: string[];
  /** Keep-alive connections the client pool saw closed while the load ran (a reset, or the server closing them). */
  keepAliveDisconnects: number;
  keepAliveConnects: number;
  freshConnections: number;
}

/**
 * Constant load through a sidecar's outbound to a service: `keepAlive` callers sharing a pool of that many kept-alive
 * connections, plus `fresh` callers that open a new connection for every request. Runs until the signal aborts;
 * `live` gets the tally object as it is being counted (progress reports).
 */
export async function constantLoad(o: { origin: string; host: string; path: string; keepAlive: number; fresh: number; signal: AbortSignal; check?: (status: number, body: string) => boolean; live?: (t: Readonly<LoadTally>) => void }): Promise<LoadTally> {
  const t: LoadTally = { ok: 0, failed: 0, failures: [], keepAliveDisconnects: 0, keepAliveConnects: 0, freshConnections: 0 };
  o.live?.(t);
  const pool = new Pool(o.origin, { connections: o.keepAlive, pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 60_000, headersTimeout: 10_000, bodyTimeout: 10_000 });
  pool.on('connect', () => t.keepAliveConnects++);
  pool.on('disconnect', (_origin, _targets, err) => {
    if (!o.signal.aborted) {
      t.keepAliveDisconnects++;
      if (t.failures.length < 10) t.failures.push(`keep-alive connection closed: ${err?.message}`);
    }
  });
  const fail = (why: string): void => {
    t.failed++;
    if (t.failures.length < 10) t.failures.push(`${new Date().toISOString()} ${why}`);
  };
  const check = o.check ?? ((s) => s === 200);
  const keepAliveLoop = async (): Promise<void> => {
    while (!o.signal.aborted) {
      try {
        const r = await pool.request({ path: o.path, method: 'GET', headers: { host: o.host } });
        const body = await r.body.text();
        if (check(r.statusCode, body)) t.ok++;
        else fail(`${r.statusCode} ${body.slice(0, 300)}`);
      } catch (err) {
        fail(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
      }
    }
  };
  const freshLoop = async (): Promise<void> => {
    while (!o.signal.aborted) {
      try {
        t.freshConnections++;
        const r = await request(`${o.origin}${o.path}`, { headers: { host: o.host }, reset: true, headersTimeout: 10_000, bodyTimeout: 10_000 });
        const body = await r.body.text();
        if (check(r.statusCode, body)) t.ok++;
        else fail(`fresh ${r.statusCode} ${body.slice(0, 300)}`);
      } catch (err) {
        fail(`fresh ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    await Promise.all([...Array.from({ length: o.keepAlive }, keepAliveLoop), ...Array.from({ length: o.fresh }, freshLoop)]);
  } finally {
    await pool.close().catch(() => pool.destroy());
  }
  return t;
}

/**
 * YAML of a Mesh plus MeshServices (one http port each) in one namespace, and extra documents. The trust domain stays the
 * default unless given: the CA is made at the control plane's first start, before any Mesh is applied.
 */
export function meshDocs(o: { trustDomain?: string; defaultAccess?: string; certificateLifetime?: string; namespace: string; services: string[]; extra?: string[] }): string {
  const spec = [...(o.trustDomain ? [`trustDomain: ${o.trustDomain}`] : []), `defaultAccess: ${o.defaultAccess ?? 'allow'}`, ...(o.certificateLifetime ? [`certificateLifetime: ${o.certificateLifetime}`] : [])];
  return [
    `${HEAD}\nkind: Mesh\nmetadata: { name: default }\nspec: { ${spec.join(', ')} }\n`,
    ...o.services.map((s) => `${HEAD}\nkind: MeshService\nmetadata: { name: ${s}, namespace: ${o.namespace} }\nspec:\n  ports: [{ name: http, port: 80 }]\n`),
    ...(o.extra ?? []),
  ].join('---\n');
}

export interface Pair {
  cp: ControlPlaneProc;
  orders: SidecarProc;
  inventory: SidecarProc;
  ordersApp: AppServer;
  inventoryApp: AppServer;
}

/** A control plane with the Mesh given, and `orders` and `inventory` sidecars (namespace `ns`) joined, orders → inventory serving. */
export async function startPair(w: MeshWorld, o: { namespace: string; certificateLifetime?: string; defaultAccess?: string }): Promise<Pair> {
  const cp = await startControlPlane(w, w.dir('cp'));
  await apply(w, cp, meshDocs({ namespace: o.namespace, certificateLifetime: o.certificateLifetime, defaultAccess: o.defaultAccess, services: ['orders', 'inventory'] }));
  const [ordersApp, inventoryApp] = await Promise.all([startApp(w, 'orders'), startApp(w, 'inventory')]);
  const [tOrders, tInv] = await Promise.all([joinToken(w, cp, 'orders', o.namespace), joinToken(w, cp, 'inventory', o.namespace)]);
  const [orders, inventory] = await Promise.all([
    startSidecar(w, { service: 'orders', namespace: o.namespace, app: ordersApp.port, dataDir: w.dir('orders'), controlPlane: cp.url, token: tOrders }),
    startSidecar(w, { service: 'inventory', namespace: o.namespace, app: inventoryApp.port, dataDir: w.dir('inventory'), controlPlane: cp.url, token: tInv }),
  ]);
  await consistently('orders → inventory', () => callService(orders.origin, 'inventory', '/warmup'), (r) => r.status === 200, 20_000);
  return { cp, orders, inventory, ordersApp, inventoryApp };
}

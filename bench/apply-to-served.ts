// apply-to-served (issue 4 §8): how long from an admin-API apply until every joined node serves the new config.
//
// One control plane (`lockgate control-plane`) and N gateways joined to it (`lockgate gateway --control-plane …
// --workers 1`), each its own process, all serving one edge config of 10,000 routes (bench/apply-config.ts). Then
// at least 50 applies, one at a time, each changing one small document (the probe ApiPolicy's answer carries the
// apply's sequence number). Per apply: t0 = just before the POST /v1/config:apply is sent; per node, t1 = when the
// control plane recorded its ACK of the new version (GET /v1/nodes `lastAnswer.at`, the control plane's clock, the
// same machine's); the apply's figure is the slowest node's t1 − t0. A gateway ACKs only after every worker thread
// swapped the new runtime in (src/app/gateway-node.ts → GatewaySupervisor.apply waits for each worker's `applied`),
// so the ACK is when the node serves it. That is checked, not assumed: after every apply each node is asked (the
// header must carry the new sequence), and on every 10th apply one node is probed every ~2 ms from t0 to find the
// first moment it serves the new version, which must not come after its ACK.
//
// Usage: node bench/apply-to-served.ts [--nodes 20] [--routes 10000] [--applies 50] [--warmup 10] [--gap-ms 200]
//        [--profile] (CPU-profiles node 0: --cpu-prof, summary in the result) [--out FILE] [--keep]
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { request as httpRequest } from 'node:http';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { createInterface } from 'node:readline';
import { Agent, request } from 'undici';
import { checkServerSpiffeId } from '../src/ca/peer-identity.ts';
import { applyConfig, probePolicyYaml, PROBE_HEADER } from './apply-config.ts';

const ROOT = resolve(import.meta.dirname, '..');
const BIN = join(ROOT, 'bin/lockgate.mjs');
const RESULT = join(ROOT, 'bench/results/apply-to-served.json');
const TARGET_P99_MS = 300;
/** How often /v1/nodes is read while an apply converges. */
const POLL_MS = 100;
/** /proc/<pid>/stat times are in clock ticks; Linux's USER_HZ is 100. */
const TICK_MS = 10;

/** Nearest-rank percentile (p in 0..100) of the applies' apply-to-served times; NaN for none. */
export function percentileMs(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

/** p50, p99, max and mean of a list of milliseconds, rounded to 0.1 ms. */
export function summarize(values: number[]): { p50: number; p99: number; max: number; mean: number; n: number } {
  const r = (v: number): number => Math.round(v * 10) / 10;
  return {
    p50: r(percentileMs(values, 50)),
    p99: r(percentileMs(values, 99)),
    max: r(values.length ? Math.max(...values) : Number.NaN),
    mean: r(values.length ? values.reduce((a, b) => a + b, 0) / values.length : Number.NaN),
    n: values.length,
  };
}

/** User + system CPU of a process so far, in ms (0 once it is gone). */
function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    return statCpuMs(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return 0;
  }
}

/** User + system CPU in ms from a `/proc/…/stat` line (utime and stime, the 14th and 15th fields). */
function statCpuMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

/** CPU so far (ms) of each thread of a process, by thread name ("main" for the main thread, else its `comm`: a worker
 * thread "WorkerThread", V8's helpers "V8Worker"…); threads of one name are summed. */
function threadCpuMs(pid: number | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  if (pid === undefined) return out;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      out[name] = (out[name] ?? 0) + statCpuMs(stat);
    }
  } catch {
    // The process or a thread is gone: what was read so far.
  }
  return out;
}

/** Per thread name, (after − before) summed over processes, divided by `per`, rounded to 0.1. */
function threadDelta(before: Array<Record<string, number>>, after: Array<Record<string, number>>, per: number): Record<string, number> {
  const sum: Record<string, number> = {};
  after.forEach((a, i) => {
    for (const [k, v] of Object.entries(a)) sum[k] = (sum[k] ?? 0) + v - (before[i][k] ?? 0);
  });
  return Object.fromEntries(Object.entries(sum).filter(([, v]) => v !== 0).map(([k, v]) => [k, Math.round((v / per) * 10) / 10]));
}

/** Resident memory of a process in MiB (VmRSS), or NaN. */
function rssMiB(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

interface Child {
  proc: ChildProcess;
  /** The first JSON line on stdout whose event is `listening`. */
  listening: Promise<Record<string, unknown>>;
  /** Every stdout line (the control plane prints its bootstrap token there). */
  lines: string[];
  log: string;
}

const children = new Set<ChildProcess>();

function start(args: string[], log: string, nodeFlags: string[] = []): Child {
  const err = openSync(log, 'a');
  const proc = spawn(process.execPath, [...nodeFlags, BIN, ...args], {
    stdio: ['ignore', 'pipe', err],
    env: { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LOCKGATE_'))), NODE_COMPILE_CACHE: join(ROOT, '.cache/node') },
  });
  closeSync(err);
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  const lines: string[] = [];
  const listening = new Promise<Record<string, unknown>>((ok, fail) => {
    createInterface({ input: proc.stdout!, crlfDelay: Infinity }).on('line', (line) => {
      lines.push(line);
      if (line.startsWith('{"event":"listening"')) ok(JSON.parse(line) as Record<string, unknown>);
    });
    proc.once('exit', (code, signal) => fail(new Error(`${args[0]} exited (${code ?? signal}) before listening; see ${log}:\n${tail(log)}`)));
  });
  listening.catch(() => {});
  return { proc, listening, lines, log };
}

function tail(file: string, n = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}

async function stop(proc: ChildProcess, graceMs = 15_000): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const killer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(killer);
}

function killAll(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

async function withDeadline<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, fail) => (timer = setTimeout(() => fail(new Error(`${what}: no result in ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

interface NodeRow {
  id: string;
  identity: { service: string };
  connected: boolean;
  ackedVersion?: number;
  lastAnswer?: { version: number; ok: boolean; reason?: string; at: number };
}

/** The admin API over one keep-alive HTTPS connection pool (what a CI job or operator's client would hold). */
class Admin {
  readonly #agent: Agent;
  readonly #url: string;
  readonly #token: string;

  constructor(url: string, ca: string, spiffeId: string, token: string) {
    this.#agent = new Agent({ connect: { ca, checkServerIdentity: checkServerSpiffeId([spiffeId]) }, keepAliveTimeout: 60_000 });
    this.#url = url;
    this.#token = token;
  }

  async call(method: string, path: string, body?: string, type = 'application/yaml'): Promise<{ status: number; json: Record<string, unknown> }> {
    const r = await request(`${this.#url}${path}`, {
      method, body, dispatcher: this.#agent, headersTimeout: 60_000, bodyTimeout: 60_000,
      headers: { authorization: `Bearer ${this.#token}`, ...(body !== undefined ? { 'content-type': type } : {}) },
    });
    return { status: r.statusCode, json: (await r.body.json()) as Record<string, unknown> };
  }

  async apply(yaml: string): Promise<number> {
    const r = await this.call('POST', '/v1/config:apply', yaml);
    if (r.status !== 200) throw new Error(`apply answered ${r.status}: ${JSON.stringify(r.json).slice(0, 2000)}`);
    return r.json.revision as number;
  }

  async nodes(): Promise<{ configVersion: number; nodes: NodeRow[] }> {
    const r = await this.call('GET', '/v1/nodes');
    return r.json as unknown as { configVersion: number; nodes: NodeRow[] };
  }

  close(): Promise<void> {
    return this.#agent.close();
  }
}

/** One GET through a node on a fresh connection: the probe header's value, `status N` without one, undefined for no answer. */
function probeOnce(port: number, host: string, path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers: { host, connection: 'close' }, agent: false, timeout: 5000 }, (res) => {
      const v = res.headers[PROBE_HEADER];
      res.resume();
      res.on('end', () => resolve(typeof v === 'string' ? v : `status ${res.statusCode}`));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/**
 * Asks a node until it answers with a sequence number: the one it serves. A 503 (the worker shedding load while
 * its event loop catches up after the rebuild) or no answer is asked again, up to `tries` times, 100 ms apart.
 */
async function servedSequence(port: number, host: string, path: string, tries = 10): Promise<{ value: string | undefined; shed: number }> {
  let shed = 0;
  let value: string | undefined;
  for (let i = 0; i < tries; i++) {
    value = await probeOnce(port, host, path);
    if (value !== undefined && !value.startsWith('status ')) break;
    if (value === 'status 503') shed++;
    await sleep(100);
  }
  return { value, shed };
}

/** Now on the clock V8's profiles use for `startTime` and sample times (CLOCK_MONOTONIC, µs). */
const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/**
 * Self time by function and by file of a .cpuprofile (what `--cpu-prof` writes per thread), as % of the samples;
 * with `window` (monotonic µs), only the samples taken in it.
 */
export function profileSummary(file: string, top = 15, window?: { fromUs: number; toUs: number }): { thread: string; sampledMs: number; files: Array<[string, number]>; functions: Array<[string, number]> } {
  const p = JSON.parse(readFileSync(file, 'utf8')) as {
    nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
    samples: number[];
    timeDeltas: number[];
    startTime: number;
  };
  let at = p.startTime;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const n = byId.get(p.samples[i]);
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    at += p.timeDeltas[i] ?? 0;
    if (window !== undefined && (at < window.fromUs || at > window.toUs)) continue;
    if (!n || n.callFrame.functionName === '(idle)') continue;
    total += dt;
    const url = n.callFrame.url.replace(/^.*\/(node_modules\/(?:@[^/]+\/)?[^/]+|src|bench)\//, '$1/');
    const fileKey = url || n.callFrame.functionName;
    const fnKey = `${n.callFrame.functionName || '(anonymous)'} ${url}${url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
    fns.set(fnKey, (fns.get(fnKey) ?? 0) + dt);
    files.set(fileKey, (files.get(fileKey) ?? 0) + dt);
  }
  // Shares in percent: samples are taken on the wall clock, so on a loaded machine a descheduled stretch counts to the
  // function that was running; the ms are not CPU time, the shares are close to it.
  const rank = (m: Map<string, number>): Array<[string, number]> => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => [k, Math.round((v / total) * 1000) / 10]);
  return { thread: file.split('/').pop()!, sampledMs: Math.round(total), files: rank(files), functions: rank(fns) };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '20' },
      routes: { type: 'string', default: '10000' },
      applies: { type: 'string', default: '50' },
      warmup: { type: 'string', default: '10' },
      'gap-ms': { type: 'string', default: '200' },
      profile: { type: 'boolean', default: false },
      out: { type: 'string', default: RESULT },
      keep: { type: 'boolean', default: false },
    },
  });
  const nodeCount = Number(values.nodes);
  const applies = Number(values.applies);
  const warmup = Number(values.warmup);
  const gapMs = Number(values['gap-ms']);
  const root = mkdtempSync(join(tmpdir(), 'lockgate-apply-bench-'));
  const say = (s: string): void => void process.stderr.write(`apply-to-served: ${s}\n`);
  const onSignal = (): void => {
    killAll();
    if (!values.keep) rmSync(root, { recursive: true, force: true });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const startedAt = Date.now();
  const loadAtStart = Math.round(loadavg()[0] * 100) / 100;
  let admin: Admin | undefined;
  try {
    const cfg = applyConfig(Number(values.routes));
    say(`${cfg.routes} routes over ${cfg.apis} Apis (${(cfg.yaml.length / 1024).toFixed(0)} KiB of YAML), ${nodeCount} nodes, ${applies} applies; load average now ${loadavg()[0].toFixed(2)} on ${cpus().length} CPUs`);

    // The control plane.
    const profDir = join(root, 'cpu-prof');
    const cpProfDir = join(root, 'cpu-prof-control-plane');
    const cp = start(['control-plane', '--data-dir', join(root, 'cp'), '--listen', '127.0.0.1:0'], join(root, 'control-plane.log'), values.profile ? ['--cpu-prof', '--cpu-prof-dir', cpProfDir] : []);
    const up = await withDeadline('control plane start', 60_000, cp.listening);
    const bootstrap = /bootstrap admin token[^:]*: (\S+)$/.exec(cp.lines.find((l) => l.startsWith('bootstrap admin token')) ?? '')?.[1];
    if (!bootstrap) throw new Error('the control plane printed no bootstrap token');
    const url = up.url as string;
    admin = new Admin(url, readFileSync(up.caFile as string, 'utf8'), up.spiffeId as string, bootstrap);
    let t = performance.now();
    const firstRevision = await admin.apply(cfg.yaml);
    say(`full config applied in ${(performance.now() - t).toFixed(0)} ms (revision ${firstRevision})`);

    // The nodes, a few at a time (each builds the whole config on start).
    const nodes: Array<{ index: number; child: Child; port: number; pid: number }> = [];
    t = performance.now();
    for (let i = 0; i < nodeCount; i += 4) {
      const batch = await Promise.all(Array.from({ length: Math.min(4, nodeCount - i) }, async (_, k) => {
        const index = i + k;
        const made = await admin!.call('POST', '/v1/tokens', JSON.stringify({ service: 'edge', namespace: 'default', kind: 'gateway', ttl: '10m' }), 'application/json');
        if (made.status !== 201) throw new Error(`token: ${made.status} ${JSON.stringify(made.json)}`);
        const flags = values.profile && index === 0 ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [];
        const child = start(['gateway', '--control-plane', url, '--token', made.json.token as string, '--data-dir', join(root, `node-${index}`), '--workers', '1', '--drain-timeout', '1000'], join(root, `node-${index}.log`), flags);
        const listening = await withDeadline(`node ${index} start`, 120_000, child.listening);
        return { index, child, port: (listening.ports as Record<string, number>).http, pid: child.proc.pid! };
      }));
      nodes.push(...batch);
    }
    say(`${nodeCount} nodes joined and serving in ${((performance.now() - t) / 1000).toFixed(1)} s`);

    const waitConverged = async (revision: number, deadlineMs: number): Promise<NodeRow[]> => {
      const end = Date.now() + deadlineMs;
      for (;;) {
        const { nodes: rows } = await admin!.nodes();
        const edge = rows.filter((r) => r.identity.service === 'edge');
        const nack = edge.find((r) => r.lastAnswer && r.lastAnswer.version >= revision && !r.lastAnswer.ok);
        if (nack) throw new Error(`node ${nack.id} NACKed version ${revision}: ${nack.lastAnswer!.reason}`);
        if (edge.length === nodeCount && edge.every((r) => r.lastAnswer?.ok && r.lastAnswer.version >= revision)) return edge;
        if (Date.now() > end) throw new Error(`not converged on ${revision} in ${deadlineMs} ms: ${edge.map((r) => `${r.id}=${r.lastAnswer?.version}`).join(' ')}`);
        // The ACK times come from the control plane's clock, so polling slowly loses no precision; polling fast would
        // take CPU from the nodes being measured (each poll is a TLS request the control plane answers).
        await sleep(POLL_MS);
      }
    };
    await waitConverged(firstRevision, 120_000);
    const portOf = new Map<string, number>();
    const nodeRows = (await admin.nodes()).nodes.filter((r) => r.identity.service === 'edge');
    // Which node id is which process: the node's data dir names its id in node.json.
    for (const n of nodes) {
      const id = (JSON.parse(readFileSync(join(root, `node-${n.index}`, 'node.json'), 'utf8')) as { nodeId: string }).nodeId;
      portOf.set(id, n.port);
    }
    if (nodeRows.some((r) => !portOf.has(r.id))) throw new Error('a node id from /v1/nodes has no process');

    // The applies.
    const rows: Array<{ seq: number; revision: number; adminMs: number; servedMs: number; slowest: string; perNode: Record<string, number>; probeFirstServedMs?: number; probeAckMs?: number; probedNode?: string }> = [];
    // Warm-up applies, as every other scenario has its warm-up: the first changes after start run code paths (the
    // incremental build, the rebind) that V8 has not compiled yet. Timed and reported, not part of the figure.
    const warmupMs: number[] = [];
    for (let w = 1; w <= warmup; w++) {
      const t0 = Date.now();
      const revision = await admin.apply(probePolicyYaml(-w));
      const converged = await waitConverged(revision, 120_000);
      warmupMs.push(Math.max(...converged.map((r) => r.lastAnswer!.at - t0)));
      await sleep(gapMs);
    }
    if (warmup > 0) say(`warm-up applies (not counted): ${warmupMs.map((v) => `${v} ms`).join(', ')}`);
    const pids = nodes.map((n) => n.pid);
    // What idle nodes cost (timers, heartbeats, GC idle work): part of every apply's "CPU per apply" below.
    const IDLE_MS = 3000;
    const idle0 = pids.map(threadCpuMs);
    await sleep(IDLE_MS);
    const idleByThread = threadDelta(idle0, pids.map(threadCpuMs), (IDLE_MS / 1000) * nodeCount);
    const threads0 = pids.map(threadCpuMs);
    const cpu0 = { nodes: pids.reduce((s, p) => s + cpuMs(p), 0), cp: cpuMs(cp.proc.pid) };
    const loopStart = performance.now();
    const loopStartUs = monotonicUs();
    let busyMs = 0;
    let mismatches = 0;
    let shed503 = 0;
    const probeIds = [...portOf.keys()].sort();
    for (let seq = 1; seq <= applies; seq++) {
      const sample = seq % 10 === 0;
      const probedId = sample ? probeIds[(seq / 10) % probeIds.length] : undefined;
      let firstServedAt: number | undefined;
      let probing = false;
      let probeLoop: Promise<void> | undefined;
      const body = probePolicyYaml(seq);
      const t0 = Date.now();
      const p0 = performance.now();
      if (probedId !== undefined) {
        probing = true;
        const port = portOf.get(probedId)!;
        probeLoop = (async () => {
          while (probing && firstServedAt === undefined) {
            if ((await probeOnce(port, cfg.probe.host, cfg.probe.path)) === String(seq)) firstServedAt = Date.now();
            else await sleep(2);
          }
        })();
      }
      const revision = await admin.apply(body);
      const adminMs = performance.now() - p0;
      const converged = await waitConverged(revision, 120_000);
      busyMs += performance.now() - p0;
      probing = false;
      await probeLoop;
      const perNode: Record<string, number> = {};
      for (const r of converged) perNode[r.id] = r.lastAnswer!.at - t0;
      const slowest = Object.entries(perNode).sort((a, b) => b[1] - a[1])[0];
      // Every node must now answer with the new sequence.
      const answers = await Promise.all([...portOf.values()].map((port) => servedSequence(port, cfg.probe.host, cfg.probe.path)));
      const seen = answers.map((a) => a.value);
      shed503 += answers.reduce((n, a) => n + a.shed, 0);
      const wrong = seen.filter((v) => v !== String(seq)).length;
      mismatches += wrong;
      if (wrong > 0) say(`apply ${seq}: ${wrong} node(s) ACKed revision ${revision} but do not serve sequence ${seq} (got ${JSON.stringify(seen)})`);
      rows.push({
        seq, revision, adminMs: Math.round(adminMs * 10) / 10, servedMs: slowest[1], slowest: slowest[0], perNode,
        ...(probedId !== undefined ? { probedNode: probedId, probeFirstServedMs: firstServedAt === undefined ? undefined : firstServedAt - t0, probeAckMs: perNode[probedId] } : {}),
      });
      if (seq % 10 === 0 || seq === 1) say(`apply ${seq}/${applies}: served everywhere after ${slowest[1]} ms (admin call ${adminMs.toFixed(0)} ms)`);
      await sleep(gapMs);
    }
    const loopMs = performance.now() - loopStart;
    const applyWindow = { fromUs: loopStartUs, toUs: monotonicUs() };
    const cpu1 = { nodes: pids.reduce((s, p) => s + cpuMs(p), 0), cp: cpuMs(cp.proc.pid) };
    const applyByThread = threadDelta(threads0, pids.map(threadCpuMs), applies * nodeCount);
    const rss = nodes.map((n) => rssMiB(n.pid));

    // An idle-machine reference: one node's build of the same snapshot in this process, nodes stopped first.
    const served = rows.map((r) => r.servedMs);
    const perNodeAll = rows.flatMap((r) => Object.values(r.perNode));
    const perNodeStats = [...portOf.keys()].sort().map((id) => ({ node: id, ...summarize(rows.map((r) => r.perNode[id])) }));
    const samples = rows.filter((r) => r.probedNode !== undefined);
    say('stopping the nodes');
    await Promise.all(nodes.map((n) => stop(n.child.proc)));
    await stop(cp.proc);
    const summaries = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort().map((f) => profileSummary(join(dir, f), 25, applyWindow));
    const profiles = values.profile
      ? { note: '% of self time per thread while the measured applies ran (idle gaps included); thread 0 is the main thread, 1 the worker', node0: summaries(profDir), controlPlane: summaries(cpProfDir) }
      : undefined;
    const build = await measureBuild(cfg.yaml, root);
    const result = {
      scenario: 'apply-to-served',
      measuredAt: new Date(startedAt).toISOString(),
      machine: { cpus: cpus().length, loadAverage1mAtStart: loadAtStart, loadAverage1mAtEnd: Math.round(loadavg()[0] * 100) / 100 },
      setup: {
        nodes: nodeCount, nodeKind: 'gateway --workers 1, one process each', routes: cfg.routes, apis: cfg.apis, yamlBytes: cfg.yaml.length,
        applies, warmupApplies: warmup, gapMs, change: 'one ApiPolicy (return-response header value) per apply',
        t0: 'just before POST /v1/config:apply (keep-alive HTTPS)', t1: "the control plane's receipt of the node's ACK of that revision (/v1/nodes lastAnswer.at); a gateway ACKs after every worker swapped",
      },
      target: { p99Ms: TARGET_P99_MS },
      applyToServedMs: summarize(served),
      /** The warm-up applies before the measured ones (first changes after start: code not yet compiled). */
      warmupMs,
      meetsTarget: percentileMs(served, 99) <= TARGET_P99_MS,
      perNodeMs: summarize(perNodeAll),
      perNode: perNodeStats,
      adminCallMs: summarize(rows.map((r) => r.adminMs)),
      verification: {
        probesAfterConvergence: rows.length * nodeCount, mismatches,
        /** 503s met while probing after convergence (load shedding after the rebuild's event-loop stall), asked again. */
        shed503,
        firstServedVsAck: samples.map((r) => ({ seq: r.seq, node: r.probedNode, firstServedMs: r.probeFirstServedMs, ackMs: r.probeAckMs })),
      },
      cpu: {
        nodesMsPerApply: Math.round((cpu1.nodes - cpu0.nodes) / applies),
        nodeMsPerApplyEach: Math.round((cpu1.nodes - cpu0.nodes) / applies / nodeCount),
        controlPlaneMsPerApply: Math.round((cpu1.cp - cpu0.cp) / applies),
        wallMsPerApply: Math.round(loopMs / applies),
        /** One node's CPU per apply by thread ("main", the data-plane worker, V8's helpers, libuv's pool…). */
        nodeMsPerApplyByThread: applyByThread,
        /** One idle node's CPU per second by thread, measured for 3 s before the applies (included in the figures above). */
        idleNodeMsPerSecondByThread: idleByThread,
        busyWallMsPerApply: Math.round(busyMs / applies),
        /** CPU used while applies were converging ÷ (wall × CPUs): near 1 means the machine was saturated. */
        utilizationWhileConverging: Math.round(((cpu1.nodes - cpu0.nodes + cpu1.cp - cpu0.cp) / (busyMs * cpus().length)) * 100) / 100,
      },
      nodeRssMiB: summarize(rss.filter((v) => !Number.isNaN(v))),
      oneNodeBuildMs: build,
      ...(profiles ? { profile: profiles } : {}),
      applies: rows,
    };
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(values.out!, JSON.stringify(result, null, 2) + '\n');
    say(`apply-to-served over ${applies} applies: p50 ${result.applyToServedMs.p50} ms, p99 ${result.applyToServedMs.p99} ms, max ${result.applyToServedMs.max} ms (target p99 ≤ ${TARGET_P99_MS} ms); per node p50 ${result.perNodeMs.p50} ms, p99 ${result.perNodeMs.p99} ms`);
    say(`CPU per apply: nodes ${result.cpu.nodesMsPerApply} ms (${result.cpu.nodeMsPerApplyEach} ms each), control plane ${result.cpu.controlPlaneMsPerApply} ms; utilization while converging ${result.cpu.utilizationWhileConverging}`);
    say(`one node per apply by thread: ${JSON.stringify(result.cpu.nodeMsPerApplyByThread)}; idle node per second: ${JSON.stringify(result.cpu.idleNodeMsPerSecondByThread)}`);
    say(`one node's build of the snapshot, in-process: ${JSON.stringify(build)}`);
    say(`wrote ${values.out} in ${((Date.now() - startedAt) / 1000).toFixed(0)} s`);
    return mismatches === 0 ? 0 : 1;
  } finally {
    await admin?.close();
    killAll();
    if (!values.keep) rmSync(root, { recursive: true, force: true });
    else say(`kept ${root}`);
  }
}

/**
 * One node's work for one snapshot, measured in this process with the nodes stopped: parse + validate
 * (parseCheckedConfig, as gatewayConfigOf does), the structured clone a worker receives, and the worker's
 * buildRuntime. Medians of 5 after one warm-up, wall and CPU time (CPU is what the 20 nodes share).
 */
async function measureBuild(yaml: string, root: string): Promise<Record<string, number>> {
  const { parseCheckedConfig } = await import('../src/policy/load-checked.ts');
  const { buildRuntime } = await import('../src/proxy/runtime.ts');
  const file = join(root, 'snapshot-v1.yaml');
  const keys = ['parse', 'clone', 'build'] as const;
  const runs: Array<Record<(typeof keys)[number], { wall: number; cpu: number }>> = [];
  let previous: ReturnType<typeof buildRuntime>['runtime'];
  const timed = <T>(fn: () => T): [T, { wall: number; cpu: number }] => {
    const c = process.cpuUsage();
    const w = performance.now();
    const v = fn();
    const used = process.cpuUsage(c);
    return [v, { wall: performance.now() - w, cpu: (used.user + used.system) / 1000 }];
  };
  for (let i = 0; i < 6; i++) {
    // A different probe sequence each time, as the applies send: one document changed, the others as before.
    const text = yaml.replace(/apply 0\n/, `apply ${i}\n`);
    const [r, parse] = timed(() => parseCheckedConfig(text, file));
    if (!r.config) throw new Error(`the bench config does not validate: ${JSON.stringify(r.problems.slice(0, 3))}`);
    const [copy, clone] = timed(() => structuredClone(r.config!));
    const [built, build] = timed(() => buildRuntime(copy, previous));
    previous = built.runtime;
    if (i > 0) runs.push({ parse, clone, build });
  }
  const med = (k: (typeof keys)[number], m: 'wall' | 'cpu'): number => Math.round(percentileMs(runs.map((r) => r[k][m]), 50) * 10) / 10;
  const out: Record<string, number> = {};
  for (const k of keys) {
    out[`${k}WallMs`] = med(k, 'wall');
    out[`${k}CpuMs`] = med(k, 'cpu');
  }
  out.totalWallMs = Math.round(keys.reduce((n, k) => n + med(k, 'wall'), 0) * 10) / 10;
  out.totalCpuMs = Math.round(keys.reduce((n, k) => n + med(k, 'cpu'), 0) * 10) / 10;
  return out;
}

if (import.meta.main) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`apply-to-served: ${(err as Error).stack ?? String(err)}\n`);
      killAll();
      process.exit(1);
    },
  );
}

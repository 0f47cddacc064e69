// A/B of Lockgate variants in one interleaved run: what `npm run bench` cannot tell apart (a change worth 2–5 %) on a VM
// whose speed drifts by ±30 % from one second to the next. Every member runs at once (each pinned like the benchmark:
// proxies on CPU 1, wrk and the upstream on CPU 0) and gets 1 s wrk bursts in turn, the order rotating each round, so
// drift hits all members alike. Prints, per member: requests, CPU µs per request (user and system, per process for the
// two-hop scenarios), the ratio of its requests to the first member's, and the mean ± standard error of the per-round
// ratios. Not part of the benchmark and writes no results file.
//
//   node bench/ab.ts --members mesh-hop,mesh-identity,base:mesh-identity --base ../lockgate-old [--env ",,K=V;K2=W"] [--rounds 40]
//
// A member is a scenario name (mesh-hop and mesh-identity start two hops, others one gateway), optionally prefixed
// `base:` to run it from the checkout given by --base (another worktree, e.g. `git worktree add ../old HEAD~1`, with
// node_modules linked or installed). --env sets environment variables for each member's processes (comma-separated per
// member, `;` between variables), read by nothing but the code under test. A `+pad=N` suffix (`mesh-hop+pad=600`) adds
// an `x-pad` header of N bytes to every request of that member: what the bytes of a token or an assertion cost alone,
// carried over every leg as any unknown header is. Two members of the same variant tell how noisy the run was.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createMeshCerts } from './mesh-certs.ts';
import { processTree, startMeshSystem } from './mesh-hop.ts';
import { MESH_IDENTITY_SCENARIO } from './mesh-identity.ts';
import { writeRequestsFile } from './measure-unit.ts';
import { readCpu, ticksPerSecond } from './measure.ts';
import { startUpstream } from './nginx.ts';
import { killAllPinned } from './pinned-process.ts';
import { buildScenarios } from './scenarios.ts';
import { startSystem } from './systems.ts';
import { killWrk, runWrk } from './wrk.ts';

const LOAD_CPU = 0;
const PROXY_CPU = 1;
const TWO_HOPS = new Set(['mesh-hop', MESH_IDENTITY_SCENARIO]);

const { values } = parseArgs({
  options: {
    members: { type: 'string' },
    base: { type: 'string' },
    env: { type: 'string', default: '' },
    rounds: { type: 'string', default: '40' },
  },
});
const specs = (values.members ?? '').split(',').filter(Boolean);
const rounds = Number(values.rounds);
if (specs.length < 2 || !Number.isInteger(rounds) || rounds < 1 || (specs.some((s) => s.startsWith('base:')) && values.base === undefined)) {
  console.error('usage: node bench/ab.ts --members A,B[,…] (scenario names, `base:` prefix for --base) [--base DIR] [--env "K=V;…,…"] [--rounds N]');
  process.exit(2);
}
const envs = values.env.split(',');

interface Starters {
  startSystem: typeof startSystem;
  startMeshSystem: typeof startMeshSystem;
}
const here: Starters = { startSystem, startMeshSystem };
const base: Starters | null = values.base === undefined ? null : {
  startSystem: ((await import(resolve(values.base, 'bench/systems.ts'))) as Starters).startSystem,
  startMeshSystem: ((await import(resolve(values.base, 'bench/mesh-hop.ts'))) as Starters).startMeshSystem,
};

const dir = mkdtempSync(join(tmpdir(), 'lockgate-ab-'));
process.once('exit', () => {
  killWrk();
  killAllPinned();
  rmSync(dir, { recursive: true, force: true });
});
const { port: upstreamPort, process: upstream } = await startUpstream(dir, LOAD_CPU);
const scenarios = buildScenarios();
const certs = specs.some((s) => TWO_HOPS.has(s.replace(/^base:/, ''))) ? await createMeshCerts(join(dir, 'pki')) : null;

interface Member {
  label: string;
  port: number;
  /** Per process (hop): its pids. */
  pids: number[][];
  requestsFile: string;
  bodyBytes: number;
  stop: () => Promise<unknown>;
}
const members: Member[] = [];
try {
  for (const [i, spec] of specs.entries()) {
    const [name, ...options] = spec.replace(/^base:/, '').split('+');
    const found = scenarios.find((s) => s.name === name);
    if (found === undefined) throw new Error(`no scenario ${name}`);
    const pad = Number(/^pad=(\d+)$/.exec(options.find((o) => o.startsWith('pad=')) ?? '')?.[1] ?? 0);
    if (options.some((o) => !/^pad=\d+$/.test(o))) throw new Error(`unknown member option in ${spec} (known: +pad=N)`);
    const padHeader = `x-pad: ${'p'.repeat(pad)}`;
    const scenario = pad === 0 ? found : { ...found, requests: found.requests.map((q) => ({ ...q, headers: [...(q.headers ?? []), padHeader] })) };
    const from = spec.startsWith('base:') ? base! : here;
    const ctx = { dir: join(dir, `m${i}`), proxyCpu: PROXY_CPU, upstreamPort, upstreamPid: upstream.pid };
    mkdirSync(ctx.dir);
    // The member's variables apply to the processes it starts (PinnedProcess passes process.env), then are undone.
    const saved = { ...process.env };
    for (const kv of (envs[i] ?? '').split(';').filter(Boolean)) {
      const eq = kv.indexOf('=');
      process.env[kv.slice(0, eq)] = kv.slice(eq + 1);
    }
    try {
      if (TWO_HOPS.has(name)) {
        const r = await from.startMeshSystem('lockgate', scenario, ctx, certs!);
        members.push({ label: `${spec} ${envs[i] ?? ''}`, port: r.port, pids: r.hops.map((h) => processTree(h.child.pid)), requestsFile: writeRequestsFile(ctx.dir, scenario), bodyBytes: scenario.bodyBytes, stop: () => r.stop() });
      } else {
        const r = await from.startSystem('lockgate', scenario, ctx);
        members.push({ label: `${spec} ${envs[i] ?? ''}`, port: r.port, pids: [processTree(r.pid)], requestsFile: writeRequestsFile(ctx.dir, scenario), bodyBytes: scenario.bodyBytes, stop: () => r.stop() });
      }
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  }
  const run = (m: Member, durationS: number) => runWrk({ cpu: LOAD_CPU, port: m.port, requestsFile: m.requestsFile, bodyBytes: m.bodyBytes, durationS });
  // Warm-up: long enough for mesh-identity to have seen every user (its first request per user signs and verifies).
  for (const m of members) for (const s of [3, 2]) await run(m, s);
  const tps = ticksPerSecond();
  const totals = members.map((m) => ({ requests: 0, user: m.pids.map(() => 0), sys: m.pids.map(() => 0) }));
  const perRound: number[][] = [];
  for (let k = 0; k < rounds; k++) {
    const row: number[] = [];
    for (let j = 0; j < members.length; j++) {
      const i = (j + k) % members.length;
      const m = members[i];
      const ticks = () => m.pids.map((ps) => ps.map(readCpu).reduce((a, c) => ({ u: a.u + c.utime, s: a.s + c.stime }), { u: 0, s: 0 }));
      const before = ticks();
      const w = await run(m, 1);
      const after = ticks();
      row[i] = w.requests;
      totals[i].requests += w.requests;
      after.forEach((a, h) => {
        totals[i].user[h] += a.u - before[h].u;
        totals[i].sys[h] += a.s - before[h].s;
      });
    }
    perRound.push(row);
  }
  const us = (ticks: number, requests: number): string => ((ticks / tps) * 1e6 / requests).toFixed(1);
  for (const [i, t] of totals.entries()) {
    const ratios = perRound.map((r) => r[i] / r[0]);
    const mean = ratios.reduce((a, b) => a + b, 0) / ratios.length;
    const se = Math.sqrt(ratios.reduce((a, b) => a + (b - mean) ** 2, 0) / ratios.length / ratios.length);
    const cpu = t.user.map((u, h) => `${us(u, t.requests)}+${us(t.sys[h], t.requests)}`).join(' | ');
    console.log(`${members[i].label.padEnd(40)} ${String(t.requests).padStart(8)} req  user+sys µs/req ${cpu}  ratio ${(t.requests / totals[0].requests).toFixed(3)}  per round ${mean.toFixed(3)} ± ${se.toFixed(3)}`);
  }
} finally {
  for (const m of members) await m.stop();
}
process.exit(0);

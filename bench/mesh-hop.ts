// The mesh-hop scenario: client → hop A → (mTLS) → hop B → app, for Lockgate sidecars, bare-mesh and nginx; closed- and open-loop.
// Also starts mesh-identity's two hops (Lockgate gateway → sidecar b), so both are measured by one group of bursts.
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { SNAPSHOT_SCHEMA } from '../src/model/snapshot.ts';
import type { Snapshot } from '../src/model/snapshot.ts';
import { coreBusy, median, readCores, readCpu, readMemory, ticksPerSecond } from './measure.ts';
import type { CpuTicks } from './measure.ts';
import type { Sample, UnitOptions } from './measure-unit.ts';
import { MESH_NAMESPACE, TRUST_DOMAIN } from './mesh-certs.ts';
import type { MeshCerts } from './mesh-certs.ts';
import { benchIdp, checkIdentityHops, identityGatewayYaml, identitySidecarPolicyYaml } from './mesh-identity.ts';
import type { MeshIdentity } from './mesh-identity.ts';
import { freePort, httpGet, portIsFree, waitUntil } from './net.ts';
import { startNginx } from './nginx.ts';
import { FIXED_RATE, H2LOAD_BIN, OPEN_LOOP_CONNECTIONS, runOpenLoop } from './open-loop.ts';
import type { OpenLoopEntry, OpenLoopReport, OpenLoopResult } from './open-loop.ts';
import { PinnedProcess } from './pinned-process.ts';
import type { StopResult } from './pinned-process.ts';
import type { Scenario, SystemName } from './scenarios.ts';
import { LOCKGATE_BIN, ROOT, verify } from './systems.ts';
import type { Context } from './systems.ts';
import { runWrk } from './wrk.ts';
import type { WrkResult } from './wrk.ts';

export const MESH_SCENARIO = 'mesh-hop';
/** The Host every mesh-hop request carries: Lockgate's outbound listener routes by it (`<service>`). */
export const MESH_HOST = 'b';
/** Seconds per unit beyond warm-up and measurement (two processes to start and stop). */
export const MESH_OVERHEAD_S: Partial<Record<SystemName, number>> = { lockgate: 4, 'bare-mesh': 2, nginx: 1 };

const BARE_MESH_SCRIPT = join(ROOT, 'bench', 'bare-mesh.ts');

let sidecarCheck: string | null | undefined;
/**
 * Why `system` cannot run in mesh-hop, or null. Lockgate needs the `sidecar` verb: asked once per run with
 * `lockgate sidecar --help` (exit 0 when the verb exists), so a tree without it reports instead of failing.
 */
export function meshUnavailable(system: SystemName): string | null {
  if (system !== 'lockgate') return null;
  if (sidecarCheck === undefined) {
    const r = spawnSync(process.execPath, [LOCKGATE_BIN, 'sidecar', '--help'], { encoding: 'utf8', timeout: 15_000 });
    const said = `${r.stderr ?? ''}${r.stdout ?? ''}`.trim().split('\n')[0] ?? '';
    sidecarCheck = r.status === 0 ? null : `the sidecar is not available yet (\`lockgate sidecar --help\` exited ${r.status ?? r.signal}: ${said.slice(0, 120)})`;
  }
  return sidecarCheck;
}

/** Lists a process and its descendants (a supervisor's children would otherwise escape the CPU and memory figures). */
export function processTree(pid: number): number[] {
  const out = [pid];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tasks) {
    let text = '';
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const child of text.trim().split(/\s+/)) if (child !== '') out.push(...processTree(Number(child)));
  }
  return out;
}

// ---- Lockgate sidecars (standalone: files in a data dir and a snapshot file, no control plane) ----

/**
 * The snapshot config: the Mesh and MeshServices a and b. mesh-hop: access allowed by default, no AccessPolicy;
 * mesh-identity (`identity`): denied by default, and b's AccessPolicy on the calling workload and the asserted user.
 */
export function sidecarConfigYaml(identity = false): string {
  const doc = (kind: string, metadata: object, spec: object): string => stringify({ apiVersion: 'lockgate.dev/v1alpha1', kind, metadata, spec }, { lineWidth: 0 });
  const port = { ports: [{ name: 'http', port: 80, protocol: 'http' }] };
  return [
    doc('Mesh', { name: 'default' }, { trustDomain: TRUST_DOMAIN, mtls: 'strict', defaultAccess: identity ? 'deny' : 'allow' }),
    doc('MeshService', { name: 'a', namespace: MESH_NAMESPACE }, port),
    doc('MeshService', { name: 'b', namespace: MESH_NAMESPACE }, port),
    ...(identity ? [identitySidecarPolicyYaml()] : []),
  ].join('---\n');
}

/**
 * The snapshot a standalone sidecar for `service` reads: b's one endpoint is B's inbound listener. With `identity`
 * (mesh-identity) it carries the assertion keys (public only: b verifies, never mints) and b's AccessPolicy.
 */
export function sidecarSnapshot(service: 'a' | 'b', certs: MeshCerts, bInbound: number, identity?: MeshIdentity): Snapshot {
  const b = `${MESH_NAMESPACE}/b`;
  return {
    schema: SNAPSHOT_SCHEMA,
    version: 1,
    endpointsVersion: 1,
    node: { kind: 'sidecar', namespace: MESH_NAMESPACE, service, spiffeId: certs[service].spiffeId },
    config: sidecarConfigYaml(identity !== undefined),
    endpoints: { [b]: [{ service: b, node: 'b-1', address: `127.0.0.1:${bInbound}`, labels: {}, healthy: true, spiffeId: certs.b.spiffeId }] },
    trustBundle: [certs.rootPem],
    ...(identity !== undefined ? { identity: identity.sidecarKeys } : {}),
  };
}

interface Hop {
  name: string;
  child: PinnedProcess;
  log: string;
}

/**
 * Access log file of a bench sidecar: a file, as the gateway scenarios' Lockgate and nginx write theirs (not stdout).
 * `tag` ('' or 'identity-') keeps mesh-identity's sidecar b apart from mesh-hop's: both run at once in a group.
 */
const sidecarAccessLog = (dir: string, service: string, tag = ''): string => join(dir, `${tag}sidecar-${service}-access.log`);

/** LOCKGATE_BENCH_PROFILE_DIR: CPU-profile the mesh Lockgate processes too (one .cpuprofile per thread, on exit). */
const profileArgs = (name: string): string[] => (process.env.LOCKGATE_BENCH_PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', join(process.env.LOCKGATE_BENCH_PROFILE_DIR, name)] : []);

function launchSidecar(service: 'a' | 'b', ctx: Context, certs: MeshCerts, ports: { inbound: number; outbound: number; bInbound: number }, identity?: MeshIdentity): Hop {
  const tag = identity !== undefined ? 'identity-' : '';
  const dataDir = join(ctx.dir, `${tag}sidecar-${service}`);
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  copyFileSync(certs[service].certFile, join(dataDir, 'cert.pem'));
  copyFileSync(certs[service].keyFile, join(dataDir, 'key.pem'));
  copyFileSync(certs.rootFile, join(dataDir, 'bundle.pem'));
  const snapshotFile = join(ctx.dir, `${tag}sidecar-${service}-snapshot.json`);
  writeFileSync(snapshotFile, `${JSON.stringify(sidecarSnapshot(service, certs, ports.bInbound, identity), null, 2)}\n`);
  const log = join(ctx.dir, `${tag}sidecar-${service}.out`);
  rmSync(log, { force: true });
  rmSync(sidecarAccessLog(ctx.dir, service, tag), { force: true });
  const args = [
    ...profileArgs(`${tag}sidecar-${service}`),
    LOCKGATE_BIN, 'sidecar', '--service', service, '--namespace', MESH_NAMESPACE, '--app', `127.0.0.1:${ctx.upstreamPort}`,
    '--data-dir', dataDir, '--snapshot', snapshotFile, '--inbound', `127.0.0.1:${ports.inbound}`, '--outbound', `127.0.0.1:${ports.outbound}`, '--workers', '1',
    '--access-log', sidecarAccessLog(ctx.dir, service, tag),
  ];
  return { name: `${tag}sidecar-${service}`, child: new PinnedProcess(ctx.proxyCpu, process.execPath, args, log), log };
}

/** mesh-identity's hop A: Lockgate's standalone gateway (one worker) with hop a's certificate, to sidecar b over mTLS. */
function launchIdentityGateway(ctx: Context, certs: MeshCerts, identity: MeshIdentity, ports: { port: number; adminPort: number; bPort: number }, discovery: string): Hop & { accessLog: string } {
  const keysFile = join(ctx.dir, 'identity-gateway-assertion-keys.json');
  writeFileSync(keysFile, `${JSON.stringify(identity.gatewayKeys)}\n`, { mode: 0o600 });
  const accessLog = join(ctx.dir, 'identity-gateway-access.log');
  rmSync(accessLog, { force: true });
  const config = join(ctx.dir, 'identity-gateway.yaml');
  writeFileSync(config, identityGatewayYaml({ ...ports, accessLogPath: accessLog, keysFile, certs, identity, discovery }));
  const log = join(ctx.dir, 'identity-gateway.out');
  rmSync(log, { force: true });
  const args = [...profileArgs('identity-gateway'), LOCKGATE_BIN, 'gateway', '-c', config, '--workers', '1'];
  return { name: 'identity-gateway', child: new PinnedProcess(ctx.proxyCpu, process.execPath, args, log), log, accessLog };
}

// ---- nginx: two processes doing the same two hops ----

function nginxPreamble(dir: string, name: string): string {
  // As nginx.ts: one process that is itself the worker, everything under the temp dir.
  return [
    'daemon off;', 'master_process off;', 'worker_processes 1;', `pid ${join(dir, `${name}.pid`)};`,
    `error_log ${join(dir, `${name}-error.log`)} warn;`, 'events { worker_connections 4096; multi_accept on; }',
  ].join('\n');
}

function nginxTempPaths(dir: string, name: string): string {
  return ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `  ${kind}_temp_path ${join(dir, `${name}-tmp`, kind)};`).join('\n');
}

const NGINX_COMMON = `  keepalive_requests 10000000;
  keepalive_timeout 300s;
  proxy_buffer_size 16k;
  proxy_buffers 8 16k;
  proxy_max_temp_file_size 0;`;

/**
 * Hop A: plain HTTP in, proxy_pass over mTLS to B with upstream keepalive, presenting a's chain and
 * verifying B's chain against the root. nginx cannot check a URI SAN: `proxy_ssl_verify on` checks the host
 * name `proxy_ssl_name` against DNS SANs or, with none, the subject CN, so the bench leaves carry CN
 * `b.bench` and that is what is checked instead of `spiffe://…/sa/b`.
 */
export function meshNginxHopA(dir: string, port: number, bPort: number, certs: MeshCerts): string {
  return `${nginxPreamble(dir, 'mesh-a')}
http {
${nginxTempPaths(dir, 'mesh-a')}
  access_log ${join(dir, 'mesh-a-access.log')} combined buffer=64k flush=1s;
${NGINX_COMMON}
  upstream hop_b {
    server 127.0.0.1:${bPort};
    keepalive 128;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${port} backlog=4096;
    location / {
      proxy_pass https://hop_b;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
      proxy_ssl_certificate ${certs.a.certFile};
      proxy_ssl_certificate_key ${certs.a.keyFile};
      proxy_ssl_trusted_certificate ${certs.rootFile};
      proxy_ssl_verify on;
      proxy_ssl_verify_depth 2;
      proxy_ssl_name ${certs.b.commonName};
      proxy_ssl_server_name off;
      proxy_ssl_protocols TLSv1.3;
      proxy_ssl_session_reuse on;
    }
  }
}
`;
}

/** Hop B: TLS listener requiring a client certificate that chains to the root, proxy_pass to the app with keepalive. */
export function meshNginxHopB(dir: string, port: number, upstreamPort: number, certs: MeshCerts): string {
  return `${nginxPreamble(dir, 'mesh-b')}
http {
${nginxTempPaths(dir, 'mesh-b')}
  access_log ${join(dir, 'mesh-b-access.log')} combined buffer=64k flush=1s;
${NGINX_COMMON}
  upstream app {
    server 127.0.0.1:${upstreamPort};
    keepalive 128;
    keepalive_requests 10000000;
  }
  server {
    listen 127.0.0.1:${port} ssl backlog=4096;
    ssl_certificate ${certs.b.certFile};
    ssl_certificate_key ${certs.b.keyFile};
    ssl_client_certificate ${certs.rootFile};
    ssl_verify_client on;
    ssl_verify_depth 2;
    ssl_protocols TLSv1.3;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
    }
  }
}
`;
}

// ---- starting and measuring a two-hop system ----

export interface MeshRunning {
  /** Hop A first, then hop B. */
  hops: Hop[];
  /** Where wrk sends: A's listener (the sidecar's outbound one). */
  port: number;
  /** Hop B's mTLS listener. */
  bPort: number;
  /** Access logs the hops write (checked non-empty and deleted after the stop). */
  accessLogs: string[];
  stop(): Promise<StopResult[]>;
  crashed(): boolean;
}

function running(hops: Hop[], port: number, bPort: number, accessLogs: string[]): MeshRunning {
  return {
    hops,
    port,
    bPort,
    accessLogs,
    // B first would make A answer 502s to any straggler; A first drains the chain from the client side.
    stop: async () => {
      const out: StopResult[] = [];
      for (const hop of hops) out.push(await hop.child.stop());
      return out;
    },
    crashed: () => hops.some((h) => h.child.exited),
  };
}

const readyLine = (log: string): boolean => existsSync(log) && readFileSync(log, 'utf8').includes('"event":"ready"');

/** Starts `system`'s two hops pinned to the proxy CPU; throws with their last output when they do not forward correctly in time. */
export async function startMeshSystem(system: SystemName, scenario: Scenario, ctx: Context, certs: MeshCerts): Promise<MeshRunning> {
  const aPort = await freePort();
  const bPort = await freePort();
  let r: MeshRunning;
  let ready: () => Promise<boolean>;
  let check = async (): Promise<string | null> => null;
  if (system === 'bare-mesh') {
    const log = (n: string): string => join(ctx.dir, `bare-mesh-${n}.out`);
    const b = new PinnedProcess(ctx.proxyCpu, process.execPath, [
      BARE_MESH_SCRIPT, '--port', String(bPort), '--upstream', `http://127.0.0.1:${ctx.upstreamPort}`,
      '--tls-cert', certs.b.certFile, '--tls-key', certs.b.keyFile, '--client-ca', certs.rootFile, '--client-trust-domain', TRUST_DOMAIN,
    ], log('b'));
    const a = new PinnedProcess(ctx.proxyCpu, process.execPath, [
      BARE_MESH_SCRIPT, '--port', String(aPort), '--upstream', `https://127.0.0.1:${bPort}`,
      '--upstream-cert', certs.a.certFile, '--upstream-key', certs.a.keyFile, '--upstream-ca', certs.rootFile, '--upstream-spiffe', certs.b.spiffeId,
    ], log('a'));
    r = running([{ name: 'bare-mesh-a', child: a, log: log('a') }, { name: 'bare-mesh-b', child: b, log: log('b') }], aPort, bPort, []);
    ready = async () => (await httpGet(aPort, '/', { host: MESH_HOST })).status === 200;
  } else if (system === 'nginx') {
    for (const f of ['mesh-a-access.log', 'mesh-b-access.log']) rmSync(join(ctx.dir, f), { force: true });
    const b = startNginx(ctx.dir, 'mesh-b', meshNginxHopB(ctx.dir, bPort, ctx.upstreamPort, certs), ctx.proxyCpu);
    const a = startNginx(ctx.dir, 'mesh-a', meshNginxHopA(ctx.dir, aPort, bPort, certs), ctx.proxyCpu);
    r = running(
      [{ name: 'nginx-a', child: a, log: join(ctx.dir, 'mesh-a-error.log') }, { name: 'nginx-b', child: b, log: join(ctx.dir, 'mesh-b-error.log') }],
      aPort, bPort, [join(ctx.dir, 'mesh-a-access.log'), join(ctx.dir, 'mesh-b-access.log')],
    );
    ready = async () => (await httpGet(aPort, '/', { host: MESH_HOST })).status === 200;
  } else if (system === 'lockgate' && scenario.meshIdentity !== undefined) {
    // mesh-identity: aPort is the gateway's listener, bPort sidecar b's inbound (mTLS) listener.
    const identity = scenario.meshIdentity;
    const [adminPort, bOutbound] = [await freePort(), await freePort()];
    const b = launchSidecar('b', ctx, certs, { inbound: bPort, outbound: bOutbound, bInbound: bPort }, identity);
    const a = launchIdentityGateway(ctx, certs, identity, { port: aPort, adminPort, bPort }, await benchIdp(identity));
    r = running([a, b], aPort, bPort, [a.accessLog, sidecarAccessLog(ctx.dir, 'b', 'identity-')]);
    ready = async () => readyLine(b.log) && (await httpGet(adminPort, '/readyz')).status === 200;
    check = () => checkIdentityHops(aPort, identity);
  } else if (system === 'lockgate') {
    // aPort is A's outbound listener (where the client sends), bPort B's inbound (mTLS) listener.
    const [aInbound, bOutbound] = [await freePort(), await freePort()];
    const b = launchSidecar('b', ctx, certs, { inbound: bPort, outbound: bOutbound, bInbound: bPort });
    const a = launchSidecar('a', ctx, certs, { inbound: aInbound, outbound: aPort, bInbound: bPort });
    r = running([a, b], aPort, bPort, [sidecarAccessLog(ctx.dir, 'a'), sidecarAccessLog(ctx.dir, 'b')]);
    ready = async () => readyLine(a.log) && readyLine(b.log);
  } else {
    throw new Error(`${system} has no two-hop launcher`);
  }
  const alive = (): boolean => !r.crashed();
  let problem: string | null = (await waitUntil(ready, 20_000, alive)) ? null : `not ready (${r.crashed() ? 'a hop exited' : 'timed out'})`;
  if (problem === null) problem = await verify(r.port, scenario).catch((error: Error) => error.message);
  if (problem === null) problem = await check().catch((error: Error) => error.message);
  if (problem !== null) {
    await r.stop();
    // nginx writes its problems to its error log, the Node hops to their output file (what tail() reads).
    const errorLog = (h: Hop): string => (h.log.endsWith('-error.log') && existsSync(h.log) ? readFileSync(h.log, 'utf8').slice(-1500) : '');
    const tails = r.hops.map((h) => `--- ${h.name}:\n${h.child.tail()}\n${errorLog(h)}`).join('\n');
    throw new Error(`${system} in ${scenario.name}: ${problem}\n${tails}`);
  }
  return r;
}

/** A mesh-hop sample: CPU is the sum over both hops' processes; rssMb/anonMb are the larger hop's, per hop alongside. */
export interface MeshSample extends Sample {
  /** Peak RSS of hop A then hop B (MiB; each hop's process tree summed). */
  hopRssMb: number[];
  /** CPU µs per request of hop A then hop B (each hop's process tree); they add up to cpuUsPerReq. */
  hopCpuUsPerReq: number[];
}

/** Stops a two-hop system and reports what did not go cleanly (exit, ports, empty access logs); deletes the logs. */
async function stopMesh(r: MeshRunning, warnings: string[]): Promise<void> {
  const stops = await r.stop();
  stops.forEach((s, i) => {
    if (!s.clean) warnings.push(`${r.hops[i].name} did not exit cleanly (code ${s.code}, signal ${s.signal})`);
  });
  if (!(await portIsFree(r.port))) warnings.push(`port ${r.port} still in use after stop`);
  for (const log of r.accessLogs) {
    if (!existsSync(log) || statSync(log).size === 0) warnings.push(`access log ${log} is empty`);
    rmSync(log, { force: true });
  }
}

/** Longest extra warm-up (s) spent making sure every request of the rotation was sent once (warmUp). */
const MAX_EXTRA_WARMUP_S = 10;

/**
 * wrk for `warmupS`, then again (at most MAX_EXTRA_WARMUP_S seconds more) until one run sent `minRequests`: mesh-identity
 * rotates over 1,000 users, and each one's first request costs a token verification at the gateway, a signature and a
 * verification at the sidecar (~0.4 ms of CPU here); steady state, which the bench compares, has them cached (an
 * assertion is reused for a minute). Every wrk run starts the rotation at its first request (rotate.lua), so what a
 * warm-up covered is its longest run's count, not the sum of its runs: counting the sum left the last users' first
 * requests (and their signatures) in the first measured burst. With no warm-up asked for, none is done.
 */
async function warmUp(run: (durationS: number) => Promise<WrkResult>, warmupS: number, minRequests: number): Promise<void> {
  if (warmupS <= 0) return;
  let covered = (await run(warmupS)).requests;
  for (let spent = 0; covered < minRequests && spent < MAX_EXTRA_WARMUP_S; spent += warmupS) covered = Math.max(covered, (await run(warmupS)).requests);
}

function readTicks(pids: number[]): CpuTicks {
  return pids.map(readCpu).reduce((a, b) => ({ utime: a.utime + b.utime, stime: a.stime + b.stime }), { utime: 0, stime: 0 });
}

/** One closed-loop measurement of a two-hop system: wrk to hop A, CPU summed over every hop process. */
export async function measureMeshUnit(system: SystemName, scenario: Scenario, ctx: Context, certs: MeshCerts, requestsFile: string, options: UnitOptions): Promise<MeshSample> {
  const r = await startMeshSystem(system, scenario, ctx, certs);
  const warnings: string[] = [];
  const wrkRun = { cpu: options.loadCpu, port: r.port, requestsFile, bodyBytes: scenario.bodyBytes };
  try {
    await warmUp((durationS) => runWrk({ ...wrkRun, durationS }), options.warmupS, scenario.requests.length);
    const trees = r.hops.map((h) => processTree(h.child.pid));
    const before = trees.map(readTicks);
    const coresBefore = readCores();
    const started = process.hrtime.bigint();
    const wrk = await runWrk({ ...wrkRun, durationS: options.durationS });
    const wallS = Number(process.hrtime.bigint() - started) / 1e9;
    if (r.crashed()) throw new Error(`${system}: a hop exited during the measurement`);
    const after = trees.map(readTicks);
    const busy = coreBusy(coresBefore, readCores());
    const memory = trees.map((tree) => tree.map(readMemory).reduce((a, b) => ({ rssMb: a.rssMb + b.rssMb, anonMb: a.anonMb + b.anonMb })));
    const errors = wrk.non2xx + wrk.socketErrors;
    if (errors > 0) warnings.push(`${errors} failed requests (${wrk.non2xx} non-2xx, ${wrk.socketErrors} socket errors)`);
    const hopSeconds = after.map((a, h) => (a.utime + a.stime - before[h].utime - before[h].stime) / ticksPerSecond());
    const cpuSeconds = hopSeconds.reduce((a, b) => a + b, 0);
    return {
      rps: wrk.rps,
      p50Ms: wrk.p50Ms,
      p99Ms: wrk.p99Ms,
      cpuUsPerReq: wrk.requests > 0 ? (cpuSeconds * 1e6) / wrk.requests : 0,
      rssMb: Math.max(...memory.map((m) => m.rssMb)),
      anonMb: Math.max(...memory.map((m) => m.anonMb)),
      hopRssMb: memory.map((m) => m.rssMb),
      hopCpuUsPerReq: hopSeconds.map((x) => (wrk.requests > 0 ? (x * 1e6) / wrk.requests : 0)),
      proxyCpuPct: (cpuSeconds / wallS) * 100,
      core0Pct: (busy[options.loadCpu] ?? 0) * 100,
      errors,
      warnings,
    };
  } finally {
    await stopMesh(r, warnings);
    for (const warning of warnings) console.error(`  ! ${scenario.name}/${system}: ${warning}`);
  }
}

/** One member of a group measured side by side: a two-hop system in a scenario (mesh-hop or mesh-identity). */
export interface MeshMember {
  system: SystemName;
  scenario: Scenario;
  requestsFile: string;
}

/** A member that did not start or whose hop exited: the caller drops that member and measures the others. */
export class MeshMemberError extends Error {
  readonly member: number;
  constructor(member: number, cause: Error) {
    super(cause.message, { cause });
    this.member = member;
  }
}

/**
 * Burst k's order. Two members alternate which goes first (A B, B A, …): neither always follows the other, and neither
 * waits more than two bursts. Three or more keep one cycle (A B C, A B C, …), so each waits exactly members − 1 bursts
 * between its own: a rotation (A B C, B C A) left a member four bursts idle (~5 s), past the 4 s after which the hops'
 * pools close idle upstream connections, and that member's next burst paid ~50 mTLS handshakes on both hops (+40 µs
 * per request measured, on whichever member the rotation happened to leave idle).
 */
export function burstOrder(members: number, k: number): number[] {
  return Array.from({ length: members }, (_, i) => (members <= 2 ? (i + k) % members : i));
}

/**
 * Two-hop systems side by side (the mesh-hop target compares Lockgate with bare-mesh, mesh-identity's compares Lockgate's
 * gateway → sidecar with its mesh-hop): all run at once, each is warmed up, then wrk sends short bursts to each in turn,
 * the order rotating every burst, and each member's requests, time and CPU are summed over its own bursts, as
 * measurePair does for the route pair. This VM's speed drifts 20–40 % between runs seconds apart
 * (docs/performance.md), more than the effects the targets check; interleaved bursts put every member in the same
 * stretches of it. A member that does not start, or whose hop exits, throws MeshMemberError (the others are stopped).
 */
export async function measureMeshGroup(members: MeshMember[], ctx: Context, certs: MeshCerts, options: UnitOptions & { bursts: number }): Promise<MeshSample[]> {
  const running: MeshRunning[] = [];
  const warnings: string[][] = members.map(() => []);
  try {
    for (const [i, m] of members.entries()) {
      try {
        running.push(await startMeshSystem(m.system, m.scenario, ctx, certs));
      } catch (error) {
        throw new MeshMemberError(i, error as Error);
      }
    }
    const run = (i: number, durationS: number) =>
      runWrk({ cpu: options.loadCpu, port: running[i].port, requestsFile: members[i].requestsFile, bodyBytes: members[i].scenario.bodyBytes, durationS });
    for (let i = 0; i < members.length; i++) await warmUp((durationS) => run(i, durationS), options.warmupS, members[i].scenario.requests.length);
    // The first warmed-up member has waited through the others' warm-ups (longer than the pools keep idle connections):
    // one unmeasured burst each, in the measured order, so every member starts measuring with its connections open.
    if (options.warmupS > 0 && members.length > 1) for (const i of burstOrder(members.length, 0)) await run(i, 1);
    // Per member, per hop: the hop's process tree.
    const pids = running.map((r) => r.hops.map((h) => processTree(h.child.pid)));
    const totals = members.map((_, i) => ({ ticks: 0, hopTicks: pids[i].map(() => 0), requests: 0, wallS: 0, p50: [] as number[], p99: [] as number[], errors: 0, core0: 0 }));
    const burstS = Math.max(1, Math.round(options.durationS / options.bursts));
    for (let k = 0; k < options.bursts; k++) {
      for (const i of burstOrder(members.length, k)) {
        const before = pids[i].map(readTicks);
        const coresBefore = readCores();
        const started = process.hrtime.bigint();
        const wrk = await run(i, burstS);
        const wallS = Number(process.hrtime.bigint() - started) / 1e9;
        const after = pids[i].map(readTicks);
        const t = totals[i];
        t.wallS += wallS;
        after.forEach((a, h) => {
          const d = a.utime + a.stime - before[h].utime - before[h].stime;
          t.hopTicks[h] += d;
          t.ticks += d;
        });
        t.requests += wrk.requests;
        t.p50.push(wrk.p50Ms);
        t.p99.push(wrk.p99Ms);
        t.errors += wrk.non2xx + wrk.socketErrors;
        t.core0 += (coreBusy(coresBefore, readCores())[options.loadCpu] ?? 0) * wallS;
      }
    }
    const crashed = running.findIndex((r) => r.crashed());
    if (crashed >= 0) throw new MeshMemberError(crashed, new Error(`${members[crashed].scenario.name}/${members[crashed].system}: a hop exited during the measurement`));
    return totals.map((t, i) => {
      if (t.errors > 0) warnings[i].push(`${t.errors} failed requests`);
      const memory = running[i].hops.map((h) => processTree(h.child.pid).map(readMemory).reduce((a, b) => ({ rssMb: a.rssMb + b.rssMb, anonMb: a.anonMb + b.anonMb })));
      const cpuSeconds = t.ticks / ticksPerSecond();
      return {
        rps: t.requests / t.wallS,
        p50Ms: median(t.p50),
        p99Ms: median(t.p99),
        cpuUsPerReq: t.requests > 0 ? (cpuSeconds * 1e6) / t.requests : 0,
        rssMb: Math.max(...memory.map((m) => m.rssMb)),
        anonMb: Math.max(...memory.map((m) => m.anonMb)),
        hopRssMb: memory.map((m) => m.rssMb),
        hopCpuUsPerReq: t.hopTicks.map((x) => (t.requests > 0 ? ((x / ticksPerSecond()) * 1e6) / t.requests : 0)),
        proxyCpuPct: (cpuSeconds / t.wallS) * 100,
        core0Pct: (t.core0 / t.wallS) * 100,
        errors: t.errors,
        warnings: warnings[i],
      };
    });
  } finally {
    for (let i = 0; i < running.length; i++) {
      await stopMesh(running[i], warnings[i]);
      for (const warning of warnings[i]) console.error(`  ! ${members[i].scenario.name}/${members[i].system}: ${warning}`);
    }
  }
}

// ---- open-loop latency ----

const r3 = (n: number): number => Math.round(n * 1000) / 1000;

/**
 * Rounds of open-loop runs per system and rate (median of each figure over them). Five, not three: at 1,000 req/s
 * the added latency is ~2–3 ms of mostly VM wake-up time on both systems, and three rounds left ratios from 0.57 to 1.93.
 */
export const OPEN_LOOP_ROUNDS = 5;

/**
 * Every system (bare-mesh and Lockgate) started at once and warmed up with wrk; then, for OPEN_LOOP_ROUNDS rounds, at
 * 1,000 req/s and at half each one's closed-loop maximum, h2load straight at the app (direct) and then through the
 * two hops, the systems taking turns (A B, then B A, …). Each figure is the median over the rounds, and the added
 * latency the median of each round's hops-minus-direct: the systems are compared in the same stretches of this VM's
 * drifting speed, not minutes apart.
 */
export async function measureOpenLoop(
  systems: Array<{ system: SystemName; maxRps: number }>, scenario: Scenario, ctx: Context, certs: MeshCerts,
  options: { loadCpu: number; durationS: number; warmupS: number; requestsFile: string; rounds?: number },
): Promise<OpenLoopReport> {
  const rounds = options.rounds ?? OPEN_LOOP_ROUNDS;
  const report: OpenLoopReport = { tool: `h2load --h1 --rps (${H2LOAD_BIN})`, connections: OPEN_LOOP_CONNECTIONS, duration_s: options.durationS, rounds, entries: [] };
  const paths = scenario.requests.map((q) => q.path);
  const at = (port: number, rate: number): Promise<OpenLoopResult> =>
    runOpenLoop({ cpu: options.loadCpu, port, host: MESH_HOST, paths, rate, durationS: options.durationS, dir: ctx.dir });
  const ratesOf = (maxRps: number) => [{ label: String(FIXED_RATE), rate: FIXED_RATE }, { label: 'half-max', rate: Math.round(maxRps / 2) }];
  interface Series { hops: OpenLoopResult[]; direct: OpenLoopResult[]; problems: Set<string>; failed?: string }
  const live: Array<{ system: SystemName; maxRps: number; r: MeshRunning; warnings: string[]; series: Map<string, Series> }> = [];
  try {
    for (const { system, maxRps } of systems) {
      try {
        const r = await startMeshSystem(system, scenario, ctx, certs);
        live.push({ system, maxRps, r, warnings: [], series: new Map(ratesOf(maxRps).map(({ label }) => [label, { hops: [], direct: [], problems: new Set<string>() }])) });
      } catch (error) {
        for (const { label, rate } of ratesOf(maxRps)) report.entries.push(emptyEntry(system, label, rate, `did not start: ${(error as Error).message.split('\n')[0]}`));
      }
    }
    for (const s of live) if (options.warmupS > 0) await runWrk({ cpu: options.loadCpu, port: s.r.port, requestsFile: options.requestsFile, bodyBytes: 0, durationS: options.warmupS });
    for (let round = 0; round < rounds; round++) {
      // By rate, the systems back to back (A then B at 1,000 req/s, then A then B at half max; B first next round):
      // each system's figure at a rate is taken seconds from the other's, not a whole system's turn (~16 s) apart.
      const order = round % 2 === 0 ? live : [...live].reverse();
      for (let kind = 0; kind < 2; kind++) {
        for (const s of order) {
          const { label, rate } = ratesOf(s.maxRps)[kind];
          const series = s.series.get(label)!;
          if (series.failed !== undefined) continue;
          try {
            const direct = await at(ctx.upstreamPort, rate);
            const hops = await at(s.r.port, rate);
            if (s.r.crashed()) throw new Error('a hop exited during the measurement');
            series.direct.push(direct);
            series.hops.push(hops);
            if (hops.achievedRps < rate * 0.9) series.problems.add(`fell behind (${Math.round(hops.achievedRps)} of ${rate} req/s)`);
            // Which statuses (503 from overload protection, 502 from a hop, -1 for a failed stream) the errors were.
            const statuses = (x: OpenLoopResult): string => Object.entries(x.otherStatuses).map(([code, n]) => `${n}×${code}`).join(', ');
            if (hops.errors > 0) series.problems.add(`errors through the hops${statuses(hops) === '' ? '' : ` (${statuses(hops)})`}`);
            if (direct.errors > 0) series.problems.add(`errors direct${statuses(direct) === '' ? '' : ` (${statuses(direct)})`}`);
            console.log(`open-loop round ${round + 1}/${rounds} ${s.system} @ ${rate} req/s (${label}): p50 ${hops.p50Ms.toFixed(3)} ms, p99 ${hops.p99Ms.toFixed(3)} ms; direct p50 ${direct.p50Ms.toFixed(3)}, p99 ${direct.p99Ms.toFixed(3)}`);
          } catch (error) {
            series.failed = (error as Error).message.split('\n')[0];
            console.error(`open-loop ${s.system} @ ${rate} req/s: FAILED: ${(error as Error).message}`);
          }
        }
      }
    }
    for (const s of live) {
      for (const { label, rate } of ratesOf(s.maxRps)) {
        const series = s.series.get(label)!;
        if (series.hops.length === 0) {
          report.entries.push(emptyEntry(s.system, label, rate, series.failed ?? 'not measured'));
          continue;
        }
        const notes = [...series.problems, ...(series.failed !== undefined ? [`a round failed: ${series.failed}`] : [])];
        report.entries.push({
          system: s.system, rate: label, target_rps: rate,
          achieved_rps: Math.round(median(series.hops.map((h) => h.achievedRps))),
          p50_ms: r3(median(series.hops.map((h) => h.p50Ms))), p99_ms: r3(median(series.hops.map((h) => h.p99Ms))),
          direct_p50_ms: r3(median(series.direct.map((d) => d.p50Ms))), direct_p99_ms: r3(median(series.direct.map((d) => d.p99Ms))),
          added_p50_ms: r3(median(series.hops.map((h, i) => h.p50Ms - series.direct[i].p50Ms))),
          added_p99_ms: r3(median(series.hops.map((h, i) => h.p99Ms - series.direct[i].p99Ms))),
          errors: series.hops.reduce((n, h) => n + h.errors, 0) + series.direct.reduce((n, d) => n + d.errors, 0),
          ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
        });
      }
    }
  } finally {
    for (const s of live) {
      await stopMesh(s.r, s.warnings);
      for (const warning of s.warnings) console.error(`  ! ${scenario.name}/${s.system} (open loop): ${warning}`);
    }
  }
  return report;
}

function emptyEntry(system: string, rate: string, target: number, note: string): OpenLoopEntry {
  return { system, rate, target_rps: target, achieved_rps: null, p50_ms: null, p99_ms: null, direct_p50_ms: null, direct_p99_ms: null, added_p50_ms: null, added_p99_ms: null, errors: null, note };
}

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMeshCerts } from './mesh-certs.ts';
import { startMeshSystem } from './mesh-hop.ts';
import { freePort, httpGet, waitUntil } from './net.ts';
import { startNginx, upstreamConfig, writeUpstreamFiles } from './nginx.ts';
import { buildScenarios } from './scenarios.ts';
import { killAllPinned, PinnedProcess } from './pinned-process.ts';
import { runOpenLoop } from './open-loop.ts';
import { runWrk } from './wrk.ts';
import { writeRequestsFile } from './measure-unit.ts';
const dir = mkdtempSync(join(tmpdir(), 'lg-smoke-'));
try {
  writeUpstreamFiles(dir);
  const up = await freePort();
  const upstream = startNginx(dir, 'upstream', upstreamConfig(dir, up), 0);
  await waitUntil(async () => (await httpGet(up, '/')).status === 200, 5000);
  const certs = await createMeshCerts(join(dir, 'pki'));
  const scenario = buildScenarios().find((s) => s.name === 'mesh-hop')!;
  const file = writeRequestsFile(dir, scenario);
  const ctx = { dir, proxyCpu: Number(process.argv[3] ?? 1), upstreamPort: up, upstreamPid: upstream.pid };
  const paths = scenario.requests.map((q) => q.path);
  const ol = async (port: number, label: string) => { for (const rate of [1000, 2500]) { const r = await runOpenLoop({ cpu: 0, port, host: 'b', paths, rate, durationS: 3, dir }); console.log(label, rate, 'p50', r.p50Ms.toFixed(3), 'p99', r.p99Ms.toFixed(3)); } };
  await ol(up, 'direct');
  const bp = await freePort();
  const bare = new PinnedProcess(ctx.proxyCpu, process.execPath, [join(import.meta.dirname, 'bare-dispatch.ts'), '--port', String(bp), '--upstream', `http://127.0.0.1:${up}`], join(dir, 'bd.out'));
  await waitUntil(async () => (await httpGet(bp, '/')).status === 200, 10000);
  await runWrk({ cpu: 0, port: bp, requestsFile: file, bodyBytes: 0, durationS: 2 });
  await ol(bp, 'bare-dispatch');
  await bare.stop();
  for (const system of process.argv[2].split(',')) {
    const r = await startMeshSystem(system as never, scenario, ctx, certs);
    await runWrk({ cpu: 0, port: r.port, requestsFile: file, bodyBytes: 0, durationS: 2 });
    await ol(r.port, system);
    await r.stop();
  }
  await upstream.stop();
} finally { killAllPinned(); rmSync(dir, { recursive: true, force: true }); }

// `lockgate check`: clock skew, CA and certificate expiry, stale nodes and bundles, apps reachable past their sidecar.
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { appsToProbe, checkExitCode, evaluateChecks, formatChecks, type CaReport, type CheckInput, type CheckResult, type NodeReport } from '../control/check-report.ts';
import { ADMIN_CLIENT_OPTIONS, ADMIN_CLIENT_USAGE, AdminClientError, adminRequest, describeError, resolveTarget, type AdminTarget } from './admin-client.ts';
import type { Verb } from './verb.ts';

const USAGE = `Usage: lockgate check [-o json] [connection options]

Asks the control plane about the mesh and prints one line per check: ok, warn or fail, and why.
Exits 0 when nothing failed (warnings allowed), 1 otherwise.

  clock-skew                 this host's clock against the control plane's: warn past 5 s, fail past 60 s
                             (certificates are backdated 60 s; a peer further behind refuses them)
  root-expiry                each root in the trust bundle: warn under 30 days left, fail under 7
  intermediate-expiry        the issuing intermediate: the same, and fail when revoked
  control-plane-certificate  the control plane's own certificate: warn past 75 % of its life, fail expired
  node-certificates          each live node's certificate: warn past 75 % of its life (renewal is due at 50 %),
                             fail when expired
  node-versions              fail when a node rejected (NACKed) its snapshot; warn when one has not acknowledged
                             what it was sent for 30 s
  node-bundles               a node whose trust bundle is not the CA's current one (fail when connected)
  app-exposure               sidecars' apps on TCP: warn (other local processes can skip mTLS; use a Unix
                             socket); fail when a non-loopback app address accepts a connection from this host
  expiry-metric              the control plane's /metrics exports lockgate_certificate_expiry_timestamp_seconds

Live nodes are those connected or seen in the last 10 minutes.

Options:
  -o, --output FORMAT  text (default) or json ({ ok, checks: [{ name, status, message, details? }] })
  --timeout SECONDS    for each request (default 10; app probes wait at most 3)

${ADMIN_CLIENT_USAGE}`;

/** Whether a TCP connection to host:port opens within `timeoutMs`. */
function canConnect(address: string, timeoutMs: number): Promise<boolean> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(address.slice(i + 1));
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: timeoutMs });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

async function getJson<T>(target: AdminTarget, path: string, timeoutMs: number): Promise<T> {
  const reply = await adminRequest(target, 'GET', path, { timeoutMs });
  if (reply.status !== 200) throw new AdminClientError(`GET ${path}: ${describeError(reply)}`);
  return JSON.parse(reply.text) as T;
}

/** Local minus server time: from /v1/status `time` (ms), else the Date header (whole seconds). */
function clockOf(t0: number, t1: number, time: unknown, date: unknown): CheckInput['clock'] {
  const mid = (t0 + t1) / 2;
  const half = (t1 - t0) / 2;
  const server = typeof time === 'string' ? Date.parse(time) : Number.NaN;
  if (Number.isFinite(server)) return { skewMs: mid - server, precisionMs: half, source: 'the status time' };
  const header = typeof date === 'string' ? Date.parse(date) : Number.NaN;
  // The header is truncated to the second: the server's clock read somewhere in [header, header + 1 s).
  if (Number.isFinite(header)) return { skewMs: mid - (header + 500), precisionMs: half + 500, source: 'the Date header' };
  return null;
}

async function gather(target: AdminTarget, timeoutMs: number): Promise<CheckInput> {
  const t0 = Date.now();
  const statusReply = await adminRequest(target, 'GET', '/v1/status', { timeoutMs });
  const t1 = Date.now();
  if (statusReply.status !== 200) throw new AdminClientError(`GET /v1/status: ${describeError(statusReply)}`);
  const status = JSON.parse(statusReply.text) as { time?: unknown };
  const [ca, nodes, metrics] = await Promise.all([
    getJson<CaReport>(target, '/v1/ca', timeoutMs),
    getJson<{ nodes: NodeReport[] }>(target, '/v1/nodes', timeoutMs),
    adminRequest(target, 'GET', '/metrics', { timeoutMs }).then((r) => (r.status === 200 ? r.text : null), () => null),
  ]);
  const now = Date.now();
  const probes = appsToProbe(nodes.nodes, now).slice(0, 256);
  const results = await Promise.all(probes.map((a) => canConnect(a, Math.min(timeoutMs, 3000))));
  return {
    now,
    clock: clockOf(t0, t1, status.time, statusReply.headers.date),
    ca,
    nodes: nodes.nodes,
    reachable: Object.fromEntries(probes.map((a, i) => [a, results[i]])),
    metrics,
  };
}

function print(results: readonly CheckResult[], json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify({ ok: checkExitCode(results) === 0, checks: results }, null, 2)}\n`);
  else process.stdout.write(formatChecks(results));
}

export const checkVerb: Verb = {
  summary: 'check clocks, certificate expiry, stale nodes and exposed apps across the mesh',
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { ...ADMIN_CLIENT_OPTIONS, output: { type: 'string', short: 'o', default: 'text' }, timeout: { type: 'string', default: '10' } },
    });
    const timeoutS = Number(values.timeout);
    if (positionals.length > 0 || (values.output !== 'text' && values.output !== 'json') || !(timeoutS > 0 && timeoutS <= 600)) {
      process.stderr.write(`${USAGE}\n`);
      return 1;
    }
    const json = values.output === 'json';
    let results: CheckResult[];
    try {
      const target = await resolveTarget(values);
      results = evaluateChecks(await gather(target, timeoutS * 1000));
    } catch (err) {
      if (!(err instanceof AdminClientError)) throw err;
      results = [{ name: 'control-plane', status: 'fail', message: err.message }];
    }
    print(results, json);
    return checkExitCode(results);
  },
};

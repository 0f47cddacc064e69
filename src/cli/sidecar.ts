// `lockgate sidecar --service NAME --app HOST:PORT|unix:PATH`: the mesh sidecar beside one service (joined or standalone).
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Snapshot } from '../model/snapshot.ts';
import { Sidecar } from '../app/sidecar.ts';
import type { Verb } from './verb.ts';

/** `host:port` → parts; `:port` and a bare port mean 127.0.0.1. */
export function parseHostPort(s: string, what: string): { address: string; port: number } {
  const m = /^(?:\[?([^\]]*)\]?:)?(\d{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) throw new Error(`${what}: expected HOST:PORT, got ${JSON.stringify(s)}`);
  return { address: m[1] || '127.0.0.1', port: Number(m[2]) };
}

/** `unix:PATH` → the absolute `unix:/path` address the model takes (a relative PATH resolves against the cwd); else undefined. */
export function parseUnixAddress(s: string, what: string): string | undefined {
  if (!s.startsWith('unix:')) return undefined;
  const path = s.slice(5);
  if (path === '') throw new Error(`${what}: expected unix:PATH, got ${JSON.stringify(s)}`);
  return `unix:${isAbsolute(path) ? path : resolve(path)}`;
}

export const sidecarVerb: Verb = {
  summary: 'run the mesh sidecar beside a service (mTLS inbound, load-balanced outbound)',
  usage: `Usage: lockgate sidecar --service NAME --app HOST:PORT|unix:PATH [options]

Inbound: an mTLS listener (--inbound) whose verified callers reach the app after the
service's AccessPolicies allow them. Outbound: a plain listener on loopback (--outbound)
the app calls as http://<service>/ (HTTP_PROXY style) or with the service in Host;
HTTP/1.1 and HTTP/2 with prior knowledge (gRPC), WebSocket upgrades, and
CONNECT host:port for MeshService ports declared tcp (opaque pass-through).
App and sidecar may talk over Unix sockets (unix:PATH, created mode 0600), so no
other local process can call the app around the sidecar or call out as it.

Joined (normal): --control-plane URL --token TOKEN (a one-time join token from
"lockgate token create --service NAME"); the sidecar gets its certificate and config
from the control plane, renews at half life and keeps its last good snapshot in --data-dir.
Standalone: --snapshot FILE with cert.pem, key.pem and bundle.pem in --data-dir.

Options:
  -s, --service NAME        the service this sidecar stands beside
  -n, --namespace NS        its namespace (default "default")
      --app HOST:PORT       the local app, or unix:PATH (its Unix socket)
      --data-dir DIR        certificates and the last good snapshot (default ./.lockgate/sidecar-<service>)
      --control-plane URL   control plane (env LOCKGATE_CONTROL_PLANE)
      --token TOKEN         join token (env LOCKGATE_JOIN_TOKEN); not needed once joined
      --snapshot FILE       standalone: serve this snapshot (JSON), no control plane
      --inbound HOST:PORT   mTLS listener (default 0.0.0.0:0 = any free port)
      --outbound HOST:PORT  app-facing listener (default 127.0.0.1:0), or unix:PATH
      --admin HOST:PORT     health, readiness and metrics (default 127.0.0.1:0)
      --label KEY=VALUE     endpoint label (region, zone, version, …), repeatable
      --advertise HOST      address peers dial for --inbound (default its address, 127.0.0.1 for 0.0.0.0)
      --access-log DEST     path, stdout, stderr or off (default stdout)
      --workers N           1 (the sidecar runs its planes on one thread)
      --drain-timeout MS    in-flight requests' time on shutdown (default 10000)`,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        service: { type: 'string', short: 's' },
        namespace: { type: 'string', short: 'n', default: 'default' },
        app: { type: 'string' },
        'data-dir': { type: 'string' },
        'control-plane': { type: 'string' },
        token: { type: 'string' },
        snapshot: { type: 'string' },
        inbound: { type: 'string', default: '0.0.0.0:0' },
        outbound: { type: 'string', default: '127.0.0.1:0' },
        admin: { type: 'string', default: '127.0.0.1:0' },
        label: { type: 'string', multiple: true, default: [] },
        'access-log': { type: 'string', default: 'stdout' },
        advertise: { type: 'string' },
        workers: { type: 'string', default: '1' },
        'drain-timeout': { type: 'string', default: '10000' },
      },
    });
    const fail = (msg: string): number => {
      process.stderr.write(`lockgate sidecar: ${msg}\n`);
      return 1;
    };
    if (!values.service) return fail('--service NAME is required');
    if (!values.app) return fail('--app HOST:PORT or --app unix:PATH is required');
    if (values.workers !== '1') return fail('--workers: a sidecar runs on one thread (1)');
    let inbound, outbound, admin, appUrl: string;
    try {
      inbound = parseHostPort(values.inbound, '--inbound');
      const outboundUnix = parseUnixAddress(values.outbound, '--outbound');
      outbound = outboundUnix !== undefined ? { address: outboundUnix, port: 0 } : parseHostPort(values.outbound, '--outbound');
      admin = parseHostPort(values.admin, '--admin');
      const appUnix = parseUnixAddress(values.app, '--app');
      if (appUnix !== undefined) appUrl = appUnix;
      else {
        const app = parseHostPort(values.app, '--app');
        appUrl = `http://${app.address.includes(':') ? `[${app.address}]` : app.address}:${app.port}`;
      }
    } catch (err) {
      return fail((err as Error).message);
    }
    const labels: Record<string, string> = {};
    for (const l of values.label) {
      const eq = l.indexOf('=');
      if (eq < 1) return fail(`--label: expected KEY=VALUE, got ${JSON.stringify(l)}`);
      labels[l.slice(0, eq)] = l.slice(eq + 1);
    }
    const service = `${values.namespace}/${values.service}`;
    const dataDir = values['data-dir'] ?? `.lockgate/sidecar-${values.namespace}-${values.service}`;
    const drainMs = Number(values['drain-timeout']);
    const base = { service, appUrl, inbound, outbound, admin, labels, accessLog: values['access-log'] };

    if (values.snapshot !== undefined) {
      let snap: Snapshot;
      try {
        snap = JSON.parse(await readFile(values.snapshot, 'utf8')) as Snapshot;
      } catch (err) {
        return fail(`--snapshot: ${(err as Error).message}`);
      }
      const sidecar = new Sidecar({ ...base, certDir: dataDir, spiffeId: snap.node?.spiffeId ?? '' });
      const r = await sidecar.apply(snap);
      if (!r.ok) return fail(`snapshot rejected: ${r.reason}`);
      const socket = outbound.address.startsWith('unix:') ? { outboundSocket: outbound.address.slice(5) } : {};
      process.stdout.write(JSON.stringify({ event: 'ready', ...sidecar.ports, ...socket, version: sidecar.version }) + '\n');
      return await new Promise<number>((resolve) => {
        const stop = (): void => void sidecar.drain(drainMs).then(() => resolve(0));
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
    }
    const url = values['control-plane'] ?? process.env.LOCKGATE_CONTROL_PLANE;
    if (!url) return fail('--control-plane URL (or --snapshot FILE) is required');
    // Loaded only when joined: the agent brings the X.509 toolkit, which standalone mode never needs.
    const { runJoinedSidecar } = await import('../app/sidecar-node.ts');
    return runJoinedSidecar({ ...base, dataDir, controlPlane: url, token: values.token ?? process.env.LOCKGATE_JOIN_TOKEN, advertise: values.advertise, drainMs });
  },
};

// `lockgate gateway -c FILE | --control-plane URL`: the edge gateway, standalone from config files or joined to a control plane.
import { parseArgs } from 'node:util';
import { GatewaySupervisor } from '../app/gateway-supervisor.ts';
import { completeStandaloneMeshBackends } from '../app/mesh-backends.ts';
import type { Verb } from './verb.ts';

export const gatewayVerb: Verb = {
  summary: 'run the edge gateway: standalone from config files, or joined to a control plane',
  usage: `Usage: lockgate gateway -c FILE|DIR [-c FILE…] [--workers N] [--admin-port P] [--no-watch]
       lockgate gateway --control-plane URL --token TOKEN --data-dir DIR [--workers N] [--admin-port P]

Runs the edge gateway from YAML config. N worker threads share each listener port (SO_REUSEPORT).
Reloads on file change or SIGHUP (a bad config is rejected and the running one keeps serving),
drains gracefully on SIGTERM/SIGINT, reopens the access log on SIGUSR1.

Joined: the gateway joins the mesh with its own identity (a one-time token from
"lockgate token create --kind gateway --service NAME"), takes its config from the control
plane's snapshots (a bad one is NACKed and the running config keeps serving), calls Backends
of type mesh over mTLS with its own certificate (renewed at half life), and keeps the last
good snapshot in --data-dir to start from when the control plane is unreachable.

Options:
  -c, --config FILE|DIR   config file or directory of *.yaml (repeatable)
      --control-plane URL joined mode: the control plane (env LOCKGATE_CONTROL_PLANE)
      --token TOKEN       join token (env LOCKGATE_JOIN_TOKEN); not needed once --data-dir has joined
  -w, --workers N         worker threads (default 1)
      --admin-port P      override the admin listener port (0 = any free port)
      --no-watch          do not watch config files (SIGHUP still reloads)
      --drain-timeout MS  how long in-flight requests get on shutdown (default 25000)
      --data-dir DIR      the subscription store (see lockgate subscription); changes apply within a second;
                          joined: also the identity, certificates and last good snapshot (default .lockgate/gateway)`,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: {
        config: { type: 'string', short: 'c', multiple: true },
        workers: { type: 'string', short: 'w', default: '1' },
        'admin-port': { type: 'string' },
        'no-watch': { type: 'boolean', default: false },
        'drain-timeout': { type: 'string', default: '25000' },
        'data-dir': { type: 'string' },
        'control-plane': { type: 'string' },
        token: { type: 'string' },
      },
    });
    const files = values.config ?? [];
    const workers = Number(values.workers);
    const controlPlane = values['control-plane'] ?? (files.length === 0 ? process.env.LOCKGATE_CONTROL_PLANE : undefined);
    if (files.length > 0 && values['control-plane'] !== undefined) {
      process.stderr.write('lockgate gateway: -c (standalone) and --control-plane (joined) exclude each other\n');
      return 1;
    }
    if (files.length === 0 && controlPlane === undefined) {
      process.stderr.write('lockgate gateway: -c FILE (standalone) or --control-plane URL (joined) is required\n');
      return 1;
    }
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
      process.stderr.write('lockgate gateway: --workers must be an integer from 1 to 64\n');
      return 1;
    }
    const adminPort = values['admin-port'] === undefined ? undefined : Number(values['admin-port']);
    const dataDir = values['data-dir'] ?? process.env.LOCKGATE_DATA_DIR;
    if (controlPlane !== undefined) {
      // Loaded only when joined: the agent brings the X.509 toolkit, which a standalone gateway never needs (~30 MB).
      const { runJoinedGateway } = await import('../app/gateway-node.ts');
      return runJoinedGateway({
        controlPlane,
        token: values.token ?? process.env.LOCKGATE_JOIN_TOKEN,
        dataDir: dataDir ?? '.lockgate/gateway',
        workers,
        adminPort,
        watch: !values['no-watch'],
        drainTimeoutMs: Number(values['drain-timeout']),
      });
    }
    const sup = new GatewaySupervisor({
      files,
      workers,
      adminPort,
      watch: !values['no-watch'],
      drainTimeoutMs: Number(values['drain-timeout']),
      dataDir,
      // A standalone mesh Backend lists its endpoints and certificate files itself; see docs/mesh.md.
      prepare: completeStandaloneMeshBackends,
    });
    const started = await sup.start();
    if (!started.ok) {
      process.stderr.write(`lockgate gateway: invalid config\n${started.problems}\n`);
      return 1;
    }
    // Machine-readable line for scripts and tests that start us on port 0.
    process.stdout.write(JSON.stringify({ event: 'listening', ports: sup.ports, admin: sup.adminPort, version: sup.config.version }) + '\n');
    process.on('SIGHUP', () => sup.scheduleReload('SIGHUP', true));
    process.on('SIGUSR1', () => sup.reopenLogs());
    return await new Promise<number>((resolve) => {
      const stop = (): void => void sup.drain().then(() => resolve(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
  },
};

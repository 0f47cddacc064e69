// `lockgate gateway -c FILE [--workers N]`: a standalone gateway serving from config files, with reload and drain.
import { parseArgs } from 'node:util';
import { GatewaySupervisor } from '../app/gateway-supervisor.ts';
import type { Verb } from './verb.ts';

export const gatewayVerb: Verb = {
  summary: 'run a standalone gateway from config files (reloads on change or SIGHUP)',
  usage: `Usage: lockgate gateway -c FILE|DIR [-c FILE…] [--workers N] [--admin-port P] [--no-watch]

Runs the edge gateway from YAML config. N worker threads share each listener port (SO_REUSEPORT).
Reloads on file change or SIGHUP (a bad config is rejected and the running one keeps serving),
drains gracefully on SIGTERM/SIGINT, reopens the access log on SIGUSR1.

Options:
  -c, --config FILE|DIR   config file or directory of *.yaml (repeatable)
  -w, --workers N         worker threads (default 1)
      --admin-port P      override the admin listener port (0 = any free port)
      --no-watch          do not watch config files (SIGHUP still reloads)
      --drain-timeout MS  how long in-flight requests get on shutdown (default 25000)
      --data-dir DIR      the subscription store (see lockgate subscription); changes apply within a second`,
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
      },
    });
    const files = values.config ?? [];
    const workers = Number(values.workers);
    if (files.length === 0) {
      process.stderr.write('lockgate gateway: -c FILE is required\n');
      return 1;
    }
    if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
      process.stderr.write('lockgate gateway: --workers must be an integer from 1 to 64\n');
      return 1;
    }
    const sup = new GatewaySupervisor({
      files,
      workers,
      adminPort: values['admin-port'] === undefined ? undefined : Number(values['admin-port']),
      watch: !values['no-watch'],
      drainTimeoutMs: Number(values['drain-timeout']),
      dataDir: values['data-dir'] ?? process.env.LOCKGATE_DATA_DIR,
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

// `lockgate control-plane --data-dir D [--listen HOST:PORT]`: runs the control plane until SIGTERM or SIGINT.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ControlPlane, DEFAULT_LISTEN } from '../app/control-plane.ts';
import type { Verb } from './verb.ts';

const USAGE = `Usage: lockgate control-plane [--data-dir DIR] [--listen HOST:PORT]

Runs the control plane: the config store (SQLite in DIR), the certificate authority, and the admin
and node APIs on one HTTPS port.

At first start it makes the CA and a bootstrap admin token, printed once on stdout (only its hash is
stored). It writes DIR/ca-bundle.pem and DIR/control-plane.json so that \`lockgate apply --data-dir DIR\`
and local nodes find and trust it. Private keys are sealed with the master key from
LOCKGATE_MASTER_KEY or LOCKGATE_MASTER_KEY_FILE; without either, DIR/master.key is generated (0600).

Options:
  --data-dir DIR       where state lives (default ./lockgate-data, or $LOCKGATE_DATA_DIR)
  --listen HOST:PORT   address of the HTTPS port (default ${DEFAULT_LISTEN.host}:${DEFAULT_LISTEN.port}; port 0 picks one)`;

export function parseListen(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export const controlPlaneVerb: Verb = {
  summary: 'run the control plane (config store, CA, admin and node APIs)',
  usage: USAGE,
  async run(args) {
    const { values } = parseArgs({ args, options: { 'data-dir': { type: 'string' }, listen: { type: 'string' } } });
    const dataDir = values['data-dir'] ?? process.env.LOCKGATE_DATA_DIR ?? 'lockgate-data';
    const listen = values.listen === undefined ? DEFAULT_LISTEN : parseListen(values.listen);
    if (!listen) {
      process.stderr.write(`lockgate control-plane: --listen must be HOST:PORT, e.g. 127.0.0.1:${DEFAULT_LISTEN.port}\n`);
      return 1;
    }
    let cp: ControlPlane;
    try {
      cp = await ControlPlane.start({ dataDir, host: listen.host, port: listen.port, version: packageVersion() });
    } catch (err) {
      const e = err as Error & { code?: string };
      // Operator mistakes (a bad master key, a busy port) get one line; anything else is a crash with a stack.
      if (e.code && /^(key_|EADDRINUSE|EACCES|EADDRNOTAVAIL|ca_|envelope_|unwrap_|unknown_key)/.test(e.code)) {
        process.stderr.write(`lockgate control-plane: ${e.message}\n`);
        return 1;
      }
      throw err;
    }
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    await cp.close();
    return 0;
  },
};

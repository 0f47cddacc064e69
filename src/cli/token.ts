// `lockgate token create --service NAME [-n NS] [--ttl 1h] [--kind sidecar|gateway]`: a one-time join token for a node.
import { parseArgs } from 'node:util';
import { ADMIN_CLIENT_OPTIONS, ADMIN_CLIENT_USAGE, AdminClientError, adminRequest, describeError, resolveTarget } from './admin-client.ts';
import type { Verb } from './verb.ts';

const USAGE = `Usage: lockgate token create --service NAME [-n NAMESPACE] [--ttl DURATION] [--kind sidecar|gateway] [--json] [connection options]

Prints a one-time join token bound to one workload identity,
spiffe://<trust-domain>/ns/<NAMESPACE>/sa/<NAME>. A node presents it once, with a certificate request,
and receives its certificate; afterwards it renews with that certificate. The token also carries the
fingerprint of the control plane's root, so a node needs nothing else to trust the control plane.
Tokens expire (--ttl, 1h by default, at most 7d) and are stored only as hashes: keep the printed
token secret until it is used.

Options:
  --service NAME     the service (for a gateway: its own workload name)
  -n, --namespace NS namespace (default "default")
  --ttl DURATION     how long the token stays valid, e.g. 10m, 1h (default 1h)
  --kind KIND        sidecar (default) or gateway
  --json             print { token, id, expiresAt, spiffeId, kind } instead of the token alone

${ADMIN_CLIENT_USAGE}`;

export const tokenVerb: Verb = {
  summary: 'create a one-time join token for a sidecar or gateway',
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...ADMIN_CLIENT_OPTIONS,
        service: { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        ttl: { type: 'string' },
        kind: { type: 'string' },
        json: { type: 'boolean', default: false },
      },
    });
    if (positionals.length !== 1 || positionals[0] !== 'create' || values.service === undefined) {
      process.stderr.write(`${USAGE}\n`);
      return 1;
    }
    if (values.kind !== undefined && values.kind !== 'sidecar' && values.kind !== 'gateway') {
      process.stderr.write('lockgate token: --kind must be sidecar or gateway\n');
      return 1;
    }
    try {
      const target = await resolveTarget(values);
      const body = JSON.stringify({ service: values.service, namespace: values.namespace ?? 'default', kind: values.kind ?? 'sidecar', ...(values.ttl ? { ttl: values.ttl } : {}) });
      const reply = await adminRequest(target, 'POST', '/v1/tokens', { body, contentType: 'application/json' });
      if (reply.status !== 201) throw new AdminClientError(describeError(reply));
      const created = JSON.parse(reply.text) as { token: string; id: string; expiresAt: number; spiffeId: string; kind: string };
      if (values.json) process.stdout.write(`${JSON.stringify(created)}\n`);
      else {
        process.stdout.write(`${created.token}\n`);
        process.stderr.write(`one-time token for ${created.spiffeId} (${created.kind}), valid until ${new Date(created.expiresAt).toISOString()}\n`);
      }
      return 0;
    } catch (err) {
      if (!(err instanceof AdminClientError)) throw err;
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
  },
};

// `lockgate delete KIND NAME [-n NS]`: deletes one config resource (refused while others still reference it).
import { parseArgs } from 'node:util';
import { ADMIN_CLIENT_OPTIONS, ADMIN_CLIENT_USAGE, AdminClientError, adminRequest, describeError, REASON_OPTION, reasonUsage, reasonHeaders, resolveTarget } from './admin-client.ts';
import type { Verb } from './verb.ts';

export const deleteVerb: Verb = {
  summary: 'delete a config resource from the control plane',
  usage: `Usage: lockgate delete KIND NAME [-n NAMESPACE] [connection options]

Deletes one resource (namespace "default" unless -n says otherwise). The control plane refuses when
the config left would be invalid, e.g. an Api still uses the Backend; the problems are printed.

${reasonUsage(13)}

${ADMIN_CLIENT_USAGE}`,
  async run(args) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...ADMIN_CLIENT_OPTIONS, ...REASON_OPTION, namespace: { type: 'string', short: 'n' } } });
    if (positionals.length !== 2) {
      process.stderr.write('Usage: lockgate delete KIND NAME [-n NAMESPACE]\n');
      return 1;
    }
    const [kind, name] = positionals;
    const namespace = values.namespace ?? 'default';
    try {
      const target = await resolveTarget(values);
      const reply = await adminRequest(target, 'DELETE', `/v1/config/${encodeURIComponent(kind)}/${encodeURIComponent(namespace)}/${encodeURIComponent(name)}`, { headers: reasonHeaders(values.reason) });
      if (reply.status !== 200) throw new AdminClientError(describeError(reply));
      const done = JSON.parse(reply.text) as { kind: string; namespace: string; name: string };
      process.stdout.write(`${done.kind} ${done.namespace}/${done.name} deleted\n`);
      return 0;
    } catch (err) {
      if (!(err instanceof AdminClientError)) throw err;
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
  },
};

// `lockgate get [KIND [NAME]] [-n NS] [-o yaml|json]`: lists or shows config resources stored in the control plane.
import { parseArgs } from 'node:util';
import { ADMIN_CLIENT_OPTIONS, ADMIN_CLIENT_USAGE, AdminClientError, adminRequest, describeError, resolveTarget } from './admin-client.ts';
import type { Verb } from './verb.ts';

interface Item {
  kind: string;
  namespace: string;
  name: string;
  revision: number;
  document: string;
  resource: unknown;
}

function table(items: readonly Item[]): string {
  const rows = [['KIND', 'NAMESPACE', 'NAME', 'REVISION'], ...items.map((i) => [i.kind, i.namespace, i.name, String(i.revision)])];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((v, c) => v.padEnd(widths[c])).join('  ').trimEnd()).join('\n');
}

interface NodeRow {
  id: string;
  identity: { kind: string; spiffeId: string };
  connected: boolean;
  sentVersion?: number;
  ackedVersion?: number;
  lastAnswer?: { version: number; ok: boolean; reason?: string };
  certificateNotAfter?: number;
}

/** `lockgate get nodes`: every node's identity, the version it was sent and the one it accepted, and its last answer. */
function nodesTable(body: { policy: string; configVersion?: number; nodes: NodeRow[] }): string {
  const answer = (n: NodeRow): string => (n.lastAnswer === undefined ? '-' : n.lastAnswer.ok ? `ACK ${n.lastAnswer.version}` : `NACK ${n.lastAnswer.version}: ${(n.lastAnswer.reason ?? '').split('\n')[0]}`);
  const rows = [
    ['NODE', 'KIND', 'IDENTITY', 'CONNECTED', 'SENT', 'SERVING', 'LAST ANSWER', 'CERT EXPIRES'],
    ...body.nodes.map((n) => [
      n.id, n.identity.kind, n.identity.spiffeId, n.connected ? 'yes' : 'no', String(n.sentVersion ?? '-'), String(n.ackedVersion ?? '-'), answer(n),
      n.certificateNotAfter === undefined ? '-' : new Date(n.certificateNotAfter).toISOString(),
    ]),
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const lines = rows.map((r) => r.map((v, c) => v.padEnd(widths[c])).join('  ').trimEnd());
  return `${lines.join('\n')}\n\nconfig version ${body.configVersion ?? '-'}; version skew: ${body.policy}\n`;
}

function yamlOf(items: readonly Item[]): string {
  return items.map((i) => (i.document.endsWith('\n') ? i.document : `${i.document}\n`)).join('---\n');
}

export const getVerb: Verb = {
  summary: 'list or show config resources stored in the control plane',
  usage: `Usage: lockgate get [KIND [NAME]] [-n NAMESPACE] [-o yaml|json] [connection options]

\`lockgate get nodes\` lists the nodes (gateways, sidecars): identity, the config version each
was sent and serves, its last ACK or NACK (with the reason), certificate expiry.
Without KIND, every resource; with KIND (any case, singular or plural), the resources of that kind;
with NAME, one resource (namespace "default" unless -n says otherwise). Output is a table, the
stored YAML documents (-o yaml), or JSON (-o json). Exit 1 when a named resource does not exist.

${ADMIN_CLIENT_USAGE}`,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { ...ADMIN_CLIENT_OPTIONS, namespace: { type: 'string', short: 'n' }, output: { type: 'string', short: 'o' } },
    });
    const [kind, name, extra] = positionals;
    const output = values.output ?? 'table';
    if (extra !== undefined || !['table', 'yaml', 'json'].includes(output)) {
      process.stderr.write('Usage: lockgate get [KIND [NAME]] [-n NAMESPACE] [-o yaml|json]\n');
      return 1;
    }
    try {
      const target = await resolveTarget(values);
      if (kind === 'nodes' || kind === 'node') {
        const reply = await adminRequest(target, 'GET', '/v1/nodes');
        if (reply.status !== 200) throw new AdminClientError(describeError(reply));
        const body = JSON.parse(reply.text) as { policy: string; configVersion?: number; nodes: NodeRow[] };
        if (name !== undefined) body.nodes = body.nodes.filter((n) => n.id === name);
        process.stdout.write(output === 'table' ? nodesTable(body) : `${JSON.stringify(body, null, 2)}\n`);
        return 0;
      }
      let items: Item[];
      if (name !== undefined) {
        const path = `/v1/config/${encodeURIComponent(kind)}/${encodeURIComponent(values.namespace ?? 'default')}/${encodeURIComponent(name)}`;
        const reply = await adminRequest(target, 'GET', path);
        if (reply.status !== 200) throw new AdminClientError(describeError(reply));
        items = [JSON.parse(reply.text) as Item];
      } else {
        const query = new URLSearchParams();
        if (kind !== undefined) query.set('kind', kind);
        if (values.namespace !== undefined) query.set('namespace', values.namespace);
        const reply = await adminRequest(target, 'GET', `/v1/config${query.size > 0 ? `?${query}` : ''}`);
        if (reply.status !== 200) throw new AdminClientError(describeError(reply));
        items = (JSON.parse(reply.text) as { items: Item[] }).items;
      }
      if (output === 'json') {
        const resources = items.map((i) => i.resource);
        process.stdout.write(JSON.stringify(name !== undefined ? resources[0] : { items: resources }, null, 2) + '\n');
      } else if (output === 'yaml') process.stdout.write(yamlOf(items));
      else if (items.length === 0) process.stderr.write('no resources found\n'); // as kubectl: stdout stays parseable
      else process.stdout.write(`${table(items)}\n`);
      return 0;
    } catch (err) {
      if (!(err instanceof AdminClientError)) throw err;
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
  },
};

// `lockgate admin-token create|list|revoke`: admin-API tokens limited to a role, namespaces, and optionally APIs and services.
import { parseArgs } from 'node:util';
import { parseDuration } from '../lib/duration.ts';
import {
  ADMIN_CLIENT_OPTIONS, ADMIN_CLIENT_USAGE, AdminClientError, adminRequest, describeError, REASON_OPTION, reasonHeaders, reasonUsage, resolveTarget,
} from './admin-client.ts';
import type { Verb } from './verb.ts';

const ROLES = ['viewer', 'operator', 'approver', 'admin'];

const USAGE = `Usage: lockgate admin-token create --role ROLE -n NAMESPACE [-n NAMESPACE …] [--api NAME …] [--service NAME …]
                                 [--ttl 90d] [--description TEXT] [--json]
       lockgate admin-token list [--json]
       lockgate admin-token revoke ID

Tokens for the admin API, for automation (CI, scripts) rather than people (people use lockgate login).
Each is limited to one role in some namespaces ("*": all of them), and optionally to some APIs and
MeshServices there. The token is printed once, at creation; the control plane keeps only its hash.

Roles: viewer (read), operator (change config), approver (review access requests), admin (everything).

Options:
  --role ROLE          create: viewer, operator, approver or admin
  -n, --namespace NS   create: a namespace the token may act in (repeat; "*" for all)
  --api NAME           create: limit to this Api (repeat)
  --service NAME       create: limit to this MeshService (repeat)
  --ttl DURATION       create: how long it stays valid, e.g. 12h, 90d (default: the control plane's)
  --description TEXT   create: what it is for (shown by list)
  --json               print the JSON the API returned
${reasonUsage(19)}

${ADMIN_CLIENT_USAGE}`;

const OPTIONS = {
  ...ADMIN_CLIENT_OPTIONS,
  ...REASON_OPTION,
  role: { type: 'string' },
  namespace: { type: 'string', short: 'n', multiple: true },
  api: { type: 'string', multiple: true },
  service: { type: 'string', multiple: true },
  ttl: { type: 'string' },
  description: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

interface TokenView {
  id: string;
  token?: string;
  role: string;
  namespaces: string[];
  apis?: string[];
  services?: string[];
  description?: string;
  createdAt?: string;
  createdBy?: string;
  expiresAt?: string;
}

const list = (v: string[] | undefined): string => (v === undefined || v.length === 0 ? '*' : v.join(','));
const when = (v: string | number | undefined): string => (v === undefined ? 'never' : new Date(v).toISOString());

function table(tokens: TokenView[]): string {
  const head = ['ID', 'ROLE', 'NAMESPACES', 'APIS', 'SERVICES', 'EXPIRES', 'CREATED', 'BY', 'DESCRIPTION'];
  const rows = tokens.map((t) => [t.id, t.role, list(t.namespaces), list(t.apis), list(t.services), when(t.expiresAt), t.createdAt ?? '-', t.createdBy ?? '-', t.description ?? '']);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c].length)));
  return [head, ...rows].map((r) => r.map((v, c) => v.padEnd(widths[c])).join('  ').trimEnd()).join('\n');
}

export const adminTokenVerb: Verb = {
  summary: 'create, list and revoke admin-API tokens limited to a role and namespaces',
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({ args, allowPositionals: true, options: OPTIONS });
    const [action, id, ...extra] = positionals;
    const ok = extra.length === 0 && ((action === 'revoke' && id !== undefined) || ((action === 'create' || action === 'list') && id === undefined));
    if (!ok) {
      process.stderr.write(`${USAGE}\n`);
      return 1;
    }
    try {
      if (action === 'create') {
        if (values.role === undefined || !ROLES.includes(values.role)) throw new AdminClientError(`--role must be one of ${ROLES.join(', ')}`);
        if (values.namespace === undefined || values.namespace.length === 0) throw new AdminClientError('give at least one namespace with -n NAMESPACE ("*" for all)');
        if (values.ttl !== undefined && !parseDuration(values.ttl)) throw new AdminClientError(`--ttl ${JSON.stringify(values.ttl)} is not a duration (e.g. 12h, 90d)`);
      }
      const target = await resolveTarget(values);
      if (action === 'list') {
        const reply = await adminRequest(target, 'GET', '/v1/admin-tokens');
        if (reply.status !== 200) throw new AdminClientError(describeError(reply));
        const body = JSON.parse(reply.text) as { tokens: TokenView[] };
        process.stdout.write(values.json ? `${JSON.stringify(body, null, 2)}\n` : body.tokens.length === 0 ? 'no admin tokens\n' : `${table(body.tokens)}\n`);
        return 0;
      }
      if (action === 'revoke') {
        const reply = await adminRequest(target, 'DELETE', `/v1/admin-tokens/${encodeURIComponent(id!)}`, { headers: reasonHeaders(values.reason) });
        if (reply.status !== 200) throw new AdminClientError(describeError(reply));
        process.stdout.write(values.json ? `${reply.text.trim()}\n` : `admin token ${id} revoked\n`);
        return 0;
      }
      const body = JSON.stringify({
        role: values.role,
        namespaces: values.namespace,
        ...(values.api ? { apis: values.api } : {}),
        ...(values.service ? { services: values.service } : {}),
        ...(values.ttl ? { ttl: values.ttl } : {}),
        ...(values.description ? { description: values.description } : {}),
      });
      const reply = await adminRequest(target, 'POST', '/v1/admin-tokens', { body, contentType: 'application/json', headers: reasonHeaders(values.reason) });
      if (reply.status !== 201) throw new AdminClientError(describeError(reply));
      const created = JSON.parse(reply.text) as TokenView;
      if (values.json) process.stdout.write(`${JSON.stringify(created, null, 2)}\n`);
      else process.stdout.write(`${created.token}\n`);
      const scope = [`namespaces ${list(created.namespaces)}`, created.apis ? `apis ${list(created.apis)}` : '', created.services ? `services ${list(created.services)}` : ''].filter(Boolean).join(', ');
      process.stderr.write(`admin token ${created.id}: role ${created.role} in ${scope}, expires ${when(created.expiresAt)}\n`);
      process.stderr.write(`The token is shown once and cannot be shown again: store it now (revoke with lockgate admin-token revoke ${created.id}).\n`);
      return 0;
    } catch (err) {
      if (!(err instanceof AdminClientError)) throw err;
      process.stderr.write(`lockgate admin-token: ${err.message}\n`);
      return 1;
    }
  },
};

// `lockgate access request|approve|deny|revoke|list|show`: just-in-time access through the control plane. People act
// with their IdentityProvider token (--user-token or $LOCKGATE_USER_TOKEN); the admin token may list, show and revoke.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ADMIN_CLIENT_OPTIONS, ADMIN_CLIENT_USAGE, AdminClientError, adminRequest, describeError, resolveTarget, type AdminTarget } from './admin-client.ts';
import type { Verb } from './verb.ts';

const USAGE = `Usage: lockgate access request (--service NAME | --api NAME [--operation OP]) [-n NAMESPACE] --reason TEXT
                              [--duration 1h] [--method GET …] [--path /x/* …]
       lockgate access approve ID [--comment TEXT]
       lockgate access deny ID [--comment TEXT]
       lockgate access revoke ID [--reason TEXT]
       lockgate access list [--state pending|approved|denied|expired|revoked] [--json]
       lockgate access show ID [--json]

Just-in-time access. A person asks for access to a MeshService or an Api (for some methods and paths, for a
while); members of the approver groups the target's AccessPolicy names (spec.requests), or people with the
approver (or admin) role over the target (RoleBinding), approve or deny; nobody reviews their own request. Once approved, rules with \`grant: true\` let the requester in at every hop (within a
second) until the grant ends, exactly then; revoke ends it at once. Every step is in the audit trail.

People act with a token from one of the config's IdentityProviders: the one \`lockgate login\` keeps (used
when no token is given), or
  --user-token TOKEN   the person's bearer token (or $LOCKGATE_USER_TOKEN, or --user-token-file FILE)
The admin token (--token / $LOCKGATE_TOKEN) may list, show and revoke, not request or review.

Options:
  --service NAME       request: the MeshService ("name" with -n, or "namespace/name")
  --api NAME           request: the Api, optionally one --operation
  -n, --namespace NS   the target's namespace (default "default")
  --reason TEXT        request: why (required; shown to approvers); revoke: why it ends
  --duration D         request: how long, e.g. 30m, 2h (capped by the policy's maxDuration; default 1h or that)
  --method M           request: a method it covers (repeat; default any)
  --path P             request: a path or /prefix/* it covers (repeat; default any)
  --comment TEXT       approve, deny: a note kept with the review
  --state S            list: only requests in this state
  --json               print the JSON the API returned

Exit status: 0 done, 1 refused or failed (the reason is printed).

${ADMIN_CLIENT_USAGE}`;

const OPTIONS = {
  ...ADMIN_CLIENT_OPTIONS,
  'user-token': { type: 'string' },
  'user-token-file': { type: 'string' },
  service: { type: 'string' },
  api: { type: 'string' },
  operation: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  reason: { type: 'string' },
  duration: { type: 'string' },
  method: { type: 'string', multiple: true },
  path: { type: 'string', multiple: true },
  comment: { type: 'string' },
  state: { type: 'string' },
  json: { type: 'boolean' },
} as const;

interface RequestView {
  id: string;
  state: string;
  active: boolean;
  requester: { sub: string; email?: string };
  target: { service?: string; api?: string; operation?: string };
  methods: string[];
  paths: string[];
  reason: string;
  durationMs: number;
  requestedMs: number;
  policy: string;
  createdAt: string;
  reviewBy: string;
  startsAt?: string;
  endsAt?: string;
  endedAt?: string;
  endedBy?: string;
  approvals: number;
  settings: { minApprovals: number; approvers: string[] };
  reviews: Array<{ by: string; email?: string; decision: string; at: string; comment?: string; forced: boolean }>;
}

const minutes = (ms: number): string => (ms % 3_600_000 === 0 ? `${ms / 3_600_000}h` : `${Math.round(ms / 60_000)}m`);
const targetOf = (t: RequestView['target']): string => (t.service ? `service ${t.service}` : `api ${t.api}${t.operation ? ` operation ${t.operation}` : ''}`);

function describe(r: RequestView): string {
  const lines = [
    `${r.id}  ${r.state}${r.active ? ' (active)' : ''}`,
    `  requester  ${r.requester.email ?? r.requester.sub}`,
    `  target     ${targetOf(r.target)}${r.methods.length ? ` methods ${r.methods.join(',')}` : ''}${r.paths.length ? ` paths ${r.paths.join(',')}` : ''}`,
    `  reason     ${r.reason}`,
    `  duration   ${minutes(r.durationMs)}${r.durationMs < r.requestedMs ? ` (asked ${minutes(r.requestedMs)}, capped by ${r.policy})` : ''}`,
    `  reviewers  ${r.settings.approvers.join(', ')} (${r.approvals}/${r.settings.minApprovals} approvals)`,
  ];
  if (r.state === 'pending') lines.push(`  review by  ${r.reviewBy}`);
  if (r.startsAt) lines.push(`  access     ${r.startsAt} until ${r.endsAt}`);
  if (r.endedAt) lines.push(`  ended      ${r.endedAt} by ${r.endedBy}`);
  for (const v of r.reviews) lines.push(`  ${v.decision === 'approve' ? 'approved' : 'denied'} by ${v.email ?? v.by} at ${v.at}${v.forced ? ' (force approval)' : ''}${v.comment ? `: ${v.comment}` : ''}`);
  return lines.join('\n');
}

async function userToken(values: { 'user-token'?: string; 'user-token-file'?: string }): Promise<string | undefined> {
  if (values['user-token'] !== undefined) return values['user-token'];
  if (values['user-token-file'] !== undefined) return (await readFile(values['user-token-file'], 'utf8')).trim();
  return process.env.LOCKGATE_USER_TOKEN;
}

export const accessVerb: Verb = {
  summary: 'request, approve, deny, revoke and list just-in-time access',
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const { values, positionals } = parseArgs({ args, options: OPTIONS, allowPositionals: true });
    const [action, id, ...extra] = positionals;
    const needsId = ['approve', 'deny', 'revoke', 'show'];
    if (action === undefined || ![...needsId, 'request', 'list'].includes(action) || (needsId.includes(action) ? id === undefined || extra.length > 0 : id !== undefined)) {
      process.stderr.write(`${USAGE}\n`);
      return 1;
    }
    let target: AdminTarget;
    try {
      target = await resolveTarget({ ...values, token: values.token ?? process.env.LOCKGATE_TOKEN });
      const person = await userToken(values);
      if (person !== undefined) target = { ...target, token: person };
      if (target.token === undefined) throw new AdminClientError('no token: sign in with lockgate login, or give --user-token (a person) or --token (an administrator)');
      const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
        const reply = await adminRequest(target, method, path, body === undefined ? {} : { body: JSON.stringify(body), contentType: 'application/json' });
        if (reply.status >= 400) {
          const msg = describeError(reply);
          throw new AdminClientError(reply.status === 401 ? msg.replace(/: give an admin token.*$/, ': sign in with lockgate login, or give a person\'s token with --user-token (or $LOCKGATE_USER_TOKEN)') : msg);
        }
        return JSON.parse(reply.text);
      };
      const ns = values.namespace ?? 'default';
      const q = (n: string): string => (n.includes('/') ? n : `${ns}/${n}`);
      let out: unknown;
      switch (action) {
        case 'request': {
          if ((values.service === undefined) === (values.api === undefined)) throw new AdminClientError('name the target: --service NAME or --api NAME');
          if (values.reason === undefined) throw new AdminClientError('--reason is required: approvers need to know why');
          out = await call('POST', '/v1/access/requests', {
            target: values.service !== undefined ? { service: q(values.service) } : { api: q(values.api!), ...(values.operation ? { operation: values.operation } : {}) },
            reason: values.reason,
            ...(values.duration ? { duration: values.duration } : {}),
            ...(values.method ? { methods: values.method } : {}),
            ...(values.path ? { paths: values.path } : {}),
          });
          break;
        }
        case 'approve':
        case 'deny':
          out = await call('POST', `/v1/access/requests/${encodeURIComponent(id!)}/${action}`, values.comment ? { comment: values.comment } : {});
          break;
        case 'revoke':
          out = await call('POST', `/v1/access/requests/${encodeURIComponent(id!)}/revoke`, values.reason ? { reason: values.reason } : {});
          break;
        case 'show':
          out = await call('GET', `/v1/access/requests/${encodeURIComponent(id!)}`);
          break;
        default:
          out = await call('GET', `/v1/access/requests${values.state ? `?state=${encodeURIComponent(values.state)}` : ''}`);
      }
      if (values.json) process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
      else if (action === 'list') {
        const list = (out as { requests: RequestView[] }).requests;
        process.stdout.write(list.length === 0 ? 'no access requests\n' : `${list.map(describe).join('\n\n')}\n`);
      } else process.stdout.write(`${describe(out as RequestView)}\n`);
      return 0;
    } catch (err) {
      if (err instanceof AdminClientError) {
        process.stderr.write(`lockgate access: ${err.message}\n`);
        return 1;
      }
      throw err;
    }
  },
};

// `lockgate explain`: what the AccessPolicies of a config decide for a described request, and why, with the function that enforces them.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { canonicalPath } from '../lib/canonical-path.ts';
import { workloadId } from '../lib/spiffe-id.ts';
import { formatProblems } from '../model/load-config.ts';
import { qualifyRef } from '../model/validate.ts';
import { compileAccessPolicies, decideAccess, type AccessRequest } from '../policy/access-decision.ts';
import { loadCheckedConfig } from '../policy/load-checked.ts';
import { DEFAULT_PATH_OPTIONS } from '../proxy/runtime.ts';
import { claimsOfUser, userFromClaims } from '../proxy/assertion.ts';
import type { Verb } from './verb.ts';

const USAGE = `Usage: lockgate explain -c FILE|DIR [-c …] (--to SERVICE [--port N] | --api API [--operation OP])
                        [--user SUB] [--email EMAIL] [--groups a,b] [--claims JSON] [--token JWT]
                        [--from SERVICE|SPIFFE-ID] [--method M] [--path P] [--ip ADDRESS] [--at TIME] [--json]
       lockgate explain -c FILE|DIR --decision ID --log ACCESS-LOG [--json]

Prints what the config's AccessPolicies decide for the request described, and why: the deciding policy
and rule, each reason, and the decision id, from the same function the gateway and the sidecars run.

  -c, --config FILE|DIR   config to read (several allowed)
  --to SERVICE            the MeshService called ("inventory" or "namespace/inventory"), at its sidecar
  --port N                the service port called (default: its first port)
  --api API               or the gateway Api called ("orders" or "namespace/orders")
  --operation OP          the Api's operation (by name)
  --user SUB              the end user's subject; an email address also sets --email
  --email EMAIL           the end user's email
  --groups a,b            the end user's groups
  --claims JSON           more claims, as a JSON object
  --token JWT             take the claims from a token (decoded, NOT verified: only the gateway verifies)
  --from CALLER           the calling workload: a service name or a SPIFFE ID (default: none)
  --method M              default GET
  --path P                default /; canonicalized as the data plane does
  --ip ADDRESS            the client address, for sourceIp criteria
  --at TIME               decide at this time (ISO 8601), for time criteria; default now
  --decision ID           replay a logged decision: the request it saw (caller, user, method, path, address,
                          time), from the access log line with that id (denies and audit decisions are logged),
                          decided again with this config; prints both, and whether they differ
  --log FILE              the access log (JSON lines) that holds the decision
  --json                  print the decision as JSON

At a sidecar the end user is what the signed assertion carries: sub, email, groups, the original issuer (iss)
and session id (sid); other claims given are not used there.
Exit status: 0 allowed (audit mode included), 3 denied, 1 on a usage or config error.`;

/** An access log line of a decision (`"type":"access"`), as `lockgate explain --decision` reads it. */
interface LoggedDecision {
  time: string;
  requestId: string;
  decision: string;
  outcome: 'deny' | 'audit';
  policy: string;
  source: string;
  service: string;
  reasons: string[];
  input: { method?: string; path?: string; port?: number; api?: string; operation?: string; sourceIp?: string; user?: Record<string, unknown>; at?: number };
}

/** The decision's line in an access log (read line by line; the newest match wins), or what went wrong. */
async function findDecision(file: string, id: string): Promise<LoggedDecision | string> {
  let found: LoggedDecision | undefined;
  const needle = `"decision":${JSON.stringify(id)}`;
  try {
    const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line.includes(needle) || !line.includes('"type":"access"')) continue;
      try {
        const v = JSON.parse(line) as LoggedDecision;
        if (v.decision === id) found = v;
      } catch {
        // a torn or foreign line
      }
    }
  } catch (err) {
    return `cannot read ${file}: ${(err as Error).message}`;
  }
  if (found === undefined) return `no decision ${id} in ${file} (only denies and audit decisions are logged)`;
  if (found.input === undefined) return `decision ${id} was logged without its request (a Lockgate older than this one): give the request with --to/--api instead`;
  return found;
}

/** Reasons compared without the per-decision parts (ids differ by design). */
function sameReasons(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function fail(message: string): number {
  process.stderr.write(`lockgate explain: ${message}\n`);
  return 1;
}

/** A JWT's payload, decoded without verification. */
function tokenClaims(token: string): Record<string, unknown> | string {
  const parts = token.split('.');
  if (parts.length !== 3) return 'the token is not a JWS compact token (three dot-separated parts)';
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8')) as unknown;
    if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) return 'the token payload is not a JSON object';
    return claims as Record<string, unknown>;
  } catch {
    return 'the token payload is not base64url JSON';
  }
}

export const explainVerb: Verb = {
  summary: 'explain what the AccessPolicies decide for a request, with the reasons',
  usage: USAGE,
  async run(args) {
    let values;
    try {
      ({ values } = parseArgs({
        args,
        options: {
          config: { type: 'string', short: 'c', multiple: true },
          to: { type: 'string' },
          port: { type: 'string' },
          api: { type: 'string' },
          operation: { type: 'string' },
          user: { type: 'string' },
          email: { type: 'string' },
          groups: { type: 'string' },
          claims: { type: 'string' },
          token: { type: 'string' },
          from: { type: 'string' },
          method: { type: 'string', default: 'GET' },
          path: { type: 'string', default: '/' },
          ip: { type: 'string', default: '' },
          at: { type: 'string' },
          decision: { type: 'string' },
          log: { type: 'string' },
          json: { type: 'boolean', default: false },
        },
      }));
    } catch (err) {
      return fail(`${(err as Error).message}\n\n${USAGE}`);
    }
    if (!values.config?.length) return fail('give the config with -c FILE|DIR');
    let logged: LoggedDecision | undefined;
    if (values.decision !== undefined) {
      if (values.log === undefined) return fail('--decision needs --log FILE (the access log that holds it)');
      const found = await findDecision(values.log, values.decision);
      if (typeof found === 'string') return fail(found);
      logged = found;
      const i = found.input;
      if (i.api !== undefined) {
        values.api = i.api;
        values.operation = i.operation || undefined;
      } else if (found.service !== '') {
        values.to = found.service;
        values.port = String(i.port ?? '');
      } else return fail(`decision ${values.decision} names neither a service nor an Api`);
      values.from = found.source === '' ? undefined : found.source;
      values.method = i.method ?? 'GET';
      values.path = i.path ?? '/';
      values.ip = i.sourceIp ?? '';
      if (i.at !== undefined) values.at = new Date(i.at).toISOString();
      if (i.user !== undefined) {
        values.claims = JSON.stringify(i.user);
        values.user = values.email = values.groups = values.token = undefined;
      }
    }
    if ((values.to === undefined) === (values.api === undefined)) return fail('give exactly one of --to SERVICE (a sidecar) or --api API (the gateway)');
    if (values.operation !== undefined && values.api === undefined) return fail('--operation needs --api');

    let claims: Record<string, unknown> | null = null;
    if (values.token !== undefined) {
      const c = tokenClaims(values.token);
      if (typeof c === 'string') return fail(c);
      claims = c;
    }
    if (values.claims !== undefined) {
      let extra: unknown;
      try {
        extra = JSON.parse(values.claims);
      } catch {
        return fail('--claims must be a JSON object');
      }
      if (extra === null || typeof extra !== 'object' || Array.isArray(extra)) return fail('--claims must be a JSON object');
      claims = { ...claims, ...(extra as Record<string, unknown>) };
    }
    if (values.user !== undefined) {
      claims = { ...claims, sub: values.user };
      if (values.user.includes('@') && values.email === undefined) claims.email = values.user;
    }
    if (values.email !== undefined) claims = { ...claims, email: values.email };
    if (values.groups !== undefined) claims = { ...claims, groups: values.groups.split(',').map((g) => g.trim()).filter((g) => g !== '') };

    let now = Date.now();
    if (values.at !== undefined) {
      now = Date.parse(values.at);
      if (Number.isNaN(now)) return fail(`--at ${JSON.stringify(values.at)} is not a time (ISO 8601, e.g. 2026-11-27T09:30:00Z)`);
    }
    const cp = canonicalPath(values.path, DEFAULT_PATH_OPTIONS);
    if ('error' in cp) return fail(`--path ${JSON.stringify(values.path)}: ${cp.error}`);

    const { config, problems } = await loadCheckedConfig(values.config);
    if (!config) {
      process.stderr.write(`${formatProblems(problems)}\n`);
      return 1;
    }
    const trustDomain = config.mesh.spec.trustDomain;
    const qualify = (name: string) => qualifyRef(name, 'default');

    let sourceId = '';
    if (values.from !== undefined) {
      if (values.from.startsWith('spiffe://')) sourceId = values.from;
      else {
        const parts = qualify(values.from).split('/');
        try {
          if (parts.length !== 2) throw new RangeError('write a service as "name" or "namespace/name"');
          sourceId = workloadId(trustDomain, parts[0], parts[1]);
        } catch (err) {
          return fail(`--from ${JSON.stringify(values.from)}: ${(err as Error).message}`);
        }
      }
    }

    const req: AccessRequest = { sourceId, service: '', port: 0, method: values.method.toUpperCase(), path: cp.path, claims, sourceIp: values.ip, now };
    const notes: string[] = [];
    if (values.token !== undefined) notes.push('note: the token was decoded, not verified');
    if (values.to !== undefined && claims !== null) {
      // As enforced: a sidecar knows the end user from the signed assertion, which carries sub, email, groups, iss and sid.
      const user = userFromClaims(claims);
      const kept = user === null ? null : claimsOfUser(user);
      const dropped = Object.keys(claims).filter((k) => !['sub', 'email', 'groups', 'iss', 'sid', 'exp'].includes(k));
      req.claims = kept;
      if (kept === null) notes.push('note: without a sub there is no end user at a sidecar (the assertion needs one); the claims given were not used');
      else if (dropped.length > 0) notes.push(`note: at a sidecar only sub, email, groups, iss and sid reach the decision (the assertion carries those); not used: ${dropped.join(', ')}`);
    }
    if (values.to !== undefined) {
      req.service = qualify(values.to);
      const svc = config.meshServices.get(req.service);
      if (svc === undefined) return fail(`MeshService ${JSON.stringify(req.service)} is not in the config`);
      if (values.port !== undefined) {
        req.port = Number(values.port);
        if (!svc.spec.ports.some((p) => p.port === req.port)) return fail(`${req.service} has no port ${values.port} (${svc.spec.ports.map((p) => p.port).join(', ')})`);
      } else req.port = svc.spec.ports[0]?.port ?? 0;
    } else {
      const key = qualify(values.api ?? '');
      const api = config.apis.find((a) => `${a.metadata.namespace}/${a.metadata.name}` === key);
      if (api === undefined) return fail(`Api ${JSON.stringify(key)} is not in the config`);
      if (values.operation !== undefined && !api.spec.operations.some((o) => o.name === values.operation)) {
        return fail(`Api ${key} has no operation ${JSON.stringify(values.operation)} (${api.spec.operations.map((o) => o.name).join(', ') || 'none'})`);
      }
      req.api = key;
      req.operation = values.operation ?? '';
    }

    const compiled = compileAccessPolicies(config.accessPolicies ?? [], {
      defaultAccess: config.gateway.spec.mesh?.defaultAccess ?? config.mesh.spec.defaultAccess,
      trustDomain,
    }, config.accessGrants ?? []);
    const d = decideAccess(compiled, req);
    const verdict = !d.allow ? 'denied' : d.wouldDeny ? 'allowed (audit mode: would be denied)' : 'allowed';
    const outcome = !d.allow ? 'deny' : d.wouldDeny ? 'audit' : 'allow';
    const same = logged === undefined ? undefined : logged.outcome === outcome && logged.policy === d.policy && sameReasons(logged.reasons, d.reasons);
    if (values.json) {
      const replay = logged === undefined ? {} : { logged, same };
      process.stdout.write(`${JSON.stringify({ ...d, verdict, request: { ...req, now: new Date(now).toISOString() }, ...replay }, null, 2)}\n`);
    } else {
      const lines: string[] = [];
      if (logged !== undefined) {
        lines.push(`logged: ${logged.outcome} by ${logged.policy} (decision ${logged.decision}, request ${logged.requestId}, ${logged.time})`, ...logged.reasons.map((r) => `  - ${r}`), '');
        lines.push(`replayed with this config: ${verdict} by ${d.policy}${same ? ' (the same decision)' : ' (DIFFERENT from the logged one)'}`);
      } else lines.push(`${verdict} by ${d.policy} (decision ${d.id})`);
      lines.push(...d.reasons.map((r) => `  - ${r}`));
      lines.push(...notes);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return d.allow ? 0 : 3;
  },
};

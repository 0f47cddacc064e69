// `lockgate ca show | rotate start|status|finish [--force] | renew-intermediate`: the mesh CA through the admin API.
import { parseArgs } from 'node:util';
import { ADMIN_CLIENT_OPTIONS, ADMIN_CLIENT_USAGE, AdminClientError, adminRequest, describeError, REASON_OPTION, reasonUsage, reasonHeaders, resolveTarget, type AdminTarget } from './admin-client.ts';
import type { Verb } from './verb.ts';

const USAGE = `Usage: lockgate ca show [-o json] [connection options]
       lockgate ca rotate start|status|finish [--force] [-o json] [connection options]
       lockgate ca renew-intermediate [-o json] [connection options]

The mesh's certificate authority: a root, and an intermediate that signs every workload certificate.

  show                 trust domain, the roots in the trust bundle, the intermediate, the rotation phase
  rotate start         step 1 of a root rotation: a new root and intermediate; the trust bundle holds both
                       roots and is pushed to every node. New certificates come from the new root; nodes move
                       to it as they renew (at half their certificate's life).
  rotate status        the phase, the roots, and the nodes still holding a certificate from the old root
  rotate finish        step 3: the old root leaves the trust bundle. Refused while a node still holds a
                       certificate from it (it would be cut off); --force finishes anyway.
  renew-intermediate   a new intermediate under the same root (also done automatically before it expires)

Options:
  --force              rotate finish: cut off the nodes still on the old root
  -o, --output FORMAT  text (default) or json
${reasonUsage(19)}

${ADMIN_CLIENT_USAGE}`;

interface Root { fingerprint: string; notAfter: number; active: boolean }
interface Holder { id: string; spiffeId: string; root: string | null; certificateNotAfter: number | null; connected: boolean }
interface CaBody {
  trustDomain: string;
  bundleFingerprint: string;
  roots: Root[];
  intermediate: { fingerprint: string; notAfter: number; revoked: boolean };
  rotation: { phase: 'idle' | 'rotating'; startedAt?: number };
  certificateLifetimeMs: number;
  nodesOnOldRoot: Holder[];
  cutOff?: Holder[];
}

const iso = (ms: number): string => new Date(ms).toISOString();

function rootLines(body: CaBody): string[] {
  return body.roots.map((r) => `root          ${r.fingerprint}  ${r.active ? 'active' : 'old   '}  expires ${iso(r.notAfter)}`);
}

function holderLine(h: Holder): string {
  const cert = h.certificateNotAfter === null ? 'certificate unknown' : `certificate until ${iso(h.certificateNotAfter)}`;
  return `  ${h.id}  ${h.spiffeId}  ${h.connected ? 'connected' : 'disconnected'}  ${cert}${h.root === null ? '  (root not recorded)' : ''}`;
}

function showText(body: CaBody): string {
  const i = body.intermediate;
  const lines = [
    `trust domain  ${body.trustDomain}`,
    `bundle        ${body.roots.length} root${body.roots.length === 1 ? '' : 's'} (sha256 ${body.bundleFingerprint})`,
    ...rootLines(body),
    `intermediate  ${i.fingerprint}  expires ${iso(i.notAfter)}${i.revoked ? '  REVOKED' : ''}`,
    `rotation      ${body.rotation.phase}${body.rotation.startedAt !== undefined ? ` since ${iso(body.rotation.startedAt)}` : ''}`,
    `leaf lifetime ${body.certificateLifetimeMs / 1000} s`,
  ];
  return `${lines.join('\n')}\n`;
}

function statusText(body: CaBody): string {
  const lines = [`phase         ${body.rotation.phase}${body.rotation.startedAt !== undefined ? ` since ${iso(body.rotation.startedAt)}` : ''}`, ...rootLines(body)];
  const held = body.nodesOnOldRoot;
  if (body.rotation.phase === 'rotating') {
    if (held.length === 0) lines.push('no node holds a certificate from the old root: lockgate ca rotate finish is safe');
    else lines.push(`${held.length} node${held.length === 1 ? '' : 's'} still on the old root (they move at their next renewal):`, ...held.map(holderLine));
  } else if (held.length > 0) {
    lines.push(`${held.length} node${held.length === 1 ? '' : 's'} hold a certificate from a root no longer trusted (join them again):`, ...held.map(holderLine));
  }
  return `${lines.join('\n')}\n`;
}

async function call(target: AdminTarget, method: string, path: string, reason?: string): Promise<CaBody> {
  const reply = await adminRequest(target, method, path, { headers: reasonHeaders(reason) });
  if (reply.status !== 200) throw new AdminClientError(describeError(reply));
  return JSON.parse(reply.text) as CaBody;
}

export const caVerb: Verb = {
  summary: 'show the mesh CA, rotate its root, renew its intermediate',
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: { ...ADMIN_CLIENT_OPTIONS, ...REASON_OPTION, force: { type: 'boolean', default: false }, output: { type: 'string', short: 'o', default: 'text' } },
    });
    const [cmd, sub, ...extra] = positionals;
    const known = extra.length === 0 && (
      (cmd === 'show' && sub === undefined) || (cmd === 'renew-intermediate' && sub === undefined) ||
      (cmd === 'rotate' && (sub === 'start' || sub === 'status' || sub === 'finish')));
    if (!known || (values.output !== 'text' && values.output !== 'json') || (values.force && !(cmd === 'rotate' && sub === 'finish'))) {
      process.stderr.write(`${USAGE}\n`);
      return 1;
    }
    const json = values.output === 'json';
    try {
      const target = await resolveTarget(values);
      let body: CaBody;
      let text: string;
      if (cmd === 'show' || (cmd === 'rotate' && sub === 'status')) {
        body = await call(target, 'GET', '/v1/ca');
        text = cmd === 'show' ? showText(body) : statusText(body);
      } else if (cmd === 'renew-intermediate') {
        body = await call(target, 'POST', '/v1/ca/intermediate/renew', values.reason);
        text = `new intermediate ${body.intermediate.fingerprint}, expires ${iso(body.intermediate.notAfter)}\n`;
      } else if (sub === 'start') {
        body = await call(target, 'POST', '/v1/ca/rotate/start', values.reason);
        const active = body.roots.find((r) => r.active)!;
        text = `root rotation started: new root ${active.fingerprint}; every node now receives a bundle with both roots.\n` +
          'Nodes move to the new root at their next renewal; when lockgate ca rotate status lists none on the old root, run lockgate ca rotate finish.\n' +
          statusText(body);
      } else {
        body = await call(target, 'POST', `/v1/ca/rotate/finish${values.force ? '?force=true' : ''}`, values.reason);
        text = `root rotation finished: the trust bundle holds only ${body.roots[0].fingerprint}\n`;
        if (body.cutOff && body.cutOff.length > 0) text += `cut off (they must join again):\n${body.cutOff.map(holderLine).join('\n')}\n`;
      }
      process.stdout.write(json ? `${JSON.stringify(body, null, 2)}\n` : text);
      return 0;
    } catch (err) {
      if (!(err instanceof AdminClientError)) throw err;
      process.stderr.write(`lockgate ca: ${err.message}\n`);
      return 1;
    }
  },
};

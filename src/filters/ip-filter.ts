// ip-filter: allows or forbids callers by IP address, CIDR block or range (node:net BlockList does the matching).
import net from 'node:net';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { PolicyError, errorResponse } from '../proxy/policy-context.ts';

function family(ip: string): 'ipv4' | 'ipv6' {
  const f = net.isIP(ip);
  if (f === 0) throw new Error(`${JSON.stringify(ip)} is not an IP address`);
  return f === 4 ? 'ipv4' : 'ipv6';
}

/** `::ffff:1.2.3.4` (a v4 client on a dual-stack socket) is checked as 1.2.3.4. */
function unmapped(ip: string): string {
  return ip.startsWith('::ffff:') && net.isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}

export const ipFilterPolicy: PolicyFactory = (attrs, env) => {
  const allow = attrs.action === 'allow';
  const list = new net.BlockList();
  for (const a of (attrs.addresses ?? []) as string[]) {
    const slash = a.indexOf('/');
    if (slash === -1) list.addAddress(a, family(a));
    else {
      const base = a.slice(0, slash);
      const bits = Number(a.slice(slash + 1));
      const fam = family(base);
      if (!Number.isInteger(bits) || bits < 0 || bits > (fam === 'ipv4' ? 32 : 128)) throw new Error(`${JSON.stringify(a)} is not a CIDR block`);
      list.addSubnet(base, bits, fam);
    }
  }
  for (const r of (attrs.addressRanges ?? []) as Array<{ from: string; to: string }>) {
    const fam = family(r.from);
    if (family(r.to) !== fam) throw new Error(`range ${r.from} – ${r.to} mixes IPv4 and IPv6`);
    list.addRange(r.from, r.to, fam);
  }
  return {
    name: 'ip-filter',
    path: env.entry.path,
    run(pc) {
      const ip = unmapped(pc.ex.clientIp);
      const fam = net.isIP(ip);
      if (fam === 0) {
        throw new PolicyError('ip-filter', 'FailedToParseCallerIP', 'Failed to establish IP address for the caller. Access denied.', errorResponse(403, 'Failed to establish IP address for the caller. Access denied.'));
      }
      const listed = list.check(ip, fam === 4 ? 'ipv4' : 'ipv6');
      if (allow && !listed) {
        const msg = `Caller IP address ${ip} is not allowed. Access denied.`;
        throw new PolicyError('ip-filter', 'CallerIpNotAllowed', msg, errorResponse(403, msg));
      }
      if (!allow && listed) {
        const msg = 'Caller IP address is blocked. Access denied.';
        throw new PolicyError('ip-filter', 'CallerIpBlocked', msg, errorResponse(403, msg));
      }
    },
  };
};

// A `lookup` for upstream sockets that caches answers for their DNS TTL, so hostnames are re-resolved as records change.
import dns from 'node:dns';
import net from 'node:net';

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

interface Entry {
  addresses: dns.LookupAddress[];
  expires: number;
}

export interface ResolvedRecords {
  addresses: dns.LookupAddress[];
  ttlSeconds: number;
}

/** DNS with TTLs: A records, else AAAA. Throws when there are none (the caller falls back to the system resolver). */
async function resolveWithTtl(hostname: string): Promise<ResolvedRecords> {
  const v4 = await dns.promises.resolve4(hostname, { ttl: true }).catch(() => []);
  const v6 = v4.length ? [] : await dns.promises.resolve6(hostname, { ttl: true }).catch(() => []);
  const records = v4.length ? v4.map((r) => ({ ...r, family: 4 })) : v6.map((r) => ({ ...r, family: 6 }));
  if (records.length === 0) throw new Error(`no records for ${hostname}`);
  return { addresses: records.map((r) => ({ address: r.address, family: r.family })), ttlSeconds: Math.min(...records.map((r) => r.ttl)) };
}

/**
 * Creates a lookup function with its own cache; `fallbackTtlMs` is used when the resolver gives no TTL
 * (e.g. /etc/hosts). `resolve` and `now` are injectable for tests.
 */
export function createCachedLookup(fallbackTtlMs: number, now: () => number = Date.now, resolve: (host: string) => Promise<ResolvedRecords> = resolveWithTtl) {
  const cache = new Map<string, Entry>();
  let rr = 0;
  function answer(entry: Entry, options: dns.LookupOptions, cb: LookupCallback): void {
    const list = entry.addresses;
    if (options.all) return cb(null, list);
    const a = list[rr++ % list.length];
    cb(null, a.address, a.family);
  }
  function lookup(hostname: string, options: dns.LookupOptions | number | LookupCallback, callback?: LookupCallback): void {
    const cb = (typeof options === 'function' ? options : callback) as LookupCallback;
    const opts: dns.LookupOptions = typeof options === 'object' ? options : {};
    if (net.isIP(hostname)) {
      const family = net.isIP(hostname);
      if (opts.all) return cb(null, [{ address: hostname, family }]);
      return cb(null, hostname, family);
    }
    const hit = cache.get(hostname);
    if (hit && hit.expires > now()) return answer(hit, opts, cb);
    resolve(hostname).then(
      (r) => {
        const entry = { addresses: r.addresses, expires: now() + Math.max(1, r.ttlSeconds) * 1000 };
        cache.set(hostname, entry);
        answer(entry, opts, cb);
      },
      () => {
        // Fall back to the system resolver (/etc/hosts, mDNS…) with the fallback TTL.
        dns.lookup(hostname, { all: true }, (err, addresses) => {
          if (err) return cb(err, '');
          const entry = { addresses, expires: now() + fallbackTtlMs };
          cache.set(hostname, entry);
          answer(entry, opts, cb);
        });
      },
    );
  }
  return lookup;
}

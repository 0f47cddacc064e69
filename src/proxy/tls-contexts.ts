// TLS server contexts chosen by SNI, rebuilt from files on reload so certificates change without a restart.
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { ListenerTls } from '../model/types.ts';

export interface SniTable {
  default: tls.SecureContext;
  exact: Map<string, tls.SecureContext>;
  /** `*.example.com` stored as `.example.com`. */
  wildcard: Map<string, tls.SecureContext>;
}

/** Reads every certificate now; throws with the file name when one cannot be loaded (callers keep the old table). */
export function buildSniTable(cfg: ListenerTls, alpn: string[]): SniTable {
  let def: tls.SecureContext | undefined;
  const exact = new Map<string, tls.SecureContext>();
  const wildcard = new Map<string, tls.SecureContext>();
  for (const c of cfg.certificates) {
    let ctx: tls.SecureContext;
    try {
      ctx = tls.createSecureContext({
        cert: readFileSync(c.certFile),
        key: readFileSync(c.keyFile),
        minVersion: cfg.minVersion,
      });
    } catch (err) {
      throw new Error(`cannot load certificate ${c.certFile}: ${(err as Error).message}`, { cause: err });
    }
    void alpn;
    if (c.hostnames.length === 0) def ??= ctx;
    for (const h of c.hostnames) {
      const name = h.toLowerCase();
      if (name.startsWith('*.')) wildcard.set(name.slice(1), ctx);
      else exact.set(name, ctx);
    }
    def ??= ctx;
  }
  if (!def) throw new Error('a TLS listener needs at least one certificate');
  return { default: def, exact, wildcard };
}

export function selectContext(table: SniTable, servername: string | undefined): tls.SecureContext {
  if (!servername) return table.default;
  const name = servername.toLowerCase();
  const hit = table.exact.get(name);
  if (hit) return hit;
  const dot = name.indexOf('.');
  if (dot > 0) {
    const w = table.wildcard.get(name.slice(dot));
    if (w) return w;
  }
  return table.default;
}

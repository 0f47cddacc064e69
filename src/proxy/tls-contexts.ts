// TLS server contexts chosen by SNI, rebuilt from files on reload so certificates change without a restart.
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { ListenerTls } from '../model/types.ts';

export interface SniTable {
  default: tls.SecureContext;
  /** The default certificate's PEM, for clients that send no SNI (the server's own context). */
  defaultPem: { cert: Buffer; key: Buffer };
  exact: Map<string, tls.SecureContext>;
  /** `*.example.com` stored as `.example.com`. */
  wildcard: Map<string, tls.SecureContext>;
}

/**
 * Reads every certificate now; throws with the file name when one cannot be loaded (callers keep the
 * old table). The default is the certificate listed without hostnames, else the first one.
 */
export function buildSniTable(cfg: ListenerTls): SniTable {
  let def: { ctx: tls.SecureContext; pem: { cert: Buffer; key: Buffer } } | undefined;
  let first: typeof def;
  const exact = new Map<string, tls.SecureContext>();
  const wildcard = new Map<string, tls.SecureContext>();
  for (const c of cfg.certificates) {
    let ctx: tls.SecureContext;
    let pem: { cert: Buffer; key: Buffer };
    try {
      pem = { cert: readFileSync(c.certFile), key: readFileSync(c.keyFile) };
      ctx = tls.createSecureContext({ ...pem, minVersion: cfg.minVersion });
    } catch (err) {
      throw new Error(`cannot load certificate ${c.certFile}: ${(err as Error).message}`, { cause: err });
    }
    first ??= { ctx, pem };
    if (c.hostnames.length === 0) def ??= { ctx, pem };
    for (const h of c.hostnames) {
      const name = h.toLowerCase();
      if (name.startsWith('*.')) wildcard.set(name.slice(1), ctx);
      else exact.set(name, ctx);
    }
  }
  def ??= first;
  if (!def) throw new Error('a TLS listener needs at least one certificate');
  return { default: def.ctx, defaultPem: def.pem, exact, wildcard };
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

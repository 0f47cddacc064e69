// TLS server material of one listener: SNI contexts, the client CA, a fingerprint of the files and the earliest expiry, rebuilt on reload.
import tls from 'node:tls';
import { createHash, X509Certificate } from 'node:crypto';
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

/** Everything a TLS listener loads from its files, read in one go so a reload either takes all of it or none. */
export interface ListenerTlsMaterial {
  table: SniTable;
  /** The PEM bundle client certificates must chain to; undefined when the listener does not verify them. */
  clientCa: Buffer | undefined;
  /** Changes when any file's contents, the generation or the client-certificate mode change: equal means nothing to reload. */
  fingerprint: string;
  /** Changes when the client CA bundle changes (cached sessions must then be dropped). */
  caFingerprint: string;
  /** The earliest notAfter of the served certificates (ms since the epoch): no session ticket may live past it. */
  notAfter: number;
}

function sha256(parts: ReadonlyArray<Buffer | string>): string {
  const h = createHash('sha256');
  for (const p of parts) {
    h.update(String(typeof p === 'string' ? p.length : p.byteLength));
    h.update(':');
    h.update(p);
  }
  return h.digest('hex');
}

/** notAfter of the first certificate in a PEM chain (the leaf); Infinity when it cannot be read (tls reports that). */
function leafNotAfter(pem: Buffer): number {
  try {
    return new X509Certificate(pem).validToDate.getTime();
  } catch {
    return Infinity;
  }
}

/**
 * Reads every certificate, and the client CA when certificates are required, now; throws with the file name
 * when one cannot be loaded (callers keep the old material). The default certificate is the one listed without
 * hostnames, else the first one. When the files and settings hash to `previous`'s fingerprint, returns `previous`
 * without parsing keys again (a config apply that changes nothing costs only the file reads).
 */
export function loadListenerTls(cfg: ListenerTls, previous?: ListenerTlsMaterial): ListenerTlsMaterial {
  let clientCa: Buffer | undefined;
  // Only a `require` listener verifies chains itself; `request` leaves that to validate-client-certificate.
  if (cfg.clientCertificate === 'require') {
    if (cfg.clientCaFile === undefined) throw new Error('clientCertificate: require needs clientCaFile');
    try {
      clientCa = readFileSync(cfg.clientCaFile);
    } catch (err) {
      throw new Error(`cannot load client CA ${cfg.clientCaFile}: ${(err as Error).message}`, { cause: err });
    }
  }
  const pems = cfg.certificates.map((c) => {
    try {
      return { cert: readFileSync(c.certFile), key: readFileSync(c.keyFile) };
    } catch (err) {
      throw new Error(`cannot load certificate ${c.certFile}: ${(err as Error).message}`, { cause: err });
    }
  });
  const caFingerprint = sha256([clientCa ?? '']);
  const parts: Array<Buffer | string> = [cfg.generation ?? '', cfg.clientCertificate, cfg.minVersion, caFingerprint];
  cfg.certificates.forEach((c, i) => parts.push(c.hostnames.join(','), pems[i].cert, pems[i].key));
  const fingerprint = sha256(parts);
  if (previous !== undefined && previous.fingerprint === fingerprint) return previous;

  let def: { ctx: tls.SecureContext; pem: { cert: Buffer; key: Buffer } } | undefined;
  let first: typeof def;
  const exact = new Map<string, tls.SecureContext>();
  const wildcard = new Map<string, tls.SecureContext>();
  let notAfter = Infinity;
  cfg.certificates.forEach((c, i) => {
    const pem = pems[i];
    let ctx: tls.SecureContext;
    try {
      // The client CA goes into every context: after SNI picks one, OpenSSL verifies the client with *its* store,
      // and a context without `ca` would trust the public roots.
      ctx = tls.createSecureContext({ ...pem, minVersion: cfg.minVersion, ...(clientCa ? { ca: clientCa } : {}) });
    } catch (err) {
      throw new Error(`cannot load certificate ${c.certFile}: ${(err as Error).message}`, { cause: err });
    }
    notAfter = Math.min(notAfter, leafNotAfter(pem.cert));
    first ??= { ctx, pem };
    if (c.hostnames.length === 0) def ??= { ctx, pem };
    for (const h of c.hostnames) {
      const name = h.toLowerCase();
      if (name.startsWith('*.')) wildcard.set(name.slice(1), ctx);
      else exact.set(name, ctx);
    }
  });
  def ??= first;
  if (!def) throw new Error('a TLS listener needs at least one certificate');
  return { table: { default: def.ctx, defaultPem: def.pem, exact, wildcard }, clientCa, fingerprint, caFingerprint, notAfter };
}

/** The SNI table alone (listeners that do not verify client certificates). */
export function buildSniTable(cfg: ListenerTls): SniTable {
  return loadListenerTls(cfg).table;
}

/** Longest a TLS session may be resumed, in seconds (Node's default). */
export const MAX_SESSION_SECONDS = 300;

/**
 * The session timeout for tickets issued from now on, and when to re-key so that none outlives `notAfter`:
 * half the remaining lifetime (≤ MAX_SESSION_SECONDS); re-keying at `notAfter − timeout` invalidates every ticket
 * issued before, and the next timeout is half again. `rekeyInMs` is null when the certificate has no horizon
 * (unreadable) or is too close to expiry for another step (a one-second timeout is then the floor).
 */
export function sessionHorizon(notAfter: number, now: number): { timeoutSeconds: number; rekeyInMs: number | null } {
  if (!Number.isFinite(notAfter)) return { timeoutSeconds: MAX_SESSION_SECONDS, rekeyInMs: null };
  const remaining = notAfter - now;
  const timeoutSeconds = Math.max(1, Math.min(MAX_SESSION_SECONDS, Math.floor(remaining / 2000)));
  const rekeyAt = notAfter - timeoutSeconds * 1000;
  return { timeoutSeconds, rekeyInMs: remaining < 2000 ? null : Math.max(0, rekeyAt - now) };
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

// One hop of the bare two-hop mesh (the ceiling of a Node sidecar pair): bare-dispatch with mTLS on one side, no routing or logging.
// Hop A (caller side): node bench/bare-mesh.ts --port PA --upstream https://127.0.0.1:PB --upstream-cert a-cert.pem --upstream-key a-key.pem --upstream-ca root.pem --upstream-spiffe spiffe://…/sa/b
// Hop B (callee side): node bench/bare-mesh.ts --port PB --tls-cert b-cert.pem --tls-key b-key.pem --client-ca root.pem --client-trust-domain lockgate.local --upstream http://127.0.0.1:APP
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';

import { HOP_BY_HOP, ProxyHandler } from './bare-dispatch.ts';

/** The URI SANs of a peer certificate, from Node's `subjectaltname` text (`URI:spiffe://…, DNS:…`). */
export function uriSans(cert: PeerCertificate): string[] {
  const text = cert.subjectaltname ?? '';
  return text.split(', ').filter((n) => n.startsWith('URI:')).map((n) => n.slice(4));
}

/**
 * Replaces the host-name check: the server must present exactly one URI SAN, equal to `expected`.
 * Node's default check would reject a certificate with no DNS SAN, and a sidecar checks identities, not names.
 */
export function spiffeServerCheck(expected: string): (host: string, cert: PeerCertificate) => Error | undefined {
  return (_host, cert) => {
    const uris = uriSans(cert);
    if (uris.length === 1 && uris[0] === expected) return undefined;
    return new Error(`peer identity ${uris.join(',') || 'none'} is not ${expected}`);
  };
}

export interface HopOptions {
  port: number;
  upstream: string;
  /** Serve mTLS: our chain and key, the CA that client certificates must chain to, and the trust domain callers must be in. */
  serverTls?: { cert: string; key: string; clientCa: string; trustDomain: string };
  /** Call the upstream over mTLS: our chain and key, the CA, and the SPIFFE ID the upstream must present. */
  clientTls?: { cert: string; key: string; ca: string; spiffeId: string };
}

export function startBareHop(options: HopOptions): Promise<{ close(): Promise<void> }> {
  const client = options.clientTls;
  const pool = new Pool(options.upstream, {
    connections: 128,
    pipelining: 1,
    connect: client === undefined
      ? undefined
      : { cert: client.cert, key: client.key, ca: client.ca, rejectUnauthorized: true, checkServerIdentity: spiffeServerCheck(client.spiffeId) },
  });

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const raw = req.rawHeaders;
    const headers: string[] = [];
    let hasBody = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toLowerCase();
      if (name === 'content-length' || name === 'transfer-encoding') hasBody = true;
      if (HOP_BY_HOP.has(name)) continue;
      headers.push(raw[i], raw[i + 1]);
    }
    const handler = new ProxyHandler(res);
    res.once('close', () => {
      if (!res.writableFinished) handler.clientClosed();
    });
    pool.dispatch({ path: req.url ?? '/', method: req.method as Dispatcher.HttpMethod, headers, body: hasBody ? req : null }, handler);
  };

  const tls = options.serverTls;
  const server = tls === undefined
    ? createServer(handle)
    : createTlsServer({ cert: tls.cert, key: tls.key, ca: tls.clientCa, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, handle);
  if (tls !== undefined) {
    // OpenSSL has checked the chain; the caller must also be a workload of our trust domain (once per connection,
    // as a sidecar extracts the caller's identity for authorization).
    const prefix = `spiffe://${tls.trustDomain}/`;
    server.on('secureConnection', (socket: TLSSocket) => {
      const uris = uriSans(socket.getPeerCertificate());
      if (uris.length !== 1 || !uris[0].startsWith(prefix)) socket.destroy();
    });
  }
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => {
      resolve({
        close: async () => {
          server.closeAllConnections();
          await new Promise<void>((done) => server.close(() => done()));
          await pool.close();
        },
      });
    });
  });
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      upstream: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      'client-ca': { type: 'string' },
      'client-trust-domain': { type: 'string', default: 'lockgate.local' },
      'upstream-cert': { type: 'string' },
      'upstream-key': { type: 'string' },
      'upstream-ca': { type: 'string' },
      'upstream-spiffe': { type: 'string' },
    },
  });
  const read = (file: string | undefined): string => readFileSync(file ?? '', 'utf8');
  const options: HopOptions = { port: Number(values.port), upstream: values.upstream ?? 'http://127.0.0.1:8000' };
  if (values['tls-cert'] !== undefined) {
    options.serverTls = { cert: read(values['tls-cert']), key: read(values['tls-key']), clientCa: read(values['client-ca']), trustDomain: values['client-trust-domain'] ?? '' };
  }
  if (values['upstream-cert'] !== undefined) {
    options.clientTls = { cert: read(values['upstream-cert']), key: read(values['upstream-key']), ca: read(values['upstream-ca']), spiffeId: values['upstream-spiffe'] ?? '' };
  }
  const hop = await startBareHop(options);
  process.once('SIGTERM', () => {
    hop.close().then(() => process.exit(0), () => process.exit(1));
  });
}

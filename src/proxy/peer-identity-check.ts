// A TLS peer's workload identity: the one SPIFFE URI SAN of its X.509-SVID, read with node:crypto and checked by the SPIFFE rules.
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { parseSpiffeId } from '../lib/spiffe-id.ts';

/**
 * Where a listener stores the verified peer's SPIFFE ID on the TLS socket, once per connection; the request path
 * copies it into Exchange.peerId. A symbol, so nothing a client sends can name it.
 */
export const PEER_ID: unique symbol = Symbol('lockgate.peerId');

/** The peer SPIFFE ID a request's connection carries ('' for plaintext, or a TLS connection without a verified one). */
export function peerIdOf(socket: unknown): string {
  return (socket as { [PEER_ID]?: string } | null | undefined)?.[PEER_ID] ?? '';
}

/**
 * Node's `subjectAltName` text as [type, value] pairs, or null when it does not parse. Node writes
 * `TYPE:value, TYPE:value`, and puts a value in JSON string quotes whenever it contains a comma, quote,
 * backslash, control or non-ASCII character (so `URI:"spiffe://td/a\u002cb"` is one name, not two).
 */
export function parseSubjectAltNames(text: string): Array<[string, string]> | null {
  const out: Array<[string, string]> = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon === -1) return null;
    const type = text.slice(i, colon);
    if (!/^[A-Za-z][A-Za-z ]*$/.test(type)) return null;
    let value: string;
    let next: number;
    if (text.charCodeAt(colon + 1) === 0x22) {
      // A JSON string: find its unescaped closing quote.
      let j = colon + 2;
      while (j < text.length && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
      if (j >= text.length) return null;
      try {
        value = JSON.parse(text.slice(colon + 1, j + 1)) as string;
      } catch {
        return null;
      }
      next = j + 1;
    } else {
      const sep = text.indexOf(', ', colon + 1);
      next = sep === -1 ? text.length : sep;
      value = text.slice(colon + 1, next);
      // Node would have quoted these: text with them unquoted is not Node's format (fail closed).
      if (value.includes(',') || value.includes('"')) return null;
    }
    out.push([type, value]);
    if (next === text.length) break;
    if (text.slice(next, next + 2) !== ', ' || next + 2 === text.length) return null;
    i = next + 2;
  }
  return out;
}

/**
 * The SPIFFE ID of a leaf certificate, or why it is not an acceptable X.509-SVID: exactly one URI SAN (any
 * other URI makes it ambiguous), a valid SPIFFE ID with a path (src/lib/spiffe-id.ts rules), not a CA. Chain, validity and EKU are OpenSSL's
 * checks during the handshake; this runs after them.
 */
export function spiffeIdOf(cert: X509Certificate): { id: string } | { error: string } {
  if (cert.ca) return { error: 'the peer certificate is a CA certificate' };
  const text = cert.subjectAltName;
  if (text === undefined || text === '') return { error: 'the peer certificate has no URI SAN' };
  const names = parseSubjectAltNames(text);
  if (names === null) return { error: 'the peer certificate has an unreadable subjectAltName' };
  let id: string | undefined;
  for (const [type, value] of names) {
    if (type !== 'URI') continue;
    if (id !== undefined) return { error: 'the peer certificate has more than one URI SAN' };
    id = value;
  }
  if (id === undefined) return { error: 'the peer certificate has no URI SAN' };
  const parsed = parseSpiffeId(id);
  // A leaf names a workload: the bare trust domain (`spiffe://td`) is a signing certificate's ID, never a peer's.
  const problem = 'error' in parsed ? parsed.error : parsed.path === '' ? 'a workload ID needs a path' : undefined;
  if (problem !== undefined) return { error: `the peer certificate's URI SAN ${JSON.stringify(id.slice(0, 200))} is not a workload SPIFFE ID: ${problem}` };
  return { id };
}

/** An Error with the reason, as `checkServerIdentity` returns it (tls puts it on the socket and fails the connection). */
function identityError(message: string, cert: PeerCertificate): Error {
  return Object.assign(new Error(message), { code: 'ERR_TLS_CERT_ALTNAME_INVALID', reason: message, cert });
}

/**
 * A tls `checkServerIdentity` that ignores the hostname and accepts only a server whose certificate's one
 * SPIFFE ID is in `expected` (Node's default rejects URI-only SANs, and a mesh peer is named by identity,
 * not by address). It runs only after OpenSSL verified the chain.
 */
export function checkSpiffeServerIdentity(expected: readonly string[]): (host: string, cert: PeerCertificate) => Error | undefined {
  const allowed = new Set(expected);
  return (_host, cert) => {
    if (cert?.raw === undefined) return identityError('the server sent no certificate', cert);
    let parsed: X509Certificate;
    try {
      parsed = new X509Certificate(cert.raw);
    } catch (err) {
      return identityError(`the server certificate cannot be parsed: ${(err as Error).message}`, cert);
    }
    const r = spiffeIdOf(parsed);
    if ('error' in r) return identityError(r.error.replace('peer', 'server'), cert);
    if (!allowed.has(r.id)) return identityError(`the server's SPIFFE ID ${r.id} is not one of ${[...allowed].join(', ')}`, cert);
    return undefined;
  };
}

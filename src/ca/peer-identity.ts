// A peer's SPIFFE identity from its certificate (X509-SVID rules), the checkServerIdentity the mesh's TLS clients use,
// and a full SVID verification against a trust bundle at a given time (tests and `lockgate check`).
import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { parseSpiffeId } from '../lib/spiffe-id.ts';
import { CaError } from './ca-error.ts';
import { pemBlocks, x509 } from './ca-crypto.ts';

const EKU_SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const EKU_CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
/** Leaf, intermediate(s), root: deeper chains are refused (ours are leaf → intermediate → root). */
const MAX_CHAIN_DEPTH = 4;

/**
 * The URI entries of node:crypto's subjectAltName text, or undefined when the text does not follow Node's format.
 * Node prints `TYPE:value` entries joined by ", " and writes a value as a JSON string literal whenever it holds a
 * character that would make this ambiguous (",", quotes, backslash, control or non-ASCII bytes; CVE-2021-44532), so
 * an unquoted value never contains ", ". Parsing the text is ~30x cheaper than decoding the DER with @peculiar/x509,
 * and this runs on every mTLS handshake.
 */
function uriAltNames(text: string): string[] | undefined {
  const uris: string[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon === -1) return undefined;
    const type = text.slice(i, colon);
    let j = colon + 1;
    let value: string;
    if (text.charCodeAt(j) === 0x22) {
      let k = j + 1;
      while (k < text.length && text.charCodeAt(k) !== 0x22) k += text.charCodeAt(k) === 0x5c ? 2 : 1;
      if (k >= text.length) return undefined;
      try {
        value = JSON.parse(text.slice(j, k + 1)) as string;
      } catch {
        return undefined;
      }
      j = k + 1;
    } else {
      const end = text.indexOf(', ', j);
      j = end === -1 ? text.length : end;
      value = text.slice(colon + 1, j);
    }
    if (type === 'URI') uris.push(value);
    if (j < text.length) {
      if (!text.startsWith(', ', j)) return undefined;
      j += 2;
      if (j === text.length) return undefined;
    }
    i = j;
  }
  return uris;
}

function svidError(message: string): CaError {
  return new CaError('svid_invalid', message);
}

/**
 * The SPIFFE ID from Node's subjectAltName text (X509Certificate.subjectAltName, or PeerCertificate.subjectaltname):
 * exactly one URI SAN, a valid SPIFFE ID with a path. Other SAN types (DNS, IP) are allowed. Throws CaError('svid_invalid').
 */
export function spiffeIdFromAltNames(subjectAltName: string | undefined): string {
  if (subjectAltName === undefined || subjectAltName === '') throw svidError('the certificate has no subject alternative names, so no SPIFFE ID');
  const uris = uriAltNames(subjectAltName);
  if (uris === undefined) throw svidError('the certificate\'s subject alternative names do not parse');
  if (uris.length !== 1) throw svidError(`an SVID has exactly one URI SAN; this certificate has ${uris.length}`);
  const id = parseSpiffeId(uris[0]);
  if ('error' in id) throw svidError(`the URI SAN ${JSON.stringify(uris[0])} is not a SPIFFE ID: ${id.error}`);
  if (id.path === '') throw svidError(`the SPIFFE ID ${uris[0]} has no path; a workload ID needs one`);
  return uris[0];
}

function toX509(cert: Buffer | string | X509Certificate): X509Certificate {
  if (cert instanceof X509Certificate) return cert;
  try {
    return new X509Certificate(cert);
  } catch (err) {
    throw new CaError('svid_invalid', 'not an X.509 certificate (PEM or DER)', { cause: err });
  }
}

/** The SPIFFE ID of a certificate (DER or PEM); throws CaError('svid_invalid') unless it has exactly one valid SPIFFE URI SAN. */
export function spiffeIdOf(certDerOrPem: Buffer | string): string {
  return spiffeIdFromAltNames(toX509(certDerOrPem).subjectAltName);
}

/**
 * A checkServerIdentity for tls.connect (and undici's connect options): accepts the server when its certificate's
 * SPIFFE ID is one of `expected`, and replaces Node's default, which rejects certificates with only a URI SAN.
 * Returns an Error naming the expected and actual IDs; never throws. Node calls it only after the chain verified.
 */
export function checkServerSpiffeId(expected: readonly string[]): (host: string, cert: PeerCertificate) => Error | undefined {
  const allowed = new Set(expected);
  const wanted = expected.length > 0 ? expected.join(' or ') : '(no identity is allowed)';
  return (host, cert) => {
    let actual: string;
    try {
      const altNames = cert?.subjectaltname ?? (Buffer.isBuffer(cert?.raw) ? new X509Certificate(cert.raw).subjectAltName : undefined);
      actual = spiffeIdFromAltNames(altNames);
    } catch (err) {
      return identityError(`the server's certificate has no valid SPIFFE ID (${(err as Error).message}); expected ${wanted}`, host, expected, undefined);
    }
    if (allowed.has(actual)) return undefined;
    return identityError(`the server's SPIFFE ID is ${actual}, expected ${wanted}`, host, expected, actual);
  };
}

function identityError(message: string, host: string, expected: readonly string[], actual: string | undefined): Error {
  // The shape of Node's own checkServerIdentity errors (code, reason, host), plus both identities.
  return Object.assign(new Error(message), { code: 'ERR_TLS_SPIFFE_ID_MISMATCH', reason: message, host, expected: [...expected], actual });
}

function validAt(c: X509Certificate, now: number): boolean {
  return c.validFromDate.getTime() <= now && now <= c.validToDate.getTime();
}

/** The leaf rules of the X509-SVID standard that OpenSSL's chain check does not cover. */
function leafProblem(leaf: X509Certificate): string | undefined {
  if (leaf.ca) return 'the leaf is a CA certificate (basicConstraints cA=true)';
  const parsed = new x509.X509Certificate(leaf.raw);
  const ku = parsed.getExtension(x509.KeyUsagesExtension);
  if (ku === null) return 'the leaf has no key usage extension';
  if (!ku.critical) return 'the leaf\'s key usage extension is not critical';
  if ((ku.usages & x509.KeyUsageFlags.digitalSignature) === 0) return 'the leaf\'s key usage lacks digitalSignature';
  if ((ku.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) !== 0) return 'the leaf\'s key usage allows signing certificates or CRLs';
  const eku = leaf.keyUsage; // node:crypto's name for the extended key usage OIDs
  if (eku !== undefined && !(eku.includes(EKU_SERVER_AUTH) && eku.includes(EKU_CLIENT_AUTH))) {
    return `the leaf's extended key usage must include serverAuth and clientAuth (has ${eku.join(', ') || 'none'})`;
  }
  return undefined;
}

/**
 * Verifies an X509-SVID at time `now` (epoch ms): the chain (leaf, then the given intermediates) leads by signature
 * to a root in `bundle`, every certificate on the way is valid at `now`, issuers are CAs, and the leaf follows the
 * SVID rules (not a CA, digitalSignature, serverAuth+clientAuth EKU when present, exactly one SPIFFE URI SAN).
 * `chainPems` may hold the leaf itself too (a whole chain file). Never throws.
 */
export function verifySvid(cert: Buffer | string, chainPems: readonly string[], bundle: readonly string[], now: number = Date.now()): { spiffeId: string } | { error: string } {
  try {
    const leaf = toX509(cert);
    const intermediates = chainPems.flatMap((p) => pemBlocks(p)).map((p) => toX509(p)).filter((c) => c.fingerprint256 !== leaf.fingerprint256);
    const roots = bundle.flatMap((p) => pemBlocks(p)).map((p) => toX509(p));
    if (roots.length === 0) return { error: 'the trust bundle is empty' };
    if (!validAt(leaf, now)) return { error: `the leaf is not valid at ${new Date(now).toISOString()} (valid ${leaf.validFrom} to ${leaf.validTo})` };
    const leafErr = leafProblem(leaf);
    if (leafErr !== undefined) return { error: leafErr };
    const spiffeId = spiffeIdOf(leaf.raw);
    let current = leaf;
    const used = new Set<X509Certificate>();
    for (let depth = 0; depth < MAX_CHAIN_DEPTH; depth++) {
      const root = roots.find((r) => current.checkIssued(r) && current.verify(r.publicKey));
      if (root !== undefined) {
        if (!root.ca) return { error: 'the trust bundle certificate that signed the chain is not a CA' };
        if (!validAt(root, now)) return { error: `the root is not valid at ${new Date(now).toISOString()} (valid ${root.validFrom} to ${root.validTo})` };
        return { spiffeId };
      }
      const next = intermediates.find((c) => !used.has(c) && current.checkIssued(c) && current.verify(c.publicKey));
      if (next === undefined) return { error: 'the certificate chain does not lead to a root in the trust bundle' };
      if (!next.ca) return { error: 'an intermediate in the chain is not a CA' };
      if (!validAt(next, now)) return { error: `an intermediate is not valid at ${new Date(now).toISOString()} (valid ${next.validFrom} to ${next.validTo})` };
      const pathLength = new x509.X509Certificate(next.raw).getExtension(x509.BasicConstraintsExtension)?.pathLength;
      if (pathLength !== undefined && pathLength < depth) return { error: 'an intermediate\'s path length constraint is exceeded' };
      used.add(next);
      current = next;
    }
    return { error: `the certificate chain is longer than ${MAX_CHAIN_DEPTH}` };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

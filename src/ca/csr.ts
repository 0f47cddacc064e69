// What a node does before asking the CA for a certificate: a fresh P-256 key that never leaves the node, and a CSR proving possession of it.
import { ECDSA_SHA256, generateP256, wc, x509 } from './ca-crypto.ts';

/**
 * A new P-256 key (PKCS#8 PEM) and a PKCS#10 request signed with it. The request names no identity: the CA takes the
 * SPIFFE ID from the join token or the node's current certificate and ignores whatever a CSR asks for.
 */
export async function createKeyAndCsr(): Promise<{ keyPem: string; csrPem: string }> {
  const keys = await generateP256();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ O: ['Lockgate'] }],
    keys: { privateKey: keys.privateKey, publicKey: keys.publicKey },
    signingAlgorithm: ECDSA_SHA256,
  }, wc);
  return { keyPem: keys.keyPem, csrPem: `${csr.toString('pem').replace(/\r\n/g, '\n').trimEnd()}\n` };
}

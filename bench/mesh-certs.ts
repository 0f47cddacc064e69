// The mesh-hop scenario's throw-away PKI: root → intermediate → two SPIFFE leaves (a, b), written to the run's temp dir.
import { webcrypto } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
// Must load before @peculiar/x509: its tsyringe refuses to load without Reflect metadata.
import '../src/ca/reflect-metadata-shim.ts';
import * as x509 from '@peculiar/x509';

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
// lib is es2024 (no DOM): the WebCrypto types come from node:crypto.
type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
export const TRUST_DOMAIN = 'lockgate.local';
export const MESH_NAMESPACE = 'bench';

/** `spiffe://lockgate.local/ns/bench/sa/<service>`. */
export function benchSpiffeId(service: string): string {
  return `spiffe://${TRUST_DOMAIN}/ns/${MESH_NAMESPACE}/sa/${service}`;
}

export interface LeafFiles {
  spiffeId: string;
  /** Leaf + intermediate, PEM: what the workload presents. */
  certFile: string;
  keyFile: string;
  /** The subject CN (`<service>.<namespace>`): only nginx reads it, because it cannot check URI SANs. */
  commonName: string;
}

export interface MeshCerts {
  /** The root alone, PEM: every hop's trust anchor. */
  rootFile: string;
  rootPem: string;
  a: LeafFiles;
  b: LeafFiles;
}

async function keyPair(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function keyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/**
 * Root and intermediate (CA, ECDSA P-256), and leaves shaped like the mesh CA's (plan: one URI SAN, cA=false,
 * digitalSignature critical, serverAuth+clientAuth, notBefore now − 60 s). Unlike the mesh CA's, each leaf
 * also has a subject CN, so that nginx's `proxy_ssl_verify` (a host-name check, no URI SANs) has a name to check.
 */
export async function createMeshCerts(dir: string): Promise<MeshCerts> {
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  mkdirSync(dir, { recursive: true });
  const now = Date.now();
  const day = 86_400_000;
  const rootKeys = await keyPair();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${TRUST_DOMAIN} bench root`,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 30 * day),
    keys: rootKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  const interKeys = await keyPair();
  const inter = await x509.X509CertificateGenerator.create({
    subject: `CN=${TRUST_DOMAIN} bench intermediate`,
    issuer: root.subject,
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 7 * day),
    publicKey: interKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(interKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root),
    ],
  });
  const interPem = inter.toString('pem');
  const rootPem = `${root.toString('pem')}\n`;
  const rootFile = join(dir, 'root.pem');
  writeFileSync(rootFile, rootPem);

  const leaf = async (service: string): Promise<LeafFiles> => {
    const keys = await keyPair();
    const spiffeId = benchSpiffeId(service);
    const commonName = `${service}.${MESH_NAMESPACE}`;
    const cert = await x509.X509CertificateGenerator.create({
      subject: `CN=${commonName}`,
      issuer: inter.subject,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + day),
      publicKey: keys.publicKey,
      signingKey: interKeys.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(inter),
      ],
    });
    const certFile = join(dir, `${service}-cert.pem`);
    const keyFile = join(dir, `${service}-key.pem`);
    writeFileSync(keyFile, await keyPem(keys.privateKey), { mode: 0o600 });
    writeFileSync(certFile, `${cert.toString('pem')}\n${interPem}\n`);
    return { spiffeId, certFile, keyFile, commonName };
  };
  return { rootFile, rootPem, a: await leaf('a'), b: await leaf('b') };
}

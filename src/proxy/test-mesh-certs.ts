// Test helper: a throw-away mesh PKI (root → intermediate → SPIFFE leaves) made with @peculiar/x509 in a temp dir; never used at run time.
import { webcrypto } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type * as X509 from '@peculiar/x509';

/**
 * @peculiar/x509 pulls in tsyringe, which refuses to load without a Reflect metadata polyfill (reflect-metadata is
 * not a dependency). It only stores and reads constructor metadata, so a WeakMap-backed stand-in is enough.
 */
function ensureReflectMetadata(): void {
  type Meta = Map<unknown, unknown>;
  const r = Reflect as unknown as Record<string, unknown>;
  if (typeof r.getMetadata === 'function') return;
  const store = new WeakMap<object, Meta>();
  const own = (target: object): Meta => {
    let m = store.get(target);
    if (m === undefined) store.set(target, (m = new Map()));
    return m;
  };
  r.defineMetadata = (key: unknown, value: unknown, target: object) => void own(target).set(key, value);
  r.getOwnMetadata = (key: unknown, target: object) => store.get(target)?.get(key);
  r.getMetadata = (key: unknown, target: object): unknown => {
    for (let t: object | null = target; t !== null; t = Object.getPrototypeOf(t) as object | null) {
      const v = store.get(t)?.get(key);
      if (v !== undefined) return v;
    }
    return undefined;
  };
}

let loaded: Promise<typeof X509> | undefined;
function loadX509(): Promise<typeof X509> {
  ensureReflectMetadata();
  loaded ??= import('@peculiar/x509');
  return loaded;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };

export interface MeshLeafOptions {
  /** URI SANs (the SPIFFE ID, or several to test refusal). */
  uris?: string[];
  dns?: string[];
  /** Default 1 h; notBefore is backdated 60 s as the real CA does. */
  lifetimeMs?: number;
  /** Default both. */
  eku?: Array<'server' | 'client'>;
  /** Issue a CA certificate instead of a leaf (a SPIFFE rule violation when presented as a leaf). */
  ca?: boolean;
  /** Hexadecimal serial; random when unset. */
  serial?: string;
}

export interface MeshLeaf {
  /** Leaf + intermediate PEM (what a workload presents). */
  certPem: string;
  keyPem: string;
  certFile: string;
  keyFile: string;
  /** Lower-case hex, as tls's PeerCertificate.serialNumber shows it (upper-case there). */
  serial: string;
}

export interface MeshTestPki {
  dir: string;
  rootPem: string;
  /** The trust bundle (the root) as a file, for `clientCaFile` / `caFile`. */
  bundleFile: string;
  /** Issues a leaf signed by the intermediate and writes it (atomically) to `<dir>/<name>.crt|.key`; reusing a name replaces the files. */
  issue(name: string, opts?: MeshLeafOptions): Promise<MeshLeaf>;
  close(): void;
}

async function keyPair(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function keyPem(x509: typeof X509, key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

function randomSerial(): string {
  // Positive (top bit clear), 16 bytes.
  const b = webcrypto.getRandomValues(new Uint8Array(16));
  b[0] &= 0x7f;
  b[0] |= 0x10;
  return Buffer.from(b).toString('hex');
}

function atomicWrite(file: string, text: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, file);
}

/** A root and an intermediate (both ECDSA P-256) for `trustDomain`. */
export async function createMeshTestPki(trustDomain = 'test.mesh'): Promise<MeshTestPki> {
  const x509 = await loadX509();
  x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-mesh-pki-'));
  const now = Date.now();
  const rootKeys = await keyPair();
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${trustDomain} root`,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 30 * 86400_000),
    keys: rootKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
      await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey),
    ],
  });
  const interKeys = await keyPair();
  const inter = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${trustDomain} intermediate`,
    issuer: root.subject,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 7 * 86400_000),
    publicKey: interKeys.publicKey,
    signingKey: rootKeys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${trustDomain}` }]),
      await x509.SubjectKeyIdentifierExtension.create(interKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(root),
    ],
  });
  const rootPem = `${root.toString('pem')}\n`;
  const interPem = `${inter.toString('pem')}\n`;
  const bundleFile = path.join(dir, 'bundle.pem');
  writeFileSync(bundleFile, rootPem);

  return {
    dir,
    rootPem,
    bundleFile,
    async issue(name, opts = {}) {
      const keys = await keyPair();
      const t = Date.now();
      const serial = opts.serial ?? randomSerial();
      const names: X509.JsonGeneralName[] = [
        ...(opts.uris ?? []).map((value) => ({ type: 'url' as const, value })),
        ...(opts.dns ?? []).map((value) => ({ type: 'dns' as const, value })),
      ];
      const eku = opts.eku ?? ['server', 'client'];
      const extensions: X509.Extension[] = [
        new x509.BasicConstraintsExtension(opts.ca === true, undefined, true),
        new x509.KeyUsagesExtension(
          opts.ca === true ? x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature : x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        new x509.ExtendedKeyUsageExtension(eku.map((u) => (u === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth))),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(inter),
      ];
      if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, true));
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serial,
        subject: '',
        issuer: inter.subject,
        notBefore: new Date(t - 60_000),
        notAfter: new Date(t + (opts.lifetimeMs ?? 3600_000)),
        publicKey: keys.publicKey,
        signingKey: interKeys.privateKey,
        signingAlgorithm: ALG,
        extensions,
      });
      const certPem = `${leaf.toString('pem')}\n${interPem}`;
      const kPem = await keyPem(x509, keys.privateKey);
      const certFile = path.join(dir, `${name}.crt`);
      const keyFile = path.join(dir, `${name}.key`);
      // Key first: a reader that sees the new certificate must find its key (the loader reads both per reload).
      atomicWrite(keyFile, kPem);
      atomicWrite(certFile, certPem);
      return { certPem, keyPem: kPem, certFile, keyFile, serial: serial.toLowerCase() };
    },
    close() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

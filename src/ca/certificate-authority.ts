// The mesh's certificate authority: an ECDSA P-256 root and an intermediate that signs SPIFFE X.509-SVIDs, root
// rotation with several roots in the trust bundle, and a saved state whose private keys are envelope-encrypted.
//
// Root rotation is three steps, and the mesh stays up at each of them:
//   1. rotateStart(): make a new root and a new intermediate under it. The trust bundle holds both roots from now
//      on. Distribute it to every node and wait until all of them have it: they then trust leaves from either root.
//   2. Reissue: new certificates come from the new intermediate, so as nodes renew (at half life, or forced) their
//      leaves chain to the new root, which everyone already trusts. Wait at least one full leaf lifetime.
//   3. rotateFinish(): the old root leaves the bundle. A leaf that still chains to it is refused from then on.
import { X509Certificate as NodeX509, createPublicKey, type KeyObject } from 'node:crypto';
import { parseSpiffeId, parseTrustDomain } from '../lib/spiffe-id.ts';
import { open, seal } from '../secrets/envelope.ts';
import { SecretsError, type KeyWrapper } from '../secrets/key-wrapper.ts';
import { CaError } from './ca-error.ts';
import {
  ECDSA_SHA256, floorSecond, generateP256, isP256, keyMatchesCertificate, p256PrivateKey, pemBlocks, pemOf, randomSerialHex,
  signingKeyOf, wc, x509, type CryptoKey,
} from './ca-crypto.ts';

/** notBefore of every certificate we make is this far in the past, so a peer whose clock is a little behind accepts it. */
export const CLOCK_SKEW_MS = 60_000;
/** 10 s is the smallest lifetime recommended for real use; down to 5 s is accepted so tests can rotate many times quickly. */
export const MIN_LEAF_LIFETIME_MS = 5_000;
export const MAX_LEAF_LIFETIME_MS = 90 * 86_400_000;
export const DEFAULT_ROOT_LIFETIME_MS = 3650 * 86_400_000;
export const DEFAULT_INTERMEDIATE_LIFETIME_MS = 365 * 86_400_000;
/** A CSR is small (a P-256 request is ~400 bytes of PEM); refuse anything large before parsing it. */
const MAX_CSR_BYTES = 16 * 1024;
const STATE_FORMAT = 'lockgate-ca';
const STATE_VERSION = 1;

export interface IssuedCertificate {
  /** The leaf alone. */
  certPem: string;
  /** The leaf then the intermediate: what a node presents in its TLS handshakes. */
  chainPem: string;
  spiffeId: string;
  /** Upper-case hex, as node:crypto's X509Certificate.serialNumber and TLSSocket.getPeerCertificate() print it. */
  serial: string;
  /** Epoch ms, exactly as in the certificate (whole seconds). */
  notBefore: number;
  notAfter: number;
}

export interface RotationStatus {
  phase: 'idle' | 'rotating';
  /** Oldest first. `active` marks the root whose intermediate issues; fingerprints are SHA-256, as openssl prints them. */
  roots: Array<{ fingerprint: string; notAfter: number; active: boolean }>;
  startedAt?: number;
}

export interface IntermediateInfo {
  certPem: string;
  fingerprint: string;
  notBefore: number;
  notAfter: number;
  revoked: boolean;
}

export interface CaCreateOptions {
  trustDomain: string;
  now?: () => number;
  /** Import a root instead of generating one: a self-signed P-256 CA certificate and its private key (PKCS#8 or SEC1 PEM). */
  root?: { certPem: string; keyPem: string };
  rootLifetimeMs?: number;
  intermediateLifetimeMs?: number;
}

/** A CA certificate and its private key, parsed once. */
interface CaCert {
  certPem: string;
  keyPem: string;
  signingKey: CryptoKey;
  cert: x509.X509Certificate;
  fingerprint: string;
  notBefore: number;
  notAfter: number;
  /** Hex subject key identifier: the authority key identifier of everything this certificate signs. */
  keyId: string;
}

/** The saved form. Roots are oldest first; the last one is active (its intermediate issues). */
interface SavedState {
  format: typeof STATE_FORMAT;
  version: typeof STATE_VERSION;
  trustDomain: string;
  rootLifetimeMs: number;
  intermediateLifetimeMs: number;
  roots: Array<{ certPem: string; key: string }>;
  intermediate: { certPem: string; key: string; revoked: boolean };
  rotation: { phase: 'idle' } | { phase: 'rotating'; startedAt: number };
}

/** The envelope's additional data: a sealed key opens only as the key of the certificate it was saved with. */
function keyAad(role: 'root' | 'intermediate', fingerprint: string): string {
  return `lockgate-ca:${role}:${fingerprint}`;
}

function checkLifetimeOption(name: string, ms: number | undefined, fallback: number): number {
  if (ms === undefined) return fallback;
  if (!Number.isSafeInteger(ms) || ms < 60_000) throw new RangeError(`${name} must be a whole number of milliseconds, at least a minute; got ${ms}`);
  return ms;
}

async function caCertOf(certPem: string, key: KeyObject): Promise<CaCert> {
  const cert = new x509.X509Certificate(certPem);
  const node = new NodeX509(certPem);
  const { signingKey, keyPem } = signingKeyOf(key);
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  return {
    certPem: pemOf(cert), keyPem, signingKey, cert,
    fingerprint: node.fingerprint256,
    notBefore: node.validFromDate.getTime(),
    notAfter: node.validToDate.getTime(),
    keyId: ski?.keyId ?? (await x509.SubjectKeyIdentifierExtension.create(cert.publicKey, false, wc)).keyId,
  };
}

async function generateRoot(trustDomain: string, now: number, lifetimeMs: number): Promise<CaCert> {
  const keys = await generateP256();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: [{ O: ['Lockgate'] }, { CN: [`${trustDomain} root`] }],
    notBefore: new Date(floorSecond(now - CLOCK_SKEW_MS)),
    notAfter: new Date(floorSecond(now + lifetimeMs)),
    keys,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      // pathLen 1: one intermediate, then leaves only.
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, wc),
    ],
  }, wc);
  return caCertOf(pemOf(cert), p256PrivateKey(keys.keyPem) as KeyObject);
}

async function generateIntermediate(trustDomain: string, root: CaCert, now: number, lifetimeMs: number): Promise<CaCert> {
  if (root.notAfter <= now) {
    throw new CaError('ca_invalid_root', `the root ${root.fingerprint} expired at ${new Date(root.notAfter).toISOString()}: start a root rotation`);
  }
  const keys = await generateP256();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: [{ O: ['Lockgate'] }, { CN: [`${trustDomain} intermediate`] }],
    issuer: root.cert.subjectName,
    notBefore: new Date(floorSecond(now - CLOCK_SKEW_MS)),
    // Never outlives its root.
    notAfter: new Date(Math.min(floorSecond(now + lifetimeMs), root.notAfter)),
    publicKey: keys.publicKey,
    signingKey: root.signingKey,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, wc),
      new x509.AuthorityKeyIdentifierExtension(root.keyId, false),
    ],
  }, wc);
  const pem = pemOf(cert);
  const rootNode = new NodeX509(root.certPem);
  const node = new NodeX509(pem);
  // OpenSSL's own check that the issuer name and key identifiers line up (they would not if an imported root's name re-encoded differently).
  if (!node.checkIssued(rootNode) || !node.verify(rootNode.publicKey)) {
    throw new CaError('ca_invalid_root', `an intermediate made under the root ${root.fingerprint} does not chain to it (unusual name encoding?)`);
  }
  return caCertOf(pem, p256PrivateKey(keys.keyPem) as KeyObject);
}

/** Checks an operator-supplied root: one self-signed P-256 CA certificate, valid now, allowed to sign an intermediate, with its key. */
async function importRoot(root: { certPem: string; keyPem: string }, now: number): Promise<CaCert> {
  const bad = (why: string): CaError => new CaError('ca_invalid_root', `cannot import the root: ${why}`);
  if (typeof root.certPem !== 'string' || pemBlocks(root.certPem).length !== 1) throw bad('certPem must hold exactly one PEM certificate');
  let node: NodeX509;
  let cert: x509.X509Certificate;
  try {
    node = new NodeX509(root.certPem);
    cert = new x509.X509Certificate(root.certPem);
  } catch (err) {
    throw bad(`the certificate does not parse (${(err as Error).message})`);
  }
  const key = typeof root.keyPem === 'string' ? p256PrivateKey(root.keyPem) : undefined;
  if (key === undefined) throw bad('keyPem must be an ECDSA P-256 private key in PEM (PKCS#8 or SEC1)');
  if (!isP256(node.publicKey)) throw bad('the certificate\'s key is not ECDSA P-256');
  if (!keyMatchesCertificate(key, node.publicKey)) throw bad('the private key does not belong to the certificate');
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (ku !== null && (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0) throw bad('its key usage lacks keyCertSign');
  if (!node.ca) throw bad('the certificate is not a CA (basicConstraints cA is not set)');
  if (!node.checkIssued(node) || !node.verify(node.publicKey)) throw bad('the certificate is not self-signed (give the root of your PKI, not an intermediate)');
  const pathLength = cert.getExtension(x509.BasicConstraintsExtension)?.pathLength;
  if (pathLength === 0) throw bad('its pathLenConstraint is 0, so it cannot sign an intermediate CA');
  if (node.validToDate.getTime() <= now) throw bad(`it expired at ${node.validTo}`);
  if (node.validFromDate.getTime() > now + CLOCK_SKEW_MS) throw bad(`it is not valid before ${node.validFrom}`);
  return caCertOf(root.certPem, key);
}

/** The public key of a PKCS#10 request whose signature verifies with it; nothing else of the request is used. */
async function csrPublicKey(csrPem: string): Promise<x509.PublicKey> {
  const bad = (why: string, cause?: unknown): CaError => new CaError('ca_invalid_csr', `invalid CSR: ${why}`, { cause });
  if (typeof csrPem !== 'string' || csrPem.length > MAX_CSR_BYTES) throw bad(`expected PEM text of at most ${MAX_CSR_BYTES} bytes`);
  const blocks = pemBlocks(csrPem, 'CERTIFICATE REQUEST');
  if (blocks.length !== 1) throw bad('expected exactly one "-----BEGIN CERTIFICATE REQUEST-----" block');
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(blocks[0]);
  } catch (err) {
    throw bad('not a PKCS#10 certificate request', err);
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  } catch (err) {
    throw bad('its public key does not parse', err);
  }
  if (!isP256(key)) throw bad(`its key must be ECDSA P-256 (got ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''})`);
  let ok: boolean;
  try {
    ok = await csr.verify(wc);
  } catch (err) {
    throw bad('its signature cannot be checked', err);
  }
  if (!ok) throw bad('its signature does not verify with its own key (proof of possession failed)');
  return csr.publicKey;
}

function stateError(why: string, cause?: unknown): CaError {
  return new CaError('ca_state_invalid', `the saved CA state is invalid: ${why}`, { cause });
}

/** Opens one sealed CA key; a wrong or missing master key becomes a CaError that says so. */
async function openKey(sealed: unknown, wrappers: readonly KeyWrapper[], aad: string, certPem: string): Promise<CaCert> {
  if (typeof sealed !== 'string') throw stateError(`the key for ${aad} is missing`);
  let plain: Buffer;
  try {
    plain = await open(sealed, wrappers, aad);
  } catch (err) {
    // unknown_key / unwrap_failed: the master key is not the one the state was saved under. decrypt_failed means the
    // data key opened but the envelope does not authenticate here: tampered, or moved from another certificate's slot.
    if (err instanceof SecretsError && (err.code === 'unknown_key' || err.code === 'unwrap_failed' || err.code === 'key_invalid')) {
      throw new CaError('ca_state_key', `cannot open the CA's private keys with the configured master key (${err.message}); `
        + 'start with the master key the state was saved under (LOCKGATE_MASTER_KEY or LOCKGATE_MASTER_KEY_FILE)', { cause: err });
    }
    throw stateError(`the key for ${aad} does not open (${(err as Error).message})`, err);
  }
  const key = p256PrivateKey(plain.toString('utf8'));
  plain.fill(0);
  if (key === undefined) throw stateError(`the key for ${aad} is not a P-256 private key`);
  const node = new NodeX509(certPem);
  if (!keyMatchesCertificate(key, node.publicKey)) throw stateError(`the key for ${aad} does not belong to its certificate`);
  return caCertOf(certPem, key);
}

function parseState(text: string): SavedState {
  let s: SavedState;
  try {
    s = JSON.parse(text) as SavedState;
  } catch (err) {
    throw stateError('not JSON', err);
  }
  if (s === null || typeof s !== 'object' || s.format !== STATE_FORMAT) throw stateError(`not a ${STATE_FORMAT} document`);
  if (s.version !== STATE_VERSION) throw stateError(`unsupported version ${JSON.stringify(s.version)} (this build reads ${STATE_VERSION})`);
  if (!Array.isArray(s.roots) || s.roots.length === 0 || s.roots.some((r) => typeof r?.certPem !== 'string')) throw stateError('roots are missing');
  if (typeof s.intermediate?.certPem !== 'string' || typeof s.intermediate.revoked !== 'boolean') throw stateError('the intermediate is missing');
  const r = s.rotation;
  const rotationOk = r?.phase === 'idle' ? s.roots.length === 1 : r?.phase === 'rotating' && s.roots.length >= 2 && Number.isFinite(r.startedAt);
  if (!rotationOk) throw stateError('the rotation state does not match the roots');
  for (const f of ['rootLifetimeMs', 'intermediateLifetimeMs'] as const) if (!Number.isSafeInteger(s[f]) || s[f] <= 0) throw stateError(`${f} is invalid`);
  return s;
}

export class CertificateAuthority {
  readonly trustDomain: string;
  readonly #now: () => number;
  readonly #rootLifetimeMs: number;
  readonly #intermediateLifetimeMs: number;
  /** Oldest first; the last one is active. More than one only while rotating. */
  #roots: CaCert[];
  #intermediate: CaCert;
  #revoked: boolean;
  #rotationStartedAt: number | undefined;
  /** Set while rotateStart() or renewIntermediate() makes keys, so two of them cannot interleave. */
  #busy = false;

  /** Use create() or load(). */
  private constructor(init: {
    trustDomain: string; now: () => number; rootLifetimeMs: number; intermediateLifetimeMs: number;
    roots: CaCert[]; intermediate: CaCert; revoked: boolean; rotationStartedAt: number | undefined;
  }) {
    this.trustDomain = init.trustDomain;
    this.#now = init.now;
    this.#rootLifetimeMs = init.rootLifetimeMs;
    this.#intermediateLifetimeMs = init.intermediateLifetimeMs;
    this.#roots = init.roots;
    this.#intermediate = init.intermediate;
    this.#revoked = init.revoked;
    this.#rotationStartedAt = init.rotationStartedAt;
  }

  /** A new CA for `trustDomain` (a bare name such as `mesh.local`): a generated or imported root and a fresh intermediate. */
  static async create(opts: CaCreateOptions): Promise<CertificateAuthority> {
    const td = parseTrustDomain(opts.trustDomain);
    if ('error' in td || td.trustDomain !== opts.trustDomain) {
      throw new CaError('ca_invalid_trust_domain', `invalid trust domain ${JSON.stringify(opts.trustDomain)}: ${'error' in td ? td.error : 'give the bare name, not a SPIFFE ID'}`);
    }
    const now = opts.now ?? Date.now;
    const rootLifetimeMs = checkLifetimeOption('rootLifetimeMs', opts.rootLifetimeMs, DEFAULT_ROOT_LIFETIME_MS);
    const intermediateLifetimeMs = checkLifetimeOption('intermediateLifetimeMs', opts.intermediateLifetimeMs, DEFAULT_INTERMEDIATE_LIFETIME_MS);
    const t = now();
    const root = opts.root !== undefined ? await importRoot(opts.root, t) : await generateRoot(td.trustDomain, t, rootLifetimeMs);
    const intermediate = await generateIntermediate(td.trustDomain, root, t, intermediateLifetimeMs);
    return new CertificateAuthority({
      trustDomain: td.trustDomain, now, rootLifetimeMs, intermediateLifetimeMs, roots: [root], intermediate, revoked: false, rotationStartedAt: undefined,
    });
  }

  /** Restores a CA from save()'s text. `wrappers`: the current master key and any previous ones (master-key rotation). */
  static async load(sealed: string, wrappers: readonly KeyWrapper[], opts: { now?: () => number } = {}): Promise<CertificateAuthority> {
    const s = parseState(sealed);
    const td = parseTrustDomain(s.trustDomain);
    if ('error' in td || td.trustDomain !== s.trustDomain) throw stateError(`invalid trust domain ${JSON.stringify(s.trustDomain)}`);
    const fingerprintOf = (pem: string): string => {
      try {
        return new NodeX509(pem).fingerprint256;
      } catch (err) {
        throw stateError('a certificate does not parse', err);
      }
    };
    const roots: CaCert[] = [];
    for (const r of s.roots) {
      const root = await openKey(r.key, wrappers, keyAad('root', fingerprintOf(r.certPem)), r.certPem);
      if (!new NodeX509(root.certPem).ca) throw stateError(`the root ${root.fingerprint} is not a CA`);
      roots.push(root);
    }
    const intermediate = await openKey(s.intermediate.key, wrappers, keyAad('intermediate', fingerprintOf(s.intermediate.certPem)), s.intermediate.certPem);
    const active = new NodeX509(roots[roots.length - 1].certPem);
    const inter = new NodeX509(intermediate.certPem);
    if (!inter.ca || !inter.checkIssued(active) || !inter.verify(active.publicKey)) throw stateError('the intermediate is not a CA issued by the active root');
    return new CertificateAuthority({
      trustDomain: s.trustDomain, now: opts.now ?? Date.now, rootLifetimeMs: s.rootLifetimeMs, intermediateLifetimeMs: s.intermediateLifetimeMs,
      roots, intermediate, revoked: s.intermediate.revoked,
      rotationStartedAt: s.rotation.phase === 'rotating' ? s.rotation.startedAt : undefined,
    });
  }

  /** The whole state as JSON text: certificates in PEM, private keys sealed under `wrapper` (each bound to its certificate). */
  async save(wrapper: KeyWrapper): Promise<string> {
    // Take everything before the first await, so a rotation running meanwhile cannot tear the snapshot.
    const roots = this.#roots;
    const inter = this.#intermediate;
    const revoked = this.#revoked;
    const startedAt = this.#rotationStartedAt;
    const state: SavedState = {
      format: STATE_FORMAT,
      version: STATE_VERSION,
      trustDomain: this.trustDomain,
      rootLifetimeMs: this.#rootLifetimeMs,
      intermediateLifetimeMs: this.#intermediateLifetimeMs,
      roots: await Promise.all(roots.map(async (r) => ({ certPem: r.certPem, key: await seal(r.keyPem, wrapper, keyAad('root', r.fingerprint)) }))),
      intermediate: { certPem: inter.certPem, key: await seal(inter.keyPem, wrapper, keyAad('intermediate', inter.fingerprint)), revoked },
      rotation: startedAt === undefined ? { phase: 'idle' } : { phase: 'rotating', startedAt },
    };
    return JSON.stringify(state);
  }

  /** The PEM roots every node must trust: one, or two while a root rotation is under way. */
  trustBundle(): string[] {
    return this.#roots.map((r) => r.certPem);
  }

  /**
   * Signs a workload certificate for the key in `csrPem`, after checking the request's signature (proof of possession)
   * and that its key is P-256. Everything else in the request (subject, SANs, extensions) is ignored: the identity is
   * `spiffeId`, which the caller took from an authenticated source (a join token or the node's current certificate).
   */
  async issueFromCsr(csrPem: string, spiffeId: string, lifetimeMs: number): Promise<IssuedCertificate> {
    this.#checkRequest(spiffeId, lifetimeMs);
    const publicKey = await csrPublicKey(csrPem);
    return this.#issue(publicKey, spiffeId, lifetimeMs);
  }

  /** Generates the key too (the control plane's own certificate, tests). */
  async issueWithKey(spiffeId: string, lifetimeMs: number): Promise<IssuedCertificate & { keyPem: string }> {
    this.#checkRequest(spiffeId, lifetimeMs);
    const keys = await generateP256();
    return { ...await this.#issue(keys.publicKey, spiffeId, lifetimeMs), keyPem: keys.keyPem };
  }

  /** Step 1 of a root rotation (see the top of this file). `root` imports the new root instead of generating it. */
  async rotateStart(opts: { root?: { certPem: string; keyPem: string } } = {}): Promise<void> {
    if (this.#rotationStartedAt !== undefined) {
      throw new CaError('ca_rotation_in_progress', 'a root rotation is already in progress: finish it first (lockgate ca rotate finish)');
    }
    await this.#exclusive(async () => {
      const now = this.#now();
      const root = opts.root !== undefined ? await importRoot(opts.root, now) : await generateRoot(this.trustDomain, now, this.#rootLifetimeMs);
      if (this.#roots.some((r) => r.fingerprint === root.fingerprint)) throw new CaError('ca_invalid_root', 'that root is already in the trust bundle');
      const intermediate = await generateIntermediate(this.trustDomain, root, now, this.#intermediateLifetimeMs);
      this.#roots = [...this.#roots, root];
      this.#intermediate = intermediate;
      this.#revoked = false;
      this.#rotationStartedAt = now;
    });
  }

  rotationStatus(): RotationStatus {
    const last = this.#roots.length - 1;
    const status: RotationStatus = {
      phase: this.#rotationStartedAt === undefined ? 'idle' : 'rotating',
      roots: this.#roots.map((r, i) => ({ fingerprint: r.fingerprint, notAfter: r.notAfter, active: i === last })),
    };
    if (this.#rotationStartedAt !== undefined) status.startedAt = this.#rotationStartedAt;
    return status;
  }

  /** Step 3 of a root rotation: the old root leaves the trust bundle (and its key is forgotten). */
  async rotateFinish(): Promise<void> {
    if (this.#rotationStartedAt === undefined) throw new CaError('ca_not_rotating', 'no root rotation is in progress (start one with lockgate ca rotate start)');
    this.#roots = [this.#roots[this.#roots.length - 1]];
    this.#rotationStartedAt = undefined;
  }

  /**
   * Marks the intermediate revoked: nothing more is issued until renewIntermediate() or rotateStart(). Leaves it already
   * signed stay trusted until they expire (there are no CRLs; leaves are short-lived), or until a root rotation
   * retires the root above it.
   */
  revokeIntermediate(): void {
    this.#revoked = true;
  }

  /** A new intermediate under the active root (before the old one expires, or after a revocation); the bundle does not change. */
  async renewIntermediate(): Promise<void> {
    await this.#exclusive(async () => {
      const intermediate = await generateIntermediate(this.trustDomain, this.#roots[this.#roots.length - 1], this.#now(), this.#intermediateLifetimeMs);
      this.#intermediate = intermediate;
      this.#revoked = false;
    });
  }

  /** The issuing intermediate, for expiry checks (`lockgate check`, metrics). */
  intermediateInfo(): IntermediateInfo {
    const i = this.#intermediate;
    return { certPem: i.certPem, fingerprint: i.fingerprint, notBefore: i.notBefore, notAfter: i.notAfter, revoked: this.#revoked };
  }

  async #exclusive(fn: () => Promise<void>): Promise<void> {
    if (this.#busy) throw new CaError('ca_rotation_in_progress', 'the CA is already making a new root or intermediate');
    this.#busy = true;
    try {
      await fn();
    } finally {
      this.#busy = false;
    }
  }

  #checkRequest(spiffeId: string, lifetimeMs: number): void {
    const id = parseSpiffeId(spiffeId);
    if ('error' in id) throw new CaError('ca_invalid_spiffe_id', `invalid SPIFFE ID ${JSON.stringify(spiffeId)}: ${id.error}`);
    if (id.trustDomain !== this.trustDomain) {
      throw new CaError('ca_invalid_spiffe_id', `SPIFFE ID ${spiffeId} is not in this CA's trust domain ${this.trustDomain}`);
    }
    if (id.path === '') throw new CaError('ca_invalid_spiffe_id', `SPIFFE ID ${spiffeId} has no path: a workload ID needs one`);
    if (!Number.isFinite(lifetimeMs) || lifetimeMs < MIN_LEAF_LIFETIME_MS || lifetimeMs > MAX_LEAF_LIFETIME_MS) {
      throw new CaError('ca_invalid_lifetime', `certificate lifetime must be between 5s and 90d (${MIN_LEAF_LIFETIME_MS}..${MAX_LEAF_LIFETIME_MS} ms); got ${lifetimeMs} ms`);
    }
  }

  async #issue(publicKey: x509.PublicKey | CryptoKey, spiffeId: string, lifetimeMs: number): Promise<IssuedCertificate> {
    const now = this.#now();
    const inter = this.#intermediate; // this one signs, even if a rotation swaps it during the awaits below
    if (this.#revoked) throw new CaError('ca_intermediate_revoked', `the intermediate ${inter.fingerprint} is revoked: renew it or rotate the root before issuing`);
    if (now >= inter.notAfter) {
      throw new CaError('ca_intermediate_expired', `the intermediate ${inter.fingerprint} expired at ${new Date(inter.notAfter).toISOString()}: renew it or rotate the root before issuing`);
    }
    const notBefore = floorSecond(now - CLOCK_SKEW_MS);
    const notAfter = Math.min(floorSecond(now + lifetimeMs), inter.notAfter);
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerialHex(),
      // The identity is the URI SAN alone; no CN, so no hostname check can match this certificate by accident.
      subject: [{ O: ['Lockgate'] }],
      issuer: inter.cert.subjectName,
      notBefore: new Date(notBefore),
      notAfter: new Date(notAfter),
      publicKey,
      signingKey: inter.signingKey,
      signingAlgorithm: ECDSA_SHA256,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
        await x509.SubjectKeyIdentifierExtension.create(publicKey, false, wc),
        new x509.AuthorityKeyIdentifierExtension(inter.keyId, false),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }], false),
      ],
    }, wc);
    const certPem = pemOf(cert);
    return {
      certPem,
      chainPem: certPem + inter.certPem,
      spiffeId,
      serial: new NodeX509(certPem).serialNumber,
      notBefore,
      notAfter,
    };
  }
}

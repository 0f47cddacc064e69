// validate-client-certificate: checks the TLS client certificate of the request (trust, dates, identities); failure → 403.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { PolicyError, errorResponse, type PolicyContext } from '../proxy/policy-context.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';

const MAX_IDENTITIES = 10;
const MAX_CHAIN = 8;

/** An identity with its claims normalised for comparison (absent claims are not checked). */
export interface CertIdentity {
  thumbprint?: string;
  serialNumber?: string;
  commonName?: string;
  subject?: string[];
  dnsName?: string;
  issuerSubject?: string[];
  issuerThumbprint?: string;
}

export interface CertRules {
  validateTrust: boolean;
  /** Trust anchors (caFile). */
  trusted: X509Certificate[];
  validateNotBefore: boolean;
  validateNotAfter: boolean;
  identities: CertIdentity[];
}

/** Why a certificate fails: LastError.Reason and Message. */
export interface CertProblem {
  reason: string;
  message: string;
}

const hex = (s: string): string => s.replace(/[\s:]/g, '').toUpperCase();
const serial = (s: string): string => hex(s).replace(/^0+(?=.)/, '');

const KEY_ALIASES: Record<string, string> = { S: 'ST', E: 'EMAILADDRESS', EMAIL: 'EMAILADDRESS', SERIALNUMBER: 'SERIALNUMBER' };

/**
 * A distinguished name as a sorted list of `KEY=value` (keys upper-case, values lower-case), so "CN=a, O=b" (.NET's
 * form, as API Management writes it) equals Node's "O=b\nCN=a". A certificate's (Node's form) is split at newlines
 * only (its values may hold commas); a configured one at newlines, commas and semicolons not escaped with `\`.
 */
export function normalizeDn(dn: string, fromCert = false): string[] {
  const parts = dn.split(fromCert ? /\n/ : /(?<!\\)[\n,;]/).map((p) => p.trim()).filter((p) => p !== '');
  return parts
    .map((p) => {
      const eq = p.indexOf('=');
      if (eq < 0) return p.toLowerCase();
      const key = p.slice(0, eq).trim().toUpperCase();
      let value = p.slice(eq + 1).trim().replace(/\\(.)/g, '$1');
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
      return `${KEY_ALIASES[key] ?? key}=${value.toLowerCase()}`;
    })
    .sort();
}

function sameDn(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function commonNames(cert: X509Certificate): string[] {
  return normalizeDn(cert.subject, true).filter((p) => p.startsWith('CN=')).map((p) => p.slice(3));
}

function dnsNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (san === undefined) return [];
  const out: string[] = [];
  for (const m of san.matchAll(/DNS:(?:"((?:[^"\\]|\\.)*)"|([^,]*))/g)) out.push((m[1] ?? m[2]).trim().toLowerCase());
  return out;
}

function issuedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.checkIssued(issuer) && cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function datesProblem(cert: X509Certificate, rules: CertRules, now: number, what: string): CertProblem | null {
  if (rules.validateNotBefore && now < cert.validFromDate.getTime()) return { reason: 'ClientCertificateNotYetValid', message: `${what} is not valid before ${cert.validFromDate.toISOString()}` };
  if (rules.validateNotAfter && now > cert.validToDate.getTime()) return { reason: 'ClientCertificateExpired', message: `${what} expired at ${cert.validToDate.toISOString()}` };
  return null;
}

/** leaf → … → a trust anchor, using the intermediates the client sent; null when there is no such chain. */
function chainToAnchor(leaf: X509Certificate, presented: readonly X509Certificate[], anchors: readonly X509Certificate[]): X509Certificate[] | null {
  const chain = [leaf];
  let cur = leaf;
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    if (anchors.some((a) => a.fingerprint256 === cur.fingerprint256)) return chain;
    const anchor = anchors.find((a) => issuedBy(cur, a));
    if (anchor !== undefined) return [...chain, anchor];
    const next = presented.find((c) => c.ca && !chain.includes(c) && issuedBy(cur, c));
    if (next === undefined) return null;
    chain.push(next);
    cur = next;
  }
  return null;
}

function matches(id: CertIdentity, leaf: X509Certificate, issuer: X509Certificate | undefined): boolean {
  if (id.thumbprint !== undefined && hex(leaf.fingerprint) !== id.thumbprint) return false;
  if (id.serialNumber !== undefined && serial(leaf.serialNumber) !== id.serialNumber) return false;
  if (id.commonName !== undefined && !commonNames(leaf).includes(id.commonName)) return false;
  if (id.subject !== undefined && !sameDn(normalizeDn(leaf.subject, true), id.subject)) return false;
  if (id.dnsName !== undefined && !dnsNames(leaf).includes(id.dnsName)) return false;
  if (id.issuerSubject !== undefined && !sameDn(normalizeDn(leaf.issuer, true), id.issuerSubject)) return false;
  if (id.issuerThumbprint !== undefined && (issuer === undefined || hex(issuer.fingerprint) !== id.issuerThumbprint)) return false;
  return true;
}

/**
 * Checks a client certificate (`presented[0]` is the leaf, the rest what the client sent with it) at `now` (epoch ms):
 * null when it passes every rule and matches an identity (or none is defined).
 */
export function certificateProblem(presented: readonly X509Certificate[], rules: CertRules, now: number): CertProblem | null {
  const leaf = presented[0];
  if (leaf === undefined) return { reason: 'ClientCertificateMissing', message: 'the request has no client certificate' };
  const dates = datesProblem(leaf, rules, now, 'the client certificate');
  if (dates !== null) return dates;
  let chain: X509Certificate[] | null = null;
  if (rules.validateTrust) {
    chain = chainToAnchor(leaf, presented.slice(1), rules.trusted);
    if (chain === null) return { reason: 'ClientCertificateNotTrusted', message: 'the client certificate does not chain to a trusted CA' };
    for (let i = 1; i < chain.length; i++) {
      const p = datesProblem(chain[i], rules, now, `CA certificate ${JSON.stringify(chain[i].subject.replace(/\n/g, ', '))} of the chain`);
      if (p !== null) return { reason: 'ClientCertificateNotTrusted', message: p.message };
    }
  }
  if (rules.identities.length === 0) return null;
  const issuer = chain?.[1] ?? [...presented.slice(1), ...rules.trusted].find((c) => issuedBy(leaf, c));
  if (rules.identities.some((id) => matches(id, leaf, issuer))) return null;
  return { reason: 'ClientCertificateIdentityMismatch', message: 'the client certificate matches none of the identities' };
}

interface PeerCert {
  raw?: Buffer;
  issuerCertificate?: PeerCert;
}
type PeerSocket = { getPeerCertificate?: (detailed: boolean) => PeerCert | null };

/** Parsed certificates per TLS connection (h2 streams and keep-alive requests share one). */
const parsed = new WeakMap<object, X509Certificate[]>();

/**
 * The certificate the client presented on this request's TLS connection, leaf first, then the chain it sent; empty
 * when there is none (plain HTTP, or a listener that does not ask for client certificates).
 */
export function presentedCertificates(pc: PolicyContext): X509Certificate[] {
  const socket = (pc.forward?.request as { socket?: PeerSocket } | undefined)?.socket;
  if (socket === undefined || socket === null || typeof socket.getPeerCertificate !== 'function') return [];
  const hit = parsed.get(socket);
  if (hit !== undefined) return hit;
  const out: X509Certificate[] = [];
  let c: PeerCert | null | undefined = socket.getPeerCertificate(true);
  const seen = new Set<PeerCert>();
  while (c !== null && c !== undefined && Buffer.isBuffer(c.raw) && !seen.has(c) && out.length < MAX_CHAIN) {
    seen.add(c);
    try {
      out.push(new X509Certificate(c.raw));
    } catch {
      break;
    }
    c = c.issuerCertificate;
  }
  parsed.set(socket, out);
  return out;
}

function readCaFile(file: string): X509Certificate[] {
  const text = readFileSync(file, 'utf8');
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`caFile ${file} holds no PEM certificate`);
  return blocks.map((b) => new X509Certificate(b));
}

function identityOf(raw: Record<string, unknown>, i: number): CertIdentity {
  const s = (k: string): string | undefined => (typeof raw[k] === 'string' ? (raw[k] as string) : undefined);
  const id: CertIdentity = {};
  if (s('thumbprint') !== undefined) id.thumbprint = hex(s('thumbprint')!);
  if (s('serialNumber') !== undefined) id.serialNumber = serial(s('serialNumber')!);
  if (s('commonName') !== undefined) id.commonName = s('commonName')!.toLowerCase();
  if (s('subject') !== undefined) id.subject = normalizeDn(s('subject')!);
  if (s('dnsName') !== undefined) id.dnsName = s('dnsName')!.toLowerCase();
  if (s('issuerSubject') !== undefined) id.issuerSubject = normalizeDn(s('issuerSubject')!);
  if (s('issuerThumbprint') !== undefined) id.issuerThumbprint = hex(s('issuerThumbprint')!);
  if (Object.keys(id).length === 0) throw new Error(`identities[${i}] names no claim (thumbprint, serialNumber, commonName, subject, dnsName, issuerSubject, issuerThumbprint)`);
  return id;
}

export const validateClientCertificatePolicy: PolicyFactory = (attrs, env) => {
  if (attrs.validateRevocation === true) throw new Error('validateRevocation: true is not supported (Lockgate checks no CRL or OCSP); set it to false');
  const validateTrust = attrs.validateTrust !== false;
  let trusted: X509Certificate[] = [];
  if (typeof attrs.caFile === 'string') {
    const file = resolve(dirname(env.entry.file), attrs.caFile);
    try {
      trusted = readCaFile(file);
    } catch (err) {
      throw new Error(`caFile: ${(err as Error).message}`, { cause: err });
    }
  } else if (validateTrust) {
    throw new Error('validateTrust needs caFile (the CA certificates client certificates must chain to), or validateTrust: false');
  }
  const rawIds = (attrs.identities ?? []) as Array<Record<string, unknown>>;
  if (rawIds.length > MAX_IDENTITIES) throw new Error(`at most ${MAX_IDENTITIES} identities (got ${rawIds.length})`);
  const rules: CertRules = {
    validateTrust,
    trusted,
    validateNotBefore: attrs.validateNotBefore !== false,
    validateNotAfter: attrs.validateNotAfter !== false,
    identities: rawIds.map(identityOf),
  };
  const ignoreError = attrs.ignoreError === true;
  return {
    name: 'validate-client-certificate',
    path: env.entry.path,
    run(pc) {
      const problem = certificateProblem(presentedCertificates(pc), rules, Date.now());
      if (problem === null || ignoreError) return;
      throw new PolicyError('validate-client-certificate', problem.reason, problem.message, errorResponse(403, 'Invalid client certificate.'));
    },
  };
};

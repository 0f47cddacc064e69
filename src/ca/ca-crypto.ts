// The key and certificate plumbing the CA files share: @peculiar/x509 bound to Node's WebCrypto, P-256 keys, PEM, fingerprints.
import './reflect-metadata-shim.ts'; // must run before @peculiar/x509 loads (tsyringe checks for it at load time)
import { createPrivateKey, createPublicKey, webcrypto, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';

/** Node's WebCrypto, passed explicitly to every @peculiar/x509 call that takes one. */
export const wc = webcrypto;
export type CryptoKey = webcrypto.CryptoKey;
x509.cryptoProvider.set(wc);

export { x509 };

export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface P256Key {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** PKCS#8 PEM, the only form a key leaves memory in (sealed, or handed to the node that owns it). */
  keyPem: string;
}

export async function generateP256(): Promise<P256Key> {
  const pair = await wc.subtle.generateKey(EC_P256, true, ['sign', 'verify']);
  const der = Buffer.from(await wc.subtle.exportKey('pkcs8', pair.privateKey));
  try {
    const keyPem = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }) as string;
    return { privateKey: pair.privateKey, publicKey: pair.publicKey, keyPem };
  } finally {
    der.fill(0);
  }
}

/** True for an EC key on P-256 (Node's name for it is prime256v1). */
export function isP256(key: KeyObject): boolean {
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

/** A private key from PEM (PKCS#8 or SEC1); undefined unless it is a P-256 key. */
export function p256PrivateKey(pem: string): KeyObject | undefined {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    return undefined;
  }
  return isP256(key) ? key : undefined;
}

/** The signing CryptoKey and the normalized PKCS#8 PEM of a P-256 private key. */
export function signingKeyOf(key: KeyObject): { signingKey: CryptoKey; keyPem: string } {
  return {
    signingKey: key.toCryptoKey(EC_P256, false, ['sign']),
    keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string,
  };
}

/** Whether the private key belongs to the certificate (same SubjectPublicKeyInfo). */
export function keyMatchesCertificate(key: KeyObject, certPublicKey: KeyObject): boolean {
  const a = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const b = certPublicKey.export({ type: 'spki', format: 'der' });
  return a.equals(b);
}

/** 16 random bytes as a positive DER INTEGER of exactly 16 bytes (high bit clear, first byte non-zero), in hex. */
export function randomSerialHex(): string {
  const b = new Uint8Array(16);
  wc.getRandomValues(b);
  b[0] &= 0x7f;
  if (b[0] === 0) b[0] = 1;
  return Buffer.from(b).toString('hex');
}

/** X.509 times have whole seconds: round down so the numbers we report are exactly those in the certificate. */
export function floorSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

/** PEM text with exactly one trailing newline, so chains are plain concatenations. */
export function pemOf(cert: x509.X509Certificate): string {
  return `${cert.toString('pem').replace(/\r\n/g, '\n').trimEnd()}\n`;
}

/** Every PEM block of type `label` in `text`, each normalized to end with one newline. */
export function pemBlocks(text: string, label = 'CERTIFICATE'): string[] {
  const re = new RegExp(`-----BEGIN ${label}-----[\\s\\S]*?-----END ${label}-----`, 'g');
  return [...text.matchAll(re)].map((m) => `${m[0].replace(/\r\n/g, '\n')}\n`);
}

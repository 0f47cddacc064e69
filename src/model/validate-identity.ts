// IdentityProvider checks within one document (the references from Apis are checked in identity-refs.ts).
import { report, type DocContext } from './doc-context.ts';
import { resolveFile } from './resolve-file.ts';
import { didYouMean } from './suggest.ts';
import type { IdentityProviderSpec } from './types.ts';

const KNOWN_ALGS = new Set(['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);

export function finishIdentityProvider(spec: IdentityProviderSpec, cx: DocContext): void {
  if (!spec) return;
  const secrets = (['clientSecret', 'clientSecretFile', 'clientSecretEnv'] as const).filter((k) => spec[k] !== undefined);
  if (secrets.length > 1) report(cx, `spec.${secrets[1]}`, `set at most one of clientSecret, clientSecretFile and clientSecretEnv (also got ${secrets[0]})`);
  if (typeof spec.clientSecretFile === 'string' && spec.clientSecretFile !== '') spec.clientSecretFile = resolveFile(cx, 'spec.clientSecretFile', spec.clientSecretFile);
  if (Array.isArray(spec.scopes) && !spec.scopes.includes('openid')) report(cx, 'spec.scopes', 'the scopes must include "openid"');
  (spec.allowedAlgorithms ?? []).forEach((a, i) => {
    if (typeof a !== 'string') return;
    if (a.toLowerCase() === 'none') report(cx, `spec.allowedAlgorithms[${i}]`, 'alg "none" can never be allowed');
    else if (!KNOWN_ALGS.has(a)) report(cx, `spec.allowedAlgorithms[${i}]`, `unsupported algorithm ${JSON.stringify(a)}${didYouMean(a, [...KNOWN_ALGS])}`);
    else if (a.startsWith('HS')) report(cx, `spec.allowedAlgorithms[${i}]`, `${a} needs a shared secret, which a provider's JWKS never publishes; use validate-jwt with issuerSigningKeys for HMAC tokens`);
  });
  if (typeof spec.clockSkew === 'number' && spec.clockSkew > 60_000) report(cx, 'spec.clockSkew', 'clockSkew above 60s accepts expired tokens for too long (RFC 8725)');
  if (typeof spec.issuer === 'string' && spec.issuer.startsWith('http:') && !isLoopback(spec.issuer)) {
    report(cx, 'spec.issuer', 'an issuer must use https (http only on a loopback address, for development)');
  }
}

function isLoopback(url: string): boolean {
  try {
    const h = new URL(url).hostname;
    return h === 'localhost' || h === '127.0.0.1' || h === '[::1]';
  } catch {
    return false;
  }
}

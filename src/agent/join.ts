// Bootstrap: trust the control plane from the join token alone (pinned root fingerprint), then trade the token for a certificate.
import { X509Certificate, createHash } from 'node:crypto';
import { createKeyAndCsr } from '../ca/csr.ts';
import { checkServerSpiffeId, spiffeIdOf } from '../ca/peer-identity.ts';
import type { NodeKind } from '../model/snapshot.ts';
import { sleep } from './backoff.ts';
import { ControlCallError, ControlSession } from './control-session.ts';

/** The control plane's own workload ID in a trust domain. */
export function controlPlaneSpiffeId(trustDomain: string): string {
  return `spiffe://${trustDomain}/ns/lockgate-system/sa/control-plane`;
}

/** SHA-256 of a root's DER, base64url: the last part of a join token. */
export function rootFingerprint(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('base64url');
}

/** The pinned root fingerprint of a `lgj1.<id>.<secret>.<fingerprint>` token, or undefined when it is not one. */
export function tokenFingerprint(token: string): string | undefined {
  const parts = token.split('.');
  return parts.length === 4 && parts[0] === 'lgj1' && /^[\w-]{43}$/.test(parts[3]) ? parts[3] : undefined;
}

export interface JoinOptions {
  /** `https://host:port` of the control plane. */
  url: string;
  token: string;
  /** The node id to ask for (the control plane may add a suffix when it is taken by another workload). */
  node?: string;
  /** Registers this endpoint at join (sidecars: the inbound listener's address). */
  endpoint?: { address: string; labels?: Record<string, string>; healthy?: boolean };
  signal: AbortSignal;
  timeoutMs?: number;
}

export interface JoinResult {
  nodeId: string;
  spiffeId: string;
  kind: NodeKind;
  namespace: string;
  service: string;
  trustDomain: string;
  chainPem: string;
  keyPem: string;
  bundle: string[];
  notAfter: number;
}

interface BundleAnswer {
  trustDomain?: unknown;
  trustBundle?: unknown;
}

interface JoinAnswer {
  nodeId: string;
  spiffeId: string;
  kind: NodeKind;
  namespace: string;
  service: string;
  certificate: string;
  notAfter: number;
  trustBundle: string[];
}

export async function joinControlPlane(o: JoinOptions): Promise<JoinResult> {
  const fingerprint = tokenFingerprint(o.token);
  if (!fingerprint) throw new Error('this is not a join token (expected lgj1.<id>.<secret>.<fingerprint>, from `lockgate token create`)');
  const timeoutMs = o.timeoutMs ?? 10_000;
  // 1. The bundle, unverified: nothing here is trusted except the root whose fingerprint the token carries.
  const open = new ControlSession(o.url, { ca: [], verify: false });
  let answer: BundleAnswer;
  try {
    answer = (await open.json('GET', '/v1/trust-bundle', { signal: o.signal, timeoutMs })).body as BundleAnswer;
  } finally {
    open.destroy();
  }
  const roots = Array.isArray(answer?.trustBundle) ? answer.trustBundle.filter((p): p is string => typeof p === 'string') : [];
  const pinned = roots.find((pem) => {
    try {
      return rootFingerprint(pem) === fingerprint;
    } catch {
      return false;
    }
  });
  if (!pinned) throw new Error('the control plane\'s trust bundle does not hold the root this token was made for: wrong address, or someone in between');
  const trustDomain = typeof answer.trustDomain === 'string' ? answer.trustDomain : '';
  // 2. A verified connection: the pinned root, and the control plane's own SPIFFE ID.
  const { keyPem, csrPem } = await createKeyAndCsr();
  const session = new ControlSession(o.url, { ca: [pinned], verify: true, checkServerIdentity: checkServerSpiffeId([controlPlaneSpiffeId(trustDomain)]) });
  let joined: JoinAnswer;
  try {
    const body = { token: o.token, csr: csrPem, node: o.node, ...(o.endpoint ? { address: o.endpoint.address, labels: o.endpoint.labels, healthy: o.endpoint.healthy } : {}) };
    // Many nodes starting at once from one address meet the join rate limit: wait as told (the token is not spent).
    for (let attempt = 1; ; attempt++) {
      try {
        joined = (await session.json('POST', '/v1/join', { body, signal: o.signal, timeoutMs })).body as JoinAnswer;
        break;
      } catch (err) {
        if (!(err instanceof ControlCallError) || err.status !== 429 || attempt >= 10) throw err;
        await sleep(Math.min(err.retryAfterMs ?? 1000, 5000) * (0.75 + Math.random() / 2), o.signal);
        o.signal.throwIfAborted();
      }
    }
  } finally {
    session.close();
  }
  if (spiffeIdOf(joined.certificate) !== joined.spiffeId) throw new Error(`the control plane returned a certificate for ${spiffeIdOf(joined.certificate)}, not ${joined.spiffeId}`);
  return {
    nodeId: joined.nodeId, spiffeId: joined.spiffeId, kind: joined.kind, namespace: joined.namespace, service: joined.service, trustDomain,
    chainPem: joined.certificate, keyPem, bundle: joined.trustBundle, notAfter: joined.notAfter,
  };
}

// The node API: trust bundle, join with a one-time token, renew, the snapshot stream, ACK/NACK, endpoint registration.
import type { AuditSink } from '../store/audit-record.ts';
import { randomBytes, X509Certificate } from 'node:crypto';
import type { ConfigStore } from '../store/config-store.ts';
import { workloadId } from '../lib/spiffe-id.ts';
import type { NodeIdentity, SnapshotAck } from '../model/snapshot.ts';
import { ControlError, readBody, requireAccess, sendJson } from './control-server.ts';
import type { Caller, ControlRequest, ControlRoute, RouteContext } from './control-routes.ts';
import { checkTokenIdentity, consumeJoinToken, createJoinToken } from './join-tokens.ts';
import { createRateLimiter, type RateLimiter } from './join-rate-limit.ts';
import { NodeStreams } from './node-stream.ts';
import { bundleFingerprint, NodeTracker, VERSION_SKEW_POLICY, type AppAddress, type IssuedRecord } from './node-tracker.ts';
import { EndpointRegistry, endpointProblem } from './registry.ts';
import { SnapshotCompiler, type SnapshotCompilerOptions } from './snapshot-compiler.ts';
import { parseDuration } from '../lib/duration.ts';

/** The part of the certificate authority the node API uses. */
export interface NodeCa {
  readonly trustDomain: string;
  trustBundle(): string[];
  issueFromCsr(csrPem: string, spiffeId: string, lifetimeMs: number): Promise<{ chainPem: string; serial: string; notBefore: number; notAfter: number }>;
}

export interface NodeApiDeps {
  store: ConfigStore;
  ca: NodeCa;
  registry: EndpointRegistry;
  tracker: NodeTracker;
  compiler: { meshSettings(): { certificateLifetime: number }; readonly version: number };
  streams: NodeStreams;
  now?: () => number;
  /** Join and renew share it: per source address and global token buckets (10/s, burst 20 per source). */
  limiter?: RateLimiter;
  /** Overrides the Mesh's certificateLifetime (tests). */
  certificateLifetimeMs?: () => number;
  /** Security-relevant events (failed joins): one line each. */
  log?: (event: string, fields: Record<string, unknown>) => void;
  /** Where nodes' reported access decisions (denies, audit decisions, sampled allows) are recorded. */
  audit?: AuditSink;
}

/** Most decisions one report may carry (a node sends at most this many a second; the rest it counts as dropped). */
export const MAX_REPORTED_DECISIONS = 200;

const str = (v: unknown, max: number): string => (typeof v === 'string' ? v.slice(0, max) : '');

const NODE_ID = /^[a-z0-9][a-z0-9.-]{0,62}$/;
const CSR = /^-----BEGIN CERTIFICATE REQUEST-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE REQUEST-----\s*$/;

async function readJson(req: ControlRequest, signal: AbortSignal): Promise<Record<string, unknown>> {
  const body = await readBody(req, signal);
  let v: unknown;
  try {
    v = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ControlError('bad_request', 'the body must be a JSON object');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ControlError('bad_request', 'the body must be a JSON object');
  return v as Record<string, unknown>;
}

function sourceOf(req: ControlRequest): string {
  return req.socket?.remoteAddress ?? 'unknown';
}

function nodeCaller(cx: RouteContext): Extract<Caller, { kind: 'node' }> {
  if (cx.caller.kind !== 'node') throw new ControlError('forbidden', 'this route is for mesh nodes');
  return cx.caller;
}

/** The optional `app` of a registration: where the sidecar's app listens (tcp host:port, or a unix socket path). */
export function appAddressOf(v: unknown): AppAddress | undefined {
  if (v === undefined) return undefined;
  const bad = (): ControlError => new ControlError('bad_request', 'app must be { address, transport: "tcp" | "unix" }: host:port for tcp, an absolute path for unix');
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad();
  const { address, transport } = v as { address?: unknown; transport?: unknown };
  if (typeof address !== 'string' || address.length > 1024) throw bad();
  if (transport === 'unix' && address.startsWith('/') && !address.includes('\0')) return { address, transport };
  if (transport === 'tcp' && endpointProblem({ address }) === undefined) return { address, transport };
  throw bad();
}

/**
 * The fingerprint of the root (in `bundle`) that a chain's intermediate was signed by, decided by signature, not by
 * name: every root of one trust domain has the same subject. Cached per intermediate (one per CA generation).
 */
function rootFinder(): (chainPem: string, bundle: readonly string[]) => string | undefined {
  const cache = new Map<string, string | undefined>();
  return (chainPem, bundle) => {
    const pems = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
    const inter = pems[1];
    if (inter === undefined) return undefined;
    const key = `${inter}\n${bundle.join('')}`;
    if (cache.has(key)) return cache.get(key);
    let found: string | undefined;
    try {
      const ic = new X509Certificate(inter);
      for (const pem of bundle) {
        const root = new X509Certificate(pem);
        if (ic.checkIssued(root) && ic.verify(root.publicKey)) {
          found = root.fingerprint256;
          break;
        }
      }
    } catch {
      found = undefined;
    }
    if (cache.size > 16) cache.clear();
    cache.set(key, found);
    return found;
  };
}

function checkCsr(csr: unknown): string {
  if (typeof csr !== 'string' || csr.length > 16_384 || !CSR.test(csr)) throw new ControlError('bad_request', 'csr must be one PEM certificate request');
  return csr;
}

export function nodeApiRoutes(deps: NodeApiDeps): ControlRoute[] {
  const now = deps.now ?? Date.now;
  const limiter = deps.limiter ?? createRateLimiter({ now });
  const lifetime = deps.certificateLifetimeMs ?? (() => deps.compiler.meshSettings().certificateLifetime);
  const log = deps.log ?? ((event, fields) => process.stderr.write(`${JSON.stringify({ event, ...fields })}\n`));
  const rootOf = rootFinder();
  /** What the tracker records of a certificate just issued, and the bundle (with its fingerprint) the answer carries. */
  const issuedRecord = (cert: { chainPem: string; notAfter: number }, issuedAt: number): { issued: IssuedRecord; bundle: string[]; fingerprint: string } => {
    const bundle = deps.ca.trustBundle();
    return { issued: { root: rootOf(cert.chainPem, bundle), notAfter: cert.notAfter, issuedAt }, bundle, fingerprint: bundleFingerprint(bundle) };
  };

  const limit = (req: ControlRequest): void => {
    const d = limiter.allow(sourceOf(req));
    if (!d.ok) {
      const seconds = Math.max(1, Math.ceil(d.retryAfterMs / 1000));
      throw new ControlError('too_many_requests', d.scope === 'global' ? 'too many join and renew requests, retry later' : 'too many requests from this address, retry later', { headers: { 'retry-after': String(seconds) } });
    }
  };

  /** The node record a caller speaks for: it must exist and carry the caller's own SPIFFE ID. */
  const ownNode = (cx: RouteContext, id: unknown): { id: string; identity: NodeIdentity } => {
    const caller = nodeCaller(cx);
    if (typeof id !== 'string' || !NODE_ID.test(id)) throw new ControlError('bad_request', 'node must be the node id the join returned');
    const n = deps.tracker.get(id);
    if (!n) throw new ControlError('not_found', `unknown node "${id}": join first`);
    if (n.identity.spiffeId !== caller.spiffeId) throw new ControlError('forbidden', `node "${id}" belongs to another workload`);
    return { id, identity: n.identity };
  };

  const issue = async (csr: string, spiffeId: string) => {
    try {
      return await deps.ca.issueFromCsr(csr, spiffeId, lifetime());
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code && /csr/i.test(code)) throw new ControlError('bad_request', `the certificate request was refused: ${(err as Error).message}`, { cause: err });
      throw new ControlError('unavailable', 'the certificate authority cannot issue now', { cause: err });
    }
  };

  return [
    {
      method: 'GET', path: '/v1/trust-bundle', auth: 'none',
      handle: async (_req, res) => sendJson(res, 200, { trustDomain: deps.ca.trustDomain, trustBundle: deps.ca.trustBundle() }),
    },
    {
      method: 'POST', path: '/v1/join', auth: 'none',
      handle: async (req, res, cx) => {
        limit(req);
        const body = await readJson(req, cx.signal);
        const csr = checkCsr(body.csr);
        if (body.node !== undefined && (typeof body.node !== 'string' || !NODE_ID.test(body.node))) throw new ControlError('bad_request', 'node must be lower-case letters, digits, "." and "-" (at most 63)');
        const registration = body.address === undefined ? undefined : { address: body.address, labels: body.labels ?? {}, healthy: body.healthy ?? true };
        const problem = registration && endpointProblem(registration);
        if (problem) throw new ControlError('bad_request', problem);
        const app = appAddressOf(body.app);
        const spent = await consumeJoinToken(deps.store, body.token, now(), cx.signal);
        if (!spent.ok) {
          log('join_refused', { reason: spent.reason, source: sourceOf(req), requestId: cx.requestId });
          throw new ControlError('unauthorized', 'the join token is not valid (unknown, expired or already used)');
        }
        const { service, namespace, kind } = spent.identity;
        // The SPIFFE ID comes from the token; whatever the CSR asks for is ignored.
        const spiffeId = workloadId(deps.ca.trustDomain, namespace, service);
        const identity: NodeIdentity = { kind, namespace, service, spiffeId };
        let nodeId = (body.node as string | undefined) ?? `${service}-${randomBytes(4).toString('hex')}`;
        const taken = deps.tracker.get(nodeId);
        if (taken && taken.identity.spiffeId !== spiffeId) nodeId = `${nodeId.slice(0, 54)}-${randomBytes(4).toString('hex')}`;
        const issuedAt = now();
        const cert = await issue(csr, spiffeId);
        const rec = issuedRecord(cert, issuedAt);
        await deps.tracker.joined(nodeId, identity, cx.signal, { issued: rec.issued, bundle: rec.fingerprint, ...(app ? { app } : {}) });
        if (registration) {
          await deps.registry.register({ service: `${namespace}/${service}`, node: nodeId, spiffeId, address: registration.address as string, labels: registration.labels as Record<string, string>, healthy: registration.healthy as boolean }, cx.signal);
        }
        log('node_joined', { node: nodeId, spiffeId, kind, token: spent.id, source: sourceOf(req), requestId: cx.requestId });
        sendJson(res, 200, { nodeId, spiffeId, kind, namespace, service, certificate: cert.chainPem, notAfter: cert.notAfter, trustBundle: rec.bundle });
      },
    },
    {
      method: 'POST', path: '/v1/renew', auth: 'node',
      handle: async (req, res, cx) => {
        const caller = nodeCaller(cx);
        limit(req);
        const body = await readJson(req, cx.signal);
        const issuedAt = now();
        const cert = await issue(checkCsr(body.csr), caller.spiffeId);
        const rec = issuedRecord(cert, issuedAt);
        if (typeof body.node === 'string' && deps.tracker.get(body.node)?.identity.spiffeId === caller.spiffeId) deps.tracker.issued(body.node, rec.issued, rec.fingerprint);
        sendJson(res, 200, { spiffeId: caller.spiffeId, certificate: cert.chainPem, notAfter: cert.notAfter, trustBundle: rec.bundle });
      },
    },
    {
      method: 'GET', path: '/v1/stream', auth: 'node',
      handle: async (_req, res, cx) => {
        const node = ownNode(cx, cx.query.get('node'));
        const schema = cx.query.get('schema') ?? undefined;
        await deps.streams.serve({ ...node, schema: schema && schema.length <= 16 ? schema : undefined, delta: cx.query.get('delta') === '1' }, res, cx.signal);
      },
    },
    {
      // Access decisions the node made (identity issue §5): each denied (and audit-mode would-be-denied) call, and a
      // sample of allowed ones, into the audit trail with the node as actor.
      method: 'POST', path: '/v1/decisions', auth: 'node',
      handle: async (req, res, cx) => {
        const body = await readJson(req, cx.signal);
        const node = ownNode(cx, body.node);
        const list = body.decisions;
        if (!Array.isArray(list) || list.length > MAX_REPORTED_DECISIONS) throw new ControlError('bad_request', `decisions must be a list of at most ${MAX_REPORTED_DECISIONS}`);
        const dropped = Number.isSafeInteger(body.dropped) && (body.dropped as number) > 0 ? (body.dropped as number) : 0;
        let recorded = 0;
        if (deps.audit !== undefined) {
          for (const raw of list as Array<Record<string, unknown>>) {
            if (typeof raw !== 'object' || raw === null) continue;
            const outcome = raw.outcome === 'deny' || raw.outcome === 'audit' || raw.outcome === 'allow' ? raw.outcome : undefined;
            if (outcome === undefined) continue;
            await deps.audit.append({
              actor: node.identity.spiffeId,
              action: outcome === 'allow' ? 'access.allow-sampled' : `access.${outcome}`,
              target: str(raw.service, 300),
              reason: str(raw.reason, 1000),
              ...(typeof raw.requestId === 'string' ? { requestId: str(raw.requestId, 200) } : {}),
              details: {
                decision: str(raw.decision, 100), policy: str(raw.policy, 300), source: str(raw.source, 300), user: str(raw.user, 300),
                method: str(raw.method, 16), path: str(raw.path, 512), node: node.id, at: typeof raw.at === 'number' ? new Date(raw.at).toISOString() : '',
              },
            }, cx.signal);
            recorded++;
          }
          if (dropped > 0) {
            await deps.audit.append({ actor: node.identity.spiffeId, action: 'access.decisions-dropped', target: `${node.identity.namespace}/${node.identity.service}`, reason: 'more than the node reports a second', details: { dropped, node: node.id } }, cx.signal);
          }
        }
        sendJson(res, 200, { recorded, dropped });
      },
    },
    {
      method: 'POST', path: '/v1/ack', auth: 'node',
      handle: async (req, res, cx) => {
        const body = await readJson(req, cx.signal);
        const node = ownNode(cx, body.node);
        if (!Number.isSafeInteger(body.version) || typeof body.ok !== 'boolean') throw new ControlError('bad_request', 'an ack is { node, version, ok, reason? }');
        if (body.reason !== undefined && typeof body.reason !== 'string') throw new ControlError('bad_request', 'reason must be a string');
        const ack: SnapshotAck = { node: node.id, version: body.version as number, ok: body.ok, ...(body.reason !== undefined ? { reason: body.reason as string } : {}) };
        deps.tracker.answered(ack);
        sendJson(res, 200, { ok: true });
      },
    },
    {
      method: 'PUT', path: '/v1/endpoints', auth: 'node',
      handle: async (req, res, cx) => {
        const body = await readJson(req, cx.signal);
        const node = ownNode(cx, body.node);
        const problem = endpointProblem(body);
        if (problem) throw new ControlError('bad_request', problem);
        const app = appAddressOf(body.app);
        const rec = {
          service: `${node.identity.namespace}/${node.identity.service}`, node: node.id, spiffeId: node.identity.spiffeId,
          address: body.address as string, labels: (body.labels ?? {}) as Record<string, string>, healthy: (body.healthy ?? true) as boolean,
        };
        await deps.registry.register(rec, cx.signal);
        deps.tracker.app(node.id, app);
        sendJson(res, 200, { endpoint: rec, registryVersion: deps.registry.revision });
      },
    },
    {
      method: 'DELETE', path: '/v1/endpoints', auth: 'node',
      handle: async (_req, res, cx) => {
        const node = ownNode(cx, cx.query.get('node'));
        const removed = await deps.registry.deregister(`${node.identity.namespace}/${node.identity.service}`, node.id, cx.signal);
        sendJson(res, 200, { removed, registryVersion: deps.registry.revision });
      },
    },
    {
      method: 'GET', path: '/v1/nodes', auth: 'admin',
      // `configVersion`: the version a node's snapshot is compiled from now; a node whose ackedVersion lags it for
      // long is stale (unless the changes since did not concern it: versions move only for what a node gets).
      handle: async (_req, res, cx) => {
        const access = cx.caller.kind === 'admin' ? cx.caller.access : undefined;
        const nodes = deps.tracker.list().filter((n) => access?.allows('read', { namespace: n.identity.namespace, ...(n.identity.kind === 'sidecar' ? { services: [`${n.identity.namespace}/${n.identity.service}`] } : {}) }) === true);
        sendJson(res, 200, { policy: VERSION_SKEW_POLICY, configVersion: deps.compiler.version, nodes });
      },
    },
    {
      method: 'POST', path: '/v1/tokens', auth: 'admin',
      handle: async (req, res, cx) => {
        const body = await readJson(req, cx.signal);
        const problem = checkTokenIdentity({ service: body.service, namespace: body.namespace, kind: body.kind });
        if (problem) throw new ControlError('bad_request', problem);
        let ttlMs: number | undefined;
        if (body.ttl !== undefined) {
          ttlMs = typeof body.ttl === 'string' || typeof body.ttl === 'number' ? parseDuration(body.ttl) : undefined;
          if (ttlMs === undefined || ttlMs <= 0 || ttlMs > 7 * 86_400_000) throw new ControlError('bad_request', 'ttl must be a duration between 1s and 7d, e.g. "1h"');
        }
        const namespace = (body.namespace as string | undefined) ?? 'default';
        const kind = (body.kind as 'sidecar' | 'gateway' | undefined) ?? 'sidecar';
        // A sidecar's token is about its service; a gateway serves every Api of its namespace.
        requireAccess(cx.caller, 'write', { namespace, ...(kind === 'sidecar' ? { services: [`${namespace}/${body.service as string}`] } : {}) });
        // The token pins its first root: make that the active (newest) one, which the control plane's own certificate
        // chains to from a rotation's start on, so a token made during a rotation joins during it and after it.
        const created = await createJoinToken(deps.store, { service: body.service as string, namespace, kind, ttlMs, bundle: [...deps.ca.trustBundle()].reverse(), now, signal: cx.signal });
        log('join_token_created', { id: created.id, service: body.service, namespace, kind, by: cx.caller.kind === 'admin' ? cx.caller.subject : undefined, requestId: cx.requestId });
        sendJson(res, 201, { token: created.token, id: created.id, expiresAt: created.expiresAt, spiffeId: workloadId(deps.ca.trustDomain, namespace, body.service as string), kind });
      },
    },
  ];
}

export interface OpenNodeApiOptions {
  store: ConfigStore;
  ca: NodeCa;
  now?: () => number;
  limiter?: RateLimiter;
  certificateLifetimeMs?: () => number;
  /** Registry grace period after a node's stream ends (default 30 s). */
  endpointGraceMs?: number;
  heartbeatMs?: number;
  minPushIntervalMs?: number;
  log?: NodeApiDeps['log'];
  onError?: (err: unknown) => void;
  signal?: AbortSignal;
  /** End-user assertion keys, put into every node's snapshot. */
  assertionKeys?: SnapshotCompilerOptions['assertionKeys'];
  /** Approved just-in-time access, as AccessGrant documents in the snapshots of the nodes that enforce it. */
  grants?: SnapshotCompilerOptions['grants'];
  auditHead?: SnapshotCompilerOptions['auditHead'];
  audit?: AuditSink;
  /** Values of the secrets NamedValues name, for gateway snapshots. */
  secretValues?: SnapshotCompilerOptions['secretValues'];
}

/** Everything behind the node API, wired: mount `routes`, call `close()` before closing the store. */
export interface NodeApi {
  routes: ControlRoute[];
  registry: EndpointRegistry;
  tracker: NodeTracker;
  compiler: SnapshotCompiler;
  streams: NodeStreams;
  close(): Promise<void>;
}

export async function openNodeApi(o: OpenNodeApiOptions): Promise<NodeApi> {
  const now = o.now ?? Date.now;
  const registry = await EndpointRegistry.open({ store: o.store, now, graceMs: o.endpointGraceMs, signal: o.signal });
  const tracker = await NodeTracker.open({ store: o.store, now, signal: o.signal, onError: o.onError, bundleFingerprint: () => bundleFingerprint(o.ca.trustBundle()) });
  const compiler = await SnapshotCompiler.open({ store: o.store, registry, trustBundle: () => o.ca.trustBundle(), assertionKeys: o.assertionKeys, grants: o.grants, auditHead: o.auditHead, secretValues: o.secretValues, signal: o.signal, onError: o.onError });
  const streams = new NodeStreams({ compiler, registry, tracker, now, heartbeatMs: o.heartbeatMs, minPushIntervalMs: o.minPushIntervalMs, onError: o.onError });
  const routes = nodeApiRoutes({ store: o.store, ca: o.ca, registry, tracker, compiler, streams, now, limiter: o.limiter, certificateLifetimeMs: o.certificateLifetimeMs, log: o.log, audit: o.audit });
  return {
    routes, registry, tracker, compiler, streams,
    async close() {
      streams.close();
      compiler.close();
      registry.close();
      await tracker.close();
    },
  };
}

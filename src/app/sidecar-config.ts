// Turns a sidecar's snapshot into the two data-plane configs it runs: inbound (mTLS → local app) and outbound (app → peers).
import { parseWorkloadId, workloadId } from '../lib/spiffe-id.ts';
import { DEFAULT_MESH } from '../model/mesh-types.ts';
import type { Snapshot, EndpointRecord } from '../model/snapshot.ts';
import type { Config } from '../model/types.ts';
import type { MeshRouteRule, MeshServiceResource } from '../model/mesh-types.ts';

/** Where the sidecar's certificate files are: written by the agent (or given in standalone mode). */
export interface CertFiles {
  /** Leaf + intermediate, PEM. */
  certFile: string;
  keyFile: string;
  /** Trust bundle roots, PEM. */
  bundleFile: string;
  /** Changes whenever any of the three files changes: new handshakes and new pools pick up the new files. */
  generation: string;
}

export interface SidecarLayout {
  /** Qualified `namespace/service` this sidecar stands beside. */
  service: string;
  spiffeId: string;
  inbound: { address: string; port: number };
  outbound: { address: string; port: number };
  /** The local app: `http://host:port`, or `unix:/path` (its Unix socket). */
  appUrl: string;
  /** This sidecar's locality labels (region, zone), for locality-preferring load balancing. */
  labels: Record<string, string>;
  certs: CertFiles;
  accessLog: string;
  /** The end-user assertion keys file written from the snapshot (identity issue §2); absent = no assertions. */
  assertionKeysFile?: string;
}

type Doc = Record<string, unknown>;

const doc = (kind: string, name: string, namespace: string, spec: unknown): Doc => ({
  apiVersion: 'lockgate.dev/v1alpha1',
  kind,
  metadata: { name, namespace },
  spec,
});

/** YAML is a superset of JSON: one JSON document per YAML document keeps generation trivial and exact. */
function toText(docs: Doc[], meshText: string): string {
  return [...docs.map((d) => JSON.stringify(d)), meshText].filter((t) => t.trim() !== '').join('\n---\n');
}

/** A DNS-label-safe name for generated resources (`shop/orders@v2` → `m-shop-orders-v2`). */
function gen(prefix: string, ...parts: string[]): string {
  return `${prefix}-${parts.join('-')}`.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 63).replace(/-+$/, '');
}

/** Inbound: accept assertions addressed to this workload (and hand the app plain user headers); outbound: exchange the app's. */
const assertionsOf = (layout: SidecarLayout, outbound: boolean): Record<string, unknown> =>
  layout.assertionKeysFile === undefined ? {} : { assertions: { keysFile: layout.assertionKeysFile, exchange: outbound, userHeaders: !outbound } };

const gatewayCommon = (layout: SidecarLayout, mesh: Config['mesh'], extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  admin: { enabled: false },
  accessLog: { enabled: layout.accessLog !== 'off', path: layout.accessLog === 'off' ? 'stdout' : layout.accessLog },
  mesh: { maxHops: mesh.spec.maxHops, defaultAccess: mesh.spec.defaultAccess, identity: layout.spiffeId, ...extra },
});

/** The ports of a service declared `tcp`: opaque, passed through as bytes. */
const tcpPorts = (svc: MeshServiceResource | undefined): number[] => (svc?.spec.ports ?? []).filter((p) => p.protocol === 'tcp').map((p) => p.port);

/** The host a tunnel reaches the app's tcp ports on: the app's host, loopback when the app listens on a Unix socket. */
function appHost(appUrl: string): string {
  if (appUrl.startsWith('unix:')) return '127.0.0.1';
  return new URL(appUrl).hostname.replace(/^\[|\]$/g, '');
}

/**
 * Inbound: one mTLS listener (plaintext too in permissive mode); every request goes to the local app after the
 * AccessPolicies of this service allow it (the Api's `meshService`).
 */
export function inboundConfigText(snap: Snapshot, mesh: Config, layout: SidecarLayout): string {
  const [ns, name] = layout.service.split('/');
  const svc = mesh.meshServices.get(layout.service);
  const mode = svc?.spec.mtls ?? mesh.mesh.spec.mtls;
  const grpc = svc !== undefined && speaksGrpc(svc);
  const tcp = tcpPorts(svc);
  // Opaque ports: tunnels from callers' sidecars end here and reach the app's host at the port (after authorization).
  const tcpInbound = tcp.length > 0 ? { tcpInbound: { service: layout.service, host: appHost(layout.appUrl), ports: tcp, connectTimeout: 1000 } } : {};
  const docs: Doc[] = [
    doc('Gateway', 'sidecar-inbound', ns, {
      ...gatewayCommon(layout, mesh.mesh, { ...tcpInbound, ...assertionsOf(layout, false) }),
      listeners: [
        {
          name: 'inbound',
          address: layout.inbound.address,
          port: layout.inbound.port,
          protocol: 'https',
          tls: {
            certificates: [{ certFile: layout.certs.certFile, keyFile: layout.certs.keyFile }],
            minVersion: 'TLSv1.3',
            clientCertificate: 'require',
            clientCaFile: layout.certs.bundleFile,
            plaintext: mode === 'permissive',
            generation: layout.certs.generation,
          },
        },
      ],
    }),
    doc('Backend', gen('app', name), ns, {
      url: layout.appUrl,
      // A gRPC service's app speaks cleartext HTTP/2 with prior knowledge (h2c), as gRPC servers do.
      ...(grpc ? { protocol: 'h2' } : {}),
      // The app is local: no retries across the loopback hop (the caller's sidecar retries), fail fast on connect.
      retries: { attempts: 0 },
      outlierDetection: { enabled: false },
      timeouts: { connect: 1000 },
    }),
    doc('Api', gen('inbound', name), ns, { path: '/', backend: gen('app', name), meshService: layout.service }),
  ];
  return toText(docs, snap.config);
}

/** A service with a gRPC port: HTTP/2 on both hops (trailers, streams), the inbound's app over h2c. */
function speaksGrpc(svc: MeshServiceResource): boolean {
  return svc.spec.ports.some((p) => p.protocol === 'grpc');
}

/** The endpoints of one service, optionally only those labelled with a version (a subset for a split). */
function endpointsOf(snap: Snapshot, service: string, version: string | undefined): EndpointRecord[] {
  return (snap.endpoints[service] ?? []).filter((e) => e.healthy && (version === undefined || e.labels.version === version));
}

function backendSpec(svc: MeshServiceResource, eps: EndpointRecord[], layout: SidecarLayout): Record<string, unknown> {
  const s = svc.spec;
  const spiffeIds = [...new Set(eps.map((e) => e.spiffeId))];
  const locality: Record<string, string> = {};
  if (s.localityPreference && layout.labels.region) locality.region = layout.labels.region;
  if (s.localityPreference && layout.labels.zone) locality.zone = layout.labels.zone;
  return {
    ...(eps.length > 0
      ? { endpoints: eps.map((e) => ({ url: `https://${e.address}`, weight: 1, labels: e.labels })) }
      : { type: 'mesh', meshService: `${svc.metadata.namespace}/${svc.metadata.name}` }),
    // gRPC needs HTTP/2 end to end (trailers); h2 over TLS to the peer's inbound, negotiated by ALPN.
    ...(speaksGrpc(svc) ? { protocol: 'h2' } : {}),
    loadBalancing: s.loadBalancing,
    outlierDetection: s.outlierDetection,
    retries: s.retries,
    timeouts: {
      connect: s.timeouts.connect,
      perTry: s.timeouts.perTry || s.timeouts.request || 30_000,
      idle: s.timeouts.idle,
    },
    ...(Object.keys(locality).length > 0 ? { locality } : {}),
    tls: {
      caFile: layout.certs.bundleFile,
      certFile: layout.certs.certFile,
      keyFile: layout.certs.keyFile,
      verify: true,
      // None registered yet: the service's own workload identity, in this node's trust domain.
      spiffeIds: spiffeIds.length > 0 ? spiffeIds : [workloadId(parseWorkloadId(layout.spiffeId)?.trustDomain ?? DEFAULT_MESH.trustDomain, svc.metadata.namespace, svc.metadata.name)],
      generation: layout.certs.generation,
    },
  };
}

/** Hostnames a caller may use for a service: `name` (same namespace only), `name.ns`, `name.ns.svc`, `name.ns.svc.cluster.local`. */
export function serviceHostnames(service: string, callerNamespace: string): string[] {
  const [ns, name] = service.split('/');
  const names = [`${name}.${ns}`, `${name}.${ns}.svc`, `${name}.${ns}.svc.cluster.local`];
  return ns === callerNamespace ? [name, ...names] : names;
}

function ruleOperations(rule: MeshRouteRule, index: number): Array<Record<string, unknown>> {
  const matches = rule.matches.length > 0 ? rule.matches : [{ headers: {}, methods: [] }];
  return matches.map((m, j) => {
    const path = m.path === undefined ? '/*' : m.path.type === 'exact' ? m.path.value : m.path.value === '/' ? '/*' : `${m.path.value.replace(/\/$/, '')}/*`;
    return {
      name: gen('rule', String(index), String(j)),
      urlTemplate: path,
      methods: m.methods.length > 0 ? m.methods : ['*'],
      headers: Object.entries(m.headers).map(([h, v]) => ({ name: h, exact: v })),
    };
  });
}

/**
 * Outbound: one plain listener on loopback; one Api per MeshService (matched by Host), its endpoints the peers'
 * inbound listeners over mTLS. A MeshRoute turns into operations; a rule with several backends into a split Backend.
 */
export function outboundConfigText(snap: Snapshot, mesh: Config, layout: SidecarLayout): string {
  const [ns] = layout.service.split('/');
  const docs: Doc[] = [
    doc('Gateway', 'sidecar-outbound', ns, {
      ...gatewayCommon(layout, mesh.mesh, assertionsOf(layout, true)),
      // The local app on loopback passes on the request id (and trace) it was called with, as the inbound hop sent
      // them: its outbound calls carry the same id onwards.
      trustedProxies: ['127.0.0.0/8', '::1/128'],
      listeners: [{ name: 'outbound', address: layout.outbound.address, port: layout.outbound.port, protocol: 'http' }],
    }),
  ];
  const backendFor = new Map<string, string>();
  /**
   * The Backend for a service (or one version subset of it). A MeshRoute rule that sets its own timeouts or retries
   * gets Backends of its own (`rule` = its index), the rule's fields over the service's.
   */
  const subsetBackend = (service: string, version: string | undefined, rule?: { index: number; spec: MeshRouteRule }): string => {
    const own = rule !== undefined && (rule.spec.timeouts !== undefined || rule.spec.retries !== undefined);
    const key = `${service}@${version ?? ''}${own ? `#${rule.index}` : ''}`;
    let name = backendFor.get(key);
    if (name !== undefined) return name;
    const svc = mesh.meshServices.get(service);
    if (!svc) throw new Error(`MeshService ${service} is not in the snapshot`);
    name = gen('svc', service.replace('/', '-'), ...(version ? [version] : []), ...(own ? [`r${rule.index}`] : []));
    backendFor.set(key, name);
    const spec = backendSpec(svc, endpointsOf(snap, service, version), layout);
    if (own) {
      const t = rule.spec.timeouts;
      if (t !== undefined) {
        const base = spec.timeouts as { connect: number; perTry: number; idle: number };
        spec.timeouts = {
          connect: t.connect ?? base.connect,
          perTry: t.perTry || t.request || base.perTry,
          idle: t.idle ?? base.idle,
        };
      }
      if (rule.spec.retries !== undefined) spec.retries = { ...(spec.retries as object), ...rule.spec.retries };
    }
    docs.push(doc('Backend', name, ns, spec));
    return name;
  };
  const routesBySvc = new Map(mesh.meshRoutes.map((r) => [r.spec.service, r]));
  const tcpRoutes: Array<Record<string, unknown>> = [];
  for (const [key, svc] of mesh.meshServices) {
    const hostnames = serviceHostnames(key, ns);
    // Every service, so that a CONNECT to a port not declared tcp is told so (403) rather than "unknown" (404).
    tcpRoutes.push({ service: key, hostnames, ports: tcpPorts(svc), backend: `${ns}/${subsetBackend(key, undefined)}` });
    const route = routesBySvc.get(key);
    const apiName = gen('to', key.replace('/', '-'));
    if (!route) {
      docs.push(doc('Api', apiName, ns, { hostnames, path: '/', backend: subsetBackend(key, undefined) }));
      continue;
    }
    const operations: Array<Record<string, unknown>> = [];
    route.spec.rules.forEach((rule, i) => {
      const live = rule.backends.filter((b) => b.weight > 0);
      let backend: string;
      // A fault is a property of the Backend: a rule with one, even with a single backend, gets its own split Backend.
      const r = { index: i, spec: rule };
      if (live.length === 1 && rule.fault === undefined) backend = subsetBackend(live[0].service, live[0].version, r);
      else {
        backend = gen('split', key.replace('/', '-'), String(i));
        docs.push(doc('Backend', backend, ns, { split: live.map((b) => ({ backend: subsetBackend(b.service, b.version, r), weight: b.weight })), ...(rule.fault ? { fault: rule.fault } : {}) }));
      }
      for (const op of ruleOperations(rule, i)) operations.push({ ...op, backend });
    });
    docs.push(doc('Api', apiName, ns, { hostnames, path: '/', backend: subsetBackend(key, undefined), operations }));
  }
  if (tcpRoutes.length > 0) ((docs[0].spec as Record<string, unknown>).mesh as Record<string, unknown>).tcpRoutes = tcpRoutes;
  return toText(docs, snap.config);
}

// One compiled config version: router, upstream clusters and the settings the request path reads. Swapped atomically on reload.
import { readFileSync } from 'node:fs';
import { AssertionService, parseAssertionKeys } from './assertion.ts';
import type { ApiResource, BackendSpec, Config, GatewaySpec, Operation, PathOptions } from '../model/types.ts';
import { compileCidrs } from '../lib/cidr.ts';
import { sampleThreshold } from '../lib/trace-context.ts';
import { buildRouter, sameRouteShapes, type BuiltRouter, type RouteEntry, type Router } from './router.ts';
import { routeVariants } from '../model/api-routes.ts';
import { UpstreamCluster, type ClusterHooks } from './upstream-cluster.ts';
import type { ErrorStyle } from './error-response.ts';
import { compilePipeline, effectiveSections, isDefault, type BackendLookup, type CompiledPipeline, type PolicyRegistry, type PolicyServices, type RouteFacts, type RoutePolicies } from './policy-pipeline.ts';
import { defaultOf } from '../model/field.ts';
import { backendFields } from '../model/backend-fields.ts';
import { createCluster } from './balancers/locality-cluster.ts';
import { registerSplit } from './weighted-split.ts';
import { createFaultInjector, registerFault } from './fault-injection.ts';
import { apiHasAccessPolicies, compileAccessPolicies, type CompiledAccess } from '../policy/access-decision.ts';
import type { RouteAccess } from './policy-context.ts';
import { buildIdentity, type IdentityServices } from './identity-runtime.ts';
import type { IdentityRuntime } from './login-endpoints.ts';
import type { RouteAuth } from './route-auth.ts';

/** A node's assertion settings, with the keys read when the version was built. */
export interface RuntimeAssertions {
  service: AssertionService;
  /** What the service was built from: the next version keeps it (and its caches) while this is unchanged. */
  source: string;
  /** Plain listeners exchange the app's assertion (a sidecar's outbound side). */
  exchange: boolean;
  /** The inbound hop hands the app x-lockgate-user/-email/-groups. */
  userHeaders: boolean;
}

/** What a route resolves to. One object per operation per version; telemetry may key caches on it. */
export interface RouteTarget {
  api: string;
  operation: string;
  cluster: UpstreamCluster;
  errorStyle: ErrorStyle;
  /** Removed from the front of the path before forwarding ('' when the Api keeps its path) … */
  stripPrefix: string;
  /** … and replaced by this (the Api path, when only a path-scheme version segment is dropped). */
  prefixReplace: string;
  /** This Api's revision number (a request naming another with ;rev=N gets 404). */
  revision: number;
  pathOptions: PathOptions;
  /** consistent-hash input: a header name (lowercase), a cookie name, or the client IP. */
  hashHeader: string;
  hashCookie: string;
  hashClientIp: boolean;
  /** Subscription key check for this route, or null when the Api does not require one (keys are then ignored). */
  subscription: SubscriptionCheck | null;
  /** Telemetry's per-route slot (see Exchange.routeKey), created with the target so its shape never changes. */
  telemetry: unknown;
  /** Compiled ApiPolicy pipelines; null when the effective policy is the built-in one (the fast path). */
  policies: RoutePolicies | null;
  /** Qualified MeshService this route is the inbound side of (its AccessPolicies decide each request); '' = none. */
  meshService: string;
  /** End-user authentication by IdentityProviders (bearer, session, login); null = none. */
  auth: RouteAuth | null;
}

/** How a route's subscription key is found and what it may be scoped to (reference/apim.md §1.3). */
export interface SubscriptionCheck {
  /** Lowercase header name. */
  header: string;
  query: string;
  /** Products (protected or open) that contain the Api: keys scoped to them open it. */
  products: string[];
  /** An open product contains the Api: a request without a key (or with an invalid one) goes through. */
  open: boolean;
  /** That open product's name ('' when none). */
  openProduct: string;
}

export interface Runtime {
  readonly version: string;
  readonly config: Config;
  readonly gateway: GatewaySpec;
  readonly router: Router<RouteTarget>;
  readonly clusters: Map<string, UpstreamCluster>;
  readonly trusted: { contains(ip: string): boolean };
  /** Non-default path options some Api uses; tried only when the strict default canonicalization fails. */
  readonly lenientPathOptions: PathOptions[];
  /** Trace sampling threshold (ratio × 2^32) for traces the gateway starts or an untrusted client sent. */
  readonly sampleThreshold: number;
  /** Some Api has a non-current revision: requests may name one with ;rev=N. */
  readonly hasRevisions: boolean;
  /** Version query parameters of query-scheme version sets (lower-case). */
  readonly versionQueryNames: readonly string[];
  /** The AccessPolicies, compiled once per version; null when no Api has a meshService (nothing decides). */
  readonly access: CompiledAccess | null;
  /** `gateway.mesh.maxHops`: requests carrying this many `x-lockgate-hops` get 508; 0 = not a mesh node (no header). */
  readonly meshMaxHops: number;
  /** Gateway routes some AccessPolicy targets, with what deciding them needs; null when no policy targets an Api. */
  readonly gatewayAccess: ReadonlyMap<RouteTarget, RouteAccess> | null;
  /** IdentityProviders and the session store (login callback and logout paths); null when the config has none. */
  readonly identity: IdentityRuntime | null;
  /** End-user assertions between hops (`gateway.mesh.assertions`); null when not configured. */
  readonly assertions: RuntimeAssertions | null;
  /**
   * The entries the router was built from and the built router, so the next version can rebind it (same routes, new
   * targets); and each Api's entries, which the next version takes over when nothing they depend on changed.
   */
  readonly routes: { readonly entries: readonly RouteEntry<RouteTarget>[]; readonly built: BuiltRouter<RouteTarget>; readonly byApi: ReadonlyMap<ApiResource, ApiRoutes> };
}

/** One Api's routes in a version, and what they were made from (see buildRuntime). */
interface ApiRoutes {
  /** Variants and subscription check as JSON; '' = not to be taken over (the Api has policies to compile). */
  key: string;
  entries: RouteEntry<RouteTarget>[];
  /** Per entry: the Backend key it routes to and the cluster that was. */
  refs: string[];
  clusters: UpstreamCluster[];
}

/** Per-version traffic settings the composition root (or a test) may inject. */
export interface TrafficOptions {
  /** The random source of fault-injection percentages (Math.random by default). */
  random?: () => number;
}

/** The path sent to the backend for a matched route (query not included). */
export function forwardPath(route: RouteTarget, path: string): string {
  const sp = route.stripPrefix;
  if (sp === '') return path;
  const out = route.prefixReplace + (path.length === sp.length ? '' : path.slice(sp.length));
  return out === '' ? '/' : out;
}

/** The strict default; an Api may relax it (tried only when the default rejects a path). */
export const DEFAULT_PATH_OPTIONS: PathOptions = Object.freeze({ escapedSlashes: 'reject', backslash: 'reject', semicolon: 'reject' });

function sameOptions(a: PathOptions, b: PathOptions): boolean {
  return a.escapedSlashes === b.escapedSlashes && a.backslash === b.backslash && a.semicolon === b.semicolon;
}

function joinPath(base: string, template: string): string {
  if (base === '/' || base === '') return template.startsWith('/') ? template : `/${template}`;
  if (template === '/' || template === '') return base;
  return base + (template.startsWith('/') ? template : `/${template}`);
}

function backendKey(api: ApiResource, ref: string): string {
  return ref.includes('/') ? ref : `${api.metadata.namespace}/${ref}`;
}

/**
 * Builds a runtime. Clusters whose Backend spec is unchanged are taken over from `previous`, so a
 * reload keeps warm keep-alive pools and balancer state.
 */
/** The policy implementations (filters/) and the services they share, given by the composition root. */
export interface PolicyHooks {
  registry: PolicyRegistry;
  services: PolicyServices;
}

export function buildRuntime(
  config: Config,
  previous: Runtime | undefined,
  hooks: ClusterHooks = {},
  policyHooks?: PolicyHooks,
  traffic: TrafficOptions = {},
): { runtime?: Runtime; problems: string[] } {
  const clusters = new Map<string, UpstreamCluster>();
  const reused = new Set<UpstreamCluster>();
  for (const [key, b] of config.backends) {
    const old = previous?.clusters.get(key);
    // Same spec and the same TLS file contents (rewritten certificate files with an unchanged generation): keep its pools.
    if (old && JSON.stringify(old.spec) === JSON.stringify(b.spec) && !old.tlsFilesChanged()) {
      clusters.set(key, old);
      reused.add(old);
    } else {
      clusters.set(key, createCluster(key, b.spec, hooks));
    }
  }
  // Splits and faults are looked up by cluster on the request path: (re-)register them for this version.
  for (const [key, b] of config.backends) {
    const c = clusters.get(key)!;
    const split = b.spec.split;
    if (split !== undefined) {
      const legs = [];
      for (const leg of split) {
        const child = clusters.get(leg.backend);
        if (child !== undefined) legs.push({ cluster: child, weight: leg.weight });
      }
      registerSplit(c, legs);
    }
    if (b.spec.fault !== undefined) registerFault(c, createFaultInjector(b.spec.fault, traffic.random));
  }
  let meshRoutes = false;
  const entries: RouteEntry<RouteTarget>[] = [];
  let hasRevisions = false;
  const versionQueryNames: string[] = [];
  // Equal names share one string: each access-log line copies api and operation, and at 10,000 routes
  // thousands of `get-items-id` in one hot copy beat thousands of cold ones.
  const names = new Map<string, string>();
  const intern = (name: string): string => names.get(name) ?? (names.set(name, name), name);
  const policyProblems: string[] = [];
  const lenient: PathOptions[] = [];
  // Api "namespace/name" → the products that contain it.
  const productsOf = new Map<string, { names: string[]; open: boolean; openProduct: string }>();
  for (const p of config.products ?? []) {
    for (const key of p.spec.apis) {
      const e = productsOf.get(key) ?? { names: [], open: false, openProduct: '' };
      e.names.push(p.metadata.name);
      if (!p.spec.subscriptionRequired) {
        e.open = true;
        e.openProduct = p.metadata.name;
      }
      productsOf.set(key, e);
    }
  }
  // Apis some ApiPolicy reaches (at its own scope, an operation's, a product's that contains it, or globally): only
  // their routes compile pipelines; the others have the built-in policy without asking each route (10,000 of them).
  const policyApis = new Set<string>();
  let globalPolicy = false;
  for (const p of config.apiPolicies ?? []) {
    const scope = p.spec.scope;
    if (scope.global === true) globalPolicy = true;
    if (scope.api !== undefined) policyApis.add(scope.api);
    if (scope.product !== undefined) {
      for (const product of config.products ?? []) {
        if (`${product.metadata.namespace}/${product.metadata.name}` === scope.product) for (const key of product.spec.apis) policyApis.add(key);
      }
    }
  }
  const byApi = new Map<ApiResource, ApiRoutes>();
  const ident = buildIdentity(config, (policyHooks?.services ?? {}) as IdentityServices);
  for (const api of config.apis) {
    const s = api.spec;
    const apiKey = `${api.metadata.namespace}/${api.metadata.name}`;
    const withPolicies = policyHooks !== undefined && (globalPolicy || policyApis.has(apiKey));
    const inProducts = productsOf.get(apiKey);
    const subscription: SubscriptionCheck | null = s.subscriptionRequired
      ? {
        header: s.subscriptionKeyParameterNames.header.toLowerCase(),
        query: s.subscriptionKeyParameterNames.query,
        products: inProducts?.names ?? [],
        open: inProducts?.open ?? false,
        openProduct: inProducts?.openProduct ?? '',
      }
      : null;
    if (!sameOptions(s.pathOptions, DEFAULT_PATH_OPTIONS) && !lenient.some((o) => sameOptions(o, s.pathOptions))) lenient.push(s.pathOptions);
    const ops: Operation[] = s.operations.length
      ? s.operations
      : [{ name: '*', methods: ['*'], urlTemplate: '/*', headers: [] }];
    const set = s.versionSet === undefined ? undefined : config.versionSets?.get(s.versionSet)?.spec;
    const variants = routeVariants(s, set);
    if (s.revisionOf !== undefined) hasRevisions = true;
    if (set?.scheme === 'query' && !versionQueryNames.includes(set.queryName.toLowerCase())) versionQueryNames.push(set.queryName.toLowerCase());
    if (s.meshService !== undefined) meshRoutes = true;
    // The same Api object as last version (a worker keeps unchanged Apis, see app/config-message.ts), routed alike, to
    // the same clusters, with no policy to compile: last version's entries and targets serve as they are.
    const withAuth = ident.identity !== null && (s.authentication !== undefined || s.operations.some((o) => o.authentication !== undefined));
    const key = withPolicies || withAuth ? '' : JSON.stringify([variants, subscription]);
    const last = previous?.routes.byApi.get(api);
    if (last !== undefined && key !== '' && last.key === key && last.clusters.every((c, i) => clusters.get(last.refs[i]) === c)) {
      // (Indexed: buildRuntime is too large for V8 to optimize, and a for-of here allocated an iterator result per
      // route: ~0.4 MB per apply at 10,000 routes, young garbage that brought a node's scavenges forward.)
      const kept = last.entries;
      for (let i = 0; i < kept.length; i++) entries.push(kept[i]);
      byApi.set(api, last);
      continue;
    }
    const mine: ApiRoutes = { key, entries: [], clusters: [], refs: [] };
    for (const op of ops) for (const variant of variants) {
      const ref = backendKey(api, op.backend ?? s.backend);
      const cluster = clusters.get(ref);
      if (!cluster) continue; // validation guarantees the reference; be defensive anyway
      const hashOn = cluster.spec.loadBalancing.hashOn;
      const target: RouteTarget = {
        api: intern(api.metadata.name),
        operation: intern(op.name),
        cluster,
        errorStyle: s.errorStyle,
        // stripPath drops what matched the Api (version segment included); otherwise only a version segment goes.
        stripPrefix: s.stripPath ? (variant.path !== '/' ? variant.path : '') : variant.path !== s.path ? variant.path : '',
        prefixReplace: s.stripPath || s.path === '/' ? '' : s.path,
        revision: s.revision,
        pathOptions: s.pathOptions,
        hashHeader: hashOn?.header?.toLowerCase() ?? '',
        hashCookie: hashOn?.cookie ?? '',
        hashClientIp: hashOn?.clientIp === true,
        subscription,
        telemetry: null,
        policies: null,
        meshService: s.meshService ?? '',
        auth: withAuth ? ident.routeAuth(api, op) : null,
      };
      const entry = { hostnames: s.hostnames, path: joinPath(variant.path, op.urlTemplate), methods: op.methods, headers: variant.headers.length ? [...op.headers, ...variant.headers] : op.headers, value: target };
      entries.push(entry);
      mine.entries.push(entry);
      mine.clusters.push(cluster);
      mine.refs.push(ref);
      if (withPolicies) {
        try {
          target.policies = routePolicies(config, api, op, target, policyHooks, clusters, hooks);
        } catch (err) {
          policyProblems.push((err as Error).message);
        }
      }
    }
    byApi.set(api, mine);
  }
  // A new version with the same routes (a policy, a product or a Backend changed, not the paths): the compiled router
  // is rebound to the new targets instead of being built again (~70 ms at 10,000 routes, well under 1 ms this way).
  // Rebinding patches the previous version's router in place, so it happens last, below, once nothing can fail.
  const prior = previous?.routes;
  const fresh = prior === undefined || !sameRouteShapes(prior.entries, entries) ? buildRouter(entries) : undefined;
  const problems = [...(fresh?.problems ?? []), ...policyProblems, ...ident.problems];
  if (problems.length) {
    for (const c of clusters.values()) if (!reused.has(c)) void c.close();
    return { problems };
  }
  const gatewayPolicies = (config.accessPolicies ?? []).some((p) => p.spec.target.api !== undefined);
  const access = meshRoutes || gatewayPolicies
    ? compileAccessPolicies(config.accessPolicies ?? [], {
      defaultAccess: config.gateway.spec.mesh?.defaultAccess ?? config.mesh.spec.defaultAccess,
      trustDomain: config.mesh.spec.trustDomain,
    }, config.accessGrants ?? [])
    : null;
  let gatewayAccess: Map<RouteTarget, RouteAccess> | null = null;
  if (gatewayPolicies && access !== null) {
    gatewayAccess = new Map();
    const hop = `gateway ${config.gateway.metadata.name}`;
    for (const [api, routes] of byApi) {
      const key = `${api.metadata.namespace}/${api.metadata.name}`;
      for (const e of routes.entries) {
        const operation = e.value.operation;
        if (apiHasAccessPolicies(access, key, operation)) gatewayAccess.set(e.value, { compiled: access, target: { api: key, operation }, hop });
      }
    }
  }
  let assertions: RuntimeAssertions | null = null;
  const ac = config.gateway.spec.mesh?.assertions;
  if (ac !== undefined && config.gateway.spec.mesh?.identity !== undefined) {
    try {
      const text = readFileSync(ac.keysFile, 'utf8');
      const self = config.gateway.spec.mesh.identity;
      const source = `${self}\0${ac.forwardBearer === true}\0${text}`;
      // A new snapshot (an endpoint, a grant) is a new version: minted and verified assertions stay cached through it.
      const kept = previous?.assertions?.source === source ? previous.assertions.service : undefined;
      const service = kept ?? new AssertionService(parseAssertionKeys(text, ac.keysFile), self, Date.now, { forwardBearer: ac.forwardBearer === true });
      assertions = { service, source, exchange: ac.exchange, userHeaders: ac.userHeaders };
    } catch (err) {
      for (const c of clusters.values()) if (!reused.has(c)) void c.close();
      return { problems: [`spec.mesh.assertions.keysFile: ${(err as Error).message}`] };
    }
  }
  const trusted = compileCidrs(config.gateway.spec.trustedProxies);
  const built = fresh ?? (prior!.entries.every((e, i) => e === entries[i]) ? prior!.built : prior!.built.rebind(entries.map((e) => e.value)));
  const runtime: Runtime = {
    version: config.version,
    config,
    gateway: config.gateway.spec,
    router: built.router,
    clusters,
    trusted,
    lenientPathOptions: lenient,
    sampleThreshold: config.gateway.spec.tracing.otlpEndpoint ? sampleThreshold(config.gateway.spec.tracing.sampleRatio) : 0,
    hasRevisions,
    versionQueryNames,
    access,
    meshMaxHops: config.gateway.spec.mesh?.maxHops ?? 0,
    gatewayAccess,
    assertions,
    identity: ident.identity,
    routes: { entries, built, byApi },
  };
  return { runtime, problems: [] };
}

/** The pipelines of one route: without a product, and through each product that contains its Api. */
function routePolicies(
  config: Config,
  api: ApiResource,
  op: Operation,
  target: RouteTarget,
  hooks: PolicyHooks,
  clusters: Map<string, UpstreamCluster>,
  clusterHooks: ClusterHooks,
): RoutePolicies | null {
  const apiKey = `${api.metadata.namespace}/${api.metadata.name}`;
  const facts: RouteFacts = {
    apiKey,
    api: api.metadata.name,
    operation: op.name,
    urlTemplate: joinPath(api.spec.path, op.urlTemplate),
    apiPath: api.spec.path,
    stripPrefix: target.stripPrefix,
    gateway: config.gateway.metadata.name,
    spec: op.name === '*' ? null : op,
  };
  const compile = (product: string | null): CompiledPipeline | null => {
    const sections = effectiveSections(config.apiPolicies, apiKey, op.name, product);
    return isDefault(sections) ? null : compilePipeline(sections, hooks.registry, facts, hooks.services, lookup);
  };
  // authentication-certificate: the clusters this route can reach, and the certificates its policies present.
  const reachable = new Set<UpstreamCluster>([target.cluster]);
  const withCert: Array<{ cert: { certFile: string; keyFile: string }; variants: Map<UpstreamCluster, UpstreamCluster> }> = [];
  const baseOf = new Map<UpstreamCluster, UpstreamCluster>();
  const lookup: BackendLookup = {
    byName(ref) {
      const c = clusters.get(backendKey(api, ref));
      if (c === undefined) throw new Error(`Backend ${JSON.stringify(ref)} not found`);
      reachable.add(c);
      return c;
    },
    forUrl(url) {
      const key = `url:${url}`;
      let c = clusters.get(key);
      if (c === undefined) {
        let parsed: URL;
        try {
          parsed = new URL(url);
        } catch {
          throw new Error(`${JSON.stringify(url)} is not a URL`);
        }
        if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error(`${JSON.stringify(url)} is not an http(s) URL`);
        const spec = { ...(defaultOf(backendFields) as BackendSpec), endpoints: [{ url: url.replace(/\/$/, ''), weight: 1 }] };
        c = new UpstreamCluster(key, spec, clusterHooks);
        clusters.set(key, c);
      }
      reachable.add(c);
      return c;
    },
    withClientCertificate(cert) {
      const variants = new Map<UpstreamCluster, UpstreamCluster>();
      withCert.push({ cert, variants });
      // A cluster already presenting another certificate (a second policy) switches to this one.
      return (c) => variants.get(baseOf.get(c) ?? c);
    },
  };
  const none = compile(null);
  const byProduct = new Map<string, CompiledPipeline | null>();
  for (const p of config.products ?? []) {
    if (!p.spec.apis.includes(apiKey)) continue;
    byProduct.set(p.metadata.name, compile(`${p.metadata.namespace}/${p.metadata.name}`));
  }
  for (const { cert, variants } of withCert) {
    for (const base of reachable) {
      const v = certificateVariant(base, cert, clusters, clusterHooks);
      variants.set(base, v);
      if (v !== base) baseOf.set(v, base);
    }
  }
  if (none === null && [...byProduct.values()].every((v) => v === null)) return null;
  return { none, byProduct };
}

/**
 * `base` presenting a client certificate on its TLS connections (authentication-certificate): same endpoints and
 * settings, its own pools; one per backend and certificate per version, closed with the runtime. A backend with no
 * https endpoint has no TLS to present it on and is its own variant.
 */
function certificateVariant(base: UpstreamCluster, cert: { certFile: string; keyFile: string }, clusters: Map<string, UpstreamCluster>, hooks: ClusterHooks): UpstreamCluster {
  if (!base.spec.endpoints.some((e) => e.url.startsWith('https:'))) return base;
  const key = `${base.name}#cert:${cert.certFile}:${cert.keyFile}`;
  let c = clusters.get(key);
  if (c === undefined) {
    // Named like its base: metrics, logs and lockgate test's stubs see the same Backend.
    c = createCluster(base.name, { ...base.spec, tls: { verify: true, ...base.spec.tls, certFile: cert.certFile, keyFile: cert.keyFile } }, hooks);
    clusters.set(key, c);
  }
  return c;
}

/**
 * Closes the clusters of a retired runtime that the current one does not use. undici's Pool.close()
 * waits for the requests still running on them, so in-flight requests finish on their version.
 */
export function retireRuntime(old: Runtime, current: Runtime | undefined): Promise<void> {
  const keep = new Set(current ? [...current.clusters.values()] : []);
  const closing = [...old.clusters.values()].filter((c) => !keep.has(c));
  return Promise.all(closing.map((c) => c.close())).then(() => undefined);
}

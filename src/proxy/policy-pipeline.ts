// Effective policies (global → product → api → operation, merged at `base`) compiled once per config version into steps.
import type { ApiPolicyResource, PolicyEntry, PolicySection } from '../model/types.ts';
import type { PolicyContext, RouteFacts } from './policy-context.ts';

export type { RouteFacts } from './policy-context.ts';
import type { UpstreamCluster } from './upstream-cluster.ts';

export const SECTION_NAMES: readonly PolicySection[] = ['inbound', 'backend', 'outbound', 'onError'];

/** One compiled policy. `run` returns a promise only when it has to wait (a key fetch, the backend). */
export interface Step {
  readonly name: string;
  /** Where it was written: LastError.Path and trace output. */
  readonly path: string;
  run(pc: PolicyContext): void | Promise<void>;
  /** The policy reads or replaces the request body: the pipeline buffers it first. */
  readonly needsRequestBody?: boolean;
  /** The policy reads or replaces the response body: forward-request buffers it. */
  readonly needsResponseBody?: boolean;
  /** `file:line` of the policy (set by compilePipeline): for traces. */
  at?: string;
  /** The scope it came from (set by compilePipeline): context.LastError.Scope. */
  scope?: string;
  /** Compiled children (choose, retry): walked for the body flags. */
  readonly children?: readonly Step[];
}

export type Sections = Record<PolicySection, PolicyEntry[]>;

/** What a policy factory gets besides its attributes. `T` is the set of services the composition root provides. */
export interface CompileEnv {
  entry: PolicyEntry;
  section: PolicySection;
  /** Compiles a nested policy list (choose branches, retry body) in the same section. */
  compileList(list: readonly PolicyEntry[]): Step[];
  /** Facts about the route the pipeline belongs to. */
  route: RouteFacts;
  /** Services shared by the policies of one runtime (counters, caches, key sets, expression compiler). */
  services: PolicyServices;
  /** Clusters for set-backend-service. */
  backends: BackendLookup;
}

export interface BackendLookup {
  /** A Backend by "name" or "namespace/name" (in the Api's namespace); throws when there is none. */
  byName(ref: string): UpstreamCluster;
  /** A cluster for a base URL (created once per runtime and closed with it). */
  forUrl(url: string): UpstreamCluster;
  /**
   * authentication-certificate: maps a cluster to the same backend presenting this client certificate (absolute PEM
   * paths) on its TLS connections. The variants are built after the route's pipelines compile, for every cluster the
   * route can reach (its own and those set-backend-service named), so the returned function is usable at run time
   * only; a cluster with no https endpoint maps to itself, one the route cannot reach to undefined.
   */
  withClientCertificate(cert: { certFile: string; keyFile: string }): (base: UpstreamCluster) => UpstreamCluster | undefined;
}


/** Opaque to the data plane: each policy factory reads the services it needs. */
export type PolicyServices = Record<string, unknown>;

export type PolicyFactory = (attrs: Record<string, unknown>, env: CompileEnv) => Step;
export type PolicyRegistry = Readonly<Record<string, PolicyFactory>>;

/** A route's compiled pipelines: one per product that contains its Api (product scope), and one for none. */
export interface RoutePolicies {
  none: CompiledPipeline | null;
  byProduct: Map<string, CompiledPipeline | null>;
}

export interface CompiledPipeline {
  facts: RouteFacts;
  inbound: Step[];
  backend: Step[];
  outbound: Step[];
  onError: Step[];
  needsRequestBody: boolean;
  needsResponseBody: boolean;
  /** The first cors policy of inbound: alone it answers CORS preflights (API Management runs nothing else for them). */
  cors: Step | null;
  /** An access-check policy places the AccessPolicy check (else it runs right after inbound). */
  explicitAccessCheck: boolean;
}

const FORWARD: PolicyEntry = { name: 'forward-request', attrs: {}, file: '(built-in global policy)', line: 0, col: 0, path: 'backend[0]' };
const ROOT: Sections = { inbound: [], backend: [FORWARD], outbound: [], onError: [] };

/** A section list with its `base` replaced by the parent's; an absent section inherits the parent's whole. */
function mergeSection(child: PolicyEntry[] | undefined, parent: PolicyEntry[]): PolicyEntry[] {
  if (child === undefined) return parent;
  const out: PolicyEntry[] = [];
  for (const e of child) {
    if (e.name === 'base') out.push(...parent);
    else out.push(e);
  }
  return out;
}

/**
 * The effective policy for one operation, optionally reached through `product` (namespace/name).
 * Levels that have no ApiPolicy are skipped (as if they held `base` everywhere).
 */
export function effectiveSections(policies: readonly ApiPolicyResource[], apiKey: string, operation: string, product: string | null): Sections {
  const levels: ApiPolicyResource[] = [];
  const find = (pred: (p: ApiPolicyResource) => boolean) => {
    const p = policies.find(pred);
    if (p) levels.push(p);
  };
  find((p) => p.spec.scope.global === true);
  if (product !== null) find((p) => p.spec.scope.product === product);
  find((p) => p.spec.scope.api === apiKey && p.spec.scope.operation === undefined);
  find((p) => p.spec.scope.api === apiKey && p.spec.scope.operation === operation);
  let eff: Sections = ROOT;
  for (const level of levels) {
    const s = level.spec;
    eff = {
      inbound: mergeSection(s.inbound, eff.inbound),
      backend: mergeSection(s.backend, eff.backend),
      outbound: mergeSection(s.outbound, eff.outbound),
      onError: mergeSection(s.onError, eff.onError),
    };
  }
  return eff;
}

/** True when the effective policy is the built-in one: the route keeps the fast path. */
export function isDefault(s: Sections): boolean {
  return s.inbound.length === 0 && s.outbound.length === 0 && s.onError.length === 0 && s.backend.length === 1 && s.backend[0] === FORWARD;
}

function flags(steps: readonly Step[]): { req: boolean; res: boolean } {
  let req = false;
  let res = false;
  for (const s of steps) {
    if (s.needsRequestBody) req = true;
    if (s.needsResponseBody) res = true;
    if (s.children) {
      const f = flags(s.children);
      req ||= f.req;
      res ||= f.res;
    }
  }
  return { req, res };
}

export class PolicyCompileError extends Error {
  readonly entry: PolicyEntry;
  constructor(entry: PolicyEntry, message: string) {
    super(`${entry.file}:${entry.line}:${entry.col}: ${entry.name}: ${message} (${entry.path})`);
    this.entry = entry;
  }
}

export function compilePipeline(s: Sections, registry: PolicyRegistry, route: RouteFacts, services: PolicyServices, backends: BackendLookup): CompiledPipeline {
  let explicitAccessCheck = false;
  const compileList = (list: readonly PolicyEntry[], section: PolicySection): Step[] =>
    list.map((entry) => {
      if (entry.name === 'access-check') explicitAccessCheck = true;
      const factory = registry[entry.name];
      if (factory === undefined) throw new PolicyCompileError(entry, 'no implementation registered');
      const env: CompileEnv = { entry, section, compileList: (l) => compileList(l, section), route, services, backends };
      try {
        const step = factory(entry.attrs, env);
        step.at = `${entry.file.split('/').pop()}:${entry.line}`;
        step.scope = entry.scope ?? '';
        return step;
      } catch (err) {
        if (err instanceof PolicyCompileError) throw err;
        throw new PolicyCompileError(entry, (err as Error).message);
      }
    });
  const inbound = compileList(s.inbound, 'inbound');
  const backend = compileList(s.backend, 'backend');
  const outbound = compileList(s.outbound, 'outbound');
  const onError = compileList(s.onError, 'onError');
  const f = flags([...inbound, ...backend, ...outbound, ...onError]);
  // A policy in inbound or backend that needs the response body is meaningless; outbound/onError ones matter.
  return { facts: route, inbound, backend, outbound, onError, needsRequestBody: f.req, needsResponseBody: flags([...outbound, ...onError]).res, cors: inbound.find((st) => st.name === 'cors') ?? null, explicitAccessCheck };
}

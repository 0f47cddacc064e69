// The benchmark's scenarios and systems, by the names the report and `--only` use.
import type { BenchApi, BenchRequest } from './config.ts';
import { catchAllApi, generateRoutes, rotatingRequests } from './config.ts';
import { buildMeshIdentity } from './mesh-identity.ts';
import type { MeshIdentity } from './mesh-identity.ts';
import { buildPolicyChain } from './policy-chain.ts';

export const SYSTEMS = ['direct', 'lockgate', 'nginx', '@fastify/http-proxy', 'http-proxy', 'bare-dispatch', 'bare-mesh'] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** The Node peers; best-node-peer is the faster of these in a scenario. */
export const NODE_PEERS: SystemName[] = ['@fastify/http-proxy', 'http-proxy'];

export interface Scenario {
  name: string;
  systems: SystemName[];
  requests: BenchRequest[];
  /** Request body size for every request (POST), 0 for none. */
  bodyBytes: number;
  /** Response body size every request must get, checked before measuring. */
  responseBytes: number;
  /** The Apis of Lockgate's config in this scenario. */
  apis: BenchApi[];
  /** Lockgate-only additions: more config documents and a data directory (subscriptions). */
  lockgate?: { extraYaml: string; prepareDataDir?: (dir: string) => string };
  /** mesh-identity: the end users' tokens and the assertion keys (Lockgate's gateway → sidecar b). */
  meshIdentity?: MeshIdentity;
}

// bare-mesh is two processes with mTLS between them: only the two-hop scenario has a place for it.
const ALL: SystemName[] = SYSTEMS.filter((s) => s !== 'bare-mesh');
// The peers have no routing config, so in the route scenarios only Lockgate's number means
// anything; bare-dispatch (which forwards everything) is the ceiling it is compared with.
const ROUTED: SystemName[] = ['lockgate', 'bare-dispatch'];

export const SCENARIO_NAMES = ['small-get', 'large-response', 'post-16k', 'routes-10', 'routes-10000', 'policy-chain', 'mesh-hop', 'mesh-identity'] as const;

/** client → hop A → (mTLS) → hop B → app: two Lockgate sidecars, two bare-mesh processes, two nginx. */
export const MESH_SYSTEMS: SystemName[] = ['lockgate', 'bare-mesh', 'nginx'];

/** Builds every scenario; the 10,000-route set is generated here, once per run. */
export function buildScenarios(): Scenario[] {
  const routes10 = generateRoutes(10);
  const routes10k = generateRoutes(10_000);
  const chain = buildPolicyChain();
  const identity = buildMeshIdentity();
  return [
    { name: 'small-get', systems: ALL, requests: rotatingRequests('GET', '/api/items/', 100), bodyBytes: 0, responseBytes: 12, apis: [catchAllApi()] },
    { name: 'large-response', systems: ALL, requests: rotatingRequests('GET', '/large/', 100), bodyBytes: 0, responseBytes: 64 * 1024, apis: [catchAllApi()] },
    { name: 'post-16k', systems: ALL, requests: rotatingRequests('POST', '/upload/', 100), bodyBytes: 16 * 1024, responseBytes: 12, apis: [catchAllApi()] },
    { name: 'routes-10', systems: ROUTED, requests: routes10.requests, bodyBytes: 0, responseBytes: 12, apis: routes10.apis },
    { name: 'routes-10000', systems: ROUTED, requests: routes10k.requests, bodyBytes: 0, responseBytes: 12, apis: routes10k.apis },
    // Lockgate alone: its req/s here over its own small-get req/s is the policy-chain target.
    { name: 'policy-chain', systems: ['lockgate'], requests: chain.requests, bodyBytes: 0, responseBytes: 12, apis: [chain.api], lockgate: { extraYaml: chain.extraYaml, prepareDataDir: chain.prepareDataDir } },
    // small-get through two hops; Host `b` is the service name Lockgate's outbound sidecar routes by (the others ignore it).
    { name: 'mesh-hop', systems: MESH_SYSTEMS, requests: rotatingRequests('GET', '/api/items/', 100).map((r) => ({ ...r, host: 'b' })), bodyBytes: 0, responseBytes: 12, apis: [catchAllApi()] },
    // Lockgate alone: 1,000 end users through its gateway (validate-jwt, Api AccessPolicy, assertion minted) and sidecar b
    // (assertion verified, AccessPolicy on workload and groups); its req/s over Lockgate's mesh-hop is issue 5's target.
    { name: 'mesh-identity', systems: ['lockgate'], requests: identity.requests, bodyBytes: 0, responseBytes: 12, apis: [catchAllApi()], meshIdentity: identity },
  ];
}

const ALIASES: Record<string, SystemName> = { fastify: '@fastify/http-proxy', bare: 'bare-dispatch' };

export interface OnlyFilter {
  scenarios: string[] | null;
  systems: SystemName[] | null;
}

/**
 * `--only` takes comma-separated names, each a scenario or a system (the two sets do not
 * overlap): `small-get`, `small-get,lockgate`, `,lockgate`, `post-16k,nginx,http-proxy`. No
 * scenario named means all scenarios, no system named means all systems. Throws on an unknown
 * name so that a typo does not silently measure nothing.
 */
export function parseOnly(value: string | undefined): OnlyFilter {
  const scenarios: string[] = [];
  const systems: SystemName[] = [];
  for (const raw of (value ?? '').split(',')) {
    const name = raw.trim();
    if (name === '') continue;
    const system = ALIASES[name] ?? SYSTEMS.find((s) => s === name);
    if (system !== undefined) systems.push(system);
    else if ((SCENARIO_NAMES as readonly string[]).includes(name)) scenarios.push(name);
    else throw new Error(`unknown --only name "${name}"; scenarios: ${SCENARIO_NAMES.join(', ')}; systems: ${SYSTEMS.join(', ')}`);
  }
  return { scenarios: scenarios.length > 0 ? scenarios : null, systems: systems.length > 0 ? systems : null };
}

/** The scenarios of this run, each keeping only the selected systems; empty ones are dropped. */
export function selectScenarios(all: Scenario[], only: OnlyFilter): Scenario[] {
  return all
    .filter((s) => only.scenarios === null || only.scenarios.includes(s.name))
    .map((s) => ({ ...s, systems: s.systems.filter((y) => only.systems === null || only.systems.includes(y)) }))
    .filter((s) => s.systems.length > 0);
}

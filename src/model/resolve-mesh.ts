// Mesh references across resources: one Mesh, MeshService references from MeshRoute, AccessPolicy, Backend and Api, Backend splits.
import { report } from './doc-context.ts';
import { defaultMeshResource } from './mesh-types.ts';
import type { ParsedResource } from './parse-documents.ts';
import { didYouMean } from './suggest.ts';
import type {
  AccessPolicyResource,
  AccessRule,
  ApiResource,
  BackendResource,
  BackendSpec,
  MeshResource,
  MeshRouteResource,
  MeshServiceResource,
  MeshServiceSpec,
} from './types.ts';

function keyOf(r: ParsedResource): string {
  return `${r.resource.metadata.namespace}/${r.resource.metadata.name}`;
}

function where(r: ParsedResource): string {
  const s = r.resource.source;
  return s ? `${s.file}:${s.line}:${s.col}` : r.cx.file;
}

function qualify(ref: string, namespace: string): string {
  return ref.includes('/') ? ref : `${namespace}/${ref}`;
}

/** Resolves `ref` against a table of qualified keys; an unknown one is reported at `path` with a suggestion. */
function resolver<T extends { metadata: { namespace: string; name: string } }>(kind: string, table: Map<string, T>) {
  return (item: ParsedResource, ref: string, path: string): { key: string; found?: T } => {
    const key = qualify(ref, item.resource.metadata.namespace);
    const found = table.get(key);
    if (!found) {
      const [ns, name] = key.split('/');
      const sameNs = [...table.values()].filter((r) => r.metadata.namespace === ns).map((r) => r.metadata.name);
      report(item.cx, path, `${kind} ${JSON.stringify(name)} not found in namespace ${JSON.stringify(ns)}${didYouMean(name, sameNs)}`);
    }
    return { key, found };
  };
}

/** Copies the MeshService's traffic policy into a mesh Backend wherever the Backend does not set the field itself. */
function inheritPolicy(item: ParsedResource, spec: BackendSpec, svc: MeshServiceSpec): void {
  const written = (p: string) => item.cx.keys.has(p);
  for (const block of ['loadBalancing', 'retries', 'outlierDetection'] as const) {
    if (!written(`spec.${block}`)) {
      (spec as unknown as Record<string, unknown>)[block] = structuredClone(svc[block]);
      continue;
    }
    const own = spec[block] as unknown as Record<string, unknown>;
    const theirs = svc[block] as unknown as Record<string, unknown>;
    for (const k of Object.keys(theirs)) if (!written(`spec.${block}.${k}`)) own[k] = structuredClone(theirs[k]);
  }
  const t = svc.timeouts;
  const perTry = t.perTry > 0 ? t.perTry : t.request;
  if (!written('spec.timeouts.connect')) spec.timeouts.connect = t.connect;
  if (!written('spec.timeouts.idle')) spec.timeouts.idle = t.idle;
  if (!written('spec.timeouts.perTry') && perTry > 0) spec.timeouts.perTry = perTry;
}

export interface MeshParts {
  mesh: MeshResource;
  meshServices: Map<string, MeshServiceResource>;
  meshRoutes: MeshRouteResource[];
  accessPolicies: AccessPolicyResource[];
}

/**
 * Cross-resource mesh checks: one Mesh, MeshRoute/AccessPolicy/Backend/Api references to MeshServices, Backend
 * splits. Qualifies every reference to `namespace/name` and fills mesh Backends from their MeshService.
 */
export function resolveMesh(parsed: ParsedResource[], backends: Map<string, BackendResource>): MeshParts {
  const meshes = parsed.filter((p) => p.resource.kind === 'Mesh');
  for (const extra of meshes.slice(1)) report(extra.cx, 'kind', `only one Mesh is allowed (first defined at ${where(meshes[0])})`);
  const meshServices = new Map<string, MeshServiceResource>();
  for (const p of parsed) {
    if (p.resource.kind === 'MeshService' && !meshServices.has(keyOf(p))) meshServices.set(keyOf(p), p.resource);
  }
  const service = resolver('MeshService', meshServices);
  const portsOf = (svc: MeshServiceResource | undefined) => (svc?.spec?.ports ?? []).map((x) => x?.port);
  const meshRoutes = parsed.filter((p) => p.resource.kind === 'MeshRoute');
  for (const item of meshRoutes) {
    const spec = (item.resource as MeshRouteResource).spec;
    if (!spec) continue;
    if (typeof spec.service === 'string') spec.service = service(item, spec.service, 'spec.service').key;
    (spec.rules ?? []).forEach((rule, i) => {
      const p = `spec.rules[${i}].backends`;
      // Backends filled in from spec.service were reported (if unknown) with it.
      const written = item.cx.values.has(p);
      (rule?.backends ?? []).forEach((b, j) => {
        if (typeof b?.service !== 'string') return;
        b.service = written ? service(item, b.service, `${p}[${j}].service`).key : spec.service;
      });
    });
  }
  const accessPolicies = parsed.filter((p) => p.resource.kind === 'AccessPolicy');
  for (const item of accessPolicies) {
    const spec = (item.resource as AccessPolicyResource).spec;
    if (!spec) continue;
    const ns = item.resource.metadata.namespace;
    let ports: number[] | undefined;
    if (typeof spec.target?.service === 'string') {
      const { key, found } = service(item, spec.target.service, 'spec.target.service');
      spec.target.service = key;
      if (found) ports = portsOf(found);
    }
    const checkPort = (port: unknown, path: string) => {
      if (ports && typeof port === 'number' && !ports.includes(port)) {
        report(item.cx, path, `port ${port} is not a port of MeshService "${spec.target.service}" (${ports.join(', ')})`);
      }
    };
    (spec.target?.ports ?? []).forEach((port, i) => checkPort(port, `spec.target.ports[${i}]`));
    const visit = (rule: AccessRule | undefined, p: string): void => {
      if (!rule) return;
      (rule.ports ?? []).forEach((port, j) => checkPort(port, `${p}.ports[${j}]`));
      // Service-name sources are qualified like every other reference; `*` and SPIFFE IDs stay as written.
      if (rule.sources) rule.sources = rule.sources.map((s) => (typeof s === 'string' && s !== '*' && !s.startsWith('spiffe:') ? qualify(s, ns) : s));
      for (const c of ['all', 'any', 'none'] as const) (rule[c] ?? []).forEach((sub, j) => visit(sub, `${p}.${c}[${j}]`));
    };
    for (const section of ['allow', 'deny'] as const) (spec[section] ?? []).forEach((rule, i) => visit(rule, `spec.${section}[${i}]`));
  }
  for (const item of parsed) {
    if (item.resource.kind !== 'Backend') continue;
    const spec = (item.resource as BackendResource).spec;
    if (!spec) continue;
    if (typeof spec.meshService === 'string') {
      const { key, found } = service(item, spec.meshService, 'spec.meshService');
      spec.meshService = key;
      if (found?.spec && spec.type === 'mesh') inheritPolicy(item, spec, found.spec);
    }
    (spec.split ?? []).forEach((leg, i) => {
      if (typeof leg?.backend !== 'string') return;
      const path = `spec.split[${i}].backend`;
      const { key, found } = resolver('Backend', backends)(item, leg.backend, path);
      leg.backend = key;
      if (key === keyOf(item)) report(item.cx, path, 'a Backend cannot split to itself');
      else if (found?.spec?.split) report(item.cx, path, `Backend "${key}" is itself a split; split over Backends with endpoints`);
    });
  }
  for (const item of parsed) {
    if (item.resource.kind !== 'Api') continue;
    const spec = (item.resource as ApiResource).spec;
    if (typeof spec?.meshService === 'string') spec.meshService = service(item, spec.meshService, 'spec.meshService').key;
  }
  return {
    mesh: (meshes[0]?.resource as MeshResource | undefined) ?? defaultMeshResource(),
    meshServices,
    meshRoutes: meshRoutes.map((p) => p.resource as MeshRouteResource),
    accessPolicies: accessPolicies.map((p) => p.resource as AccessPolicyResource),
  };
}

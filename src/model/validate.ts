// Checks across resources (one Gateway, unique names, Backend references, route conflicts) and assembles the Config.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { defaultGateway } from './default-gateway.ts';
import { report } from './doc-context.ts';
import type { NamedValueInputs } from './named-value-types.ts';
import { rememberHidden, resolveNamedValues } from './named-values.ts';
import { configTextDigest, type ParsedResource } from './parse-documents.ts';
import { resolveMesh } from './resolve-mesh.ts';
import { findRouteConflicts } from './route-conflicts.ts';
import { didYouMean } from './suggest.ts';
import { resolveFragmentIncludes } from './validate-api-policy.ts';
import { resolveIdentityRefs, resolveRoleBindingRefs } from './identity-refs.ts';
import type { AccessGrantResource, AccessPolicyResource, ApiPolicyResource, ApiResource, ApiVersionSetResource, ApiVersionSetSpec, BackendResource, Config, GatewayResource, NamedValueResource, PolicyFragmentResource, Problem, ProductResource } from './types.ts';

function where(r: ParsedResource): string {
  const s = r.resource.source;
  return s ? `${s.file}:${s.line}:${s.col}` : r.cx.file;
}

/** Qualifies `name` with the referring namespace; `ns/name` stays as it is. */
export function qualifyRef(ref: string, namespace: string): string {
  return ref.includes('/') ? ref : `${namespace}/${ref}`;
}

function resolveBackendRefs(apis: ParsedResource[], backends: Map<string, BackendResource>): void {
  const check = (item: ParsedResource, ref: string, path: string): string => {
    const key = qualifyRef(ref, item.resource.metadata.namespace);
    if (backends.has(key)) return key;
    const [ns, name] = key.split('/');
    const sameNs = [...backends.values()].filter((b) => b.metadata.namespace === ns).map((b) => b.metadata.name);
    report(item.cx, path, `Backend ${JSON.stringify(name)} not found in namespace ${JSON.stringify(ns)}${didYouMean(name, sameNs)}`);
    return key;
  };
  for (const item of apis) {
    const spec = (item.resource as ApiResource).spec;
    if (!spec) continue;
    if (typeof spec.backend === 'string') spec.backend = check(item, spec.backend, 'spec.backend');
    (spec.operations ?? []).forEach((op, i) => {
      if (typeof op?.backend === 'string') op.backend = check(item, op.backend, `spec.operations[${i}].backend`);
    });
  }
}

/** Product → Api references resolve like Backend ones; an Api may be in at most one open product (API Management's rule). */
function resolveProductRefs(products: ParsedResource[], apis: ParsedResource[]): void {
  const apiKeys = new Set(apis.map((a) => `${a.resource.metadata.namespace}/${a.resource.metadata.name}`));
  const openOwner = new Map<string, string>();
  for (const item of products) {
    const spec = (item.resource as ProductResource).spec;
    if (!spec || !Array.isArray(spec.apis)) continue;
    spec.apis = spec.apis.map((ref, i) => {
      const key = qualifyRef(ref, item.resource.metadata.namespace);
      const [ns, name] = key.split('/');
      if (!apiKeys.has(key)) {
        const sameNs = apis.filter((a) => a.resource.metadata.namespace === ns).map((a) => a.resource.metadata.name);
        report(item.cx, `spec.apis[${i}]`, `Api ${JSON.stringify(name)} not found in namespace ${JSON.stringify(ns)}${didYouMean(name, sameNs)}`);
      } else if (spec.subscriptionRequired === false) {
        const other = openOwner.get(key);
        if (other !== undefined) report(item.cx, `spec.apis[${i}]`, `Api ${JSON.stringify(name)} is already in open product "${other}"; an Api can be in at most one open product`);
        else openOwner.set(key, item.resource.metadata.name);
      }
      return key;
    });
  }
}

/**
 * Version sets and revisions (API Management's model): each versioned Api names an existing set and a version
 * unique in it; the Apis of a set share path and hosts; a revision names a current Api, shares its path, hosts
 * and version, and has its own revision number.
 */
function resolveVersions(apis: ParsedResource[], sets: Map<string, ApiVersionSetResource>): Array<{ set: string; message: string }> {
  const setProblems: Array<{ set: string; message: string }> = [];
  const byKey = new Map(apis.map((a) => [`${a.resource.metadata.namespace}/${a.resource.metadata.name}`, a]));
  const qualify = (item: ParsedResource, ref: string) => qualifyRef(ref, item.resource.metadata.namespace);
  // Revisions first: they take the version fields of the Api they revise.
  const revisions = new Map<string, Set<number>>();
  for (const item of apis) {
    const spec = (item.resource as ApiResource).spec;
    if (!spec || spec.revisionOf === undefined) continue;
    const key = qualify(item, spec.revisionOf);
    spec.revisionOf = key;
    const base = byKey.get(key);
    const baseSpec = (base?.resource as ApiResource | undefined)?.spec;
    if (!base || !baseSpec) {
      const [ns, name] = key.split('/');
      const sameNs = apis.filter((a) => a.resource.metadata.namespace === ns).map((a) => a.resource.metadata.name);
      report(item.cx, 'spec.revisionOf', `Api ${JSON.stringify(name)} not found in namespace ${JSON.stringify(ns)}${didYouMean(name, sameNs)}`);
      continue;
    }
    if (baseSpec.revisionOf !== undefined) {
      report(item.cx, 'spec.revisionOf', `"${key}" is itself a revision; name the current Api`);
      continue;
    }
    if (spec.path !== baseSpec.path) report(item.cx, 'spec.path', `a revision keeps its Api's path ("${baseSpec.path}"), got "${spec.path}"`);
    if (JSON.stringify(spec.hostnames) !== JSON.stringify(baseSpec.hostnames)) report(item.cx, 'spec.hostnames', `a revision keeps its Api's hostnames`);
    spec.versionSet ??= baseSpec.versionSet;
    spec.version ??= baseSpec.version;
    const used = revisions.get(key) ?? new Set([baseSpec.revision]);
    if (used.has(spec.revision)) report(item.cx, 'spec.revision', `revision ${spec.revision} of "${key}" already exists; give each revision its own number`);
    used.add(spec.revision);
    revisions.set(key, used);
  }
  const versions = new Map<string, Map<string, ParsedResource>>();
  for (const item of apis) {
    const spec = (item.resource as ApiResource).spec;
    if (!spec) continue;
    if (spec.versionSet === undefined) {
      if (spec.version !== undefined && spec.revisionOf === undefined) report(item.cx, 'spec.version', 'a version needs a versionSet');
      continue;
    }
    const key = qualify(item, spec.versionSet);
    spec.versionSet = key;
    const set = sets.get(key);
    if (!set) {
      const [ns, name] = key.split('/');
      const sameNs = [...sets.values()].filter((s) => s.metadata.namespace === ns).map((s) => s.metadata.name);
      report(item.cx, 'spec.versionSet', `ApiVersionSet ${JSON.stringify(name)} not found in namespace ${JSON.stringify(ns)}${didYouMean(name, sameNs)}`);
      continue;
    }
    if (spec.version === undefined) {
      report(item.cx, 'spec.version', `an Api in version set "${key}" needs a version`, 'key');
      continue;
    }
    if (spec.revisionOf !== undefined) continue;
    const inSet = versions.get(key) ?? new Map<string, ParsedResource>();
    versions.set(key, inSet);
    const other = inSet.get(spec.version);
    if (other) {
      report(item.cx, 'spec.version', `version "${spec.version}" of set "${key}" is already Api "${other.resource.metadata.name}" (${where(other)})`);
      continue;
    }
    const first = [...inSet.values()][0];
    const firstSpec = (first?.resource as ApiResource | undefined)?.spec;
    if (firstSpec && (firstSpec.path !== spec.path || JSON.stringify(firstSpec.hostnames) !== JSON.stringify(spec.hostnames))) {
      report(item.cx, 'spec.path', `the Apis of version set "${key}" share one path and hosts; "${first!.resource.metadata.name}" has ${JSON.stringify(firstSpec.path)}`);
    }
    inSet.set(spec.version, item);
  }
  for (const [key, set] of sets) {
    const d = set.spec?.defaultVersion;
    if (d === undefined) continue;
    const known = [...(versions.get(key)?.keys() ?? [])];
    if (!known.includes(d)) setProblems.push({ set: key, message: `defaultVersion "${d}" is not the version of any Api in the set${didYouMean(d, known)}` });
  }
  return setProblems;
}

/** The resource `ref` names in `list` (qualified by the item's namespace), or undefined after reporting it at `path` with a suggestion. */
function lookupRef(item: ParsedResource, list: ParsedResource[], kind: string, ref: string, path: string): ParsedResource | undefined {
  const key = qualifyRef(ref, item.resource.metadata.namespace);
  const found = list.find((r) => `${r.resource.metadata.namespace}/${r.resource.metadata.name}` === key);
  if (!found) {
    const [ns, name] = key.split('/');
    const sameNs = list.filter((r) => r.resource.metadata.namespace === ns).map((r) => r.resource.metadata.name);
    report(item.cx, path, `${kind} ${JSON.stringify(name)} not found in namespace ${JSON.stringify(ns)}${didYouMean(name, sameNs)}`);
  }
  return found;
}

/** An Api reference at `<at>.api`, and optionally one of its operations at `<at>.operation`: reported when unknown. Returns the qualified Api key. */
function resolveApiRef(item: ParsedResource, apis: ParsedResource[], at: string, ref: string, operation: string | undefined): string {
  const api = lookupRef(item, apis, 'Api', ref, `${at}.api`);
  const key = qualifyRef(ref, item.resource.metadata.namespace);
  if (api && operation !== undefined) {
    const ops = ((api.resource as ApiResource).spec?.operations ?? []).map((o) => o?.name).filter((n): n is string => typeof n === 'string');
    if (!ops.includes(operation)) report(item.cx, `${at}.operation`, `operation ${JSON.stringify(operation)} not found in Api "${key}"${didYouMean(operation, ops)}`);
  }
  return key;
}

/** An AccessPolicy for the gateway names an existing Api (qualified `namespace/name` after this) and one of its operations. */
function resolveAccessPolicyApiRefs(policies: ParsedResource[], apis: ParsedResource[]): void {
  for (const item of policies) {
    const target = (item.resource as AccessPolicyResource).spec?.target;
    if (typeof target?.api === 'string') target.api = resolveApiRef(item, apis, 'spec.target', target.api, target.operation);
  }
}

/** ApiPolicy scopes name existing resources; one policy document per scope, as in API Management. */
function resolveApiPolicyRefs(policies: ParsedResource[], apis: ParsedResource[], products: ParsedResource[]): void {
  const byScope = new Map<string, ParsedResource>();
  for (const item of policies) {
    const spec = (item.resource as ApiPolicyResource).spec;
    const scope = spec?.scope;
    if (!scope) continue;
    if (scope.product !== undefined) {
      if (lookupRef(item, products, 'Product', scope.product, 'spec.scope.product')) scope.product = qualifyRef(scope.product, item.resource.metadata.namespace);
    }
    if (scope.api !== undefined) scope.api = resolveApiRef(item, apis, 'spec.scope', scope.api, scope.operation);
    const key = scope.global ? 'global' : scope.product !== undefined ? `product ${scope.product}` : `api ${scope.api}${scope.operation !== undefined ? ` operation ${scope.operation}` : ''}`;
    const first = byScope.get(key);
    if (first) report(item.cx, 'spec.scope', `another ApiPolicy already attaches at ${key} (${where(first)}); merge them into one`);
    else byScope.set(key, item);
  }
}

function sortProblems(problems: Problem[], files: string[]): Problem[] {
  const order = (f: string) => {
    const i = files.indexOf(f);
    return i < 0 ? files.length : i;
  };
  return problems.sort((a, b) => order(a.file) - order(b.file) || a.line - b.line || a.col - b.col);
}

/**
 * Cross-resource checks over everything parsed from all files, then the Config when nothing is wrong.
 * `texts` are the source texts in load order (they make the version; null: a check only, no version to make);
 * `problems` already holds per-document ones.
 */
export function assembleConfig(
  parsed: ParsedResource[],
  problems: Problem[],
  texts: string[] | null,
  files: string[],
  /** Values for NamedValues (env, secrets): references are then substituted; without, they are only checked. */
  namedValues?: NamedValueInputs,
): { config?: Config; problems: Problem[] } {
  const seen = new Map<string, ParsedResource>();
  for (const item of parsed) {
    const { kind, metadata } = item.resource;
    const key = `${kind}/${metadata.namespace}/${metadata.name}`;
    const first = seen.get(key);
    if (first) {
      report(item.cx, 'metadata.name', `duplicate ${kind} "${metadata.namespace}/${metadata.name}" (first defined at ${where(first)})`);
    } else seen.set(key, item);
  }
  // First, so that every check below and the Config see the substituted copies.
  const resolution = resolveNamedValues(parsed, namedValues);
  const gateways = parsed.filter((p) => p.resource.kind === 'Gateway');
  for (const extra of gateways.slice(1)) {
    report(extra.cx, 'kind', `only one Gateway is allowed (first defined at ${where(gateways[0])})`);
  }
  const backends = new Map<string, BackendResource>();
  for (const p of parsed) {
    if (p.resource.kind !== 'Backend') continue;
    const key = `${p.resource.metadata.namespace}/${p.resource.metadata.name}`;
    if (!backends.has(key)) backends.set(key, p.resource);
  }
  const apis = parsed.filter((p) => p.resource.kind === 'Api');
  resolveBackendRefs(apis, backends);
  const versionSets = new Map<string, ApiVersionSetResource>();
  const setItems = new Map<string, ParsedResource>();
  for (const p of parsed) {
    if (p.resource.kind !== 'ApiVersionSet') continue;
    const key = `${p.resource.metadata.namespace}/${p.resource.metadata.name}`;
    if (!versionSets.has(key)) versionSets.set(key, p.resource as ApiVersionSetResource);
    setItems.set(key, p);
  }
  for (const sp of resolveVersions(apis, versionSets)) {
    const item = setItems.get(sp.set);
    if (item) report(item.cx, 'spec.defaultVersion', sp.message);
  }
  findRouteConflicts(apis, new Map([...versionSets].map(([k, v]) => [k, v.spec as ApiVersionSetSpec])));
  const products = parsed.filter((p) => p.resource.kind === 'Product');
  resolveProductRefs(products, apis);
  const apiPolicies = parsed.filter((p) => p.resource.kind === 'ApiPolicy');
  resolveApiPolicyRefs(apiPolicies, apis, products);
  resolveAccessPolicyApiRefs(parsed.filter((p) => p.resource.kind === 'AccessPolicy'), apis);
  const identityProviders = resolveIdentityRefs(apis, parsed.filter((p) => p.resource.kind === 'IdentityProvider'));
  const roleBindings = resolveRoleBindingRefs(parsed.filter((p) => p.resource.kind === 'RoleBinding'), identityProviders);
  const fragments = parsed.filter((p) => p.resource.kind === 'PolicyFragment');
  resolveFragmentIncludes(
    apiPolicies.filter((p) => p.resource.spec).map((p) => ({ spec: (p.resource as ApiPolicyResource).spec, namespace: p.resource.metadata.namespace, cx: p.cx })),
    fragments.map((p) => ({ resource: p.resource as PolicyFragmentResource, cx: p.cx })),
  );
  const mesh = resolveMesh(parsed, backends);
  sortProblems(problems, files);
  if (problems.length > 0) return { problems };
  // Imported OpenAPI documents are part of the config: a change to one is a new version, and the gateway watches them.
  const imported = [...new Set(apis.map((p) => (p.resource as ApiResource).spec.import?.openapi).filter((f): f is string => typeof f === 'string'))];
  const importedTexts = texts === null ? [] : imported.map((f) => {
    try {
      return readFileSync(f, 'utf8');
    } catch {
      return '';
    }
  });
  let version = '';
  if (texts !== null) {
    const h = createHash('sha256');
    for (const t of texts) h.update(configTextDigest(t));
    version = h.update(importedTexts.join('')).update(resolution.digest).digest('hex').slice(0, 12);
  }
  const namedValueResources = parsed.filter((p) => p.resource.kind === 'NamedValue').map((p) => p.resource as NamedValueResource);
  const accessGrants = parsed.filter((p) => p.resource.kind === 'AccessGrant').map((p) => {
    const g = p.resource as AccessGrantResource;
    const s = g.spec.target.service;
    return s !== undefined && !s.includes('/') ? { ...g, spec: { ...g.spec, target: { ...g.spec.target, service: `${g.metadata.namespace}/${s}` } } } : g;
  });
  const config: Config = {
    gateway: (gateways[0]?.resource as GatewayResource | undefined) ?? defaultGateway(),
    apis: apis.map((p) => p.resource as ApiResource),
    backends,
    products: products.map((p) => p.resource as ProductResource),
    apiPolicies: apiPolicies.map((p) => p.resource as ApiPolicyResource),
    policyFragments: fragments.map((p) => p.resource as PolicyFragmentResource),
    versionSets,
    ...mesh,
    ...(identityProviders.size > 0 ? { identityProviders } : {}),
    ...(namedValueResources.length > 0 ? { namedValues: namedValueResources } : {}),
    ...(accessGrants.length > 0 ? { accessGrants } : {}),
    ...(roleBindings.length > 0 ? { roleBindings } : {}),
    ...(resolution.unresolved.size > 0 ? { unresolved: resolution.unresolved } : {}),
    version,
    files: [...files, ...imported.filter((f) => !files.includes(f))],
  };
  rememberHidden(config, resolution.hidden);
  return { config, problems };
}

// Checks across resources (one Gateway, unique names, Backend references, route conflicts) and assembles the Config.
import { createHash } from 'node:crypto';
import { defaultGateway } from './default-gateway.ts';
import { report } from './doc-context.ts';
import type { ParsedResource } from './parse-documents.ts';
import { findRouteConflicts } from './route-conflicts.ts';
import { didYouMean } from './suggest.ts';
import type { ApiPolicyResource, ApiResource, BackendResource, Config, GatewayResource, Problem, ProductResource } from './types.ts';

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

/** ApiPolicy scopes name existing resources; one policy document per scope, as in API Management. */
function resolveApiPolicyRefs(policies: ParsedResource[], apis: ParsedResource[], products: ParsedResource[]): void {
  const byScope = new Map<string, ParsedResource>();
  const lookup = (item: ParsedResource, list: ParsedResource[], kind: string, ref: string, path: string): ParsedResource | undefined => {
    const key = qualifyRef(ref, item.resource.metadata.namespace);
    const found = list.find((r) => `${r.resource.metadata.namespace}/${r.resource.metadata.name}` === key);
    if (!found) {
      const [ns, name] = key.split('/');
      const sameNs = list.filter((r) => r.resource.metadata.namespace === ns).map((r) => r.resource.metadata.name);
      report(item.cx, path, `${kind} ${JSON.stringify(name)} not found in namespace ${JSON.stringify(ns)}${didYouMean(name, sameNs)}`);
    }
    return found;
  };
  for (const item of policies) {
    const spec = (item.resource as ApiPolicyResource).spec;
    const scope = spec?.scope;
    if (!scope) continue;
    if (scope.product !== undefined) {
      if (lookup(item, products, 'Product', scope.product, 'spec.scope.product')) scope.product = qualifyRef(scope.product, item.resource.metadata.namespace);
    }
    if (scope.api !== undefined) {
      const api = lookup(item, apis, 'Api', scope.api, 'spec.scope.api');
      scope.api = qualifyRef(scope.api, item.resource.metadata.namespace);
      if (api && scope.operation !== undefined) {
        const ops = ((api.resource as ApiResource).spec?.operations ?? []).map((o) => o?.name).filter((n): n is string => typeof n === 'string');
        if (!ops.includes(scope.operation)) {
          report(item.cx, 'spec.scope.operation', `operation ${JSON.stringify(scope.operation)} not found in Api "${scope.api}"${didYouMean(scope.operation, ops)}`);
        }
      }
    }
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
 * `texts` are the source texts in load order (they make the version); `problems` already holds per-document ones.
 */
export function assembleConfig(
  parsed: ParsedResource[],
  problems: Problem[],
  texts: string[],
  files: string[],
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
  findRouteConflicts(apis);
  const products = parsed.filter((p) => p.resource.kind === 'Product');
  resolveProductRefs(products, apis);
  const apiPolicies = parsed.filter((p) => p.resource.kind === 'ApiPolicy');
  resolveApiPolicyRefs(apiPolicies, apis, products);
  sortProblems(problems, files);
  if (problems.length > 0) return { problems };
  const version = createHash('sha256').update(texts.join('')).digest('hex').slice(0, 12);
  const config: Config = {
    gateway: (gateways[0]?.resource as GatewayResource | undefined) ?? defaultGateway(),
    apis: apis.map((p) => p.resource as ApiResource),
    backends,
    products: products.map((p) => p.resource as ProductResource),
    apiPolicies: apiPolicies.map((p) => p.resource as ApiPolicyResource),
    version,
    files,
  };
  return { config, problems };
}

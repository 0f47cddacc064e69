// Reports operations (in one Api or across Apis) that claim the same host, method and full path template.
import { report } from './doc-context.ts';
import type { ParsedResource } from './parse-documents.ts';
import type { ApiSpec, ApiVersionSetSpec } from './types.ts';
import { routeVariants } from './api-routes.ts';

/** `/orders` + `/items/{id}` → `/orders/items/{id}`. */
export function joinPath(base: string, template: string): string {
  if (base === '/') return template;
  return template === '/' ? base : base + template;
}

// Parameter names do not change what a template matches: `/items/{id}` and `/items/{itemId}` collide.
function routeKey(route: string): string {
  return route.replace(/\{[^/}]*\}/g, '{}');
}

export function findRouteConflicts(apis: ParsedResource[], sets: ReadonlyMap<string, ApiVersionSetSpec> = new Map()): void {
  const claims = new Map<string, string>();
  for (const { resource, cx } of apis) {
    const spec = resource.spec as ApiSpec;
    if (!spec || typeof spec.path !== 'string' || !spec.hostnames || !spec.operations) continue;
    const id = `${resource.metadata.namespace}/${resource.metadata.name}`;
    const src = resource.source ? ` (${resource.source.file}:${resource.source.line})` : '';
    const hosts = spec.hostnames.length > 0 ? spec.hostnames : [''];
    const ops =
      spec.operations.length > 0
        ? spec.operations.map((op, i) => ({ op, path: `spec.operations[${i}].urlTemplate` }))
        : [{ op: { name: '', methods: ['*'], urlTemplate: '/*' }, path: 'spec.path' }];
    const variants = routeVariants(spec, spec.versionSet === undefined ? undefined : sets.get(spec.versionSet));
    for (const { op, path } of ops) for (const variant of variants) {
      if (!op?.methods || typeof op.urlTemplate !== 'string') continue;
      const route = joinPath(variant.path, op.urlTemplate);
      // Operations told apart by header conditions do not collide (the router tries the ones with conditions first).
      const conds = 'headers' in op && Array.isArray(op.headers) && op.headers.length > 0
        ? ` {${op.headers.map((h) => `${String(h.name).toLowerCase()}:${h.exact ?? ''}:${h.prefix ?? ''}:${h.present ?? ''}`).sort().join(',')}}`
        : '';
      // An imported operation names its place in the OpenAPI document.
      const imported = 'source' in op ? op.source : undefined;
      const at = imported ? ` (${imported.file}:${imported.line}:${imported.col})` : src;
      const owner = op.name ? `Api "${id}" operation "${op.name}"${at}` : `Api "${id}"${src}`;
      let reported = false;
      for (const host of hosts) {
        for (const method of op.methods) {
          const key = `${host} ${method} ${routeKey(route)}${variant.tag ? ` [${variant.tag}]` : ''}${conds}`;
          const first = claims.get(key);
          if (!first) {
            claims.set(key, owner);
            continue;
          }
          if (reported) continue;
          reported = true;
          const what = `${method === '*' ? 'any method' : method} ${host || '(any host)'}${route}${variant.tag ? ` (${variant.tag})` : ''}`;
          const mine = imported ? ` (operation "${op.name}" imported from ${imported.file}:${imported.line}:${imported.col})` : '';
          report(cx, path, `route conflict: ${what}${mine} is already claimed by ${first}`);
        }
      }
    }
  }
}

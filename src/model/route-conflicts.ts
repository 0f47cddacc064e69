// Reports operations (in one Api or across Apis) that claim the same host, method and full path template.
import { report } from './doc-context.ts';
import type { ParsedResource } from './parse-documents.ts';
import { keptOriginOf } from './parse-documents.ts';
import type { ApiSpec, ApiVersionSetSpec, Operation } from './types.ts';
import { routeVariants, type RouteVariant } from './api-routes.ts';

/** `/orders` + `/items/{id}` → `/orders/items/{id}`. */
export function joinPath(base: string, template: string): string {
  if (base === '/') return template;
  return template === '/' ? base : base + template;
}

// Parameter names do not change what a template matches: `/items/{id}` and `/items/{itemId}` collide.
function routeKey(route: string): string {
  return route.replace(/\{[^/}]*\}/g, '{}');
}

type ClaimOp = Pick<Operation, 'name' | 'methods' | 'urlTemplate'> & { headers?: Operation['headers']; source?: Operation['source'] };

/** One (host, method, route) an operation claims, in the order operation, variant, host, method. */
interface Claim {
  key: string;
  op: number;
  variant: number;
  host: string;
  method: string;
}

interface ApiClaims {
  /** The variants the claims were made for (they depend on the version set too). */
  variants: string;
  claims: Claim[];
}

/**
 * Claims by the kept document an Api was decoded from (parse-documents.ts): a 10,000-route config is checked on every
 * change, and an unchanged Api claims what it claimed last time when its variants are the same.
 */
const claimsByOrigin = new WeakMap<object, ApiClaims>();

function claimsOf(ops: ClaimOp[], hosts: string[], variants: RouteVariant[]): Claim[] {
  const out: Claim[] = [];
  ops.forEach((op, o) => {
    if (!op?.methods || typeof op.urlTemplate !== 'string') return;
    // Operations told apart by header conditions do not collide (the router tries the ones with conditions first).
    const conds = Array.isArray(op.headers) && op.headers.length > 0
      ? ` {${op.headers.map((h) => `${String(h.name).toLowerCase()}:${h.exact ?? ''}:${h.prefix ?? ''}:${h.present ?? ''}`).sort().join(',')}}`
      : '';
    variants.forEach((variant, v) => {
      const route = routeKey(joinPath(variant.path, op.urlTemplate));
      const tag = variant.tag ? ` [${variant.tag}]` : '';
      for (const host of hosts) {
        for (const method of op.methods) out.push({ key: `${host} ${method} ${route}${tag}${conds}`, op: o, variant: v, host, method });
      }
    });
  });
  return out;
}

export function findRouteConflicts(apis: ParsedResource[], sets: ReadonlyMap<string, ApiVersionSetSpec> = new Map()): void {
  const claims = new Map<string, string | (() => string)>();
  for (const { resource, cx } of apis) {
    const spec = resource.spec as ApiSpec;
    if (!spec || typeof spec.path !== 'string' || !spec.hostnames || !spec.operations) continue;
    const id = `${resource.metadata.namespace}/${resource.metadata.name}`;
    const hosts = spec.hostnames.length > 0 ? spec.hostnames : [''];
    const ops: ClaimOp[] = spec.operations.length > 0 ? spec.operations : [{ name: '', methods: ['*'], urlTemplate: '/*' }];
    const variants = routeVariants(spec, spec.versionSet === undefined ? undefined : sets.get(spec.versionSet));
    const origin = keptOriginOf(resource);
    const signature = JSON.stringify(variants);
    let mine = origin === undefined ? undefined : claimsByOrigin.get(origin);
    if (mine === undefined || mine.variants !== signature) {
      mine = { variants: signature, claims: claimsOf(ops, hosts, variants) };
      if (origin !== undefined) claimsByOrigin.set(origin, mine);
    }
    const src = resource.source ? ` (${resource.source.file}:${resource.source.line})` : '';
    // Who claimed it, for another operation's message: only ever built when there is a conflict.
    const ownerOf = (o: number) => (): string => {
      const op = ops[o];
      const imported = op.source;
      const at = imported ? ` (${imported.file}:${imported.line}:${imported.col})` : src;
      return op.name ? `Api "${id}" operation "${op.name}"${at}` : `Api "${id}"${src}`;
    };
    let reportedOp = -1;
    let reportedVariant = -1;
    let owner: { op: number; get: () => string } | undefined;
    for (const c of mine.claims) {
      const first = claims.get(c.key);
      if (first === undefined) {
        if (owner?.op !== c.op) owner = { op: c.op, get: ownerOf(c.op) };
        claims.set(c.key, owner.get);
        continue;
      }
      if (reportedOp === c.op && reportedVariant === c.variant) continue;
      reportedOp = c.op;
      reportedVariant = c.variant;
      const op = ops[c.op];
      const variant = variants[c.variant];
      const route = joinPath(variant.path, op.urlTemplate);
      const what = `${c.method === '*' ? 'any method' : c.method} ${c.host || '(any host)'}${route}${variant.tag ? ` (${variant.tag})` : ''}`;
      const imported = op.source;
      const me = imported ? ` (operation "${op.name}" imported from ${imported.file}:${imported.line}:${imported.col})` : '';
      const path = spec.operations.length > 0 ? `spec.operations[${c.op}].urlTemplate` : 'spec.path';
      report(cx, path, `route conflict: ${what}${me} is already claimed by ${typeof first === 'string' ? first : first()}`);
    }
  }
}

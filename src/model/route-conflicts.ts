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

/** Operations per Api in the packed claim owner (api index × OPS + operation index). */
const OPS = 2 ** 20;

/**
 * The claim lists of the last check that found no conflict, in order. Conflicts depend on nothing else: the same
 * lists again (every Api's document and variants unchanged, in the same order) cannot conflict either.
 */
let lastClean: readonly Claim[][] = [];

export function findRouteConflicts(apis: ParsedResource[], sets: ReadonlyMap<string, ApiVersionSetSpec> = new Map()): void {
  const checks: Array<{ item: ParsedResource; spec: ApiSpec; ops: ClaimOp[]; variants: RouteVariant[]; claims: Claim[] }> = [];
  for (const item of apis) {
    const resource = item.resource;
    const spec = resource.spec as ApiSpec;
    if (!spec || typeof spec.path !== 'string' || !spec.hostnames || !spec.operations) continue;
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
    checks.push({ item, spec, ops, variants, claims: mine.claims });
  }
  if (checks.length === lastClean.length && checks.every((c, i) => c.claims === lastClean[i])) return;
  // Claim key → who made it (packed api and operation index); names are built only for a conflict's message.
  const claims = new Map<string, number>();
  let clean = true;
  checks.forEach(({ item, spec, ops, variants, claims: mine }, a) => {
    const { cx } = item;
    const base = a * OPS;
    let reportedOp = -1;
    let reportedVariant = -1;
    for (const c of mine) {
      const first = claims.get(c.key);
      if (first === undefined) {
        claims.set(c.key, base + c.op);
        continue;
      }
      clean = false;
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
      report(cx, path, `route conflict: ${what}${me} is already claimed by ${ownerName(checks[Math.floor(first / OPS)], first % OPS)}`);
    }
  });
  lastClean = clean ? checks.map((c) => c.claims) : [];
}

/** `Api "ns/name" operation "op" (file:line)`: who made a claim, for another operation's conflict message. */
function ownerName(check: { item: ParsedResource; ops: ClaimOp[] }, o: number): string {
  const resource = check.item.resource;
  const id = `${resource.metadata.namespace}/${resource.metadata.name}`;
  const src = resource.source ? ` (${resource.source.file}:${resource.source.line})` : '';
  const op = check.ops[o];
  const imported = op.source;
  const at = imported ? ` (${imported.file}:${imported.line}:${imported.col})` : src;
  return op.name ? `Api "${id}" operation "${op.name}"${at}` : `Api "${id}"${src}`;
}

// Api checks that span several fields (methods, header matches, operation names), derived defaults and the OpenAPI import.
import { applyOpenApiImport } from './api-import.ts';
import { report } from './doc-context.ts';
import type { DocContext } from './doc-context.ts';
import { operationName, uniqueName } from './operation-name.ts';
import type { ApiSpec, HeaderMatch, Operation } from './types.ts';

export { operationName } from './operation-name.ts';

function finishHeader(h: HeaderMatch, p: string, cx: DocContext): void {
  h.name = h.name?.toLowerCase();
  const set = (['exact', 'prefix', 'present'] as const).filter((k) => h[k] !== undefined);
  if (set.length > 1) report(cx, p, `header match sets ${set.join(' and ')}; set at most one of exact, prefix, present`);
  if (set.length === 0) h.present = true;
}

function finishMethods(op: Operation & { method?: string }, p: string, cx: DocContext): void {
  if (op.method !== undefined) {
    const explicit = op.methods && !(op.methods.length === 1 && op.methods[0] === '*');
    if (explicit) report(cx, `${p}.method`, 'set either method or methods, not both');
    else op.methods = [op.method];
    delete op.method;
  }
  if (!op.methods) return;
  op.methods = op.methods.map((m) => m?.toUpperCase());
  if (op.methods.includes('*') && op.methods.length > 1) report(cx, `${p}.methods`, '"*" already matches every method; list it alone');
  const seen = new Set<string>();
  op.methods.forEach((m, j) => {
    if (m !== undefined && seen.has(m)) report(cx, `${p}.methods[${j}]`, `method ${m} is listed twice`);
    seen.add(m);
  });
}

/** Normalises hosts, methods and header names, names operations, reports clashes inside one Api. Mutates in place. */
export function finishApi(spec: ApiSpec, cx: DocContext): void {
  const hosts = new Set<string>();
  spec.hostnames = (spec.hostnames ?? []).map((h, i) => {
    const host = h?.toLowerCase();
    if (host !== undefined && hosts.has(host)) report(cx, `spec.hostnames[${i}]`, `hostname ${JSON.stringify(host)} is listed twice`);
    hosts.add(host);
    return host;
  });
  const explicit = new Set<string>();
  for (const op of spec.operations ?? []) if (op?.name) explicit.add(op.name);
  const names = new Set<string>();
  (spec.operations ?? []).forEach((op, i) => {
    if (!op) return;
    const p = `spec.operations[${i}]`;
    finishMethods(op, p, cx);
    (op.headers ?? []).forEach((h, j) => h && finishHeader(h, `${p}.headers[${j}]`, cx));
    if (op.name !== undefined) {
      if (names.has(op.name)) report(cx, `${p}.name`, `duplicate operation name ${JSON.stringify(op.name)}`);
      names.add(op.name);
      return;
    }
    if (!op.methods || !op.urlTemplate) return;
    // A derived name never clashes: `-2`, `-3` … are appended, skipping names given explicitly.
    // uniqueName shortens the base so that `-2` never pushes a 63-character name past the limit.
    const name = uniqueName(operationName(op.methods, op.urlTemplate), (n) => names.has(n) || explicit.has(n));
    op.name = name;
    names.add(name);
  });
  // After the hand-written operations are named, so that imported names never take theirs.
  if (spec.import) applyOpenApiImport(spec, cx);
}

// `spec.import.openapi` of an Api: reads the document at load time and merges its operations with the hand-written ones.
import { isAbsolute, join } from 'node:path';
import { report } from './doc-context.ts';
import type { DocContext } from './doc-context.ts';
import { importOpenApi } from './openapi-import.ts';
import type { TextLoader } from './openapi-import.ts';
import { URL_PATTERN } from './openapi-source.ts';
import { uniqueName } from './operation-name.ts';
import { resolveFile } from './resolve-file.ts';
import type { ApiSpec, Operation } from './types.ts';

/** Parameter names do not change what a template matches: `/items/{id}` and `/items/{itemId}` are one route. */
const routeKey = (template: string) => template.replace(/\{[^/}]*\}/g, '{}');

/**
 * Imports the operations of `spec.import.openapi` and appends them to `spec.operations`. A hand-written operation
 * claiming the same method and template (`*` claims every method) replaces the imported one; when it claims exactly
 * that one method, it keeps the imported parameters, bodies and responses (for validation and mocking) unless it
 * has its own. Problems inside the document point into it.
 */
export function applyOpenApiImport(spec: ApiSpec, cx: DocContext, load?: TextLoader): void {
  const name = spec.import?.openapi;
  if (typeof name !== 'string') return;
  const at = 'spec.import.openapi';
  if (URL_PATTERN.test(name)) {
    // TODO: URL import needs the (async) loader to fetch before validation; the model layer does no network I/O.
    report(cx, at, 'importing from a URL is not supported yet: save the document and name the file (relative to this file)');
    return;
  }
  const before = cx.problems.length;
  const abs = resolveFile(cx, at, name);
  if (cx.problems.length > before) return;
  const display = isAbsolute(name) ? name : join(cx.baseDir, name);
  const imported = importOpenApi(abs, { file: display, ...(load && { load }) });
  cx.problems.push(...imported.problems);
  spec.import = { openapi: abs, ...imported.info };
  const handWritten = (spec.operations ?? []).filter((op): op is Operation => !!op);
  const claims = new Map<string, Operation[]>();
  for (const op of handWritten) {
    if (!op.methods || typeof op.urlTemplate !== 'string') continue;
    const k = routeKey(op.urlTemplate);
    const list = claims.get(k) ?? [];
    list.push(op);
    claims.set(k, list);
  }
  const names = new Set(handWritten.map((op) => op.name));
  const importPos = cx.values.get(at);
  for (const op of imported.operations) {
    const method = op.methods[0];
    const owners = (claims.get(routeKey(op.urlTemplate)) ?? []).filter((h) => h.methods.includes(method) || h.methods.includes('*'));
    if (owners.length > 0) {
      for (const h of owners) if (h.methods.length === 1 && h.methods[0] === method) inheritDescription(h, op);
      continue;
    }
    if (!Array.isArray(spec.operations)) continue;
    op.name = uniqueName(op.name, (n) => names.has(n));
    names.add(op.name);
    spec.operations.push(op);
    // Problems found later about this operation (route conflicts) point at the import.
    if (importPos) cx.values.set(`spec.operations[${spec.operations.length - 1}]`, importPos);
  }
}

function inheritDescription(to: Operation, from: Operation): void {
  if (to.operationId === undefined && from.operationId !== undefined) to.operationId = from.operationId;
  if (to.summary === undefined && from.summary !== undefined) to.summary = from.summary;
  if (to.requestBody === undefined && from.requestBody !== undefined) to.requestBody = from.requestBody;
  if (to.responses === undefined && from.responses !== undefined) to.responses = from.responses;
  if (to.parameters !== undefined || from.parameters === undefined) return;
  // The hand-written template may name its parameters differently: map them by position.
  const renamed = new Map<string, string>();
  const mine = to.urlTemplate.split('/');
  from.urlTemplate.split('/').forEach((seg, i) => {
    if (seg.startsWith('{') && mine[i]?.startsWith('{')) renamed.set(seg.slice(1, -1), mine[i].slice(1, -1));
  });
  to.parameters = from.parameters.map((p) => {
    if (p.in !== 'path') return p;
    const { templateName: _, ...rest } = p;
    const ident = renamed.get(p.templateName ?? p.name) ?? p.templateName ?? p.name;
    return ident === p.name ? rest : { ...rest, templateName: ident };
  });
}

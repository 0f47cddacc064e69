// Per-document mesh checks: finishing of the mesh kinds and of the mesh fields of Gateway and Backend (references: resolve-mesh.ts).
import { parentPath, positionOf, report } from './doc-context.ts';
import type { DocContext } from './doc-context.ts';
import { resolveFile } from './resolve-file.ts';
import type { AccessPolicySpec, AccessRule, BackendSpec, ExpressionSite, ListMatch, GatewaySpec, MeshFault, MeshRouteSpec, MeshServiceSpec, MeshSpec } from './types.ts';

const MAX_CERTIFICATE_LIFETIME = 90 * 86_400_000;

export function finishMesh(spec: MeshSpec, cx: DocContext): void {
  if (typeof spec.certificateLifetime === 'number' && spec.certificateLifetime > MAX_CERTIFICATE_LIFETIME) {
    report(cx, 'spec.certificateLifetime', `certificateLifetime must be at most 90d, got ${spec.certificateLifetime / 86_400_000}d`);
  }
}

export function finishMeshService(spec: MeshServiceSpec, cx: DocContext): void {
  const names = new Map<string, number>();
  const numbers = new Map<number, number>();
  (spec.ports ?? []).forEach((p, i) => {
    if (!p || typeof p.port !== 'number') return;
    p.name ??= `${p.protocol}-${p.port}`;
    const byName = names.get(p.name);
    if (byName !== undefined) report(cx, `spec.ports[${i}].name`, `port name ${JSON.stringify(p.name)} is already used by spec.ports[${byName}]`);
    else names.set(p.name, i);
    const byNumber = numbers.get(p.port);
    if (byNumber !== undefined) report(cx, `spec.ports[${i}].port`, `port ${p.port} is already declared by spec.ports[${byNumber}]`);
    else numbers.set(p.port, i);
  });
  if (spec.retries?.methods) spec.retries.methods = spec.retries.methods.map((m) => m?.toUpperCase());
  finishHashOn(spec.loadBalancing, cx);
}

function finishHashOn(lb: MeshServiceSpec['loadBalancing'] | undefined, cx: DocContext): void {
  if (!lb) return;
  if (lb.hashOn && lb.algorithm !== 'consistent-hash') {
    report(cx, 'spec.loadBalancing.hashOn', `hashOn only applies to algorithm "consistent-hash", not ${JSON.stringify(lb.algorithm)}`);
  }
  if (lb.algorithm === 'consistent-hash') lb.hashOn ??= { clientIp: true };
  if (lb.hashOn?.header) lb.hashOn.header = lb.hashOn.header.toLowerCase();
}

function finishFault(fault: MeshFault | undefined, path: string, cx: DocContext): void {
  if (fault && !fault.delay && !fault.abort) report(cx, path, 'a fault needs delay or abort (or both)');
}

function weightsNotAllZero(items: Array<{ weight: number } | undefined>, path: string, what: string, cx: DocContext): void {
  const valid = items.filter((b) => typeof b?.weight === 'number');
  if (valid.length > 0 && valid.length === items.length && valid.every((b) => b!.weight === 0)) {
    report(cx, path, `every ${what} has weight 0; at least one must take traffic`);
  }
}

export function finishMeshRoute(spec: MeshRouteSpec, cx: DocContext): void {
  (spec.rules ?? []).forEach((rule, i) => {
    if (!rule) return;
    const p = `spec.rules[${i}]`;
    // Absent backends: the route's own service, all of it.
    if (rule.backends === undefined && typeof spec.service === 'string') rule.backends = [{ service: spec.service, weight: 1 }];
    if (rule.backends) weightsNotAllZero(rule.backends, `${p}.backends`, 'backend', cx);
    for (const m of rule.matches ?? []) {
      if (!m) continue;
      if (m.methods) m.methods = m.methods.map((x) => x?.toUpperCase());
      if (m.headers) m.headers = Object.fromEntries(Object.entries(m.headers).map(([k, v]) => [k.toLowerCase(), v]));
    }
    if (rule.retries?.methods) rule.retries.methods = rule.retries.methods.map((m) => m?.toUpperCase());
    finishFault(rule.fault, `${p}.fault`, cx);
  });
}

/**
 * Folds the rule grammar's conveniences into one shape (recursively through all/any/none): singular `source`,
 * `method`, `path` into the lists, `claim/<path>` keys into `claims`, single values into lists; collects `cel`
 * sites for the expression check (a layer up).
 */
export function finishAccessPolicy(spec: AccessPolicySpec, cx: DocContext): void {
  const expressions: ExpressionSite[] = [];
  const target = spec.target;
  if (target?.api !== undefined && target.ports?.length > 0) report(cx, 'spec.target.ports', 'ports apply to a MeshService target; an Api target has operations');
  if (target?.operation !== undefined && target.api === undefined) report(cx, 'spec.target.operation', 'operation needs api (the Api it belongs to)');
  for (const [section, rules] of [['allow', spec.allow], ['deny', spec.deny]] as const) {
    (rules ?? []).forEach((r: AccessRule | undefined, i) => finishRule(r, `spec.${section}[${i}]`, cx, expressions, target?.api !== undefined));
  }
  if (expressions.length > 0) spec.expressions = expressions;
}

const asList = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

function finishRule(rule: AccessRule | undefined, p: string, cx: DocContext, expressions: ExpressionSite[], apiTarget: boolean): void {
  if (!rule) return;
  const r = rule as AccessRule & { source?: string | string[]; method?: string | string[]; path?: string | string[]; sourceIp?: string | string[] };
  // `email:` (or `sources:`) with nothing after it decodes as absent or empty: in an allow rule that would silently widen
  // it to every caller.
  for (const path of cx.keys.keys()) {
    // (An unknown or misspelt key was reported as such already.)
    if (parentPath(path) !== p || cx.values.has(path) || cx.problems.some((x) => x.path === path)) continue;
    const name = path.slice(p.length).replace(/^\.|^\["|"\]$/g, '');
    report(cx, path, `${name} has no value (remove it, or give the value to match)`, 'key');
  }
  if (r.ports.length > 0 && apiTarget) report(cx, `${p}.ports`, 'ports apply to MeshService targets; the gateway decides by Api and operation');
  for (const [one, many] of [['source', 'sources'], ['method', 'methods'], ['path', 'paths']] as const) {
    const v = r[one];
    if (v === undefined) continue;
    if (r[many].length > 0) report(cx, `${p}.${one}`, `use either ${one} or ${many}, not both`, 'key');
    r[many] = asList(v);
    delete r[one];
  }
  if (r.sources.includes('*') && r.sources.length > 1) {
    report(cx, `${p}.sources`, '"*" already matches every authenticated workload; list it alone');
  }
  if (r.sourceIp !== undefined) r.sourceIp = asList(r.sourceIp);
  if (r.time !== undefined) {
    const days = (r.time as { days?: string | string[] }).days;
    if (days !== undefined) r.time.days = asList(days);
    if (r.time.after !== undefined && r.time.after === r.time.before) report(cx, `${p}.time.before`, 'before equals after: the window is empty');
    if (r.time.from !== undefined && r.time.until !== undefined && r.time.until <= r.time.from) report(cx, `${p}.time.until`, 'until must be after from');
  }
  for (const key of Object.keys(r)) {
    if (!key.startsWith('claim/')) continue;
    (r.claims ??= {})[key.slice('claim/'.length)] = (r as unknown as Record<string, ListMatch>)[key];
    delete (r as unknown as Record<string, unknown>)[key];
  }
  if (r.cel !== undefined) {
    const { line, col } = positionOf(cx, `${p}.cel`);
    const indent = cx.blockIndent?.get(`${p}.cel`);
    expressions.push({ source: r.cel, file: cx.file, line, col, path: `${p}.cel`, ...(indent !== undefined ? { indent } : {}) });
  }
  for (const combinator of ['all', 'any', 'none'] as const) (r[combinator] ?? []).forEach((sub, i) => finishRule(sub, `${p}.${combinator}[${i}]`, cx, expressions, apiTarget));
}

/** Gateway mesh fields: listener mTLS settings. */
export function finishGatewayMesh(spec: GatewaySpec, cx: DocContext): void {
  (spec.listeners ?? []).forEach((l, i) => {
    const tls = l?.tls;
    if (!tls) return;
    const p = `spec.listeners[${i}].tls`;
    if (tls.clientCaFile) tls.clientCaFile = resolveFile(cx, `${p}.clientCaFile`, tls.clientCaFile);
    if (tls.clientCertificate === 'require' && tls.clientCaFile === undefined) {
      report(cx, `${p}.clientCertificate`, 'clientCertificate "require" needs clientCaFile (the bundle client certificates must chain to)');
    }
  });
}

const BACKEND_TOP = new Set(['type', 'url', 'endpoints', 'split', 'meshService', 'fault', 'locality', 'loadBalancing', 'healthCheck', 'outlierDetection', 'timeouts', 'retries', 'circuitBreaker', 'maxPendingRequests', 'maxConnections', 'dnsRefresh', 'protocol', 'tls']);

/**
 * The Backend's shape by type: a url Backend has exactly one of url or endpoints, a split has neither, a mesh Backend
 * names its MeshService. Runs before the endpoint checks; `spec.url` is still the raw shorthand here.
 */
export function finishBackendShape(spec: BackendSpec & { url?: string }, cx: DocContext): void {
  const has = (k: 'url' | 'endpoints') => spec[k] !== undefined || cx.values.has(`spec.${k}`);
  const given = (['url', 'endpoints'] as const).filter(has);
  if (spec.split !== undefined) {
    for (const k of given) report(cx, `spec.${k}`, `a split Backend has no ${k}; its legs are other Backends`, 'key');
    if (spec.type === 'mesh') report(cx, 'spec.type', 'a split Backend cannot be of type mesh; split over mesh Backends instead');
    weightsNotAllZero(spec.split, 'spec.split', 'split leg', cx);
    return;
  }
  if (spec.type === 'mesh') {
    if (spec.meshService === undefined) report(cx, 'spec.type', 'type "mesh" needs meshService (the MeshService to call)');
    if (given.length > 1) report(cx, 'spec', 'Backend.spec needs at most one of "url" or "endpoints", got 2');
    return;
  }
  if (spec.meshService !== undefined && spec.type !== undefined) report(cx, 'spec.meshService', 'meshService needs type "mesh"', 'key');
  // An unknown (misspelt) name already said what is wrong: listing every choice adds nothing.
  const unknown = [...cx.keys.keys()].some((k) => /^spec\.[A-Za-z_][A-Za-z0-9_-]*$/.test(k) && !BACKEND_TOP.has(k.slice(5)));
  if (given.length !== 1 && !(given.length === 0 && unknown)) {
    report(cx, 'spec', `Backend.spec needs exactly one of "url" or "endpoints"${given.length ? `, got ${given.length}` : ''}`);
  }
}

/** After the endpoint checks: fault and locality. */
export function finishBackendMesh(spec: BackendSpec, cx: DocContext): void {
  finishFault(spec.fault, 'spec.fault', cx);
  if (spec.locality && spec.locality.region === undefined && spec.locality.zone === undefined) {
    report(cx, 'spec.locality', 'locality needs region or zone');
  }
}

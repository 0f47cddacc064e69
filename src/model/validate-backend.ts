// Backend checks that span several fields (url shorthand, hashing, timeouts, TLS files, mesh shape) and derived defaults.
import { report } from './doc-context.ts';
import type { DocContext } from './doc-context.ts';
import { resolveFile } from './resolve-file.ts';
import type { BackendSpec } from './types.ts';
import { finishBackendMesh, finishBackendShape } from './validate-mesh.ts';

function finishEndpoints(spec: BackendSpec & { url?: string }, cx: DocContext): void {
  // `url:` is the one-endpoint shorthand; the decoded spec only ever has `endpoints`.
  if (spec.url !== undefined) spec.endpoints ??= [{ url: spec.url, weight: 1, labels: {} }];
  delete spec.url;
  spec.endpoints ??= [];
  const seen = new Set<string>();
  spec.endpoints.forEach((e, i) => {
    if (!e?.url) return;
    const origin = new URL(e.url).origin;
    if (seen.has(origin)) report(cx, `spec.endpoints[${i}].url`, `endpoint ${origin} is listed twice`);
    seen.add(origin);
  });
  const valid = spec.endpoints.filter((e) => typeof e?.weight === 'number');
  if (valid.length > 0 && valid.length === spec.endpoints.length && valid.every((e) => e.weight === 0)) {
    report(cx, 'spec.endpoints', 'every endpoint has weight 0; at least one must take traffic');
  }
}

function finishBalancing(spec: BackendSpec, cx: DocContext): void {
  const lb = spec.loadBalancing;
  if (!lb) return;
  if (lb.hashOn && lb.algorithm !== 'consistent-hash') {
    report(cx, 'spec.loadBalancing.hashOn', `hashOn only applies to algorithm "consistent-hash", not ${JSON.stringify(lb.algorithm)}`);
  }
  if (lb.algorithm === 'consistent-hash') lb.hashOn ??= { clientIp: true };
  if (lb.hashOn) {
    const keys = (['header', 'cookie', 'clientIp'] as const).filter((k) => lb.hashOn?.[k] !== undefined && lb.hashOn[k] !== false);
    if (keys.length !== 1) report(cx, 'spec.loadBalancing.hashOn', 'set exactly one of header, cookie, clientIp');
    if (lb.hashOn.header) lb.hashOn.header = lb.hashOn.header.toLowerCase();
  }
}

function finishTls(spec: BackendSpec, cx: DocContext): void {
  const tls = spec.tls;
  if (!tls) return;
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) {
    report(cx, tls.certFile === undefined ? 'spec.tls.keyFile' : 'spec.tls.certFile', 'certFile and keyFile go together');
  }
  for (const k of ['caFile', 'certFile', 'keyFile'] as const) {
    if (tls[k]) tls[k] = resolveFile(cx, `spec.tls.${k}`, tls[k]);
  }
  // A mesh Backend's endpoints come from the registry at run time (mTLS to the peer sidecars).
  if (!(spec.type === 'mesh' && spec.endpoints.length === 0) && !spec.endpoints.some((e) => e?.url?.startsWith('https:'))) {
    report(cx, 'spec.tls', 'tls is set but no endpoint uses https');
  }
}

/** Expands the url shorthand, fills rule names and reports cross-field problems. Mutates the decoded spec in place. */
export function finishBackend(spec: BackendSpec, cx: DocContext): void {
  finishBackendShape(spec, cx);
  finishEndpoints(spec, cx);
  finishBalancing(spec, cx);
  const hc = spec.healthCheck;
  if (hc && hc.timeout >= hc.interval) {
    report(cx, 'spec.healthCheck.timeout', `timeout (${hc.timeout}ms) must be less than interval (${hc.interval}ms)`);
  }
  if (spec.retries?.methods) spec.retries.methods = spec.retries.methods.map((m) => m?.toUpperCase());
  const names = new Set<string>();
  (spec.circuitBreaker?.rules ?? []).forEach((r, i) => {
    if (!r) return;
    r.name ??= `rule-${i}`;
    if (names.has(r.name)) report(cx, `spec.circuitBreaker.rules[${i}].name`, `duplicate rule name ${JSON.stringify(r.name)}`);
    names.add(r.name);
  });
  finishTls(spec, cx);
  finishBackendMesh(spec, cx);
}

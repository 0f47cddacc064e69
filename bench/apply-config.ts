// The apply-to-served benchmark's edge config: bench/config.ts's 10,000-route set as control-plane documents, plus the
// one small resource each apply changes (an ApiPolicy whose answer carries the apply's sequence number).
import { stringify } from 'yaml';
import { ANY_HOST, generateRoutes, type BenchApi } from './config.ts';

/** The Api whose ApiPolicy each apply changes, and a request that reaches it. */
export const PROBE_API = 'api-0';
/** The response header whose value is the apply's sequence number. */
export const PROBE_HEADER = 'x-apply-seq';

export interface ApplyConfig {
  /** Every document, for the first apply: Gateway, Backend, the Apis, the probe ApiPolicy at sequence 0. */
  yaml: string;
  /** Operations in all (10,000 by default). */
  routes: number;
  apis: number;
  /** A request through any node that the probe ApiPolicy answers: `GET http://<node><path>` with `Host: host`. */
  probe: { host: string; path: string };
}

const doc = (kind: string, name: string, spec: object): string =>
  stringify({ apiVersion: 'lockgate.dev/v1alpha1', kind, metadata: { name }, spec }, { lineWidth: 0 });

/**
 * The probe ApiPolicy at sequence `seq`: `return-response` on the probe Api (no upstream in the measurement), the
 * sequence in a header. One document of a few hundred bytes: the small change each apply sends.
 */
export function probePolicyYaml(seq: number): string {
  return doc('ApiPolicy', 'probe', {
    scope: { api: PROBE_API },
    inbound: [{ 'return-response': { status: 200, headers: { [PROBE_HEADER]: [String(seq)] }, body: `apply ${seq}\n` } }],
  });
}

/**
 * `routes` operations over routes/100 Apis (bench/config.ts generateRoutes: hosts, exact paths, `/*` prefixes and
 * `{id}` templates), one Gateway every node shares (listener on port 0, no access log, no admin port: 20 gateways
 * on one machine), one Backend nothing reaches in the measurement, and the probe ApiPolicy at sequence 0.
 */
export function applyConfig(routes = 10_000): ApplyConfig {
  const { apis } = generateRoutes(routes);
  const docs = [
    doc('Gateway', 'edge', {
      listeners: [{ name: 'http', address: '127.0.0.1', port: 0, protocol: 'http' }],
      admin: { enabled: false },
      accessLog: { enabled: false },
    }),
    // Port 9 (discard): nothing listens, and no request in the measurement is forwarded.
    doc('Backend', 'upstream', { url: 'http://127.0.0.1:9' }),
    ...apis.map((api: BenchApi) => {
      const spec: Record<string, unknown> = {};
      if (api.hostnames.length > 0) spec.hostnames = api.hostnames;
      spec.path = api.path;
      spec.backend = 'upstream';
      if (api.operations.length > 0) spec.operations = api.operations;
      return doc('Api', api.name, spec);
    }),
    probePolicyYaml(0),
  ];
  const first = apis.find((a) => a.name === PROBE_API)!;
  return {
    yaml: docs.join('---\n'),
    routes: apis.reduce((n, a) => n + a.operations.length, 0),
    apis: apis.length,
    probe: { host: first.hostnames[0] ?? ANY_HOST, path: `${first.path}/r0` },
  };
}

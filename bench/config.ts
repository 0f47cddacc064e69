// Generates Lockgate configs for the benchmark: route sets of any size and the requests that hit them.
import { stringify } from 'yaml';

/** One request for wrk's data file; host '' keeps wrk's default Host header. */
export interface BenchRequest {
  method: string;
  host: string;
  path: string;
  /** Extra request headers, `Name: value` each. */
  headers?: string[];
}

export interface BenchApi {
  name: string;
  hostnames: string[];
  path: string;
  operations: Array<{ methods: string[]; urlTemplate: string }>;
  subscriptionRequired?: boolean;
}

export interface RouteSet {
  apis: BenchApi[];
  requests: BenchRequest[];
}

/** Host used for requests to any-host Apis: configured on no Api, so the lookup falls through to them. */
export const ANY_HOST = 'any.example.net';

/** Deterministic PRNG (mulberry32) so a route set and its request order are the same in every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `count` operations over ~count/100 Apis (at least 2), on up to 20 hostnames, with every tenth
 * Api (and the last one when there are fewer than ten) open to any host. Operations cycle through
 * exact paths, `/*` prefixes and `{id}` templates; each gets one request that matches it, and the
 * requests are shuffled so that rotation does not walk the table in order.
 */
export function generateRoutes(count: number, seed = 1): RouteSet {
  if (!Number.isInteger(count) || count < 1) throw new Error(`route count must be a positive integer, got ${count}`);
  const apiCount = Math.max(2, Math.ceil(count / 100));
  const perApi = Math.ceil(count / apiCount);
  const hostCount = Math.min(20, apiCount);
  const apis: BenchApi[] = [];
  const requests: BenchRequest[] = [];
  let made = 0;
  let bound = 0;
  for (let i = 0; i < apiCount && made < count; i++) {
    const anyHost = i % 10 === 9 || (apiCount < 10 && i === apiCount - 1);
    const host = anyHost ? ANY_HOST : `h${bound++ % hostCount}.example.com`;
    const api: BenchApi = { name: `api-${i}`, hostnames: anyHost ? [] : [host], path: `/svc${i}`, operations: [] };
    for (let j = 0; j < perApi && made < count; j++, made++) {
      const kind = j % 3;
      const template = kind === 0 ? `/r${j}` : kind === 1 ? `/p${j}/*` : `/t${j}/{id}`;
      const path = kind === 0 ? `/svc${i}/r${j}` : kind === 1 ? `/svc${i}/p${j}/a/b` : `/svc${i}/t${j}/${1000 + j}`;
      api.operations.push({ methods: ['GET'], urlTemplate: template });
      requests.push({ method: 'GET', host, path });
    }
    apis.push(api);
  }
  const random = prng(seed);
  for (let i = requests.length - 1; i > 0; i--) {
    const k = Math.floor(random() * (i + 1));
    [requests[i], requests[k]] = [requests[k], requests[i]];
  }
  return { apis, requests };
}

/** A single Api for every host and path: the non-route scenarios measure forwarding, not matching. */
export function catchAllApi(): BenchApi {
  return { name: 'all', hostnames: [], path: '/', operations: [] };
}

/** `count` rotating paths of the form `<prefix><n>` with the default Host. */
export function rotatingRequests(method: string, prefix: string, count: number): BenchRequest[] {
  return Array.from({ length: count }, (_, n) => ({ method, host: '', path: `${prefix}${n}` }));
}

/** The data file rotate.lua reads: `METHOD<TAB>HOST<TAB>PATH[<TAB>Name: value|Name: value]` per line. */
export function requestsFileText(requests: BenchRequest[]): string {
  return requests.map((r) => `${r.method}\t${r.host}\t${r.path}${r.headers?.length ? `\t${r.headers.join('|')}` : ''}\n`).join('');
}

export interface LockgateConfigOptions {
  port: number;
  adminPort: number;
  upstreamPort: number;
  accessLogPath: string;
  apis: BenchApi[];
  /** More documents (the policy-chain scenario's Product and ApiPolicy). */
  extraYaml?: string;
}

/** Multi-document Lockgate YAML: Gateway (access log to a file), one Backend, the Apis. */
export function lockgateYaml(options: LockgateConfigOptions): string {
  const doc = (kind: string, name: string, spec: object): string =>
    stringify({ apiVersion: 'lockgate.dev/v1alpha1', kind, metadata: { name }, spec }, { lineWidth: 0 });
  const docs = [
    doc('Gateway', 'bench', {
      listeners: [{ name: 'http', address: '127.0.0.1', port: options.port, protocol: 'http' }],
      admin: { address: '127.0.0.1', port: options.adminPort },
      accessLog: { path: options.accessLogPath },
    }),
    doc('Backend', 'upstream', { url: `http://127.0.0.1:${options.upstreamPort}`, maxConnections: 128 }),
  ];
  for (const api of options.apis) {
    const spec: Record<string, unknown> = {};
    if (api.hostnames.length > 0) spec.hostnames = api.hostnames;
    spec.path = api.path;
    spec.backend = 'upstream';
    if (api.operations.length > 0) spec.operations = api.operations;
    if (api.subscriptionRequired) spec.subscriptionRequired = true;
    docs.push(doc('Api', api.name, spec));
  }
  if (options.extraYaml) docs.push(options.extraYaml);
  return docs.join('---\n');
}

// `lockgate test`: YAML test cases run through the real request path and policy pipeline in this process, with stubbed backends and no network.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import type { Dispatcher } from 'undici';
import { formatProblems } from '../model/load-config.ts';
import { loadCheckedConfig } from '../policy/load-checked.ts';
import type { SubscriptionRecord } from '../model/subscription.ts';
import { parseScope } from '../model/subscription.ts';
import { hashKey } from '../lib/subscription-keys.ts';
import { POLICY_REGISTRY } from '../filters/index.ts';
import { buildRuntime, retireRuntime } from '../proxy/runtime.ts';
import { createRequestHandler, type DataPlaneState } from '../proxy/request-handler.ts';
import { SubscriptionIndex } from '../proxy/subscription-index.ts';
import { ResponseCapture } from '../proxy/response-capture.ts';
import type { Exchange } from '../proxy/exchange.ts';
import type { UpstreamPool } from '../proxy/upstream-cluster.ts';
import type { PolicyServices } from '../proxy/policy-pipeline.ts';
import { OutboundError, type HttpClient } from '../proxy/policy-http-client.ts';

export interface StubResponse {
  status?: number;
  headers?: Record<string, string | string[]>;
  body?: unknown;
  /** Fail the call instead of answering (a connection refused). */
  error?: 'connect' | 'reset' | 'timeout';
}

export interface TestCase {
  name: string;
  request: {
    method?: string;
    url: string;
    host?: string;
    headers?: Record<string, string | string[]>;
    body?: unknown;
    clientIp?: string;
    /** PEM file (leaf first, then its chain), relative to the test file: the TLS client certificate validate-client-certificate sees. */
    clientCertificate?: string;
  };
  /** Backend answers, in order; the last one repeats. Keyed by Backend name (`namespace/name` or `name`), or a list for every backend. */
  backend?: StubResponse | StubResponse[] | Record<string, StubResponse | StubResponse[]>;
  /** send-request / send-one-way-request answers by URL (exact, else without the query); an unstubbed URL fails to connect. */
  sendRequest?: Record<string, StubResponse | StubResponse[]>;
  expect: {
    status?: number;
    headers?: Record<string, string | null>;
    body?: unknown;
    backend?: { calls?: number; method?: string; path?: string; headers?: Record<string, string | null>; body?: unknown };
    /** Policy names that must have run, in this order (others may run in between). */
    policies?: string[];
  };
}

export interface TestFile {
  config: string[];
  /**
   * Stand-ins for the control plane's secrets, for NamedValues with `secret:` (keyed by secret name, or
   * `name@version` for a pinned version). NamedValues with `env:` read this process's environment, as the gateway does.
   */
  secrets?: Record<string, string>;
  subscriptions?: Array<{ name: string; scope: string; primaryKey: string; secondaryKey?: string; state?: SubscriptionRecord['state'] }>;
  tests: TestCase[];
}

export interface CaseResult {
  name: string;
  ok: boolean;
  failures: string[];
  status: number;
  trace: string[];
}

interface BackendCall {
  backend: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** `expected` is a subset of `actual`: objects by key (recursively), arrays item by item, scalars equal. */
export function subsetMismatch(expected: unknown, actual: unknown, at = 'body'): string | null {
  if (expected === null || typeof expected !== 'object') {
    return expected === actual ? null : `${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`;
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${at}: expected a list, got ${JSON.stringify(actual)}`;
    if (expected.length !== actual.length) return `${at}: expected ${expected.length} items, got ${actual.length}`;
    for (let i = 0; i < expected.length; i++) {
      const m = subsetMismatch(expected[i], actual[i], `${at}[${i}]`);
      if (m) return m;
    }
    return null;
  }
  if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return `${at}: expected an object, got ${JSON.stringify(actual)}`;
  for (const [k, v] of Object.entries(expected)) {
    const m = subsetMismatch(v, (actual as Record<string, unknown>)[k], `${at}.${k}`);
    if (m) return m;
  }
  return null;
}

function bodyMismatch(expected: unknown, text: string, at: string): string | null {
  if (typeof expected === 'string') return expected === text ? null : `${at}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(text)}`;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return `${at}: expected JSON, got ${JSON.stringify(text.slice(0, 200))}`;
  }
  return subsetMismatch(expected, parsed, at);
}

function headerMismatches(expected: Record<string, string | null> | undefined, actual: Record<string, string>, at: string): string[] {
  const out: string[] = [];
  for (const [name, v] of Object.entries(expected ?? {})) {
    const got = actual[name.toLowerCase()];
    if (v === null) {
      if (got !== undefined) out.push(`${at} ${name}: expected absent, got ${JSON.stringify(got)}`);
    } else if (got !== v) {
      out.push(`${at} ${name}: expected ${JSON.stringify(v)}, got ${got === undefined ? 'nothing' : JSON.stringify(got)}`);
    }
  }
  return out;
}

function bodyText(body: unknown): string {
  if (body === undefined || body === null) return '';
  return typeof body === 'string' ? body : JSON.stringify(body);
}

function stubsFor(tc: TestCase, backend: string): StubResponse[] {
  const b = tc.backend;
  if (b === undefined) return [{ status: 200, body: '' }];
  if (Array.isArray(b)) return b;
  if ('status' in b || 'body' in b || 'headers' in b || 'error' in b) return [b as StubResponse];
  const map = b as Record<string, StubResponse | StubResponse[]>;
  const short = backend.includes('/') ? backend.split('/')[1] : backend;
  const s = map[backend] ?? map[short];
  if (s === undefined) return [{ error: 'connect' }];
  return Array.isArray(s) ? s : [s];
}

const ERR_CODES = { connect: 'ECONNREFUSED', reset: 'UND_ERR_SOCKET', timeout: 'UND_ERR_HEADERS_TIMEOUT' } as const;

/** A pool that answers from the test case's stubs and records what it was sent. */
function stubPool(backend: string, current: () => { tc: TestCase; calls: BackendCall[] }): UpstreamPool {
  return {
    dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
      const { tc, calls } = current();
      const headers: Record<string, string> = {};
      const raw = opts.headers as string[];
      for (let i = 0; i < raw.length; i += 2) headers[raw[i].toLowerCase()] = headers[raw[i].toLowerCase()] === undefined ? raw[i + 1] : `${headers[raw[i].toLowerCase()]}, ${raw[i + 1]}`;
      const call: BackendCall = { backend, method: opts.method, path: opts.path, headers, body: '' };
      const stubs = stubsFor(tc, backend);
      const stub = stubs[Math.min(calls.length, stubs.length - 1)];
      calls.push(call);
      let aborted = false;
      const controller = {
        abort: () => {
          aborted = true;
        },
        pause: () => {},
        resume: () => {},
        get aborted() {
          return aborted;
        },
        get paused() {
          return false;
        },
        reason: null,
      } as unknown as Dispatcher.DispatchController;
      void (async () => {
        const chunks: Buffer[] = [];
        const body = opts.body as AsyncIterable<Buffer> | Buffer | string | null | undefined;
        if (body !== null && body !== undefined) {
          if (typeof body === 'string' || Buffer.isBuffer(body)) chunks.push(Buffer.from(body));
          else for await (const c of body) chunks.push(Buffer.from(c));
        }
        call.body = Buffer.concat(chunks).toString('utf8');
        handler.onRequestStart?.(controller, {});
        if (aborted) return;
        if (stub.error !== undefined) {
          handler.onResponseError?.(controller, Object.assign(new Error(`stubbed ${stub.error} failure`), { code: ERR_CODES[stub.error] }));
          return;
        }
        const text = Buffer.from(bodyText(stub.body));
        const h: Record<string, string | string[]> = { ...(stub.headers ?? {}) };
        if (typeof stub.body === 'object' && stub.body !== null && h['content-type'] === undefined) h['content-type'] = 'application/json';
        h['content-length'] = String(text.length);
        handler.onResponseStart?.(controller, stub.status ?? 200, h, '');
        if (!aborted && text.length > 0) handler.onResponseData?.(controller, text);
        if (!aborted) handler.onResponseEnd?.(controller, {});
      })().catch((err: Error) => handler.onResponseError?.(controller, err));
      return true;
    },
    close: async () => {},
    destroy: async () => {},
  };
}

const CLIENT_ERR = { connect: 'connect', reset: 'connect', timeout: 'timeout' } as const;

/** send-request's client answering from the case's `sendRequest` stubs: nothing touches the network. */
function stubHttpClient(current: () => { tc: TestCase }): HttpClient {
  const sent = new Map<string, number>();
  let forCase: TestCase | null = null;
  return async (req) => {
    const { tc } = current();
    if (tc !== forCase) {
      forCase = tc;
      sent.clear();
    }
    const stubs = tc.sendRequest ?? {};
    const noQuery = req.url.split('?')[0];
    const key = stubs[req.url] !== undefined ? req.url : stubs[noQuery] !== undefined ? noQuery : undefined;
    if (key === undefined) throw new OutboundError('connect', `no sendRequest stub for ${noQuery} (lockgate test answers only stubbed URLs)`);
    const list = Array.isArray(stubs[key]) ? stubs[key] : [stubs[key]];
    const n = sent.get(key) ?? 0;
    sent.set(key, n + 1);
    const stub = list[Math.min(n, list.length - 1)];
    if (stub.error !== undefined) throw new OutboundError(CLIENT_ERR[stub.error], `stubbed ${stub.error} failure`);
    const body = Buffer.from(bodyText(stub.body));
    const headers: string[] = [];
    for (const [name, v] of Object.entries(stub.headers ?? {})) for (const one of Array.isArray(v) ? v : [v]) headers.push(name.toLowerCase(), one);
    if (typeof stub.body === 'object' && stub.body !== null && !headers.includes('content-type')) headers.push('content-type', 'application/json');
    if (body.length > req.maxResponseBodySize) throw new OutboundError('too_large', `the response body is larger than maxResponseBodySize (${req.maxResponseBodySize})`);
    return { status: stub.status ?? 200, reason: '', headers, body };
  };
}

interface PeerCert {
  raw: Buffer;
  issuerCertificate?: PeerCert;
}

/** A TLS socket's getPeerCertificate(true) answer for a PEM file (leaf first): the certificates chained by issuerCertificate. */
async function peerCertificate(file: string): Promise<PeerCert | null> {
  const pem = await readFile(file, 'utf8');
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`clientCertificate ${file} holds no PEM certificate`);
  let next: PeerCert | undefined;
  for (const b of blocks.reverse()) {
    const der = Buffer.from(b.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ''), 'base64');
    next = { raw: der, issuerCertificate: next };
  }
  return next ?? null;
}

function subscriptionRecords(file: TestFile): SubscriptionRecord[] {
  return (file.subscriptions ?? []).map((s, i) => {
    const scope = parseScope(s.scope);
    if (typeof scope === 'string') throw new Error(`subscriptions[${i}]: ${scope}`);
    return {
      id: `sub_test${String(i).padStart(12, '0')}`,
      name: s.name,
      scope,
      owner: 'test',
      state: s.state ?? 'active',
      primaryKeyHash: hashKey(s.primaryKey),
      secondaryKeyHash: hashKey(s.secondaryKey ?? `${s.primaryKey}-secondary`),
      createdAt: new Date(0).toISOString(),
      expiresAt: null,
    };
  });
}

/** Runs one test file. Config problems throw (with file:line:col); failed expectations are results. */
export async function runTestFile(path: string, services: PolicyServices = {}): Promise<CaseResult[]> {
  const file = parseYaml(await readFile(path, 'utf8')) as TestFile;
  if (!file || !Array.isArray(file.tests)) throw new Error(`${path}: a test file needs "config" (files) and "tests" (a list)`);
  const configs = (Array.isArray(file.config) ? file.config : [file.config]).map((c) => resolve(dirname(path), String(c)));
  const secrets = file.secrets ?? {};
  if (typeof secrets !== 'object' || Array.isArray(secrets) || Object.values(secrets).some((v) => typeof v !== 'string')) {
    throw new Error(`${path}: "secrets" maps secret names to string values`);
  }
  const loaded = await loadCheckedConfig(configs, { env: process.env, secrets });
  if (!loaded.config) throw new Error(formatProblems(loaded.problems));
  let current = { tc: file.tests[0], calls: [] as BackendCall[] };
  const policyServices: PolicyServices = { ...services, httpClient: stubHttpClient(() => current) };
  const built = buildRuntime(loaded.config, undefined, { poolFactory: (_origin, backend) => stubPool(backend, () => current) }, { registry: POLICY_REGISTRY, services: policyServices });
  if (!built.runtime) throw new Error(built.problems.join('\n'));
  const finished = new Map<Exchange, true>();
  let onFinish: ((ex: Exchange) => void) | null = null;
  const state: DataPlaneState = {
    runtime: built.runtime,
    overloaded: false,
    draining: false,
    finish: (ex) => {
      finished.set(ex, true);
      onFinish?.(ex);
    },
    subscriptions: new SubscriptionIndex(subscriptionRecords(file)),
    tracePolicies: true,
  };
  const handle = createRequestHandler(state, { name: 'test', proto: 'https', proxied: false });
  const results: CaseResult[] = [];
  try {
    for (const tc of file.tests) {
      current = { tc, calls: [] };
      results.push(await runCase(tc, handle, (f) => (onFinish = f), () => current.calls, dirname(path)));
    }
  } finally {
    await retireRuntime(built.runtime, undefined);
  }
  return results;
}

async function runCase(
  tc: TestCase,
  handle: ReturnType<typeof createRequestHandler>,
  setFinish: (f: (ex: Exchange) => void) => void,
  calls: () => BackendCall[],
  baseDir: string,
): Promise<CaseResult> {
  const r = tc.request;
  // Like a TLS socket of a listener that asked for a client certificate: {} when the client sent none.
  const peer = r.clientCertificate === undefined ? null : await peerCertificate(resolve(baseDir, r.clientCertificate));
  const method = (r.method ?? 'GET').toUpperCase();
  const body = r.body === undefined ? null : Buffer.from(bodyText(r.body));
  const raw: string[] = ['host', r.host ?? 'localhost'];
  for (const [name, v] of Object.entries(r.headers ?? {})) for (const one of Array.isArray(v) ? v : [v]) raw.push(name, one);
  if (body !== null && !Object.keys(r.headers ?? {}).some((h) => h.toLowerCase() === 'content-length')) {
    raw.push('content-length', String(body.length));
    if (typeof r.body === 'object' && !Object.keys(r.headers ?? {}).some((h) => h.toLowerCase() === 'content-type')) raw.push('content-type', 'application/json');
  }
  const req = Object.assign(Readable.from(body === null ? [] : [body]), {
    method,
    url: r.url,
    httpVersion: '1.1',
    rawHeaders: raw,
    socket: { remoteAddress: r.clientIp ?? '127.0.0.1', encrypted: true, getPeerCertificate: () => peer ?? {} },
    aborted: false,
  });
  const res = new ResponseCapture('buffer', 64 * 1024 * 1024, { head: () => {}, end: () => {}, overflow: () => {} });
  const exchange = await new Promise<Exchange>((resolveCase, reject) => {
    const timer = setTimeout(() => reject(new Error(`${tc.name}: no response within 10 s`)), 10_000);
    setFinish((ex) => {
      clearTimeout(timer);
      // The response is complete once the exchange is finished (its body was written first).
      setImmediate(() => resolveCase(ex));
    });
    handle(req as never, res as never);
  });
  const text = res.body().toString('utf8');
  const headers: Record<string, string> = {};
  for (let i = 0; i < res.headers.length; i += 2) {
    const n = res.headers[i];
    headers[n] = headers[n] === undefined ? res.headers[i + 1] : `${headers[n]}, ${res.headers[i + 1]}`;
  }
  const failures: string[] = [];
  const e = tc.expect ?? {};
  if (e.status !== undefined && e.status !== res.status) failures.push(`status: expected ${e.status}, got ${res.status}${text ? ` (${text.slice(0, 200)})` : ''}`);
  failures.push(...headerMismatches(e.headers, headers, 'header'));
  if (e.body !== undefined) {
    const m = bodyMismatch(e.body, text, 'body');
    if (m) failures.push(m);
  }
  const seen = calls();
  if (e.backend !== undefined) {
    const b = e.backend;
    if (b.calls !== undefined && b.calls !== seen.length) failures.push(`backend calls: expected ${b.calls}, got ${seen.length}`);
    const first = seen[0];
    if ((b.method !== undefined || b.path !== undefined || b.headers !== undefined || b.body !== undefined) && first === undefined) {
      failures.push('backend: expected a call, got none');
    } else if (first !== undefined) {
      if (b.method !== undefined && b.method.toUpperCase() !== first.method) failures.push(`backend method: expected ${b.method}, got ${first.method}`);
      if (b.path !== undefined && b.path !== first.path) failures.push(`backend path: expected ${JSON.stringify(b.path)}, got ${JSON.stringify(first.path)}`);
      failures.push(...headerMismatches(b.headers, first.headers, 'backend header'));
      if (b.body !== undefined) {
        const m = bodyMismatch(b.body, first.body, 'backend body');
        if (m) failures.push(m);
      }
    }
  }
  const trace = exchange.policyTrace ?? [];
  if (e.policies !== undefined) {
    const names = trace.map((t) => t.split(' ')[1]);
    let at = 0;
    for (const want of e.policies) {
      const found = names.indexOf(want, at);
      if (found === -1) {
        failures.push(`policies: expected ${JSON.stringify(e.policies)} to run in this order; ran ${JSON.stringify(names)}`);
        break;
      }
      at = found + 1;
    }
  }
  return { name: tc.name, ok: failures.length === 0, failures, status: res.status, trace };
}

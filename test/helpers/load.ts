// Test helper: a small bounded load generator (fixed concurrency, stops after a count, a duration or a signal) that tallies statuses and errors.
import { Pool, type Dispatcher } from 'undici';

type ResponseHeaders = Dispatcher.ResponseData['headers'];

export interface LoadRequest {
  path: string;
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface LoadOptions {
  /** e.g. http://127.0.0.1:1234 */
  origin: string;
  /** Requests in flight at once (also the number of connections). */
  concurrency: number;
  /** Stop after this many requests. */
  count?: number;
  /** Stop issuing new requests after this long. */
  durationMs?: number;
  /** Stop issuing new requests when aborted (requests in flight still finish). */
  signal?: AbortSignal;
  /** Safety net when only `count` or `signal` bound the run: never issue requests for longer than this (default 60 s). */
  maxDurationMs?: number;
  /** The request to send, or a function of the request's sequence number. */
  request: LoadRequest | ((i: number) => LoadRequest);
  /** Per-request timeout for headers and for the body (default 10 s). */
  timeoutMs?: number;
  /** A new connection for every request (spreads requests over SO_REUSEPORT workers). */
  reset?: boolean;
  /** Called with every response; the body is read as text only when this is given. */
  onResponse?: (i: number, status: number, headers: ResponseHeaders, body: string) => void;
}

export interface LoadResult {
  /** Requests started. */
  sent: number;
  /** Count per response status. */
  statuses: Record<number, number>;
  /** Count per error code (or message) for requests that got no complete response. */
  errors: Record<string, number>;
  /** The first few responses with a status of 400 or more, for assertion messages. */
  samples: Array<{ status: number; body: string }>;
  elapsedMs: number;
}

/** Runs the load and resolves when every request started has ended; never runs without a bound. */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  if (opts.count === undefined && opts.durationMs === undefined && opts.signal === undefined) {
    throw new Error('runLoad needs count, durationMs or signal');
  }
  const started = performance.now();
  const deadline = started + Math.min(opts.durationMs ?? Infinity, opts.maxDurationMs ?? 60_000);
  const timeout = opts.timeoutMs ?? 10_000;
  const pool = new Pool(opts.origin, { connections: opts.concurrency, pipelining: 1, headersTimeout: timeout, bodyTimeout: timeout });
  const result: LoadResult = { sent: 0, statuses: {}, errors: {}, samples: [], elapsedMs: 0 };
  const more = (): boolean =>
    (opts.count === undefined || result.sent < opts.count) && performance.now() < deadline && opts.signal?.aborted !== true;

  const one = async (i: number): Promise<void> => {
    const r = typeof opts.request === 'function' ? opts.request(i) : opts.request;
    try {
      const res = await pool.request({
        path: r.path,
        method: (r.method ?? 'GET') as 'GET',
        headers: r.headers,
        body: r.body,
        reset: opts.reset === true,
      });
      const body = opts.onResponse || res.statusCode >= 400 ? await res.body.text() : (await res.body.dump(), '');
      result.statuses[res.statusCode] = (result.statuses[res.statusCode] ?? 0) + 1;
      if (res.statusCode >= 400 && result.samples.length < 5) result.samples.push({ status: res.statusCode, body });
      opts.onResponse?.(i, res.statusCode, res.headers, body);
    } catch (err) {
      const key = (err as { code?: string }).code ?? (err as Error).message;
      result.errors[key] = (result.errors[key] ?? 0) + 1;
    }
  };

  const loop = async (): Promise<void> => {
    while (more()) await one(result.sent++);
  };
  try {
    await Promise.all(Array.from({ length: opts.concurrency }, loop));
  } finally {
    await pool.destroy();
  }
  result.elapsedMs = performance.now() - started;
  return result;
}

/** Number of requests that ended with `status`. */
export function countOf(r: LoadResult, status: number): number {
  return r.statuses[status] ?? 0;
}

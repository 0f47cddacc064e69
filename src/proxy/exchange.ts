// The per-request record: everything the access log, metrics and traces need, filled in as the request moves.
import type { ErrorCode } from '../lib/errors.ts';

/** One request's facts. A plain class with fixed shape so V8 keeps it monomorphic. */
export class Exchange {
  requestId = '';
  traceId = '';
  spanId = '';
  parentSpanId = '';
  traceFlags = 0;
  listener: string;
  clientIp: string;
  method: string;
  host = '';
  path = '';
  api = '';
  operation = '';
  backend = '';
  endpoint = '';
  /** The subscription whose key opened the request ('' when none was needed). */
  subscription = '';
  /** The calling workload's SPIFFE ID from its verified client certificate ('' = none: plaintext or no certificate). */
  peerId = '';
  /** The access decision's id and outcome for a mesh inbound request ('' when no decision ran); logged with the reasons. */
  decision = '';
  configVersion = '';
  status = 0;
  bytesIn = 0;
  bytesOut = 0;
  attempts = 0;
  errorCode: ErrorCode | '' = '';
  errorDetail = '';
  /** performance.now() milliseconds at each phase boundary; 0 when the phase did not happen. */
  tStart: number;
  tDispatch = 0;
  tUpstreamStart = 0;
  tResponseStart = 0;
  tEnd = 0;
  /** Wall-clock start (ms since epoch) for log timestamps. */
  wallStart: number;
  /**
   * Route-level object telemetry may key caches on (stable per config version). Its `telemetry`
   * property, when present, is a slot the telemetry of this thread may fill (one property load instead
   * of a WeakMap lookup, which costs cache misses at 10,000 routes).
   */
  routeKey: { telemetry?: unknown } | null = null;
  /** The policies that ran, in order (`section/path name`), when the data plane traces them (`lockgate test`); else null. */
  policyTrace: string[] | null = null;

  constructor(listener: string, clientIp: string, method: string, tStart: number, wallStart: number) {
    this.listener = listener;
    this.clientIp = clientIp;
    this.method = method;
    this.tStart = tStart;
    this.wallStart = wallStart;
  }
}

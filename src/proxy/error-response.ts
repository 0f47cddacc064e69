// Turns an error code into the response the client sees: one JSON body shape, or API Management's when an Api asks for it.
import type { ServerResponse } from 'node:http';
import type { Http2ServerResponse } from 'node:http2';
import { ERROR_TABLE, type ErrorCode } from '../lib/errors.ts';
import type { Exchange } from './exchange.ts';
import type { H1Response } from './h1-server.ts';

export type ErrorStyle = 'lockgate' | 'apim';

/**
 * Set on an HTTP/1 socket once we answered with `Connection: close`: later pipelined requests on it are
 * never handled (they would be read from bytes we refused to frame), and parse errors write nothing more.
 */
export const CLOSING = Symbol('lockgate.closing');
export type AnyResponse = ServerResponse | Http2ServerResponse | H1Response;

/** API Management's own bodies (reference/apim.md §2.18): backend failures surface as 500 with an activityId. */
function apimBody(code: ErrorCode, status: number, requestId: string): { status: number; body: string } {
  switch (code) {
    case 'no_route':
    case 'method_not_allowed':
      return { status: 404, body: '{"statusCode":404,"message":"Resource not found"}' };
    case 'upstream_connect':
    case 'upstream_reset':
    case 'upstream_bad_response':
    case 'upstream_timeout':
    case 'internal':
      return {
        status: 500,
        body: `{"statusCode":500,"message":"Internal server error","activityId":${JSON.stringify(requestId)}}`,
      };
    default:
      return { status, body: JSON.stringify({ statusCode: status, message: ERROR_TABLE[code].message }) };
  }
}

export interface ErrorResponseOptions {
  style: ErrorStyle;
  /** Close the connection after answering (unread request body, framing error, draining). */
  close: boolean;
  retryAfterSeconds?: number;
  /** Instead of the table's status (fault injection answers with the configured one). */
  status?: number;
  /** Further response headers (lowercase names), e.g. `x-lockgate-fault`. */
  headers?: Record<string, string>;
  /** The access decision id (access_denied): the body names it so the caller can quote it. */
  decision?: string;
  /** Which hop denied (access_denied): `gateway edge`, `sidecar shop/inventory`. */
  hop?: string;
}

/**
 * The body of a 403 `access_denied`, the mesh's own shape at both tiers: the decision id lets the caller's operator find
 * the reasons in the deciding hop's logs, `hop` says which hop that is (`gateway edge`, `sidecar shop/inventory`).
 */
export function accessDeniedError(requestId: string, policy: string, decision: string, hop?: string): object {
  const message = policy ? `${ERROR_TABLE.access_denied.message}: ${policy}` : ERROR_TABLE.access_denied.message;
  return { error: { code: 'access_denied', message, requestId, decision, hop } };
}

/**
 * gRPC status for a gateway-made error (grpc/doc/statuscodes.md; http-grpc-status-mapping.md for the rest):
 * unavailable-type failures are 14 so clients retry them, timeouts 4, an unknown route 12 (unimplemented method).
 */
function grpcStatusOf(code: ErrorCode, httpStatus: number): number {
  switch (code) {
    case 'no_route':
    case 'method_not_allowed':
    case 'not_implemented':
      return 12;
    case 'access_denied':
      return 7;
    case 'subscription_key_missing':
    case 'subscription_key_invalid':
      return 16;
    case 'upstream_timeout':
    case 'request_timeout':
      return 4;
    case 'payload_too_large':
    case 'header_too_large':
    case 'uri_too_long':
      return 8;
    case 'loop_detected':
      return 9;
    case 'internal':
      return 13;
    default:
      break;
  }
  switch (httpStatus) {
    case 400: return 13;
    case 401: return 16;
    case 403: return 7;
    case 404: return 12;
    case 429: case 502: case 503: case 504: return 14;
    default: return 2;
  }
}

/** The request's content-type when it is a gRPC one (`application/grpc`, `+proto`, `-web`…), else ''. Error path only. */
export function grpcContentType(res: AnyResponse): string {
  const req = (res as { req?: { rawHeaders?: string[] } }).req;
  const raw = req?.rawHeaders;
  if (raw === undefined) return '';
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === 12 && raw[i].toLowerCase() === 'content-type') {
      const v = raw[i + 1];
      return v.length >= 16 && v.slice(0, 16).toLowerCase() === 'application/grpc' ? v : '';
    }
  }
  return '';
}

/** grpc-message is percent-encoded: every byte outside printable ASCII, and '%' itself. */
function grpcMessage(text: string): string {
  if (!/[^\x20-\x24\x26-\x7e]/.test(text)) return text;
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/**
 * A gRPC call gets a trailers-only response: HTTP 200, no body, the status in `grpc-status` (gRPC clients read no
 * JSON and treat any HTTP status but 200 as a transport failure).
 */
function sendGrpcError(res: AnyResponse, ex: Exchange, code: ErrorCode, status: number, message: string, contentType: string, opts: ErrorResponseOptions): void {
  ex.status = 200;
  ex.bytesOut = 0;
  const headers: Record<string, string | number> = {
    'content-type': contentType,
    'grpc-status': grpcStatusOf(code, status),
    'grpc-message': grpcMessage(message),
    'x-request-id': ex.requestId,
  };
  if (opts.headers !== undefined) Object.assign(headers, opts.headers);
  const h1 = 'shouldKeepAlive' in res;
  if (h1) {
    headers['content-length'] = 0;
    if (opts.close) {
      headers.connection = 'close';
      (res as ServerResponse).shouldKeepAlive = false;
      const socket = ((res as ServerResponse).req?.socket ?? res.socket) as (NonNullable<typeof res.socket> & { [CLOSING]?: boolean }) | null;
      if (socket) socket[CLOSING] = true;
    }
  }
  try {
    (res as ServerResponse).writeHead(200, headers);
    (res as ServerResponse).end();
  } catch {
    res.destroy();
  }
}

/**
 * Writes the error response if headers were not sent yet, else destroys the response so the client
 * sees a truncated body instead of a silently corrupt one. Never throws.
 */
export function sendError(res: AnyResponse, ex: Exchange, code: ErrorCode, detail: string, opts: ErrorResponseOptions): void {
  ex.errorCode = code;
  ex.errorDetail = detail;
  const info = ERROR_TABLE[code];
  // (The h1 engine can still take back a head none of whose bytes were written.)
  if (res.headersSent && (res as { retractHead?: () => boolean }).retractHead?.() !== true) {
    ex.status = ex.status || info.status;
    res.destroy();
    return;
  }
  let status = opts.status ?? info.status;
  const grpc = grpcContentType(res);
  if (grpc !== '') {
    const text = detail && status < 500 ? `${info.message}: ${detail}` : info.message;
    return sendGrpcError(res, ex, code, status, text, grpc, opts);
  }
  let body: string;
  if (code === 'access_denied') {
    body = JSON.stringify(accessDeniedError(ex.requestId, detail, opts.decision ?? '', opts.hop));
  } else if (opts.style === 'apim') {
    const a = apimBody(code, status, ex.requestId);
    status = a.status;
    body = a.body;
  } else {
    const message = detail && status < 500 ? `${info.message}: ${detail}` : info.message;
    body = `{"statusCode":${status},"message":${JSON.stringify(message)},"requestId":${JSON.stringify(ex.requestId)}}`;
  }
  ex.status = status;
  ex.bytesOut = Buffer.byteLength(body);
  const headers: Record<string, string | number> = {
    'content-type': 'application/json; charset=utf-8',
    'content-length': ex.bytesOut,
    'x-request-id': ex.requestId,
  };
  if (opts.retryAfterSeconds !== undefined) headers['retry-after'] = Math.max(1, Math.ceil(opts.retryAfterSeconds));
  if (opts.headers !== undefined) Object.assign(headers, opts.headers);
  const h1 = 'shouldKeepAlive' in res;
  if (opts.close && h1) {
    headers.connection = 'close';
    (res as ServerResponse).shouldKeepAlive = false;
    // A pipelined response has no socket until its turn: mark the request's socket.
    const socket = ((res as ServerResponse).req?.socket ?? res.socket) as (NonNullable<typeof res.socket> & { [CLOSING]?: boolean }) | null;
    if (socket) socket[CLOSING] = true;
  }
  try {
    (res as ServerResponse).writeHead(status, headers);
    (res as ServerResponse).end(body);
  } catch {
    res.destroy();
  }
}

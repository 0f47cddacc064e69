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
  let status = info.status;
  let body: string;
  if (opts.style === 'apim') {
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

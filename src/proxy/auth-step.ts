// The request handler's side of IdentityProvider authentication: the reserved login paths and sending an AuthReply.
import type { ServerResponse } from 'node:http';
import type { ErrorCode } from '../lib/errors.ts';
import { stamp } from './clock.ts';
import { CLOSING, sendError, type AnyResponse } from './error-response.ts';
import type { Exchange } from './exchange.ts';
import type { FinishFn } from './forward-handler.ts';
import { handleReserved, type IdentityRuntime } from './login-endpoints.ts';
import type { AuthInput, AuthReply } from './oidc-login.ts';

function codeOf(status: number): ErrorCode {
  if (status === 401) return 'unauthorized';
  if (status >= 500) return 'upstream_bad_response';
  return 'bad_request';
}

/** Sends a 401/4xx (the gateway's JSON error with the request id) or a redirect, and finishes the exchange. */
export function sendAuthReply(res: AnyResponse, ex: Exchange, reply: AuthReply, close: boolean, finish: FinishFn): void {
  if (reply.status >= 400) {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(reply.headers)) if (typeof v === 'string') headers[k] = v;
    sendError(res, ex, codeOf(reply.status), reply.message ?? '', { style: 'lockgate', close, status: reply.status, headers });
    // Error replies carry single-valued headers only (at most one Set-Cookie, clearing the login cookie).
    ex.errorDetail = reply.detail;
  } else {
    ex.status = reply.status;
    ex.errorDetail = reply.detail;
    const headers: Record<string, string | string[] | number> = { ...reply.headers, 'content-length': 0, 'x-request-id': ex.requestId };
    if (close && 'shouldKeepAlive' in res) {
      headers.connection = 'close';
      (res as ServerResponse).shouldKeepAlive = false;
      const socket = ((res as ServerResponse).req?.socket ?? res.socket) as (NonNullable<typeof res.socket> & { [CLOSING]?: boolean }) | null;
      if (socket) socket[CLOSING] = true;
    }
    try {
      (res as ServerResponse).writeHead(reply.status, headers);
      (res as ServerResponse).end();
    } catch {
      res.destroy();
    }
  }
  ex.tEnd = stamp();
  finish(ex);
}

/** Answers /.lockgate/callback and /.lockgate/logout; never throws. */
export function answerReserved(identity: IdentityRuntime, path: string, query: string, input: AuthInput, res: AnyResponse, ex: Exchange, close: boolean, finish: FinishFn): void {
  ex.api = 'lockgate';
  ex.operation = path.slice('/.lockgate/'.length);
  const r = handleReserved(identity, path, query, input);
  if (!(r instanceof Promise)) return sendAuthReply(res, ex, r, close, finish);
  r.then(
    (reply) => sendAuthReply(res, ex, reply, close, finish),
    (err: Error) => sendAuthReply(res, ex, { status: 502, headers: {}, message: 'Login failed', detail: err.message }, close, finish),
  );
}

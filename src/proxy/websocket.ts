// WebSocket (HTTP/1.1 Upgrade) pass-through: route like any request, then splice the two sockets together.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { checkRequest } from './strict-request.ts';
import { buildUpstreamHeaders } from './upstream-headers.ts';
import { newSpanId, newTraceId, formatTraceparent } from '../lib/trace-context.ts';
import { authorizeMeshRequest, requestIdOf, type AccessSubject, type DataPlaneState, type ListenerInfo } from './request-handler.ts';
import { resolveRoute } from './resolve-route.ts';
import { forwardPath } from './runtime.ts';
import { routingInput } from './version-routing.ts';
import { clientIpOf } from './client-address.ts';
import { resolveSubscription } from './subscription-index.ts';
import { ERROR_TABLE } from '../lib/errors.ts';

function reject(socket: Duplex, status: number, message: string, requestId: string): void {
  const body = JSON.stringify({ statusCode: status, message, requestId });
  socket.end(
    `HTTP/1.1 ${status} ${message}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\nx-request-id: ${requestId}\r\n\r\n${body}`,
  );
}

/** The server's 'upgrade' listener. Only `Upgrade: websocket` on GET is passed through; anything else is refused. */
export function createUpgradeHandler(state: DataPlaneState, listener: ListenerInfo) {
  return function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const rt = state.runtime;
    const clientIp = clientIpOf(req, listener.proxied);
    const peerId = listener.peerIdOf === undefined ? '' : listener.peerIdOf(req);
    const trusted = rt.trusted.contains(clientIp);
    const requestId = requestIdOf(req.rawHeaders, trusted || peerId !== '');
    const facts = checkRequest(req.method ?? '', req.httpVersion, req.url ?? '', req.rawHeaders, rt.gateway.limits);
    if (!facts.ok) return reject(socket, facts.status, facts.error, requestId);
    if (!facts.upgrade || req.method !== 'GET') return reject(socket, 400, 'Only WebSocket upgrades are supported', requestId);
    const ri = routingInput(req.url ?? '', req.rawHeaders, rt.hasRevisions, rt.versionQueryNames);
    const cp = resolveRoute(rt, ri.target, facts.hostname, 'GET', ri.matchHeaders);
    if ('error' in cp) return reject(socket, 400, cp.error, requestId);
    const m = cp.match;
    if (!m) return reject(socket, 404, 'Resource not found', requestId);
    const route = m.value;
    if (ri.revision !== 0 && ri.revision !== route.revision) return reject(socket, 404, 'Resource not found', requestId);
    // A sidecar's inbound decides upgrades like any request: upgrading is no way around an AccessPolicy.
    if (route.meshService !== '' && rt.access !== null) {
      const subject: AccessSubject = { method: 'GET', path: cp.path, requestId, traceId: '', peerId, decision: '' };
      const denied = authorizeMeshRequest(rt.access, route.meshService, req, subject);
      if (denied !== null) return reject(socket, 403, `Access denied by ${denied.policy} (decision ${denied.id})`, requestId);
    }
    // The same subscription-key rule as plain requests (request-handler.ts): no way around it by upgrading.
    let query = cp.query;
    const needKey = route.subscription;
    if (needKey !== null) {
      const k = resolveSubscription(state.subscriptions, needKey, route.api, req.rawHeaders, query);
      if (k.error !== null) return reject(socket, 401, ERROR_TABLE[k.error].message, requestId);
      query = k.query;
    }
    const ep = route.cluster.pick(undefined);
    if (!ep) return reject(socket, 503, 'No healthy backend endpoint', requestId);
    const raw = req.rawHeaders.slice();
    const headers = buildUpstreamHeaders(raw, {
      clientIp, trusted, proto: listener.proto, host: facts.host, requestId,
      traceparent: formatTraceparent(newTraceId(), newSpanId(), 0), connectionTokens: null, contentLength: -1,
      maxHops: rt.gateway.maxHops, keepTracestate: false, drop: needKey?.header,
    });
    if (!headers) return reject(socket, 508, 'Loop detected', requestId);
    let path = forwardPath(route, cp.path);
    path = route.cluster.basePaths[ep.index] + path + query;
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart() {},
      onRequestUpgrade(_c, statusCode, resHeaders, upstream: Duplex) {
        let out = `HTTP/1.1 ${statusCode} Switching Protocols\r\n`;
        for (const [k, v] of Object.entries(resHeaders)) {
          // Ours replaces the upstream's, as on every response (forward-handler).
          if (v === undefined || k === 'x-request-id') continue;
          for (const one of Array.isArray(v) ? v : [v]) out += `${k}: ${one}\r\n`;
        }
        socket.write(`${out}x-request-id: ${requestId}\r\n\r\n`);
        if (head.length) upstream.write(head);
        upstream.on('error', () => socket.destroy());
        socket.on('close', () => upstream.destroy());
        upstream.on('close', () => socket.destroy());
        upstream.pipe(socket);
        socket.pipe(upstream);
      },
      onResponseStart(c, statusCode) {
        // The upstream refused the upgrade: pass a plain error on and close.
        reject(socket, statusCode >= 400 ? statusCode : 502, 'Upstream refused the upgrade', requestId);
        c.abort(new Error('upgrade refused'));
      },
      onResponseData() {},
      onResponseEnd() {},
      onResponseError(_c, err) {
        if (!socket.destroyed) reject(socket, 502, `Upgrade failed: ${err.message}`, requestId);
      },
    };
    // undici adds `connection: upgrade` and `upgrade: websocket` itself.
    route.cluster.pools[ep.index].dispatch({ method: 'GET', path, headers, upgrade: 'websocket' }, handler);
  };
}

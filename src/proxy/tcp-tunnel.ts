// Outbound opaque TCP: `CONNECT host:port` on a mesh node's plain listener, tunnelled over mTLS to a sidecar of the service.
import tls from 'node:tls';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import type { ErrorCode } from '../lib/errors.ts';
import { newRequestId } from '../lib/request-id.ts';
import type { MeshTcpRoute } from '../model/types.ts';
import { stamp } from './clock.ts';
import { clientIpOf } from './client-address.ts';
import { Exchange } from './exchange.ts';
import type { DataPlaneState } from './request-handler.ts';
import type { Runtime } from './runtime.ts';
import type { UpstreamCluster } from './upstream-cluster.ts';
import type { EndpointState } from './endpoint-state.ts';
import { TUNNEL_ALPN, parseTunnelReply, readLine, splice, tunnelRequest } from './tcp-preamble.ts';
import { parseAuthority, refuse } from './connect-request.ts';

/** The runtime has CONNECT targets: only then does a plain connection's first request get checked for CONNECT. */
export function acceptsConnect(rt: Runtime): boolean {
  return (rt.gateway.mesh?.tcpRoutes?.length ?? 0) > 0;
}

type Dialed = { socket: tls.TLSSocket; ep: EndpointState; rest: Buffer } | { status: number; code: ErrorCode; detail: string };

/** One mTLS connection to an endpoint, preamble sent and the callee's reply read; failures before the reply may retry. */
async function dialOnce(cluster: UpstreamCluster, ep: EndpointState, port: number, requestId: string): Promise<Dialed & { retry?: boolean }> {
  const u = new URL(ep.url);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const connectMs = cluster.spec.timeouts.connect;
  // Over a TCP socket of our own: a reset can then be passed on as one (see abort in tcp-preamble).
  const raw = net.connect({ host, port: Number(u.port || 443), noDelay: true });
  const socket = tls.connect({ ...cluster.tlsOptions, socket: raw, host, ALPNProtocols: [TUNNEL_ALPN] });
  // (The TLS socket re-emits the TCP socket's errors.)
  socket.once('close', () => raw.destroy());
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(Object.assign(new Error(`no TLS connection within ${connectMs} ms`), { code: 'ETIMEDOUT' })), connectMs);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  } catch (err) {
    socket.destroy();
    const timedOut = (err as NodeJS.ErrnoException).code === 'ETIMEDOUT';
    return { status: timedOut ? 504 : 502, code: timedOut ? 'upstream_timeout' : 'upstream_connect', detail: (err as Error).message, retry: true };
  }
  if (socket.alpnProtocol !== TUNNEL_ALPN) {
    socket.destroy();
    return { status: 502, code: 'upstream_bad_response', detail: 'the peer does not take opaque TCP tunnels', retry: true };
  }
  socket.write(tunnelRequest(port, requestId));
  let reply;
  try {
    reply = await readLine(socket, cluster.spec.timeouts.perTry);
  } catch (err) {
    socket.destroy();
    return { status: 502, code: 'upstream_bad_response', detail: `tunnel reply: ${(err as Error).message}` };
  }
  const r = parseTunnelReply(reply.line);
  if ('error' in r) {
    socket.destroy();
    return { status: 502, code: 'upstream_bad_response', detail: r.error };
  }
  if (r.status !== 200) {
    socket.destroy();
    const code: ErrorCode = r.status === 403 ? 'access_denied' : r.status === 404 ? 'no_route' : r.status === 504 ? 'upstream_timeout' : 'upstream_connect';
    return { status: r.status, code, detail: r.text };
  }
  return { socket, ep, rest: reply.rest };
}

/** Picks endpoints and dials until one answers: connect and handshake failures move on, as the retry policy allows. */
async function dial(cluster: UpstreamCluster, port: number, requestId: string, gone: () => boolean): Promise<Dialed> {
  if (cluster.breaker !== null && !cluster.breaker.allow()) return { status: 503, code: 'breaker_open', detail: '' };
  cluster.budget.recordRequest();
  let last: Dialed = { status: 503, code: 'no_healthy_endpoint', detail: '' };
  for (let attempt = 0; attempt <= cluster.spec.retries.attempts; attempt++) {
    if (attempt > 0 && !cluster.budget.tryAcquireRetry()) break;
    const ep = cluster.pick(undefined);
    if (ep === undefined) break;
    ep.onStart();
    const t0 = stamp();
    const d = await dialOnce(cluster, ep, port, requestId);
    const failed = 'status' in d && d.status >= 500;
    cluster.outliers?.record(ep, failed);
    cluster.breaker?.record('status' in d ? d.status : 200, undefined);
    if ('socket' in d) {
      if (gone()) {
        d.socket.destroy();
        ep.onEnd(stamp(), stamp() - t0, false);
        return { status: 499, code: 'upstream_reset', detail: 'client closed' };
      }
      return d;
    }
    ep.onEnd(stamp(), stamp() - t0, failed);
    last = d;
    if (!d.retry || gone()) break;
  }
  return last;
}

/**
 * Opens the tunnel a CONNECT asked for: the target must be a known service's declared tcp port (404, 403 else);
 * the app gets `200 Connection Established` once the callee's sidecar has connected to its app, then bytes flow.
 * `track` registers both sockets with the listener (drain closes them). One access-log record when it closes.
 */
export function openTunnel(state: DataPlaneState, listener: string, client: net.Socket, authority: string, early: Buffer, track: (s: Duplex) => void): void {
  const rt = state.runtime;
  const t0 = stamp();
  const ex = new Exchange(listener, clientIpOf({ socket: client }, false), 'CONNECT', t0, performance.timeOrigin + t0);
  ex.requestId = newRequestId();
  ex.configVersion = rt.version;
  ex.host = authority;
  client.on('error', () => client.destroy());
  track(client);
  const fail = (status: number, code: ErrorCode, detail: string): void => {
    ex.status = status;
    ex.errorCode = code;
    ex.errorDetail = detail;
    refuse(client, status, detail || code, ex.requestId);
    ex.tEnd = stamp();
    state.finish(ex);
  };
  const target = parseAuthority(authority);
  if (target === null) return fail(400, 'bad_request', 'CONNECT needs host:port');
  const route: MeshTcpRoute | undefined = rt.gateway.mesh?.tcpRoutes?.find((r) => r.hostnames.includes(target.host));
  if (route === undefined) return fail(404, 'no_route', `no mesh service is named ${target.host}`);
  ex.api = route.service;
  if (!route.ports.includes(target.port)) return fail(403, 'no_route', `port ${target.port} of ${route.service} is not declared tcp`);
  const key = route.backend.includes('/') ? route.backend : `${rt.config.gateway.metadata.namespace}/${route.backend}`;
  const cluster = rt.clusters.get(key);
  if (cluster === undefined) return fail(503, 'no_healthy_endpoint', `Backend ${key} is not in this config`);
  ex.backend = cluster.name;
  ex.tDispatch = stamp();
  void dial(cluster, target.port, ex.requestId, () => client.destroyed).then((d) => {
    if ('status' in d) return fail(d.status, d.code, d.detail);
    const { socket: upstream, ep, rest } = d;
    ex.attempts = 1;
    ex.endpoint = ep.url;
    ex.status = 200;
    ex.tUpstreamStart = ex.tResponseStart = stamp();
    track(upstream);
    upstream.setKeepAlive(true, 60_000);
    client.setKeepAlive(true, 60_000);
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (early.length > 0) upstream.write(early);
    if (rest.length > 0) client.write(rest);
    splice(client, upstream, (r) => {
      ex.bytesIn = early.length + r.forward;
      ex.bytesOut = rest.length + r.backward;
      ex.tEnd = stamp();
      ep.onEnd(ex.tEnd, ex.tEnd - ex.tDispatch, false);
      state.finish(ex);
    });
  });
}

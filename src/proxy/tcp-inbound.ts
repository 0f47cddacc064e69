// Inbound opaque TCP: a tunnel from a mesh peer (mTLS, ALPN lockgate-tcp) is authorized, then piped to the app's port.
import net from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { isValidRequestId, newRequestId } from '../lib/request-id.ts';
import type { ErrorCode } from '../lib/errors.ts';
import { decideAccess } from '../policy/access-decision.ts';
import { accessDecision } from '../telemetry/channels.ts';
import { stamp } from './clock.ts';
import { clientIpOf } from './client-address.ts';
import { Exchange } from './exchange.ts';
import type { DataPlaneState } from './request-handler.ts';
import { parseTunnelRequest, readLine, splice, tunnelReply } from './tcp-preamble.ts';

/**
 * Serves one tunnel on a verified mTLS connection whose peer is `peerId`: reads the preamble, checks the port is
 * declared tcp (404 else), asks the service's AccessPolicies (caller, service, port, method CONNECT, path ''),
 * connects to the app's host:port within the connect timeout, answers `200`, then splices the two sockets.
 * Every outcome is one access-log record; denies are published with their reasons like HTTP ones.
 */
export function acceptTunnel(state: DataPlaneState, listener: string, socket: TLSSocket, peerId: string, track: (s: Duplex) => void): void {
  const t0 = stamp();
  const ex = new Exchange(listener, clientIpOf({ socket }, false), 'CONNECT', t0, performance.timeOrigin + t0);
  ex.peerId = peerId;
  ex.requestId = newRequestId();
  socket.on('error', () => socket.destroy());
  track(socket);
  const answer = (status: number, code: ErrorCode, text: string): void => {
    ex.status = status;
    ex.errorCode = code;
    ex.errorDetail = text;
    if (!socket.destroyed) socket.end(tunnelReply(status, text));
    ex.tEnd = stamp();
    state.finish(ex);
  };
  void readLine(socket, state.runtime.gateway.limits.headerTimeout).then(
    ({ line, rest }) => {
      const rt = state.runtime;
      ex.configVersion = rt.version;
      const req = parseTunnelRequest(line);
      if ('error' in req) return answer(400, 'bad_request', req.error);
      if (isValidRequestId(req.requestId)) ex.requestId = req.requestId;
      const cfg = rt.gateway.mesh?.tcpInbound;
      ex.host = cfg === undefined ? '' : `${cfg.service}:${req.port}`;
      ex.api = cfg?.service ?? '';
      if (cfg === undefined || !cfg.ports.includes(req.port)) return answer(404, 'no_route', `port ${req.port} is not declared tcp here`);
      // No compiled policies means nothing may decide: refuse rather than let an opaque tunnel through unchecked.
      if (rt.access === null) return answer(403, 'access_denied', 'no access policies compiled');
      const d = decideAccess(rt.access, { sourceId: peerId, service: cfg.service, port: req.port, method: 'CONNECT', path: '' });
      const outcome = !d.allow ? 'deny' : d.wouldDeny ? 'audit' : 'allow';
      ex.decision = `${d.id}:${outcome}`;
      if (outcome !== 'allow' && accessDecision.hasSubscribers) {
        accessDecision.publish({
          requestId: ex.requestId, traceId: '', decision: d.id, outcome, policy: d.policy, reasons: d.reasons,
          sourceId: peerId, service: cfg.service, port: req.port, method: 'CONNECT', path: '',
        });
      }
      if (!d.allow) return answer(403, 'access_denied', `Access denied by ${d.policy} (decision ${d.id})`);
      ex.backend = `${cfg.host}:${req.port}`;
      ex.tDispatch = stamp();
      const app = net.connect({ host: cfg.host, port: req.port, noDelay: true });
      track(app);
      const timer = setTimeout(() => app.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), cfg.connectTimeout);
      const onConnectError = (err: NodeJS.ErrnoException): void => {
        clearTimeout(timer);
        app.destroy();
        if (err.code === 'ETIMEDOUT') answer(504, 'upstream_timeout', `the app did not accept within ${cfg.connectTimeout} ms`);
        else answer(502, 'upstream_connect', `the app refused: ${err.code ?? err.message}`);
      };
      app.once('error', onConnectError);
      // The caller went away while we connected: nothing to join.
      socket.once('close', () => {
        if (!app.connecting) return;
        clearTimeout(timer);
        app.destroy();
        answer(499, 'upstream_reset', 'the caller closed the tunnel');
      });
      app.once('connect', () => {
        clearTimeout(timer);
        app.off('error', onConnectError);
        if (socket.destroyed) return void app.destroy();
        ex.status = 200;
        ex.tUpstreamStart = ex.tResponseStart = stamp();
        ex.endpoint = ex.backend;
        socket.setKeepAlive(true, 60_000);
        socket.write(tunnelReply(200, 'ok'));
        if (rest.length > 0) app.write(rest);
        splice(socket, app, (r) => {
          ex.bytesIn = rest.length + r.forward;
          ex.bytesOut = r.backward;
          ex.tEnd = stamp();
          state.finish(ex);
        });
      });
    },
    () => socket.destroy(),
  );
}

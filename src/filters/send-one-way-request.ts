// send-one-way-request: fires a request and goes on at once; at most MAX_IN_FLIGHT per worker, failures only logged.
import { compileRequest, displayUrl, httpClientOf, logOf } from '../proxy/policy-http-client.ts';
import type { PolicyFactory, PolicyServices } from '../proxy/policy-pipeline.ts';

/** Calls in flight per worker; beyond it new ones are dropped (and logged) rather than queued without bound. */
export const MAX_IN_FLIGHT = 256;

interface OneWayState {
  inFlight: number;
}

function stateOf(services: PolicyServices): OneWayState {
  let s = services.oneWayRequests as OneWayState | undefined;
  if (s === undefined) {
    s = { inFlight: 0 };
    services.oneWayRequests = s;
  }
  return s;
}

export const sendOneWayRequestPolicy: PolicyFactory = (attrs, env) => {
  const request = compileRequest(attrs, env);
  const client = httpClientOf(env.services);
  const log = logOf(env.services);
  const state = stateOf(env.services);
  const where = `${env.entry.file}:${env.entry.line}`;
  return {
    name: 'send-one-way-request',
    path: env.entry.path,
    needsRequestBody: request.needsRequestBody,
    needsResponseBody: request.needsResponseBody,
    run(pc) {
      let req;
      try {
        req = request.build(pc);
      } catch (err) {
        log('warn', 'send-one-way-request not sent', { policy: where, requestId: pc.ex.requestId, error: (err as Error).message });
        return;
      }
      if (state.inFlight >= MAX_IN_FLIGHT) {
        log('warn', 'send-one-way-request dropped: too many in flight', { policy: where, requestId: pc.ex.requestId, url: displayUrl(req.url), inFlight: state.inFlight });
        return;
      }
      state.inFlight++;
      const url = displayUrl(req.url);
      const requestId = pc.ex.requestId;
      client(req).then(
        () => {
          state.inFlight--;
        },
        (err: unknown) => {
          state.inFlight--;
          log('warn', 'send-one-way-request failed', { policy: where, requestId, url, error: (err as Error).message });
        },
      );
    },
  };
};

// Diagnostics-channel names: the data plane publishes here; telemetry subscribes. Nothing else couples them.
import diagnostics from 'node:diagnostics_channel';

/** Published once per finished request with the request's Exchange record. */
export const requestEnd = diagnostics.channel('lockgate:request:end');
/** Published when a breaker changes state: { backend, state }. */
export const breakerState = diagnostics.channel('lockgate:breaker:state');
/** Published when the HTTP/1.1 parser refuses a request head (no request record exists): { status }. */
export const requestRefused = diagnostics.channel('lockgate:request:refused');
/** Published when a request is shed for overload: { reason }. */
export const requestShed = diagnostics.channel('lockgate:request:shed');
/** Published on an upstream connect error: { backend, endpoint, code }. */
export const upstreamConnectError = diagnostics.channel('lockgate:upstream:connect-error');
/** Published when a config version is activated or rejected: { version, ok, problems }. */
export const configEvent = diagnostics.channel('lockgate:config');

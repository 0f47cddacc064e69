// One error class with string codes, and the one table that maps codes to HTTP statuses and messages.

export type ErrorCode =
  | 'bad_request'
  | 'uri_too_long'
  | 'header_too_large'
  | 'not_implemented'
  | 'no_route'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'subscription_key_missing'
  | 'subscription_key_invalid'
  | 'request_timeout'
  | 'loop_detected'
  | 'access_denied'
  | 'invalid_assertion'
  | 'unauthorized'
  | 'fault_abort'
  | 'upstream_connect'
  | 'upstream_reset'
  | 'upstream_bad_response'
  | 'upstream_timeout'
  | 'no_healthy_endpoint'
  | 'breaker_open'
  | 'pending_limit'
  | 'overloaded'
  | 'draining'
  | 'policy'
  | 'internal';

export interface ErrorInfo {
  status: number;
  message: string;
}

/** The table: every error a request can end with. `message` is the public text, never a stack. */
export const ERROR_TABLE: Readonly<Record<ErrorCode, ErrorInfo>> = {
  bad_request: { status: 400, message: 'Bad request' },
  uri_too_long: { status: 414, message: 'URI too long' },
  header_too_large: { status: 431, message: 'Request header fields too large' },
  not_implemented: { status: 501, message: 'Not implemented' },
  no_route: { status: 404, message: 'Resource not found' },
  method_not_allowed: { status: 404, message: 'Resource not found' },
  payload_too_large: { status: 413, message: 'Request entity too large' },
  // API Management's exact texts (reference/apim.md §2.18): clients match on them.
  subscription_key_missing: { status: 401, message: 'Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.' },
  subscription_key_invalid: { status: 401, message: 'Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.' },
  request_timeout: { status: 408, message: 'Request timeout' },
  loop_detected: { status: 508, message: 'Loop detected' },
  // A mesh AccessPolicy (or the mesh default) refused the calling workload.
  access_denied: { status: 403, message: 'Access denied' },
  // An x-lockgate-assertion that does not verify, is addressed elsewhere, or is presented by another workload than its act.
  invalid_assertion: { status: 401, message: 'Invalid identity assertion' },
  // No valid bearer token or session on a route whose Api requires an end user (IdentityProvider authentication).
  unauthorized: { status: 401, message: 'Authentication required' },
  // Fault injection on the Backend; the status is the configured one, this is only its default.
  fault_abort: { status: 503, message: 'Request aborted by fault injection' },
  upstream_connect: { status: 502, message: 'Could not connect to the backend' },
  upstream_reset: { status: 502, message: 'The backend closed the connection' },
  upstream_bad_response: { status: 502, message: 'The backend sent an invalid response' },
  upstream_timeout: { status: 504, message: 'The backend did not respond in time' },
  no_healthy_endpoint: { status: 503, message: 'No healthy backend endpoint' },
  breaker_open: { status: 503, message: 'Backend circuit breaker is open' },
  pending_limit: { status: 503, message: 'Too many pending requests to the backend' },
  overloaded: { status: 503, message: 'Gateway overloaded, retry later' },
  draining: { status: 503, message: 'Gateway is shutting down' },
  // A policy answered with its own status and body (ip-filter, validate-jwt, rate-limit, …); the access log names the policy.
  policy: { status: 400, message: 'Rejected by a policy' },
  internal: { status: 500, message: 'Internal server error' },
};

export class LockgateError extends Error {
  readonly code: ErrorCode;
  /** A more specific public message than the table's, e.g. which framing rule failed. */
  readonly detail: string | undefined;
  constructor(code: ErrorCode, detail?: string, options?: { cause?: unknown }) {
    super(detail ?? ERROR_TABLE[code].message, options);
    this.name = 'LockgateError';
    this.code = code;
    this.detail = detail;
  }
}

export function statusFor(code: ErrorCode): number {
  return ERROR_TABLE[code].status;
}

/** Map an upstream (undici or socket) error to our code. */
export function upstreamErrorCode(err: unknown): ErrorCode {
  const code = (err as { code?: string } | null)?.code;
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'upstream_connect';
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 'upstream_timeout';
    case 'UND_ERR_SOCKET':
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_CLOSED':
      return 'upstream_reset';
    case 'HPE_INVALID_CONSTANT':
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
    case 'HPE_INVALID_CHUNK_SIZE':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_INFO':
      return 'upstream_bad_response';
    default:
      return code?.startsWith('HPE_') ? 'upstream_bad_response' : 'upstream_reset';
  }
}

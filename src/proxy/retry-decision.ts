// Whether a failed upstream attempt may be tried again, and how long to wait first. Pure functions.
import type { RetryPolicy } from '../model/types.ts';

/**
 * Errors that prove the request never reached the backend (no connection was made), so even a
 * POST can be sent again without risk of doing it twice. Raw socket/undici codes, plus our own
 * code for callers that have already mapped them (src/lib/errors.ts `upstream_connect`).
 * A reset (ECONNRESET, UND_ERR_SOCKET) is not here: the backend may have acted on the request.
 */
export const REQUEST_NOT_SENT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'upstream_connect',
]);

/** Errors after which a request whose method the policy lists may be retried: resets and timeouts too. */
export const RETRYABLE_ERROR_CODES: ReadonlySet<string> = new Set([
  ...REQUEST_NOT_SENT_CODES,
  'ECONNRESET',
  'EPIPE',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_HEADERS_TIMEOUT',
  'ETIMEDOUT',
  'upstream_reset',
  'upstream_timeout',
]);

/** Cap on one backoff as a multiple of the base, as Envoy's default max interval (10 × base). */
const MAX_BACKOFF_FACTOR = 10;

/**
 * @param attempt attempts made so far, 1 after the first try; `policy.attempts` extra ones are allowed.
 * @param status the response status, or undefined when the attempt ended with an error.
 * @param errorCode the error's code when `status` is undefined.
 * @param bodyReplayable false when the request body was streamed upstream rather than buffered:
 *   it is gone, so nothing can be sent again.
 */
export function shouldRetry(
  policy: RetryPolicy,
  method: string,
  attempt: number,
  status: number | undefined,
  errorCode: string | undefined,
  bodyReplayable: boolean,
): boolean {
  if (!bodyReplayable || attempt > policy.attempts) return false;
  if (status === undefined && errorCode !== undefined && REQUEST_NOT_SENT_CODES.has(errorCode)) return true;
  if (!policy.methods.includes(method)) return false;
  if (status !== undefined) return policy.statuses.includes(status);
  return errorCode !== undefined && RETRYABLE_ERROR_CODES.has(errorCode);
}

/**
 * Delay before retry number `attempt` (1 = first retry): base × 2^(attempt-1), capped at 10 × base,
 * then jittered into [half, full] so that clients that failed together do not retry together.
 */
export function backoffMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const base = policy.backoff;
  if (!(base > 0)) return 0;
  const exp = Math.max(0, Math.min(attempt - 1, 30));
  const ceiling = Math.min(base * 2 ** exp, base * MAX_BACKOFF_FACTOR);
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

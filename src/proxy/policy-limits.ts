// Shared by rate-limit(-by-key) and quota(-by-key): counting against the counter store and API Management's answers when a limit is hit.
import { gcraSpec, newResult, windowSpec, type CounterResult, type CounterStore, type GcraSpec, type WindowSpec } from './counter-store.ts';
import { SharedCounterTable } from './shared-counter-table.ts';
import { PolicyError, errorResponse, type PolicyContext } from './policy-context.ts';
import type { PolicyServices } from './policy-pipeline.ts';

/** Counter keys are capped: a huge header value cannot become a huge key. */
export const MAX_COUNTER_KEY = 512;

/** The store from the composition root; a table of its own when none was given (a single-threaded test). */
export function countersOf(services: PolicyServices): CounterStore {
  let c = services.counters as CounterStore | undefined;
  if (c === undefined) {
    c = SharedCounterTable.create(4096);
    services.counters = c;
  }
  return c;
}

export interface LimitHeaders {
  retryAfterHeaderName: string;
  retryAfterVariableName?: string;
  remainingCallsHeaderName?: string;
  remainingCallsVariableName?: string;
  totalCallsHeaderName?: string;
}

export function limitHeaders(a: Record<string, unknown>): LimitHeaders {
  return {
    retryAfterHeaderName: (a.retryAfterHeaderName as string | undefined) ?? 'Retry-After',
    retryAfterVariableName: a.retryAfterVariableName as string | undefined,
    remainingCallsHeaderName: a.remainingCallsHeaderName as string | undefined,
    remainingCallsVariableName: a.remainingCallsVariableName as string | undefined,
    totalCallsHeaderName: a.totalCallsHeaderName as string | undefined,
  };
}

export function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** Remaining-calls headers and variables on an admitted call. */
export function reportRemaining(pc: PolicyContext, h: LimitHeaders, r: CounterResult, calls: number): void {
  const remaining = Number.isFinite(r.remaining) ? r.remaining : calls;
  if (h.remainingCallsHeaderName) pc.responseHeaders.push(h.remainingCallsHeaderName.toLowerCase(), String(remaining));
  if (h.remainingCallsVariableName) pc.variables.set(h.remainingCallsVariableName, remaining);
  if (h.totalCallsHeaderName) pc.responseHeaders.push(h.totalCallsHeaderName.toLowerCase(), String(calls));
}

/** 429 exactly as API Management answers it (reference/apim.md §2.3, §2.18). */
export function rateLimited(pc: PolicyContext, source: string, h: LimitHeaders, r: CounterResult): never {
  const s = seconds(r.retryAfterMs || r.resetMs);
  if (h.retryAfterVariableName) pc.variables.set(h.retryAfterVariableName, s);
  const res = errorResponse(429, `Rate limit is exceeded. Try again in ${s} seconds.`, [h.retryAfterHeaderName.toLowerCase(), String(s)]);
  if (h.remainingCallsHeaderName) res.headers.push(h.remainingCallsHeaderName.toLowerCase(), '0');
  throw new PolicyError(source, 'RateLimitExceeded', 'Rate limit is exceeded', res);
}

/** .NET TimeSpan text `[d.]hh:mm:ss`, as API Management prints the time to replenishment. */
export function timeSpan(ms: number): string {
  let s = Math.max(0, Math.ceil(ms / 1000));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const hh = String(Math.floor(s / 3600)).padStart(2, '0');
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return `${d > 0 ? `${d}.` : ''}${hh}:${mm}:${ss}`;
}

/** 403 for an exhausted quota (reference/apim.md §2.4). */
export function quotaExceeded(source: string, what: 'calls' | 'bandwidth', r: CounterResult): never {
  const wait = Number.isFinite(r.resetMs) ? r.resetMs : 0;
  const text = what === 'calls' ? 'Out of call volume quota.' : 'Out of bandwidth quota.';
  const message = Number.isFinite(r.resetMs) ? `${text} Quota will be replenished in ${timeSpan(wait)}.` : text;
  const headers = Number.isFinite(r.resetMs) ? ['retry-after', String(seconds(wait))] : [];
  throw new PolicyError(source, 'QuotaExceeded', message, errorResponse(403, message, headers));
}

export interface WindowCounter {
  kind: 'window';
  spec: WindowSpec;
}
export interface GcraCounter {
  kind: 'gcra';
  spec: GcraSpec;
}

export function rateSpec(calls: number, periodMs: number, algorithm: string): WindowCounter | GcraCounter {
  return algorithm === 'gcra' ? { kind: 'gcra', spec: gcraSpec(calls, periodMs) } : { kind: 'window', spec: windowSpec(periodMs) };
}

/** One reusable result object per policy instance (the request path allocates none). */
export function resultSlot(): CounterResult {
  return newResult();
}

export function keyText(v: string): string {
  return v.length > MAX_COUNTER_KEY ? v.slice(0, MAX_COUNTER_KEY) : v;
}

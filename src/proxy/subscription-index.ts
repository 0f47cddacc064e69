// The worker's in-memory view of the subscription store: key hash → subscription, rebuilt when the store changes.
// The request path hashes a presented key once (then remembers it in a bounded cache) and never touches SQLite.
import { hashKey } from '../lib/subscription-keys.ts';
import { effectiveState, type SubscriptionRecord } from '../model/subscription.ts';
import type { SubscriptionCheck } from './runtime.ts';

const CACHE_MAX = 4096;

export type KeyCheck = { ok: true; subscription: SubscriptionRecord } | { ok: false };

export class SubscriptionIndex {
  readonly #byHash = new Map<string, SubscriptionRecord>();
  /** Presented key → its record (or null for an unknown key); cleared when full, so a flood of random keys stays bounded. */
  readonly #cache = new Map<string, SubscriptionRecord | null>();
  readonly size: number;

  constructor(records: readonly SubscriptionRecord[]) {
    for (const r of records) {
      this.#byHash.set(r.primaryKeyHash, r);
      this.#byHash.set(r.secondaryKeyHash, r);
    }
    this.size = records.length;
  }

  /**
   * Whether `key` opens `api` now: a known key of an active, unexpired subscription scoped to all Apis,
   * to this Api, or to one of `products` (the products containing the Api); reference/apim.md §1.3.
   */
  check(key: string, api: string, products: readonly string[], nowMs: number): KeyCheck {
    let r = this.#cache.get(key);
    if (r === undefined) {
      r = this.#byHash.get(hashKey(key)) ?? null;
      if (this.#cache.size >= CACHE_MAX) this.#cache.clear();
      this.#cache.set(key, r);
    }
    if (r === null || effectiveState(r, nowMs) !== 'active') return { ok: false };
    const s = r.scope;
    if (s.kind === 'all' || (s.kind === 'api' && s.name === api) || (s.kind === 'product' && products.includes(s.name))) return { ok: true, subscription: r };
    return { ok: false };
  }
}

export type KeyOutcome =
  | { error: 'subscription_key_missing' | 'subscription_key_invalid' }
  | {
    error: null;
    /** The query to forward (without the key parameter). */
    query: string;
    /** '' when no subscription opened it. */
    subscription: string;
    /** The subscription's record (for context.Subscription), or null. */
    record: SubscriptionRecord | null;
    /** The product the request came through (its policies apply): the key's product, or the open product without a valid key; '' for none. */
    product: string;
  };

/**
 * API Management's resolution for one request to a route that requires a key (reference/apim.md §1.3):
 * a valid key opens the Api; without one, or with an invalid one, only an open product containing the
 * Api lets the request through. Shared by plain requests and WebSocket upgrades.
 */
export function resolveSubscription(index: SubscriptionIndex | null, need: SubscriptionCheck, api: string, raw: string[], query: string): KeyOutcome {
  const presented = presentedKey(raw, need.header, query, need.query);
  if (presented === undefined) return need.open ? { error: null, query, subscription: '', record: null, product: need.openProduct } : { error: 'subscription_key_missing' };
  const verdict: KeyCheck = index === null ? { ok: false } : index.check(presented.key, api, need.products, Date.now());
  if (!verdict.ok && !need.open) return { error: 'subscription_key_invalid' };
  return {
    error: null,
    query: presented.fromQuery ? withoutQueryParam(query, need.query) : query,
    subscription: verdict.ok ? verdict.subscription.name : '',
    record: verdict.ok ? verdict.subscription : null,
    product: verdict.ok ? (verdict.subscription.scope.kind === 'product' ? verdict.subscription.scope.name : '') : need.openProduct,
  };
}

/** The key from the header (case-insensitive name), else from the query parameter; undefined when neither has one. */
export function presentedKey(raw: string[], headerLower: string, query: string, queryName: string): { key: string; fromQuery: boolean } | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === headerLower.length && raw[i].toLowerCase() === headerLower) return raw[i + 1] === '' ? undefined : { key: raw[i + 1], fromQuery: false };
  }
  if (query.length < 2) return undefined;
  for (const part of query.slice(1).split('&')) {
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    if (safeDecode(name) !== queryName) continue;
    const value = eq === -1 ? '' : safeDecode(part.slice(eq + 1));
    return value === '' ? undefined : { key: value, fromQuery: true };
  }
  return undefined;
}

/** `query` ("?a=1&b=2" or "") without the parameter `name`; "" when nothing is left. */
export function withoutQueryParam(query: string, name: string): string {
  if (query.length < 2) return query;
  const kept = query.slice(1).split('&').filter((part) => {
    const eq = part.indexOf('=');
    return safeDecode(eq === -1 ? part : part.slice(0, eq)) !== name;
  });
  return kept.length === 0 ? '' : `?${kept.join('&')}`;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replaceAll('+', ' '));
  } catch {
    return s;
  }
}

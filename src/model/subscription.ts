// The subscription vocabulary (API Management's model, reference/apim.md §1.3) shared by the store, the CLI and the gateway.

/** What a subscription's keys open: one product, one API, or every API. */
export type SubscriptionScope = { kind: 'product'; name: string } | { kind: 'api'; name: string } | { kind: 'all' };

/** `expired` is derived from `expiresAt`; the others are set by an operator. `cancelled` is final. */
export type SubscriptionState = 'active' | 'suspended' | 'cancelled' | 'expired';

export interface SubscriptionRecord {
  /** Stable id (`sub_` + 16 hex), used in logs and `context.Subscription.Id`. */
  id: string;
  /** Unique, operator-chosen; the handle the CLI uses. */
  name: string;
  scope: SubscriptionScope;
  owner: string;
  state: SubscriptionState;
  primaryKeyHash: string;
  secondaryKeyHash: string;
  /** ISO 8601. */
  createdAt: string;
  /** ISO 8601, or null for no expiry. */
  expiresAt: string | null;
}

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** Parses `product:NAME`, `api:NAME` or `all`. Returns a problem string when invalid. */
export function parseScope(text: string): SubscriptionScope | string {
  if (text === 'all') return { kind: 'all' };
  const colon = text.indexOf(':');
  const kind = colon === -1 ? '' : text.slice(0, colon);
  const name = text.slice(colon + 1);
  if ((kind !== 'product' && kind !== 'api') || !NAME.test(name)) {
    return `scope must be "all", "product:NAME" or "api:NAME" (NAME: lowercase letters, digits, "-"), got "${text}"`;
  }
  return { kind, name };
}

export function formatScope(s: SubscriptionScope): string {
  return s.kind === 'all' ? 'all' : `${s.kind}:${s.name}`;
}

export function isValidSubscriptionName(name: string): boolean {
  return NAME.test(name);
}

/** The state a record is in at `nowMs` (epoch ms): an active subscription past its expiry reads as expired. */
export function effectiveState(r: SubscriptionRecord, nowMs: number): SubscriptionState {
  if (r.state === 'active' && r.expiresAt !== null && Date.parse(r.expiresAt) <= nowMs) return 'expired';
  return r.state;
}

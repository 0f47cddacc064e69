// The Product kind's fields (API Management's products, reference/apim.md §1.3): Apis grouped under terms.
import { bool, int, list, obj, oneOf, str } from './field.ts';

export const productFields = obj(
  {
    displayName: str('Human-readable name.', { optional: true }),
    description: str('Terms and description shown to consumers.', { optional: true }),
    apis: list(str('Api name ("name" in this namespace or "namespace/name")'), 'The Apis this product opens.', { default: [] }),
    subscriptionRequired: bool(
      'Protected (true): requests need a key of a subscription to this product (or to the Api, or to all Apis). Open (false): requests need no key; an Api can be in at most one open product.',
      true,
    ),
    approvalRequired: bool('New subscriptions wait for an operator\'s approval (recorded for the subscription workflow).', false),
    state: oneOf(['published', 'notPublished'], 'Unpublishing hides the product from new subscribers; existing keys keep working, as in API Management.', { default: 'published' }),
    subscriptionsLimit: int('Most subscriptions one owner may hold; unset means no limit.', { optional: true, min: 1 }),
  },
  'A product: Apis grouped under terms, protected by subscription keys or open.',
);


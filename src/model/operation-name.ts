// Operation names: derived from methods and template, or from an OpenAPI operationId, and made unique within an Api.

const MAX = 63;

/** `GET /items/{id}` → `get-items-id`; `*` methods read `any`, a `*` segment reads `rest`. */
export function operationName(methods: string[], urlTemplate: string): string {
  const verb = methods.map((m) => (m === '*' ? 'any' : m.toLowerCase())).join('-');
  const segments = urlTemplate
    .split('/')
    .filter(Boolean)
    .map((s) => (s === '*' ? 'rest' : s.replace(/[{}]/g, '')));
  const slug = `${verb}-${segments.join('-') || 'root'}`
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return slug.slice(0, MAX).replace(/-+$/, '');
}

/**
 * API Management's rule for an imported operation's name: the operationId lower-cased, each run of other
 * characters turned into "-", trimmed (`listPets` → `listpets`, `pets.get_by-id` → `pets-get-by-id`); at most 63
 * characters here (a DNS label), where API Management allows 76. Empty when nothing is left.
 */
export function nameFromOperationId(operationId: string): string {
  return operationId
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, MAX)
    .replace(/-+$/, '');
}

/** `base`, or `base-2`, `base-3`… (shortened so that the result stays a valid name) when taken. */
export function uniqueName(base: string, taken: (name: string) => boolean): string {
  if (!taken(base)) return base;
  for (let n = 2; ; n++) {
    const suffix = `-${n}`;
    const name = `${base.slice(0, MAX - suffix.length).replace(/-+$/, '')}${suffix}`;
    if (!taken(name)) return name;
  }
}

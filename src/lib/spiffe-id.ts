// SPIFFE IDs (spiffe/spiffe standards/SPIFFE-ID.md): parsing by the spec's rules with go-spiffe's error texts, and the mesh's workload IDs.

/** IDs longer than this are rejected: the spec requires support up to 2048 bytes and says longer ones SHOULD NOT be made. */
export const MAX_SPIFFE_ID_BYTES = 2048;
/** The spec's limit on a trust domain name (go-spiffe does not check it). */
export const MAX_TRUST_DOMAIN_BYTES = 255;

const SCHEME = 'spiffe://';

// go-spiffe's error texts, so callers and the corpus can match on the class of the problem.
const ERR = {
  empty: 'cannot be empty',
  scheme: 'scheme is missing or invalid',
  missingTd: 'trust domain is missing',
  tdChar: 'trust domain characters are limited to lowercase letters, numbers, dots, dashes, and underscores',
  tdLong: `trust domain name longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`,
  idLong: `SPIFFE ID longer than ${MAX_SPIFFE_ID_BYTES} bytes`,
  pathChar: 'path segment characters are limited to letters, numbers, dots, dashes, and underscores',
  emptySegment: 'path cannot contain empty segments',
  dotSegment: 'path cannot contain dot segments',
  trailingSlash: 'path cannot have a trailing slash',
} as const;

// Char-code tests instead of regular expressions: these run on every mTLS handshake.
function isTrustDomainChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x5f; // a-z 0-9 . - _
}

function isPathChar(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d || c === 0x5f;
}

/** Checks a bare trust domain name (no scheme); undefined when valid, else the problem. */
function trustDomainProblem(td: string): string | undefined {
  if (td === '') return ERR.missingTd;
  for (let i = 0; i < td.length; i++) if (!isTrustDomainChar(td.charCodeAt(i))) return ERR.tdChar;
  // Only ASCII passes the loop above, so length in UTF-16 units is the length in bytes.
  if (td.length > MAX_TRUST_DOMAIN_BYTES) return ERR.tdLong;
  return undefined;
}

/** Checks a path ('' or '/seg/seg'), scanning left to right as go-spiffe does so the first problem found is the same. */
function pathProblem(path: string): string | undefined {
  if (path === '') return undefined;
  let segStart = 0; // index of the '/' that opens the current segment
  for (let i = 1; i <= path.length; i++) {
    const c = i < path.length ? path.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      const seg = path.slice(segStart + 1, i);
      if (seg === '') return i === path.length ? ERR.trailingSlash : ERR.emptySegment;
      if (seg === '.' || seg === '..') return ERR.dotSegment;
      segStart = i;
    } else if (!isPathChar(c)) {
      return ERR.pathChar;
    }
  }
  return undefined;
}

/**
 * Parses a SPIFFE ID. The scheme must be exactly `spiffe://` (lower case, as go-spiffe: the spec's case-insensitivity
 * is not honoured, so one identity has one spelling); no userinfo, port, query, fragment or percent-encoding (their
 * characters are simply not allowed). `path` is '' or starts with '/'.
 */
export function parseSpiffeId(s: string): { trustDomain: string; path: string } | { error: string } {
  if (typeof s !== 'string' || s === '') return { error: ERR.empty };
  if (!s.startsWith(SCHEME)) return { error: ERR.scheme };
  const slash = s.indexOf('/', SCHEME.length);
  const trustDomain = slash === -1 ? s.slice(SCHEME.length) : s.slice(SCHEME.length, slash);
  const path = slash === -1 ? '' : s.slice(slash);
  const tdErr = trustDomainProblem(trustDomain);
  if (tdErr !== undefined) return { error: tdErr };
  const pathErr = pathProblem(path);
  if (pathErr !== undefined) return { error: pathErr };
  if (s.length > MAX_SPIFFE_ID_BYTES) return { error: ERR.idLong };
  return { trustDomain, path };
}

/** A trust domain from a bare name (`example.org`) or a SPIFFE ID, as go-spiffe's TrustDomainFromString. */
export function parseTrustDomain(nameOrId: string): { trustDomain: string } | { error: string } {
  if (typeof nameOrId !== 'string') return { error: ERR.missingTd };
  if (nameOrId.includes(':/')) {
    const id = parseSpiffeId(nameOrId);
    return 'error' in id ? id : { trustDomain: id.trustDomain };
  }
  const err = trustDomainProblem(nameOrId);
  return err === undefined ? { trustDomain: nameOrId } : { error: err };
}

/** `spiffe://<trustDomain>/ns/<namespace>/sa/<service>`; throws a RangeError when a part would not make a valid ID. */
export function workloadId(trustDomain: string, namespace: string, service: string): string {
  const id = `${SCHEME}${trustDomain}/ns/${namespace}/sa/${service}`;
  const parsed = parseWorkloadId(id);
  if (parsed === null || parsed.namespace !== namespace || parsed.service !== service || parsed.trustDomain !== trustDomain) {
    const err = parseSpiffeId(id);
    throw new RangeError(`cannot make a workload ID from trust domain ${JSON.stringify(trustDomain)}, namespace ${JSON.stringify(namespace)}, service ${JSON.stringify(service)}${'error' in err ? `: ${err.error}` : ''}`);
  }
  return id;
}

/** The parts of a workload ID (`spiffe://td/ns/<ns>/sa/<svc>`, exactly those four segments); null for any other ID. */
export function parseWorkloadId(id: string): { trustDomain: string; namespace: string; service: string } | null {
  const p = parseSpiffeId(id);
  if ('error' in p) return null;
  const seg = p.path.split('/'); // ['', 'ns', ns, 'sa', svc]
  if (seg.length !== 5 || seg[1] !== 'ns' || seg[3] !== 'sa') return null;
  return { trustDomain: p.trustDomain, namespace: seg[2], service: seg[4] };
}

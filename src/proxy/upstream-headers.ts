// Builds the header list sent upstream from the client's rawHeaders: hop-by-hop removed first, then our own headers added.

/** The caller's verified SPIFFE ID, as a sidecar's inbound hands it to the app (Linkerd's l5d-client-id). */
export const CLIENT_ID_HEADER = 'x-lockgate-client-id';

/** Per-request facts the forwarding headers need. */
export interface ForwardFacts {
  clientIp: string;
  trusted: boolean;
  proto: string;
  host: string;
  requestId: string;
  traceparent: string;
  /** Names listed in the client's Connection header (lowercase), removed as hop-by-hop. */
  connectionTokens: string[] | null;
  /** Content-Length to send, or -1 to omit (no body, or chunked). */
  contentLength: number;
  /** More `Via` entries than this means a forwarding loop. */
  maxHops: number;
  /** Forward the client's tracestate (only when its traceparent was valid and continued). */
  keepTracestate: boolean;
  /** A further header to remove (lowercase), e.g. the subscription key's; '' for none. */
  drop?: string;
}

/**
 * Hop-by-hop and framing headers, plus the headers we set ourselves. Switching on length first keeps
 * the common header (which matches none) to one or two comparisons.
 */
function dropped(n: string): boolean {
  switch (n.length) {
    case 2:
      return n === 'te';
    case 3:
      return n === 'via';
    case 6:
      return n === 'expect';
    case 7:
      return n === 'trailer' || n === 'upgrade';
    case 10:
      return n === 'connection' || n === 'keep-alive' || n === 'tracestate';
    case 11:
      return n === 'traceparent';
    case 12:
      return n === 'x-request-id';
    case 14:
      return n === 'content-length';
    case 15:
      // x-lockgate-hops: only a mesh node sets it (counted from the request's own); a plain gateway never passes a client's on.
      // x-lockgate-user (and -email, -groups): only an inbound sidecar sets them, from a verified assertion.
      return n === 'x-forwarded-for' || n === 'x-lockgate-hops' || n === 'x-lockgate-user';
    case 16:
      return n === 'proxy-connection' || n === 'x-forwarded-host' || n === 'x-lockgate-email';
    case 17:
      return n === 'transfer-encoding' || n === 'x-forwarded-proto' || n === 'x-lockgate-groups';
    case 20:
      // Only a sidecar's inbound sets it, from the verified client certificate: a client's copy never passes.
      // The assertion: minted, exchanged or (inbound) passed on after verification by the node itself, never as received.
      return n === CLIENT_ID_HEADER || n === 'x-lockgate-assertion';
    default:
      return false;
  }
}

/** Returns the flat `[name, value, …]` list for undici (names lowercase), or null when `Via` shows a loop. */
export function buildUpstreamHeaders(raw: string[], f: ForwardFacts): string[] | null {
  const out: string[] = [];
  let xff = '';
  let xfh = '';
  let xfp = '';
  let via = '';
  let tracestate = '';
  const tokens = f.connectionTokens;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.charCodeAt(0) === 58 /* ':' h2 pseudo-header */) continue;
    const n = name.toLowerCase();
    if (dropped(n)) {
      if (n === 'x-forwarded-for') xff = xff ? `${xff}, ${raw[i + 1]}` : raw[i + 1];
      else if (n === 'x-forwarded-host') xfh ||= raw[i + 1];
      else if (n === 'x-forwarded-proto') xfp ||= raw[i + 1];
      else if (n === 'via') via = via ? `${via}, ${raw[i + 1]}` : raw[i + 1];
      else if (n === 'tracestate') tracestate = tracestate ? `${tracestate},${raw[i + 1]}` : raw[i + 1];
      continue;
    }
    if (tokens !== null && tokens.includes(n)) continue;
    if (f.drop !== undefined && n === f.drop) continue;
    if (n === 'host') {
      out.push('host', f.host);
      continue;
    }
    out.push(n, raw[i + 1]);
  }
  if (f.trusted) {
    out.push('x-forwarded-for', xff ? `${xff}, ${f.clientIp}` : f.clientIp);
    out.push('x-forwarded-proto', xfp || f.proto);
    out.push('x-forwarded-host', xfh || f.host);
  } else {
    // Untrusted peers cannot choose what the backend believes about the client: replace, never append.
    out.push('x-forwarded-for', f.clientIp, 'x-forwarded-proto', f.proto, 'x-forwarded-host', f.host);
  }
  if (via && countEntries(via) >= f.maxHops) return null;
  out.push('via', via ? `${via}, 1.1 lockgate` : '1.1 lockgate');
  out.push('x-request-id', f.requestId, 'traceparent', f.traceparent);
  if (tracestate && f.keepTracestate) out.push('tracestate', tracestate);
  if (f.contentLength >= 0) out.push('content-length', String(f.contentLength));
  return out;
}

function countEntries(v: string): number {
  let n = 1;
  for (let j = 0; j < v.length; j++) if (v.charCodeAt(j) === 44) n++;
  return n;
}

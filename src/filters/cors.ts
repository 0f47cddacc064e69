// cors: answers CORS preflights and adds CORS headers to the response of an allowed cross-origin request.
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { getHeader } from '../proxy/policy-context.ts';

/** `https://a.example` and `https://a.example:443` are one origin; anything unparsable matches nothing. */
function normalOrigin(origin: string): string | null {
  try {
    const u = new URL(origin);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    const port = u.port || (u.protocol === 'https:' ? '443' : '80');
    return `${u.protocol}//${u.hostname}:${port}`;
  } catch {
    return null;
  }
}

export const corsPolicy: PolicyFactory = (attrs, env) => {
  const origins = attrs.allowedOrigins as string[];
  const anyOrigin = origins.includes('*');
  const credentials = attrs.allowCredentials === true;
  if (anyOrigin && origins.length > 1) throw new Error('allowedOrigins is either "*" alone or a list of origins');
  if (anyOrigin && credentials) throw new Error('allowCredentials cannot be used with allowedOrigins "*" (browsers refuse credentials for a wildcard origin)');
  const allowedOrigins = new Set<string>();
  for (const o of origins) {
    if (o === '*') continue;
    const n = normalOrigin(o);
    if (n === null) throw new Error(`${JSON.stringify(o)} is not an origin (scheme://host[:port])`);
    allowedOrigins.add(n);
  }
  const methods = (attrs.allowedMethods as string[]).map((m) => m.toUpperCase());
  const anyMethod = methods.includes('*');
  const headers = (attrs.allowedHeaders as string[]).map((h) => h.toLowerCase());
  const anyHeader = headers.includes('*');
  const expose = (attrs.exposeHeaders as string[]).join(', ');
  const maxAge = Number(attrs.preflightResultMaxAge ?? 0);
  const terminate = attrs.terminateUnmatchedRequest !== false;

  const originAllowed = (origin: string): boolean => {
    if (anyOrigin) return true;
    const n = normalOrigin(origin);
    return n !== null && allowedOrigins.has(n);
  };
  const allowOrigin = (origin: string): string => (anyOrigin ? '*' : origin);
  const empty200 = () => ({ status: 200, reason: '', headers: [] as string[], body: null, capture: null });

  return {
    name: 'cors',
    path: env.entry.path,
    run(pc) {
      const origin = getHeader(pc.clientHeaders.map((v, i) => (i % 2 === 0 ? v.toLowerCase() : v)), 'origin');
      if (origin === undefined) return;
      const requested = pc.req.method === 'OPTIONS' ? getHeader(lower(pc.clientHeaders), 'access-control-request-method') : undefined;
      if (requested !== undefined) {
        // A preflight: only cors runs; the answer is ours.
        pc.stopped = true;
        const reqHeaders = (getHeader(lower(pc.clientHeaders), 'access-control-request-headers') ?? '')
          .split(',')
          .map((h) => h.trim().toLowerCase())
          .filter(Boolean);
        const ok =
          originAllowed(origin) &&
          (anyMethod || methods.includes(requested.toUpperCase())) &&
          (anyHeader || reqHeaders.every((h) => headers.includes(h)));
        const res = empty200();
        if (ok) {
          res.headers.push('access-control-allow-origin', allowOrigin(origin));
          res.headers.push('access-control-allow-methods', anyMethod ? requested : methods.join(', '));
          if (reqHeaders.length) res.headers.push('access-control-allow-headers', reqHeaders.join(', '));
          if (credentials) res.headers.push('access-control-allow-credentials', 'true');
          if (maxAge > 0) res.headers.push('access-control-max-age', String(maxAge));
        }
        if (!anyOrigin) res.headers.push('vary', 'Origin');
        pc.res = res;
        return;
      }
      if (!originAllowed(origin)) {
        if (terminate && (pc.req.method === 'GET' || pc.req.method === 'HEAD')) {
          pc.res = empty200();
          pc.stopped = true;
        }
        return;
      }
      const extra = ['access-control-allow-origin', allowOrigin(origin)];
      if (credentials) extra.push('access-control-allow-credentials', 'true');
      if (expose) extra.push('access-control-expose-headers', expose);
      if (!anyOrigin) extra.push('vary', 'Origin');
      pc.responseHeaders.push(...extra);
    },
  };
};

function lower(raw: string[]): string[] {
  return raw.map((v, i) => (i % 2 === 0 ? v.toLowerCase() : v));
}

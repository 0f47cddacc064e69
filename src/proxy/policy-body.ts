// Bodies as policies read them: Content-Encoding decoded once where the pipeline buffers a body, and the helpers
// body-reading policies share (which body a section means, content types, Accept).
//
// Choice: a buffered body with `Content-Encoding: gzip | x-gzip | deflate | br | zstd` (or a list of them) is
// decoded once and left decoded: the header is removed and Content-Length follows the decoded bytes (the sender
// recomputes it for every buffered body). Identity is always acceptable to a client and a backend, and encoding
// again would cost CPU on every request for no gain. A decoded response's strong ETag becomes weak (it named the
// encoded bytes). An encoding the gateway does not know is left as it is, header included; a policy that reads the
// body then fails clearly (415 on a request, 502 on a response) instead of working on bytes it cannot interpret.
import zlib from 'node:zlib';
import { getHeader, removeHeader, PolicyError, errorResponse, type PolicyContext } from './policy-context.ts';

type Inflate = (buf: Buffer, opts: zlib.ZlibOptions & zlib.BrotliOptions, cb: (err: Error | null, out: Buffer) => void) => void;

const z = zlib as unknown as Record<string, Inflate | undefined>;
const DECODERS: Record<string, Inflate | undefined> = {
  gzip: zlib.gunzip as Inflate,
  'x-gzip': zlib.gunzip as Inflate,
  deflate: zlib.inflate as Inflate,
  br: zlib.brotliDecompress as Inflate,
  zstd: z.zstdDecompress,
};

/** The codings of a Content-Encoding value, lower-case, in the order they were applied, without `identity`. */
export function contentCodings(value: string | undefined): string[] {
  if (value === undefined) return [];
  const out: string[] = [];
  for (const part of value.split(',')) {
    const c = part.trim().toLowerCase();
    if (c !== '' && c !== 'identity') out.push(c);
  }
  return out;
}

export function isKnownCoding(c: string): boolean {
  return DECODERS[c] !== undefined;
}

export class BodyDecodeError extends Error {
  /** `payload_too_large`: the decoded body passed the limit; `corrupt`: the data does not decode. */
  readonly code: 'payload_too_large' | 'corrupt';
  constructor(code: 'payload_too_large' | 'corrupt', message: string) {
    super(message);
    this.code = code;
  }
}

function run(f: Inflate, buf: Buffer, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => f(buf, { maxOutputLength: max }, (err, out) => (err ? reject(err) : resolve(out))));
}

async function decodeOne(coding: string, buf: Buffer, max: number): Promise<Buffer> {
  try {
    return await run(DECODERS[coding]!, buf, max);
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw new BodyDecodeError('payload_too_large', `the decoded body is larger than ${max} bytes, the most a policy may buffer`);
    // Some servers send raw DEFLATE for "deflate" (RFC 9110 says zlib): accept both.
    if (coding === 'deflate') {
      try {
        return await run(zlib.inflateRaw as Inflate, buf, max);
      } catch (err2) {
        if ((err2 as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw new BodyDecodeError('payload_too_large', `the decoded body is larger than ${max} bytes, the most a policy may buffer`);
      }
    }
    throw new BodyDecodeError('corrupt', `the ${coding}-encoded body does not decode: ${(err as Error).message}`);
  }
}

/**
 * Decodes a buffered body whose headers (a flat lower-case list, changed in place) name a Content-Encoding the
 * gateway knows: resolves with the decoded bytes and removes the header (a strong ETag becomes weak). Without an
 * encoding, with an unknown one, or with an empty body, resolves with `body` unchanged and leaves the headers.
 * Rejects with a BodyDecodeError; the decoded size is capped at `max` bytes (a small bomb cannot expand past it).
 */
export async function decodeBody(headers: string[], body: Buffer, max: number): Promise<Buffer> {
  const codings = contentCodings(getHeader(headers, 'content-encoding'));
  if (codings.length === 0 || body.length === 0 || !codings.every(isKnownCoding)) return body;
  let out = body;
  for (let i = codings.length - 1; i >= 0; i--) out = await decodeOne(codings[i], out, max);
  removeHeader(headers, 'content-encoding');
  const etag = getHeader(headers, 'etag');
  if (etag !== undefined && etag.startsWith('"')) {
    removeHeader(headers, 'etag');
    headers.push('etag', `W/${etag}`);
  }
  return out;
}

/** True when the headers name a non-identity Content-Encoding (decodeBody only has work to do then). */
export function hasContentEncoding(headers: string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === 'content-encoding') return contentCodings(headers[i + 1]).length > 0;
  return false;
}

export interface BodyTarget {
  headers: string[];
  body: Buffer;
}

/** The request (inbound, backend) or response (outbound, onError) of a section. */
export function onResponseSection(section: string): boolean {
  return section === 'outbound' || section === 'onError';
}

/**
 * The body a policy reads in its section, decoded, or null when there is none (no body, or a response that streams).
 * A body still carrying a Content-Encoding (one the gateway cannot decode) fails the policy: 415 for a request,
 * 502 for a response, with LastError reason `UnsupportedContentEncoding`.
 */
export function readableBody(pc: PolicyContext, onResponse: boolean, source: string): BodyTarget | null {
  const target = onResponse ? pc.res : pc.req;
  if (target === null || target.body === null) return null;
  const codings = contentCodings(getHeader(target.headers, 'content-encoding'));
  if (codings.length > 0 && target.body.length > 0) {
    const what = `${onResponse ? 'response' : 'request'} body is encoded with ${JSON.stringify(codings.join(', '))}, which the gateway cannot decode`;
    throw new PolicyError(source, 'UnsupportedContentEncoding', `the ${what}`, onResponse ? errorResponse(502, 'Bad gateway') : errorResponse(415, `Unsupported Content-Encoding: ${codings.join(', ')}`));
  }
  return { headers: target.headers, body: target.body };
}

/** Replaces a section's body (the caller read it with readableBody); a response body stops streaming. */
export function replaceBody(pc: PolicyContext, onResponse: boolean, body: Buffer, contentType?: string): void {
  const target = onResponse ? pc.res : pc.req;
  if (target === null) return;
  target.body = body;
  if (onResponse && pc.res !== null) pc.res.capture = null;
  removeHeader(target.headers, 'content-encoding');
  if (contentType !== undefined) {
    removeHeader(target.headers, 'content-type');
    target.headers.push('content-type', contentType);
  }
}

/** The media type of a Content-Type value, lower-case, without parameters. */
export function mediaType(value: string | undefined): string {
  if (value === undefined) return '';
  const semi = value.indexOf(';');
  return (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
}

export function isJsonType(t: string): boolean {
  return t === 'application/json' || t === 'text/json' || (t.endsWith('+json') && t.includes('/'));
}

export function isXmlType(t: string): boolean {
  return t === 'application/xml' || t === 'text/xml' || (t.endsWith('+xml') && t.includes('/'));
}

/** Whether an Accept value asks for a type `match` accepts (q=0 ranges do not count; wildcards do not either). */
export function acceptAsks(accept: string | undefined, match: (type: string) => boolean): boolean {
  if (accept === undefined) return false;
  for (const range of accept.split(',')) {
    const [type, ...params] = range.split(';');
    const q = params.map((p) => p.trim().toLowerCase()).find((p) => p.startsWith('q='));
    if (q !== undefined && Number(q.slice(2)) === 0) continue;
    if (match(type.trim().toLowerCase())) return true;
  }
  return false;
}

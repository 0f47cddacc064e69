// A request body of unknown length (chunked, or HTTP/2 without content-length) streamed with a size cap.
import type { Readable } from 'node:stream';
import { LockgateError } from '../lib/errors.ts';
import type { Exchange } from './exchange.ts';

/**
 * Yields the body's chunks and counts them into `ex.bytesIn`; past `max` bytes it throws
 * `payload_too_large`, which aborts the upstream request (the backend never sees a complete body).
 */
export async function* limitedBody(body: Readable, max: number, ex: Exchange): AsyncGenerator<Buffer> {
  for await (const chunk of body as AsyncIterable<Buffer>) {
    ex.bytesIn += chunk.length;
    if (ex.bytesIn > max) throw new LockgateError('payload_too_large', `request body over ${max} bytes`);
    yield chunk;
  }
}

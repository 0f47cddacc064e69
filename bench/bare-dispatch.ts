// The ceiling of a Node data plane: node:http + undici dispatch, no routing, logging or checks.
// Usage: node bench/bare-dispatch.ts --port 8080 --upstream http://127.0.0.1:8000
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import type { Dispatcher } from 'undici';

// Connection-scoped headers (RFC 9110 §7.6.1) are never forwarded in either direction.
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-authenticate', 'proxy-authorization']);

/** Streams one upstream response back to the client (shared with bare-mesh.ts, whose hops are this plus TLS). */
export class ProxyHandler implements Dispatcher.DispatchHandler {
  #res: ServerResponse;
  #controller: Dispatcher.DispatchController | null = null;

  constructor(res: ServerResponse) {
    this.#res = res;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#res.destroyed) controller.abort(new Error('client closed'));
  }

  onResponseStart(controller: Dispatcher.DispatchController, statusCode: number): void {
    const raw = controller.rawHeaders as Buffer[];
    const headers: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toString('latin1');
      if (HOP_BY_HOP.has(name.toLowerCase())) continue;
      headers.push(name, raw[i + 1].toString('latin1'));
    }
    this.#res.writeHead(statusCode, headers);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#res.write(chunk)) {
      controller.pause();
      this.#res.once('drain', () => controller.resume());
    }
  }

  onResponseEnd(): void {
    this.#res.end();
  }

  onResponseError(_controller: Dispatcher.DispatchController, _error: Error): void {
    if (this.#res.headersSent) this.#res.destroy();
    else this.#res.writeHead(502, { 'content-length': '0' }).end();
  }

  /** Called when the client connection goes away before the response finished. */
  clientClosed(): void {
    this.#controller?.abort(new Error('client closed'));
  }
}

export function startBareDispatch(port: number, upstream: string): Promise<{ close(): Promise<void> }> {
  const pool = new Pool(upstream, { connections: 128, pipelining: 1 });

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const raw = req.rawHeaders;
    const headers: string[] = [];
    let hasBody = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i].toLowerCase();
      if (name === 'content-length' || name === 'transfer-encoding') hasBody = true;
      if (HOP_BY_HOP.has(name)) continue;
      headers.push(raw[i], raw[i + 1]);
    }
    const handler = new ProxyHandler(res);
    res.once('close', () => {
      if (!res.writableFinished) handler.clientClosed();
    });
    pool.dispatch({ path: req.url ?? '/', method: req.method as Dispatcher.HttpMethod, headers, body: hasBody ? req : null }, handler);
  };

  const server = createServer(handle);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      resolve({
        close: async () => {
          server.closeAllConnections();
          await new Promise<void>((done) => server.close(() => done()));
          await pool.close();
        },
      });
    });
  });
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' } } });
  const proxy = await startBareDispatch(Number(values.port), values.upstream ?? 'http://127.0.0.1:8000');
  process.once('SIGTERM', () => {
    proxy.close().then(() => process.exit(0), () => process.exit(1));
  });
}

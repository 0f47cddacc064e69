// Loopback helpers for the benchmark: free ports for daemons that cannot bind port 0, and readiness polls.
import { createServer } from 'node:net';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/** Binds 127.0.0.1:0, reads the port the OS chose, closes. nginx and friends cannot listen on port 0 themselves. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port'))));
    });
  });
}

/** True when nothing listens on 127.0.0.1:port any more. */
export function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export interface GetOptions {
  host?: string;
  /** Extra headers, `Name: value` each. */
  headers?: string[];
  method?: string;
  body?: Buffer;
  timeoutMs?: number;
}

/** One request to 127.0.0.1 on a fresh connection (no agent: a pooled socket the server is closing makes a parse error); resolves with the status, body length and the body's first 4 KiB as text, rejects on error or timeout. */
export function httpGet(port: number, path: string, options: GetOptions = {}): Promise<{ status: number; bytes: number; body: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { connection: 'close' };
    if (options.host !== undefined) headers.host = options.host;
    if (options.body !== undefined) headers['content-type'] = 'application/octet-stream';
    for (const h of options.headers ?? []) {
      const colon = h.indexOf(':');
      headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
    }
    const req = request(
      { host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers, agent: false, timeout: options.timeoutMs ?? 2000 },
      (res) => {
        let bytes = 0;
        let body = '';
        res.on('data', (chunk: Buffer) => {
          if (body.length < 4096) body += chunk.toString('utf8', 0, Math.min(chunk.length, 4096 - body.length));
          bytes += chunk.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Polls `check` every 100 ms until it returns true; false when the deadline passes or `alive` says the process died. */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, alive: () => boolean = () => true): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive()) return false;
    try {
      if (await check()) return true;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return false;
}

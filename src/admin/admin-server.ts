// The local admin listener: health, readiness, Prometheus metrics and the running config (secrets redacted).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface AdminSource {
  ready(): boolean;
  /** Prometheus text for all workers together. */
  metrics(): Promise<string>;
  /** The running config as plain data. */
  config(): unknown;
}

const SECRET_KEY = /(secret|password|token|keyfile|privatekey|apikey|^key$)/i;

/** Replaces the values of secret-looking fields, at any depth. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [k, redact(v)]));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) && v !== undefined ? '[redacted]' : redact(v);
    return out;
  }
  return value;
}

export class AdminServer {
  readonly #server: http.Server;

  constructor(source: AdminSource) {
    this.#server = http.createServer((req, res) => {
      const send = (status: number, type: string, body: string): void => {
        res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'application/json', '{"statusCode":405,"message":"Method not allowed"}');
      switch (path) {
        case '/healthz':
          return send(200, 'text/plain', 'ok\n');
        case '/readyz':
          return source.ready() ? send(200, 'text/plain', 'ready\n') : send(503, 'text/plain', 'not ready\n');
        case '/metrics':
          source.metrics().then(
            (text) => send(200, 'text/plain; version=0.0.4; charset=utf-8', text),
            (err: Error) => send(500, 'application/json', JSON.stringify({ statusCode: 500, message: err.message })),
          );
          return;
        case '/config':
          return send(200, 'application/json', JSON.stringify(redact(source.config()), null, 2) + '\n');
        default:
          return send(404, 'application/json', '{"statusCode":404,"message":"Resource not found"}');
      }
    });
  }

  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve((this.#server.address() as AddressInfo).port));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}

// Peer: Fastify with @fastify/http-proxy (undici pool of 128 connections, no pipelining), logger off.
// Usage: node bench/peers/fastify-proxy.ts --port 8080 --upstream http://127.0.0.1:8000
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import httpProxy from '@fastify/http-proxy';

const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' } } });
const app = Fastify({ logger: false });
await app.register(httpProxy, {
  upstream: values.upstream ?? 'http://127.0.0.1:8000',
  undici: { connections: 128, pipelining: 1 },
});
await app.listen({ host: '127.0.0.1', port: Number(values.port) });
process.once('SIGTERM', () => {
  app.close().then(() => process.exit(0), () => process.exit(1));
});

// Peer: node:http server + http-proxy (node-http-proxy) with a keep-alive agent of 128 sockets.
// Usage: node bench/peers/http-proxy.ts --port 8080 --upstream http://127.0.0.1:8000
import { Agent, createServer } from 'node:http';
import { parseArgs } from 'node:util';
import httpProxy from 'http-proxy';

const { values } = parseArgs({ options: { port: { type: 'string' }, upstream: { type: 'string' } } });
const agent = new Agent({ keepAlive: true, maxSockets: 128 });
const proxy = httpProxy.createProxyServer({ target: values.upstream ?? 'http://127.0.0.1:8000', agent });
proxy.on('error', (_error, _req, res) => {
  // The error callback also fires for sockets (ws); only HTTP responses get a 502.
  if ('writeHead' in res && !res.headersSent) res.writeHead(502, { 'content-length': '0' }).end();
  else res.destroy();
});
const server = createServer((req, res) => proxy.web(req, res));
server.listen(Number(values.port), '127.0.0.1');
process.once('SIGTERM', () => {
  server.closeAllConnections();
  server.close(() => {
    agent.destroy();
    process.exit(0);
  });
});

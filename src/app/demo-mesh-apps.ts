// The mesh demo's two services for `lockgate up`: orders calls inventory through its sidecar; inventory says who called.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';

const ORDERS = [
  { id: '1', item: 'keyboard', quantity: 1 },
  { id: '2', item: 'monitor', quantity: 2 },
];

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body, null, 2) + '\n';
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export interface DemoAppOptions {
  role: 'orders' | 'inventory';
  port: number;
  host?: string;
  /** inventory: the version it reports (the canary split shows v1 and v2 answering). */
  version?: string;
  /** orders: its sidecar's outbound listener, `http://127.0.0.1:<port>`; inventory is reached with `Host: inventory`. */
  outbound?: string;
}

/** orders → inventory over the mesh: the answer carries the inventory version and the identity inventory saw. */
function ordersApp(outbound: string): http.RequestListener {
  // The request id and the end user's assertion are passed on as an app passes traceparent: the sidecar exchanges the
  // assertion for one addressed to inventory, whose sidecar then decides on the end user too.
  const callInventory = async (method: string, path: string, requestId: string | undefined, assertion: string | undefined): Promise<{ status: number; body: unknown }> => {
    const r = await request(`${outbound}${path}`, {
      method: method as 'GET',
      headers: { host: 'inventory', ...(requestId ? { 'x-request-id': requestId } : {}), ...(assertion ? { 'x-lockgate-assertion': assertion } : {}) },
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    const text = await r.body.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: show it as text
    }
    return { status: r.statusCode, body };
  };
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const requestId = req.headers['x-request-id'] as string | undefined;
    const assertion = req.headers['x-lockgate-assertion'] as string | undefined;
    if (url.pathname === '/healthz') return json(res, 200, { ok: true });
    if (url.pathname === '/orders' && req.method === 'GET') return json(res, 200, ORDERS);
    const m = /^\/orders\/([^/]+)(\/cancel|\/supplier)?$/.exec(url.pathname);
    const order = m ? ORDERS.find((o) => o.id === m[1]) : undefined;
    if (!m || !order) return json(res, 404, { message: 'no such order' });
    const call = m[2] === undefined && req.method === 'GET'
      ? callInventory('GET', `/stock/${order.item}`, requestId, assertion)
      : m[2] === '/supplier' && req.method === 'GET'
        ? callInventory('GET', `/suppliers/${order.item}`, requestId, assertion)
        : m[2] === '/cancel' && req.method === 'POST'
          ? callInventory('DELETE', `/stock/${order.item}/reservations`, requestId, assertion)
          : undefined;
    if (call === undefined) return json(res, 405, { message: 'method not allowed' });
    // A refusal by inventory (401, 403) is passed on as orders' own status; any other failure is a bad gateway.
    call.then(
      (inv) => json(res, inv.status < 400 ? 200 : inv.status === 401 || inv.status === 403 ? inv.status : 502, { order, inventory: { status: inv.status, body: inv.body } }),
      (err: Error) => json(res, 502, { order, inventory: { error: err.message } }),
    );
  };
}

function inventoryApp(version: string): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/healthz') return json(res, 200, { ok: true });
    // The sidecar put the caller's verified SPIFFE ID here, and the end user's (from a verified assertion), when there
    // is one; it drops any copy a client sends.
    const caller = req.headers['x-lockgate-client-id'] ?? '(none: called without the mesh)';
    const user = req.headers['x-lockgate-email'] ?? req.headers['x-lockgate-user'];
    const s = /^\/suppliers\/([^/]+)$/.exec(url.pathname);
    if (s && req.method === 'GET') return json(res, 200, { item: s[1], supplier: 'Acme Peripherals', unitCost: 12.5 + s[1].length, version, caller, user: user ?? null });
    const m = /^\/stock\/([^/]+)(\/reservations)?$/.exec(url.pathname);
    if (!m) return json(res, 404, { message: 'no such stock resource' });
    if (m[2] !== undefined && req.method === 'DELETE') return json(res, 200, { item: m[1], reservationsCleared: true, version, caller });
    if (m[2] === undefined && req.method === 'GET') return json(res, 200, { item: m[1], available: 40 + m[1].length, version, caller, ...(user ? { user } : {}) });
    return json(res, 405, { message: 'method not allowed' });
  };
}

export async function startDemoApp(o: DemoAppOptions): Promise<{ port: number; close(): Promise<void> }> {
  const handler = o.role === 'orders' ? ordersApp(o.outbound ?? 'http://127.0.0.1:1') : inventoryApp(o.version ?? 'v1');
  const server = http.createServer(handler);
  const port = await new Promise<number>((r) => server.listen(o.port, o.host ?? '127.0.0.1', () => r((server.address() as AddressInfo).port)));
  return {
    port,
    close: () => new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    }),
  };
}

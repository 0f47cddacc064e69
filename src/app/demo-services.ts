// Two small demo services for `lockgate up`: an orders API and an echo service, on loopback ports from the OS.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const ORDERS = [
  { id: '1', item: 'keyboard', quantity: 1, status: 'shipped' },
  { id: '2', item: 'monitor', quantity: 2, status: 'pending' },
];

function json(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function ordersApp(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/healthz') return json(res, 200, { ok: true });
  if (url.pathname === '/orders' && req.method === 'GET') return json(res, 200, ORDERS);
  const m = /^\/orders\/([^/]+)$/.exec(url.pathname);
  if (m && req.method === 'GET') {
    const o = ORDERS.find((x) => x.id === m[1]);
    return o ? json(res, 200, o) : json(res, 404, { message: `order ${m[1]} not found` });
  }
  if (url.pathname === '/orders' && req.method === 'POST') {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => json(res, 201, { id: String(ORDERS.length + 1), received: body }));
    return;
  }
  json(res, 404, { message: 'no such orders resource' });
}

function echoApp(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.url === '/healthz') return json(res, 200, { ok: true });
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () =>
    json(res, 200, { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') }),
  );
}

export interface DemoServices {
  orders: number;
  echo: number;
  close(): Promise<void>;
}

export async function startDemoServices(): Promise<DemoServices> {
  const servers = [http.createServer(ordersApp), http.createServer(echoApp)];
  const ports = await Promise.all(
    servers.map((s) => new Promise<number>((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)))),
  );
  return {
    orders: ports[0],
    echo: ports[1],
    close: () => Promise.all(servers.map((s) => new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); }))).then(() => undefined),
  };
}

/** The demo's OpenAPI document (written beside the config): the catalog Api imports its operations. */
export const DEMO_OPENAPI = `openapi: 3.0.3
info: { title: Catalog, version: "1.0" }
paths:
  /products:
    get:
      operationId: listProducts
      responses:
        "200":
          description: All products
          content:
            application/json:
              schema: { type: array, items: { $ref: "#/components/schemas/Product" } }
              example: [{ id: 1, name: keyboard, price: 49.5 }, { id: 2, name: monitor, price: 199 }]
  /products/{id}:
    get:
      operationId: getProduct
      parameters:
        - { name: id, in: path, required: true, schema: { type: integer } }
      responses:
        "200":
          description: One product
          content:
            application/json:
              schema: { $ref: "#/components/schemas/Product" }
              example: { id: 1, name: keyboard, price: 49.5 }
components:
  schemas:
    Product:
      type: object
      required: [id, name]
      properties:
        id: { type: integer }
        name: { type: string }
        price: { type: number }
`;

/** The demo config: Apis in front of the two services, a versioned Api imported from OpenAPI, policies. */
export function demoConfig(ordersPort: number, echoPort: number, port: number, adminPort: number, openapiFile = 'catalog.openapi.yaml'): string {
  return `# Lockgate demo config written by \`lockgate up\`.
apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: demo }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: ${port}, protocol: http }]
  admin: { address: 127.0.0.1, port: ${adminPort} }
  accessLog: { path: stdout }
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: orders }
spec:
  url: http://127.0.0.1:${ordersPort}
  healthCheck: { enabled: true, path: /healthz, interval: 5s }
  retries: { attempts: 2 }
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: echo }
spec:
  url: http://127.0.0.1:${echoPort}
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: orders }
spec:
  path: /orders
  backend: orders
  operations:
    - { name: list-orders, method: GET, urlTemplate: / }
    - { name: get-order, method: GET, urlTemplate: "/{id}" }
    - { name: create-order, method: POST, urlTemplate: / }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: echo }
spec:
  path: /echo
  backend: echo
  stripPath: true
---
# Protected by subscription keys, as in API Management: \`lockgate up\` creates one subscription to this product.
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: partners }
spec:
  path: /partners
  backend: echo
  stripPath: true
  subscriptionRequired: true
---
apiVersion: lockgate.dev/v1alpha1
kind: Product
metadata: { name: partner-program }
spec:
  displayName: Partner program
  apis: [partners]
---
# Partners may call 5 times a minute per subscription (exact across worker threads): the 6th call gets 429.
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: partners }
spec:
  scope: { api: partners }
  inbound:
    - base: {}
    - rate-limit-by-key: { calls: 5, renewalPeriod: 60s, counterKey: context.Subscription.Id, remainingCallsHeaderName: x-ratelimit-remaining }
    - set-header: { name: x-partner, value: "@(context.Subscription.Name)" }
---
# Two versions of one API, both imported from an OpenAPI document: /catalog/v1/… and /catalog/v2/…;
# a request without a version goes to v1.
apiVersion: lockgate.dev/v1alpha1
kind: ApiVersionSet
metadata: { name: catalog }
spec: { scheme: path, defaultVersion: v1 }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: catalog-v1 }
spec:
  path: /catalog
  versionSet: catalog
  version: v1
  backend: echo
  import: { openapi: ${openapiFile} }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: catalog-v2 }
spec:
  path: /catalog
  versionSet: catalog
  version: v2
  backend: echo
  stripPath: true
  import: { openapi: ${openapiFile} }
---
# v1 has no backend of its own yet: its operations answer with the OpenAPI examples.
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: catalog-v1-mock }
spec:
  scope: { api: catalog-v1 }
  inbound:
    - base: {}
    - mock-response: { statusCode: 200, contentType: application/json }
`;
}

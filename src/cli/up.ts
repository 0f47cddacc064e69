// `lockgate up` (also `npm start`): control plane, gateway, demo services behind sidecars, a development OpenID provider.
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { startDemoServices, demoConfig, DEMO_OPENAPI } from '../app/demo-services.ts';
import { DEMO_EDGE_MESH_CONFIG, DEMO_GATEWAY_SERVICE, DEMO_MESH_CONFIG, demoIdentityConfig } from '../app/demo-mesh-config.ts';
import { DEMO_IDP_AUDIENCE, DEMO_IDP_CLIENT_ID, startDemoIdp, type DemoIdp } from '../app/demo-idp.ts';
import { SubscriptionStore } from '../store/subscription-store.ts';
import { adminRequest, resolveTarget, type AdminTarget } from './admin-client.ts';
import { ProcessGroup, freePort, jsonEvent, parseEvent } from './up-processes.ts';
import type { Verb } from './verb.ts';

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function token(target: AdminTarget, service: string, namespace: string, kind: 'sidecar' | 'gateway'): Promise<string> {
  const r = await adminRequest(target, 'POST', '/v1/tokens', { body: JSON.stringify({ service, namespace, kind }), contentType: 'application/json' });
  if (r.status !== 201) throw new Error(`token for ${namespace}/${service}: ${r.status} ${r.text}`);
  return (JSON.parse(r.text) as { token: string }).token;
}

/** Polls until the mesh path answers 200 (the gateway has the orders endpoint, orders has inventory's). */
async function waitForMesh(url: string, deadlineMs: number, headers: Record<string, string> = {}): Promise<void> {
  const end = Date.now() + deadlineMs;
  let last = '';
  while (Date.now() < end) {
    try {
      const r = await request(url, { headers, headersTimeout: 2000, bodyTimeout: 2000 });
      last = `${r.statusCode} ${await r.body.text()}`;
      if (r.statusCode === 200) return;
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the mesh did not converge: ${url} → ${last}`);
}

export const upVerb: Verb = {
  summary: 'start a working demo: control plane, gateway, services behind mTLS sidecars (npm start)',
  usage: `Usage: lockgate up [--port P] [--admin-port P]

Starts, each as its own process on 127.0.0.1: a control plane (store, CA, distribution), two mesh
services (orders, and inventory in two versions for a canary split) each behind its own sidecar,
and the gateway, which joins the mesh with its own identity and routes /shop to orders over mTLS.
Also two plain demo backends and the API Management demo (subscriptions, rate limit, versions), and
a development OpenID provider (users alice and bob) for identity at every hop and just-in-time access.
Gateway on port 8080 and admin 9901 when free, otherwise ports from the OS. Ctrl-C stops it all.`,
  async run(args) {
    const { values } = parseArgs({ args, options: { port: { type: 'string', default: '8080' }, 'admin-port': { type: 'string', default: '9901' } } });
    const wantPort = Number(values.port);
    const wantAdmin = Number(values['admin-port']);
    const port = wantPort !== 0 && (await portFree(wantPort)) ? wantPort : 0;
    const adminPort = wantAdmin !== 0 && (await portFree(wantAdmin)) ? wantAdmin : 0;
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-up-'));
    // The gateway's access log is the demo's output; every process's own lines are in <dir>/<name>.log.
    const group = new ProcessGroup(dir, (name, line) => name === 'gateway' && line.startsWith('{"time"') && line.includes('"requestId"'));
    const demo = await startDemoServices();
    let idp: DemoIdp | undefined;
    const cleanup = async (): Promise<void> => {
      await group.stop();
      await demo.close();
      await idp?.close();
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      // 0. DEVELOPMENT ONLY: an OpenID provider (users alice and bob) whose /dev/token/<user> signs in with no password.
      idp = await startDemoIdp();

      // 1. The control plane: store, CA, distribution. Its bootstrap admin token is printed once.
      const cpDir = path.join(dir, 'control-plane');
      const cp = await group.start('control-plane', ['control-plane', '--data-dir', cpDir, '--listen', '127.0.0.1:0'], jsonEvent('listening'));
      const adminToken = /bootstrap admin token[^:]*: (\S+)/.exec(cp.lines.join('\n'))?.[1];
      if (!adminToken) throw new Error('the control plane printed no bootstrap token');
      const target = await resolveTarget({ 'data-dir': cpDir, token: adminToken });

      // 2. Config through the admin API: the mesh, and the edge (whose catalog imports an OpenAPI file beside it).
      const openapi = path.join(dir, 'catalog.openapi.yaml');
      writeFileSync(openapi, DEMO_OPENAPI);
      const edge = demoConfig(demo.orders, demo.echo, port, adminPort, openapi);
      const identity = demoIdentityConfig(idp.issuer, DEMO_IDP_CLIENT_ID, DEMO_IDP_AUDIENCE);
      const body = [DEMO_MESH_CONFIG, edge, DEMO_EDGE_MESH_CONFIG, identity].join('\n---\n');
      const applied = await adminRequest(target, 'POST', '/v1/config:apply', { body });
      if (applied.status >= 300) throw new Error(`demo config rejected (a bug): ${applied.status} ${applied.text}`);

      // 3. inventory v1 and v2, each an app process behind its own sidecar (labelled with its version).
      const common = ['--namespace', 'shop', '--control-plane', target.url.origin, '--inbound', '127.0.0.1:0', '--access-log', 'off'];
      for (const version of ['v1', 'v2']) {
        const app = await group.start(`inventory-${version}`, ['demo-app', '--role', 'inventory', '--version', version], jsonEvent('ready'));
        const appPort = parseEvent<{ port: number }>(app, 'ready').port;
        await group.start(`inventory-${version}-sidecar`, [
          'sidecar', '--service', 'inventory', ...common, '--app', `127.0.0.1:${appPort}`, '--label', `version=${version}`,
          '--data-dir', path.join(dir, `inventory-${version}`), '--token', await token(target, 'inventory', 'shop', 'sidecar'),
        ], jsonEvent('ready'));
      }
      // 4. orders: its app calls inventory through its sidecar's outbound listener (known before either starts).
      const ordersOutbound = await freePort();
      const ordersApp = await group.start('orders', ['demo-app', '--role', 'orders', '--outbound', `http://127.0.0.1:${ordersOutbound}`], jsonEvent('ready'));
      const ordersSidecar = await group.start('orders-sidecar', [
        'sidecar', '--service', 'orders', ...common, '--app', `127.0.0.1:${parseEvent<{ port: number }>(ordersApp, 'ready').port}`,
        '--outbound', `127.0.0.1:${ordersOutbound}`, '--data-dir', path.join(dir, 'orders'), '--token', await token(target, 'orders', 'shop', 'sidecar'),
      ], jsonEvent('ready'));
      const ordersAdmin = parseEvent<{ admin: number }>(ordersSidecar, 'ready').admin;

      // 5. The gateway joins the mesh as spiffe://lockgate.local/ns/default/sa/edge; one subscription for the key demo.
      const gwDir = path.join(dir, 'gateway');
      mkdirSync(gwDir, { recursive: true, mode: 0o700 });
      const store = SubscriptionStore.open(gwDir);
      const demoKey = store.create({ name: 'demo', scope: { kind: 'product', name: 'partner-program' }, owner: 'you' }).keys.primaryKey!;
      store.close();
      const gwProc = await group.start('gateway', [
        'gateway', '--control-plane', target.url.origin, '--token', await token(target, DEMO_GATEWAY_SERVICE, 'default', 'gateway'),
        '--data-dir', gwDir, '--workers', '1',
      ], jsonEvent('listening'), { env: { LOCKGATE_CA_FILE: path.join(cpDir, 'ca-bundle.pem') } });
      const listening = parseEvent<{ ports: Record<string, number>; admin: number }>(gwProc, 'listening');
      const gw = `http://127.0.0.1:${listening.ports.http}`;
      const admin = `http://127.0.0.1:${listening.admin}`;
      await waitForMesh(`${gw}/shop/orders/1`, 20_000);
      // The gateway has the provider's keys, and every hop the end user's assertion: alice reads a supplier record.
      const backoffice = `${gw}/backoffice/orders/1/supplier`;
      await waitForMesh(backoffice, 20_000, { authorization: `Bearer ${await idp.token('alice')}` });

      const cli = `npx lockgate`;
      const conn = `--data-dir ${cpDir} --token ${adminToken}`;
      process.stdout.write(`
Lockgate is up: control plane, gateway, 3 services with sidecars and a development OpenID provider (files in ${dir}).

  gateway        ${gw}
  admin          ${admin}/healthz  ${admin}/readyz  ${admin}/metrics  ${admin}/config
  control plane  ${target.url.origin}   admin token ${adminToken}

The mesh (namespace shop; every call is mTLS with 24 h SPIFFE certificates; default deny):
  curl -s ${gw}/shop/orders/1
                  # gateway → orders → inventory, each hop mTLS: "caller" is the identity inventory verified
  for i in $(seq 20); do curl -s ${gw}/shop/orders/1 | grep -o '"version": "v[12]"'; done | sort | uniq -c
                  # the canary split: 18 answers from inventory v1, 2 from v2
  curl -s -X POST ${gw}/shop/orders/1/cancel
                  # orders may only read stock: inventory's sidecar answers 403 access_denied with a decision id
  openssl x509 -noout -subject -ext subjectAltName -enddate -in ${path.join(dir, 'orders', 'certs', 'cert.pem')}
  curl -s http://127.0.0.1:${ordersAdmin}/metrics | grep certificate_expiry
  ${cli} get nodes ${conn}
  ${cli} get MeshService ${conn}
  ${cli} ca show ${conn}
  ${cli} check ${conn}

The edge (API Management):
  curl -i ${gw}/orders/1
  curl -i -X POST ${gw}/orders -d '{"item":"cable"}'
  curl -i ${gw}/echo/anything?x=1
  curl -i ${gw}/nowhere          # 404 {"statusCode":404,"message":"Resource not found",…}
  curl -i ${gw}/partners/hello   # 401: missing subscription key
  curl -i -H 'Ocp-Apim-Subscription-Key: ${demoKey}' ${gw}/partners/hello
  for i in 1 2 3 4 5 6 7; do curl -s -o /dev/null -w '%{http_code} ' -H 'Ocp-Apim-Subscription-Key: ${demoKey}' ${gw}/partners/hello; done; echo
                                 # 5 calls a minute per subscription: then 429 with Retry-After
  curl -i ${gw}/catalog/v1/products/1   # v1 answers from the OpenAPI example (mock-response)
  curl -i ${gw}/catalog/products        # no version: the default, v1
  curl -i ${gw}/catalog/v2/products/7   # v2 goes to the backend
  ${cli} subscription list --data-dir ${gwDir}
  curl -s ${admin}/metrics | grep lockgate_requests_total

Identity at every hop (a development OpenID provider, ${idp.issuer}: alice is in orders-admins, bob in staff):
  ALICE=$(curl -s ${idp.tokenUrl('alice')})
  BOB=$(curl -s ${idp.tokenUrl('bob')})
                  # DEVELOPMENT ONLY: signs the user in with no password and prints an access token (1 h)
  curl -s -H "Authorization: Bearer $ALICE" ${backoffice}
                  # 200: the gateway lets staff and orders-admins into /backoffice and asserts alice to orders (signed,
                  # short-lived); orders passes it on; inventory's sidecar lets orders-admins read supplier records
  curl -s -H "Authorization: Bearer $BOB" ${backoffice}
                  # 403: the gateway let bob (staff) in, inventory's sidecar did not (defense in depth); the body has
                  # "hop": "sidecar shop/inventory" and the decision id to quote
  curl -i ${backoffice}
                  # 401: no token

Just-in-time access: bob asks, alice (an approver: orders-admins) approves, bob is in until the grant ends:
  REQ=$(${cli} access request --service inventory -n shop --method GET --path '/suppliers/*' --duration 10m --reason "check the keyboard supplier" --user-token "$BOB" --data-dir ${cpDir} | awk 'NR==1{print $1}')
  ${cli} access approve "$REQ" --user-token "$ALICE" --data-dir ${cpDir}
  curl -s -H "Authorization: Bearer $BOB" ${backoffice}
                  # 200 within a second, until the grant ends 10 minutes after the approval
  ${cli} access show "$REQ" ${conn}
  ${cli} access revoke "$REQ" --reason "done" ${conn}
                  # bob is denied again at once
  ${cli} audit export --data-dir ${cpDir} | grep access-request/
                  # the audit trail: who asked, who approved, when, until when, who revoked (hash-chained)

People at the admin API (RoleBindings: orders-admins administer namespace shop, staff may look):
  ${cli} login --data-dir ${cpDir}
                  # device-code sign-in: open the printed URL, enter the code, sign in as alice; the token is kept
                  # under ~/.config/lockgate (refreshed as needed) and used when no --token is given
  ${cli} whoami --data-dir ${cpDir}
  ${cli} get meshservices -n shop --data-dir ${cpDir}
                  # allowed: alice is admin in shop; -n default is refused with 403 and the role she lacks
  ${cli} admin-token create --role operator -n shop --ttl 1h --description ci --data-dir ${cpDir}
                  # a scoped token for automation (shown once); ${cli} admin-token list / revoke ID

Change config with ${cli} apply -f FILE ${conn} (see ${cli} diff); nodes converge within a second.
Each process logs to ${dir}/<name>.log. The gateway's access log follows below. Ctrl-C stops everything.

`);
    } catch (err) {
      process.stderr.write(`lockgate up: ${(err as Error).message}\n`);
      await cleanup();
      return 2;
    }
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await cleanup();
    return 0;
  },
};

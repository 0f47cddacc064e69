// `lockgate up` (also `npm start`): a gateway with a demo config and two demo services, ready to curl.
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GatewaySupervisor } from '../app/gateway-supervisor.ts';
import { startDemoServices, demoConfig, DEMO_OPENAPI } from '../app/demo-services.ts';
import { SubscriptionStore } from '../store/subscription-store.ts';
import type { Verb } from './verb.ts';

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export const upVerb: Verb = {
  summary: 'start a working demo: gateway + two demo services (npm start)',
  usage: `Usage: lockgate up [--port P] [--admin-port P]

Starts the demo services and a gateway in front of them on 127.0.0.1 (port 8080 and admin 9901
when free, otherwise ports from the OS), then prints the URLs and curl commands. Ctrl-C stops it.`,
  async run(args) {
    const { values } = parseArgs({ args, options: { port: { type: 'string', default: '8080' }, 'admin-port': { type: 'string', default: '9901' } } });
    const wantPort = Number(values.port);
    const wantAdmin = Number(values['admin-port']);
    const port = (await portFree(wantPort)) ? wantPort : 0;
    const adminPort = (await portFree(wantAdmin)) ? wantAdmin : 0;
    const demo = await startDemoServices();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-up-'));
    const file = path.join(dir, 'lockgate.yaml');
    writeFileSync(path.join(dir, 'catalog.openapi.yaml'), DEMO_OPENAPI);
    writeFileSync(file, demoConfig(demo.orders, demo.echo, port, adminPort));
    // One subscription to the demo product, in a throwaway store: its key goes into the printed curl commands.
    const dataDir = path.join(dir, 'data');
    const store = SubscriptionStore.open(dataDir);
    const demoKey = store.create({ name: 'demo', scope: { kind: 'product', name: 'partner-program' }, owner: 'you' }).keys.primaryKey!;
    store.close();
    const sup = new GatewaySupervisor({ files: [file], workers: 1, log: () => {}, dataDir });
    const started = await sup.start();
    if (!started.ok) {
      process.stderr.write(`lockgate up: demo config rejected (a bug):\n${started.problems}\n`);
      await demo.close();
      return 2;
    }
    const gw = `http://127.0.0.1:${sup.ports.http}`;
    const admin = `http://127.0.0.1:${sup.adminPort}`;
    process.stdout.write(`
Lockgate is up (config ${file}, version ${sup.config.version}).

  gateway   ${gw}
  admin     ${admin}/healthz  ${admin}/readyz  ${admin}/metrics  ${admin}/config

Try:
  curl -i ${gw}/orders
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
  npx lockgate subscription list --data-dir ${dataDir}
  curl -s ${admin}/metrics | grep lockgate_requests_total

Edit ${file} and save: the gateway reloads it (a bad edit is rejected and logged).
Access log lines follow below. Ctrl-C stops everything.

`);
    process.on('SIGHUP', () => sup.scheduleReload('SIGHUP', true));
    await new Promise<void>((resolve) => {
      process.once('SIGINT', () => resolve());
      process.once('SIGTERM', () => resolve());
    });
    await sup.drain();
    await demo.close();
    rmSync(dir, { recursive: true, force: true });
    return 0;
  },
};

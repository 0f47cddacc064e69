// `lockgate demo-app --role orders|inventory`: one of the mesh demo's services as its own process (used by `lockgate up`).
import { parseArgs } from 'node:util';
import { startDemoApp } from '../app/demo-mesh-apps.ts';
import type { Verb } from './verb.ts';

export const demoAppVerb: Verb = {
  summary: 'run one of the demo services lockgate up starts (orders or inventory)',
  usage: `Usage: lockgate demo-app --role orders|inventory [--port P] [--version V] [--outbound URL]

orders: GET /orders/{id} asks inventory (through its sidecar's outbound listener, --outbound)
for stock; GET /orders/{id}/supplier for the supplier record (orders-admins only, decided on the
end user, whose assertion orders passes on); POST /orders/{id}/cancel asks inventory to clear
reservations (the demo's AccessPolicy denies that call). inventory: answers with its --version,
the caller's verified identity and the end user, if any. Prints {"event":"ready","port":N}
when listening on 127.0.0.1.`,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: { role: { type: 'string' }, port: { type: 'string', default: '0' }, version: { type: 'string', default: 'v1' }, outbound: { type: 'string' } },
    });
    if (values.role !== 'orders' && values.role !== 'inventory') {
      process.stderr.write('lockgate demo-app: --role orders|inventory is required\n');
      return 1;
    }
    const app = await startDemoApp({ role: values.role, port: Number(values.port), version: values.version, outbound: values.outbound });
    process.stdout.write(JSON.stringify({ event: 'ready', port: app.port }) + '\n');
    return await new Promise<number>((resolve) => {
      const stop = (): void => void app.close().then(() => resolve(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
  },
};

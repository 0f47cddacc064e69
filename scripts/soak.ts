// `npm run soak`: the rotation test's scenario for longer — 6-second certificates renewed under constant load through two
// real sidecars for 2 minutes (SOAK_MS, SOAK_LIFETIME_S to change); prints requests, failures and renewals; exit 1 on any failure.
import { MeshWorld, constantLoad, startPair, type LoadTally } from '../test/helpers/mesh-processes.ts';

const DURATION_MS = Number(process.env.SOAK_MS ?? 120_000);
const LIFETIME_S = Number(process.env.SOAK_LIFETIME_S ?? 6);
const REPORT_EVERY_MS = 10_000;

async function main(): Promise<number> {
  const world = new MeshWorld('lockgate-soak-');
  const stop = new AbortController();
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const started = Date.now();
    const { orders, inventory } = await startPair(world, { namespace: 'shop', certificateLifetime: `${LIFETIME_S}s` });
    const base = { orders: orders.renewals(), inventory: inventory.renewals() };
    console.log(`soak: orders → inventory through two sidecars, ${LIFETIME_S}s certificates, 10 kept-alive callers + 2 on new connections, ${DURATION_MS / 1000}s (set up in ${Date.now() - started} ms)`);
    const timer = setTimeout(() => stop.abort(), DURATION_MS);
    let tally: LoadTally | undefined;
    const running = constantLoad({ origin: orders.origin, host: 'inventory', path: '/items/1', keepAlive: 10, fresh: 2, signal: stop.signal, live: (t) => (tally = t) });
    const t0 = Date.now();
    const progress = setInterval(() => {
      if (!tally) return;
      console.log(`soak: ${Math.round((Date.now() - t0) / 1000)}s requests=${tally.ok + tally.failed} failures=${tally.failed} renewals=${orders.renewals() + inventory.renewals() - base.orders - base.inventory}`);
    }, REPORT_EVERY_MS);
    const result = await running;
    clearTimeout(timer);
    clearInterval(progress);
    const renewals = { orders: orders.renewals() - base.orders, inventory: inventory.renewals() - base.inventory };
    const total = renewals.orders + renewals.inventory;
    const elapsed = (Date.now() - t0) / 1000;
    console.log(`soak: done in ${elapsed.toFixed(1)}s: requests=${result.ok + result.failed} (${Math.round((result.ok + result.failed) / elapsed)}/s) failures=${result.failed} renewals=${total} (orders ${renewals.orders}, inventory ${renewals.inventory}) kept-alive connections opened=${result.keepAliveConnects} closed=${result.keepAliveDisconnects} new connections=${result.freshConnections}`);
    for (const f of result.failures) console.log(`soak: failure: ${f}`);
    // Renewals at half life: one per sidecar every LIFETIME_S / 2 seconds; fewer than 80 % of those is a failure too.
    const expected = Math.floor((0.8 * 2 * elapsed) / (LIFETIME_S / 2));
    if (result.failed > 0 || result.keepAliveDisconnects > 0) return 1;
    if (total < expected) {
      console.log(`soak: only ${total} renewals, expected at least ${expected}`);
      return 1;
    }
    if (interrupted) {
      console.log('soak: interrupted');
      return 1;
    }
    console.log('soak: ok');
    return 0;
  } catch (err) {
    console.log(`soak: ${(err as Error).stack}`);
    return 1;
  } finally {
    await world.close();
  }
}

process.exitCode = await main();

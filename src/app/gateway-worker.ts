// Entry of one data-plane worker thread: runs a DataPlane and answers the supervisor's messages.
import { DecisionBatcher, type ReportedDecision } from '../telemetry/decision-batcher.ts';
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../model/types.ts';
import { configOf, type ConfigMessage } from './config-message.ts';
import type { SubscriptionRecord } from '../model/subscription.ts';
import { DataPlane } from './data-plane.ts';
import { SharedCounterTable } from '../proxy/shared-counter-table.ts';
import { SqliteSessionStore } from '../store/sqlite-session-store.ts';

export type ToWorker =
  | ConfigMessage
  | { type: 'metrics'; id: number }
  | { type: 'drain'; deadlineMs: number }
  | { type: 'reopen-log' }
  | { type: 'subscriptions'; records: SubscriptionRecord[] };

export type FromWorker =
  | { type: 'listening'; ports: Record<string, number> }
  | { type: 'applied'; version: string; ok: boolean; problems: string[] }
  | { type: 'metrics'; id: number; snapshot: ReturnType<DataPlane['metricsSnapshot']> }
  | { type: 'drained' }
  | { type: 'fatal'; message: string }
  | { type: 'decisions'; batch: ReportedDecision[]; dropped: number };

interface Init {
  config: Config;
  ports: Record<string, number>;
  workerId: number;
  /** From the subscription store (--data-dir), or null without one. */
  subscriptions: SubscriptionRecord[] | null;
  /** The supervisor's counter table (rate-limit-by-key, quota-by-key), shared by every worker. */
  counters: SharedArrayBuffer;
  /** Where sessions.db lives (shared by every worker); undefined: sessions in this worker's memory (one worker). */
  sessionsDir?: string;
  /** Send this worker's access decisions (denies, sampled allows) to the supervisor for the audit trail. */
  reportDecisions?: boolean;
}

const port = parentPort!;
const init = workerData as Init;
const send = (m: FromWorker): void => port.postMessage(m);
/** The last config received (applied or not): what the next message's Api indexes refer to. */
let received: Config = init.config;

try {
  const plane = new DataPlane(init.config, { ports: init.ports, workerId: init.workerId, policyServices: {
    counters: SharedCounterTable.attach(init.counters),
    jwtValidators: new Map(),
    ...(init.sessionsDir !== undefined ? { sessions: SqliteSessionStore.open(init.sessionsDir) } : {}),
  } });
  plane.setSubscriptions(init.subscriptions);
  const decisions = init.reportDecisions === true ? new DecisionBatcher((batch, dropped) => send({ type: 'decisions', batch, dropped })).subscribe() : null;
  const ports = await plane.listen();
  send({ type: 'listening', ports });
  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'config': {
        const config = configOf(m, received);
        received = config;
        const r = plane.apply(config);
        send({ type: 'applied', version: config.version, ok: r.ok, problems: r.problems });
        break;
      }
      case 'metrics':
        send({ type: 'metrics', id: m.id, snapshot: plane.metricsSnapshot() });
        break;
      case 'reopen-log':
        plane.reopenLog();
        break;
      case 'subscriptions':
        plane.setSubscriptions(m.records);
        break;
      case 'drain':
        void plane.drain(m.deadlineMs).then(() => {
          decisions?.close();
          send({ type: 'drained' });
          port.close();
        });
        break;
    }
  });
} catch (err) {
  send({ type: 'fatal', message: (err as Error).message });
  process.exitCode = 1;
}

// Access decisions for the audit trail: a node collects the ones its data plane publishes (denies, audit-mode
// would-denies, and every 100th allow) and hands them on in batches, at most `max` a second (the rest counted as
// dropped, never queued without bound), so a flood of denied calls cannot flood the control plane.
import { accessDecision, allowSample, type AccessDecisionEvent } from './channels.ts';

/** What goes to the control plane for one decision: what it decided, for whom, and why (no headers, no bodies). */
export interface ReportedDecision {
  requestId: string;
  decision: string;
  outcome: 'deny' | 'audit' | 'allow';
  policy: string;
  reason: string;
  source: string;
  service: string;
  method: string;
  path: string;
  user?: string;
  at: number;
}

export function reportedDecision(e: AccessDecisionEvent): ReportedDecision {
  return {
    requestId: e.requestId, decision: e.decision, outcome: e.outcome, policy: e.policy, reason: e.reasons.join('; ').slice(0, 1000),
    source: e.sourceId, service: e.service, method: e.method, path: e.path.slice(0, 512),
    ...(e.user?.email ?? e.user?.sub ? { user: e.user?.email ?? e.user?.sub } : {}), at: e.at ?? Date.now(),
  };
}

export class DecisionBatcher {
  readonly #send: (batch: ReportedDecision[], dropped: number) => void;
  readonly #max: number;
  #batch: ReportedDecision[] = [];
  #dropped = 0;
  readonly #timer: NodeJS.Timeout;
  readonly #onEvent = (e: unknown): void => this.push(e as AccessDecisionEvent);
  #subscribed = false;

  constructor(send: (batch: ReportedDecision[], dropped: number) => void, o: { intervalMs?: number; max?: number } = {}) {
    this.#send = send;
    this.#max = o.max ?? 200;
    this.#timer = setInterval(() => this.flush(), o.intervalMs ?? 1000);
    this.#timer.unref();
  }

  /** Listens to this thread's data plane. */
  subscribe(): this {
    if (!this.#subscribed) {
      accessDecision.subscribe(this.#onEvent);
      allowSample.subscribe(this.#onEvent);
    }
    this.#subscribed = true;
    return this;
  }

  push(e: AccessDecisionEvent): void {
    if (this.#batch.length >= this.#max) this.#dropped++;
    else this.#batch.push(reportedDecision(e));
  }

  flush(): void {
    if (this.#batch.length === 0 && this.#dropped === 0) return;
    const batch = this.#batch;
    const dropped = this.#dropped;
    this.#batch = [];
    this.#dropped = 0;
    this.#send(batch, dropped);
  }

  close(): void {
    clearInterval(this.#timer);
    if (this.#subscribed) {
      accessDecision.unsubscribe(this.#onEvent);
      allowSample.unsubscribe(this.#onEvent);
    }
    this.#subscribed = false;
    this.flush();
  }
}

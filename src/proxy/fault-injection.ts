// Fault injection on a Backend: delay or abort a percentage of requests (resilience testing), decided from an injected random source.
import type { MeshFault } from '../model/mesh-types.ts';
import type { UpstreamCluster } from './upstream-cluster.ts';
import type { Deadline, DeadlineWheel } from './deadline-wheel.ts';
import { stamp } from './clock.ts';

/** What happens to one request: a delay before forwarding (0 = none), then an abort with this status (0 = none). */
export interface FaultVerdict {
  delayMs: number;
  abortStatus: number;
}

export interface FaultInjector {
  /** Decides one request. Allocates only when the request is faulted. */
  decide(): FaultVerdict | null;
}

/**
 * Each percentage is its own draw (`random() * 100 < percent`), as Envoy and Istio do: with 10 % delay and 10 %
 * abort, about 1 % of requests get both (delayed, then aborted). 100 % always fires and 0 % never does, whatever
 * the source.
 */
export function createFaultInjector(fault: MeshFault, random: () => number = Math.random): FaultInjector {
  const delay = fault.delay;
  const abort = fault.abort;
  return {
    decide(): FaultVerdict | null {
      const delayMs = delay !== undefined && delay.percent > 0 && random() * 100 < delay.percent ? delay.duration : 0;
      const abortStatus = abort !== undefined && abort.percent > 0 && random() * 100 < abort.percent ? abort.status : 0;
      return delayMs === 0 && abortStatus === 0 ? null : { delayMs, abortStatus };
    },
  };
}

// Keyed by the Backend's cluster, like splits: every forwarding path finds it without a field on the cluster.
const faults = new WeakMap<UpstreamCluster, FaultInjector>();

export function faultOf(cluster: UpstreamCluster): FaultInjector | undefined {
  return faults.get(cluster);
}

/** Registers (or replaces, on a new config version) the fault of a Backend's cluster. */
export function registerFault(cluster: UpstreamCluster, injector: FaultInjector): void {
  faults.set(cluster, injector);
}

/** Longest step put on a wheel at once: below the default wheel's horizon (256 × 10 ms). */
const STEP_MS = 2000;

/** A timer on a DeadlineWheel that may outlast the wheel's horizon; cancel() stops it. */
export class WheelTimer {
  readonly #wheel: DeadlineWheel;
  readonly #fire: () => void;
  readonly #at: number;
  readonly #step: number;
  #deadline: Deadline | null = null;

  /** `stepMs` must stay below the wheel's horizon (slots × tick), which clamps longer deadlines. */
  constructor(wheel: DeadlineWheel, ms: number, fire: () => void, stepMs = STEP_MS) {
    this.#wheel = wheel;
    this.#fire = fire;
    this.#step = stepMs;
    this.#at = stamp() + ms;
    this.#arm(ms);
  }

  #arm(ms: number): void {
    // Long delays hop along the wheel in steps, so no request ever owns a timer of its own.
    this.#deadline = ms <= this.#step ? this.#wheel.add(ms, this.#fire) : this.#wheel.add(this.#step, this.#next);
  }

  readonly #next = (): void => {
    const left = this.#at - stamp();
    if (left <= 0) this.#fire();
    else this.#arm(left);
  };

  cancel(): void {
    if (this.#deadline !== null) this.#wheel.cancel(this.#deadline);
    this.#deadline = null;
  }
}

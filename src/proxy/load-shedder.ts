// Watches event-loop delay and flips a flag so new requests are shed with 503 instead of every request slowing down.
import { monitorEventLoopDelay } from 'node:perf_hooks';

export class LoadShedder {
  readonly #histogram: ReturnType<typeof monitorEventLoopDelay>;
  readonly #timer: NodeJS.Timeout;

  /** `onChange(overloaded)` is called when the state flips; checked every `checkEveryMs`. */
  constructor(maxDelayMs: number, onChange: (overloaded: boolean) => void, checkEveryMs = 100) {
    this.#histogram = monitorEventLoopDelay({ resolution: 10 });
    this.#histogram.enable();
    let overloaded = false;
    this.#timer = setInterval(() => {
      // p99 over the last interval: one long GC pause does not shed, sustained lag does.
      const delayMs = this.#histogram.percentile(99) / 1e6;
      this.#histogram.reset();
      const next = delayMs > maxDelayMs;
      if (next !== overloaded) {
        overloaded = next;
        onChange(next);
      }
    }, checkEveryMs);
    this.#timer.unref();
  }

  close(): void {
    clearInterval(this.#timer);
    this.#histogram.disable();
  }
}

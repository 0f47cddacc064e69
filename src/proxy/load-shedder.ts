// Watches event-loop delay and flips a flag so new requests are shed with 503 instead of every request slowing down.
import { monitorEventLoopDelay } from 'node:perf_hooks';

const RESOLUTION_MS = 10;

export class LoadShedder {
  readonly #histogram: ReturnType<typeof monitorEventLoopDelay>;
  readonly #timer: NodeJS.Timeout;

  /**
   * `maxDelayMs()` is read at every check, so a reload that changes the threshold applies at once.
   * `onChange(overloaded)` is called when the state flips; checked every `checkEveryMs`.
   */
  constructor(maxDelayMs: () => number, onChange: (overloaded: boolean) => void, checkEveryMs = 100) {
    this.#histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.#histogram.enable();
    let overloaded = false;
    this.#timer = setInterval(() => {
      // p99 over the last interval: one long GC pause does not shed, sustained lag does. The samples
      // include the sampling timer's own period, which is not lag.
      const delayMs = this.#histogram.percentile(99) / 1e6 - RESOLUTION_MS;
      this.#histogram.reset();
      const next = delayMs > maxDelayMs();
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

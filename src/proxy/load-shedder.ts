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
    let over = 0;
    this.#timer = setInterval(() => {
      // p99 over the last interval. The samples include the sampling timer's own period, which is not lag.
      const delayMs = this.#histogram.percentile(99) / 1e6 - RESOLUTION_MS;
      this.#histogram.reset();
      // Sustained lag sheds; one long pause does not: a single stall (a GC, a 10,000-route config build) is the
      // only sample of its interval, so shedding starts only when two intervals in a row are over the limit.
      over = delayMs > maxDelayMs() ? over + 1 : 0;
      const next = overloaded ? over > 0 : over >= 2;
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

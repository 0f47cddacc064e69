// Watches event-loop delay and flips a flag so new requests are shed with 503 instead of every request slowing down.
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';

const RESOLUTION_MS = 10;
/**
 * Below this share of busy time in a check interval the fine-grained sampling is off: an idle gateway or sidecar then
 * wakes 10 times a second instead of 110 (the histogram's 10 ms timer cost an idle data-plane thread ~6 ms of CPU a
 * second; docs/performance.md). A loop this idle is not overloaded; the check timer's own lateness still measures any
 * stall, so a sudden overload is seen as soon as it starts.
 */
const SAMPLE_ABOVE_UTILIZATION = 0.25;

export class LoadShedder {
  readonly #histogram: ReturnType<typeof monitorEventLoopDelay>;
  readonly #timer: NodeJS.Timeout;
  #sampling = false;

  /**
   * `maxDelayMs()` is read at every check, so a reload that changes the threshold applies at once.
   * `onChange(overloaded)` is called when the state flips; checked every `checkEveryMs`.
   */
  constructor(maxDelayMs: () => number, onChange: (overloaded: boolean) => void, checkEveryMs = 100) {
    this.#histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    let overloaded = false;
    let over = 0;
    let lastAt = performance.now();
    let lastElu = performance.eventLoopUtilization();
    this.#timer = setInterval(() => {
      const now = performance.now();
      const elu = performance.eventLoopUtilization();
      const busy = performance.eventLoopUtilization(elu, lastElu).utilization;
      // How late this check itself ran: a lower bound of the loop's delay, measured whether sampling or not.
      const late = now - lastAt - checkEveryMs;
      lastAt = now;
      lastElu = elu;
      let delayMs = late;
      if (this.#sampling) {
        // p99 over the last interval. The samples include the sampling timer's own period, which is not lag.
        delayMs = Math.max(late, this.#histogram.percentile(99) / 1e6 - RESOLUTION_MS);
        this.#histogram.reset();
      }
      const sample = busy >= SAMPLE_ABOVE_UTILIZATION;
      if (sample !== this.#sampling) {
        this.#sampling = sample;
        if (sample) this.#histogram.enable();
        else this.#histogram.disable();
      }
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

  /** Whether the fine-grained delay sampling is on (it is while the loop is busy). */
  get sampling(): boolean {
    return this.#sampling;
  }

  close(): void {
    clearInterval(this.#timer);
    this.#histogram.disable();
  }
}

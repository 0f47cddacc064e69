// A timer wheel for short per-request deadlines: one ticking timer for all requests instead of one per request,
// and precise to its tick (undici's own header timeout ticks every ~500 ms, too coarse below a second).

export interface Deadline {
  /** Set when the deadline is cancelled or has fired; a cancelled entry is skipped when its slot comes up. */
  done: boolean;
  readonly fire: () => void;
  readonly slot: number;
}

export class DeadlineWheel {
  readonly #tickMs: number;
  readonly #slots: Deadline[][];
  readonly #now: () => number;
  #cursor = 0;
  #cursorTime: number;
  #live = 0;
  #timer: NodeJS.Timeout | null = null;

  /** `slots × tickMs` is the horizon: longer deadlines are clamped to it (callers use the wheel below 1 s). */
  constructor(tickMs = 10, slots = 256, now: () => number = () => performance.now()) {
    this.#tickMs = tickMs;
    this.#slots = Array.from({ length: slots }, () => []);
    this.#now = now;
    this.#cursorTime = now();
  }

  /** Calls `fire` after about `ms` (rounded up to the tick), unless cancelled first. */
  add(ms: number, fire: () => void): Deadline {
    if (this.#live === 0) {
      this.#cursorTime = this.#now();
      this.#timer ??= setInterval(() => this.advance(this.#now()), this.#tickMs);
      this.#timer.unref();
    }
    const ticks = Math.min(this.#slots.length - 1, Math.max(1, Math.ceil((this.#now() - this.#cursorTime + ms) / this.#tickMs)));
    const slot = (this.#cursor + ticks) % this.#slots.length;
    const d: Deadline = { done: false, fire, slot };
    this.#slots[slot].push(d);
    this.#live++;
    return d;
  }

  cancel(d: Deadline): void {
    if (d.done) return;
    d.done = true;
    this.#live--;
    if (this.#live === 0) this.#stop();
  }

  /** Fires every deadline whose tick has passed by `now` (called by the interval; public for tests). */
  advance(now: number): void {
    while (now - this.#cursorTime >= this.#tickMs) {
      this.#cursorTime += this.#tickMs;
      this.#cursor = (this.#cursor + 1) % this.#slots.length;
      const due = this.#slots[this.#cursor];
      if (due.length === 0) continue;
      this.#slots[this.#cursor] = [];
      for (const d of due) {
        if (d.done) continue;
        d.done = true;
        this.#live--;
        d.fire();
      }
    }
    if (this.#live === 0) this.#stop();
  }

  #stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  close(): void {
    this.#stop();
    for (const s of this.#slots) s.length = 0;
    this.#live = 0;
  }
}

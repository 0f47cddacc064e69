// Certificate renewal: at half the certificate's life (±10 % jitter), retried with backoff until it works or expires.
import { backoffDelay, sleep } from './backoff.ts';

export interface CertificateTimes {
  /** When the node received the certificate (epoch ms); notBefore is backdated for clock skew, so not that. */
  receivedAt: number;
  notAfter: number;
}

/** How long from `now` until the renewal: receivedAt + life × 0.5 × (0.9 … 1.1). */
export function renewalDelay(t: CertificateTimes, now: number, random: () => number = Math.random): number {
  const life = Math.max(0, t.notAfter - t.receivedAt);
  return Math.max(0, t.receivedAt + life * 0.5 * (0.9 + 0.2 * random()) - now);
}

export interface RenewalOptions {
  /** Gets and installs a new certificate; the current one stays in place until this succeeds. */
  renew: (signal: AbortSignal) => Promise<CertificateTimes>;
  current: () => CertificateTimes;
  now?: () => number;
  random?: () => number;
  /** A failed renewal is retried after a backoff capped at this (default 10 s) — and at a quarter of the time left. */
  retryCapMs?: number;
  onError?: (err: unknown, attempt: number) => void;
}

// setTimeout takes at most 2^31-1 ms (24.8 days); a 90-day certificate renews at day 45.
const MAX_TIMER_MS = 2 ** 30;

/** Runs until close(): sleeps until the renewal point, renews, repeats. */
export class RenewalLoop {
  readonly #o: RenewalOptions;
  readonly #ac = new AbortController();
  #running: Promise<void> | undefined;

  constructor(o: RenewalOptions) {
    this.#o = o;
  }

  start(): void {
    this.#running ??= this.#run();
  }

  async #run(): Promise<void> {
    const now = this.#o.now ?? Date.now;
    const signal = this.#ac.signal;
    while (!signal.aborted) {
      let due = now() + renewalDelay(this.#o.current(), now(), this.#o.random);
      while (!signal.aborted && now() < due) await sleep(Math.min(due - now(), MAX_TIMER_MS), signal);
      for (let attempt = 0; !signal.aborted; attempt++) {
        try {
          await this.#o.renew(signal);
          break;
        } catch (err) {
          if (signal.aborted) return;
          this.#o.onError?.(err, attempt);
          const left = this.#o.current().notAfter - now();
          const cap = Math.max(500, Math.min(this.#o.retryCapMs ?? 10_000, left / 4));
          due = now() + backoffDelay(attempt, { initialMs: 500, maxMs: cap, random: this.#o.random });
          while (!signal.aborted && now() < due) await sleep(due - now(), signal);
        }
      }
    }
  }

  async close(): Promise<void> {
    this.#ac.abort();
    await this.#running;
  }
}

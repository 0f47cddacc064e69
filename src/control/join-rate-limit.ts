// Token buckets for the unauthenticated and CSR-signing node routes: one per source address and one shared by all.
export interface RateLimitOptions {
  /** Tokens added per second (per source and, separately, globally). */
  ratePerSecond?: number;
  burst?: number;
  globalRatePerSecond?: number;
  globalBurst?: number;
  now?: () => number;
  /** Sources remembered at most; full buckets are forgotten first (they carry no state). */
  maxSources?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export type RateDecision = { ok: true } | { ok: false; retryAfterMs: number; scope: 'source' | 'global' };

/** `allow(source)` takes one token from the source's bucket and one from the global bucket, or neither. */
export interface RateLimiter {
  allow(source: string): RateDecision;
}

export function createRateLimiter(o: RateLimitOptions = {}): RateLimiter {
  const rate = o.ratePerSecond ?? 10;
  const burst = o.burst ?? 20;
  const gRate = o.globalRatePerSecond ?? rate * 5;
  const gBurst = o.globalBurst ?? burst * 5;
  const now = o.now ?? Date.now;
  const maxSources = o.maxSources ?? 10_000;
  const sources = new Map<string, Bucket>();
  const global: Bucket = { tokens: gBurst, at: now() };

  const refill = (b: Bucket, r: number, cap: number, t: number): void => {
    b.tokens = Math.min(cap, b.tokens + ((t - b.at) / 1000) * r);
    b.at = t;
  };
  const wait = (b: Bucket, r: number): number => Math.ceil(((1 - b.tokens) / r) * 1000);

  const forgetFull = (t: number): void => {
    for (const [k, b] of sources) {
      refill(b, rate, burst, t);
      if (b.tokens >= burst) sources.delete(k);
    }
    // Still full of active sources: drop the oldest, so memory stays bounded under a spray of addresses.
    while (sources.size >= maxSources) sources.delete(sources.keys().next().value!);
  };

  return {
    allow(source) {
      const t = now();
      let b = sources.get(source);
      if (!b) {
        if (sources.size >= maxSources) forgetFull(t);
        b = { tokens: burst, at: t };
        sources.set(source, b);
      }
      refill(b, rate, burst, t);
      refill(global, gRate, gBurst, t);
      if (b.tokens < 1) return { ok: false, retryAfterMs: wait(b, rate), scope: 'source' };
      if (global.tokens < 1) return { ok: false, retryAfterMs: wait(global, gRate), scope: 'global' };
      b.tokens -= 1;
      global.tokens -= 1;
      return { ok: true };
    },
  };
}

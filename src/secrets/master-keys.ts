// The control plane's master keys: the current one (every new seal) and, during a rotation, the previous ones (opens
// only). It is also a KeyWrapper that speaks for the current key, for code that seals under "the" master key.
import { SecretsError, type KeyWrapper } from './key-wrapper.ts';

export class MasterKeys implements KeyWrapper {
  #current: KeyWrapper;
  #previous: KeyWrapper[];

  constructor(current: KeyWrapper, previous: readonly KeyWrapper[] = []) {
    this.#current = current;
    this.#previous = previous.filter((w) => w.keyId !== current.keyId);
  }

  get keyId(): string {
    return this.#current.keyId;
  }

  get current(): KeyWrapper {
    return this.#current;
  }

  /** Every key an envelope may be opened with: the current one first. Pass this to envelope.open(). */
  all(): readonly KeyWrapper[] {
    return [this.#current, ...this.#previous];
  }

  /** True while some previous key is still held (a rotation started and was not finished). */
  get rotating(): boolean {
    return this.#previous.length > 0;
  }

  /** Makes `next` the current key; the old current one stays for opening until retirePrevious(). */
  rotateTo(next: KeyWrapper): void {
    if (next.keyId === this.#current.keyId) return;
    this.#previous = [this.#current, ...this.#previous.filter((w) => w.keyId !== next.keyId && w.keyId !== this.#current.keyId)];
    this.#current = next;
  }

  /** Forgets every previous key (after everything was re-wrapped under the current one). */
  retirePrevious(): void {
    this.#previous = [];
  }

  wrap(dataKey: Uint8Array, signal?: AbortSignal): Promise<string> {
    return this.#current.wrap(dataKey, signal);
  }

  unwrap(wrapped: string, keyId: string, signal?: AbortSignal): Promise<Uint8Array> {
    const w = this.all().find((k) => k.keyId === keyId);
    if (w === undefined) return Promise.reject(new SecretsError('unknown_key', `data key wrapped under ${keyId}, which is not among the configured keys`));
    return w.unwrap(wrapped, keyId, signal);
  }
}

// The control plane's assertion signing keys (identity issue §2): ES256 keys it creates, seals under the master key,
// publishes (snapshots, /.well-known/lockgate/jwks.json) and rotates: a new key is published first and signs only
// after `publishDelayMs`, so every node knows it before the first assertion made with it arrives; the old key stays
// published until the last assertion it signed has expired (lifetime + skew), then it is dropped.
import { createHash, generateKeyPairSync } from 'node:crypto';
import { ASSERTION_LIFETIME_S, SKEW_S, type AssertionKeys, type PublicJwk } from '../proxy/assertion.ts';
import { open, seal } from '../secrets/envelope.ts';
import type { KeyWrapper } from '../secrets/key-wrapper.ts';
import type { ConfigStore } from '../store/config-store.ts';

export const ASSERTION_KEYS_KEY = '/identity/assertion-keys';
/** How long a new key is published before it signs: longer than a snapshot takes to reach every node. */
export const DEFAULT_PUBLISH_DELAY_MS = 30_000;
/** A key older than this is rotated by maintain() (the control plane calls it periodically). */
export const DEFAULT_ROTATE_AFTER_MS = 7 * 24 * 3_600_000;

interface StoredKey {
  kid: string;
  publicJwk: PublicJwk;
  /** The private JWK, sealed (envelope JSON) with the key id as context. */
  sealed: string;
  createdAt: number;
  /** Signs from then on (until a newer key does). */
  activeFrom: number;
  /** Dropped from the published keys then (set when a newer key becomes active). */
  retireAt?: number;
}

interface StoredState {
  v: 1;
  keys: StoredKey[];
}

export interface AssertionKeyStoreOptions {
  store: ConfigStore;
  wrapper: KeyWrapper;
  /** The wrappers sealed keys may be opened with (the current and previous master keys); default [wrapper]. */
  openWith?: () => readonly KeyWrapper[];
  /** The issuer of every assertion: the control plane's SPIFFE ID. */
  issuer: string;
  now?: () => number;
  publishDelayMs?: number;
  rotateAfterMs?: number;
  /** Told about key changes (created, activated, retired): e.g. an audit record. */
  log?: (event: string, fields: Record<string, unknown>) => void;
}

/** The kid: the first 16 characters of the key's RFC 7638 thumbprint (every request carries it; 96 bits name a key well enough). */
function thumbprint(x: string, y: string): string {
  return createHash('sha256').update(JSON.stringify({ crv: 'P-256', kty: 'EC', x, y })).digest('base64url').slice(0, 16);
}

export class AssertionKeyStore {
  readonly issuer: string;
  readonly #o: AssertionKeyStoreOptions;
  readonly #now: () => number;
  #state: StoredState = { v: 1, keys: [] };
  /** Opened private JWKs by kid (opened once). */
  readonly #private = new Map<string, string>();
  readonly #listeners = new Set<() => void>();
  #lastKey = '';

  private constructor(o: AssertionKeyStoreOptions) {
    this.#o = o;
    this.issuer = o.issuer;
    this.#now = o.now ?? Date.now;
  }

  /** Loads the keys (creating the first one, active at once, when there are none). */
  static async open(o: AssertionKeyStoreOptions): Promise<AssertionKeyStore> {
    const s = new AssertionKeyStore(o);
    const kv = await o.store.get(ASSERTION_KEYS_KEY);
    if (kv !== undefined) s.#state = JSON.parse(kv.value) as StoredState;
    for (const k of s.#state.keys) s.#private.set(k.kid, (await open(k.sealed, o.openWith?.() ?? [o.wrapper], `assertion-key:${k.kid}`)).toString('utf8'));
    if (s.#state.keys.length === 0) await s.#add(s.#now());
    s.#lastKey = s.#key();
    return s;
  }

  /** Called when what current() returns changes (a key published, starting to sign, or retired). */
  onChange(f: () => void): () => void {
    this.#listeners.add(f);
    return () => this.#listeners.delete(f);
  }

  /** The published keys (not retired), newest first. */
  published(at = this.#now()): PublicJwk[] {
    return this.#state.keys.filter((k) => k.retireAt === undefined || k.retireAt > at).sort((a, b) => b.createdAt - a.createdAt).map((k) => k.publicJwk);
  }

  /** The key that signs now: the newest active one. */
  #signer(at: number): StoredKey | undefined {
    let best: StoredKey | undefined;
    for (const k of this.#state.keys) if (k.activeFrom <= at && (k.retireAt === undefined || k.retireAt > at) && (best === undefined || k.activeFrom > best.activeFrom)) best = k;
    return best;
  }

  /** What nodes get in their snapshots: issuer, published keys, and the signing key. */
  current(at = this.#now()): AssertionKeys {
    const s = this.#signer(at);
    const keys = this.published(at);
    if (s === undefined) return { issuer: this.issuer, keys };
    const d = (JSON.parse(this.#private.get(s.kid)!) as { d: string }).d;
    return { issuer: this.issuer, keys, signing: { ...s.publicJwk, d } };
  }

  /** The JWKS document served at /.well-known/lockgate/jwks.json. */
  jwks(): { keys: PublicJwk[] } {
    return { keys: this.published() };
  }

  /** Changes with what current() returns (for snapshot change detection). */
  key(): string {
    return this.#key();
  }

  #key(at = this.#now()): string {
    return `${this.#signer(at)?.kid ?? ''}|${this.published(at).map((k) => k.kid).join(',')}`;
  }

  /**
   * Publishes a new key now; it signs after the publish delay. Returns its kid. The key it replaces is retired
   * once the new one signs and every assertion the old one made has expired.
   */
  async rotate(reason = 'requested'): Promise<string> {
    const kid = await this.#add(this.#now() + (this.#o.publishDelayMs ?? DEFAULT_PUBLISH_DELAY_MS));
    this.#o.log?.('assertion_key_published', { kid, reason });
    this.#notifyIfChanged();
    return kid;
  }

  /**
   * Time-driven steps: a key that started signing retires its predecessors (after their last assertion expires);
   * retired keys are dropped from the store; a signing key older than rotateAfter is rotated. Call it periodically.
   */
  async maintain(): Promise<void> {
    const now = this.#now();
    const signer = this.#signer(now);
    let changed = false;
    if (signer !== undefined) {
      for (const k of this.#state.keys) {
        if (k !== signer && k.activeFrom < signer.activeFrom && k.retireAt === undefined) {
          k.retireAt = signer.activeFrom + (ASSERTION_LIFETIME_S + SKEW_S) * 1000;
          changed = true;
        }
      }
    }
    const kept = this.#state.keys.filter((k) => k.retireAt === undefined || k.retireAt > now);
    if (kept.length !== this.#state.keys.length) {
      for (const k of this.#state.keys) if (!kept.includes(k)) this.#o.log?.('assertion_key_retired', { kid: k.kid });
      this.#state.keys = kept;
      changed = true;
    }
    if (changed) await this.#save();
    const newest = this.#state.keys.reduce<StoredKey | undefined>((a, k) => (a === undefined || k.createdAt > a.createdAt ? k : a), undefined);
    if (newest !== undefined && now - newest.createdAt >= (this.#o.rotateAfterMs ?? DEFAULT_ROTATE_AFTER_MS)) await this.rotate('scheduled');
    this.#notifyIfChanged();
  }

  #notifyIfChanged(): void {
    const k = this.#key();
    if (k === this.#lastKey) return;
    this.#lastKey = k;
    for (const f of this.#listeners) f();
  }

  /** Re-seals every private key under `wrapper` (a master key rotation); keys stay usable throughout. */
  async reseal(wrapper: KeyWrapper): Promise<number> {
    for (const k of this.#state.keys) k.sealed = await seal(this.#private.get(k.kid)!, wrapper, `assertion-key:${k.kid}`);
    await this.#save();
    return this.#state.keys.length;
  }

  async #add(activeFrom: number): Promise<string> {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pub = publicKey.export({ format: 'jwk' }) as { x: string; y: string };
    const priv = privateKey.export({ format: 'jwk' }) as { d: string };
    const kid = thumbprint(pub.x, pub.y);
    const publicJwk: PublicJwk = { kty: 'EC', crv: 'P-256', x: pub.x, y: pub.y, kid, alg: 'ES256', use: 'sig' };
    const privateText = JSON.stringify({ d: priv.d });
    const sealed = await seal(privateText, this.#o.wrapper, `assertion-key:${kid}`);
    this.#state.keys.push({ kid, publicJwk, sealed, createdAt: this.#now(), activeFrom });
    this.#private.set(kid, privateText);
    await this.#save();
    this.#o.log?.('assertion_key_created', { kid, activeFrom: new Date(activeFrom).toISOString() });
    return kid;
  }

  async #save(): Promise<void> {
    await this.#o.store.put(ASSERTION_KEYS_KEY, JSON.stringify(this.#state));
  }
}

// Master-key rotation without downtime: the new key becomes current (new seals), every sealed record is re-wrapped
// while the old key still opens what is not done yet, and only then is the old key forgotten.
import { parseMasterKey, LocalKeyWrapper } from '../secrets/key-wrapper.ts';
import type { MasterKeys } from '../secrets/master-keys.ts';
import type { SecretStore } from '../secrets/secret-store.ts';
import { ControlError } from './control-server.ts';

export interface MasterKeyRotationDeps {
  keys: MasterKeys;
  secrets: SecretStore;
  /**
   * Everything else sealed under the master key, re-sealed under the current one after the secrets: the CA's private
   * keys (StoredCa.reseal), the assertion signing keys, the audit log's signing key.
   */
  sealed: ReadonlyArray<{ what: string; reseal: (signal: AbortSignal) => Promise<unknown> }>;
  /**
   * Keeps the new key where a restart finds it, before anything is sealed under it (a crash mid-rotation must not
   * leave records only the lost key opens). Given the key as base64 text. Absent: the key came from the environment.
   */
  persistNext?: (keyText: string, keyId: string) => Promise<void>;
  /** After everything was re-wrapped: the new key becomes the one loaded at start, the old one is removed. */
  commit?: () => Promise<void>;
  log?: (event: string, fields: Record<string, unknown>) => void;
}

export interface RotationResult {
  previousKeyId: string;
  keyId: string;
  secretsRewrapped: number;
  /** The `what` of every other sealed state re-sealed (the CA's keys, …). */
  resealed: string[];
  /** `data-dir`: the control plane now loads the new key at start; `environment`: the operator must change the variable. */
  keySource: 'data-dir' | 'environment';
  next?: string;
}

export function masterKeyRotation(deps: MasterKeyRotationDeps): (keyText: string, by: string | undefined, requestId: string, signal: AbortSignal) => Promise<RotationResult> {
  let running = false;
  return async (keyText, by, requestId, signal) => {
    if (running) throw new ControlError('conflict', 'a master key rotation is already running');
    running = true;
    try {
      let bytes: Buffer;
      try {
        bytes = parseMasterKey(keyText, 'the new master key');
      } catch (err) {
        throw new ControlError('bad_request', (err as Error).message);
      }
      const text = bytes.toString('base64');
      const next = new LocalKeyWrapper(bytes); // zeroes `bytes`
      const previousKeyId = deps.keys.current.keyId;
      // The same key again finishes an interrupted rotation (records under the old key are re-wrapped, none twice).
      if (next.keyId === previousKeyId && !deps.keys.rotating) {
        const usage = await deps.secrets.keyUsage(signal);
        if (Object.keys(usage).every((k) => k === next.keyId)) throw new ControlError('conflict', `the control plane already uses master key ${next.keyId}`);
      }
      deps.log?.('master_key_rotation_started', { from: previousKeyId, to: next.keyId, by, requestId });
      await deps.persistNext?.(text, next.keyId);
      deps.keys.rotateTo(next);
      const { rewrapped, remaining } = await deps.secrets.rewrap({ batchSize: 100, signal });
      if (remaining > 0) throw new ControlError('conflict', `${remaining} secret version(s) are still sealed under another key (written concurrently); run the rotation again with the same key`);
      for (const s of deps.sealed) await s.reseal(signal);
      await deps.commit?.();
      deps.keys.retirePrevious();
      deps.log?.('master_key_rotation_finished', { from: previousKeyId, to: next.keyId, secretsRewrapped: rewrapped, by, requestId });
      return {
        previousKeyId, keyId: next.keyId, secretsRewrapped: rewrapped, resealed: deps.sealed.map((s) => s.what),
        keySource: deps.persistNext ? 'data-dir' : 'environment',
        ...(deps.persistNext ? {} : { next: 'set LOCKGATE_MASTER_KEY or LOCKGATE_MASTER_KEY_FILE to the new key before the control plane restarts: the old key no longer opens anything' }),
      };
    } finally {
      running = false;
    }
  };
}

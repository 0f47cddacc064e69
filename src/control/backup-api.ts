// The live backup route: `GET /v1/backup` (admin) answers the encrypted archive of the whole store at one revision.
import { open, seal } from '../secrets/envelope.ts';
import type { KeyWrapper } from '../secrets/key-wrapper.ts';
import { backupStore, type ArchiveCipher } from '../store/backup-archive.ts';
import type { ConfigStore } from '../store/config-store.ts';
import type { ControlRoute } from './control-routes.ts';

/** The archive's cipher over the envelope encryption of src/secrets, under one master key. */
export function envelopeCipher(wrapper: KeyWrapper): ArchiveCipher {
  return {
    // Read at each use: the master key may be rotated while the control plane runs (secrets/master-keys.ts).
    get keyId() {
      return wrapper.keyId;
    },
    seal: (plaintext, aad, signal) => seal(plaintext, wrapper, aad, signal),
    open: (sealed, aad, signal) => open(sealed, [wrapper], aad, signal),
  };
}

export interface BackupApiDeps {
  store: ConfigStore;
  /** The master key the control plane seals with: the archive is sealed under it too. */
  wrapper: KeyWrapper;
  trustDomain: string | (() => string);
  now?: () => number;
  /** One line per backup taken (who, which revision): backups carry every secret hash, so they are worth auditing. */
  log?: (event: string, fields: Record<string, unknown>) => void;
}

export function backupApiRoutes(deps: BackupApiDeps): ControlRoute[] {
  const cipher = envelopeCipher(deps.wrapper);
  const log = deps.log ?? ((event, fields) => process.stderr.write(`${JSON.stringify({ event, ...fields })}\n`));
  return [
    {
      method: 'GET', path: '/v1/backup', auth: 'admin', cluster: 'manage',
      handle: async (_req, res, cx) => {
        const trustDomain = typeof deps.trustDomain === 'function' ? deps.trustDomain() : deps.trustDomain;
        const { text, header } = await backupStore(deps.store, { trustDomain, cipher, now: deps.now, signal: cx.signal });
        log('backup_created', { revision: header.revision, keys: header.keys, keyId: header.keyId, by: cx.caller.kind === 'admin' ? cx.caller.subject : undefined, requestId: cx.requestId });
        const name = `lockgate-backup-${header.createdAt.replace(/[:.]/g, '-')}.json`;
        // sendJson would serialize again: the archive text is sent as made (its payload is bound to the header).
        res.setHeader('content-type', 'application/json; charset=utf-8');
        res.setHeader('content-length', String(Buffer.byteLength(text)));
        res.setHeader('cache-control', 'no-store');
        res.setHeader('content-disposition', `attachment; filename="${name}"`);
        res.statusCode = 200;
        res.end(text);
      },
    },
  ];
}

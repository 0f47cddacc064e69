// Routes of the assertion keys: the public JWKS (apps verify x-lockgate-assertion with it) and rotation (admin).
import type { AuditSink } from '../store/audit-record.ts';
import type { AssertionKeyStore } from './assertion-keys.ts';
import { sendJson } from './control-server.ts';
import type { ControlRoute } from './control-routes.ts';

export const JWKS_PATH = '/.well-known/lockgate/jwks.json';

export interface AssertionKeyRoutesDeps {
  keys: AssertionKeyStore;
  log?: (event: string, fields: Record<string, unknown>) => void;
  audit?: AuditSink;
}

export function assertionKeyRoutes(deps: AssertionKeyRoutesDeps): ControlRoute[] {
  return [
    {
      // Public keys only, for anyone (apps behind a sidecar verify the assertion they are handed): no auth.
      method: 'GET', path: JWKS_PATH, auth: 'none',
      handle: async (_req, res) => sendJson(res, 200, deps.keys.jwks(), { 'cache-control': 'max-age=60' }),
    },
    {
      method: 'GET', path: '/v1/identity/keys', auth: 'admin', cluster: 'read',
      handle: async (_req, res) => {
        const c = deps.keys.current();
        sendJson(res, 200, { issuer: c.issuer, signing: c.signing?.kid ?? null, keys: c.keys.map((k) => k.kid) });
      },
    },
    {
      // Publishes a new key now; it signs after the publish delay; the old one is retired after its last assertion expires.
      method: 'POST', path: '/v1/identity/keys/rotate', auth: 'admin', cluster: 'manage',
      handle: async (_req, res, cx) => {
        const actor = cx.caller.kind === 'admin' ? cx.caller.subject : 'unknown';
        const before = deps.keys.current();
        const kid = await deps.keys.rotate(`requested by ${actor}`);
        await deps.audit?.append({
          actor, action: 'identity.rotate-assertion-key', target: 'identity/assertion-keys', reason: 'requested', requestId: cx.requestId,
          details: { published: kid, signing: before.signing?.kid ?? null },
        });
        deps.log?.('assertion_key_rotation_requested', { kid, by: actor, requestId: cx.requestId });
        sendJson(res, 202, { published: kid, signing: before.signing?.kid ?? null, note: 'the new key signs once every node has it (after the publish delay)' });
      },
    },
  ];
}

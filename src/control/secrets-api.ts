// The secrets admin routes: set (a new version), list and show (metadata only), reveal (a permission, audited every
// time), enable/disable a version, delete, and master-key rotation. No response, log line or error carries a value
// except the body of an allowed reveal.
import { SecretsError } from '../secrets/key-wrapper.ts';
import type { SecretStore } from '../secrets/secret-store.ts';
import { ControlError, readBody, sendJson } from './control-server.ts';
import type { Caller, ControlRequest, ControlRoute, RouteContext } from './control-routes.ts';
import type { RotationResult } from './master-key-rotation.ts';

/** What is recorded (the audit log's input shape): who, what, which secret and version, which request. Never a value. */
export interface SecretAudit {
  actor: string;
  action: 'secret.reveal' | 'secret.set' | 'secret.enable' | 'secret.disable' | 'secret.delete' | 'secret.rotate-master';
  /** `secret/<name>`, or `master-key` */
  target: string;
  requestId: string;
  details: Record<string, string | number>;
}

export interface SecretsApiDeps {
  secrets: SecretStore;
  /** Whether a caller may read values in clear; default: revealAllowed. Roles plug in here. */
  mayReveal?: (caller: Caller) => boolean;
  /** Append-only audit trail; when set, a reveal that cannot be recorded is refused. */
  audit?: { append(input: SecretAudit): Promise<unknown> };
  rotateMaster?: (keyText: string, by: string | undefined, requestId: string, signal: AbortSignal) => Promise<RotationResult>;
  log?: (event: string, fields: Record<string, unknown>) => void;
}

/**
 * The reveal permission: the admin role over the whole installation (the bootstrap token, the operator certificate,
 * or a person or automation token given admin over "*").
 */
export function revealAllowed(caller: Caller): boolean {
  return caller.kind === 'admin' && caller.access.allows('reveal', 'cluster');
}

function actorOf(caller: Caller): string {
  return caller.kind === 'admin' ? caller.subject : caller.kind === 'node' ? caller.spiffeId : 'anonymous';
}

/** SecretsError → the HTTP answer; messages never hold a value (the store's messages name secrets and versions only). */
function asControlError(err: unknown): unknown {
  if (!(err instanceof SecretsError)) return err;
  switch (err.code) {
    case 'secret_not_found': return new ControlError('not_found', err.message, { cause: err });
    case 'secret_invalid': case 'key_invalid': return new ControlError('bad_request', err.message, { cause: err });
    case 'secret_conflict': return new ControlError('conflict', err.message, { cause: err });
    default: return new ControlError('unavailable', `the secret cannot be opened: ${err.message}`, { details: { secretsCode: err.code }, cause: err });
  }
}

function flag(query: URLSearchParams, name: string): boolean {
  const v = query.get(name);
  if (v === null || v === 'false' || v === '0') return false;
  if (v === '' || v === 'true' || v === '1') return true;
  throw new ControlError('bad_request', `?${name} must be true or false`);
}

function versionOf(text: string | null, what: string): number | undefined {
  if (text === null) return undefined;
  if (!/^[1-9]\d{0,9}$/.test(text)) throw new ControlError('bad_request', `${what} must be a whole number from 1`);
  return Number(text);
}

async function readJson(req: ControlRequest, cx: RouteContext): Promise<Record<string, unknown>> {
  const type = req.headers['content-type'];
  if (type !== undefined && !/^application\/json\s*(;|$)/i.test(type)) throw new ControlError('unsupported_media_type', 'send JSON (application/json)');
  const body = await readBody(req, cx.signal);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    // Not the parser's message: it may quote the body, which holds a value.
    throw new ControlError('bad_request', 'the body is not a valid UTF-8 JSON object');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new ControlError('bad_request', 'the body must be a JSON object');
  return parsed as Record<string, unknown>;
}

export function secretsApiRoutes(deps: SecretsApiDeps): ControlRoute[] {
  const s = deps.secrets;
  const mayReveal = deps.mayReveal ?? revealAllowed;
  const log = deps.log ?? ((event, fields) => process.stderr.write(`${JSON.stringify({ event, ...fields })}\n`));
  /** Changes are recorded best effort (the change is made already); a reveal is refused when it cannot be recorded. */
  const record = async (input: SecretAudit): Promise<void> => {
    try {
      await deps.audit?.append(input);
    } catch (err) {
      log('audit_append_failed', { action: input.action, target: input.target, requestId: input.requestId, error: (err as Error).message });
    }
  };
  const guarded = (handle: ControlRoute['handle']): ControlRoute['handle'] => async (req, res, cx) => {
    try {
      await handle(req, res, cx);
    } catch (err) {
      throw asControlError(err);
    }
  };

  return [
    {
      method: 'GET', path: '/v1/secrets', auth: 'admin', cluster: 'read',
      handle: guarded(async (_req, res, cx) => sendJson(res, 200, { items: await s.list(cx.signal) })),
    },
    {
      method: 'PUT', path: '/v1/secrets/{name}', auth: 'admin', cluster: 'write',
      handle: guarded(async (req, res, cx) => {
        const body = await readJson(req, cx);
        if (typeof body.value !== 'string') throw new ControlError('bad_request', 'the body must be {"value": "<text>"}');
        const info = await s.set(cx.params.name, body.value, { by: actorOf(cx.caller), signal: cx.signal });
        log('secret_set', { secret: info.name, version: info.version, by: actorOf(cx.caller), requestId: cx.requestId });
        await record({ actor: actorOf(cx.caller), action: 'secret.set', target: `secret/${info.name}`, requestId: cx.requestId, details: { version: info.version } });
        sendJson(res, 201, info);
      }),
    },
    {
      method: 'GET', path: '/v1/secrets/{name}', auth: 'admin', cluster: 'read',
      handle: guarded(async (_req, res, cx) => {
        const name = cx.params.name;
        const version = versionOf(cx.query.get('version'), '?version');
        if (!flag(cx.query, 'reveal')) {
          const versions = await s.versions(name, cx.signal);
          if (version !== undefined) {
            const one = versions.find((v) => v.version === version);
            if (!one) throw new ControlError('not_found', `secret ${name} has no version ${version}`);
            sendJson(res, 200, one);
            return;
          }
          sendJson(res, 200, { name, latest: versions.filter((v) => v.enabled).at(-1)?.version ?? null, versions });
          return;
        }
        if (!mayReveal(cx.caller)) throw new ControlError('forbidden', 'revealing a secret needs the reveal permission');
        const { info, value } = await s.get(name, { version, signal: cx.signal });
        const entry: SecretAudit = {
          actor: actorOf(cx.caller), action: 'secret.reveal', target: `secret/${name}`, requestId: cx.requestId, details: { version: info.version },
        };
        if (deps.audit) {
          try {
            await deps.audit.append(entry);
          } catch (err) {
            throw new ControlError('unavailable', 'the reveal could not be recorded in the audit log, so it was refused', { cause: err });
          }
        }
        log('secret_revealed', { secret: name, version: info.version, by: entry.actor, requestId: cx.requestId });
        sendJson(res, 200, { ...info, value }, { 'cache-control': 'no-store' });
      }),
    },
    {
      method: 'PATCH', path: '/v1/secrets/{name}/{version}', auth: 'admin', cluster: 'write',
      handle: guarded(async (req, res, cx) => {
        const version = versionOf(cx.params.version, 'the version')!;
        const body = await readJson(req, cx);
        if (typeof body.enabled !== 'boolean') throw new ControlError('bad_request', 'the body must be {"enabled": true|false}');
        const info = await s.setEnabled(cx.params.name, version, body.enabled, cx.signal);
        log(body.enabled ? 'secret_version_enabled' : 'secret_version_disabled', { secret: info.name, version, by: actorOf(cx.caller), requestId: cx.requestId });
        await record({ actor: actorOf(cx.caller), action: body.enabled ? 'secret.enable' : 'secret.disable', target: `secret/${info.name}`, requestId: cx.requestId, details: { version } });
        sendJson(res, 200, info);
      }),
    },
    {
      method: 'DELETE', path: '/v1/secrets/{name}', auth: 'admin', cluster: 'write',
      handle: guarded(async (_req, res, cx) => {
        const versions = await s.delete(cx.params.name, cx.signal);
        log('secret_deleted', { secret: cx.params.name, versions, by: actorOf(cx.caller), requestId: cx.requestId });
        await record({ actor: actorOf(cx.caller), action: 'secret.delete', target: `secret/${cx.params.name}`, requestId: cx.requestId, details: { versions } });
        sendJson(res, 200, { name: cx.params.name, deletedVersions: versions });
      }),
    },
    {
      method: 'POST', path: '/v1/secrets:rotate-master', auth: 'admin', cluster: 'manage',
      handle: guarded(async (req, res, cx) => {
        if (!deps.rotateMaster) throw new ControlError('not_found', 'master-key rotation is not available on this control plane');
        const body = await readJson(req, cx);
        if (typeof body.key !== 'string') throw new ControlError('bad_request', 'the body must be {"key": "<32 bytes as base64 or hex>"}');
        const result = await deps.rotateMaster(body.key, actorOf(cx.caller), cx.requestId, cx.signal);
        await record({ actor: actorOf(cx.caller), action: 'secret.rotate-master', target: 'master-key', requestId: cx.requestId, details: { from: result.previousKeyId, to: result.keyId, secretsRewrapped: result.secretsRewrapped } });
        sendJson(res, 200, result);
      }),
    },
  ];
}

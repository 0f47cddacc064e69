// The admin API: REST over the config resources (validated whole, compare-and-swap on revisions), apply, watch, status.
import type { ServerResponse } from 'node:http';
import type { AuditInput, AuditSink } from '../store/audit-record.ts';
import { ConfigStoreError, type BatchOp, type ConfigStore, type KeyValue, type WriteResult } from '../store/config-store.ts';
import { documentTarget, type AdminAction, type AdminRole } from './admin-access.ts';
import { auditRecorder, callerActor, reasonOf, redactDocument } from './audit-api.ts';
import { ControlError, readBody, sendJson } from './control-server.ts';
import type { Caller, ControlRequest, ControlResponse, ControlRoute, RouteContext } from './control-routes.ts';
import { checkConfig, configKey, CONFIG_PREFIX, documentValue, parseConfigKey, resolveKind, sameDocument, splitDocuments, type ConfigDocument } from './config-documents.ts';
import { openApiDocument } from './openapi-document.ts';

export interface AdminApiDeps {
  store: ConfigStore;
  /** The Lockgate version, shown by /v1/status and in the OpenAPI document. */
  version: string;
  now?: () => number;
  /** More fields for /v1/status (trust domain, URL, …). */
  status?: () => Record<string, unknown>;
  /** Where every committed change is recorded (before and after, secrets redacted); none in most unit tests. */
  audit?: AuditSink;
  log?: (event: string, fields: Record<string, unknown>) => void;
}

/** The name problems in a request body carry: line and column point into what the client sent. */
export const REQUEST_FILE = 'request';

export type ChangeAction = 'create' | 'update' | 'delete' | 'unchanged';

export interface ConfigChange {
  action: ChangeAction;
  kind: string;
  namespace: string;
  name: string;
  /** Dry runs only: the stored text (update, delete) and the text that would be stored (create, update). */
  before?: string;
  after?: string;
}

function describe(kv: KeyValue): Record<string, unknown> {
  const id = parseConfigKey(kv.key)!;
  return { ...id, revision: kv.modRevision, createRevision: kv.createRevision, version: kv.version, document: kv.value, resource: documentValue(kv.value) ?? null };
}

const etag = (rev: number): string => `"${rev}"`;

/** If-Match / If-None-Match as a required modRevision (0 = must not exist, -1 = must exist), or undefined. */
function precondition(req: ControlRequest): number | undefined {
  const none = req.headers['if-none-match'];
  if (typeof none === 'string') {
    if (none.trim() !== '*') throw new ControlError('bad_request', 'If-None-Match supports only "*" (create only)');
    return 0;
  }
  const match = req.headers['if-match'];
  if (typeof match !== 'string') return undefined;
  if (match.trim() === '*') return -1;
  const m = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(match);
  if (!m) throw new ControlError('bad_request', 'If-Match must be an ETag from a GET, e.g. "42"');
  return Number(m[1]);
}

function checkPrecondition(expected: number | undefined, current: KeyValue | undefined): void {
  if (expected === undefined) return;
  const actual = current?.modRevision ?? 0;
  if (expected === -1 ? actual !== 0 : expected === actual) return;
  const message = expected === 0 ? 'the resource already exists' : current ? `the resource is at revision ${actual}, not ${expected}` : 'the resource does not exist';
  throw new ControlError('precondition_failed', message, { details: { expected, actual }, headers: current ? { etag: etag(actual) } : {} });
}

const BODY_TYPES = /^(application\/(json|yaml|x-yaml)|text\/(yaml|x-yaml|plain))\s*(;|$)/i;

async function readText(req: ControlRequest, cx: RouteContext): Promise<string> {
  const type = req.headers['content-type'];
  if (type !== undefined && !BODY_TYPES.test(type)) throw new ControlError('unsupported_media_type', 'send YAML (application/yaml) or JSON (application/json)');
  const body = await readBody(req, cx.signal);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new ControlError('bad_request', 'the body is not valid UTF-8');
  }
}

function flagOf(query: URLSearchParams, name: string): boolean {
  const v = query.get(name);
  if (v === null || v === 'false' || v === '0') return false;
  if (v === '' || v === 'true' || v === '1') return true;
  throw new ControlError('bad_request', `?${name} must be true or false`);
}

function kindParam(typed: string): string {
  const kind = resolveKind(typed);
  if (!kind) throw new ControlError('not_found', `unknown kind "${typed}"`);
  return kind;
}

function invalid(problems: readonly unknown[]): ControlError {
  return new ControlError('invalid_config', `the resulting config has ${problems.length} problem${problems.length === 1 ? '' : 's'}`, { details: { problems } });
}

async function storeCall<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof ConfigStoreError && err.code === 'closed') throw new ControlError('unavailable', 'the config store is closed', { cause: err });
    if (err instanceof ConfigStoreError && (err.code === 'compacted' || err.code === 'future_revision' || err.code === 'invalid')) throw new ControlError('bad_request', err.message, { cause: err });
    throw err;
  }
}

function conflictError(result: WriteResult, ifMatch: boolean): ControlError {
  const conflicts = result.ok ? [] : result.conflicts;
  if (ifMatch) return new ControlError('precondition_failed', 'the resource changed since the given revision', { details: { conflicts } });
  return new ControlError('conflict', 'the config changed while this request was being applied; retry', { details: { conflicts } });
}

const asList = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/**
 * Why the caller may not `action` the document at `key` (its text, when known, says what it concerns), or undefined
 * when it may. A RoleBinding is also a grant of its role: writing one needs the admin role over all it grants.
 */
export function documentDenial(caller: Caller, action: AdminAction, key: string, text: string | undefined): string | undefined {
  if (caller.kind !== 'admin') return 'this route is for administrators';
  if (caller.access.full) return undefined;
  const id = parseConfigKey(key)!;
  const raw = text === undefined ? undefined : documentValue(text);
  const target = documentTarget(id.kind, id.namespace, id.name, raw);
  if (!caller.access.allows(action, target)) return `${caller.access.denial(caller.subject, action, target)} (${id.kind} ${id.namespace}/${id.name})`;
  if (action === 'write' && id.kind === 'RoleBinding') {
    const spec = ((raw ?? {}) as { spec?: Record<string, unknown> }).spec ?? {};
    const role = typeof spec.role === 'string' ? (spec.role as AdminRole) : 'admin';
    const apis = asList(spec.apis);
    const services = asList(spec.services);
    const grant = { role, namespaces: asList(spec.namespaces), ...(apis.length ? { apis } : {}), ...(services.length ? { services } : {}), source: key };
    if (!caller.access.mayGrant([grant])) return `${caller.subject} may not write RoleBinding ${id.namespace}/${id.name}: it grants ${role} in ${grant.namespaces.join(',') || '(nothing)'}, and granting a role needs the admin role over all of it`;
  }
  return undefined;
}

function requireDocument(caller: Caller, action: AdminAction, key: string, text: string | undefined): void {
  const denial = documentDenial(caller, action, key, text);
  if (denial !== undefined) throw new ControlError('forbidden', denial);
}

export function adminApiRoutes(deps: AdminApiDeps): ControlRoute[] {
  const { store } = deps;
  const now = deps.now ?? Date.now;
  const startedAt = now();
  const record = auditRecorder(deps.audit, deps.log);
  /** The audit input for one committed change of one document, made inside `exclusive` so records keep commit order. */
  const change = (req: ControlRequest, cx: RouteContext, action: 'create' | 'update' | 'delete', key: string, before: string | undefined, after: string | undefined, revision?: number): AuditInput => {
    const id = parseConfigKey(key)!;
    return {
      actor: callerActor(cx.caller), action: `config.${action}`, target: `${id.kind}/${id.namespace}/${id.name}`, reason: reasonOf(req),
      requestId: cx.requestId, before: redactDocument(before), after: redactDocument(after), ...(revision !== undefined ? { details: { revision } } : {}),
    };
  };
  // Read, validate and write as one step: writes through this API are serialized, so a validation always sees the
  // config it is about to change (the per-key compares catch writers in other processes).
  let queue: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => {});
    return run;
  };
  // The stored documents as last read: a document whose revision did not change keeps its string, so validating the
  // config again finds each unchanged one in the parse cache without hashing its text again.
  let lastStored = new Map<string, KeyValue>();
  const storedConfig = async (signal: AbortSignal): Promise<Map<string, KeyValue>> => {
    const { kvs } = await storeCall(() => store.range(CONFIG_PREFIX, { signal }));
    const stored = new Map(kvs.map((kv) => {
      const before = lastStored.get(kv.key);
      return [kv.key, before !== undefined && before.modRevision === kv.modRevision && before.value === kv.value ? before : kv];
    }));
    lastStored = stored;
    return stored;
  };
  const texts = (stored: Map<string, KeyValue>, without: (key: string) => boolean): Map<string, string> =>
    new Map([...stored].filter(([k]) => !without(k)).map(([k, kv]) => [k, kv.value]));

  const list = async (_req: ControlRequest, res: ControlResponse, cx: RouteContext): Promise<void> => {
    const kind = cx.query.get('kind') ? kindParam(cx.query.get('kind')!) : undefined;
    const namespace = cx.query.get('namespace') ?? undefined;
    const prefix = kind ? `${CONFIG_PREFIX}${kind}/` : CONFIG_PREFIX;
    // Asking for a namespace the caller has no role in is refused outright (an empty list would look like "nothing there").
    if (namespace !== undefined && cx.caller.kind === 'admin' && !cx.caller.access.reaches('read', namespace)) {
      throw new ControlError('forbidden', cx.caller.access.denial(cx.caller.subject, 'read', { namespace }));
    }
    if (flagOf(cx.query, 'watch')) return watch(res, cx, prefix, namespace);
    const { kvs, revision } = await storeCall(() => store.range(prefix, { signal: cx.signal }));
    const items = kvs
      .filter((kv) => (namespace === undefined || parseConfigKey(kv.key)?.namespace === namespace) && documentDenial(cx.caller, 'read', kv.key, kv.value) === undefined)
      .map(describe);
    sendJson(res, 200, { revision, items });
  };

  const watch = async (res: ControlResponse, cx: RouteContext, prefix: string, namespace: string | undefined): Promise<void> => {
    const fromText = cx.query.get('fromRevision') ?? '0';
    if (!/^\d{1,15}$/.test(fromText)) throw new ControlError('bad_request', '?fromRevision must be a non-negative integer');
    // A watch lives no longer than the credential that opened it (a person's token, an automation token): the client
    // reconnects with a fresh one, and is then checked again (a role removed meanwhile ends its view).
    const expiresAt = cx.caller.kind === 'admin' ? cx.caller.expiresAt : undefined;
    const ac = new AbortController();
    const signal = AbortSignal.any([cx.signal, ac.signal]);
    const timer = expiresAt === undefined ? undefined : setTimeout(() => ac.abort(), Math.max(0, Math.min(expiresAt - now(), 2 ** 31 - 1)));
    signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
    const events = store.watch(prefix, Number(fromText), signal);
    // A deletion carries no document: it is shown to a watcher that was shown the document (or may read the namespace).
    const shown = new Set<string>();
    const out = res as ServerResponse;
    out.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
    out.flushHeaders?.();
    for await (const e of events) {
      let line: Record<string, unknown>;
      if (e.type === 'COMPACTED') line = { type: 'COMPACTED', compactRevision: e.compactRevision };
      else {
        const id = parseConfigKey(e.key);
        if (!id || (namespace !== undefined && id.namespace !== namespace)) continue;
        const readable = e.value !== null ? documentDenial(cx.caller, 'read', e.key, e.value) === undefined : shown.has(e.key) || documentDenial(cx.caller, 'read', e.key, undefined) === undefined;
        if (readable && e.value !== null) {
          shown.add(e.key);
          line = { type: e.type, ...id, revision: e.modRevision, document: e.value };
        } else if (shown.delete(e.key) || (readable && e.value === null)) {
          // Deleted, or no longer readable (its references changed): to this watcher it is gone.
          line = { type: 'DELETE', ...id, revision: e.modRevision };
        } else continue;
      }
      if (!out.write(JSON.stringify(line) + '\n')) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            out.off('drain', done);
            cx.signal.removeEventListener('abort', done);
            resolve();
          };
          out.on('drain', done);
          cx.signal.addEventListener('abort', done, { once: true });
        });
      }
      if (e.type === 'COMPACTED' || signal.aborted) break;
    }
    clearTimeout(timer);
    if (!out.writableEnded) out.end();
  };

  const getOne = async (req: ControlRequest, res: ControlResponse, cx: RouteContext): Promise<void> => {
    const key = configKey(kindParam(cx.params.kind), cx.params.namespace, cx.params.name);
    const kv = await storeCall(() => store.get(key, { signal: cx.signal }));
    requireDocument(cx.caller, 'read', key, kv?.value);
    if (!kv) throw new ControlError('not_found', `${parseConfigKey(key)!.kind} "${cx.params.namespace}/${cx.params.name}" not found`);
    if (/\byaml\b/i.test(req.headers.accept ?? '')) {
      (res as ServerResponse).writeHead(200, { 'content-type': 'application/yaml; charset=utf-8', etag: etag(kv.modRevision) });
      res.end(kv.value);
      return;
    }
    sendJson(res, 200, describe(kv), { etag: etag(kv.modRevision) });
  };

  const putOne = async (req: ControlRequest, res: ControlResponse, cx: RouteContext): Promise<void> => {
    const kind = kindParam(cx.params.kind);
    const key = configKey(kind, cx.params.namespace, cx.params.name);
    const expected = precondition(req);
    const text = await readText(req, cx);
    const docs = splitDocuments(text);
    if (docs.length > 1) throw new ControlError('bad_request', `a PUT body holds one document, this one holds ${docs.length}; use POST /v1/config:apply for several`);
    if (docs.length === 1 && docs[0].key !== key) {
      throw new ControlError('bad_request', `the document is ${docs[0].kind} "${docs[0].namespace}/${docs[0].name}" but the URL names ${kind} "${cx.params.namespace}/${cx.params.name}"`);
    }
    requireDocument(cx.caller, 'write', key, docs[0]?.text);
    await exclusive(async () => {
      const stored = await storedConfig(cx.signal);
      const current = stored.get(key);
      if (current) requireDocument(cx.caller, 'write', key, current.value);
      checkPrecondition(expected, current);
      const problems = checkConfig(texts(stored, (k) => k === key), { text, file: REQUEST_FILE });
      if (problems.length > 0) throw invalid(problems);
      if (docs.length === 0) throw new ControlError('bad_request', 'the body holds no resource document');
      if (current && sameDocument(current.value, docs[0].text)) {
        sendJson(res, 200, { ...describe(current), created: false, changed: false }, { etag: etag(current.modRevision) });
        return;
      }
      const result = await storeCall(() => store.put(key, docs[0].text, { ifModRevision: current?.modRevision ?? 0, signal: cx.signal }));
      if (!result.ok) throw conflictError(result, expected !== undefined);
      await record(change(req, cx, current ? 'update' : 'create', key, current?.value, docs[0].text, result.revision));
      const kv = (await storeCall(() => store.get(key, { signal: cx.signal }))) ?? { key, value: docs[0].text, createRevision: result.revision, modRevision: result.revision, version: 1 };
      sendJson(res, current ? 200 : 201, { ...describe(kv), created: !current, changed: true }, { etag: etag(result.revision) });
    });
  };

  const deleteOne = async (req: ControlRequest, res: ControlResponse, cx: RouteContext): Promise<void> => {
    const kind = kindParam(cx.params.kind);
    const key = configKey(kind, cx.params.namespace, cx.params.name);
    const expected = precondition(req);
    await exclusive(async () => {
      const stored = await storedConfig(cx.signal);
      const current = stored.get(key);
      requireDocument(cx.caller, 'write', key, current?.value);
      checkPrecondition(expected, current);
      if (!current) throw new ControlError('not_found', `${kind} "${cx.params.namespace}/${cx.params.name}" not found`);
      const problems = checkConfig(texts(stored, (k) => k === key));
      if (problems.length > 0) throw invalid(problems);
      const result = await storeCall(() => store.delete(key, { ifModRevision: current.modRevision, signal: cx.signal }));
      if (!result.ok) throw conflictError(result, expected !== undefined);
      await record(change(req, cx, 'delete', key, current.value, undefined, result.revision));
      sendJson(res, 200, { kind, namespace: cx.params.namespace, name: cx.params.name, deleted: true, revision: result.revision });
    });
  };

  const apply = async (req: ControlRequest, res: ControlResponse, cx: RouteContext): Promise<void> => {
    const prune = flagOf(cx.query, 'prune');
    const dryRun = flagOf(cx.query, 'dryRun');
    const text = await readText(req, cx);
    const docs = splitDocuments(text);
    const inBody = new Set(docs.map((d) => d.key));
    for (const d of docs) requireDocument(cx.caller, 'write', d.key, d.text);
    await exclusive(async () => {
      const stored = await storedConfig(cx.signal);
      for (const d of docs) {
        const current = stored.get(d.key);
        if (current) requireDocument(cx.caller, 'write', d.key, current.value);
      }
      // A caller with a narrower scope prunes only what it may write: other teams' documents are not its to delete.
      const prunable = (key: string): boolean => prune && !inBody.has(key) && documentDenial(cx.caller, 'write', key, stored.get(key)?.value) === undefined;
      const problems = checkConfig(texts(stored, (k) => inBody.has(k) || prunable(k)), { text, file: REQUEST_FILE });
      if (problems.length > 0) throw invalid(problems);
      if (prune && docs.length === 0) throw new ControlError('bad_request', 'refusing to prune with an empty body: that would delete every resource');
      const changes: ConfigChange[] = [];
      const ops: BatchOp[] = [];
      const audited: AuditInput[] = [];
      const byKey = new Map<string, ConfigDocument>(docs.map((d) => [d.key, d]));
      for (const d of byKey.values()) {
        const current = stored.get(d.key);
        const id = { kind: d.kind, namespace: d.namespace, name: d.name };
        if (current && sameDocument(current.value, d.text)) {
          changes.push({ action: 'unchanged', ...id });
          continue;
        }
        changes.push({ action: current ? 'update' : 'create', ...id, ...(dryRun ? { ...(current ? { before: current.value } : {}), after: d.text } : {}) });
        ops.push({ key: d.key, value: d.text, ifModRevision: current?.modRevision ?? 0 });
        if (!dryRun) audited.push(change(req, cx, current ? 'update' : 'create', d.key, current?.value, d.text));
      }
      if (prune) {
        for (const [key, kv] of stored) {
          if (!prunable(key)) continue;
          changes.push({ action: 'delete', ...parseConfigKey(key)!, ...(dryRun ? { before: kv.value } : {}) });
          ops.push({ key, delete: true, ifModRevision: kv.modRevision });
          if (!dryRun) audited.push(change(req, cx, 'delete', key, kv.value, undefined));
        }
      }
      let revision = await storeCall(() => store.revision({ signal: cx.signal }));
      if (!dryRun && ops.length > 0) {
        const result = await storeCall(() => store.putMany(ops, { signal: cx.signal }));
        if (!result.ok) throw conflictError(result, false);
        revision = result.revision;
        for (const input of audited) await record({ ...input, details: { revision } });
      }
      sendJson(res, 200, { dryRun, revision, changes });
    });
  };

  const status = async (_req: ControlRequest, res: ControlResponse, cx: RouteContext): Promise<void> => {
    const revision = await storeCall(() => store.revision({ signal: cx.signal }));
    const compactRevision = await storeCall(() => store.compactRevision({ signal: cx.signal }));
    const t = now();
    sendJson(res, 200, { version: deps.version, revision, compactRevision, startedAt: new Date(startedAt).toISOString(), uptimeSeconds: Math.floor((t - startedAt) / 1000), ...deps.status?.() });
  };

  let openapi: string | undefined;
  const openapiRoute = async (_req: ControlRequest, res: ControlResponse): Promise<void> => {
    openapi ??= JSON.stringify(openApiDocument(deps.version));
    (res as ServerResponse).writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(openapi)) });
    res.end(openapi);
  };

  return [
    { method: 'GET', path: '/v1/config', auth: 'admin', handle: list },
    { method: 'GET', path: '/v1/config/{kind}/{namespace}/{name}', auth: 'admin', handle: getOne },
    { method: 'PUT', path: '/v1/config/{kind}/{namespace}/{name}', auth: 'admin', handle: putOne },
    { method: 'DELETE', path: '/v1/config/{kind}/{namespace}/{name}', auth: 'admin', handle: deleteOne },
    { method: 'POST', path: '/v1/config:apply', auth: 'admin', handle: apply },
    { method: 'GET', path: '/v1/status', auth: 'admin', handle: status },
    { method: 'GET', path: '/openapi.json', auth: 'admin', handle: openapiRoute },
  ];
}

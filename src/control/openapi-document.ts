// The OpenAPI 3.1 description of the admin API served at /openapi.json; config kinds reuse the published JSON Schema.
import { configSchema } from '../model/schema.ts';

type Json = Record<string, unknown>;

const ref = (name: string): Json => ({ $ref: `#/components/schemas/${name}` });

/** The config schema's `$defs` become components (prefixed `Config.`), and its `#/$defs/` references follow them. */
function hoist(schema: Json): { document: Json; defs: Record<string, Json> } {
  const rewrite = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(rewrite);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(
      Object.entries(v).map(([k, x]) => [k, k === '$ref' && typeof x === 'string' && x.startsWith('#/$defs/') ? `#/components/schemas/Config.${x.slice(8)}` : rewrite(x)]),
    );
  };
  const { $defs, $schema: _s, $id: _i, ...rest } = schema as Json & { $defs?: Record<string, Json> };
  const defs = Object.fromEntries(Object.entries($defs ?? {}).map(([k, v]) => [`Config.${k}`, rewrite(v) as Json]));
  return { document: rewrite(rest) as Json, defs };
}

function errorResponse(description: string): Json {
  return { description, content: { 'application/json': { schema: ref('Error') } } };
}

const KEY_PARAMS = ['kind', 'namespace', 'name'].map((name) => ({
  name,
  in: 'path',
  required: true,
  schema: { type: 'string' },
  description: name === 'kind' ? 'Resource kind (any case, singular or plural: Backend, backends)' : `Resource ${name}`,
}));

const YAML_BODY = {
  required: true,
  content: {
    'application/yaml': { schema: { type: 'string', description: 'YAML: one document (PUT) or several separated by "---" (apply)' } },
    'application/json': { schema: ref('ConfigDocument') },
  },
};

const COMMON_ERRORS = { '401': errorResponse('No or an invalid credential'), '403': errorResponse('The caller\'s roles do not cover this (the message names what was needed and the roles held)') };

export function openApiDocument(version: string): Json {
  const { document, defs } = hoist(configSchema());
  const item = {
    type: 'object',
    required: ['kind', 'namespace', 'name', 'revision', 'document'],
    properties: {
      kind: { type: 'string' }, namespace: { type: 'string' }, name: { type: 'string' },
      revision: { type: 'integer', description: 'modRevision: the ETag, and what If-Match compares' },
      createRevision: { type: 'integer' }, version: { type: 'integer', description: 'Writes since creation' },
      document: { type: 'string', description: 'The stored YAML document, as applied' },
      resource: ref('ConfigDocument'),
    },
  };
  const problem = {
    type: 'object',
    required: ['file', 'line', 'col', 'message'],
    properties: { file: { type: 'string', description: '"request" for the body, else the stored key' }, line: { type: 'integer' }, col: { type: 'integer' }, path: { type: 'string' }, message: { type: 'string' } },
  };
  const error = {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message', 'requestId'],
        properties: { code: { type: 'string' }, message: { type: 'string' }, requestId: { type: 'string' }, problems: { type: 'array', items: ref('Problem') } },
      },
    },
  };
  const change = {
    type: 'object',
    required: ['action', 'kind', 'namespace', 'name'],
    properties: { action: { enum: ['create', 'update', 'delete', 'unchanged'] }, kind: { type: 'string' }, namespace: { type: 'string' }, name: { type: 'string' }, before: { type: 'string' }, after: { type: 'string' } },
  };
  const json = (schema: Json, description: string, headers?: Json): Json => ({ description, ...(headers ? { headers } : {}), content: { 'application/json': { schema } } });
  const etagHeader = { ETag: { schema: { type: 'string' }, description: 'The resource revision, quoted' } };
  const ifMatch = { name: 'If-Match', in: 'header', schema: { type: 'string' }, description: 'Compare-and-swap: the ETag the change is based on' };
  return {
    openapi: '3.1.0',
    info: { title: 'Lockgate control plane admin API', version, description: 'Config resources, validated as a whole config on every write.' },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    security: [{ bearer: [] }, { operatorCertificate: [] }],
    paths: {
      '/v1/config': {
        get: {
          summary: 'List config resources, or watch them (watch=true) as NDJSON events',
          parameters: [
            { name: 'kind', in: 'query', schema: { type: 'string' } },
            { name: 'namespace', in: 'query', schema: { type: 'string' } },
            { name: 'watch', in: 'query', schema: { type: 'boolean' } },
            { name: 'fromRevision', in: 'query', schema: { type: 'integer', minimum: 0 }, description: 'Watch: replay changes from this revision (0 = from the next change)' },
          ],
          responses: {
            '200': {
              description: 'The resources, or (watch) a stream of events',
              content: {
                'application/json': { schema: { type: 'object', properties: { revision: { type: 'integer' }, items: { type: 'array', items: ref('ConfigItem') } } } },
                'application/x-ndjson': { schema: ref('WatchEvent') },
              },
            },
            ...COMMON_ERRORS,
          },
        },
      },
      '/v1/config/{kind}/{namespace}/{name}': {
        parameters: KEY_PARAMS,
        get: { summary: 'One resource (Accept: application/yaml for the document alone)', responses: { '200': json(ref('ConfigItem'), 'The resource', etagHeader), '404': errorResponse('No such resource'), ...COMMON_ERRORS } },
        put: {
          summary: 'Create or replace one resource',
          parameters: [ifMatch, { name: 'If-None-Match', in: 'header', schema: { const: '*' }, description: 'Create only' }],
          requestBody: YAML_BODY,
          responses: {
            '200': json(ref('ConfigItem'), 'Replaced (or unchanged)', etagHeader),
            '201': json(ref('ConfigItem'), 'Created', etagHeader),
            '400': errorResponse('Invalid config: every problem, with line and column'),
            '412': errorResponse('The precondition failed'),
            ...COMMON_ERRORS,
          },
        },
        delete: {
          summary: 'Delete one resource (refused while others still reference it)',
          parameters: [ifMatch],
          responses: { '200': json({ type: 'object' }, 'Deleted'), '400': errorResponse('The config left would be invalid'), '404': errorResponse('No such resource'), '412': errorResponse('The precondition failed'), ...COMMON_ERRORS },
        },
      },
      '/v1/config:apply': {
        post: {
          summary: 'Apply several documents at once, in one revision',
          parameters: [
            { name: 'prune', in: 'query', schema: { type: 'boolean' }, description: 'Delete stored resources the body does not hold' },
            { name: 'dryRun', in: 'query', schema: { type: 'boolean' }, description: 'Report what would change (with before/after texts), write nothing' },
          ],
          requestBody: YAML_BODY,
          responses: {
            '200': json({ type: 'object', properties: { dryRun: { type: 'boolean' }, revision: { type: 'integer' }, changes: { type: 'array', items: ref('ConfigChange') } } }, 'What changed (or would)'),
            '400': errorResponse('Invalid config: every problem, with line and column'),
            '409': errorResponse('The config changed concurrently'),
            ...COMMON_ERRORS,
          },
        },
      },
      '/v1/status': { get: { summary: 'Store revision, version, uptime', responses: { '200': json({ type: 'object' }, 'Status'), ...COMMON_ERRORS } } },
      '/openapi.json': { get: { summary: 'This document', responses: { '200': json({ type: 'object' }, 'OpenAPI 3.1') } } },
      '/v1/nodes': { get: { summary: 'Every node: identity, versions sent and served (ACK), last NACK reason, certificate, bundle, app address; and the version-skew policy', responses: { '200': json({ type: 'object', properties: { policy: { type: 'string' }, configVersion: { type: 'integer' }, nodes: { type: 'array', items: { type: 'object' } } } }, 'Nodes'), ...COMMON_ERRORS } } },
      '/v1/tokens': {
        post: {
          summary: 'A one-time join token bound to one identity (lockgate token create)',
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['service'], properties: { service: { type: 'string' }, namespace: { type: 'string', default: 'default' }, kind: { enum: ['sidecar', 'gateway'], default: 'sidecar' }, ttl: { type: 'string', description: 'Duration, 1s to 7d (default 1h)' } } } } } },
          responses: { '201': json({ type: 'object', properties: { token: { type: 'string' }, id: { type: 'string' }, expiresAt: { type: 'integer' }, spiffeId: { type: 'string' }, kind: { type: 'string' } } }, 'The token (shown once)'), '400': errorResponse('Bad identity or ttl'), ...COMMON_ERRORS },
        },
      },
      '/v1/ca': { get: { summary: 'The CA: trust domain, bundle roots, intermediate, rotation state, nodes on an old root (lockgate ca show)', responses: { '200': json({ type: 'object' }, 'CA state'), ...COMMON_ERRORS } } },
      '/v1/ca/rotate/start': { post: { summary: 'Root rotation step 1: a new root and intermediate; the bundle holds both', responses: { '200': json({ type: 'object' }, 'Rotation started'), '409': errorResponse('A rotation is already in progress'), ...COMMON_ERRORS } } },
      '/v1/ca/rotate/finish': {
        post: {
          summary: 'Root rotation step 3: the old root leaves the bundle',
          parameters: [{ name: 'force', in: 'query', schema: { type: 'boolean' }, description: 'Finish although live nodes still hold old-root certificates' }],
          responses: { '200': json({ type: 'object' }, 'Rotation finished'), '409': errorResponse('Not rotating, or nodes still on the old root (listed)'), ...COMMON_ERRORS },
        },
      },
      '/v1/ca/intermediate/renew': { post: { summary: 'A new intermediate under the active root (also after a revocation)', responses: { '200': json({ type: 'object' }, 'Renewed'), ...COMMON_ERRORS } } },
      '/v1/auth/providers': { get: { summary: 'The IdentityProviders people sign in with (lockgate login, device code): issuer, CLI client id, scopes. No authentication', responses: { '200': json({ type: 'object' }, 'Providers') } } },
      '/v1/auth/whoami': { get: { summary: 'The caller: subject, how it authenticated (person, token, certificate), its roles and where they come from', responses: { '200': json({ type: 'object' }, 'The caller'), ...COMMON_ERRORS } } },
      '/v1/admin-tokens': {
        get: { summary: 'Admin tokens the caller could have made (role, scope, expiry, creator; never the secret)', responses: { '200': json({ type: 'object' }, 'Tokens'), ...COMMON_ERRORS } },
        post: {
          summary: 'An automation token: one role over namespaces (optionally APIs or services), an expiry (ttl, default 90d, at most 366d); needs the admin role over all it covers. The token is in the answer only',
          requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['role', 'namespaces'], properties: { role: { enum: ['viewer', 'operator', 'approver', 'admin'] }, namespaces: { type: 'array', items: { type: 'string' } }, apis: { type: 'array', items: { type: 'string' } }, services: { type: 'array', items: { type: 'string' } }, ttl: { type: 'string' }, description: { type: 'string' } } } } } },
          responses: { '201': json({ type: 'object' }, 'The token, shown once'), '400': errorResponse('A bad role, scope or ttl'), ...COMMON_ERRORS },
        },
      },
      '/v1/admin-tokens/{id}': { delete: { summary: 'Revoke an admin token (also the bootstrap token)', parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }], responses: { '200': json({ type: 'object' }, 'Revoked'), '404': errorResponse('No such token'), ...COMMON_ERRORS } } },
      '/v1/backup': { get: { summary: 'An encrypted archive of the whole store (config, CA state, registry, nodes, token hashes) at one revision; the master key is not in it', responses: { '200': json({ type: 'object' }, 'The archive (lockgate backup)'), ...COMMON_ERRORS } } },
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An admin token (the bootstrap token printed once at first start, or an automation token), or a person\'s ID token from an IdentityProvider (lockgate login): roles come from RoleBindings' },
        operatorCertificate: { type: 'mutualTLS', description: 'A client certificate for spiffe://<trust-domain>/ns/lockgate-system/sa/operator' },
      },
      schemas: {
        ConfigDocument: document,
        ConfigItem: item,
        ConfigChange: change,
        Problem: problem,
        Error: error,
        WatchEvent: {
          type: 'object',
          required: ['type'],
          properties: { type: { enum: ['PUT', 'DELETE', 'COMPACTED'] }, kind: { type: 'string' }, namespace: { type: 'string' }, name: { type: 'string' }, revision: { type: 'integer' }, document: { type: 'string' }, compactRevision: { type: 'integer' } },
        },
        ...defs,
      },
    },
  };
}

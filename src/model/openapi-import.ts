// OpenAPI 3.0.x / 3.1.x import: a document (and the files its `$ref`s name) → Lockgate operations, or problems.
import { operationName, nameFromOperationId, uniqueName } from './operation-name.ts';
import { readLocalFile } from './openapi-source.ts';
import type { TextLoader } from './openapi-source.ts';
import { bundleSchema, checkSchemaCycles, child, deref, isObject, loadDoc, newRefState, report } from './openapi-refs.ts';
import type { Loc, RefState } from './openapi-refs.ts';
import type {
  JsonSchema,
  OpenApiInfo,
  Operation,
  OperationExample,
  OperationMediaType,
  OperationParameter,
  OperationRequestBody,
  OperationResponse,
  Problem,
} from './types.ts';
import { checkUrlTemplate } from './value-checks.ts';

export type { TextLoader } from './openapi-source.ts';

export interface OpenApiImport {
  /** In document order (paths, then get, put, post, delete, options, head, patch, trace). */
  operations: Operation[];
  info: OpenApiInfo;
  problems: Problem[];
}

export interface ImportOptions {
  /** The document's name in problems; defaults to `id`. */
  file?: string;
  /** Reads the document and the files its `$ref`s name; defaults to local files only (no network). */
  load?: TextLoader;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
const LOCATIONS = new Set(['path', 'query', 'header', 'cookie']);
/** OpenAPI: header parameters with these names "SHALL be ignored" (they are described elsewhere). */
const IGNORED_HEADERS = new Set(['accept', 'content-type', 'authorization']);
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Reads `id` (an absolute path, or whatever `load` understands) and returns its operations, or problems. */
export function importOpenApi(id: string, options: ImportOptions = {}): OpenApiImport {
  const st = newRefState(options.load ?? readLocalFile, id, options.file ?? id);
  const result: OpenApiImport = { operations: [], info: {}, problems: st.problems };
  try {
    readDocument(st, id, result);
  } catch (err) {
    // Loading never throws: whatever slipped through (say, a document nested deeper than the stack) is a problem.
    st.problems.push({ file: st.rootFile, line: 1, col: 1, path: '', message: `cannot import: ${(err as Error).message}` });
    result.operations = [];
  }
  return result;
}

function readDocument(st: RefState, id: string, result: OpenApiImport): OpenApiImport {
  const src = loadDoc(st, id);
  if (!src) {
    const error = st.loadErrors.get(id);
    if (error && st.problems.length === 0) st.problems.push({ file: st.rootFile, line: 1, col: 1, path: '', message: error });
    return result;
  }
  const root: Loc = { src, value: src.root, pointer: '' };
  if (!isObject(root.value)) {
    report(st, root, 'an OpenAPI document must be a mapping with "openapi", "info" and "paths"');
    return result;
  }
  const doc = root.value;
  const version = doc.openapi;
  if (version === undefined) {
    const hint = doc.swagger !== undefined ? ' OpenAPI 2.0 (Swagger) is not supported: convert it to OpenAPI 3' : '';
    report(st, root, `not an OpenAPI 3 document: no "openapi" field.${hint}`);
    return result;
  }
  // Unquoted `openapi: 3.0` is the YAML number 3.
  const v = typeof version === 'number' && Number.isInteger(version) ? `${version}.0` : String(version);
  if (!/^3\.[01](?:\.\d+)?$/.test(v)) {
    report(st, child(root, 'openapi'), `unsupported OpenAPI version ${JSON.stringify(v)}; Lockgate imports 3.0.x and 3.1.x`);
    return result;
  }
  st.dialect = v.startsWith('3.0') ? '3.0' : '3.1';
  result.info.openapiVersion = v;
  const info = doc.info;
  if (isObject(info) && typeof info.title === 'string') result.info.title = info.title;
  const servers = doc.servers;
  if (Array.isArray(servers) && isObject(servers[0]) && typeof servers[0].url === 'string') result.info.serverUrl = servers[0].url;
  const paths = child(root, 'paths');
  if (paths.value !== undefined && !isObject(paths.value)) report(st, paths, 'paths must be a mapping of path templates to path items');
  else if (isObject(paths.value)) readPaths(st, paths, result.operations);
  checkSchemaCycles(st);
  return result;
}

/** `/pets/{petId}` → `/pets/{petId}` plus parameter names; `{pet-id}` → `{pet_id}`; problems for partial segments. */
function toTemplate(st: RefState, keyLoc: Loc, path: string): { template: string; params: Map<string, string> } | undefined {
  const fail = (why: string): undefined => {
    report(st, keyLoc, `path ${JSON.stringify(path)} cannot be imported: ${why}`, 'key');
    return undefined;
  };
  if (!path.startsWith('/')) return fail('it must start with "/"');
  const params = new Map<string, string>();
  const segments: string[] = [];
  for (const s of path.slice(1).split('/')) {
    const whole = /^\{([^{}]+)\}$/.exec(s);
    if (!whole) {
      if (/[{}]/.test(s)) return fail(`segment ${JSON.stringify(s)} mixes text and a parameter; Lockgate templates need a parameter to fill a whole segment`);
      segments.push(s);
      continue;
    }
    const name = whole[1];
    let ident = name.replace(/[^A-Za-z0-9_]/g, '_');
    if (!IDENT.test(ident)) ident = `_${ident}`;
    params.set(name, ident);
    segments.push(`{${ident}}`);
  }
  const template = `/${segments.join('/')}`;
  const problem = checkUrlTemplate(template);
  return problem ? fail(problem) : { template, params };
}

function readPaths(st: RefState, paths: Loc, out: Operation[]): void {
  const names = new Set<string>();
  const operationIds = new Map<string, Loc>();
  for (const path of Object.keys(paths.value as object)) {
    if (path.startsWith('x-')) continue;
    const keyLoc = child(paths, path);
    const t = toTemplate(st, keyLoc, path);
    const item = deref(st, keyLoc);
    if (!t || !item) continue;
    if (!isObject(item.value)) {
      report(st, item, 'a path item must be a mapping');
      continue;
    }
    const shared = readParameters(st, child(item, 'parameters'), t.params);
    for (const method of METHODS) {
      const opLoc = child(item, method);
      if (opLoc.value === undefined) continue;
      if (!isObject(opLoc.value)) {
        report(st, opLoc, `${method} must be an operation (a mapping)`);
        continue;
      }
      const op = readOperation(st, opLoc, method.toUpperCase(), t.template, t.params, shared, operationIds);
      op.name = uniqueName(op.name, (n) => names.has(n));
      names.add(op.name);
      out.push(op);
    }
  }
}

function readOperation(
  st: RefState,
  loc: Loc,
  method: string,
  template: string,
  templateParams: Map<string, string>,
  shared: OperationParameter[],
  operationIds: Map<string, Loc>,
): Operation {
  const o = loc.value as Record<string, unknown>;
  const pos = loc.src.where.get(loc.parent as object)?.keys.get(method.toLowerCase());
  const op: Operation = { name: '', methods: [method], urlTemplate: template, headers: [] };
  const idLoc = child(loc, 'operationId');
  if (typeof o.operationId === 'string') {
    op.operationId = o.operationId;
    const first = operationIds.get(o.operationId);
    if (first) report(st, idLoc, `duplicate operationId ${JSON.stringify(o.operationId)} (first at #${first.pointer})`);
    else operationIds.set(o.operationId, idLoc);
  } else if (o.operationId !== undefined) report(st, idLoc, 'operationId must be a string');
  op.name = (op.operationId && nameFromOperationId(op.operationId)) || operationName([method], template);
  if (typeof o.summary === 'string') op.summary = o.summary;
  op.parameters = [];

  // Operation parameters override path-item ones with the same name and location.
  const own = readParameters(st, child(loc, 'parameters'), templateParams);
  const key = (p: OperationParameter) => `${p.in}:${p.in === 'header' ? p.name.toLowerCase() : p.name}`;
  const merged = new Map(shared.map((p) => [key(p), p]));
  for (const p of own) merged.set(key(p), p);
  // A template parameter nobody declared is still a required string segment.
  for (const [name, ident] of templateParams) {
    if (!merged.has(`path:${name}`)) {
      merged.set(`path:${name}`, { name, in: 'path', required: true, schema: { type: 'string' }, ...(ident !== name && { templateName: ident }) });
    }
  }
  op.parameters.push(...merged.values());

  const body = child(loc, 'requestBody');
  if (body.value !== undefined) {
    const rb = readRequestBody(st, body);
    if (rb) op.requestBody = rb;
  }
  op.responses = {};
  const responses = child(loc, 'responses');
  if (responses.value !== undefined && !isObject(responses.value)) report(st, responses, 'responses must be a mapping of statuses to responses');
  else if (isObject(responses.value)) {
    for (const status of Object.keys(responses.value)) {
      const c = child(responses, status);
      if (status.startsWith('x-')) continue;
      const norm = /^[1-5]xx$/i.test(status) ? status.toUpperCase() : status;
      if (!/^(?:[1-5]\d\d|[1-5]XX|default)$/.test(norm)) {
        report(st, c, `response status ${JSON.stringify(status)} must be a status such as "200", a class such as "4XX", or "default"`, 'key');
        continue;
      }
      const r = readResponse(st, c);
      if (r) op.responses[norm] = r;
    }
  }
  op.source = { file: loc.src.file, line: pos?.line ?? 1, col: pos?.col ?? 1 };
  return op;
}

function readParameters(st: RefState, list: Loc, templateParams: Map<string, string>): OperationParameter[] {
  if (list.value === undefined) return [];
  if (!Array.isArray(list.value)) {
    report(st, list, 'parameters must be a list');
    return [];
  }
  const out: OperationParameter[] = [];
  list.value.forEach((_, i) => {
    const loc = deref(st, child(list, i));
    if (!loc) return;
    const p = loc.value;
    if (!isObject(p)) {
      report(st, loc, 'a parameter must be a mapping with "name" and "in"');
      return;
    }
    if (typeof p.name !== 'string' || p.name === '') {
      report(st, isObject(p) && p.name !== undefined ? child(loc, 'name') : loc, 'a parameter needs a "name" (a non-empty string)');
      return;
    }
    if (typeof p.in !== 'string' || !LOCATIONS.has(p.in)) {
      report(st, p.in === undefined ? loc : child(loc, 'in'), `parameter "in" must be one of "path", "query", "header", "cookie", got ${JSON.stringify(p.in)}`);
      return;
    }
    if (p.in === 'header' && IGNORED_HEADERS.has(p.name.toLowerCase())) return;
    const param: OperationParameter = { name: p.name, in: p.in as OperationParameter['in'], required: p.in === 'path' || p.required === true };
    if (p.in === 'path') {
      const ident = templateParams.get(p.name);
      if (ident === undefined) {
        report(st, child(loc, 'name'), `path parameter ${JSON.stringify(p.name)} does not appear in the path template`);
        return;
      }
      if (ident !== p.name) param.templateName = ident;
    }
    if (p.schema !== undefined) param.schema = bundleSchema(st, child(loc, 'schema'));
    else if (isObject(p.content)) {
      const types = Object.keys(p.content);
      if (types.length !== 1) report(st, child(loc, 'content'), 'a parameter\'s content must have exactly one media type');
      else {
        param.contentType = types[0];
        const mt = readMediaType(st, child(child(loc, 'content'), types[0]));
        if (mt?.schema !== undefined) param.schema = mt.schema;
      }
    }
    if (typeof p.style === 'string') param.style = p.style;
    if (typeof p.explode === 'boolean') param.explode = p.explode;
    out.push(param);
  });
  return out;
}

function readContent(st: RefState, loc: Loc): Record<string, OperationMediaType> {
  const out: Record<string, OperationMediaType> = {};
  if (loc.value === undefined) return out;
  if (!isObject(loc.value)) {
    report(st, loc, 'content must be a mapping of media types');
    return out;
  }
  for (const type of Object.keys(loc.value)) {
    const mt = readMediaType(st, child(loc, type));
    if (mt) Object.defineProperty(out, type, { value: mt, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function readMediaType(st: RefState, loc: Loc): OperationMediaType | undefined {
  const m = loc.value;
  if (!isObject(m)) {
    report(st, loc, 'a media type must be a mapping (with schema, example or examples)');
    return undefined;
  }
  const out: OperationMediaType = {};
  if (m.schema !== undefined) out.schema = bundleSchema(st, child(loc, 'schema'));
  if (Object.hasOwn(m, 'example')) out.example = m.example;
  const examples = child(loc, 'examples');
  if (isObject(examples.value)) {
    out.examples = {};
    for (const name of Object.keys(examples.value)) {
      const ex = deref(st, child(examples, name));
      if (!ex) continue;
      if (!isObject(ex.value)) {
        report(st, ex, 'an example must be a mapping with "value" or "externalValue"');
        continue;
      }
      const e: OperationExample = {};
      if (typeof ex.value.summary === 'string') e.summary = ex.value.summary;
      if (Object.hasOwn(ex.value, 'value')) e.value = ex.value.value;
      if (typeof ex.value.externalValue === 'string') e.externalValue = ex.value.externalValue;
      Object.defineProperty(out.examples, name, { value: e, enumerable: true, writable: true, configurable: true });
    }
  } else if (examples.value !== undefined) report(st, examples, 'examples must be a mapping of names to examples');
  return out;
}

function readRequestBody(st: RefState, at: Loc): OperationRequestBody | undefined {
  const loc = deref(st, at);
  if (!loc) return undefined;
  if (!isObject(loc.value)) {
    report(st, loc, 'a request body must be a mapping with "content"');
    return undefined;
  }
  return { required: loc.value.required === true, content: readContent(st, child(loc, 'content')) };
}

function readResponse(st: RefState, at: Loc): OperationResponse | undefined {
  const loc = deref(st, at);
  if (!loc) return undefined;
  const r = loc.value;
  if (!isObject(r)) {
    report(st, loc, 'a response must be a mapping with "description"');
    return undefined;
  }
  const out: OperationResponse = { ...(typeof r.description === 'string' && { description: r.description }), content: {} };
  out.content = readContent(st, child(loc, 'content'));
  const headers = child(loc, 'headers');
  if (isObject(headers.value)) {
    const h: NonNullable<OperationResponse['headers']> = {};
    for (const name of Object.keys(headers.value)) {
      // "If a response header is defined with the name Content-Type, it SHALL be ignored."
      if (name.toLowerCase() === 'content-type') continue;
      const hl = deref(st, child(headers, name));
      if (!hl) continue;
      if (!isObject(hl.value)) {
        report(st, hl, 'a header must be a mapping (with schema)');
        continue;
      }
      const header: { required: boolean; schema?: JsonSchema } = { required: hl.value.required === true };
      if (hl.value.schema !== undefined) header.schema = bundleSchema(st, child(hl, 'schema'));
      else if (isObject(hl.value.content)) {
        const type = Object.keys(hl.value.content)[0];
        const mt = type === undefined ? undefined : readMediaType(st, child(child(hl, 'content'), type));
        if (mt?.schema !== undefined) header.schema = mt.schema;
      }
      Object.defineProperty(h, name, { value: header, enumerable: true, writable: true, configurable: true });
    }
    out.headers = h;
  } else if (headers.value !== undefined) report(st, headers, 'headers must be a mapping of header names to headers');
  return out;
}

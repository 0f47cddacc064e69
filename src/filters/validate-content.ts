// validate-content: checks the size and the content of the request body (inbound) or the response body (outbound,
// onError) against the operation's imported schema, with API Management's actions, error records and messages.
import { VALIDATE_CONTENT_MAX_SIZE } from '../model/policy-catalog-validation.ts';
import type { JsonSchema, OperationMediaType } from '../model/types.ts';
import { createSchemaCompiler, findContent, type SchemaValidator } from '../policy/schema-validator.ts';
import { getHeader, type PolicyContext } from '../proxy/policy-context.ts';
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { compileCondition, type ConditionFn } from '../proxy/policy-values.ts';
import {
  INTERNAL_ERROR,
  compileAction,
  conclude,
  contentLength,
  decodeBody,
  definitionName,
  describe,
  finding,
  locate,
  readRequestBody,
  responseFor,
  withAdditionalProperties,
  type ActionFn,
  type Finding,
} from '../proxy/policy-validation.ts';

interface ContentRule {
  /** Lower-case media type, or null for every content type the operation declares. */
  type: string | null;
  action: ActionFn;
  /** Which compiled variant of the schemas this rule validates against. */
  variant: 'schema' | 'open' | 'closed';
}

interface TypeMapping {
  from: string | null;
  when: ConditionFn | null;
  to: string;
}

type Content = Record<string, OperationMediaType>;

const mediaOf = (v: string): string => v.split(';')[0].trim().toLowerCase();

export const validateContentPolicy: PolicyFactory = (attrs, env) => {
  const request = env.section === 'inbound';
  const maxSize = Number(attrs.maxSize);
  if (maxSize > VALIDATE_CONTENT_MAX_SIZE) throw new Error(`maxSize is ${maxSize} bytes; API Management allows at most ${VALIDATE_CONTENT_MAX_SIZE}`);
  const unspecified = compileAction(attrs.unspecifiedContentTypeAction, env, 'unspecifiedContentTypeAction');
  const sizeExceeded = compileAction(attrs.sizeExceededAction, env, 'sizeExceededAction');
  const variable = attrs.errorsVariableName as string | undefined;

  const map = (attrs.contentTypeMap ?? {}) as { anyContentTypeValue?: string; missingContentTypeValue?: string; types?: Array<Record<string, string>> };
  const mappings: TypeMapping[] = (map.types ?? []).map((t) => ({
    from: t.from === undefined ? null : mediaOf(t.from),
    when: t.when === undefined ? null : compileCondition(t.when, env),
    to: t.to,
  }));
  const anyType = map.anyContentTypeValue;
  const missingType = map.missingContentTypeValue;

  const rules: ContentRule[] = ((attrs.content ?? []) as Array<Record<string, unknown>>).map((c, i) => {
    const as = (c.validateAs as string | undefined) ?? 'json';
    if (as !== 'json') throw new Error(`content[${i}].validateAs ${as} is not supported: Lockgate validates JSON bodies only`);
    const aap = c.allowAdditionalProperties;
    return {
      type: typeof c.type === 'string' && c.type !== '' ? mediaOf(c.type) : null,
      action: compileAction(c.action, env, `content[${i}].action`),
      variant: aap === true ? 'open' : aap === false ? 'closed' : 'schema',
    };
  });

  // Every schema this policy may validate against, compiled now (in each variant a rule asks for).
  const op = env.route.spec;
  const variants = new Set(rules.filter((r) => r.action.literal !== 'ignore').map((r) => r.variant));
  const compiler = createSchemaCompiler();
  const validators = new Map<JsonSchema, Map<string, SchemaValidator>>();
  const compileAll = (content: Content | undefined, where: string) => {
    for (const [media, entry] of Object.entries(content ?? {})) {
      if (entry.schema === undefined || validators.has(entry.schema)) continue;
      const byVariant = new Map<string, SchemaValidator>();
      for (const v of variants) {
        const schema = v === 'schema' ? entry.schema : withAdditionalProperties(entry.schema, v === 'open');
        const r = compiler.compile(schema);
        if (!r.ok) throw new Error(`the schema of ${where} ${media} does not compile: ${r.problems.join('; ')}`);
        byVariant.set(v, r.validator);
      }
      validators.set(entry.schema, byVariant);
    }
  };
  if (variants.size > 0 && op !== null) {
    if (request) compileAll(op.requestBody?.content, 'the request body');
    else for (const [status, res] of Object.entries(op.responses ?? {})) compileAll(res.content, `response ${status}`);
  }
  const opName = op?.operationId ?? op?.name ?? env.route.operation;

  /** The content type validation goes by: the first matching `types` entry, else any-, else missing-content-type-value. */
  const contentTypeOf = (pc: PolicyContext, raw: string | undefined): string | undefined => {
    const media = raw === undefined || raw.trim() === '' ? undefined : mediaOf(raw);
    for (const m of mappings) {
      if (m.from !== null ? m.from === media : m.when!(pc)) return m.to;
    }
    if (anyType !== undefined) return anyType;
    if (media === undefined && missingType !== undefined) return missingType;
    return raw === undefined || raw.trim() === '' ? undefined : raw.trim();
  };

  const type = request ? 'RequestBody' : 'ResponseBody';
  const which = request ? 'request' : 'response';
  const sizeText = (size: number, configured: boolean) =>
    `${request ? 'Request' : 'Response'}'s body is ${size} bytes long and it exceeds the ${configured ? 'configured ' : ''}limit of ${maxSize} bytes.`;
  const pub = (text: string) => (request ? text : INTERNAL_ERROR);

  /** Validates `bytes` (the raw body) against the rule's schema, adding IncorrectMessage / SizeLimit errors. */
  const check = (bytes: Buffer, encoding: string | undefined, entry: { mediaType: string; value: OperationMediaType }, ct: string, rule: ContentRule, action: ReturnType<ActionFn>, status: number, sizeAction: ReturnType<ActionFn>, out: Finding[]) => {
    const schema = entry.value.schema;
    const validator = schema === undefined ? undefined : validators.get(schema)?.get(rule.variant);
    if (validator === undefined) return;
    const decoded = decodeBody(bytes, encoding, maxSize);
    if (!decoded.ok) {
      if (decoded.tooLarge) finding(sizeAction, '', type, 'SizeLimit', sizeText(decoded.size, true), pub(sizeText(decoded.size, false)), out);
      else finding(action, '', type, 'ValidationException', `Body of the ${which} cannot be validated for the content type ${ct}. ${decoded.message}`, INTERNAL_ERROR, out);
      return;
    }
    const fallback = request ? `${opName}Request` : `${opName}${status}Response`;
    const definition = definitionName(schema, fallback);
    const head = `Body of the ${which} does not conform to the definition ${definition}, which is associated with the content type ${ct}.`;
    let text = decoded.bytes.toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      const details = `${head} ${(err as Error).message}`;
      finding(action, ct, type, 'IncorrectMessage', details, pub(details), out);
      return;
    }
    const r = validator.validate(value);
    if (r.ok) return;
    for (const e of r.errors) {
      const at = locate(text, e.path);
      const details = `${head} ${describe(e)} Line: ${at.line}, Position: ${at.position}`;
      finding(action, ct, type, 'IncorrectMessage', details, pub(details), out);
    }
  };

  return {
    name: 'validate-content',
    path: env.entry.path,
    // The request body is read here, no further than maxSize; a response body has to be buffered by forward-request.
    needsResponseBody: !request && validators.size > 0,
    run(pc) {
      if (!request && pc.res === null) return;
      const headers = request ? pc.req.headers : pc.res!.headers;
      const status = request ? 0 : pc.res!.status;
      // A message without a body has nothing to validate (a GET, a 204).
      if (request ? pc.req.body === null && pc.req.stream === null : pc.res!.body === null && pc.res!.capture === null) return;
      if (request ? pc.req.body !== null && pc.req.body.length === 0 : pc.res!.body !== null && pc.res!.body.length === 0) return;
      const declared = contentLength(headers);
      if (declared === 0) return;

      const raw = getHeader(headers, 'content-type');
      const ct = contentTypeOf(pc, raw);
      const content: Content | undefined = request ? op?.requestBody?.content : responseFor(op, status)?.content;
      const entry = ct === undefined ? undefined : findContent(content, ct);
      const media = ct === undefined ? undefined : mediaOf(ct);
      const rule = entry === undefined ? undefined : rules.find((r) => r.type === null || r.type === media);
      const action = rule === undefined ? 'ignore' : rule.action(pc);
      const sizeAction = sizeExceeded(pc);
      const out: Finding[] = [];
      const unspecifiedCheck = () => {
        if (entry !== undefined) return;
        const a = unspecified(pc);
        const text = `Unspecified content type ${ct ?? ''} is not allowed.`;
        finding(a, ct ?? '', type, 'Unspecified', text, pub(text), out);
      };
      const validating = rule !== undefined && action !== 'ignore' && entry!.value.schema !== undefined;
      const encoding = getHeader(headers, 'content-encoding');

      if (!request) {
        const res = pc.res!;
        const size = declared >= 0 ? declared : res.body !== null ? res.body.length : -1;
        const tooLarge = size > maxSize;
        if (tooLarge) finding(sizeAction, '', type, 'SizeLimit', sizeText(size, true), pub(sizeText(size, false)), out);
        unspecifiedCheck();
        // A body still streaming (forward-request's bufferResponse: false) cannot be validated.
        if (validating && !tooLarge && res.body !== null) check(res.body, encoding, entry!, ct!, rule!, action, status, sizeAction, out);
        return conclude(pc, 'validate-content', variable, out, false);
      }

      if (!validating && sizeAction === 'ignore') {
        unspecifiedCheck();
        return conclude(pc, 'validate-content', variable, out, true);
      }
      const finish = (read: Awaited<ReturnType<typeof readRequestBody>>): void => {
        if (read.kind === 'tooLarge') finding(sizeAction, '', type, 'SizeLimit', sizeText(read.size, true), pub(sizeText(read.size, false)), out);
        unspecifiedCheck();
        if (validating && read.kind === 'body' && read.bytes.length > 0) check(read.bytes, encoding, entry!, ct!, rule!, action, status, sizeAction, out);
        conclude(pc, 'validate-content', variable, out, true);
      };
      // Buffered already (another policy reads it), or too large by its Content-Length: no reading.
      if (pc.req.body !== null || declared > maxSize) {
        const body = pc.req.body;
        return finish(body !== null && body.length <= maxSize ? { kind: 'body', bytes: body } : { kind: 'tooLarge', size: body?.length ?? declared });
      }
      return readRequestBody(pc, maxSize).then(finish);
    },
  };
};

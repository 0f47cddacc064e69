// json-to-xml: converts a JSON request body (inbound) or response body (outbound, onError) to XML.
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { PolicyError, errorResponse, getHeader, type PolicyContext } from '../proxy/policy-context.ts';
import { acceptAsks, isJsonType, isXmlType, mediaType, onResponseSection, readableBody, replaceBody } from '../proxy/policy-body.ts';
import { jsonToXml, type JsonToXmlOptions } from '../lib/json-xml.ts';

/** Most nested JSON objects and arrays converted (deeper input fails the policy). */
export const MAX_JSON_DEPTH = 64;
/** Output cap when the pipeline runs without a request handler (Gateway.spec.limits.maxBufferedBody's default). */
const DEFAULT_MAX_BODY = 4 * 1024 * 1024;

export const jsonToXmlPolicy: PolicyFactory = (attrs, env) => {
  const onlyJson = attrs.apply === 'content-type-json';
  const considerAccept = attrs.considerAcceptHeader !== false;
  const opts: JsonToXmlOptions = {
    parseDate: attrs.parseDate !== false,
    namespaceSeparator: typeof attrs.namespaceSeparator === 'string' ? attrs.namespaceSeparator : '_',
    namespacePrefix: attrs.namespacePrefix as string | undefined,
    attributeBlockName: attrs.attributeBlockName as string | undefined,
    maxDepth: MAX_JSON_DEPTH,
  };
  const onResponse = onResponseSection(env.section);
  const fail = (message: string): never => {
    throw new PolicyError('json-to-xml', 'JsonToXmlConversionFailure', message, onResponse ? errorResponse(502, 'Bad gateway') : errorResponse(400, 'Bad request'));
  };
  return {
    name: 'json-to-xml',
    path: env.entry.path,
    needsRequestBody: !onResponse,
    needsResponseBody: onResponse,
    run(pc: PolicyContext) {
      if (considerAccept && !acceptAsks(getHeader(pc.req.headers, 'accept'), isXmlType)) return;
      const target = readableBody(pc, onResponse, 'json-to-xml');
      if (target === null || target.body.length === 0) return;
      if (onlyJson && !isJsonType(mediaType(getHeader(target.headers, 'content-type')))) return;
      let value: unknown;
      try {
        value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(target.body));
      } catch (err) {
        fail(`the ${onResponse ? 'response' : 'request'} body is not JSON: ${(err as Error).message}`);
      }
      let xml = '';
      try {
        // The result must fit where the body is buffered: arrays repeat names, so a small JSON can expand a lot.
        xml = jsonToXml(value, { ...opts, maxOutput: pc.forward?.maxBufferedBody ?? DEFAULT_MAX_BODY });
      } catch (err) {
        fail((err as Error).message);
      }
      replaceBody(pc, onResponse, Buffer.from(xml), 'application/xml; charset=utf-8');
    },
  };
};

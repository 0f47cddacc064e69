// xml-to-json: converts an XML request body (inbound) or response body (outbound, onError) to JSON. Untrusted XML is
// parsed strictly: DOCTYPEs (so every entity definition) are refused, depth and node count are bounded.
import type { PolicyFactory } from '../proxy/policy-pipeline.ts';
import { PolicyError, errorResponse, getHeader, type PolicyContext } from '../proxy/policy-context.ts';
import { acceptAsks, isJsonType, isXmlType, mediaType, onResponseSection, readableBody, replaceBody } from '../proxy/policy-body.ts';
import { xmlToJson, type XmlToJsonOptions } from '../lib/json-xml.ts';
import { XmlError, parseXml } from '../lib/xml.ts';

export const xmlToJsonPolicy: PolicyFactory = (attrs, env) => {
  const onlyXml = attrs.apply === 'content-type-xml';
  const considerAccept = attrs.considerAcceptHeader !== false;
  const opts: XmlToJsonOptions = {
    kind: attrs.kind === 'direct' ? 'direct' : 'javascript-friendly',
    alwaysArrayChildElements: attrs.alwaysArrayChildElements === true,
  };
  const onResponse = onResponseSection(env.section);
  return {
    name: 'xml-to-json',
    path: env.entry.path,
    needsRequestBody: !onResponse,
    needsResponseBody: onResponse,
    run(pc: PolicyContext) {
      if (considerAccept && !acceptAsks(getHeader(pc.req.headers, 'accept'), isJsonType)) return;
      const target = readableBody(pc, onResponse, 'xml-to-json');
      if (target === null || target.body.length === 0) return;
      if (onlyXml && !isXmlType(mediaType(getHeader(target.headers, 'content-type')))) return;
      let json: string;
      try {
        json = JSON.stringify(xmlToJson(parseXml(target.body), opts));
      } catch (err) {
        if (!(err instanceof XmlError)) throw err;
        const what = onResponse ? 'response' : 'request';
        // A DOCTYPE is refused on purpose (entity expansion, external entities): a reason of its own for onError.
        const reason = err.code === 'doctype' ? 'XmlDoctypeRefused' : err.code === 'depth' || err.code === 'limit' ? 'XmlLimitExceeded' : 'XmlParseFailure';
        throw new PolicyError('xml-to-json', reason, `the ${what} body is not acceptable XML: ${err.message}`, onResponse ? errorResponse(502, 'Bad gateway') : errorResponse(400, 'Bad request'));
      }
      replaceBody(pc, onResponse, Buffer.from(json), 'application/json; charset=utf-8');
    },
  };
};

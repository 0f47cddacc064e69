// Transformation, limits, fragments, logging and metrics policies end to end through the pipeline, with
// compressed request and response bodies and hostile XML.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import zlib from 'node:zlib';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { startPolicyGateway, type PolicyGateway } from './helpers/policy-gateway.ts';
import { parseCheckedConfig } from '../src/policy/load-checked.ts';
import { formatProblems } from '../src/model/load-config.ts';
import { policyLog, policyMetric, type PolicyLogEvent } from '../src/telemetry/channels.ts';
import { AccessLog } from '../src/telemetry/access-log.ts';
import { MAX_METRIC_SERIES, MetricsRegistry } from '../src/telemetry/metrics.ts';
import { DataPlane } from '../src/app/data-plane.ts';
import type { Config } from '../src/model/types.ts';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

let up: http.Server;
let upUrl = '';
const seen: Seen[] = [];
/** Requests held by /slow until released. */
const held: Array<() => void> = [];
let gw: PolicyGateway | undefined;

const ORDER_JSON = JSON.stringify({ order: { id: 7, host: 'http://orders.internal:8080/x', lines: ['a', 'b'] } });
const PRICE_XML = '<?xml version="1.0"?><Price xmlns:m="urn:p" currency="EUR"><m:Item>apple</m:Item><m:Item>pear</m:Item><m:Empty/></Price>';

function upstream(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
  const path = (req.url ?? '').split('?')[0];
  const send = (status: number, headers: Record<string, string>, data: Buffer | string) => {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    res.writeHead(status, { ...headers, 'content-length': String(buf.length) });
    res.end(buf);
  };
  switch (path) {
    case '/gz-json':
      return send(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', etag: '"v1"' }, zlib.gzipSync(ORDER_JSON));
    case '/br-json':
      return send(200, { 'content-type': 'application/json', 'content-encoding': 'br' }, zlib.brotliCompressSync(ORDER_JSON));
    case '/plain-json':
      return send(200, { 'content-type': 'application/json' }, ORDER_JSON);
    case '/compress':
      return send(200, { 'content-type': 'application/json', 'content-encoding': 'compress' }, Buffer.from([0x1f, 0x9d, 0x90, 0x7b]));
    case '/bad-gzip':
      return send(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }, Buffer.from('not gzip at all'));
    case '/xml':
      return send(200, { 'content-type': 'application/xml' }, PRICE_XML);
    case '/xml-as-text':
      return send(200, { 'content-type': 'text/plain' }, PRICE_XML);
    case '/slow':
      held.push(() => send(200, { 'content-type': 'text/plain' }, 'slow done'));
      return;
    default:
      // Echo: what arrived, as JSON (the body as text).
      return send(200, { 'content-type': 'application/json' }, JSON.stringify({ url: req.url, headers: req.headers, body: body.toString('utf8') }));
  }
}

const OPS = [
  ['far-in', 'POST', '/far'],
  ['far-out', 'GET', '/gz-json'],
  ['far-out-br', 'GET', '/br-json'],
  ['far-out-plain', 'GET', '/plain-json'],
  ['far-out-compress', 'GET', '/compress'],
  ['far-out-bad', 'GET', '/bad-gzip'],
  ['j2x-in', 'POST', '/j2x'],
  ['j2x-out', 'GET', '/j2x-out'],
  ['x2j-in', 'POST', '/x2j'],
  ['x2j-out', 'GET', '/xml'],
  ['x2j-out-text', 'GET', '/xml-as-text'],
  ['slow', 'GET', '/slow'],
  ['frag', 'GET', '/frag'],
  ['log', 'GET', '/log'],
  ['basic', 'GET', '/basic'],
] as const;

function config(upUrl: string): string {
  const ops = OPS.map(([name, method, path]) => `    - { name: ${name}, methods: [${method}], urlTemplate: "${path}" }`).join('\n');
  const pol = (op: string, body: string) => `---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: p-${op} }
spec:
  scope: { api: t, operation: ${op} }
${body}`;
  // onError tags every failure with its reason, so tests can see LastError.
  const tag = `  onError:
    - set-header: { name: x-reason, value: "@(context.LastError.Reason)" }
`;
  const farOut = `  outbound:
    - find-and-replace: { from: "http://orders.internal:8080", to: "https://api.example.com" }
${tag}`;
  return `apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  admin: { address: 127.0.0.1, port: 0 }
  accessLog: { enabled: false }
  limits: { maxBufferedBody: 64KiB }
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: "${upUrl}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: t }
spec:
  path: /t
  backend: up
  stripPath: true
  operations:
${ops}
---
apiVersion: lockgate.dev/v1alpha1
kind: PolicyFragment
metadata: { name: tenant }
spec:
  description: tenant headers
  policies:
    - set-header: { name: x-tenant, value: "@(context.Request.Headers['x-t'])" }
    - choose:
        when:
          - condition: context.Request.Headers["x-t"] == "gold"
            policies:
              - set-header: { name: x-tier, value: gold }
${pol('far-in', `  inbound:
    - find-and-replace: { from: "foo", to: "@(context.Request.Headers['x-to'])" }
${tag}`)}
${pol('far-out', farOut)}
${pol('far-out-br', farOut)}
${pol('far-out-plain', farOut)}
${pol('far-out-compress', farOut)}
${pol('far-out-bad', farOut)}
${pol('j2x-in', `  inbound:
    - json-to-xml: { apply: content-type-json, considerAcceptHeader: false, namespaceSeparator: ":", namespacePrefix: xmlns, attributeBlockName: "#attrs" }
${tag}`)}
${pol('j2x-out', `  inbound:
    - rewrite-uri: { template: /plain-json }
  outbound:
    - json-to-xml: { apply: always }
${tag}`)}
${pol('x2j-in', `  inbound:
    - xml-to-json: { kind: direct, apply: always, considerAcceptHeader: false }
${tag}`)}
${pol('x2j-out', `  outbound:
    - xml-to-json: { kind: javascript-friendly, apply: content-type-xml }
${tag}`)}
${pol('x2j-out-text', `  outbound:
    - xml-to-json: { kind: javascript-friendly, apply: content-type-xml, considerAcceptHeader: false }
`)}
${pol('slow', `  backend:
    - limit-concurrency:
        key: "@(context.Request.Headers['x-k'])"
        maxCount: 2
        policies:
          - forward-request: {}
${tag}`)}
${pol('frag', `  inbound:
    - include-fragment: { fragmentId: tenant }
`)}
${pol('log', `  outbound:
    - log-to:
        loggerId: audit
        value: { status: "@(context.Response.StatusCode)", who: "@(context.Request.Headers['x-who'])" }
    - emit-metric:
        name: t_calls
        dimensions:
          - { name: apiId }
          - { name: tier, value: "@(context.Request.Headers['x-tier'])" }
`)}
${pol('basic', `  inbound:
    - authentication-basic: { username: gateway, password: "s3cr\u00e9t" }
`)}`;
}

before(async () => {
  up = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      upstream(req, res, body);
    });
  });
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', () => r()));
  upUrl = `http://127.0.0.1:${(up.address() as AddressInfo).port}`;
  gw = await startPolicyGateway(config(upUrl));
});

after(async () => {
  for (const release of held.splice(0)) release();
  await gw?.close();
  await new Promise<void>((r) => {
    up.close(() => r());
    up.closeAllConnections();
  });
});

async function call(method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string) {
  const r = await request(`${gw!.url}${path}`, { method: method as 'GET', headers, body });
  const buf = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, headers: r.headers, body: buf, text: buf.toString('utf8') };
}

function lastSeen(): Seen {
  const s = seen.at(-1);
  assert.ok(s, 'the backend saw a request');
  return s;
}

test('find-and-replace on a gzip/deflate/br request body: decoded once, replaced, sent decoded with the right length', async () => {
  const text = '{"a":"foo","b":"foo-foo","c":"\u00e9"}';
  for (const [enc, data] of [
    ['gzip', zlib.gzipSync(text)],
    ['deflate', zlib.deflateSync(text)],
    ['deflate', zlib.deflateRawSync(text)],
    ['br', zlib.brotliCompressSync(text)],
    ['gzip, br', zlib.brotliCompressSync(zlib.gzipSync(text))],
  ] as const) {
    const n = seen.length;
    const r = await call('POST', '/t/far', { 'content-type': 'application/json', 'content-encoding': enc, 'x-to': 'bar' }, data);
    assert.equal(r.status, 200, `${enc}: ${r.text}`);
    assert.equal(seen.length, n + 1);
    const s = lastSeen();
    assert.equal(s.body.toString('utf8'), '{"a":"bar","b":"bar-bar","c":"\u00e9"}', enc);
    assert.equal(s.headers['content-encoding'], undefined, enc);
    assert.equal(s.headers['content-length'], String(s.body.length), enc);
  }
});

test('an un-encoded request body is changed byte-exactly; bytes that are not UTF-8 around a match survive', async () => {
  const body = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), Buffer.from('foo'), Buffer.from([0x80, 0xc3])]);
  const r = await call('POST', '/t/far', { 'content-type': 'application/octet-stream', 'x-to': 'XY' }, body);
  assert.equal(r.status, 200);
  assert.deepEqual(lastSeen().body, Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), Buffer.from('XY'), Buffer.from([0x80, 0xc3])]));
  assert.equal(lastSeen().headers['content-length'], '7');
});

test('find-and-replace refuses to grow a request body past maxBufferedBody (413, backend not called)', async () => {
  const n = seen.length;
  const r = await call('POST', '/t/far', { 'x-to': 'x'.repeat(200) }, 'foo'.repeat(1000));
  assert.equal(r.status, 413);
  assert.equal(r.headers['x-reason'], 'BodyTooLarge');
  assert.equal(seen.length, n);
  // Just under the limit passes: 1000 × 60 bytes = 60,000 bytes ≤ 64 KiB.
  assert.equal((await call('POST', '/t/far', { 'x-to': 'y'.repeat(60) }, 'foo'.repeat(1000))).status, 200);
  assert.equal(lastSeen().body.length, 60_000);
});

test('request bodies the gateway cannot decode: unknown encoding 415, corrupt gzip 400, a gzip bomb 413; the backend is not called', async () => {
  const n = seen.length;
  const unknown = await call('POST', '/t/far', { 'content-encoding': 'compress', 'x-to': 'x' }, Buffer.from([0x1f, 0x9d, 0x90]));
  assert.equal(unknown.status, 415);
  assert.deepEqual(JSON.parse(unknown.text), { statusCode: 415, message: 'Unsupported Content-Encoding: compress' });
  assert.equal(unknown.headers['x-reason'], 'UnsupportedContentEncoding');
  const corrupt = await call('POST', '/t/far', { 'content-encoding': 'gzip', 'x-to': 'x' }, Buffer.from('plainly not gzip'));
  assert.equal(corrupt.status, 400);
  // 1 MiB of zeros compresses to about 1 KiB: far under the 64 KiB limit before decoding, far over it after.
  const bomb = zlib.gzipSync(Buffer.alloc(1024 * 1024));
  assert.ok(bomb.length < 64 * 1024);
  const big = await call('POST', '/t/far', { 'content-encoding': 'gzip', 'x-to': 'x' }, bomb);
  assert.equal(big.status, 413);
  assert.equal(seen.length, n, 'no request reached the backend');
});

test('find-and-replace on a gzip or br response: the client gets it decoded, replaced, with its length and a weak ETag', async () => {
  const want = ORDER_JSON.replace('http://orders.internal:8080', 'https://api.example.com');
  for (const path of ['/t/gz-json', '/t/br-json']) {
    const r = await call('GET', path, { 'accept-encoding': 'gzip, br' });
    assert.equal(r.status, 200, path);
    assert.equal(r.text, want, path);
    assert.equal(r.headers['content-encoding'], undefined, path);
    assert.equal(r.headers['content-length'], String(r.body.length), path);
  }
  assert.equal((await call('GET', '/t/gz-json')).headers.etag, 'W/"v1"');
  const plain = await call('GET', '/t/plain-json');
  assert.equal(plain.text, want);
});

test('response bodies the gateway cannot decode: unknown encoding and corrupt gzip fail the policy with 502', async () => {
  const unknown = await call('GET', '/t/compress');
  assert.equal(unknown.status, 502);
  assert.equal(unknown.headers['x-reason'], 'UnsupportedContentEncoding');
  const corrupt = await call('GET', '/t/bad-gzip');
  assert.equal(corrupt.status, 502);
  assert.equal(corrupt.headers['x-reason'], 'ResponseBodyDecodeFailure');
});

test('json-to-xml inbound: API Management\'s SOAP example reaches the backend as XML; a body that is not JSON is 400', async () => {
  const soap = {
    'soapenv:Envelope': {
      'xmlns:soapenv': 'http://schemas.xmlsoap.org/soap/envelope/',
      'soapenv:Body': { 'v1:QueryList': { '#attrs': { queryName: 'test' }, 'v1:QueryItem': { name: 'dummy text' } } },
    },
  };
  const r = await call('POST', '/t/j2x', { 'content-type': 'application/json' }, JSON.stringify(soap));
  assert.equal(r.status, 200);
  const s = lastSeen();
  assert.equal(
    s.body.toString('utf8'),
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><v1:QueryList queryName="test"><v1:QueryItem><name>dummy text</name></v1:QueryItem></v1:QueryList></soapenv:Body></soapenv:Envelope>',
  );
  assert.equal(s.headers['content-type'], 'application/xml; charset=utf-8');
  // apply: content-type-json leaves other bodies alone.
  await call('POST', '/t/j2x', { 'content-type': 'text/plain' }, '{"a":1}');
  assert.equal(lastSeen().body.toString('utf8'), '{"a":1}');
  const n = seen.length;
  const bad = await call('POST', '/t/j2x', { 'content-type': 'application/json' }, '{"a":');
  assert.equal(bad.status, 400);
  assert.equal(bad.headers['x-reason'], 'JsonToXmlConversionFailure');
  assert.equal(seen.length, n);
});

test('json-to-xml outbound converts only when the client\'s Accept asks for XML (considerAcceptHeader defaults to true)', async () => {
  const xml = await call('GET', '/t/j2x-out', { accept: 'application/xml' });
  assert.equal(xml.status, 200);
  assert.equal(xml.headers['content-type'], 'application/xml; charset=utf-8');
  assert.equal(xml.text, '<order><id>7</id><host>http://orders.internal:8080/x</host><lines>a</lines><lines>b</lines></order>');
  const json = await call('GET', '/t/j2x-out', { accept: 'application/json, */*' });
  assert.equal(json.text, ORDER_JSON);
  assert.equal(json.headers['content-type'], 'application/json');
});

test('xml-to-json: direct inbound, javascript-friendly outbound with apply: content-type-xml and Accept', async () => {
  const r = await call('POST', '/t/x2j', { 'content-type': 'application/xml' }, PRICE_XML);
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(lastSeen().body.toString('utf8')), {
    '?xml': { '@version': '1.0' },
    Price: { '@xmlns:m': 'urn:p', '@currency': 'EUR', 'm:Item': ['apple', 'pear'], 'm:Empty': null },
  });
  assert.equal(lastSeen().headers['content-type'], 'application/json; charset=utf-8');
  const out = await call('GET', '/t/xml', { accept: 'application/json' });
  assert.deepEqual(JSON.parse(out.text), { Price: { '@currency': 'EUR', Item: ['apple', 'pear'], Empty: null } });
  assert.equal(out.headers['content-type'], 'application/json; charset=utf-8');
  // No JSON in Accept: untouched.
  assert.equal((await call('GET', '/t/xml', { accept: 'text/html' })).text, PRICE_XML);
  // A text/plain body is not XML for apply: content-type-xml.
  assert.equal((await call('GET', '/t/xml-as-text')).text, PRICE_XML);
});

test('hostile XML is refused before the backend: DOCTYPE with entities, external entities, deep nesting, malformed', async () => {
  const laughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><lolz>&lol2;</lolz>`;
  const xxe = '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>';
  const deep = '<a>'.repeat(100_000) + '</a>'.repeat(100_000);
  const cases: Array<[string, string, string]> = [
    ['billion laughs', laughs, 'XmlDoctypeRefused'],
    ['external entity', xxe, 'XmlDoctypeRefused'],
    ['undefined entity without a DTD', '<r>&x;</r>', 'XmlParseFailure'],
    ['deep nesting', deep.slice(0, 60_000), 'XmlLimitExceeded'],
    ['unclosed', '<r><a></r>', 'XmlParseFailure'],
  ];
  const n = seen.length;
  for (const [what, body, reason] of cases) {
    const r = await call('POST', '/t/x2j', { 'content-type': 'application/xml' }, body);
    assert.equal(r.status, 400, what);
    assert.deepEqual(JSON.parse(r.text), { statusCode: 400, message: 'Bad request' }, what);
    assert.equal(r.headers['x-reason'], reason, what);
  }
  assert.equal(seen.length, n, 'the backend saw none of them');
});

test('limit-concurrency: maxCount requests per key run, the next gets 429 at once, and the count is released', async () => {
  const before = held.length;
  const a = call('GET', '/t/slow', { 'x-k': 'one' });
  const b = call('GET', '/t/slow', { 'x-k': 'one' });
  const other = call('GET', '/t/slow', { 'x-k': 'two' });
  while (held.length < before + 3) await new Promise((r) => setTimeout(r, 5));
  const t0 = Date.now();
  const over = await call('GET', '/t/slow', { 'x-k': 'one' });
  assert.equal(over.status, 429);
  assert.equal(over.body.length, 0);
  assert.equal(over.headers['x-reason'], 'ConcurrencyLimitExceeded');
  assert.ok(Date.now() - t0 < 1000, 'refused without waiting');
  for (const release of held.splice(before)) release();
  assert.deepEqual((await Promise.all([a, b, other])).map((r) => r.status), [200, 200, 200]);
  const again = call('GET', '/t/slow', { 'x-k': 'one' });
  while (held.length < before + 1) await new Promise((r) => setTimeout(r, 5));
  held.splice(before)[0]();
  assert.equal((await again).status, 200);
});

test('include-fragment runs the fragment\'s policies (nested ones too) where it is included', async () => {
  await call('GET', '/t/frag', { 'x-t': 'gold' });
  assert.equal(lastSeen().headers['x-tenant'], 'gold');
  assert.equal(lastSeen().headers['x-tier'], 'gold');
  await call('GET', '/t/frag', { 'x-t': 'tin' });
  assert.equal(lastSeen().headers['x-tenant'], 'tin');
  assert.equal(lastSeen().headers['x-tier'], undefined);
});

test('log-to publishes a structured event with the request id; emit-metric counts by dimensions', async () => {
  const events: PolicyLogEvent[] = [];
  const onLog = (m: unknown) => events.push(m as PolicyLogEvent);
  policyLog.subscribe(onLog);
  try {
    const r = await call('GET', '/t/log', { 'x-who': 'al\u00efce', 'x-tier': 'gold' });
    await call('GET', '/t/log', { 'x-who': 'bob', 'x-tier': 'gold' });
    await call('GET', '/t/log', { 'x-who': 'bob', 'x-tier': 'tin' });
    assert.equal(events.length, 3);
    assert.equal(events[0].requestId, r.headers['x-request-id']);
    assert.equal(events[0].logger, 'audit');
    assert.equal(events[0].api, 't');
    assert.deepEqual(JSON.parse(events[0].eventJson), { status: 200, who: 'al\u00efce' });
  } finally {
    policyLog.unsubscribe(onLog);
  }
  const counters = gw!.plane.metrics.snapshot().counters;
  assert.equal(counters['t_calls_total{apiId="t",tier="gold"}'], 2);
  assert.equal(counters['t_calls_total{apiId="t",tier="tin"}'], 1);
});

test('the access log writes a log-to event as its own ASCII JSON line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lockgate-log-'));
  try {
    const file = join(dir, 'access.log');
    const log = new AccessLog(file, 128);
    const event: PolicyLogEvent = { requestId: 'r-1', traceId: 't-1', logger: 'au"dit', api: 'a', operation: 'o', eventJson: JSON.stringify({ who: 'al\u00efce', n: 1 }) };
    policyLog.publish(event);
    log.close();
    const text = readFileSync(file, 'latin1');
    assert.equal(text.split('\n').length, 2, 'one line');
    assert.ok(/^[\x20-\x7e]*\n$/.test(text), 'ASCII only');
    const line = JSON.parse(text);
    assert.equal(line.type, 'policy');
    assert.equal(line.logger, 'au"dit');
    assert.equal(line.requestId, 'r-1');
    assert.deepEqual(line.event, { who: 'al\u00efce', n: 1 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('emit-metric cardinality is capped per metric; overflow and bad values are counted, never stored', () => {
  const reg = new MetricsRegistry();
  try {
    for (let i = 0; i < MAX_METRIC_SERIES + 5; i++) policyMetric.publish({ name: 'capped_total', labels: { id: String(i) }, value: 1 });
    policyMetric.publish({ name: 'capped_total', labels: { id: '0' }, value: 2 });
    policyMetric.publish({ name: 'capped_total', labels: { id: '0' }, value: -1 });
    policyMetric.publish({ name: 'capped_total', labels: { id: '0' }, value: Number.NaN });
    const c = reg.snapshot().counters;
    assert.equal(Object.keys(c).filter((k) => k.startsWith('capped_total{')).length, MAX_METRIC_SERIES);
    assert.equal(c['capped_total{id="0"}'], 3);
    assert.equal(c['lockgate_emit_metric_dropped_total{metric="capped_total",reason="cardinality"}'], 5);
    assert.equal(c['lockgate_emit_metric_dropped_total{metric="capped_total",reason="value"}'], 2);
  } finally {
    reg.close();
  }
});

test('authentication-basic replaces the client\'s Authorization with the backend credentials (UTF-8)', async () => {
  await call('GET', '/t/basic', { authorization: 'Bearer client-token' });
  assert.equal(lastSeen().headers.authorization, `Basic ${Buffer.from('gateway:s3cr\u00e9t', 'utf8').toString('base64')}`);
});

// ---------- config problems ----------

function problems(yaml: string): string {
  const r = parseCheckedConfig(yaml, 'c.yaml');
  return r.config ? '' : formatProblems(r.problems);
}

const API = `apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: "http://127.0.0.1:9" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: t }
spec: { path: /t, backend: up }
`;

function frag(name: string, body: string): string {
  return `---
apiVersion: lockgate.dev/v1alpha1
kind: PolicyFragment
metadata: { name: ${name} }
spec:
  policies:
${body}`;
}

function apiPolicy(body: string): string {
  return `---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: p }
spec:
  scope: { api: t }
${body}`;
}

test('fragments: unknown ids, base, nesting, a policy not allowed where included, and bad expressions are problems with file:line:col', () => {
  const unknown = problems(API + frag('tenant', '    - set-header: { name: a, value: b }\n') + apiPolicy('  inbound:\n    - include-fragment: { fragmentId: tenat }\n'));
  assert.match(unknown, /c\.yaml:\d+:\d+: .*PolicyFragment "tenat" not found in namespace "default" \(did you mean "tenant"\?\)/);
  const inner = problems(API + frag('f', '    - base: {}\n    - include-fragment: { fragmentId: g }\n'));
  assert.match(inner, /"base" is not allowed in it/);
  assert.match(inner, /cannot include another fragment/);
  const section = problems(API + frag('f', '    - set-method: { method: POST }\n') + apiPolicy('  outbound:\n    - include-fragment: { fragmentId: f }\n'));
  assert.match(section, /PolicyFragment "default\/f": set-method \(c\.yaml:\d+:\d+\) is not allowed in outbound/);
  const expr = problems(API + frag('f', '    - set-header: { name: a, value: "@(context.Request.Headers[)" }\n'));
  assert.match(expr, /c\.yaml:\d+:\d+: .*expression/);
  assert.equal(problems(API + frag('f', '    - set-header: { name: a, value: b }\n') + apiPolicy('  inbound:\n    - include-fragment: { fragmentId: default/f }\n')), '');
});

test('attribute problems are reported when the config loads', () => {
  const cases: Array<[string, RegExp]> = [
    ['  backend:\n    - json-to-xml: { apply: always }\n', /json-to-xml is not allowed in backend/],
    ['  inbound:\n    - xml-to-json: { kind: friendly, apply: always }\n', /kind/],
    ['  inbound:\n    - find-and-replace: { from: "", to: x }\n', /`from` is empty/],
    ['  inbound:\n    - authentication-basic: { username: "a:b", password: x }\n', /cannot contain ":"/],
    ['  inbound:\n    - emit-metric: { name: lockgate_x, dimensions: [{ name: a, value: b }] }\n', /lockgate_ prefix/],
    ['  inbound:\n    - emit-metric: { name: x, dimensions: [{ name: tier }] }\n', /needs a value/],
    ['  inbound:\n    - limit-concurrency: { key: k, maxCount: 0 }\n', /maxCount/],
  ];
  for (const [body, re] of cases) {
    const text = problems(API + apiPolicy(body));
    if (text !== '') {
      assert.match(text, re, body);
      continue;
    }
    // Factory checks run when a runtime is built: a DataPlane refuses the config.
    const r = parseCheckedConfig(`apiVersion: lockgate.dev/v1alpha1\nkind: Gateway\nmetadata: { name: g }\nspec:\n  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]\n  accessLog: { enabled: false }\n---\n${API}${apiPolicy(body)}`, 'c.yaml');
    assert.ok(r.config, body);
    assert.throws(() => startPolicyGatewaySync(r.config!), re, body);
  }
});

function startPolicyGatewaySync(config: Config): void {
  // buildRuntime throws (through DataPlane) with the compile problem; nothing listens.
  const plane = new DataPlane(config, { accessLog: false });
  void plane.close();
}

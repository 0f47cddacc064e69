import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildUpstreamHeaders, type ForwardFacts } from './upstream-headers.ts';

const base: ForwardFacts = {
  clientIp: '10.0.0.9', trusted: false, proto: 'http', host: 'api.example.com', requestId: 'rid-1',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', connectionTokens: null,
  contentLength: -1, maxHops: 10, keepTracestate: true,
};

function toMap(list: string[] | null): Map<string, string[]> {
  assert.ok(list);
  const m = new Map<string, string[]>();
  for (let i = 0; i < list.length; i += 2) m.set(list[i], [...(m.get(list[i]) ?? []), list[i + 1]]);
  return m;
}

test('hop-by-hop, framing and Connection-named headers are removed before ours are added', () => {
  const raw = ['Host', 'api.example.com', 'Connection', 'keep-alive, X-Secret, X-Forwarded-For', 'X-Secret', 's',
    'Keep-Alive', 'timeout=5', 'Transfer-Encoding', 'chunked', 'TE', 'trailers', 'Upgrade', 'h2c', 'Accept', '*/*', 'Expect', '100-continue'];
  const m = toMap(buildUpstreamHeaders(raw, { ...base, connectionTokens: ['x-secret', 'x-forwarded-for'] }));
  for (const n of ['connection', 'x-secret', 'keep-alive', 'transfer-encoding', 'te', 'upgrade', 'expect']) assert.equal(m.has(n), false, n);
  assert.deepEqual(m.get('accept'), ['*/*']);
  // Connection: X-Forwarded-For cannot strip what the gateway adds.
  assert.deepEqual(m.get('x-forwarded-for'), ['10.0.0.9']);
  assert.deepEqual(m.get('host'), ['api.example.com']);
});

test('untrusted X-Forwarded-* and x-request-id are replaced, trusted ones are appended/kept', () => {
  const raw = ['host', 'h', 'x-forwarded-for', '1.2.3.4', 'x-forwarded-proto', 'https', 'x-request-id', 'evil'];
  const u = toMap(buildUpstreamHeaders(raw, base));
  assert.deepEqual(u.get('x-forwarded-for'), ['10.0.0.9']);
  assert.deepEqual(u.get('x-forwarded-proto'), ['http']);
  assert.deepEqual(u.get('x-request-id'), ['rid-1']);
  const t = toMap(buildUpstreamHeaders(raw, { ...base, trusted: true }));
  assert.deepEqual(t.get('x-forwarded-for'), ['1.2.3.4, 10.0.0.9']);
  assert.deepEqual(t.get('x-forwarded-proto'), ['https']);
});

test('Via is appended and a loop is detected at maxHops', () => {
  const m = toMap(buildUpstreamHeaders(['via', '1.1 a, 1.1 b'], base));
  assert.deepEqual(m.get('via'), ['1.1 a, 1.1 b, 1.1 lockgate']);
  assert.equal(buildUpstreamHeaders(['via', '1.1 a, 1.1 b', 'Via', '1.1 c'], { ...base, maxHops: 3 }), null);
});

test('content-length is re-serialised from the validated value; pseudo-headers never forwarded', () => {
  const m = toMap(buildUpstreamHeaders([':method', 'POST', ':path', '/', 'content-length', '5'], { ...base, contentLength: 5 }));
  assert.deepEqual(m.get('content-length'), ['5']);
  assert.equal(m.has(':method'), false);
  const n = toMap(buildUpstreamHeaders(['content-length', '0'], base));
  assert.equal(n.has('content-length'), false);
});

test('tracestate travels only with a continued traceparent', () => {
  const raw = ['tracestate', 'a=1', 'tracestate', 'b=2'];
  assert.deepEqual(toMap(buildUpstreamHeaders(raw, base)).get('tracestate'), ['a=1,b=2']);
  assert.equal(toMap(buildUpstreamHeaders(raw, { ...base, keepTracestate: false })).has('tracestate'), false);
});

test('mesh headers a client sends never pass: the verified-caller header and the hop count are ours to set', () => {
  const raw = ['host', 'h', 'X-Lockgate-Client-Id', 'spiffe://lockgate.local/ns/shop/sa/admin', 'x-lockgate-hops', '16', 'accept', '*/*'];
  const m = toMap(buildUpstreamHeaders(raw, base));
  assert.equal(m.has('x-lockgate-client-id'), false);
  assert.equal(m.has('x-lockgate-hops'), false);
  assert.deepEqual(m.get('accept'), ['*/*']);
});

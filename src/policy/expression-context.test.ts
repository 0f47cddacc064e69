// Tests for the expression context: API Management's shape, CEL-natural values, laziness and size caps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildExpressionContext, CAPS, ExpressionError, mapEntry, toCelValue, type ExpressionSource } from './expression-context.ts';

interface Counters {
  body: number;
  responseBody: number;
}

function source(over: Partial<ExpressionSource> = {}, counters: Counters = { body: 0, responseBody: 0 }): ExpressionSource {
  return {
    method: 'POST',
    path: '/orders/7',
    queryString: '?a=1&a=2&b=x%20y',
    headers: ['Host', 'example.com', 'X-Tag', 'one', 'accept', 'json', 'x-tag', 'two'],
    clientIp: '203.0.113.9',
    matchedParameters: () => new Map([['id', '7']]),
    originalPath: '/orders/7',
    originalQueryString: '?a=1&a=2',
    requestBody: () => {
      counters.body++;
      return '{"id":7}';
    },
    response: null,
    variables: new Map<string, unknown>([['count', 3], ['ratio', 0.5], ['name', 'n'], ['list', ['a', 2]], ['obj', { k: true }]]),
    subscription: { id: 'sub_0123456789abcdef', name: 'gold-1', scope: 'product:gold' },
    product: 'gold',
    api: { name: 'orders', path: '/orders', version: 'v2' },
    operation: { id: 'get-order', method: 'GET', urlTemplate: '/orders/{id}' },
    claims: { sub: 'u1', groups: ['eng', 'ops'], exp: 1_700_000_000, score: 1.5, addr: { city: 'Oslo' } },
    lastError: null,
    requestId: '0f1e2d3c',
    deployment: { region: 'eu-north', gatewayId: 'gw-1' },
    ...over,
  };
}

function throwsCap(fn: () => unknown, what: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ExpressionError, String(err));
    assert.equal(err.code, 'over_cap');
    assert.match(err.message, what);
    return true;
  });
}

test('the context has API Management shape with CEL-natural values', () => {
  const c = buildExpressionContext(source());
  assert.equal(c.Request.Method, 'POST');
  assert.equal(c.Request.Url.Path, '/orders/7');
  assert.equal(c.Request.Url.QueryString, 'a=1&a=2&b=x%20y');
  assert.deepEqual([...c.Request.Url.Query], [['a', '1,2'], ['b', 'x y']]);
  assert.deepEqual([...c.Request.Headers], [['host', 'example.com'], ['x-tag', 'one, two'], ['accept', 'json']]);
  assert.equal(c.Request.IpAddress, '203.0.113.9');
  assert.equal(c.Request.Body, '{"id":7}');
  assert.equal(c.Response, undefined);
  assert.deepEqual(c.Subscription, { Id: 'sub_0123456789abcdef', Name: 'gold-1', Scope: 'product:gold' });
  assert.equal(Object.keys(c.Subscription).some((k) => /key/i.test(k)), false, 'never a key');
  assert.deepEqual(c.Product, { Name: 'gold' });
  assert.deepEqual(c.Api, { Name: 'orders', Path: '/orders', Version: 'v2' });
  assert.deepEqual(c.Operation, { Id: 'get-order', Method: 'GET', UrlTemplate: '/orders/{id}' });
  assert.equal(c.Claims.get('sub'), 'u1');
  assert.deepEqual(c.Claims.get('groups'), ['eng', 'ops']);
  assert.equal(c.Claims.get('exp'), 1_700_000_000n, 'integral numbers are CEL ints');
  assert.equal(c.Claims.get('score'), 1.5);
  assert.deepEqual(c.Claims.get('addr'), new Map([['city', 'Oslo']]));
  assert.equal(c.User, c.Claims);
  assert.equal(c.Variables.get('count'), 3n);
  assert.equal(c.Variables.get('ratio'), 0.5);
  assert.deepEqual(c.Variables.get('list'), ['a', 2n]);
  assert.deepEqual(c.Variables.get('obj'), new Map([['k', true]]));
  assert.equal(c.LastError, undefined);
  assert.equal(c.RequestId, '0f1e2d3c');
  assert.deepEqual(c.Deployment, { Region: 'eu-north', GatewayId: 'gw-1' });
});

test('absent subscription, product and claims read as empty', () => {
  const c = buildExpressionContext(source({ subscription: null, product: null, claims: null, variables: new Map() }));
  assert.deepEqual(c.Subscription, { Id: '', Name: '', Scope: '' });
  assert.equal(c.Product.Name, '');
  assert.equal(c.Claims.size, 0);
  assert.equal(c.Variables.size, 0);
});

test('response and last error appear once they exist', () => {
  let bodies = 0;
  const c = buildExpressionContext(
    source({
      response: { status: 503, headers: ['Retry-After', '5', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2'], body: () => (bodies++, 'down') },
      lastError: { source: 'forward-request', reason: 'BackendConnectionFailure', message: 'refused', scope: 'api', section: 'backend', path: 'backend[0]' },
    }),
  );
  const r = c.Response;
  assert.ok(r);
  assert.equal(r.StatusCode, 503n);
  assert.deepEqual([...r.Headers], [['retry-after', '5'], ['set-cookie', 'a=1, b=2']]);
  assert.equal(bodies, 0);
  assert.equal(r.Body, 'down');
  assert.equal(r.Body, 'down');
  assert.equal(bodies, 1, 'the response body getter runs once');
  assert.deepEqual(c.LastError, { Source: 'forward-request', Reason: 'BackendConnectionFailure', Message: 'refused', Scope: 'api', Section: 'backend', Path: 'backend[0]' });
});

test('building reads nothing; each area is read on first use and cached', () => {
  const touched: string[] = [];
  const counters = { body: 0, responseBody: 0 };
  const base = source({}, counters);
  const spy = new Proxy(base, {
    get(t, k, r) {
      touched.push(String(k));
      return Reflect.get(t, k, r);
    },
  });
  const c = buildExpressionContext(spy);
  assert.deepEqual(touched, []);
  const h = c.Request.Headers;
  assert.equal(c.Request.Headers, h, 'the map is built once');
  assert.deepEqual(touched, ['headers']);
  assert.equal(counters.body, 0);
  assert.equal(c.Request.Body, c.Request.Body);
  assert.equal(counters.body, 1);
  assert.equal(c.Claims, c.Claims);
  assert.equal(touched.filter((k) => k === 'claims').length, 1);
});

test('header lookups agree with the map, whatever the case of the raw names', () => {
  const s = source({ headers: ['X-A', '1', 'x-b', '2', 'x-a', '3', 'X-LONG-NAME', 'v'] });
  const c = buildExpressionContext(s);
  assert.equal(mapEntry(c.Request, 'Headers', 'x-a'), '1, 3');
  assert.equal(mapEntry(c.Request, 'Headers', 'x-long-name'), 'v');
  assert.equal(mapEntry(c.Request, 'Headers', 'x-z'), undefined);
  assert.equal(mapEntry(c.Request.Url, 'Query', 'b'), 'x y');
  assert.equal(mapEntry(c, 'Variables', 'name'), 'n');
  for (const k of ['x-a', 'x-b', 'x-long-name', 'nope']) assert.equal(mapEntry(c.Request, 'Headers', k), c.Request.Headers.get(k));
});

test('caps: values at the cap are readable, one over fails closed (never truncated)', () => {
  const at = 'v'.repeat(CAPS.headerValue);
  assert.equal(buildExpressionContext(source({ headers: ['x', at] })).Request.Headers.get('x'), at);
  const over = source({ headers: ['x', `${at}v`, 'y', 'small'] });
  throwsCap(() => buildExpressionContext(over).Request.Headers, /header "x" is 8193 characters long, over the cap of 8192/);
  // The lookup of another header fails too: the map as a whole is over its cap.
  throwsCap(() => mapEntry(buildExpressionContext(over).Request, 'Headers', 'y'), /header "x"/);
  const joined = source({ headers: ['x', 'v'.repeat(5000), 'X', 'v'.repeat(5000)] });
  throwsCap(() => buildExpressionContext(joined).Request.Headers, /header "x" is 10002 characters/);
  throwsCap(() => mapEntry(buildExpressionContext(joined).Request, 'Headers', 'x'), /header "x"/);
  const many = source({ headers: Array.from({ length: CAPS.headerCount + 1 }, (_, i) => [`h${i}`, 'v']).flat() });
  throwsCap(() => buildExpressionContext(many).Request.Headers, /more than 128 distinct header names/);
  throwsCap(() => mapEntry(buildExpressionContext(many).Request, 'Headers', 'h1'), /more than 128/);
  const repeated = source({ headers: Array.from({ length: CAPS.headerCount + 10 }, () => ['same', 'v']).flat() });
  assert.equal(buildExpressionContext(repeated).Request.Headers.size, 1, 'repeats count once');
  throwsCap(() => buildExpressionContext(source({ headers: ['n'.repeat(257), 'v'] })).Request.Headers, /header name is 257/);
  throwsCap(() => mapEntry(buildExpressionContext(source({ headers: ['n'.repeat(257), 'v'] })).Request, 'Headers', 'x'), /header name/);
});

test('caps: body, path, query, claims and variables', () => {
  let calls = 0;
  const big = buildExpressionContext(source({ requestBody: () => (calls++, 'b'.repeat(CAPS.body + 1)) }));
  throwsCap(() => big.Request.Body, /context.Request.Body .* 262145 characters long, over the cap of 262144/);
  throwsCap(() => big.Request.Body, /Body/);
  assert.equal(calls, 1, 'the failure is remembered');
  assert.equal(buildExpressionContext(source({ requestBody: () => 'b'.repeat(CAPS.body) })).Request.Body.length, CAPS.body);
  throwsCap(() => buildExpressionContext(source({ path: `/${'p'.repeat(CAPS.path)}` })).Request.Url.Path, /Url.Path/);
  throwsCap(() => buildExpressionContext(source({ queryString: `?q=${'x'.repeat(CAPS.queryString)}` })).Request.Url.Query, /Url.Query/);
  const manyParams = Array.from({ length: CAPS.queryCount + 1 }, (_, i) => `p${i}=1`).join('&');
  throwsCap(() => buildExpressionContext(source({ queryString: manyParams })).Request.Url.Query, /more than 128 distinct parameters/);
  throwsCap(() => buildExpressionContext(source({ claims: { s: 'c'.repeat(CAPS.claims.string + 1) } })).Claims, /context.Claims/);
  throwsCap(() => buildExpressionContext(source({ claims: { g: Array(CAPS.claims.entries + 1).fill('x') } })).Claims, /list has 257 elements/);
  let deep: unknown = 'x';
  for (let i = 0; i < 10; i++) deep = { d: deep };
  throwsCap(() => buildExpressionContext(source({ claims: { deep } })).Claims, /nested more than 8 levels/);
  throwsCap(() => buildExpressionContext(source({ variables: new Map([['v', 'x'.repeat(CAPS.variables.string + 1)]]) })).Variables, /context.Variables/);
  const lots = new Map(Array.from({ length: CAPS.variables.entries + 1 }, (_, i) => [`v${i}`, i]));
  throwsCap(() => buildExpressionContext(source({ variables: lots })).Variables, /257 variables/);
});

test('values expressions cannot represent are reported, not passed through', () => {
  assert.throws(
    () => toCelValue(() => 1, CAPS.variables, 'context.Variables'),
    (e: unknown) => e instanceof ExpressionError && e.code === 'unsupported' && /function/.test(e.message),
  );
  assert.equal(toCelValue(undefined, CAPS.variables, 'v'), null);
  const bytes = new Uint8Array([1, 2]);
  assert.equal(toCelValue(bytes, CAPS.variables, 'v'), bytes);
});

test('claims frozen all the way down are converted once and reused; others are converted for each request', () => {
  const frozen = Object.freeze({ sub: 'u1', groups: Object.freeze(['eng']) });
  const a = buildExpressionContext(source({ claims: frozen })).Claims;
  const b = buildExpressionContext(source({ claims: frozen })).Claims;
  assert.equal(a, b, 'the same CEL map for the same frozen claims');
  assert.deepEqual([...a.entries()], [['sub', 'u1'], ['groups', ['eng']]]);
  // Frozen on top only: a nested array can still change, so every request converts again and sees the change.
  const shallow = Object.freeze({ sub: 'u2', groups: ['eng'] });
  const c = buildExpressionContext(source({ claims: shallow })).Claims;
  shallow.groups.push('ops');
  const d = buildExpressionContext(source({ claims: shallow })).Claims;
  assert.notEqual(c, d);
  assert.deepEqual(d.get('groups'), ['eng', 'ops']);
});

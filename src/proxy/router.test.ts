// Tests for the gateway router: precedence, hosts, prefixes, params, headers, methods, conflicts, and a reference model.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { buildRouter, sameRouteShapes } from './router.ts';
import type { RouteEntry, Router } from './router.ts';
import type { HeaderMatch } from '../model/types.ts';

/** Entry whose value is its path (plus a tag when given), any host, any method, no headers. */
function route(path: string, more: Partial<RouteEntry<string>> = {}): RouteEntry<string> {
  return { hostnames: [], path, methods: ['*'], headers: [], value: path, ...more };
}
function built(entries: RouteEntry<string>[]): Router<string> {
  const { router, problems } = buildRouter(entries);
  assert.deepEqual(problems, []);
  return router;
}
const value = (r: Router<string>, path: string, host = 'h.test', method = 'GET', raw: string[] = []) =>
  r.match(host, path, method, raw)?.value;

test('precedence: exact static > more static segments earlier > longest prefix', () => {
  const r = built(['/*', '/orders/*', '/orders/{id}', '/orders/{id}/items/*', '/orders/new', '/orders/{id}/items/{item}',
    '/{tenant}/orders', '/orders/v2/*'].map((p) => route(p)));
  const table: Array<[string, string | undefined]> = [
    ['/orders/new', '/orders/new'],
    ['/orders/7', '/orders/{id}'],
    ['/orders', '/orders/*'],
    ['/orders/7/items', '/orders/{id}/items/*'],
    ['/orders/7/items/3', '/orders/{id}/items/{item}'],
    ['/orders/7/items/3/x', '/orders/{id}/items/*'],
    ['/orders/7/other', '/orders/*'],
    ['/orders/v2', '/orders/v2/*'],
    ['/orders/v2/x/y', '/orders/v2/*'],
    ['/acme/orders', '/{tenant}/orders'],
    ['/acme/orders/1', '/*'],
    ['/', '/*'],
  ];
  for (const [path, want] of table) assert.equal(value(r, path), want, path);
  assert.equal(r.size, 8);
});

test('a prefix stops at segment boundaries: /admin/* does not take /administrator', () => {
  const r = built([route('/admin/*')]);
  assert.equal(value(r, '/admin'), '/admin/*');
  assert.equal(value(r, '/admin/users'), '/admin/*');
  assert.equal(value(r, '/administrator'), undefined);
  assert.equal(value(r, '/'), undefined);
});

test('templates extract params; static and prefix hits share one frozen result with params null', () => {
  const r = built([route('/orders/{orderId}/items/{itemId}'), route('/orders/{orderId}'), route('/orders'), route('/files/*')]);
  assert.deepEqual(r.match('h', '/orders/o-1/items/i%2F2', 'GET', []), {
    value: '/orders/{orderId}/items/{itemId}', params: { orderId: 'o-1', itemId: 'i%2F2' },
  });
  assert.deepEqual(r.match('h', '/orders/9', 'GET', [])?.params, { orderId: '9' });
  const a = r.match('h', '/orders', 'GET', []);
  assert.equal(a?.params, null);
  assert.equal(r.match('h', '/orders', 'POST', []), a);
  assert.ok(Object.isFrozen(a));
  assert.equal(r.match('h', '/files/a/b', 'GET', []), r.match('h', '/files', 'GET', []));
  assert.equal(r.match('h', '/files', 'GET', [])?.params, null);
});

test('wildcard hosts match any depth of subdomain, longest suffix first, never the apex', () => {
  const r = built([
    route('/*', { hostnames: ['*.example.com'], value: 'wild' }),
    route('/*', { hostnames: ['*.eu.example.com'], value: 'wild-eu' }),
    route('/*', { hostnames: ['API.example.com.'], value: 'api' }),
  ]);
  assert.equal(value(r, '/x', 'api.example.com'), 'api');
  assert.equal(value(r, '/x', 'shop.example.com'), 'wild');
  assert.equal(value(r, '/x', 'a.b.example.com'), 'wild');
  assert.equal(value(r, '/x', 'shop.eu.example.com'), 'wild-eu');
  assert.equal(value(r, '/x', 'eu.example.com'), 'wild');
  assert.equal(value(r, '/x', 'example.com'), undefined);
  assert.equal(value(r, '/x', 'badexample.com'), undefined);
});

test('host tables fall back, most specific first, down to the any-host table', () => {
  const r = built([
    route('/a', { hostnames: ['api.example.com'], value: 'exact-a' }),
    route('/b/*', { hostnames: ['*.example.com'], value: 'wild-b' }),
    route('/*', { value: 'any' }),
    route('/a', { value: 'any-a' }),
  ]);
  assert.equal(value(r, '/a', 'api.example.com'), 'exact-a');
  assert.equal(value(r, '/b/1', 'api.example.com'), 'wild-b');
  assert.equal(value(r, '/c', 'api.example.com'), 'any');
  assert.equal(value(r, '/a', 'other.example.com'), 'any-a');
  assert.equal(value(r, '/a', 'unknown.org'), 'any-a');
});

test('header conditions pick among routes at the same node; more conditions first', () => {
  const h = (...m: HeaderMatch[]) => ({ headers: m });
  const r = built([
    route('/api/*', { value: 'plain' }),
    route('/api/*', { value: 'v2', ...h({ name: 'X-Version', exact: '2' }) }),
    route('/api/*', { value: 'beta', ...h({ name: 'x-channel', prefix: 'beta' }) }),
    route('/api/*', { value: 'v2-debug', ...h({ name: 'x-version', exact: '2' }, { name: 'x-debug', present: true }) }),
  ]);
  assert.equal(value(r, '/api/x', 'h', 'GET', []), 'plain');
  assert.equal(value(r, '/api/x', 'h', 'GET', ['x-version', '2']), 'v2');
  assert.equal(value(r, '/api/x', 'h', 'GET', ['X-VERSION', '3']), 'plain');
  assert.equal(value(r, '/api/x', 'h', 'GET', ['X-Channel', 'beta-7']), 'beta');
  assert.equal(value(r, '/api/x', 'h', 'GET', ['x-version', '2', 'X-Debug', '']), 'v2-debug');
  const strict = built([route('/s', { headers: [{ name: 'x-key' }] })]);
  assert.equal(value(strict, '/s', 'h', 'GET', []), undefined);
});

test('methods: explicit before "*", and a method miss falls through to less specific routes', () => {
  const r = built([
    route('/o/{id}', { methods: ['GET', 'put'], value: 'get-put' }),
    route('/o/{id}', { methods: ['*'], value: 'any' }),
    route('/p/{id}', { methods: ['DELETE'], value: 'delete' }),
    route('/p/*', { methods: ['POST'], value: 'post-prefix' }),
  ]);
  assert.equal(value(r, '/o/1', 'h', 'GET'), 'get-put');
  assert.equal(value(r, '/o/1', 'h', 'PUT'), 'get-put');
  assert.equal(value(r, '/o/1', 'h', 'PATCH'), 'any');
  assert.equal(value(r, '/p/1', 'h', 'POST'), 'post-prefix');
  assert.equal(value(r, '/p/1', 'h', 'GET'), undefined);
  assert.deepEqual(r.allowedMethods('h', '/p/1', []), ['DELETE', 'POST']);
  assert.deepEqual(r.allowedMethods('h', '/o/1', []), ['*']);
  assert.deepEqual(r.allowedMethods('h', '/nothing', []), []);
});

test('allowedMethods unites host tables and respects header conditions', () => {
  const r = built([
    route('/a', { hostnames: ['x.com'], methods: ['GET'] }),
    route('/a', { methods: ['POST'] }),
    route('/a', { methods: ['PATCH'], headers: [{ name: 'x-admin' }] }),
  ]);
  assert.equal(value(r, '/a', 'x.com', 'DELETE'), undefined);
  assert.deepEqual(r.allowedMethods('x.com', '/a', []), ['GET', 'POST']);
  assert.deepEqual(r.allowedMethods('x.com', '/a', ['X-Admin', '1']), ['GET', 'PATCH', 'POST']);
  assert.deepEqual(r.allowedMethods('y.com', '/a', []), ['POST']);
});

test('conflicts and invalid entries are reported, first entry wins, other hosts keep the entry', () => {
  const { router, problems } = buildRouter<string>([
    route('/o/{id}', { hostnames: ['a.com'], methods: ['GET', 'POST'], value: 'first' }),
    route('/o/{x}', { hostnames: ['a.com', 'b.com'], methods: ['POST', 'GET'], value: 'second' }),
    route('/o/{id}', { hostnames: ['a.com'], methods: ['GET'], value: 'subset, not a conflict' }),
    route('/o/{id}', { hostnames: ['a.com'], methods: ['GET', 'POST'], headers: [{ name: 'x' }], value: 'headers differ' }),
    route('orders'),
    route('/a/{id}x'),
    route('/b', { methods: [] }),
    route('/c', { hostnames: ['a.*.com'] }),
    route('/d', { headers: [{ name: '' }] }),
  ]);
  assert.equal(problems.length, 6, problems.join('\n'));
  assert.match(problems[0], /route #1 .*same host "a\.com".*route #0/);
  assert.match(problems.slice(1).join('\n'), /#4.*start with/);
  assert.equal(router.size, 4);
  assert.equal(router.match('a.com', '/o/1', 'GET', [])?.value, 'first');
  assert.equal(router.match('b.com', '/o/1', 'GET', [])?.value, 'second');
  assert.equal(router.match('a.com', '/c', 'GET', []), undefined);
});

test('10,000 routes build quickly and still resolve', (t) => {
  const entries: RouteEntry<number>[] = [];
  for (let i = 0; i < 10_000; i++) {
    const hostnames = i % 3 === 0 ? [] : i % 3 === 1 ? [`h${i % 100}.example.com`] : [`*.w${i % 50}.example.net`];
    const path = i % 4 === 0 ? `/svc${i}/items` : i % 4 === 1 ? `/svc${i}/items/{id}` : `/svc${i}/*`;
    entries.push({ hostnames, path, methods: i % 5 === 0 ? ['GET'] : ['*'], headers: [], value: i });
  }
  const start = process.hrtime.bigint();
  const { router, problems } = buildRouter(entries);
  t.diagnostic(`built 10,000 routes in ${(Number(process.hrtime.bigint() - start) / 1e6).toFixed(1)} ms`);
  assert.deepEqual(problems, []);
  assert.equal(router.size, 10_000);
  assert.deepEqual(router.match('h97.example.com', '/svc9997/items/5', 'GET', []), { value: 9997, params: { id: '5' } });
  assert.equal(router.match('a.b.w48.example.net', '/svc9998/x', 'PUT', [])?.value, 9998);
  assert.equal(router.match('other', '/svc9996/items', 'GET', [])?.value, 9996);
  assert.equal(router.match('other', '/svc9997/items/5', 'GET', []), undefined);
});

// ---------- model check against a deliberately naive implementation of the documented rules ----------

interface Req { host: string; path: string; method: string; raw: string[] }

function hostRank(pattern: string, host: string): number | undefined {
  if (pattern === '') return 1000;
  if (pattern.startsWith('*.')) return host.endsWith(pattern.slice(1)) ? 500 - pattern.length : undefined;
  return pattern === host ? 0 : undefined;
}

/** Per-segment kinds (0 static, 1 param; then 0 end or 2 prefix), or undefined when the path does not match. */
function pathRank(template: string, path: string): number[] | undefined {
  const prefix = template.endsWith('/*');
  const body = prefix ? template.slice(0, -2) : template;
  const segs = body === '' ? [] : body.slice(1).split('/');
  const parts = path.slice(1).split('/');
  if (prefix ? segs.length > parts.length : segs.length !== parts.length) return undefined;
  const kinds: number[] = [];
  for (let i = 0; i < segs.length; i++) {
    const param = segs[i].startsWith('{');
    if (param ? parts[i] === '' : segs[i] !== parts[i]) return undefined;
    kinds.push(param ? 1 : 0);
  }
  if (!prefix && !kinds.includes(1)) return [-1];
  return [...kinds, prefix ? 2 : 0];
}

function headersHold(headers: HeaderMatch[], raw: string[]): boolean {
  return headers.every((h) => {
    const vals = raw.flatMap((v, i) => (i % 2 === 0 && v.toLowerCase() === h.name.toLowerCase() ? [raw[i + 1]] : []));
    if (h.exact !== undefined) return vals.includes(h.exact);
    if (h.prefix !== undefined) return vals.some((v) => v.startsWith(h.prefix as string));
    return h.present === false ? vals.length === 0 : vals.length > 0;
  });
}

function referenceMatch(entries: RouteEntry<number>[], q: Req) {
  const hits: Array<{ key: number[]; e: RouteEntry<number> }> = [];
  for (const e of entries) {
    const hostKeys = (e.hostnames.length === 0 ? [''] : e.hostnames).map((h) => hostRank(h, q.host)).filter((h) => h !== undefined);
    const p = pathRank(e.path, q.path);
    if (hostKeys.length === 0 || p === undefined || !headersHold(e.headers, q.raw)) continue;
    if (!e.methods.includes('*') && !e.methods.includes(q.method)) continue;
    const tail = [-e.headers.length, e.methods.includes('*') ? 1 : 0, e.value];
    hits.push({ key: [Math.min(...hostKeys), ...p, ...tail], e });
  }
  const cmp = (a: number[], b: number[]) => { for (let i = 0; ; i++) if (a[i] !== b[i]) return a[i] - b[i]; };
  return hits.sort((a, b) => cmp(a.key, b.key))[0]?.e;
}

test('matches a naive reference model of the documented precedence (property)', () => {
  const seg = fc.constantFrom('a', 'b', 'c', '{p}');
  const template = fc.tuple(fc.array(seg, { maxLength: 3 }), fc.boolean()).map(([parts, prefix]) => {
    let n = 0;
    const body = parts.length === 0 ? '' : '/' + parts.map((s) => (s === '{p}' ? `{p${n++}}` : s)).join('/');
    return prefix ? `${body}/*` : body || '/';
  });
  const entry = fc.record({
    hostnames: fc.constantFrom<string[]>([], ['a.x.com'], ['*.x.com'], ['*.com'], ['a.x.com', '*.com']),
    path: template,
    methods: fc.constantFrom<string[]>(['*'], ['GET'], ['POST'], ['GET', 'POST']),
    headers: fc.constantFrom<HeaderMatch[]>([], [{ name: 'X-V', exact: '1' }], [{ name: 'x-v', prefix: '1' }], [{ name: 'x-v' }], [{ name: 'x-v', present: false }]),
  });
  const req = fc.record({
    host: fc.constantFrom('a.x.com', 'b.a.x.com', 'x.com', 'q.org'),
    path: fc.array(fc.constantFrom('a', 'b', 'c', 'd', ''), { maxLength: 4 }).map((s) => '/' + s.join('/')),
    method: fc.constantFrom('GET', 'POST', 'PUT'),
    raw: fc.constantFrom<string[]>([], ['X-V', '1'], ['x-v', '12'], ['X-V', '2']),
  });
  fc.assert(fc.property(fc.array(entry, { maxLength: 12 }), fc.array(req, { minLength: 1, maxLength: 10 }), (raw, reqs) => {
    const entries = raw.map((e, i) => ({ ...e, value: i }));
    const { router } = buildRouter(entries);
    for (const q of reqs) {
      const got = router.match(q.host, q.path, q.method, q.raw);
      const want = referenceMatch(entries, q);
      assert.equal(got?.value, want?.value, `${q.method} ${q.host}${q.path}`);
      if (want === undefined) continue;
      const names = [...want.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      const parts = q.path.slice(1).split('/');
      const segs = want.path.slice(1).split('/');
      const params = names.length === 0 ? null : Object.fromEntries(names.map((n) => [n, parts[segs.indexOf(`{${n}}`)]]));
      assert.deepEqual(got?.params, params);
    }
  }), { numRuns: 400 });
});

test('rebind: the same routes with new values route exactly as a fresh build; it consumes the router it patched (property)', () => {
  const entry = fc.record({
    hostnames: fc.constantFrom<string[]>([], ['a.x.com'], ['*.x.com'], ['a.x.com', '*.com']),
    path: fc.constantFrom('/', '/a', '/a/*', '/a/{p}', '/a/{p}/b', '/{q}/c/*', '/b/c', '/*'),
    methods: fc.constantFrom<string[]>(['*'], ['GET'], ['POST'], ['GET', 'POST']),
    headers: fc.constantFrom<HeaderMatch[]>([], [{ name: 'x-v', exact: '1' }], [{ name: 'x-v', present: false }]),
  });
  const req = fc.record({
    host: fc.constantFrom('a.x.com', 'b.a.x.com', 'q.org'),
    path: fc.constantFrom('/', '/a', '/a/1', '/a/1/b', '/z/c/d', '/b/c', '/b'),
    method: fc.constantFrom('GET', 'POST', 'PUT'),
    raw: fc.constantFrom<string[]>([], ['x-v', '1'], ['X-V', '2']),
  });
  let rebound = 0;
  fc.assert(fc.property(fc.array(entry, { maxLength: 10 }), fc.array(req, { minLength: 1, maxLength: 8 }), (raw, reqs) => {
    const first = buildRouter(raw.map((e, i) => ({ ...e, value: i })));
    if (first.problems.length > 0) {
      assert.throws(() => first.rebind(raw.map((_, i) => i)));
      return;
    }
    rebound++;
    const later = raw.map((e, i) => ({ ...e, hostnames: [...e.hostnames], value: 100 + i }));
    assert.ok(sameRouteShapes(raw.map((e, i) => ({ ...e, value: i })), later));
    const again = first.rebind(later.map((e) => e.value));
    const fresh = buildRouter(later);
    assert.equal(again.router.size, fresh.router.size);
    for (const q of reqs) {
      assert.deepEqual(again.router.match(q.host, q.path, q.method, q.raw), fresh.router.match(q.host, q.path, q.method, q.raw), `${q.method} ${q.host}${q.path}`);
      assert.deepEqual(again.router.allowedMethods(q.host, q.path, q.raw), fresh.router.allowedMethods(q.host, q.path, q.raw));
      // Patched in place: the first router is the same object and answers with the new values.
      assert.equal(first.router, again.router);
    }
    assert.throws(() => first.rebind(later.map((e) => e.value)), /rebound already/);
    // Rebinding a rebound router works too (every version rebinds the one before), also when only some values change.
    const mixed = later.map((e, i) => (i % 2 === 0 ? e.value : e.value + 100));
    const third = again.rebind(mixed);
    const freshMixed = buildRouter(later.map((e, i) => ({ ...e, value: mixed[i] })));
    for (const q of reqs) {
      assert.deepEqual(third.router.match(q.host, q.path, q.method, q.raw), freshMixed.router.match(q.host, q.path, q.method, q.raw));
      assert.equal(again.router, third.router, 'patched in place');
    }
  }), { numRuns: 300 });
  assert.ok(rebound > 50, `only ${rebound} conflict-free cases`);
});

test('sameRouteShapes: any difference in hostnames, path, methods, headers or count is a different shape', () => {
  const base: RouteEntry<number> = { hostnames: ['a.x.com'], path: '/a/{id}', methods: ['GET'], headers: [{ name: 'x-v', exact: '1' }], value: 1 };
  assert.ok(sameRouteShapes([base], [{ ...base, value: 2, headers: [{ name: 'x-v', exact: '1' }] }]));
  for (const other of [
    { ...base, hostnames: ['b.x.com'] }, { ...base, hostnames: [] }, { ...base, path: '/a/{id}/b' }, { ...base, methods: ['POST'] },
    { ...base, methods: ['GET', 'POST'] }, { ...base, headers: [] }, { ...base, headers: [{ name: 'x-v', prefix: '1' }] },
  ]) assert.equal(sameRouteShapes([base], [other]), false, JSON.stringify(other));
  assert.equal(sameRouteShapes([base], [base, base]), false);
});

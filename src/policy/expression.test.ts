// Tests for compiling and evaluating CEL expressions: load-time problems with offsets, cost limits, evaluation, laziness, the fast path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileExpression, DEFAULT_MAX_COST, ExpressionError, MAX_SOURCE_LENGTH, type CompiledExpression } from './expression.ts';
import { buildExpressionContext, CAPS, type ExpressionSource } from './expression-context.ts';

function source(over: Partial<ExpressionSource> = {}): ExpressionSource {
  return {
    method: 'GET',
    path: '/orders/7',
    queryString: '?a=1&a=2',
    headers: ['Host', 'example.com', 'X-A', 'b', 'authorization', 'Bearer abc.def', 'x-n', '42'],
    clientIp: '203.0.113.9',
    matchedParameters: () => new Map([['id', '7']]),
    originalPath: '/orders/7',
    originalQueryString: '?a=1&a=2',
    requestBody: () => '{"id":7}',
    response: null,
    variables: new Map<string, unknown>([['count', 3n], ['who', 'ann']]),
    subscription: { id: 'sub_1', name: 'gold-1', scope: 'product:gold' },
    product: 'gold',
    api: { name: 'orders', path: '/orders', version: 'v2' },
    operation: { id: 'get-order', method: 'GET', urlTemplate: '/orders/{id}' },
    claims: { sub: 'u1', groups: ['eng', 'ops'], exp: 1_700_000_000 },
    lastError: null,
    requestId: 'r-1',
    deployment: { region: 'eu-north', gatewayId: 'gw-1' },
    ...over,
  };
}

function compile(src: string, opts?: { maxCost?: number; noFastPath?: boolean }): CompiledExpression {
  const r = compileExpression(src, opts);
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.problems));
  return r.expr;
}

function run(src: string, over: Partial<ExpressionSource> = {}): unknown {
  return compile(src).evaluate(buildExpressionContext(source(over)));
}

/** The problems of a source that must not compile, with the text each one points at. */
function problems(src: string, opts?: { maxCost?: number }): { message: string; at: string }[] {
  const r = compileExpression(src, opts);
  assert.equal(r.ok, false, `${src} compiled`);
  return r.ok ? [] : r.problems.map((p) => ({ message: p.message, at: src.slice(p.offset, p.offset + (p.length ?? 0)) }));
}

function runtimeError(fn: () => unknown): ExpressionError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ExpressionError, String(err));
    return err;
  }
  assert.fail('no error');
}

test('syntax errors point at the offending token', () => {
  const [p] = problems('context.Request.Method == "GET" &&& true');
  assert.match(p.message, /Unexpected/);
  assert.equal(p.at, '&');
  const [q] = problems('context.Request.Headers["x"');
  assert.match(q.message, /Unexpected|Expected/);
});

test('unknown context fields are reported at their place, and the key is never there', () => {
  assert.deepEqual(problems('context.Request.Method == "GET" && context.Subscription.Key == "k"'), [
    {
      message: 'context.Subscription has no field "Key" (subscription keys are never exposed to expressions); fields: Id, Name, Scope',
      at: 'context.Subscription.Key',
    },
  ]);
  const [p] = problems('size(context.Reqest.Headers) > 0');
  assert.match(p.message, /^context has no field "Reqest"; fields: Request, Response,/);
  assert.equal(p.at, 'context.Reqest');
  assert.equal(problems('context.Request.Url.Host')[0].at, 'context.Request.Url.Host');
});

test('other load-time problems: bare or computed context, upper-case header keys, types, unknown names', () => {
  assert.deepEqual(problems('size(context) > 1'), [{ message: 'context must be followed by a field, e.g. context.Request.Method', at: 'context' }]);
  assert.deepEqual(problems('context.Request[context.Variables.f] == "x"'), [
    { message: 'fields of context.Request must be named, not computed', at: 'context.Variables.f' },
  ]);
  assert.deepEqual(problems('context.Request.Headers["X-Api-Version"] == "2"'), [
    { message: 'header names in context.Request.Headers are lower-case: write "x-api-version"', at: 'context.Request.Headers["X-Api-Version"]' },
  ]);
  assert.deepEqual(problems('context.Request.Method + 1'), [{ message: 'no such overload: string + int', at: 'context.Request.Method + 1' }]);
  assert.deepEqual(problems('context.Response.StatusCode == "200"'), [{ message: 'no such overload: int == string', at: 'context.Response.StatusCode == "200"' }]);
  assert.deepEqual(problems('request.path == "/"'), [{ message: 'Unknown variable: request', at: 'request' }]);
  assert.deepEqual(problems('context.Request.Method.nope()')[0].at, 'context.Request.Method.nope()');
  assert.match(problems(`"${'x'.repeat(MAX_SOURCE_LENGTH)}"`)[0].message, /over the limit of 8192/);
  // A loop variable may shadow `context`.
  assert.equal(run('[1, 2].all(context, context > 0)'), true);
});

test('matches: the pattern must be a literal RE2 pattern, checked at load', () => {
  assert.deepEqual(problems('context.Request.Method.matches(context.Variables.re)'), [
    { message: 'the pattern of matches() must be a string literal (it is compiled when the config loads)', at: 'context.Variables.re' },
  ]);
  const [p] = problems('context.Request.Path == "" || context.Request.Method.matches("(?=G)ET")');
  assert.match(p.message, /not supported by the linear-time engine \(RE2\)/);
  assert.equal(p.at, '"(?=G)ET"');
  // Offsets stay right after the rename to the RE2 function.
  const [q] = problems('context.Request.Method.matches("G") && context.Request.Method.matches(1)');
  assert.match(q.message, /matches\(int\)|pattern of matches/);
  assert.doesNotMatch(q.message, /__re2__/);
  assert.match(problems('"a".__re2__("a")')[0].message, /unknown function __re2__/);
});

test('matches runs on RE2: a catastrophic pattern finishes at once', () => {
  const aaa = `${'a'.repeat(30)}!`;
  const e = compile('context.Request.Headers["x-a"].matches("(a+)+$")');
  const t0 = performance.now();
  assert.equal(e.evaluate(buildExpressionContext(source({ headers: ['x-a', aaa] }))), false);
  assert.ok(performance.now() - t0 < 100);
  assert.equal(run('context.Request.Headers["x-a"].matches("(a+)+$")', { headers: ['x-a', 'aaa'] }), true);
  // RE2 syntax, a parenthesised receiver, a comment before the dot, the function form.
  assert.equal(run('(context.Request.Method + "é").matches("^\\\\pL+$")'), true);
  assert.equal(run('context.Request.Method // the verb\n  .matches("^G")'), true);
  assert.equal(run('matches(context.Request.Method, "T$")'), true);
});

test('cost: nested comprehensions and long matches chains over request data are rejected', () => {
  const H = 'context.Request.Headers';
  const [nested] = problems(`${H}.all(a, ${H}.all(b, a != b))`);
  assert.match(nested.message, /^estimated cost [\d,]+ is over the limit of 100,000 \(worst case, with request data at its size caps\); most of it is `a != b`/);
  assert.equal(nested.at, 'a != b');
  const chain = Array.from({ length: 13 }, (_, i) => `${H}["h${i}"].matches("x")`).join(' || ');
  const [c] = problems(chain);
  assert.match(c.message, /estimated cost 106,\d{3} is over the limit/);
  assert.equal(compileExpression(chain.split(' || ').slice(0, 12).join(' || ')).ok, true, 'twelve fit');
  assert.equal(problems('context.Request.Body.matches("DROP TABLE")').length, 1);
  const [v] = problems(`${H}.exists(k, ${H}[k].matches("evil"))`);
  assert.equal(v.at, `${H}[k].matches("evil")`);
  // The limit is an option.
  const raised = compile('context.Request.Body.matches("DROP TABLE")', { maxCost: 1_000_000 });
  assert.ok(raised.cost > DEFAULT_MAX_COST);
  assert.equal(problems('context.Request.Headers["x"].contains("y")', { maxCost: 10 }).length, 1);
});

test('evaluation over a built context', () => {
  const cases: [string, unknown][] = [
    ['context.Request.Method', 'GET'],
    ['context.Request.Url.Path.startsWith("/orders/")', true],
    ['context.Request.Url.Query["a"]', '1,2'],
    ['context.Request.Url.QueryString', 'a=1&a=2'],
    ['context.Request.Headers["x-a"]', 'b'],
    ['context.Request.Headers.authorization.startsWith("Bearer ")', true],
    ['"host" in context.Request.Headers && !("x-z" in context.Request.Headers)', true],
    ['int(context.Request.Headers["x-n"]) + 1', 43n],
    ['context.Request.Headers.exists(k, k.startsWith("x-"))', true],
    ['context.Request.IpAddress', '203.0.113.9'],
    ['context.Request.Body.contains("\\"id\\":7")', true],
    ['context.Subscription.Id == "sub_1" && context.Product.Name == "gold"', true],
    ['context.Api.Name + "/" + context.Api.Version', 'orders/v2'],
    ['context.Operation.UrlTemplate', '/orders/{id}'],
    ['"eng" in context.Claims.groups && context.User.sub == "u1"', true],
    ['context.Claims.exp > 1600000000', true],
    ['context.Variables.count * 2', 6n],
    ['has(context.Variables.who) && !has(context.Variables.nobody)', true],
    ['has(context.Response)', false],
    ['has(context.LastError) ? context.LastError.Reason : "none"', 'none'],
    ['context.RequestId + "@" + context.Deployment.Region', 'r-1@eu-north'],
    ['context.Request.Headers.filter(k, k.startsWith("x-")).size()', 2n],
  ];
  for (const [src, want] of cases) assert.deepEqual(run(src), want, src);
  const withResponse = source({ response: { status: 404, headers: ['Content-Type', 'text/plain'], body: () => 'missing' } });
  const e = compile('has(context.Response) && context.Response.StatusCode == 404 && context.Response.Headers["content-type"] == "text/plain"');
  assert.equal(e.evaluate(buildExpressionContext(withResponse)), true);
  assert.equal(e.evaluate(buildExpressionContext(source())), false);
});

test('runtime errors are ExpressionErrors with a clear message and a place', () => {
  const missing = runtimeError(() => run('context.Request.Headers["x-missing"].size() > 0'));
  assert.equal(missing.code, 'no_such_key');
  assert.equal(missing.message, 'No such key: x-missing');
  const src = 'context.Request.Method == "GET" && context.Response.StatusCode == 200';
  const noResponse = runtimeError(() => run(src));
  assert.equal(noResponse.code, 'unavailable');
  assert.equal(noResponse.message, 'context.Response is not available: there is no response yet');
  assert.equal(src.slice(noResponse.offset, noResponse.offset + noResponse.length), 'Response');
  const div = runtimeError(() => run('context.Variables.count / 0 > 1'));
  assert.match(div.message, /division by zero/);
  const big = runtimeError(() => run('context.Request.Body.contains("x")', { requestBody: () => 'x'.repeat(CAPS.body + 1) }));
  assert.equal(big.code, 'over_cap');
  assert.match(big.message, /context.Request.Body cannot be read by expressions: it is 262145 characters long/);
  // CEL's || absorbs an error when the other side is true.
  assert.equal(run('true || context.Response.StatusCode == 200'), true);
});

test('reads lists the areas an expression touches, so the pipeline knows what to buffer', () => {
  const reads = (src: string): string[] => [...compile(src).reads].sort();
  assert.deepEqual(reads('context.Request.Headers["x-a"] == "b"'), ['Request.Headers']);
  assert.deepEqual(reads('context.Request.Body.contains("a") || context.Variables.x == 1'), ['Request.Body', 'Variables']);
  assert.deepEqual(reads('has(context.Response) && context.Response.Body.size() > 0'), ['Response.Body']);
  assert.deepEqual(reads('has(context.Request.Body)'), []);
  assert.deepEqual(reads('context.User.sub == context.Claims.sub'), ['Claims']);
  assert.deepEqual(reads('context.Request.Url.Query.a == context.Subscription.Id'), ['Request.Url', 'Subscription']);
  // A whole object used as a value: every field is read.
  assert.deepEqual(reads('[context.Request][0].Method == "GET"'), ['Request.Body', 'Request.Headers', 'Request.IpAddress', 'Request.MatchedParameters', 'Request.Method', 'Request.OriginalUrl', 'Request.Url']);
  assert.equal(run('[context.Request][0].Method == "GET"'), true);
});

test('the body getter is not called unless the expression reads the body', () => {
  for (const noFastPath of [false, true]) {
    let calls = 0;
    const s = source({ requestBody: () => (calls++, 'payload') });
    for (const src of ['context.Request.Method == "GET"', 'context.Request.Headers.exists(k, k == "host")', 'has(context.Request.Body)', 'context.Variables.who']) {
      compile(src, { noFastPath }).evaluate(buildExpressionContext(s));
    }
    assert.equal(calls, 0);
    assert.equal(compile('context.Request.Body.startsWith("pay")', { noFastPath }).evaluate(buildExpressionContext(s)), true);
    assert.equal(calls, 1);
  }
});

test('simple paths take the fast path: well under a microsecond per evaluation', () => {
  const s = source();
  for (const src of ['context.Subscription.Id', 'context.Request.Headers["x-a"] == "b"']) {
    const e = compile(src);
    const n = 20_000;
    // Best of several batches: other test processes share the CPU.
    let ns = Infinity;
    for (let batch = 0; batch < 10; batch++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) e.evaluate(buildExpressionContext(s));
      ns = Math.min(ns, Number(process.hrtime.bigint() - t0) / n);
    }
    assert.ok(ns < 1000, `${src}: ${ns.toFixed(0)} ns per evaluation (context built each time)`);
  }
});

const FAST_SHAPES = [
  'context.Subscription.Id',
  'context.Subscription.Name == "gold"',
  'context.Product.Name != ""',
  'context.Request.Method == "GET"',
  'context.Request.Url.Path',
  'context.Request.Url.Query["a"]',
  'context.Request.Url.Query.b == "1"',
  'context.Request.IpAddress',
  'context.Request.Headers["x-a"]',
  'context.Request.Headers["x-a"] == "b"',
  '"b" == context.Request.Headers["x-a"]',
  'context.Request.Headers.host != "example.com"',
  'context.Request.Headers["x-b"]',
  'context.Response.StatusCode == 200',
  'context.Response.StatusCode',
  'context.Response.Headers["x-a"]',
  'context.Variables.who',
  'context.Variables["count"]',
  'context.Claims.sub',
  'context.User["groups"]',
  'context.LastError.Reason == "x"',
  'context.RequestId',
  'context.Deployment.GatewayId == "gw-1"',
];

function outcome(e: CompiledExpression, ctx: ExpressionSource): unknown {
  try {
    return { value: e.evaluate(buildExpressionContext(ctx)) };
  } catch (err) {
    assert.ok(err instanceof ExpressionError, String(err));
    return { code: err.code, message: err.message };
  }
}

test('the fast path and the interpreter agree (property)', () => {
  const pairs = FAST_SHAPES.map((src) => [compile(src), compile(src, { noFastPath: true })] as const);
  const name = fc.constantFrom('x-a', 'X-A', 'x-b', 'Host', 'host', 'x-c');
  const value = fc.oneof(fc.constantFrom('b', 'example.com', '', 'b, b'), fc.string({ maxLength: 6 }), fc.constant('v'.repeat(CAPS.headerValue + 1)));
  const headers = fc.array(fc.tuple(name, value), { maxLength: 6 }).map((l) => l.flat());
  const arb = fc.record({
    headers,
    resHeaders: headers,
    method: fc.constantFrom('GET', 'POST'),
    query: fc.constantFrom('', '?a=1', '?b=1&a=2&a=3', `?a=${'q'.repeat(CAPS.queryValue + 1)}`),
    status: fc.option(fc.constantFrom(200, 404), { nil: null }),
    sub: fc.option(fc.constantFrom('gold', 'silver'), { nil: null }),
    who: fc.option(fc.constantFrom('ann', 'w'.repeat(CAPS.variables.string + 1)), { nil: null }),
    lastError: fc.boolean(),
  });
  fc.assert(
    fc.property(arb, (r) => {
      const ctx = source({
        headers: r.headers,
        method: r.method,
        queryString: r.query,
        response: r.status === null ? null : { status: r.status, headers: r.resHeaders, body: () => '' },
        subscription: r.sub === null ? null : { id: `sub_${r.sub}`, name: r.sub, scope: 'all' },
        product: r.sub,
        variables: new Map(r.who === null ? [] : [['who', r.who]]),
        lastError: r.lastError ? { source: 's', reason: 'x', message: 'm', scope: 'api', section: 'inbound', path: 'inbound[0]' } : null,
      });
      for (const [fast, slow] of pairs) assert.deepEqual(outcome(fast, ctx), outcome(slow, ctx), fast.source);
    }),
    { numRuns: 300 },
  );
});

test('compiling never throws: any text gives an expression or problems inside the source (property)', () => {
  const piece = fc.constantFrom('context', '.', 'Request', 'Headers', '["x"]', '(', ')', '[', ']', '{', '}', ',', ':', ' ', '"a"', '1', '==', '&&', '!', '?', 'matches', 'has', 'all', 'k', '\n//c\n', 'cel.bind');
  const text = fc.oneof(fc.string({ maxLength: 40 }), fc.array(piece, { maxLength: 20 }).map((a) => a.join('')));
  fc.assert(
    fc.property(text, (src) => {
      const r = compileExpression(src);
      if (r.ok) return;
      assert.ok(r.problems.length > 0);
      for (const p of r.problems) {
        assert.ok(p.offset >= 0 && p.offset + (p.length ?? 0) <= src.length, `${JSON.stringify(src)}: ${JSON.stringify(p)}`);
        assert.ok(p.message.length > 0);
      }
    }),
    { numRuns: 500 },
  );
  assert.equal(compileExpression(`${'('.repeat(200)}1${')'.repeat(200)}`).ok, false, 'nesting is limited');
});

test('MatchedParameters and OriginalUrl read what the client sent', () => {
  const ctx = buildExpressionContext(source({ path: '/v2/items/7', originalPath: '/orders/7' }));
  assert.equal(compile('context.Request.MatchedParameters["id"]').evaluate(ctx), '7');
  assert.equal(compile('context.Request.OriginalUrl.Path + " -> " + context.Request.Url.Path').evaluate(ctx), '/orders/7 -> /v2/items/7');
  assert.equal(compile('"id" in context.Request.MatchedParameters').evaluate(ctx), true);
});

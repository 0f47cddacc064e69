// The ApiPolicy pipeline end to end in one process: scopes and `base`, each core policy, onError and LastError, streaming.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { startPolicyGateway, withGateway, call, GATEWAY } from './helpers/policy-gateway.ts';

let up: Upstream;
let other: Upstream;
let flaky: Upstream;
let flakyCount = 0;

before(async () => {
  up = await startUpstream();
  other = await startUpstream((req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-from': 'other' });
    res.end(`other ${req.url}`);
  });
  flaky = await startUpstream((_req, res) => {
    flakyCount++;
    if (flakyCount % 3 !== 0) {
      res.writeHead(503, { 'content-type': 'text/plain' });
      res.end('busy');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('finally');
  });
});

after(async () => {
  await up.close();
  await other.close();
  await flaky.close();
});

function base(extra = ''): string {
  return `${GATEWAY}---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: "${up.url}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: other }
spec: { url: "${other.url}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: flaky }
spec: { url: "${flaky.url}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: orders }
spec:
  path: /orders
  backend: up
  stripPath: true
  operations:
    - { name: get-order, methods: [GET], urlTemplate: "/{id}" }
    - { name: create-order, methods: [POST], urlTemplate: "/" }
    - { name: flaky, methods: [GET], urlTemplate: "/flaky/x", backend: flaky }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: plain }
spec: { path: /plain, backend: up }
${extra}`;
}

function policy(name: string, scope: string, body: string): string {
  return `---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: ${name} }
spec:
  scope: ${scope}
${body}`;
}


const get = call;

test('scopes merge global → api → operation where base appears, in order', async () => {
  const yaml = base(
    policy('g', '{ global: true }', `  inbound:
    - set-header: { name: x-order, value: global }
  outbound:
    - set-header: { name: x-out-global, value: "1" }
`) +
      policy('a', '{ api: orders }', `  inbound:
    - set-header: { name: x-api, value: api }
    - base: {}
    - set-header: { name: x-order, value: api, existsAction: append }
`) +
      policy('o', '{ api: orders, operation: get-order }', `  inbound:
    - base: {}
    - set-header: { name: x-op, value: op }
  outbound:
    - set-header: { name: x-out-op, value: "1" }
`),
  );
  await withGateway(yaml, async (g) => {
    const r = await get(`${g.url}/orders/42`);
    assert.equal(r.status, 200);
    const seen = r.json().headers;
    assert.equal(seen['x-api'], 'api');
    // global ran (via the api's base) before the api's append, and the operation's own policy after both.
    assert.equal(seen['x-order'], 'global,api');
    assert.equal(seen['x-op'], 'op');
    assert.equal(r.json().url, '/42');
    // The operation's outbound has no base: the global outbound is not inherited there.
    assert.equal(r.headers['x-out-op'], '1');
    assert.equal(r.headers['x-out-global'], undefined);
    // Another operation of the api inherits the api's inbound and the global outbound.
    const c = await get(`${g.url}/orders`, { method: 'POST', body: '{}' });
    assert.equal(c.status, 200);
    assert.equal(c.json().headers['x-op'], undefined);
    assert.equal(c.headers['x-out-global'], '1');
    // An Api with no policy of its own still gets the global one.
    const p = await get(`${g.url}/plain/x`);
    assert.equal(p.json().headers['x-order'], 'global');
    assert.equal(p.headers['x-out-global'], '1');
  });
});

test('a section without base drops the parent section entirely', async () => {
  const yaml = base(
    policy('g', '{ global: true }', `  inbound:
    - set-header: { name: x-global, value: "1" }
`) +
      policy('a', '{ api: orders }', `  inbound:
    - set-header: { name: x-api, value: "1" }
`),
  );
  await withGateway(yaml, async (g) => {
    const seen = (await get(`${g.url}/orders/1`)).json().headers;
    assert.equal(seen['x-api'], '1');
    assert.equal(seen['x-global'], undefined);
  });
});

test('set-header actions: skip keeps, delete removes, override replaces; response headers outbound', async () => {
  const yaml = base(
    policy('a', '{ api: orders }', `  inbound:
    - set-header: { name: x-keep, value: new, existsAction: skip }
    - set-header: { name: x-drop, existsAction: delete }
    - set-header: { name: x-over, value: new }
    - set-header: { name: x-many, values: [a, b] }
  outbound:
    - set-header: { name: content-type, existsAction: delete }
    - set-header: { name: set-cookie, values: ["a=1", "b=2"] }
`),
  );
  await withGateway(yaml, async (g) => {
    const r = await get(`${g.url}/orders/1`, { headers: { 'x-keep': 'old', 'x-drop': 'x', 'x-over': 'old' } });
    const seen = r.json().headers;
    assert.equal(seen['x-keep'], 'old');
    assert.equal(seen['x-drop'], undefined);
    assert.equal(seen['x-over'], 'new');
    assert.equal(seen['x-many'], 'a,b');
    assert.equal(r.headers['content-type'], undefined);
    // Set-Cookie values are never joined with commas.
    assert.deepEqual(r.headers['set-cookie'], ['a=1', 'b=2']);
  });
});

test('a protected header in set-header is a build problem, and the reason names the place', async () => {
  const yaml = base(policy('a', '{ api: orders }', `  inbound:
    - set-header: { name: Content-Length, value: "5" }
`));
  await assert.rejects(startPolicyGateway(yaml), /test\.yaml:\d+:\d+: set-header: the content-length header is the gateway's to set/);
});

test('return-response ends the pipeline: backend, outbound and onError do not run', async () => {
  const before = up.seen.length;
  const yaml = base(
    policy('a', '{ api: orders }', `  inbound:
    - return-response:
        status: 418
        headers: { x-teapot: ["yes"] }
        body: { brewed: false, id: "@(context.Request.MatchedParameters['id'])" }
    - set-header: { name: x-never, value: "1" }
  outbound:
    - set-header: { name: x-out, value: "1" }
`),
  );
  await withGateway(yaml, async (g) => {
    const r = await get(`${g.url}/orders/7`);
    assert.equal(r.status, 418);
    assert.equal(r.headers['x-teapot'], 'yes');
    assert.equal(r.headers['x-out'], undefined);
    assert.match(String(r.headers['content-type']), /application\/json/);
    assert.deepEqual(r.json(), { brewed: false, id: '7' });
    assert.equal(up.seen.length, before);
  });
});

test('return-response without attributes is an empty 200', async () => {
  const yaml = base(policy('a', '{ api: orders }', `  inbound:
    - return-response: {}
`));
  await withGateway(yaml, async (g) => {
    const r = await get(`${g.url}/orders/7`);
    assert.equal(r.status, 200);
    assert.equal(r.text, '');
    assert.equal(r.headers['content-length'], '0');
  });
});

test('check-header failure: configured status and message; onError sees LastError', async () => {
  const yaml = base(
    policy('a', '{ api: orders }', `  inbound:
    - check-header: { name: x-tenant, failedCheckHttpcode: 403, failedCheckErrorMessage: "Tenant required", ignoreCase: true, values: [acme, globex] }
  onError:
    - set-header: { name: x-error-reason, value: "@(context.LastError.Reason)" }
    - set-header: { name: x-error-source, value: "@(context.LastError.Source)" }
    - set-header: { name: x-error-scope, value: "@(context.LastError.Scope)" }
    - set-header: { name: x-error-path, value: "@(context.LastError.Path)" }
`),
  );
  await withGateway(yaml, async (g) => {
    const missing = await get(`${g.url}/orders/1`);
    assert.equal(missing.status, 403);
    assert.deepEqual(missing.json(), { statusCode: 403, message: 'Tenant required' });
    assert.equal(missing.headers['x-error-reason'], 'HeaderNotFound');
    assert.equal(missing.headers['x-error-source'], 'check-header');
    assert.equal(missing.headers['x-error-scope'], 'api');
    assert.equal(missing.headers['x-error-path'], 'spec.inbound[0]');
    const wrong = await get(`${g.url}/orders/1`, { headers: { 'x-tenant': 'initech' } });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.headers['x-error-reason'], 'HeaderValueNotAllowed');
    const ok = await get(`${g.url}/orders/1`, { headers: { 'x-tenant': 'ACME' } });
    assert.equal(ok.status, 200);
  });
});

test('ip-filter: API Management bodies for a caller that is not allowed and one that is blocked', async () => {
  const allow = base(policy('a', '{ api: orders }', `  inbound:
    - ip-filter: { action: allow, addresses: [10.0.0.0/8], addressRanges: [{ from: 192.168.0.1, to: 192.168.0.9 }] }
`));
  await withGateway(allow, async (g) => {
    const r = await get(`${g.url}/orders/1`);
    assert.equal(r.status, 403);
    assert.deepEqual(r.json(), { statusCode: 403, message: 'Caller IP address 127.0.0.1 is not allowed. Access denied.' });
  });
  const forbid = base(policy('a', '{ api: orders }', `  inbound:
    - ip-filter: { action: forbid, addressRanges: [{ from: 127.0.0.0, to: 127.0.0.5 }] }
`));
  await withGateway(forbid, async (g) => {
    const r = await get(`${g.url}/orders/1`);
    assert.equal(r.status, 403);
    assert.deepEqual(r.json(), { statusCode: 403, message: 'Caller IP address is blocked. Access denied.' });
    // Other Apis are not affected.
    assert.equal((await get(`${g.url}/plain/1`)).status, 200);
  });
});

test('rewrite-uri fills template parameters and copies unmatched query parameters', async () => {
  const yaml = base(policy('o', '{ api: orders, operation: get-order }', `  inbound:
    - rewrite-uri: { template: "/v2/items/{id}?view=full" }
`));
  await withGateway(yaml, async (g) => {
    assert.equal((await get(`${g.url}/orders/42?lang=en&view=x`)).json().url, '/v2/items/42?view=full&lang=en');
  });
  const noCopy = base(policy('o', '{ api: orders, operation: get-order }', `  inbound:
    - rewrite-uri: { template: "/v2/{id}", copyUnmatchedParams: false }
`));
  await withGateway(noCopy, async (g) => {
    assert.equal((await get(`${g.url}/orders/42?lang=en`)).json().url, '/v2/42');
  });
});

test('set-query-parameter, set-method and set-body change what the backend receives', async () => {
  const yaml = base(policy('o', '{ api: orders, operation: create-order }', `  inbound:
    - set-query-parameter: { name: source, value: gateway }
    - set-query-parameter: { name: debug, existsAction: delete }
    - set-method: { method: PUT }
    - set-body: { value: { wrapped: true, method: "@(context.Request.Method)" } }
`));
  await withGateway(yaml, async (g) => {
    const r = await get(`${g.url}/orders?debug=1&x=2`, { method: 'POST', body: 'original body' });
    const seen = r.json();
    assert.equal(seen.method, 'PUT');
    assert.equal(seen.url, '/?x=2&source=gateway');
    assert.deepEqual(JSON.parse(seen.body), { wrapped: true, method: 'PUT' });
    assert.equal(seen.headers['content-length'], String(Buffer.byteLength(seen.body)));
  });
});

test('choose runs the first branch whose condition holds, else otherwise', async () => {
  const yaml = base(policy('a', '{ api: orders }', `  inbound:
    - choose:
        when:
          - condition: '"x-tier" in context.Request.Headers && context.Request.Headers["x-tier"] == "gold"'
            policies:
              - set-header: { name: x-branch, value: gold }
          - condition: '"x-tier" in context.Request.Headers'
            policies:
              - set-header: { name: x-branch, value: other-tier }
        otherwise:
          - set-header: { name: x-branch, value: none }
`));
  await withGateway(yaml, async (g) => {
    assert.equal((await get(`${g.url}/orders/1`, { headers: { 'x-tier': 'gold' } })).json().headers['x-branch'], 'gold');
    assert.equal((await get(`${g.url}/orders/1`, { headers: { 'x-tier': 'silver' } })).json().headers['x-branch'], 'other-tier');
    assert.equal((await get(`${g.url}/orders/1`)).json().headers['x-branch'], 'none');
  });
});

test('a backend failure goes to onError with the API Management 500 body for apim-style Apis', async () => {
  const yaml = `${GATEWAY}---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: dead }
spec: { url: "http://127.0.0.1:1", retries: { attempts: 0 } }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: dead }
spec: { path: /dead, backend: dead, errorStyle: apim }
${policy('a', '{ api: dead }', `  onError:
    - set-header: { name: x-reason, value: "@(context.LastError.Reason)" }
    - set-header: { name: x-section, value: "@(context.LastError.Section)" }
`)}`;
  await withGateway(yaml, async (g) => {
    const r = await get(`${g.url}/dead/x`);
    assert.equal(r.status, 500);
    const body = r.json();
    assert.equal(body.statusCode, 500);
    assert.equal(body.message, 'Internal server error');
    assert.equal(body.activityId, r.headers['x-request-id']);
    assert.equal(r.headers['x-reason'], 'BackendConnectionFailure');
    assert.equal(r.headers['x-section'], 'backend');
  });
});

test('onError can replace the error response with return-response', async () => {
  const yaml = base(policy('a', '{ api: orders }', `  inbound:
    - check-header: { name: x-key, failedCheckHttpcode: 401, failedCheckErrorMessage: nope, ignoreCase: false }
  onError:
    - return-response:
        status: 400
        body: { error: "@(context.LastError.Message)" }
`));
  await withGateway(yaml, async (g) => {
    const r = await get(`${g.url}/orders/1`);
    assert.equal(r.status, 400);
    assert.deepEqual(r.json(), { error: 'Header x-key was not found in the request. Access denied.' });
  });
});

test('retry around forward-request retries while the condition holds', async () => {
  flakyCount = 0;
  const yaml = base(policy('o', '{ api: orders, operation: flaky }', `  backend:
    - retry:
        condition: context.Response.StatusCode == 503
        count: 3
        interval: 10ms
        policies:
          - forward-request: {}
`));
  await withGateway(yaml, async (g) => {
    const r = await get(`${g.url}/orders/flaky/x`);
    assert.equal(r.status, 200);
    assert.equal(r.text, 'finally');
    assert.equal(flakyCount, 3);
  });
});

test('set-backend-service sends to another Backend or a base URL', async () => {
  const yaml = base(
    policy('o', '{ api: orders, operation: get-order }', `  inbound:
    - set-backend-service: { backendId: other }
`) +
      policy('p', '{ api: plain }', `  inbound:
    - set-backend-service: { baseUrl: "${other.url}/base" }
`),
  );
  await withGateway(yaml, async (g) => {
    const r = await get(`${g.url}/orders/5`);
    assert.equal(r.headers['x-from'], 'other');
    assert.equal(r.text, 'other /5');
    const p = await get(`${g.url}/plain/q?a=1`);
    assert.equal(p.text, 'other /base/plain/q?a=1');
  });
});

test('a streamed 1 MiB response passes through outbound header policies intact', async () => {
  const big = await startUpstream((_req, res) => {
    const chunk = Buffer.alloc(64 * 1024, 'x');
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    let n = 0;
    const write = (): void => {
      while (n < 16) {
        n++;
        if (!res.write(chunk)) return void res.once('drain', write);
      }
      res.end();
    };
    write();
  });
  const yaml = `${GATEWAY}---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: big }
spec: { url: "${big.url}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: big }
spec: { path: /big, backend: big }
${policy('a', '{ api: big }', `  outbound:
    - set-header: { name: x-seen, value: "1" }
`)}`;
  try {
    await withGateway(yaml, async (g) => {
      const r = await request(`${g.url}/big/x`);
      const buf = Buffer.from(await r.body.arrayBuffer());
      assert.equal(r.statusCode, 200);
      assert.equal(r.headers['x-seen'], '1');
      assert.equal(buf.length, 1024 * 1024);
    });
  } finally {
    await big.close();
  }
});

test('a request body over maxBufferedBody is 413 when a policy must buffer it', async () => {
  const yaml = base(policy('o', '{ api: orders, operation: create-order }', `  inbound:
    - set-body: { value: replaced }
`)).replace('accessLog: { enabled: false }', 'accessLog: { enabled: false }\n  limits: { maxBufferedBody: 1KiB }');
  await withGateway(yaml, async (g) => {
    const r = await get(`${g.url}/orders`, { method: "POST", body: "x".repeat(4096) });
    assert.equal(r.status, 413);
    assert.ok(r.headers['x-request-id']);
    const small = await get(`${g.url}/orders`, { method: 'POST', body: 'x'.repeat(100) });
    assert.equal(small.json().body, 'replaced');
  });
});

test('cors: preflight answered by the gateway, allowed origins get headers, others an empty 200', async () => {
  const yaml = base(policy('a', '{ api: orders }', `  inbound:
    - cors:
        allowedOrigins: ["https://app.example"]
        allowedMethods: [GET, POST]
        allowedHeaders: [content-type, x-tenant]
        exposeHeaders: [x-request-id]
        preflightResultMaxAge: 600
`));
  const before = up.seen.length;
  await withGateway(yaml, async (g) => {
    const pre = await get(`${g.url}/orders/1`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example:443', 'access-control-request-method': 'GET', 'access-control-request-headers': 'Content-Type' },
    });
    assert.equal(pre.status, 200);
    assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example:443');
    assert.equal(pre.headers['access-control-allow-methods'], 'GET, POST');
    assert.equal(pre.headers['access-control-allow-headers'], 'content-type');
    assert.equal(pre.headers['access-control-max-age'], '600');
    assert.equal(up.seen.length, before, 'a preflight never reaches the backend');
    const badPre = await get(`${g.url}/orders/1`, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'DELETE' } });
    assert.equal(badPre.status, 200);
    assert.equal(badPre.headers['access-control-allow-origin'], undefined);
    const real = await get(`${g.url}/orders/1`, { headers: { origin: 'https://app.example' } });
    assert.equal(real.status, 200);
    assert.equal(real.headers['access-control-allow-origin'], 'https://app.example');
    assert.equal(real.headers['access-control-expose-headers'], 'x-request-id');
    assert.equal(real.json().url, '/1');
    const foreign = await get(`${g.url}/orders/1`, { headers: { origin: 'https://evil.example' } });
    assert.equal(foreign.status, 200);
    assert.equal(foreign.text, '');
    assert.equal(foreign.headers['access-control-allow-origin'], undefined);
  });
});

test('rate-limit-by-key: exactly `calls` per window per key, then 429 with Retry-After and API Management\'s body', async () => {
  const yaml = base(policy('a', '{ api: orders }', `  inbound:
    - rate-limit-by-key:
        calls: 3
        renewalPeriod: 60s
        counterKey: context.Request.Headers["x-client"]
        remainingCallsHeaderName: x-remaining
`));
  await withGateway(yaml, async (g) => {
    const a = { headers: { 'x-client': 'a' } };
    const remaining: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await get(`${g.url}/orders/1`, a);
      assert.equal(r.status, 200);
      remaining.push(r.headers['x-remaining']);
    }
    assert.deepEqual(remaining, ['2', '1', '0']);
    const over = await get(`${g.url}/orders/1`, a);
    assert.equal(over.status, 429);
    const wait = Number(over.headers['retry-after']);
    assert.ok(wait >= 1 && wait <= 60, `Retry-After ${wait}`);
    assert.deepEqual(over.json(), { statusCode: 429, message: `Rate limit is exceeded. Try again in ${wait} seconds.` });
    // Another key has its own counter.
    assert.equal((await get(`${g.url}/orders/1`, { headers: { 'x-client': 'b' } })).status, 200);
  });
});

test('rate-limit-by-key with incrementCondition counts only matching responses', async () => {
  const yaml = base(policy('a', '{ api: orders }', `  inbound:
    - rate-limit-by-key:
        calls: 2
        renewalPeriod: 60s
        counterKey: '"fixed"'
        incrementCondition: context.Response.StatusCode == 404
`));
  await withGateway(yaml, async (g) => {
    // 200s are not counted.
    for (let i = 0; i < 4; i++) assert.equal((await get(`${g.url}/orders/1`)).status, 200);
  });
});

test('quota-by-key: 403 with the time to replenishment once the calls are used', async () => {
  const yaml = base(policy('a', '{ api: orders }', `  inbound:
    - quota-by-key: { calls: 2, renewalPeriod: 3600s, counterKey: context.Request.IpAddress }
`));
  await withGateway(yaml, async (g) => {
    assert.equal((await get(`${g.url}/orders/1`)).status, 200);
    assert.equal((await get(`${g.url}/orders/1`)).status, 200);
    const over = await get(`${g.url}/orders/1`);
    assert.equal(over.status, 403);
    assert.match(over.json().message, /^Out of call volume quota\. Quota will be replenished in \d\d:\d\d:\d\d\.$/);
    assert.ok(Number(over.headers['retry-after']) > 0);
  });
});

test('expressions are checked at load: a bad one and a too costly one are problems with file, line and column', async () => {
  const { parseCheckedConfig } = await import('../src/policy/load-checked.ts');
  const { formatProblems } = await import('../src/model/load-config.ts');
  const yaml = base(policy('a', '{ api: orders }', `  inbound:
    - set-header: { name: x-a, value: "@(context.Request.Nope)" }
    - choose:
        when:
          - condition: context.Request.Headers.all(a, context.Request.Headers.all(b, context.Request.Headers.all(c, a + b + c != "")))
            policies: [{ set-header: { name: x-b, value: "1" } }]
`));
  const r = parseCheckedConfig(yaml, 'p.yaml');
  assert.equal(r.config, undefined);
  const out = formatProblems(r.problems);
  const lines = yaml.split('\n');
  const nope = lines.findIndex((l) => l.includes('context.Request.Nope')) + 1;
  const costly = lines.findIndex((l) => l.includes('Headers.all(a')) + 1;
  assert.match(out, new RegExp(`^p\\.yaml:${nope}:\\d+: expression: .*Nope`, 'm'));
  assert.match(out, new RegExp(`^p\\.yaml:${costly}:\\d+: expression: .*cost`, 'm'));
  // A running gateway would have kept its previous config: startPolicyGateway refuses it the same way.
  await assert.rejects(startPolicyGateway(yaml), /expression/);
});

test('an @(…) expression in a block scalar: the problem is placed on its own line and column inside the block', async () => {
  const { parseCheckedConfig } = await import('../src/policy/load-checked.ts');
  const { formatProblems } = await import('../src/model/load-config.ts');
  const yaml = base(policy('a', '{ api: orders }', `  inbound:
    - set-body:
        value: |
          @(context.Request.Method + " " +
            context.Request.Nope)
`));
  const r = parseCheckedConfig(yaml, 'p.yaml');
  const lines = yaml.split('\n');
  const line = lines.findIndex((l) => l.includes('context.Request.Nope')) + 1;
  const col = lines[line - 1].indexOf('context.Request.Nope') + 1;
  const out = formatProblems(r.problems);
  const m = new RegExp(`^p\\.yaml:${line}:(\\d+): expression: .*Nope`, 'm').exec(out);
  assert.ok(m, out);
  // The column lands within the expression on that line (the parser points at the member it cannot resolve).
  assert.ok(Number(m[1]) >= col && Number(m[1]) <= col + 'context.Request.Nope'.length, `${out} (want ${line}:${col}…)`);
});

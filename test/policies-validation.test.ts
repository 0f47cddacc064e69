// The validation policies end to end against the imported petstore definition: validate-content (request and
// response bodies, sizes, content types), validate-parameters, validate-headers and validate-status-code, each
// under prevent (API Management's 400 / 502 and messages) and detect (the errors variable, the request goes on).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { request } from 'undici';
import { startUpstream, type Upstream } from './helpers/upstream.ts';
import { startPolicyGateway, GATEWAY, type PolicyGateway } from './helpers/policy-gateway.ts';

const PETSTORE = resolve(import.meta.dirname, 'fixtures/openapi/petstore.openapi.yaml');
const INTERNAL = 'The request could not be processed due to an internal error. Contact the API owner.';

let echo: Upstream;
let pets: Upstream;

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

before(async () => {
  echo = await startUpstream();
  // Answers by path: what each response-side test needs the backend to get wrong (or right).
  pets = await startUpstream((req, res) => {
    const url = req.url ?? '';
    if (url === '/pets/7') return send(res, 200, { id: 7, name: 'Rex', tag: null });
    if (url === '/pets/8') return send(res, 200, { id: 8, name: 'Rex', secret: 'internal' });
    if (url === '/pets/13') return send(res, 200, { id: 'thirteen', name: 'Tom' });
    if (url === '/pets/404') return send(res, 404, { code: 404, message: 'pet not found' });
    if (url === '/pets/500') return send(res, 500, { error: 'NullReferenceException at PetRepository.cs:42' });
    if (url === '/pets/text') {
      res.writeHead(200, { 'content-type': 'text/html' });
      return res.end('<p>Rex</p>');
    }
    if (url === '/pets?next=bad') return send(res, 200, [{ id: 1, name: 'Rex' }], { 'x-next': 'not a uri' });
    if (url === '/pets?next=twice') {
      res.setHeader('x-next', ['https://pets.example/2', 'https://pets.example/3']);
      return send(res, 200, [{ id: 1, name: 'Rex' }]);
    }
    if (url === '/pets?leak=1') return send(res, 200, [{ id: 1, name: 'Rex' }], { 'x-powered-by': 'PetServer/1.2', 'x-next': 'https://pets.example/2' });
    if (url.startsWith('/pets?') || url === '/pets') return send(res, 200, [{ id: 1, name: 'Rex' }], { 'x-next': 'https://pets.example/2' });
    return send(res, 200, { id: 1, name: 'Rex' });
  });
});

after(async () => {
  await echo.close();
  await pets.close();
});

/** The petstore Api twice: `/v2` → the echo backend (request side), `/store` → the scripted one (response side). */
function config(policy: string, responsePolicy = ''): string {
  return `${GATEWAY}---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: echo }
spec: { url: "${echo.url}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: pets }
spec: { url: "${pets.url}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: petstore }
spec:
  path: /v2
  backend: echo
  stripPath: true
  import: { openapi: "${PETSTORE}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: store }
spec:
  path: /store
  backend: pets
  stripPath: true
  import: { openapi: "${PETSTORE}" }
---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: requests }
spec:
  scope: { api: petstore }
${policy}${
    responsePolicy === ''
      ? ''
      : `---
apiVersion: lockgate.dev/v1alpha1
kind: ApiPolicy
metadata: { name: responses }
spec:
  scope: { api: store }
${responsePolicy}`
  }`;
}

async function withGateway(yaml: string, fn: (g: PolicyGateway) => Promise<void>): Promise<void> {
  const g = await startPolicyGateway(yaml);
  try {
    await fn(g);
  } finally {
    await g.close();
  }
}

async function call(url: string, opts: Parameters<typeof request>[1] = {}) {
  const r = await request(url, opts);
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

const postJson = (body: string, headers: Record<string, string> = {}) => ({ method: 'POST' as const, body, headers: { 'content-type': 'application/json', ...headers } });

/** onError shows LastError on the response, so tests can read what API Management would log. */
const SHOW_LAST_ERROR = `  onError:
    - set-header: { name: x-source, value: "@(context.LastError.Source)" }
    - set-header: { name: x-reason, value: "@(context.LastError.Reason)" }
    - set-header: { name: x-last-error, value: "@(context.LastError.Message)" }
`;

test('validate-content (prevent): a valid body passes; a body against the schema gets 400 with API Management\'s message', async () => {
  const yaml = config(`  inbound:
    - validate-content:
        unspecifiedContentTypeAction: prevent
        maxSize: 1024
        sizeExceededAction: prevent
        errorsVariableName: requestBodyValidation
        content:
          - { type: application/json, validateAs: json, action: prevent }
${SHOW_LAST_ERROR}`);
  await withGateway(yaml, async (g) => {
    const before = echo.seen.length;
    const ok = await call(`${g.url}/v2/pets`, postJson('{"name":"Rex","tag":null,"birthDate":"2019-04-01"}'));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.json().body, '{"name":"Rex","tag":null,"birthDate":"2019-04-01"}', 'the backend got the body as sent');
    assert.equal(echo.seen.length, before + 1);

    const bad = await call(`${g.url}/v2/pets`, postJson('{\n  "name": 5,\n  "weight": -1\n}'));
    assert.equal(bad.status, 400);
    const message = 'Body of the request does not conform to the definition NewPet, which is associated with the content type application/json. name: must be string. Line: 2, Position: 11';
    assert.deepEqual(bad.json(), { statusCode: 400, message });
    assert.equal(bad.headers['x-source'], 'validate-content');
    assert.equal(bad.headers['x-reason'], 'Bad request');
    assert.equal(bad.headers['x-last-error'], message);
    assert.equal(echo.seen.length, before + 1, 'the backend never saw the invalid request');

    const missing = await call(`${g.url}/v2/pets`, postJson('{"tag":"dog"}'));
    assert.equal(missing.status, 400);
    assert.match(String(missing.json().message), /definition NewPet, .* Missing required property "name"\. Line: 1, Position: 1$/);

    const notJson = await call(`${g.url}/v2/pets`, postJson('{"name":'));
    assert.equal(notJson.status, 400);
    assert.match(String(notJson.json().message), /^Body of the request does not conform to the definition NewPet, which is associated with the content type application\/json\. .*JSON/);

    // A content type the operation does not declare, and one without a content-element: declared but not validated.
    const text = await call(`${g.url}/v2/pets`, { method: 'POST', body: 'Rex', headers: { 'content-type': 'text/plain' } });
    assert.deepEqual(text.json(), { statusCode: 400, message: 'Unspecified content type text/plain is not allowed.' });
    const form = await call(`${g.url}/v2/pets`, { method: 'POST', body: 'name=', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(form.status, 200);

    // Too large by Content-Length: refused before the body is read.
    const big = JSON.stringify({ name: 'x'.repeat(2000) });
    const large = await call(`${g.url}/v2/pets`, postJson(big));
    assert.deepEqual(large.json(), { statusCode: 400, message: `Request's body is ${big.length} bytes long and it exceeds the limit of 1024 bytes.` });
    assert.equal(large.headers['x-last-error'], `Request's body is ${big.length} bytes long and it exceeds the configured limit of 1024 bytes.`);
    // Too large without Content-Length: refused once more than maxSize bytes have arrived.
    async function* chunked() {
      for (let i = 0; i < 4; i++) yield Buffer.from(big.slice(i * 500, (i + 1) * 500));
    }
    const streamed = await call(`${g.url}/v2/pets`, { method: 'POST', body: Readable.from(chunked()), headers: { 'content-type': 'application/json' } });
    assert.equal(streamed.status, 400);
    const m = /^Request's body is (\d+) bytes long and it exceeds the limit of 1024 bytes\.$/.exec(String(streamed.json().message));
    assert.ok(m && Number(m[1]) > 1024 && Number(m[1]) <= 2000, String(streamed.json().message));
    assert.equal(echo.seen.length, before + 2);
    // A GET has no body: nothing to validate.
    assert.equal((await call(`${g.url}/v2/pets/1`)).status, 200);
  });
});

test('validate-content (detect): the request goes on and the errors variable holds API Management\'s records', async () => {
  const yaml = config(`  inbound:
    - validate-content:
        unspecifiedContentTypeAction: detect
        maxSize: 102400
        sizeExceededAction: detect
        errorsVariableName: requestBodyValidation
        contentTypeMap:
          missingContentTypeValue: application/json
          types: [{ from: application/hal+json, to: application/json }]
        content:
          - { type: application/json, action: detect }
    - set-header: { name: x-errors, value: '@(string(size(context.Variables["requestBodyValidation"])))' }
    - set-body: { value: '@(context.Variables["requestBodyValidation"])' }
`);
  await withGateway(yaml, async (g) => {
    const r = await call(`${g.url}/v2/pets`, postJson('{"name":"","weight":0,"extra":true}', { 'content-type': 'application/hal+json' }));
    assert.equal(r.status, 200);
    const seen = r.json();
    assert.equal(seen.headers && (seen.headers as Record<string, string>)['x-errors'], '3');
    const records = JSON.parse(String(seen.body)) as Array<Record<string, string>>;
    assert.deepEqual(records, [
      {
        Name: 'application/json',
        Type: 'RequestBody',
        ValidationRule: 'IncorrectMessage',
        Details: 'Body of the request does not conform to the definition NewPet, which is associated with the content type application/json. name: must NOT have fewer than 1 characters. Line: 1, Position: 9',
        Action: 'detect',
      },
      {
        Name: 'application/json',
        Type: 'RequestBody',
        ValidationRule: 'IncorrectMessage',
        Details: 'Body of the request does not conform to the definition NewPet, which is associated with the content type application/json. name: must match pattern "^\\S(.*\\S)?$". Line: 1, Position: 9',
        Action: 'detect',
      },
      {
        Name: 'application/json',
        Type: 'RequestBody',
        ValidationRule: 'IncorrectMessage',
        Details: 'Body of the request does not conform to the definition NewPet, which is associated with the content type application/json. weight: must be > 0. Line: 1, Position: 21',
        Action: 'detect',
      },
    ]);
    // No Content-Type: validated as application/json (missingContentTypeValue); a valid body leaves an empty list.
    const none = await call(`${g.url}/v2/pets`, { method: 'POST', body: '{"name":"Rex"}' });
    assert.equal(none.status, 200);
    assert.equal((none.json().headers as Record<string, string>)['x-errors'], '0');
    const text = await call(`${g.url}/v2/pets`, { method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } });
    assert.deepEqual(JSON.parse(String(text.json().body)), [
      { Name: 'text/plain', Type: 'RequestBody', ValidationRule: 'Unspecified', Details: 'Unspecified content type text/plain is not allowed.', Action: 'detect' },
    ]);
  });
});

test('validate-content: allowAdditionalProperties false forbids unlisted properties, even where the schema allows them', async () => {
  const yaml = config(
    `  inbound:
    - validate-content:
        unspecifiedContentTypeAction: ignore
        maxSize: 4096
        sizeExceededAction: prevent
        content: [{ type: application/json, action: prevent, allowAdditionalProperties: false }]
`,
    `  outbound:
    - validate-content:
        unspecifiedContentTypeAction: ignore
        maxSize: 4096
        sizeExceededAction: prevent
        content: [{ action: prevent, allowAdditionalProperties: false }]
`,
  );
  await withGateway(yaml, async (g) => {
    const extra = await call(`${g.url}/v2/pets`, postJson('{"name":"Rex","owner":"me"}'));
    assert.equal(extra.status, 400);
    assert.match(String(extra.json().message), /Property "owner" is not allowed\. Line: 1, Position: 1$/);
    assert.equal((await call(`${g.url}/v2/pets`, postJson('{"name":"Rex","tag":"dog"}'))).status, 200);
    // Pet is allOf [NewPet, {id}]: the properties of both branches are allowed, anything else is not.
    const pet = await call(`${g.url}/store/pets/7`);
    assert.equal(pet.status, 200, pet.text);
    assert.deepEqual(pet.json(), { id: 7, name: 'Rex', tag: null });
    const leaky = await call(`${g.url}/store/pets/8`);
    assert.deepEqual(leaky.json(), { statusCode: 502, message: INTERNAL });
  });
});

test('validate-content: a chunked body over maxSize streams on whole under detect; gzip bodies are validated decompressed', async () => {
  const yaml = config(`  inbound:
    - validate-content:
        unspecifiedContentTypeAction: prevent
        maxSize: 100
        sizeExceededAction: detect
        errorsVariableName: v
        content: [{ type: application/json, action: prevent }]
    - set-header: { name: x-rule, value: '@(context.Variables["v"].size() > 0 ? context.Variables["v"][0]["ValidationRule"] : "none")' }
`);
  await withGateway(yaml, async (g) => {
    const big = JSON.stringify({ name: 'Rex', tag: 'y'.repeat(5000) });
    async function* chunks() {
      for (let i = 0; i < big.length; i += 700) yield Buffer.from(big.slice(i, i + 700));
    }
    const r = await call(`${g.url}/v2/pets`, { method: 'POST', body: Readable.from(chunks()), headers: { 'content-type': 'application/json' } });
    assert.equal(r.status, 200, r.text);
    const seen = r.json();
    assert.equal(seen.body, big, 'the backend got the whole body, the part read for the size check included');
    assert.equal((seen.headers as Record<string, string>)['x-rule'], 'SizeLimit');
    assert.equal((seen.headers as Record<string, string>)['transfer-encoding'], 'chunked');

    const zipped = gzipSync(Buffer.from('{"name":7}'));
    const bad = await call(`${g.url}/v2/pets`, { method: 'POST', body: zipped, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
    assert.equal(bad.status, 400);
    assert.match(String(bad.json().message), /name: must be string\. Line: 1, Position: 9$/);
    const good = await call(`${g.url}/v2/pets`, { method: 'POST', body: gzipSync(Buffer.from('{"name":"Rex"}')), headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
    assert.equal(good.status, 200);
    // 5000 zeros compress to a few bytes: the decompressed length is what counts.
    const bomb = gzipSync(Buffer.from(JSON.stringify({ name: 'Rex', tag: '0'.repeat(5000) })));
    assert.ok(bomb.length < 100);
    const b = await call(`${g.url}/v2/pets`, { method: 'POST', body: bomb, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
    assert.equal(b.status, 200);
    assert.equal((b.json().headers as Record<string, string>)['x-rule'], 'SizeLimit');
  });
});

test('validate-content outbound (prevent): a response against its schema becomes 502 with the internal-error text', async () => {
  const yaml = config(
    `  inbound: []
`,
    `  outbound:
    - validate-content:
        unspecifiedContentTypeAction: prevent
        maxSize: 102400
        sizeExceededAction: prevent
        content: [{ type: application/json, action: prevent }]
${SHOW_LAST_ERROR}`,
  );
  await withGateway(yaml, async (g) => {
    const ok = await call(`${g.url}/store/pets/7`);
    assert.equal(ok.status, 200);
    assert.deepEqual(ok.json(), { id: 7, name: 'Rex', tag: null });
    const bad = await call(`${g.url}/store/pets/13`);
    assert.equal(bad.status, 502);
    assert.deepEqual(bad.json(), { statusCode: 502, message: INTERNAL });
    assert.equal(bad.headers['x-reason'], 'Response not allowed');
    assert.equal(
      bad.headers['x-last-error'],
      'Body of the response does not conform to the definition Pet, which is associated with the content type application/json. id: must be integer. Line: 1, Position: 7',
    );
    // The 404 is declared with the Error schema, and the backend's answer conforms.
    assert.equal((await call(`${g.url}/store/pets/404`)).status, 404);
    // text/html is not a content type the operation declares for 200.
    const html = await call(`${g.url}/store/pets/text`);
    assert.equal(html.status, 502);
    assert.equal(html.headers['x-last-error'], 'Unspecified content type text/html is not allowed.');
  });
});

test('validate-parameters (prevent): wrong path and query types, undeclared query parameters and headers', async () => {
  const yaml = config(`  inbound:
    - validate-parameters:
        specifiedParameterAction: prevent
        unspecifiedParameterAction: prevent
        errorsVariableName: requestParametersValidation
        headers:
          parameters: [{ name: X-Debug, action: ignore }]
${SHOW_LAST_ERROR}`);
  await withGateway(yaml, async (g) => {
    assert.equal((await call(`${g.url}/v2/pets?limit=10&tags=dog,cat-2`)).status, 200);
    assert.equal((await call(`${g.url}/v2/pets/42`)).status, 200);

    const path = await call(`${g.url}/v2/pets/rex`);
    assert.equal(path.status, 400);
    assert.deepEqual(path.json(), { statusCode: 400, message: "Value of the path parameter petId couldn't be parsed according to the definition. Must be integer." });
    assert.equal(path.headers['x-source'], 'validate-parameters');
    assert.equal(path.headers['x-last-error'], 'Value of the path parameter petId cannot be parsed according to the definition. Must be integer.');
    const zero = await call(`${g.url}/v2/pets/0`);
    assert.equal(zero.json().message, 'The value of the path parameter petId does not conform to the definition. Must be >= 1.');

    const limit = await call(`${g.url}/v2/pets?limit=ten`);
    assert.deepEqual(limit.json(), { statusCode: 400, message: "Value of the query parameter limit couldn't be parsed according to the definition. Must be integer." });
    assert.equal((await call(`${g.url}/v2/pets?limit=500`)).json().message, 'The value of the query parameter limit does not conform to the definition. Must be <= 100.');
    assert.equal((await call(`${g.url}/v2/pets?limit=1&limit=2`)).json().message, 'Request cannot contain multiple values for the query parameter limit.');
    assert.equal((await call(`${g.url}/v2/pets?tags=dog,Cat`)).json().message, 'The value of the query parameter tags does not conform to the definition. [1]: must match pattern "^[a-z][a-z0-9-]*$".');

    const query = await call(`${g.url}/v2/pets?debug=1`);
    assert.deepEqual(query.json(), { statusCode: 400, message: 'Unspecified query parameter debug is not allowed.' });
    const header = await call(`${g.url}/v2/pets`, { headers: { 'x-tenant': 'acme' } });
    assert.deepEqual(header.json(), { statusCode: 400, message: 'Unspecified header x-tenant is not allowed.' });
    // The per-parameter override wins over unspecifiedParameterAction; a declared header is checked against its schema.
    assert.equal((await call(`${g.url}/v2/pets`, { headers: { 'x-debug': '1' } })).status, 200);
    // X-Request-Id is declared (a uuid): the client's value is checked, not the id the gateway sends the backend.
    const id = await call(`${g.url}/v2/pets`, { headers: { 'X-Request-Id': 'not-a-uuid' } });
    assert.equal(id.json().message, 'The value of the header X-Request-Id does not conform to the definition. Must match format "uuid".');
    assert.equal((await call(`${g.url}/v2/pets`, { headers: { 'X-Request-Id': '3fa85f64-5717-4562-b3fc-2c963f66afa6' } })).status, 200);
  });
});

test('validate-parameters: group actions override the policy\'s; detect lets the request through with the records', async () => {
  const yaml = config(`  inbound:
    - validate-parameters:
        specifiedParameterAction: detect
        unspecifiedParameterAction: prevent
        errorsVariableName: params
        headers: { unspecifiedParameterAction: detect }
        query: { parameters: [{ name: trace, action: detect }] }
    - set-body: { value: '@(context.Variables["params"])' }
`);
  await withGateway(yaml, async (g) => {
    const r = await call(`${g.url}/v2/pets?limit=0&trace=1`, { headers: { 'x-tenant': 'acme' } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(JSON.parse(String(r.json().body)), [
      { Name: 'limit', Type: 'QueryParameter', ValidationRule: 'IncorrectMessage', Details: 'Value of the query parameter limit does not conform to the definition. Must be >= 1.', Action: 'detect' },
      { Name: 'trace', Type: 'QueryParameter', ValidationRule: 'Unspecified', Details: 'Unspecified query parameter trace is not allowed.', Action: 'detect' },
      { Name: 'x-tenant', Type: 'RequestHeader', ValidationRule: 'Unspecified', Details: 'Unspecified header x-tenant is not allowed.', Action: 'detect' },
    ]);
    // Query parameters other than the overridden one keep the policy's prevent.
    assert.equal((await call(`${g.url}/v2/pets?other=1`)).status, 400);
  });
});

test('validate-headers (outbound): a declared header against its schema, or an undeclared one, becomes 502 under prevent', async () => {
  const yaml = config(
    `  inbound: []
`,
    `  outbound:
    - validate-headers:
        specifiedHeaderAction: prevent
        unspecifiedHeaderAction: prevent
        errorsVariableName: responseHeadersValidation
        headers: [{ name: Keep-Alive, action: ignore }]
${SHOW_LAST_ERROR}`,
  );
  await withGateway(yaml, async (g) => {
    const ok = await call(`${g.url}/store/pets`);
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.headers['x-next'], 'https://pets.example/2');
    const bad = await call(`${g.url}/store/pets?next=bad`);
    assert.equal(bad.status, 502);
    assert.deepEqual(bad.json(), { statusCode: 502, message: INTERNAL });
    assert.equal(bad.headers['x-last-error'], 'Value of the header X-Next does not conform to the definition. Must match format "uri".');
    assert.equal((await call(`${g.url}/store/pets?next=twice`)).headers['x-last-error'], 'Response cannot contain multiple values for the header X-Next.');
    const leak = await call(`${g.url}/store/pets?leak=1`);
    assert.equal(leak.status, 502);
    assert.equal(leak.headers['x-reason'], 'Response not allowed');
    assert.equal(leak.headers['x-last-error'], 'Unspecified header x-powered-by is not allowed.');
  });
});

test('validate-status-code: an undeclared status becomes 502 under prevent; overrides and detect let it through', async () => {
  const prevent = config(
    `  inbound: []
`,
    `  outbound:
    - validate-status-code:
        unspecifiedStatusCodeAction: prevent
        errorsVariableName: status
${SHOW_LAST_ERROR}`,
  );
  await withGateway(prevent, async (g) => {
    assert.equal((await call(`${g.url}/store/pets/7`)).status, 200);
    assert.equal((await call(`${g.url}/store/pets/404`)).status, 404);
    const leak = await call(`${g.url}/store/pets/500`);
    assert.equal(leak.status, 502);
    assert.deepEqual(leak.json(), { statusCode: 502, message: INTERNAL });
    assert.doesNotMatch(leak.text, /NullReference/);
    assert.equal(leak.headers['x-source'], 'validate-status-code');
    assert.equal(leak.headers['x-last-error'], 'Response status code 500 is not allowed.');
  });
  const relaxed = config(
    `  inbound: []
`,
    `  outbound:
    - validate-status-code:
        unspecifiedStatusCodeAction: detect
        errorsVariableName: status
        statusCodes: [{ code: 503, action: prevent }]
    - set-header: { name: x-status-errors, value: '@(context.Variables["status"].size() > 0 ? context.Variables["status"][0]["Details"] : "none")' }
`,
  );
  await withGateway(relaxed, async (g) => {
    const r = await call(`${g.url}/store/pets/500`);
    assert.equal(r.status, 500);
    assert.equal(r.headers['x-status-errors'], 'Response status code 500 is not allowed.');
    assert.equal((await call(`${g.url}/store/pets/7`)).headers['x-status-errors'], 'none');
  });
});

test('an action may be an expression, evaluated per request', async () => {
  const yaml = config(
    `  inbound: []
`,
    `  outbound:
    - validate-status-code:
        unspecifiedStatusCodeAction: '@(context.Request.Headers["x-strict"] == "yes" ? "prevent" : "ignore")'
`,
  );
  await withGateway(yaml, async (g) => {
    const lax = await call(`${g.url}/store/pets/500`, { headers: { 'x-strict': 'no' } });
    assert.equal(lax.status, 500);
    assert.match(lax.text, /NullReferenceException/, "the backend's own answer");
    assert.equal((await call(`${g.url}/store/pets/500`, { headers: { 'x-strict': 'yes' } })).status, 502);
  });
});

test('several validation policies naming one errors variable add to one list', async () => {
  const yaml = config(`  inbound:
    - validate-parameters: { specifiedParameterAction: detect, unspecifiedParameterAction: detect, errorsVariableName: requestValidation }
    - validate-content:
        unspecifiedContentTypeAction: detect
        maxSize: 1024
        sizeExceededAction: detect
        errorsVariableName: requestValidation
        content: [{ action: detect }]
    - set-body: { value: '@(context.Variables["requestValidation"])' }
`);
  await withGateway(yaml, async (g) => {
    const r = await call(`${g.url}/v2/pets?x=1`, postJson('{"name":1}'));
    assert.equal(r.status, 200, r.text);
    const records = JSON.parse(String(r.json().body)) as Array<Record<string, string>>;
    assert.deepEqual(
      records.map((e) => `${e.Type}/${e.ValidationRule}`),
      ['QueryParameter/Unspecified', 'RequestBody/IncorrectMessage'],
    );
  });
});

test('config problems: an unknown action, maxSize over API Management\'s limit, XML validation', async () => {
  const policy = (attrs: string) => config(`  inbound:
    - validate-content:
${attrs}`);
  await assert.rejects(
    startPolicyGateway(policy('        unspecifiedContentTypeAction: block\n        maxSize: 100\n        sizeExceededAction: prevent\n')),
    /test\.yaml:\d+:\d+: expected "ignore", "prevent" or "detect" \(or an expression\), got "block"/,
  );
  await assert.rejects(
    startPolicyGateway(policy('        unspecifiedContentTypeAction: prevent\n        maxSize: 200000\n        sizeExceededAction: prevent\n')),
    /validate-content: maxSize is 200000 bytes; API Management allows at most 102400/,
  );
  await assert.rejects(
    startPolicyGateway(policy('        unspecifiedContentTypeAction: prevent\n        maxSize: 100\n        sizeExceededAction: prevent\n        content: [{ type: application/xml, validateAs: xml, action: prevent }]\n')),
    /validateAs xml is not supported/,
  );
  await assert.rejects(
    startPolicyGateway(config(`  outbound:
    - validate-parameters: { specifiedParameterAction: prevent, unspecifiedParameterAction: prevent }
`)),
    /validate-parameters is not allowed in outbound/,
  );
});

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { createJwtValidator, resolveJwtSettings, type JwtResult, type JwtValidatorSettings, type FetchLike } from './jwt-validator.ts';
import { algorithmsForKey, decodeBase64url, findDuplicateKey, parseCompactJws } from './jwt-rules.ts';

const NOW = 1_750_000_000_000; // a fixed wall clock (ms)
const SEC = Math.floor(NOW / 1000);
const SECRET = randomBytes(32);
const SECRET_B64 = SECRET.toString('base64');

const b64u = (s: string | Buffer): string => Buffer.from(s).toString('base64url');

/** Sign raw JSON text (so tests can write duplicate members or odd types that JSON.stringify cannot). */
function signRaw(headerJson: string, payloadJson: string, key: KeyObject | Buffer): string {
  const input = `${b64u(headerJson)}.${b64u(payloadJson)}`;
  const alg = (JSON.parse(headerJson) as { alg: string }).alg;
  const hash = `sha${alg.slice(2)}`;
  let sig: Buffer;
  if (alg.startsWith('HS')) sig = createHmac(hash, key as Buffer).update(input).digest();
  else if (alg.startsWith('ES')) sig = cryptoSign(hash, Buffer.from(input), { key: key as KeyObject, dsaEncoding: 'ieee-p1363' });
  else sig = cryptoSign(hash, Buffer.from(input), key as KeyObject);
  return `${input}.${sig.toString('base64url')}`;
}

function hs(payload: Record<string, unknown>, header: Record<string, unknown> = {}, secret: Buffer = SECRET): string {
  return signRaw(JSON.stringify({ alg: 'HS256', typ: 'JWT', ...header }), JSON.stringify(payload), secret);
}

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ecJwk = JSON.stringify({ ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec1' });
const rsaPem = rsa.publicKey.export({ format: 'pem', type: 'spki' }) as string;

function es(payload: Record<string, unknown>, header: Record<string, unknown> = { kid: 'ec1' }): string {
  return signRaw(JSON.stringify({ alg: 'ES256', ...header }), JSON.stringify(payload), ec.privateKey);
}

function clock(start = NOW): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

async function run(r: JwtResult | Promise<JwtResult>): Promise<JwtResult> {
  return r;
}

function hmacValidator(extra: JwtValidatorSettings = {}, now = () => NOW, cacheSize?: number) {
  return createJwtValidator({ issuerSigningKeys: [{ kind: 'hmac', value: SECRET_B64 }], ...extra }, { now, cacheSize });
}

async function reasonOf(v: ReturnType<typeof hmacValidator>, token: string): Promise<string> {
  const r = await run(v.validate(token));
  return r.ok ? 'ok' : r.reason;
}

describe('settings', () => {
  test('defaults are API Management\'s', () => {
    const { settings, problems } = resolveJwtSettings({ issuerSigningKeys: [{ kind: 'hmac', value: SECRET_B64 }] });
    assert.deepEqual(problems, []);
    assert.equal(settings.headerName, 'Authorization');
    assert.equal(settings.requireScheme, 'Bearer');
    assert.equal(settings.failedValidationHttpCode, 401);
    assert.equal(settings.failedValidationErrorMessage, undefined);
    assert.equal(settings.requireExpirationTime, true);
    assert.equal(settings.requireSignedTokens, true);
    assert.equal(settings.clockSkew, 0);
    assert.equal(settings.maxTokenAge, undefined);
    assert.ok(!settings.allowedAlgorithms.includes('none'));
  });

  test('require-scheme is ignored for a header other than Authorization', () => {
    const { settings } = resolveJwtSettings({ headerName: 'X-Token', issuerSigningKeys: [{ kind: 'hmac', value: SECRET_B64 }] });
    assert.equal(settings.requireScheme, undefined);
  });

  test('problems: weak HMAC key, alg none, unsigned tokens, two token sources, no keys, bad status', () => {
    const p = (s: JwtValidatorSettings) => resolveJwtSettings(s).problems.join(' | ');
    assert.match(p({ issuerSigningKeys: [{ kind: 'hmac', value: randomBytes(31).toString('base64') }] }), /at least 32 bytes/);
    assert.equal(p({ issuerSigningKeys: [{ kind: 'hmac', value: randomBytes(32).toString('base64') }] }), '');
    assert.match(p({ issuerSigningKeys: [{ kind: 'hmac', value: SECRET_B64 }], allowedAlgorithms: ['HS256', 'none'] }), /none/);
    assert.match(p({ issuerSigningKeys: [{ kind: 'hmac', value: SECRET_B64 }], allowedAlgorithms: ['HS256', 'NoNe'] }), /none/);
    assert.match(p({ issuerSigningKeys: [{ kind: 'hmac', value: SECRET_B64 }], requireSignedTokens: false }), /unsigned/);
    assert.match(p({ issuerSigningKeys: [{ kind: 'hmac', value: SECRET_B64 }], headerName: 'A', cookieName: 'b' }), /only one/);
    assert.match(p({}), /issuerSigningKeys or openidConfig/);
    assert.match(p({ issuerSigningKeys: [{ kind: 'hmac', value: SECRET_B64 }], failedValidationHttpCode: 99 }), /status/);
    assert.match(p({ issuerSigningKeys: [{ kind: 'hmac', value: SECRET_B64 }], allowedAlgorithms: ['RS256'] }), /none of the allowed algorithms/);
    assert.match(p({ issuerSigningKeys: [{ kind: 'pem', value: 'not a key' }] }), /cannot be imported/);
    assert.match(p({ openidConfig: ['file:///etc/passwd'] }), /http/);
    assert.match(p({ issuerSigningKeys: [{ kind: 'jwk', value: JSON.stringify({ kty: 'oct', k: b64u(randomBytes(16)) }) }] }), /too weak/);
    assert.throws(() => createJwtValidator({}), /invalid validate-jwt settings/);
  });

  test('a 1024-bit RSA key is refused at configuration time', () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const problems = resolveJwtSettings({ issuerSigningKeys: [{ kind: 'pem', value: weak.publicKey.export({ format: 'pem', type: 'spki' }) as string }] }).problems;
    assert.match(problems.join(), /too weak/);
  });
});

describe('extractToken', () => {
  const v = hmacValidator();
  test('Authorization: Bearer, scheme case-insensitive', () => {
    assert.equal(v.extractToken(['Host', 'x', 'authorization', 'Bearer abc'], ''), 'abc');
    assert.equal(v.extractToken(['AUTHORIZATION', 'bearer   abc  '], ''), 'abc');
  });
  test('absent, empty, wrong scheme, repeated header', () => {
    assert.equal(v.extractToken(['Host', 'x'], ''), null);
    assert.equal(v.extractToken(['Authorization', 'Bearer'], ''), null);
    assert.equal(v.extractToken(['Authorization', 'Bearer  '], ''), null);
    const wrong = v.extractToken(['Authorization', 'Basic abc'], '');
    assert.ok(wrong !== null && typeof wrong === 'object');
    assert.equal(wrong.error.reason, 'TokenNotPresent');
    assert.equal(wrong.error.message, 'JWT not present.');
    const twice = v.extractToken(['Authorization', 'Bearer a', 'authorization', 'Bearer b'], '');
    assert.ok(twice !== null && typeof twice === 'object');
    assert.equal(twice.error.reason, 'JwtInvalid');
  });
  test('custom header takes the raw value', () => {
    const h = hmacValidator({ headerName: 'X-Jwt' });
    assert.equal(h.extractToken(['x-jwt', ' tok '], ''), 'tok');
  });
  test('query parameter, with or without the ?', () => {
    const q = hmacValidator({ queryParameterName: 'access_token' });
    assert.equal(q.extractToken([], '?a=1&access_token=x.y.z'), 'x.y.z');
    assert.equal(q.extractToken([], 'access_token=x%2Ey.z'), 'x.y.z');
    assert.equal(q.extractToken(['Authorization', 'Bearer a'], 'a=1'), null);
    const dup = q.extractToken([], 'access_token=a&access_token=b');
    assert.ok(dup !== null && typeof dup === 'object' && dup.error.reason === 'JwtInvalid');
  });
  test('cookie', () => {
    const c = hmacValidator({ cookieName: 'session' });
    assert.equal(c.extractToken(['Cookie', 'a=1; session=x.y.z; b=2'], ''), 'x.y.z');
    assert.equal(c.extractToken(['Cookie', 'a=1', 'cookie', 'session="q.r.s"'], ''), 'q.r.s');
    assert.equal(c.extractToken(['Cookie', 'sessionx=1'], ''), null);
    const dup = c.extractToken(['Cookie', 'session=a; session=b'], '');
    assert.ok(dup !== null && typeof dup === 'object' && dup.error.reason === 'JwtInvalid');
  });
});

describe('validate: rules and defaults', () => {
  test('a valid HS256 token: claims and header exposed, expiresAt in ms', async () => {
    const v = hmacValidator();
    const r = await run(v.validate(hs({ sub: 'alice', exp: SEC + 60 })));
    assert.equal(r.ok, true);
    assert.ok(r.ok);
    assert.equal(r.claims.sub, 'alice');
    assert.equal(r.header.alg, 'HS256');
    assert.equal(r.expiresAt, (SEC + 60) * 1000);
  });

  test('failure responses: 401 "Invalid JWT." by default; the configured code and message win', async () => {
    const v = hmacValidator();
    const r = await run(v.validate('garbage'));
    assert.deepEqual([r.ok, !r.ok && r.status, !r.ok && r.message, !r.ok && r.reason], [false, 401, 'Invalid JWT.', 'JwtInvalid']);
    assert.deepEqual([v.tokenNotPresent.status, v.tokenNotPresent.message, v.tokenNotPresent.reason], [401, 'JWT not present.', 'TokenNotPresent']);
    const c = hmacValidator({ failedValidationHttpCode: 403, failedValidationErrorMessage: 'nope' });
    const r2 = await run(c.validate(hs({ exp: SEC - 1 })));
    assert.ok(!r2.ok);
    assert.deepEqual([r2.status, r2.message, r2.reason], [403, 'nope', 'TokenExpired']);
    assert.equal(c.tokenNotPresent.message, 'nope');
  });

  test('exp is required by default; require-expiration-time="false" lifts it', async () => {
    const r = await run(hmacValidator().validate(hs({ sub: 'a' })));
    assert.ok(!r.ok);
    assert.equal(r.reason, 'TokenClaimNotFound');
    assert.equal(r.detail, 'JWT token is missing the following claims: exp');
    assert.equal(await reasonOf(hmacValidator({ requireExpirationTime: false }), hs({ sub: 'a' })), 'ok');
  });

  test('exp: expired, exactly now, and clock skew', async () => {
    assert.equal(await reasonOf(hmacValidator(), hs({ exp: SEC - 120 })), 'TokenExpired');
    assert.equal(await reasonOf(hmacValidator(), hs({ exp: SEC })), 'TokenExpired');
    assert.equal(await reasonOf(hmacValidator({ clockSkew: 300_000 }), hs({ exp: SEC - 120 })), 'ok');
    assert.equal(await reasonOf(hmacValidator({ clockSkew: 60_000 }), hs({ exp: SEC - 120 })), 'TokenExpired');
    assert.equal(await reasonOf(hmacValidator(), hs({ exp: '9999999999' })), 'JwtInvalid');
  });

  test('nbf and iat in the future', async () => {
    assert.equal(await reasonOf(hmacValidator(), hs({ exp: SEC + 900, nbf: SEC + 1 })), 'TokenNotYetValid');
    assert.equal(await reasonOf(hmacValidator({ clockSkew: 5000 }), hs({ exp: SEC + 900, nbf: SEC + 1 })), 'ok');
    assert.equal(await reasonOf(hmacValidator(), hs({ exp: SEC + 9000, iat: SEC + 3600 })), 'TokenNotYetValid');
    assert.equal(await reasonOf(hmacValidator({ clockSkew: 10_000 }), hs({ exp: SEC + 900, iat: SEC + 5 })), 'ok');
    assert.equal(await reasonOf(hmacValidator(), hs({ exp: SEC + 900, iat: SEC })), 'ok');
  });

  test('maxTokenAge via iat', async () => {
    const v = hmacValidator({ maxTokenAge: 3_600_000 });
    assert.equal(await reasonOf(v, hs({ exp: SEC + 900, iat: SEC - 7200 })), 'TokenExpired');
    assert.equal(await reasonOf(v, hs({ exp: SEC + 900, iat: SEC - 60 })), 'ok');
    const r = await run(v.validate(hs({ exp: SEC + 900 })));
    assert.ok(!r.ok);
    assert.equal(r.detail, 'JWT token is missing the following claims: iat');
  });

  test('issuers and audiences: at least one must match', async () => {
    const v = hmacValidator({ issuers: ['https://a', 'https://b'], audiences: ['api1', 'api2'] });
    assert.equal(await reasonOf(v, hs({ exp: SEC + 60, iss: 'https://b', aud: 'api2' })), 'ok');
    assert.equal(await reasonOf(v, hs({ exp: SEC + 60, iss: 'https://b', aud: ['other', 'api1'] })), 'ok');
    assert.equal(await reasonOf(v, hs({ exp: SEC + 60, iss: 'https://evil', aud: 'api1' })), 'TokenIssuerNotAllowed');
    assert.equal(await reasonOf(v, hs({ exp: SEC + 60, aud: 'api1' })), 'TokenIssuerNotAllowed');
    assert.equal(await reasonOf(v, hs({ exp: SEC + 60, iss: 'https://a', aud: 'other' })), 'TokenAudienceNotAllowed');
    assert.equal(await reasonOf(v, hs({ exp: SEC + 60, iss: 'https://a', aud: [] })), 'TokenAudienceNotAllowed');
    assert.equal(await reasonOf(v, hs({ exp: SEC + 60, iss: 'https://a' })), 'TokenAudienceNotAllowed');
  });

  test('required claims: all (default), any, separator, presence only; APIM\'s texts', async () => {
    const v = hmacValidator({
      requiredClaims: [
        { name: 'roles', match: 'all', values: ['reader', 'writer'] },
        { name: 'scp', match: 'any', separator: ' ', values: ['admin', 'read'] },
        { name: 'tid', match: 'all', values: [] },
      ],
    });
    const base = { exp: SEC + 60, tid: 't' };
    assert.equal(await reasonOf(v, hs({ ...base, roles: ['reader', 'writer', 'x'], scp: 'openid read' })), 'ok');
    let r = await run(v.validate(hs({ ...base, roles: ['reader'], scp: 'read' })));
    assert.ok(!r.ok);
    assert.equal(r.reason, 'TokenClaimValueNotAllowed');
    assert.equal(r.detail, 'Claim roles value of reader is not allowed. Access denied.');
    assert.equal(r.message, 'Invalid JWT.');
    r = await run(v.validate(hs({ ...base, roles: ['reader', 'writer'], scp: 'openid profile' })));
    assert.ok(!r.ok);
    assert.equal(r.detail, 'Claim scp value of openid profile is not allowed. Access denied.');
    r = await run(v.validate(hs({ exp: SEC + 60, scp: 'read' })));
    assert.ok(!r.ok);
    assert.equal(r.reason, 'TokenClaimNotFound');
    assert.equal(r.detail, 'JWT token is missing the following claims: roles, tid');
    // Without a separator the whole string must match.
    const noSep = hmacValidator({ requiredClaims: [{ name: 'scp', match: 'any', values: ['read'] }] });
    assert.equal(await reasonOf(noSep, hs({ exp: SEC + 60, scp: 'openid read' })), 'TokenClaimValueNotAllowed');
    const withSep = hmacValidator({ requiredClaims: [{ name: 'roles', match: 'all', separator: ',', values: ['a', 'b'] }] });
    assert.equal(await reasonOf(withSep, hs({ exp: SEC + 60, roles: 'a,b' })), 'ok');
  });

  test('allowedAlgorithms and the token type', async () => {
    const v = createJwtValidator({ issuerSigningKeys: [{ kind: 'jwk', value: ecJwk }], allowedAlgorithms: ['ES256'] }, { now: () => NOW });
    assert.equal(await reasonOf(v, es({ exp: SEC + 60 })), 'ok');
    assert.equal(await reasonOf(v, hs({ exp: SEC + 60 })), 'TokenAlgorithmNotAllowed');
    const t = hmacValidator({ tokenType: 'at+jwt' });
    assert.equal(await reasonOf(t, hs({ exp: SEC + 60 }, { typ: 'application/at+jwt' })), 'ok');
    assert.equal(await reasonOf(t, hs({ exp: SEC + 60 }, { typ: 'JWT' })), 'TokenTypeNotAllowed');
  });

  test('algorithm confusion: HS256 keyed with the RSA public key PEM never validates', async () => {
    const v = createJwtValidator({ issuerSigningKeys: [{ kind: 'pem', value: rsaPem }] }, { now: () => NOW });
    const forged = hs({ exp: SEC + 60 }, {}, Buffer.from(rsaPem));
    assert.equal(await reasonOf(v, forged), 'TokenSignatureKeyNotFound');
    const good = signRaw(JSON.stringify({ alg: 'RS256' }), JSON.stringify({ exp: SEC + 60 }), rsa.privateKey);
    assert.equal(await reasonOf(v, good), 'ok');
    const pss = signRaw(JSON.stringify({ alg: 'RS256' }), JSON.stringify({ exp: SEC + 60 }), generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    assert.equal(await reasonOf(v, pss), 'TokenSignatureInvalid');
  });

  test('duplicate member names in the payload or the header are refused, escapes included', async () => {
    const v = hmacValidator();
    const dupPayload = signRaw('{"alg":"HS256"}', `{"sub":"alice","exp":${SEC + 60},"sub":"admin"}`, SECRET);
    const r = await run(v.validate(dupPayload));
    assert.ok(!r.ok);
    assert.equal(r.reason, 'JwtInvalid');
    assert.match(r.detail, /repeats the member name "sub"/);
    assert.equal(await reasonOf(v, signRaw('{"alg":"HS256"}', `{"sub":"a","exp":${SEC + 60},"\\u0073ub":"admin"}`, SECRET)), 'JwtInvalid');
    assert.equal(await reasonOf(v, signRaw('{"alg":"HS256","kid":"a","kid":"b"}', `{"exp":${SEC + 60}}`, SECRET)), 'JwtInvalid');
    assert.equal(await reasonOf(v, signRaw('{"alg":"HS256"}', `{"exp":${SEC + 60},"o":{"a":1,"b":{"a":2}},"p":[{"a":1},{"a":1}]}`, SECRET)), 'ok');
    assert.equal(await reasonOf(v, signRaw('{"alg":"HS256"}', `{"exp":${SEC + 60},"o":{"a":1,"a":2}}`, SECRET)), 'JwtInvalid');
  });

  test('static keys: kid selects the key, PEM certificates and JWKs work', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const v = createJwtValidator({
      issuerSigningKeys: [
        { kind: 'jwk', value: JSON.stringify(other.publicKey.export({ format: 'jwk' })), kid: 'other' },
        { kind: 'jwk', value: ecJwk },
      ],
    }, { now: () => NOW });
    assert.equal(await reasonOf(v, es({ exp: SEC + 60 }, { kid: 'ec1' })), 'ok');
    assert.equal(await reasonOf(v, es({ exp: SEC + 60 }, { kid: 'other' })), 'TokenSignatureInvalid');
    assert.equal(await reasonOf(v, es({ exp: SEC + 60 }, { kid: 'nobody' })), 'TokenSignatureKeyNotFound');
    assert.equal(await reasonOf(v, es({ exp: SEC + 60 }, {})), 'ok'); // no kid: every key is tried
  });

  test('unsigned and malformed tokens are refused synchronously', () => {
    const v = hmacValidator();
    const none = `${b64u('{"alg":"none"}')}.${b64u(`{"exp":${SEC + 60}}`)}.`;
    for (const t of [none, 'a.b', 'a.b.c.d.e', '', hs({ exp: SEC + 60 }).replace(/\.[^.]+$/, '.')]) {
      const r = v.validate(t);
      assert.ok(!(r instanceof Promise), t);
      assert.equal(r.ok, false, t);
    }
  });
});

describe('verified-token cache', () => {
  test('a repeated token is answered synchronously with the same frozen result', async () => {
    const v = hmacValidator();
    const t = hs({ sub: 'alice', exp: SEC + 60, nested: { roles: ['a'] } });
    const first = v.validate(t);
    assert.ok(first instanceof Promise);
    const r1 = await first;
    const r2 = v.validate(t);
    assert.ok(!(r2 instanceof Promise));
    assert.equal(r2, r1);
    assert.ok(r2.ok);
    assert.ok(Object.isFrozen(r2.claims));
    assert.ok(Object.isFrozen((r2.claims.nested as { roles: string[] }).roles));
  });

  test('exp is re-checked on every hit and an expired entry is evicted', async () => {
    const c = clock();
    const v = hmacValidator({}, c.now);
    const t = hs({ exp: SEC + 10 });
    assert.equal((await run(v.validate(t))).ok, true);
    assert.equal(v.cacheSize, 1);
    c.advance(9_999);
    const hit = v.validate(t);
    assert.ok(!(hit instanceof Promise) && hit.ok);
    c.advance(1);
    const expired = v.validate(t);
    assert.ok(!(expired instanceof Promise));
    assert.ok(!expired.ok);
    assert.equal(expired.reason, 'TokenExpired');
    assert.equal(v.cacheSize, 0);
  });

  test('cachedEntry and recheck: a caller holding the entry gets what a cache hit gives; only that entry is evicted', async () => {
    const c = clock();
    const v = hmacValidator({}, c.now);
    const t = hs({ sub: 'alice', exp: SEC + 10 });
    const r1 = await run(v.validate(t));
    const entry = v.cachedEntry(t);
    assert.ok(entry !== undefined);
    assert.equal(v.cachedEntry(hs({ sub: 'bob', exp: SEC + 10 })), undefined, 'another token has no entry');
    assert.equal(v.recheck(entry), r1, 'the same frozen result, without a lookup');
    // A stale copy (expired by its own validity) fails, and does not evict the entry the cache holds.
    const stale = { ...entry, validity: { ...entry.validity, notAfter: 0 } };
    const staleResult = v.recheck(stale);
    assert.ok(staleResult !== undefined && !staleResult.ok && staleResult.reason === 'TokenExpired');
    assert.equal(v.cacheSize, 1, 'the cached entry stays');
    c.advance(10_000);
    const expired = v.recheck(entry);
    assert.ok(expired !== undefined && !expired.ok && expired.reason === 'TokenExpired');
    assert.equal(v.cacheSize, 0, 'the expired entry itself is evicted');
  });

  test('maxTokenAge also bounds a cached entry', async () => {
    const c = clock();
    const v = hmacValidator({ maxTokenAge: 60_000 }, c.now);
    const t = hs({ exp: SEC + 3600, iat: SEC });
    assert.equal((await run(v.validate(t))).ok, true);
    c.advance(60_000);
    const r = v.validate(t);
    assert.ok(!(r instanceof Promise) && !r.ok);
    assert.equal(r.reason, 'TokenExpired');
  });

  test('bounded: never more than cacheSize entries', async () => {
    const v = hmacValidator({}, () => NOW, 3);
    const tokens = Array.from({ length: 5 }, (_, i) => hs({ n: i, exp: SEC + 60 }));
    for (const t of tokens) assert.equal((await run(v.validate(t))).ok, true);
    assert.equal(v.cacheSize, 3);
    assert.ok(v.validate(tokens[0]) instanceof Promise, 'the oldest was evicted');
    assert.ok(!(v.validate(tokens[4]) instanceof Promise), 'the newest is cached');
  });

  test('failures are not cached; concurrent first validations share one verification', async () => {
    const v = hmacValidator();
    const t = hs({ exp: SEC + 60 });
    const a = v.validate(t);
    const b = v.validate(t);
    assert.ok(a instanceof Promise);
    assert.equal(a, b);
    await a;
    const bad = hs({ exp: SEC + 60, iss: 'x' }, {}, randomBytes(32));
    await run(v.validate(bad));
    assert.equal(v.cacheSize, 1);
  });
});

/** A fake IdP: discovery + JWKS served from memory, every request counted. */
function fakeIdp(issuer = 'https://idp.test') {
  const state = { keys: [] as object[], discovery: 0, jwks: 0, status: 200, hang: false, body: undefined as string | undefined };
  const fetch: FetchLike = async (url, signal) => {
    if (state.hang) {
      return new Promise<Response>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    }
    if (url === `${issuer}/.well-known/openid-configuration`) {
      state.discovery++;
      return Response.json({ issuer, jwks_uri: `${issuer}/jwks` });
    }
    if (url === `${issuer}/jwks`) {
      state.jwks++;
      if (state.body !== undefined) return new Response(state.body, { status: state.status });
      return Response.json({ keys: state.keys }, { status: state.status });
    }
    return new Response('no', { status: 404 });
  };
  return { state, fetch, url: `${issuer}/.well-known/openid-configuration`, issuer };
}

function newEcKey(kid: string) {
  const kp = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, kp, jwk: { ...kp.publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'ES256' } };
}

function esWith(k: ReturnType<typeof newEcKey>, payload: Record<string, unknown>): string {
  return signRaw(JSON.stringify({ alg: 'ES256', kid: k.kid }), JSON.stringify(payload), k.kp.privateKey);
}

describe('OpenID discovery keys (fake fetch, fake clock)', () => {
  test('loads once for concurrent first requests; the discovered issuer is enforced when issuers are not set', async () => {
    const idp = fakeIdp();
    const k1 = newEcKey('k1');
    idp.state.keys = [k1.jwk];
    const c = clock();
    const v = createJwtValidator({ openidConfig: [idp.url] }, { fetch: idp.fetch, now: c.now });
    const results = await Promise.all([
      run(v.validate(esWith(k1, { iss: idp.issuer, exp: SEC + 60, n: 1 }))),
      run(v.validate(esWith(k1, { iss: idp.issuer, exp: SEC + 60, n: 2 }))),
      run(v.validate(esWith(k1, { iss: 'https://other', exp: SEC + 60 }))),
    ]);
    assert.deepEqual(results.map((r) => (r.ok ? 'ok' : r.reason)), ['ok', 'ok', 'TokenIssuerNotAllowed']);
    assert.deepEqual([idp.state.discovery, idp.state.jwks], [1, 1]);
    v.close();
  });

  test('unknown kid: one refetch, then at most one per 5 minutes; rotation picks up the new key', async () => {
    const idp = fakeIdp();
    const k1 = newEcKey('k1');
    const k2 = newEcKey('k2');
    idp.state.keys = [k1.jwk];
    const c = clock();
    const v = createJwtValidator({ openidConfig: [idp.url] }, { fetch: idp.fetch, now: c.now });
    assert.equal(await reasonOf(v, esWith(k1, { iss: idp.issuer, exp: SEC + 3600 })), 'ok');
    assert.equal(idp.state.jwks, 1);
    // An unknown kid right after the initial load still gets its one refetch.
    assert.equal(await reasonOf(v, esWith(k2, { iss: idp.issuer, exp: SEC + 3600 })), 'TokenSignatureKeyNotFound');
    assert.equal(idp.state.jwks, 2);
    // The provider rotates; within the cooldown nobody refetches.
    idp.state.keys = [k2.jwk, k1.jwk];
    c.advance(299_999);
    assert.equal(await reasonOf(v, esWith(k2, { iss: idp.issuer, exp: SEC + 3600, n: 2 })), 'TokenSignatureKeyNotFound');
    assert.equal(idp.state.jwks, 2);
    c.advance(1);
    assert.equal(await reasonOf(v, esWith(k2, { iss: idp.issuer, exp: SEC + 3600, n: 3 })), 'ok');
    assert.equal(idp.state.jwks, 3);
    v.close();
  });

  test('keys older than an hour are refreshed in the background; a token cached with a retired key is re-verified', async () => {
    const idp = fakeIdp();
    const k1 = newEcKey('k1');
    const k2 = newEcKey('k2');
    idp.state.keys = [k1.jwk];
    const c = clock();
    const v = createJwtValidator({ openidConfig: [idp.url] }, { fetch: idp.fetch, now: c.now });
    const old = esWith(k1, { iss: idp.issuer, exp: SEC + 7200 });
    assert.equal(await reasonOf(v, old), 'ok');
    idp.state.keys = [k2.jwk];
    c.advance(3_599_999);
    assert.ok(!(v.validate(old) instanceof Promise));
    assert.equal(await reasonOf(v, esWith(k1, { iss: idp.issuer, exp: SEC + 7200, n: 1 })), 'ok');
    assert.equal(idp.state.jwks, 1, 'not stale yet');
    c.advance(1);
    // This new token is verified with the old keys while the refresh runs in the background.
    assert.equal(await reasonOf(v, esWith(k1, { iss: idp.issuer, exp: SEC + 7200, n: 2 })), 'ok');
    assert.equal(idp.state.jwks, 2);
    await new Promise((r) => setImmediate(r));
    const again = await run(v.validate(old)); // k1 is gone: the cached result is dropped
    assert.ok(!again.ok);
    assert.equal(again.reason, 'TokenSignatureKeyNotFound');
    v.close();
  });

  test('a refresh that republishes the same key keeps cached tokens as synchronous hits', async () => {
    const idp = fakeIdp();
    const k1 = newEcKey('k1');
    idp.state.keys = [k1.jwk];
    const c = clock();
    const v = createJwtValidator({ openidConfig: [idp.url] }, { fetch: idp.fetch, now: c.now });
    const t = esWith(k1, { iss: idp.issuer, exp: SEC + 7200 });
    assert.equal(await reasonOf(v, t), 'ok');
    c.advance(3_600_000);
    assert.equal(await reasonOf(v, esWith(k1, { iss: idp.issuer, exp: SEC + 7200, n: 1 })), 'ok'); // starts the refresh
    await new Promise((r) => setImmediate(r));
    assert.equal(idp.state.jwks, 2);
    const hit = v.validate(t);
    assert.ok(!(hit instanceof Promise) && hit.ok);
    v.close();
  });

  test('a hung fetch is cut at the deadline; failures are retried only after the cooldown', async () => {
    const idp = fakeIdp();
    idp.state.hang = true;
    const c = clock();
    const errors: string[] = [];
    const v = createJwtValidator({ openidConfig: [idp.url] }, { fetch: idp.fetch, now: c.now, jwks: { timeoutMs: 50, onError: (_u, e) => errors.push(e.message) } });
    const k1 = newEcKey('k1');
    const started = performance.now();
    const r = await run(v.validate(esWith(k1, { exp: SEC + 60 })));
    assert.ok(performance.now() - started < 2000);
    assert.ok(!r.ok);
    assert.equal(r.reason, 'TokenSignatureKeyNotFound');
    assert.match(r.detail, /timed out/);
    assert.equal(errors.length, 1);
    idp.state.hang = false;
    idp.state.keys = [k1.jwk];
    assert.equal(await reasonOf(v, esWith(k1, { exp: SEC + 60, n: 1 })), 'TokenSignatureKeyNotFound');
    assert.equal(idp.state.discovery, 0, 'no fetch within the cooldown after a failure');
    c.advance(300_000);
    assert.equal(await reasonOf(v, esWith(k1, { exp: SEC + 3600, iss: idp.issuer, n: 2 })), 'ok');
    v.close();
  });

  test('bounded JWKS size, non-200, and symmetric keys in a JWKS are refused', async () => {
    const idp = fakeIdp();
    const k1 = newEcKey('k1');
    idp.state.body = JSON.stringify({ keys: [k1.jwk], pad: 'x'.repeat(2000) });
    const errors: string[] = [];
    const v = createJwtValidator({ openidConfig: [idp.url] }, { fetch: idp.fetch, now: () => NOW, jwks: { maxBytes: 1024, onError: (_u, e) => errors.push(e.message) } });
    assert.equal(await reasonOf(v, esWith(k1, { exp: SEC + 60 })), 'TokenSignatureKeyNotFound');
    assert.match(errors[0], /larger than 1024 bytes/);
    v.close();

    const idp2 = fakeIdp();
    idp2.state.status = 500;
    const errors2: string[] = [];
    const v2 = createJwtValidator({ openidConfig: [idp2.url] }, { fetch: idp2.fetch, now: () => NOW, jwks: { onError: (_u, e) => errors2.push(e.message) } });
    assert.equal(await reasonOf(v2, esWith(k1, { exp: SEC + 60 })), 'TokenSignatureKeyNotFound');
    assert.match(errors2[0], /HTTP 500/);
    v2.close();

    const idp3 = fakeIdp();
    const secret = randomBytes(32);
    idp3.state.keys = [{ kty: 'oct', k: secret.toString('base64url'), kid: 'h' }];
    const v3 = createJwtValidator({ openidConfig: [idp3.url] }, { fetch: idp3.fetch, now: () => NOW });
    assert.equal(await reasonOf(v3, hs({ exp: SEC + 60, iss: idp3.issuer }, { kid: 'h' }, secret)), 'TokenSignatureKeyNotFound');
    v3.close();
  });

  test('close() aborts a fetch in flight', async () => {
    const idp = fakeIdp();
    idp.state.hang = true;
    const v = createJwtValidator({ openidConfig: [idp.url] }, { fetch: idp.fetch, now: () => NOW });
    const p = run(v.validate(esWith(newEcKey('k1'), { exp: SEC + 60 })));
    setImmediate(() => v.close());
    const r = await p;
    assert.ok(!r.ok);
    assert.match(r.detail, /closed/);
  });
});

describe('jwt-rules', () => {
  test('findDuplicateKey', () => {
    assert.equal(findDuplicateKey('{"a":1,"b":2}'), undefined);
    assert.equal(findDuplicateKey('{"a":1,"a":2}'), 'a');
    assert.equal(findDuplicateKey('{"a":"a","b":["a","a"],"c":{"a":{"a":1}}}'), undefined);
    assert.equal(findDuplicateKey('{"x":[{"k":1,"k":2}]}'), 'k');
    assert.equal(findDuplicateKey('{"a\\"b":1,"a\\u0022b":2}'), 'a"b');
    assert.equal(findDuplicateKey('{"a":"}","a":1}'), 'a');
    assert.equal(findDuplicateKey('[{"a":1},{"a":1}]'), undefined);
  });

  test('decodeBase64url is strict and canonical', () => {
    assert.deepEqual(decodeBase64url('Zm9v'), Buffer.from('foo'));
    assert.equal(decodeBase64url('Zm9v='), undefined);
    assert.equal(decodeBase64url('Zm 9v'), undefined);
    assert.equal(decodeBase64url('Zm+v'), undefined);
    assert.deepEqual(decodeBase64url('Zm8'), Buffer.from('fo'));
    assert.equal(decodeBase64url('Zm9'), undefined, 'non-zero unused bits');
    assert.equal(decodeBase64url('AB'), undefined, 'non-zero unused bits');
    assert.deepEqual(decodeBase64url('AA'), Buffer.from([0]));
    assert.equal(decodeBase64url('A'), undefined);
  });

  test('algorithmsForKey: key type decides, JWK alg narrows', () => {
    assert.deepEqual(algorithmsForKey({ type: 'secret', secretBytes: 31 }), []);
    assert.deepEqual(algorithmsForKey({ type: 'secret', secretBytes: 48 }), ['HS256', 'HS384']);
    assert.deepEqual(algorithmsForKey({ type: 'public', asymmetricKeyType: 'ec', namedCurve: 'prime256v1' }), ['ES256']);
    assert.deepEqual(algorithmsForKey({ type: 'public', asymmetricKeyType: 'rsa', modulusLength: 2048 }, 'PS256'), ['PS256']);
    assert.deepEqual(algorithmsForKey({ type: 'public', asymmetricKeyType: 'rsa', modulusLength: 2048 }, 'HS256'), []);
    assert.deepEqual(algorithmsForKey({ type: 'public', asymmetricKeyType: 'rsa', modulusLength: 1024 }), []);
  });

  test('parseCompactJws refuses crit, b64, JWE and a non-string kid', () => {
    const mk = (h: object) => `${b64u(JSON.stringify(h))}.${b64u('{}')}.${b64u('sig')}`;
    const reason = (t: string) => (parseCompactJws(t) as { reason?: string }).reason;
    assert.equal(reason(mk({ alg: 'HS256', crit: ['exp'] })), 'JwtInvalid');
    assert.equal(reason(mk({ alg: 'HS256', b64: false, crit: ['b64'] })), 'JwtInvalid');
    assert.equal(reason(mk({ alg: 'HS256', kid: 7 })), 'JwtInvalid');
    assert.equal(reason(mk({ alg: 'HS256', kid: 'k' })), undefined);
    assert.match(String((parseCompactJws('a.b.c.d.e') as { detail: string }).detail), /JWE/);
    assert.equal((parseCompactJws(mk({ alg: 'HS256', kid: 'k' })) as { kid?: string }).kid, 'k');
  });
});

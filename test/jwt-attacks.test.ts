// The JWT attack table of reference/identity.md §3, one data-driven case per row, against validate-jwt's engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants, createHmac, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { createJwtValidator, resolveJwtSettings, type FetchLike, type JwtReason, type JwtValidatorSettings } from '../src/proxy/jwt-validator.ts';

const NOW = 1_750_000_000_000;
const SEC = NOW / 1000;
const ISSUER = 'https://idp.test';
const AUDIENCE = 'https://api.test';
const ATTACKER = 'https://attacker.test';

const b64u = (s: string | Buffer): string => Buffer.from(s).toString('base64url');

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const weakRsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaPem = rsa.publicKey.export({ format: 'pem', type: 'spki' }) as string;

// The provider's JWKS: the RSA key pins alg RS256 (row 27), plus an EC key and a too-small RSA key.
const JWKS = {
  keys: [
    { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa1', alg: 'RS256', use: 'sig' },
    { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec1', use: 'sig' },
    { ...weakRsa.publicKey.export({ format: 'jwk' }), kid: 'weak', use: 'sig' },
  ],
};

type Sig = 'raw' | 'der';
/** Sign raw JSON text with any alg; `der` produces an ASN.1 ECDSA signature instead of JWS's r‖s. */
function signRaw(header: string, payload: string, key: KeyObject | Buffer, ecdsa: Sig = 'raw'): string {
  const input = `${b64u(header)}.${b64u(payload)}`;
  const alg = (JSON.parse(header) as { alg: string }).alg;
  const hash = `sha${alg.slice(2)}`;
  let sig: Buffer;
  if (alg.startsWith('HS')) sig = createHmac(hash, key as Buffer).update(input).digest();
  else if (alg.startsWith('ES')) sig = cryptoSign(hash, Buffer.from(input), { key: key as KeyObject, dsaEncoding: ecdsa === 'der' ? 'der' : 'ieee-p1363' });
  else if (alg.startsWith('PS')) sig = cryptoSign(hash, Buffer.from(input), { key: key as KeyObject, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST });
  else sig = cryptoSign(hash, Buffer.from(input), key as KeyObject);
  return `${input}.${sig.toString('base64url')}`;
}

const claims = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  iss: ISSUER, aud: AUDIENCE, sub: 'alice', iat: SEC - 10, exp: SEC + 300, ...extra,
});

function rs256(extraClaims: Record<string, unknown> = {}, header: Record<string, unknown> = {}, key: KeyObject = rsa.privateKey): string {
  return signRaw(JSON.stringify({ alg: 'RS256', kid: 'rsa1', ...header }), JSON.stringify(claims(extraClaims)), key);
}

function unsigned(alg: string): string {
  return `${b64u(JSON.stringify({ alg, kid: 'rsa1' }))}.${b64u(JSON.stringify(claims()))}.`;
}

const BASE: JwtValidatorSettings = {
  openidConfig: [`${ISSUER}/.well-known/openid-configuration`],
  issuers: [ISSUER],
  audiences: [AUDIENCE],
  allowedAlgorithms: ['RS256', 'ES256'],
  requiredClaims: [{ name: 'sub', match: 'all', values: [] }],
};

interface Case {
  row: number;
  name: string;
  token: () => string;
  settings?: JwtValidatorSettings;
  /** Several reasons when which check fires first depends on random signature bytes. */
  expect: 'accept' | JwtReason | JwtReason[];
}

const CASES: Case[] = [
  { row: 1, name: 'baseline RS256, kid in JWKS', token: () => rs256(), expect: 'accept' },
  ...['none', 'None', 'NONE', 'nOnE'].map((alg): Case => ({ row: 2, name: `alg=${alg}`, token: () => unsigned(alg), expect: 'TokenSignatureInvalid' })),
  { row: 2, name: 'alg=none even when allowedAlgorithms is left at its default', token: () => unsigned('none'), settings: { allowedAlgorithms: undefined }, expect: 'TokenSignatureInvalid' },
  { row: 3, name: 'null signature with alg RS256', token: () => rs256().replace(/[^.]+$/, ''), expect: 'TokenSignatureInvalid' },
  {
    row: 4, name: 'payload tampered, signature kept',
    token: () => { const [h, , s] = rs256().split('.'); return `${h}.${b64u(JSON.stringify(claims({ sub: 'admin' })))}.${s}`; },
    expect: 'TokenSignatureInvalid',
  },
  // The shortened segment usually ends in a non-canonical character (caught by the base64url check), otherwise the signature fails.
  { row: 5, name: 'signature truncated by 4 characters', token: () => rs256().slice(0, -4), expect: ['JwtInvalid', 'TokenSignatureInvalid'] },
  {
    row: 6, name: 'RS→HS confusion: HS256 keyed with the RSA public PEM, kid of the RSA key (JWKS)',
    token: () => signRaw(JSON.stringify({ alg: 'HS256', kid: 'rsa1' }), JSON.stringify(claims()), Buffer.from(rsaPem)),
    settings: { allowedAlgorithms: ['RS256', 'ES256', 'HS256'] }, expect: 'TokenSignatureKeyNotFound',
  },
  {
    row: 6, name: 'RS→HS confusion against a configured PEM key with HS256 allowed',
    token: () => signRaw(JSON.stringify({ alg: 'HS256' }), JSON.stringify(claims()), Buffer.from(rsaPem)),
    settings: { openidConfig: [], issuerSigningKeys: [{ kind: 'pem', value: rsaPem }], allowedAlgorithms: ['RS256', 'HS256'] },
    expect: 'TokenSignatureKeyNotFound',
  },
  {
    row: 7, name: 'HS256 with a blank secret',
    token: () => signRaw(JSON.stringify({ alg: 'HS256', kid: 'rsa1' }), JSON.stringify(claims()), Buffer.alloc(0)),
    settings: { allowedAlgorithms: ['RS256', 'HS256'] }, expect: 'TokenSignatureKeyNotFound',
  },
  { row: 9, name: 'expired (exp = now-120)', token: () => rs256({ exp: SEC - 120 }), expect: 'TokenExpired' },
  { row: 9, name: 'exp == now', token: () => rs256({ exp: SEC }), expect: 'TokenExpired' },
  { row: 10, name: 'exp = now-120 within a 300 s clock skew', token: () => rs256({ exp: SEC - 120 }), settings: { clockSkew: 300_000 }, expect: 'accept' },
  { row: 11, name: 'nbf = now+600', token: () => rs256({ nbf: SEC + 600 }), expect: 'TokenNotYetValid' },
  { row: 11, name: 'nbf = now+1', token: () => rs256({ nbf: SEC + 1 }), expect: 'TokenNotYetValid' },
  { row: 12, name: 'missing exp', token: () => rs256({ exp: undefined }), expect: 'TokenClaimNotFound' },
  { row: 13, name: 'exp as a string', token: () => rs256({ exp: '9999999999' }), expect: 'JwtInvalid' },
  { row: 14, name: 'iat in the future (now+3600)', token: () => rs256({ iat: SEC + 3600, exp: SEC + 7200 }), expect: 'TokenNotYetValid' },
  { row: 15, name: 'too old: iat = now-7200 with maxTokenAge 1 h', token: () => rs256({ iat: SEC - 7200 }), settings: { maxTokenAge: 3_600_000 }, expect: 'TokenExpired' },
  { row: 16, name: 'aud of another API (cross-service replay)', token: () => rs256({ aud: 'https://other.test' }), expect: 'TokenAudienceNotAllowed' },
  { row: 16, name: 'aud array containing ours', token: () => rs256({ aud: ['https://other.test', AUDIENCE] }), expect: 'accept' },
  { row: 16, name: 'aud = []', token: () => rs256({ aud: [] }), expect: 'TokenAudienceNotAllowed' },
  { row: 16, name: 'aud missing', token: () => rs256({ aud: undefined }), expect: 'TokenAudienceNotAllowed' },
  { row: 17, name: 'iss of another issuer', token: () => rs256({ iss: 'https://evil.test' }), expect: 'TokenIssuerNotAllowed' },
  { row: 18, name: 'crit names an unknown extension', token: () => rs256({}, { crit: ['foo'], foo: 1 }), expect: 'JwtInvalid' },
  { row: 19, name: 'crit lists a registered claim', token: () => rs256({}, { crit: ['exp'], exp: 1 }), expect: 'JwtInvalid' },
  { row: 20, name: 'b64:false in a JWT', token: () => rs256({}, { b64: false, crit: ['b64'] }), expect: 'JwtInvalid' },
  { row: 21, name: 'jku injection with the attacker key and a new kid', token: () => rs256({}, { jku: `${ATTACKER}/jwks.json`, kid: 'evil' }, attacker.privateKey), expect: 'TokenSignatureKeyNotFound' },
  { row: 22, name: 'jku with the legitimate kid, attacker-signed', token: () => rs256({}, { jku: `${ATTACKER}/jwks.json` }, attacker.privateKey), expect: 'TokenSignatureInvalid' },
  { row: 23, name: 'x5u injection', token: () => rs256({}, { x5u: `${ATTACKER}/c.pem` }, attacker.privateKey), expect: 'TokenSignatureInvalid' },
  {
    row: 24, name: 'embedded jwk of the attacker (CVE-2018-0114)',
    token: () => rs256({}, { jwk: attacker.publicKey.export({ format: 'jwk' }) }, attacker.privateKey), expect: 'TokenSignatureInvalid',
  },
  ...['', '../../../../dev/null', "x' UNION SELECT '1';--", '|sleep 10'].flatMap((kid): Case[] => [
    {
      row: 25, name: `kid injection ${JSON.stringify(kid)}, HS256 with secret "1"`,
      token: () => signRaw(JSON.stringify({ alg: 'HS256', kid }), JSON.stringify(claims()), Buffer.from('1')), expect: 'TokenAlgorithmNotAllowed',
    },
    {
      row: 25, name: `kid injection ${JSON.stringify(kid)}, HS256 allowed, secret "1"`,
      token: () => signRaw(JSON.stringify({ alg: 'HS256', kid }), JSON.stringify(claims()), Buffer.from('1')),
      settings: { allowedAlgorithms: ['RS256', 'HS256'] }, expect: 'TokenSignatureKeyNotFound',
    },
  ]),
  { row: 26, name: 'unknown kid', token: () => rs256({}, { kid: 'nobody' }), expect: 'TokenSignatureKeyNotFound' },
  {
    row: 27, name: 'JWK alg RS256, header PS256, valid PS256 signature',
    token: () => signRaw(JSON.stringify({ alg: 'PS256', kid: 'rsa1' }), JSON.stringify(claims()), rsa.privateKey),
    settings: { allowedAlgorithms: ['RS256', 'PS256'] }, expect: 'TokenSignatureKeyNotFound',
  },
  {
    row: 28, name: 'psychic signature: ES256 with r = s = 0',
    token: () => `${b64u(JSON.stringify({ alg: 'ES256', kid: 'ec1' }))}.${b64u(JSON.stringify(claims()))}.${b64u(Buffer.alloc(64))}`,
    expect: 'TokenSignatureInvalid',
  },
  { row: 28, name: 'control: a real ES256 token from the same key', token: () => signRaw(JSON.stringify({ alg: 'ES256', kid: 'ec1' }), JSON.stringify(claims()), ec.privateKey), expect: 'accept' },
  { row: 29, name: 'ECDSA signature DER-encoded', token: () => signRaw(JSON.stringify({ alg: 'ES256', kid: 'ec1' }), JSON.stringify(claims()), ec.privateKey, 'der'), expect: 'TokenSignatureInvalid' },
  { row: 30, name: 'ID token (typ JWT) where an access token (at+jwt) is required', token: () => rs256({}, { typ: 'JWT' }), settings: { tokenType: 'at+jwt' }, expect: 'TokenTypeNotAllowed' },
  { row: 30, name: 'typ application/at+jwt is normalised', token: () => rs256({}, { typ: 'application/at+jwt' }), settings: { tokenType: 'at+jwt' }, expect: 'accept' },
  { row: 31, name: 'five-part JWE sent to the JWS verifier', token: () => `${b64u('{"alg":"dir","enc":"A128GCM"}')}.a.b.c.d`, expect: 'JwtInvalid' },
  {
    row: 32, name: 'duplicate claim names ("sub":"alice","sub":"admin")',
    token: () => signRaw(JSON.stringify({ alg: 'RS256', kid: 'rsa1' }), JSON.stringify(claims()).replace(/}$/, ',"sub":"admin"}'), rsa.privateKey),
    expect: 'JwtInvalid',
  },
  { row: 33, name: 'RS256 with a 1024-bit key in the JWKS', token: () => rs256({}, { kid: 'weak' }, weakRsa.privateKey), expect: 'TokenSignatureKeyNotFound' },
];

/** Rows decided when the policy is loaded: a weak key is a configuration problem, never a runtime accept. */
const CONFIG_CASES: Array<{ row: number; name: string; settings: JwtValidatorSettings; problem: RegExp }> = [
  { row: 7, name: 'blank HMAC secret', settings: { issuerSigningKeys: [{ kind: 'hmac', value: '' }] }, problem: /at least 32 bytes/ },
  { row: 8, name: 'HMAC secret "secret" (6 bytes)', settings: { issuerSigningKeys: [{ kind: 'hmac', value: Buffer.from('secret').toString('base64') }] }, problem: /at least 32 bytes/ },
  { row: 8, name: 'HMAC secret of 31 bytes', settings: { issuerSigningKeys: [{ kind: 'hmac', value: Buffer.alloc(31, 1).toString('base64') }] }, problem: /at least 32 bytes/ },
  { row: 33, name: 'configured 1024-bit RSA key', settings: { issuerSigningKeys: [{ kind: 'pem', value: weakRsa.publicKey.export({ format: 'pem', type: 'spki' }) as string }] }, problem: /too weak/ },
  { row: 2, name: 'alg none in allowedAlgorithms', settings: { issuerSigningKeys: [{ kind: 'pem', value: rsaPem }], allowedAlgorithms: ['RS256', 'none'] }, problem: /none/ },
];

/** The only URLs the gateway may ever fetch: the configured discovery document and its jwks_uri. */
function idp() {
  const fetched: string[] = [];
  const fetch: FetchLike = async (url) => {
    fetched.push(url);
    if (url === `${ISSUER}/.well-known/openid-configuration`) return Response.json({ issuer: ISSUER, jwks_uri: `${ISSUER}/jwks` });
    if (url === `${ISSUER}/jwks`) return Response.json(JWKS);
    return new Response('not found', { status: 404 });
  };
  return { fetch, fetched };
}

for (const c of CASES) {
  test(`row ${c.row}: ${c.name} → ${String(c.expect)}`, async () => {
    const { fetch, fetched } = idp();
    const v = createJwtValidator({ ...BASE, ...c.settings }, { fetch, now: () => NOW });
    try {
      const r = await v.validate(c.token());
      const got = r.ok ? 'accept' : r.reason;
      if (Array.isArray(c.expect)) assert.ok((c.expect as string[]).includes(got), `${got}: ${r.ok ? 'accepted' : r.detail}`);
      else assert.equal(got, c.expect, r.ok ? 'accepted' : r.detail);
      if (!r.ok) assert.deepEqual([r.status, r.message], [401, 'Invalid JWT.']);
      for (const u of fetched) assert.ok(u.startsWith(`${ISSUER}/`), `fetched ${u}: keys come only from configured discovery`);
      // Row 26: an unknown kid costs at most one refetch of the JWKS.
      assert.ok(fetched.filter((u) => u.endsWith('/jwks')).length <= 2, fetched.join(' '));
    } finally {
      v.close();
    }
  });
}

for (const c of CONFIG_CASES) {
  test(`row ${c.row} (configuration): ${c.name} is refused`, () => {
    const { problems } = resolveJwtSettings(c.settings);
    assert.match(problems.join(' | '), c.problem);
    assert.throws(() => createJwtValidator(c.settings));
  });
}

test('row 26: repeated unknown kids cause one refetch per cooldown, not one per request', async () => {
  const { fetch, fetched } = idp();
  const v = createJwtValidator(BASE, { fetch, now: () => NOW });
  try {
    for (let i = 0; i < 20; i++) {
      const r = await v.validate(rs256({ n: i }, { kid: `nobody-${i}` }));
      assert.equal(r.ok ? 'accept' : r.reason, 'TokenSignatureKeyNotFound');
    }
    assert.equal(fetched.filter((u) => u.endsWith('/jwks')).length, 2, 'initial load + one refetch');
  } finally {
    v.close();
  }
});

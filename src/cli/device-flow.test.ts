// The device flow client against a real oidc-provider (the test fixture and `lockgate up`'s demo), and a scripted one.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { CookieJar, DEVICE_CLIENT, OidcFixture, approveDevice, jwtClaims, oidcProviderMissing } from '../../test/helpers/oidc-provider.ts';
import { DEMO_IDP_CLI_CLIENT_ID, startDemoIdp } from '../app/demo-idp.ts';
import { DeviceFlowError, deviceLogin, discover, pollDeviceToken, refresh, startDeviceAuthorization, type DeviceAuthorization, type TokenSet } from './device-flow.ts';

const SCOPES = ['openid', 'email', 'profile', 'groups', 'offline_access'];

/** Polls every few milliseconds instead of every 5 s. */
const quickSleep = (ms: number, signal?: AbortSignal): Promise<void> => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, Math.min(ms, 20));
  signal?.addEventListener('abort', () => {
    clearTimeout(t);
    reject(signal.reason);
  }, { once: true });
});

/** A device login where a browser approves (or declines) as `user` as soon as the code is shown. */
async function login(issuer: string, clientId: string, user: string, decline = false): Promise<{ tokens: TokenSet & { endpoints: { tokenEndpoint: string } }; auth: DeviceAuthorization }> {
  let browser: Promise<unknown> = Promise.resolve();
  let auth: DeviceAuthorization | undefined;
  try {
    const tokens = await deviceLogin(issuer, clientId, {
      scopes: SCOPES,
      sleep: quickSleep,
      deadline: Date.now() + 20_000,
      onCode(a) {
        auth = a;
        browser = approveDevice(new CookieJar(), a.verificationUriComplete!, user, { decline });
      },
    });
    return { tokens, auth: auth! };
  } finally {
    await browser;
  }
}

describe('against the oidc-provider fixture', { skip: oidcProviderMissing }, () => {
  let idp: OidcFixture;
  before(async () => {
    idp = await OidcFixture.start({ clients: [DEVICE_CLIENT] });
  });
  after(async () => {
    await idp?.close();
  });

  test('a device login for alice returns an ID token with her email and groups, and a refresh token that keeps working', async () => {
    const { tokens, auth } = await login(idp.issuer, 'lockgate-cli', 'alice');
    assert.match(auth.userCode, /^[A-Z]{4}-[A-Z]{4}$/);
    assert.equal(auth.verificationUri, `${idp.issuer}/device`);
    assert.equal(auth.intervalMs, 5000);
    const claims = jwtClaims(tokens.idToken);
    assert.equal(claims.iss, idp.issuer);
    assert.equal(claims.aud, 'lockgate-cli');
    assert.equal(claims.sub, 'alice');
    assert.equal(claims.email, 'alice@example.com');
    assert.deepEqual(claims.groups, ['eng', 'admins']);
    assert.equal(tokens.expiresAt, (claims.exp as number) * 1000);
    assert.deepEqual(tokens.claims, claims);
    assert.ok(tokens.refreshToken);
    assert.equal(tokens.endpoints.tokenEndpoint, `${idp.issuer}/token`);

    // Public clients get rotating refresh tokens: each refresh answers a new one, and the new one works again.
    const r1 = await refresh(tokens.endpoints.tokenEndpoint, 'lockgate-cli', tokens.refreshToken);
    assert.notEqual(r1.refreshToken, tokens.refreshToken);
    assert.equal(jwtClaims(r1.idToken).aud, 'lockgate-cli');
    assert.deepEqual(jwtClaims(r1.idToken).groups, ['eng', 'admins']);
    assert.equal(jwtClaims(r1.idToken).email, 'alice@example.com');
    const r2 = await refresh(tokens.endpoints.tokenEndpoint, 'lockgate-cli', r1.refreshToken!);
    assert.equal(jwtClaims(r2.idToken).sub, 'alice');
    assert.ok(r2.refreshToken);
    assert.ok((idp.grants.get('refresh_token') ?? 0) >= 2);

    const bad = await refresh(tokens.endpoints.tokenEndpoint, 'lockgate-cli', 'not-a-refresh-token').catch((e: unknown) => e);
    assert.ok(bad instanceof DeviceFlowError);
    assert.equal(bad.code, 'invalid_grant');
    assert.match(bad.message, /^the token refresh was refused: invalid_grant/);
  });

  test('access_denied when the person aborts at the confirmation page', async () => {
    const err = await login(idp.issuer, 'lockgate-cli', 'bob', true).catch((e: unknown) => e);
    assert.ok(err instanceof DeviceFlowError, String(err));
    assert.equal(err.code, 'access_denied');
    assert.match(err.message, /declined at the provider/);
  });

  test('discovery finds the endpoints; an unknown client is refused with a hint', async () => {
    const ep = await discover(idp.issuer);
    assert.deepEqual(ep, { issuer: idp.issuer, deviceAuthorizationEndpoint: `${idp.issuer}/device/auth`, tokenEndpoint: `${idp.issuer}/token` });
    const err = await startDeviceAuthorization(ep.deviceAuthorizationEndpoint, 'nobody', SCOPES).catch((e: unknown) => e);
    assert.ok(err instanceof DeviceFlowError);
    assert.equal(err.code, 'invalid_client');
    assert.match(err.message, /the device authorization request was refused: invalid_client.*is nobody registered at the provider as a public client/);
  });
});

test('the demo identity provider of `lockgate up` signs bob in through its lockgate-cli client', { skip: oidcProviderMissing }, async () => {
  const idp = await startDemoIdp();
  try {
    const { tokens } = await login(idp.issuer, DEMO_IDP_CLI_CLIENT_ID, 'bob');
    const claims = jwtClaims(tokens.idToken);
    assert.equal(claims.aud, DEMO_IDP_CLI_CLIENT_ID);
    assert.equal(claims.email, 'bob@example.com');
    assert.deepEqual(claims.groups, ['staff']);
    const again = await refresh(tokens.endpoints.tokenEndpoint, DEMO_IDP_CLI_CLIENT_ID, tokens.refreshToken!);
    assert.equal(jwtClaims(again.idToken).sub, 'bob');
    // The authorization-code shortcut still works beside it.
    assert.match(await idp.token('alice'), /^ey/);
  } finally {
    await idp.close();
  }
});

/** A scripted token endpoint (and discovery): answers the queued replies in order, recording each form it got. */
async function scripted(replies: Array<[number, Record<string, unknown>]>, discovery?: Record<string, unknown>): Promise<{ url: string; forms: URLSearchParams[]; close(): Promise<void> }> {
  const forms: URLSearchParams[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.url === '/.well-known/openid-configuration') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(discovery ?? {}));
      forms.push(new URLSearchParams(body));
      const [status, json] = replies.shift() ?? [500, { error: 'server_error', error_description: 'script ran out' }];
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(json));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    forms,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

const fakeJwt = (claims: Record<string, unknown>): string => `e30.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.sig`;
const AUTH = (now: number, expiresInS = 600): DeviceAuthorization => ({ deviceCode: 'dc', userCode: 'ABCD-EFGH', verificationUri: 'http://x/device', expiresAt: now + expiresInS * 1000, intervalMs: 5000 });

/** A clock that moves only when the flow sleeps, recording each wait. */
function fakeClock(): { now: () => number; sleep: (ms: number) => Promise<void>; waits: number[] } {
  let t = 1_000_000;
  const waits: number[] = [];
  return { now: () => t, sleep: async (ms) => void (waits.push(ms), (t += ms)), waits };
}

test('polling honours the interval, slow_down (+5 s each time) and authorization_pending, then returns the tokens', async () => {
  const idToken = fakeJwt({ sub: 'carol', exp: 2_000_000 });
  const s = await scripted([
    [400, { error: 'authorization_pending' }],
    [400, { error: 'slow_down' }],
    [400, { error: 'authorization_pending' }],
    [400, { error: 'slow_down' }],
    [200, { id_token: idToken, refresh_token: 'rt1', access_token: 'at', token_type: 'Bearer' }],
  ]);
  try {
    const c = fakeClock();
    const t = await pollDeviceToken(`${s.url}/token`, 'cli', AUTH(c.now()), { now: c.now, sleep: c.sleep });
    assert.deepEqual(c.waits, [5000, 5000, 10_000, 10_000, 15_000]);
    assert.equal(t.idToken, idToken);
    assert.equal(t.refreshToken, 'rt1');
    assert.equal(t.expiresAt, 2_000_000_000);
    assert.equal(t.claims.sub, 'carol');
    assert.equal(s.forms.length, 5);
    assert.deepEqual(Object.fromEntries(s.forms[0]), { grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: 'dc', client_id: 'cli' });
  } finally {
    await s.close();
  }
});

test('polling ends with expired_token from the provider, at the code expiry, at a deadline, or when aborted', async () => {
  const s = await scripted([[400, { error: 'expired_token', error_description: 'device code is expired' }]]);
  try {
    const c = fakeClock();
    const err = await pollDeviceToken(`${s.url}/token`, 'cli', AUTH(c.now()), { now: c.now, sleep: c.sleep }).catch((e: unknown) => e);
    assert.ok(err instanceof DeviceFlowError);
    assert.equal(err.code, 'expired_token');
    assert.match(err.message, /expired before the sign-in finished: run `lockgate login` again/);
  } finally {
    await s.close();
  }
  const pending = await scripted(Array.from({ length: 40 }, () => [400, { error: 'authorization_pending' }] as [number, Record<string, unknown>]));
  try {
    // The code runs out (12 s: polls at 5 s, 10 s, then a last one at 12 s).
    let c = fakeClock();
    let err = await pollDeviceToken(`${pending.url}/token`, 'cli', AUTH(c.now(), 12), { now: c.now, sleep: c.sleep }).catch((e: unknown) => e);
    assert.equal((err as DeviceFlowError).code, 'expired_token');
    assert.deepEqual(c.waits, [5000, 5000, 2000]);
    // Our own deadline comes first.
    c = fakeClock();
    err = await pollDeviceToken(`${pending.url}/token`, 'cli', AUTH(c.now()), { now: c.now, sleep: c.sleep, deadline: c.now() + 7000 }).catch((e: unknown) => e);
    assert.equal((err as DeviceFlowError).code, 'timeout');
    assert.match((err as Error).message, /gave up waiting/);
    // Aborted while waiting.
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    err = await pollDeviceToken(`${pending.url}/token`, 'cli', AUTH(Date.now()), { signal: ac.signal, sleep: quickSleep }).catch((e: unknown) => e);
    assert.equal((err as DeviceFlowError).code, 'aborted');
    assert.equal((err as Error).message, 'sign-in cancelled');
  } finally {
    await pending.close();
  }
});

test('other provider errors are reported with their description; an answer without an ID token is refused', async () => {
  const s = await scripted([
    [400, { error: 'invalid_grant', error_description: 'device code not found' }],
    [200, { access_token: 'at', token_type: 'Bearer' }],
    [503, {}],
    [503, {}],
    [503, {}],
  ]);
  try {
    const c = fakeClock();
    const poll = (): Promise<unknown> => pollDeviceToken(`${s.url}/token`, 'cli', AUTH(c.now()), { now: c.now, sleep: c.sleep }).catch((e: unknown) => e);
    let err = (await poll()) as DeviceFlowError;
    assert.equal(err.message, 'the token request was refused: invalid_grant: device code not found');
    err = (await poll()) as DeviceFlowError;
    assert.equal(err.code, 'no_id_token');
    // Server errors are retried a few times with a doubled wait, then reported.
    c.waits.length = 0;
    err = (await poll()) as DeviceFlowError;
    assert.equal(err.code, 'bad_response');
    assert.match(err.message, /answered HTTP 503/);
    assert.deepEqual(c.waits, [5000, 10_000, 20_000]);
  } finally {
    await s.close();
  }
});

test('refresh keeps the old refresh token when the provider answers none', async () => {
  const s = await scripted([[200, { id_token: fakeJwt({ sub: 'carol', exp: 3_000_000 }), access_token: 'at' }]]);
  try {
    const t = await refresh(`${s.url}/token`, 'cli', 'rt-old');
    assert.equal(t.refreshToken, 'rt-old');
    assert.equal(t.expiresAt, 3_000_000_000);
    assert.deepEqual(Object.fromEntries(s.forms[0]), { grant_type: 'refresh_token', refresh_token: 'rt-old', client_id: 'cli' });
  } finally {
    await s.close();
  }
});

test('discovery: a provider without a device endpoint, an unreachable one, and plain http beyond this machine are refused clearly', async () => {
  const s = await scripted([], { issuer: 'x', token_endpoint: 'http://127.0.0.1:1/token' });
  try {
    const err = await discover(s.url).catch((e: unknown) => e);
    assert.ok(err instanceof DeviceFlowError);
    assert.equal(err.code, 'no_device_flow');
    assert.match(err.message, /does not offer the device authorization grant \(no device_authorization_endpoint/);
  } finally {
    await s.close();
  }
  const down = await discover(s.url).catch((e: unknown) => e);
  assert.match((down as Error).message, /^cannot reach the identity provider at http:\/\/127\.0\.0\.1:\d+\/\.well-known\/openid-configuration: ECONNREFUSED/);
  const plain = await discover('http://idp.example.com').catch((e: unknown) => e);
  assert.match((plain as Error).message, /must be https:\/\//);
});

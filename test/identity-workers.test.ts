// Login sessions across gateway worker threads: the callback and later requests land on different workers (SO_REUSEPORT).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { GatewaySupervisor } from '../src/app/gateway-supervisor.ts';
import { startUpstream } from './helpers/upstream.ts';
import { CookieJar, OidcFixture, browserLogin, oidcProviderMissing } from './helpers/oidc-provider.ts';

test('two workers share login sessions (sessions.db): every request on a new connection keeps the session', { timeout: 60_000, skip: oidcProviderMissing }, async () => {
  const idp = await OidcFixture.start();
  const upstream = await startUpstream();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-idw-'));
  const file = path.join(dir, 'gw.yaml');
  writeFileSync(file, `apiVersion: lockgate.dev/v1alpha1
kind: Gateway
metadata: { name: t }
spec:
  listeners: [{ name: http, address: 127.0.0.1, port: 0 }]
  admin: { enabled: false }
  accessLog: { enabled: false }
---
apiVersion: lockgate.dev/v1alpha1
kind: Backend
metadata: { name: up }
spec: { url: ${upstream.url} }
---
apiVersion: lockgate.dev/v1alpha1
kind: IdentityProvider
metadata: { name: corp }
spec: { issuer: ${idp.issuer}, clientId: gateway, clientSecret: gateway-secret, scopes: [openid, email, groups] }
---
apiVersion: lockgate.dev/v1alpha1
kind: Api
metadata: { name: app }
spec: { path: /app, backend: up, authentication: { providers: [corp], login: true } }
`);
  const sup = new GatewaySupervisor({ files: [file], workers: 2, watch: false, log: () => {}, drainTimeoutMs: 1000, dataDir: dir });
  try {
    const started = await sup.start();
    assert.equal(started.ok, true, started.ok ? '' : started.problems);
    const gw = `http://127.0.0.1:${sup.ports.http}`;
    idp.setClients([{ client_id: 'gateway', client_secret: 'gateway-secret', redirect_uris: [`${gw}/.lockgate/callback`], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] }]);
    const jar = new CookieJar();
    // undici's request pools connections per origin: each hop of the login is its own connection here only by chance,
    // so the check below makes the spread certain enough: 40 fresh connections, each to whichever worker the kernel picks.
    const hops = await browserLogin(jar, `${gw}/app/start`, 'alice');
    assert.equal(hops[hops.length - 1].status, 200, hops.map((h) => `${h.status} ${h.url}`).join('\n'));
    const cookie = jar.cookieHeader(gw)!;
    const statuses: number[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await request(`${gw}/app/${i}`, { headers: { cookie, accept: 'application/json', connection: 'close' }, reset: true });
      await r.body.text();
      statuses.push(r.statusCode);
    }
    assert.deepEqual([...new Set(statuses)], [200], statuses.join(','));
  } finally {
    await sup.drain();
    await upstream.close();
    await idp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

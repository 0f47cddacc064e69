// One contract for both session stores; the SQLite one also across two connections to one file (two worker threads).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MemorySessionStore, newSessionId, type SessionRecord, type SessionStore } from '../proxy/session-store.ts';
import { SqliteSessionStore } from './sqlite-session-store.ts';

const T = 1_750_000_000_000;
const rec = (extra: Partial<SessionRecord> = {}): SessionRecord => ({
  provider: 'default/corp', claims: { sub: 'alice', groups: ['eng'] }, idToken: 'id', accessToken: 'at', refreshToken: 'rt',
  tokenExpiresAt: T + 300_000, tokenLifetime: 300_000, createdAt: T, lastSeenAt: T, expiresAt: T + 3_600_000, ...extra,
});

function contract(name: string, open: () => { a: SessionStore; b: SessionStore; close(): void }): void {
  test(`${name}: sessions, single-use logins, one refresher at a time, expiry`, () => {
    const { a, b, close } = open();
    try {
      const id = newSessionId();
      assert.match(id, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(a.get(id, T), undefined);
      a.put(id, rec());
      assert.deepEqual(b.get(id, T + 1), rec(), 'written by one worker, read by the other');
      b.touch(id, T + 5000);
      assert.equal(a.get(id, T + 5001)?.lastSeenAt, T + 5000);
      // One refresher across workers until its claim lapses or the refreshed record is stored.
      assert.equal(a.claimRefresh(id, T + 6000, T + 36_000), true);
      assert.equal(b.claimRefresh(id, T + 6001, T + 36_001), false);
      assert.equal(b.claimRefresh(id, T + 36_000, T + 66_000), true, 'a lapsed claim can be taken over');
      b.put(id, rec({ accessToken: 'at2' }));
      assert.equal(a.claimRefresh(id, T + 36_001, T + 66_001), true, 'storing the refreshed record ends the claim');
      assert.equal(a.get(id, T + 7000)?.accessToken, 'at2');
      assert.equal(a.get(id, T + 3_600_000), undefined, 'past maxAge the session is gone');
      b.delete(id);
      assert.equal(a.get(id, T), undefined);
      assert.equal(a.claimRefresh(id, T, T + 1), false);

      const login = { provider: 'default/corp', codeVerifier: 'v', nonce: 'n', returnTo: '/x', redirectUri: 'http://gw/.lockgate/callback', expiresAt: T + 600_000 };
      a.putLogin('state-1', login);
      assert.deepEqual(b.takeLogin('state-1', T), login);
      assert.equal(a.takeLogin('state-1', T), undefined, 'a state is good for one callback');
      a.putLogin('state-2', login);
      assert.equal(b.takeLogin('state-2', T + 600_000), undefined, 'an expired login is refused');
    } finally {
      close();
    }
  });
}

contract('memory', () => {
  const s = new MemorySessionStore();
  return { a: s, b: s, close: () => s.close() };
});

contract('sqlite (two connections)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-sessions-'));
  const a = SqliteSessionStore.open(dir);
  const b = SqliteSessionStore.open(dir);
  return {
    a,
    b,
    close() {
      a.close();
      b.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

test('sqlite: the file is private to the gateway user and keyed by hashes, not session ids', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-sessions-'));
  const s = SqliteSessionStore.open(dir);
  try {
    const id = newSessionId();
    s.put(id, rec());
    assert.equal(statSync(s.path).mode & 0o777, 0o600);
    s.close();
    const again = SqliteSessionStore.open(dir);
    assert.equal(again.get(id, T)?.provider, 'default/corp', 'sessions survive a restart');
    again.close();
  } finally {
    s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

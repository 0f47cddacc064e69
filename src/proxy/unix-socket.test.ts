// Tests for Unix socket listeners: stale files replaced, live sockets and other files kept, mode 0600, removal on close.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { lstatSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clearStaleSocket, listenUnix } from './unix-socket.ts';
import { checkBindAddress, checkOriginUrl, unixSocketPath } from '../model/value-checks.ts';

test('unix: addresses in the model: absolute, short enough, for listeners and endpoints', () => {
  assert.equal(unixSocketPath('unix:/run/app.sock'), '/run/app.sock');
  assert.equal(unixSocketPath('127.0.0.1'), undefined);
  for (const ok of ['unix:/run/app.sock', 'unix:/tmp/a']) {
    assert.equal(checkBindAddress(ok), undefined, ok);
    assert.equal(checkOriginUrl(ok), undefined, ok);
  }
  for (const bad of ['unix:', 'unix:relative.sock', 'unix:/dir/', `unix:/${'x'.repeat(200)}`]) {
    assert.equal(typeof checkBindAddress(bad), 'string', bad);
    assert.equal(typeof checkOriginUrl(bad), 'string', bad);
  }
});

test('clearStaleSocket: nothing there, a dead socket removed, a live socket and a plain file refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lg-unix-'));
  try {
    await clearStaleSocket(join(dir, 'none.sock'));
    // A dead socket: its file stays when the listener's own path was moved away before it closed (as after a crash).
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(join(dir, 'tmp.sock'), () => r()));
    renameSync(join(dir, 'tmp.sock'), join(dir, 'dead.sock'));
    await new Promise<void>((r) => dead.close(() => r()));
    await clearStaleSocket(join(dir, 'dead.sock'));
    assert.throws(() => lstatSync(join(dir, 'dead.sock')), /ENOENT/);

    const live = net.createServer((s) => s.destroy());
    await new Promise<void>((r) => live.listen(join(dir, 'live.sock'), () => r()));
    try {
      await assert.rejects(clearStaleSocket(join(dir, 'live.sock')), /in use/);
      assert.ok(lstatSync(join(dir, 'live.sock')).isSocket());
    } finally {
      await new Promise<void>((r) => live.close(() => r()));
    }
    writeFileSync(join(dir, 'file'), 'data');
    await assert.rejects(clearStaleSocket(join(dir, 'file')), /not a socket/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('listenUnix: the socket is owner-only (0600), answers, and is removed when the server closes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lg-unix-'));
  const path = join(dir, 'out.sock');
  const server = net.createServer((s) => s.end('hi'));
  try {
    await listenUnix(server, path);
    assert.equal(lstatSync(path).mode & 0o777, 0o600);
    const got = await new Promise<string>((resolve, reject) => {
      let d = '';
      net.connect({ path }).on('data', (b: Buffer) => (d += b.toString())).on('end', () => resolve(d)).on('error', reject);
    });
    assert.equal(got, 'hi');
    await new Promise<void>((r) => server.close(() => r()));
    assert.throws(() => lstatSync(path), /ENOENT/);
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

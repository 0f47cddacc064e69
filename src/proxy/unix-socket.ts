// Unix domain socket listeners: clearing a stale socket file safely before binding, and restricting the new one to its owner.
import net from 'node:net';
import { chmodSync, lstatSync, mkdtempSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Mode of a listening socket: only the owner may connect (others can neither bypass a sidecar nor borrow its identity). */
export const SOCKET_MODE = 0o600;

/** Resolves true when something accepts a connection on the socket at `path`, false when nothing does. */
function answers(path: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ path });
    const done = (v: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(v);
    };
    // A listener too busy to accept in time is still a listener: never take its path away.
    const timer = setTimeout(() => done(true), timeoutMs);
    s.once('connect', () => done(true));
    s.once('error', (err: NodeJS.ErrnoException) => done(err.code !== 'ECONNREFUSED' && err.code !== 'ENOENT'));
  });
}

/**
 * Makes `path` free to bind: nothing there is fine; a socket file nobody answers on (left by a process that
 * died) is removed; a live socket or any other kind of file is an error, never removed.
 */
export async function clearStaleSocket(path: string, timeoutMs = 1000): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!isSocket) throw new Error(`${path} exists and is not a socket: refusing to replace it`);
  if (await answers(path, timeoutMs)) throw new Error(`${path} is in use: another process listens on it`);
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Longest path bind() takes (sun_path is 108 bytes on Linux, 104 on macOS, with the NUL). */
const MAX_PATH = 103;

/**
 * Binds `server` to the socket at `path`, owner-only from the first moment: it is bound in a fresh private
 * directory (0700: nobody else can reach it there), chmod 0600, then renamed into place, so there is no window in
 * which the umask's mode lets another user connect. (When the private path would be too long for bind, it binds in
 * place and chmods right after listen.) The socket file is removed when the server closes.
 */
export async function listenUnix(server: net.Server, path: string): Promise<void> {
  await clearStaleSocket(path);
  const dir = mkdtempSync(join(dirname(path), '.lockgate-'));
  const staged = join(dir, 's');
  const bindAt = Buffer.byteLength(staged) <= MAX_PATH ? staged : path;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: bindAt }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(bindAt, SOCKET_MODE);
    if (bindAt !== path) renameSync(bindAt, path);
  } catch (err) {
    server.close();
    throw err;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // Node removes the path it bound (gone after the rename); the socket file in place is ours to remove.
  const ino = lstatSync(path).ino;
  server.once('close', () => {
    try {
      if (lstatSync(path).ino === ino) unlinkSync(path);
    } catch {
      // already gone
    }
  });
}

// Writes a file so that readers see the old content or the new, never a half-written one (temp file, fsync, rename).
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';

/** `data` as parts is their concatenation, encoded part by part outside the JS heap (no large string is made). */
export async function writeFileAtomic(path: string, data: string | Uint8Array | readonly string[], mode = 0o600): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(typeof data === 'string' || data instanceof Uint8Array ? data : Buffer.concat(data.map((part) => Buffer.from(part))));
    await fh.chmod(mode); // the umask may have narrowed or widened what `open` set
    await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalKeyWrapper } from '../secrets/key-wrapper.ts';
import { loadMasterKeys, MASTER_KEY_FILE, NEXT_MASTER_KEY_FILE } from './master-key-source.ts';

test('data-dir keys: generated once; a rotation keeps the next key beside the old one until commit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lg-mk-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const notes: string[] = [];
  const first = await loadMasterKeys(dir, {}, (l) => notes.push(l));
  assert.match(notes.join('\n'), /generated a master key/);
  assert.equal(statSync(join(dir, MASTER_KEY_FILE)).mode & 0o777, 0o600);
  const oldId = first.keys.keyId;
  const nextText = randomBytes(32).toString('base64');
  const nextId = new LocalKeyWrapper(Buffer.from(nextText, 'base64')).keyId;
  await first.persistNext!(nextText, nextId);
  assert.equal(statSync(join(dir, NEXT_MASTER_KEY_FILE)).mode & 0o777, 0o600);
  // A restart mid-rotation opens with both keys and says how to finish.
  const mid = await loadMasterKeys(dir, {}, (l) => notes.push(l));
  assert.deepEqual(mid.keys.all().map((k) => k.keyId), [oldId, nextId]);
  assert.match(notes.at(-1)!, /did not finish .* rotate-master/);
  await mid.commit!();
  assert.equal(existsSync(join(dir, NEXT_MASTER_KEY_FILE)), false);
  assert.equal(readFileSync(join(dir, MASTER_KEY_FILE), 'utf8').trim(), nextText);
  const after = await loadMasterKeys(dir, {}, () => {});
  assert.deepEqual(after.keys.all().map((k) => k.keyId), [nextId]);
});

test('environment keys: nothing persisted; a previous key may be given to finish an interrupted rotation', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lg-mk-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const current = randomBytes(32).toString('base64');
  const previousFile = join(dir, 'old.key');
  writeFileSync(previousFile, randomBytes(32).toString('hex'), { mode: 0o600 });
  const src = await loadMasterKeys(dir, { LOCKGATE_MASTER_KEY: current, LOCKGATE_MASTER_KEY_PREVIOUS_FILE: previousFile }, () => {});
  assert.equal(src.persistNext, undefined);
  assert.equal(src.keys.all().length, 2);
  assert.equal(src.keys.rotating, true);
  assert.equal(existsSync(join(dir, MASTER_KEY_FILE)), false, 'no key file is generated when the environment names one');
});

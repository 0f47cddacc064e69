// Tests for the unified diff `lockgate diff` prints and the file mapping `apply` uses for problems.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { readManifests } from './apply.ts';
import { unifiedDiff } from './diff.ts';

test('unifiedDiff: equal texts give nothing; changes get hunks with context, removals first', () => {
  assert.equal(unifiedDiff('a\nb\n', 'a\nb\n', 'x', 'y'), '');
  const a = Array.from({ length: 12 }, (_, i) => `l${i + 1}`).join('\n') + '\n';
  const b = a.replace('l2\n', 'L2\n').replace('l11\n', '');
  assert.equal(unifiedDiff(a, b, 'old', 'new'), [
    '--- old', '+++ new',
    '@@ -1,5 +1,5 @@', ' l1', '-l2', '+L2', ' l3', ' l4', ' l5',
    '@@ -8,5 +8,4 @@', ' l8', ' l9', ' l10', '-l11', ' l12', '',
  ].join('\n'));
  assert.equal(unifiedDiff('', 'k: v\n', '/dev/null', 'new'), '--- /dev/null\n+++ new\n@@ -0,0 +1,1 @@\n+k: v\n');
  assert.equal(unifiedDiff('k: v\n', '', 'old', '/dev/null'), '--- old\n+++ /dev/null\n@@ -1,1 +0,0 @@\n-k: v\n');
});

test('readManifests joins files and maps body lines back to each file', async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-manifests-'));
  try {
    writeFileSync(path.join(dir, 'a.yaml'), 'a: 1\nb: 2'); // no final newline
    writeFileSync(path.join(dir, 'b.yml'), 'c: 3\nd: 4\n');
    writeFileSync(path.join(dir, 'skip.txt'), 'nope');
    const m = await readManifests([dir]);
    assert.equal(m.body, 'a: 1\nb: 2\n---\nc: 3\nd: 4\n');
    const at = (line: number) => m.mapProblem({ file: 'request', line, col: 1, path: '', message: '' });
    assert.deepEqual([at(2).file, at(2).line], [path.join(dir, 'a.yaml'), 2]);
    assert.deepEqual([at(5).file, at(5).line], [path.join(dir, 'b.yml'), 2]);
    assert.equal(m.mapProblem({ file: '/config/Api/default/x', line: 5, col: 1, path: '', message: '' }).file, '/config/Api/default/x');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// `npm pack` produces a package that installs with `npm i -g` and runs on Node 24 (compiled JS, no type stripping).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');

test('npm pack → npm i -g → lockgate --version and validate run from dist/', { timeout: 240_000 }, () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-pack-'));
  // npm scripts put the pinned Node first on PATH; the global install and the bin must use it too.
  const env = { ...process.env, PATH: `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH}` };
  try {
    const out = execFileSync('npm', ['pack', '--pack-destination', dir, '--silent'], { cwd: ROOT, env, encoding: 'utf8', timeout: 180_000 });
    const tgz = path.join(dir, out.trim().split('\n').pop()!);
    assert.ok(existsSync(tgz), `packed ${tgz}`);
    const listing = execFileSync('tar', ['tzf', tgz], { encoding: 'utf8' });
    assert.match(listing, /package\/dist\/cli\/main\.js/);
    assert.match(listing, /package\/schema\/lockgate\.schema\.json/);
    assert.doesNotMatch(listing, /package\/src\//, 'no TypeScript sources in the package');
    assert.doesNotMatch(listing, /\.test\.js/, 'no tests in the package');
    const prefix = path.join(dir, 'prefix');
    execFileSync('npm', ['i', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', tgz], { env, timeout: 180_000, stdio: 'ignore' });
    const bin = path.join(prefix, 'bin', 'lockgate');
    const v = spawnSync(bin, ['--version'], { env, encoding: 'utf8', timeout: 20_000 });
    assert.equal(v.status, 0, v.stderr);
    assert.match(v.stdout, /^lockgate \d+\.\d+\.\d+ \(node v24\./);
    const val = spawnSync(bin, ['validate', path.join(ROOT, 'examples/lockgate.yaml')], { env, encoding: 'utf8', timeout: 20_000 });
    assert.equal(val.status, 0, val.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(path.join(ROOT, 'dist'), { recursive: true, force: true });
  }
});

// SIGUSR1 reopens the access log: after logrotate moves the file away, new lines go to a new file at the same path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { request } from 'undici';
import { startGateway } from './helpers/gateway-process.ts';
import { startUpstream } from './helpers/upstream.ts';
import { simpleConfig } from './helpers/config.ts';

async function waitFor(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

test('SIGUSR1: the access log is reopened at its path; no line is lost across the rotation', async () => {
  const up = await startUpstream();
  const logDir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-log-'));
  const log = path.join(logDir, 'access.log');
  const g = await startGateway(simpleConfig({ upstreamPort: up.port, gateway: `  accessLog: { path: ${log} }` }));
  try {
    const base = `http://127.0.0.1:${g.ports.http}`;
    for (let i = 0; i < 5; i++) await (await request(`${base}/before/${i}`)).body.dump();
    await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').split('\n').filter(Boolean).length === 5);
    renameSync(log, `${log}.1`);
    g.proc.kill('SIGUSR1');
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 3; i++) await (await request(`${base}/after/${i}`)).body.dump();
    await waitFor(() => existsSync(log) && readFileSync(log, 'utf8').split('\n').filter(Boolean).length === 3);
    const rotated = readFileSync(`${log}.1`, 'utf8').trim().split('\n').map((l) => JSON.parse(l).path);
    const fresh = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l).path);
    assert.deepEqual(rotated, ['/before/0', '/before/1', '/before/2', '/before/3', '/before/4']);
    assert.deepEqual(fresh, ['/after/0', '/after/1', '/after/2']);
  } finally {
    await g.stop();
    await up.close();
    rmSync(logDir, { recursive: true, force: true });
  }
});

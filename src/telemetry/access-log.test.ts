import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Exchange } from '../proxy/exchange.ts';
import { AccessLog, formatAccessLine } from './access-log.ts';
import { requestEnd } from './channels.ts';

function exchange(i: number): Exchange {
  const ex = new Exchange('http', '10.0.0.1', 'GET', 1000, Date.UTC(2026, 10, 26, 10, 0, 59, 999) + i);
  Object.assign(ex, { requestId: `r${i}`, traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), host: 'h', path: `/p/"${i}"/é`, api: 'a', operation: 'o',
    backend: 'default/b', endpoint: 'http://127.0.0.1:1', status: 200, tDispatch: 1000.5, tUpstreamStart: 1001, tResponseStart: 1002.25, tEnd: 1003 });
  return ex;
}

test('a line is valid single-line ASCII JSON with the documented fields', () => {
  const line = formatAccessLine(exchange(0));
  assert.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'));
  assert.match(line, /^[\x20-\x7e\n]*$/);
  const e = JSON.parse(line);
  assert.equal(e.time, '2026-11-26T10:00:59.999Z');
  assert.equal(JSON.parse(formatAccessLine(exchange(1))).time, '2026-11-26T10:01:00.000Z');
  assert.equal(e.path, '/p/"0"/é');
  assert.deepEqual(e.durationsUs, { routing: 500, upstreamConnect: 500, upstreamResponse: 1250, total: 3000 });
  for (const k of ['requestId', 'traceId', 'spanId', 'listener', 'api', 'operation', 'backend', 'endpoint', 'status', 'bytesIn', 'bytesOut', 'subscription']) assert.ok(k in e, k);
  assert.equal(e.subscription, '');
  const withSub = exchange(2);
  withSub.subscription = 'contoso-mobile';
  assert.equal(JSON.parse(formatAccessLine(withSub)).subscription, 'contoso-mobile');
});

test('lines published on the channel are batched into the file; close() flushes; nothing lost', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-log-'));
  const file = path.join(dir, 'access.log');
  const log = new AccessLog(file, 1000);
  for (let i = 0; i < 500; i++) requestEnd.publish(exchange(i));
  log.close();
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  assert.equal(lines.length, 500);
  assert.equal(JSON.parse(lines[499]).requestId, 'r499');
  assert.equal(log.dropped, 0);
  rmSync(dir, { recursive: true, force: true });
});

test('bounded: a full buffer drops and counts instead of growing', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lockgate-log-'));
  const log = new AccessLog(path.join(dir, 'a.log'), 1); // 64 KiB buffers
  const big = 'x'.repeat(40_000);
  for (let i = 0; i < 10; i++) log.push(big + '\n');
  assert.ok(log.dropped > 0, `dropped ${log.dropped}`);
  log.close();
  rmSync(dir, { recursive: true, force: true });
});

// Tests for `lockgate check`'s rules: each check's thresholds on both sides, with an injected clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  appsToProbe, checkExitCode, evaluateChecks, formatChecks, isLoopback, type CaReport, type CheckInput, type CheckResult, type NodeReport,
} from './check-report.ts';

const NOW = Date.parse('2030-01-01T00:00:00Z');
const S = 1000;
const DAY = 86_400_000;
const BUNDLE = 'b'.repeat(64);
const METRICS = ['root', 'intermediate', 'control-plane'].map((k) => `lockgate_certificate_expiry_timestamp_seconds{kind="${k}"} 1`).join('\n');

function ca(over: Partial<CaReport> = {}): CaReport {
  return {
    bundleFingerprint: BUNDLE,
    roots: [{ fingerprint: 'AA:BB:CC:DD:EE:FF:00:11:22:33:44:55', notAfter: NOW + 3650 * DAY, active: true }],
    intermediate: { fingerprint: '11:22:33:44:55:66:77:88:99:00:AA:BB', notAfter: NOW + 365 * DAY, revoked: false },
    controlPlane: { issuedAt: NOW - 1000 * S, notAfter: NOW + 85_400 * S },
    ...over,
  };
}

function node(id: string, over: Partial<NodeReport> = {}): NodeReport {
  return {
    id, connected: true, lastSeen: NOW, sentVersion: 5, sentAt: NOW - 60 * S, ackedVersion: 5,
    lastAnswer: { version: 5, ok: true, at: NOW - 59 * S },
    certificateIssuedAt: NOW - 3600 * S, certificateNotAfter: NOW + 82_800 * S, bundleFingerprint: BUNDLE, ...over,
  };
}

function run(over: Partial<CheckInput> = {}): CheckResult[] {
  return evaluateChecks({ now: NOW, clock: { skewMs: 0, precisionMs: 2, source: 'test' }, ca: ca(), nodes: [node('orders-1')], metrics: METRICS, ...over });
}

function one(results: CheckResult[], name: string): CheckResult {
  const r = results.find((x) => x.name === name);
  assert.ok(r, `a ${name} check in ${results.map((x) => x.name).join(', ')}`);
  return r;
}

test('a healthy mesh: every check ok, exit 0, one line each', () => {
  const results = run();
  assert.deepEqual(results.map((r) => r.name), [
    'clock-skew', 'root-expiry', 'intermediate-expiry', 'control-plane-certificate', 'node-certificates', 'node-versions', 'node-bundles', 'app-exposure', 'expiry-metric',
  ]);
  assert.deepEqual(results.filter((r) => r.status !== 'ok'), []);
  assert.equal(checkExitCode(results), 0);
  const text = formatChecks(results);
  assert.equal(text.split('\n').length, results.length + 1);
  assert.match(text, /^ok    clock-skew {17}the local clock is 0 s/m);
});

test('clock skew: warn past 5 s, fail past 60 s, net of the measurement precision; unmeasured is a warning', () => {
  const status = (skewMs: number, precisionMs = 0): string => one(run({ clock: { skewMs, precisionMs, source: 't' } }), 'clock-skew').status;
  assert.equal(status(5_000), 'ok');
  assert.equal(status(5_001), 'warn');
  assert.equal(status(-5_001), 'warn');
  assert.equal(status(60_000), 'warn');
  assert.equal(status(60_001), 'fail');
  assert.equal(status(-61_000), 'fail');
  assert.equal(status(5_600, 700), 'ok', 'within the error bar of the Date header');
  const r = one(run({ clock: { skewMs: 70_000, precisionMs: 0, source: 't' } }), 'clock-skew');
  assert.match(r.message, /ahead of/);
  assert.match(r.message, /backdated/);
  assert.equal(one(run({ clock: null }), 'clock-skew').status, 'warn');
  assert.equal(checkExitCode(run({ clock: { skewMs: 61_000, precisionMs: 0, source: 't' } })), 1);
});

test('roots and intermediate: warn under 30 days, fail under 7 days or expired; a revoked intermediate fails', () => {
  const root = (left: number, active = true) => ({ fingerprint: 'AA:BB', notAfter: NOW + left, active });
  const rootStatus = (...roots: ReturnType<typeof root>[]): string => one(run({ ca: ca({ roots }) }), 'root-expiry').status;
  assert.equal(rootStatus(root(30 * DAY)), 'ok');
  assert.equal(rootStatus(root(30 * DAY - 1)), 'warn');
  assert.equal(rootStatus(root(7 * DAY)), 'warn');
  assert.equal(rootStatus(root(7 * DAY - 1)), 'fail');
  assert.equal(rootStatus(root(-DAY)), 'fail');
  assert.equal(rootStatus(root(3650 * DAY), root(2 * DAY, false)), 'fail', 'an old root in the bundle counts too');
  assert.match(one(run({ ca: ca({ roots: [root(-DAY)] }) }), 'root-expiry').message, /expired 24 h ago.*lockgate ca rotate start/);

  const inter = (left: number, revoked = false) => ({ fingerprint: '11:22', notAfter: NOW + left, revoked });
  const interStatus = (i: ReturnType<typeof inter>): string => one(run({ ca: ca({ intermediate: i }) }), 'intermediate-expiry').status;
  assert.equal(interStatus(inter(30 * DAY)), 'ok');
  assert.equal(interStatus(inter(29 * DAY)), 'warn');
  assert.equal(interStatus(inter(6 * DAY)), 'fail');
  const revoked = one(run({ ca: ca({ intermediate: inter(300 * DAY, true) }) }), 'intermediate-expiry');
  assert.equal(revoked.status, 'fail');
  assert.match(revoked.message, /revoked.*renew-intermediate/);
});

test('certificates: warn past 75 % of their life, fail when expired; only live nodes count', () => {
  const cert = (usedFraction: number): Partial<NodeReport> => ({ certificateIssuedAt: NOW - usedFraction * 100 * S, certificateNotAfter: NOW + (1 - usedFraction) * 100 * S });
  const status = (n: NodeReport): string => one(run({ nodes: [n] }), 'node-certificates').status;
  assert.equal(status(node('a', cert(0.75))), 'ok');
  assert.equal(status(node('a', cert(0.76))), 'warn');
  assert.equal(status(node('a', { certificateIssuedAt: NOW - 200 * S, certificateNotAfter: NOW })), 'fail');
  const both = one(run({ nodes: [node('late', cert(0.9)), node('dead', { certificateNotAfter: NOW - 5 * S })] }), 'node-certificates');
  assert.equal(both.status, 'fail');
  assert.match(both.message, /^dead: certificate expired 5 s ago, late: certificate 90 % through its life/);
  // Gone for over 10 minutes: not this check's business.
  assert.equal(status(node('gone', { connected: false, lastSeen: NOW - 11 * 60 * S, certificateNotAfter: NOW - DAY })), 'ok');
  assert.equal(status(node('recent', { connected: false, lastSeen: NOW - 9 * 60 * S, certificateNotAfter: NOW - S })), 'fail');

  const cp = (usedFraction: number, life = 100 * S) => ({ issuedAt: NOW - usedFraction * life, notAfter: NOW + (1 - usedFraction) * life });
  assert.equal(one(run({ ca: ca({ controlPlane: cp(0.5) }) }), 'control-plane-certificate').status, 'ok');
  assert.equal(one(run({ ca: ca({ controlPlane: cp(0.8) }) }), 'control-plane-certificate').status, 'warn');
  assert.equal(one(run({ ca: ca({ controlPlane: cp(1.1) }) }), 'control-plane-certificate').status, 'fail');
  assert.equal(one(run({ ca: ca({ controlPlane: undefined }) }), 'control-plane-certificate').status, 'warn');
});

test('versions: a NACK fails; an unacknowledged version warns after 30 s', () => {
  const status = (n: NodeReport): string => one(run({ nodes: [n] }), 'node-versions').status;
  assert.equal(status(node('a', { sentVersion: 6, sentAt: NOW - 30 * S, ackedVersion: 5 })), 'ok', 'just sent');
  assert.equal(status(node('a', { sentVersion: 6, sentAt: NOW - 31 * S, ackedVersion: 5 })), 'warn');
  assert.equal(status(node('a', { sentVersion: 6, sentAt: NOW - 31 * S, ackedVersion: 5, connected: false, lastSeen: NOW - 60 * S })), 'ok', 'a disconnected node gets nothing new');
  const nack = one(run({ nodes: [node('a', { sentVersion: 6, ackedVersion: 5, lastAnswer: { version: 6, ok: false, reason: 'unsupported snapshot schema "2.0"\nmore', at: NOW } })] }), 'node-versions');
  assert.equal(nack.status, 'fail');
  assert.equal(nack.message, 'a rejected version 6: unsupported snapshot schema "2.0"');
  assert.equal(status(node('a', { sentVersion: 7, ackedVersion: 7, lastAnswer: { version: 7, ok: true, at: NOW } })), 'ok', 'a later ACK clears it');
  assert.equal(status(node('a', { ackedVersion: 7, lastAnswer: { version: 6, ok: false, reason: 'x', at: NOW } })), 'ok', 'a NACK of an older version than the one running');
});

test('bundles: a connected node with another bundle fails, a recently disconnected one warns', () => {
  const status = (n: NodeReport): string => one(run({ nodes: [n] }), 'node-bundles').status;
  assert.equal(status(node('a')), 'ok');
  assert.equal(status(node('a', { bundleFingerprint: 'c'.repeat(64) })), 'fail');
  assert.equal(status(node('a', { bundleFingerprint: 'c'.repeat(64), connected: false, lastSeen: NOW - 60 * S })), 'warn');
  assert.equal(status(node('a', { bundleFingerprint: undefined })), 'ok', 'nothing recorded, nothing to say');
});

test('apps: Unix socket ok, TCP on loopback warns, TCP elsewhere fails when this host reaches it', () => {
  const app = (address: string, transport: 'tcp' | 'unix' = 'tcp'): NodeReport => node(`n-${address}`, { app: { address, transport } });
  assert.equal(one(run({ nodes: [app('/run/orders.sock', 'unix')] }), 'app-exposure').status, 'ok');
  const local = one(run({ nodes: [app('127.0.0.1:8080')] }), 'app-exposure');
  assert.equal(local.status, 'warn');
  assert.match(local.message, /other local processes can reach the app without mTLS; run it on a Unix socket/);
  assert.equal(one(run({ nodes: [app('[::1]:8080')] }), 'app-exposure').status, 'warn');
  const reachable = one(run({ nodes: [app('10.0.0.5:8080')], reachable: { '10.0.0.5:8080': true } }), 'app-exposure');
  assert.equal(reachable.status, 'fail');
  assert.match(reachable.message, /accepts connections from this host/);
  assert.equal(one(run({ nodes: [app('10.0.0.5:8080')], reachable: { '10.0.0.5:8080': false } }), 'app-exposure').status, 'warn');
  assert.equal(checkExitCode(run({ nodes: [app('10.0.0.5:8080')], reachable: { '10.0.0.5:8080': true } })), 1);

  const nodes = [app('10.0.0.5:8080'), app('127.0.0.2:1'), app('/s', 'unix'), app('[fd00::1]:9'), { ...app('10.9.9.9:1'), connected: false, lastSeen: NOW - DAY }];
  assert.deepEqual(appsToProbe(nodes, NOW), ['10.0.0.5:8080', '[fd00::1]:9']);
  assert.ok(isLoopback('127.1.2.3') && isLoopback('::1') && isLoopback('localhost') && !isLoopback('10.0.0.1') && !isLoopback('0.0.0.0'));
});

test('the expiry metric: present, missing a kind, or unreadable', () => {
  assert.equal(one(run(), 'expiry-metric').status, 'ok');
  const partial = one(run({ metrics: METRICS.split('\n')[0] }), 'expiry-metric');
  assert.equal(partial.status, 'warn');
  assert.match(partial.message, /intermediate, control-plane/);
  assert.equal(one(run({ metrics: null }), 'expiry-metric').status, 'warn');
  assert.equal(run({ metrics: undefined }).some((r) => r.name === 'expiry-metric'), false, 'not asked, not shown');
});

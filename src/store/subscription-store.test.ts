import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { SubscriptionStore, SubscriptionError, SUBSCRIPTIONS_DB } from './subscription-store.ts';
import { hashKey } from '../lib/subscription-keys.ts';
import { effectiveState } from '../model/subscription.ts';

function withStore(fn: (s: SubscriptionStore, dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'lg-subs-'));
  const s = SubscriptionStore.open(join(dir, 'data'));
  try {
    fn(s, dir);
  } finally {
    s.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SubscriptionError, String(err));
    return err.code;
  }
  assert.fail('expected a SubscriptionError');
};

test('create generates two different 32-hex keys, stores only their hashes, and finds the record by either', () => {
  withStore((s, dir) => {
    const { record, keys } = s.create({ name: 'alice', scope: { kind: 'product', name: 'starter' }, owner: 'alice@example.com' });
    assert.match(keys.primaryKey!, /^[0-9a-f]{32}$/);
    assert.match(keys.secondaryKey!, /^[0-9a-f]{32}$/);
    assert.notEqual(keys.primaryKey, keys.secondaryKey);
    assert.match(record.id, /^sub_[0-9a-f]{16}$/);
    assert.equal(record.state, 'active');
    assert.equal(s.findByKeyHash(hashKey(keys.primaryKey!))?.name, 'alice');
    assert.equal(s.findByKeyHash(hashKey(keys.secondaryKey!))?.name, 'alice');
    assert.equal(s.findByKeyHash(hashKey('not-a-key-at-all')), undefined);
    // The keys in clear appear nowhere in the database file's rows.
    const db = new DatabaseSync(join(dir, 'data', SUBSCRIPTIONS_DB));
    const dump = JSON.stringify(db.prepare('SELECT * FROM subscriptions').all());
    db.close();
    assert.ok(!dump.includes(keys.primaryKey!) && !dump.includes(keys.secondaryKey!));
    assert.ok(dump.includes(hashKey(keys.primaryKey!)));
  });
});

test('supplied keys (migrated from API Management) are kept and not echoed back; bad ones are refused', () => {
  withStore((s) => {
    const { keys } = s.create({ name: 'bob', scope: { kind: 'all' }, primaryKey: 'migratedKey-0001', secondaryKey: 'migratedKey-0002' });
    assert.deepEqual(keys, {});
    assert.equal(s.findByKeyHash(hashKey('migratedKey-0001'))?.name, 'bob');
    assert.equal(code(() => s.create({ name: 'c1', scope: { kind: 'all' }, primaryKey: 'short' })), 'invalid');
    assert.equal(code(() => s.create({ name: 'c2', scope: { kind: 'all' }, primaryKey: 'has a space in it' })), 'invalid');
    assert.equal(code(() => s.create({ name: 'c3', scope: { kind: 'all' }, primaryKey: 'sameKey-123', secondaryKey: 'sameKey-123' })), 'invalid');
    // A key another subscription holds is never issued twice.
    assert.equal(code(() => s.create({ name: 'c4', scope: { kind: 'all' }, primaryKey: 'migratedKey-0002' })), 'conflict');
    assert.equal(code(() => s.create({ name: 'bob', scope: { kind: 'all' } })), 'exists');
    assert.equal(code(() => s.create({ name: 'Bad Name', scope: { kind: 'all' } })), 'invalid');
    assert.equal(code(() => s.create({ name: 'c5', scope: { kind: 'all' }, expiresAt: 'tomorrow' })), 'invalid');
    assert.deepEqual(s.list().map((r) => r.name), ['bob']);
  });
});

test('regenerating one key leaves the other working', () => {
  withStore((s) => {
    const { keys } = s.create({ name: 'alice', scope: { kind: 'api', name: 'orders' } });
    const fresh = s.regenerate('alice', 'primary');
    assert.notEqual(fresh, keys.primaryKey);
    assert.equal(s.findByKeyHash(hashKey(keys.primaryKey!)), undefined, 'the old primary key no longer works');
    assert.equal(s.findByKeyHash(hashKey(fresh))?.name, 'alice');
    assert.equal(s.findByKeyHash(hashKey(keys.secondaryKey!))?.name, 'alice', 'the secondary key still works');
    assert.equal(s.regenerate('alice', 'secondary', 'operatorChosen-1'), 'operatorChosen-1');
    assert.equal(code(() => s.regenerate('alice', 'primary', 'operatorChosen-1')), 'invalid');
    assert.equal(code(() => s.regenerate('nobody', 'primary')), 'not_found');
  });
});

test('suspend, resume and cancel follow API Management: cancel is final', () => {
  withStore((s) => {
    s.create({ name: 'alice', scope: { kind: 'all' } });
    assert.equal(s.setState('alice', 'suspend').state, 'suspended');
    assert.equal(code(() => s.setState('alice', 'suspend')), 'conflict');
    assert.equal(s.setState('alice', 'resume').state, 'active');
    assert.equal(s.setState('alice', 'cancel').state, 'cancelled');
    assert.equal(code(() => s.setState('alice', 'resume')), 'conflict');
    assert.equal(code(() => s.regenerate('alice', 'primary')), 'conflict');
    assert.equal(s.get('alice')?.state, 'cancelled');
  });
});

test('an active subscription past its expiry reads as expired', () => {
  withStore((s) => {
    const { record } = s.create({ name: 'temp', scope: { kind: 'all' }, expiresAt: '2026-01-01T00:00:00Z' }, new Date('2025-06-01T00:00:00Z'));
    assert.equal(effectiveState(record, Date.parse('2025-12-31T23:59:59Z')), 'active');
    assert.equal(effectiveState(record, Date.parse('2026-01-01T00:00:00Z')), 'expired');
  });
});

test('the database survives reopening (WAL) and lives under the data dir', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lg-subs-'));
  try {
    const a = SubscriptionStore.open(dir);
    const { keys } = a.create({ name: 'persist', scope: { kind: 'all' } });
    a.close();
    assert.ok(existsSync(join(dir, SUBSCRIPTIONS_DB)));
    const b = SubscriptionStore.open(dir);
    assert.equal(b.findByKeyHash(hashKey(keys.primaryKey!))?.name, 'persist');
    const db = new DatabaseSync(join(dir, SUBSCRIPTIONS_DB));
    assert.equal((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal');
    db.close();
    b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

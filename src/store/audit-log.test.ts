import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, test } from 'node:test';
import { writeFileAtomic } from '../agent/atomic-file.ts';
import { LocalKeyWrapper } from '../secrets/key-wrapper.ts';
import { AUDIT_DB, AUDIT_HEAD_FILE, AuditLog, readAuditFiles } from './audit-log.ts';
import { GENESIS_HASH, sealRecord, signHead, verifyAudit, type AuditRecord, type SignedAuditHead } from './audit-record.ts';

const root = mkdtempSync(path.join(os.tmpdir(), 'lockgate-audit-'));
after(() => rmSync(root, { recursive: true, force: true }));

const T0 = Date.parse('2026-11-27T01:00:00.000Z');
/** A clock that moves one second per reading. */
function clock(): () => number {
  let t = T0;
  return () => (t += 1000);
}
let dirs = 0;
const masterKey = randomBytes(32);
const wrapper = (): LocalKeyWrapper => new LocalKeyWrapper(Buffer.from(masterKey));

async function openLog(dir = path.join(root, `log-${++dirs}`), now = clock()): Promise<{ log: AuditLog; dir: string }> {
  return { log: await AuditLog.open({ dataDir: dir, wrapper: wrapper(), writeFile: (p, t) => writeFileAtomic(p, t), now }), dir };
}

async function fill(log: AuditLog, n: number): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for (let i = 1; i <= n; i++) {
    out.push(await log.append({ actor: 'admin:bootstrap', action: 'config.update', target: `Backend/default/b${i}`, reason: `change ${i}`, requestId: `req-${i}`, before: `v${i - 1}`, after: `v${i}` }));
  }
  return out;
}

/** Tampering as an attacker with write access to the file would: drop the append-only triggers, then change rows. */
function tamper(dir: string, sql: string, ...params: (string | number)[]): void {
  const db = new DatabaseSync(path.join(dir, AUDIT_DB));
  db.exec('DROP TRIGGER IF EXISTS records_no_update; DROP TRIGGER IF EXISTS records_no_delete;');
  db.prepare(sql).run(...params);
  db.close();
}

async function verifyFiles(dir: string): Promise<ReturnType<typeof verifyAudit>> {
  const { records, head, publicKey } = await readAuditFiles(dir, [wrapper()]);
  return verifyAudit(records, head, publicKey!);
}

const kinds = (v: ReturnType<typeof verifyAudit>): string[] => v.problems.map((p) => p.kind);

describe('the hash chain and the signed head (pure)', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const chain = (n: number): AuditRecord[] => {
    const out: AuditRecord[] = [];
    for (let i = 1; i <= n; i++) out.push(sealRecord({ actor: 'a', action: 'x.y', target: `t${i}` }, i, new Date(T0 + i).toISOString(), out.at(-1)?.hash ?? GENESIS_HASH));
    return out;
  };
  const headOf = (rs: AuditRecord[]): SignedAuditHead => signHead({ count: rs.length, lastHash: rs.at(-1)?.hash ?? GENESIS_HASH, time: new Date(T0).toISOString() }, privateKey, publicKey);

  test('an intact log passes, an empty one too', () => {
    const rs = chain(5);
    assert.deepEqual(verifyAudit(rs, headOf(rs), publicKey), { ok: true, records: 5, problems: [] });
    assert.deepEqual(verifyAudit([], headOf([]), publicKey).problems, []);
    assert.deepEqual(verifyAudit([], undefined, publicKey).problems, []);
  });

  test('an edited record: its hash no longer matches; with the hash recomputed, the next record does not follow it', () => {
    const rs = chain(5);
    const head = headOf(rs);
    const edited = rs.map((r) => (r.seq === 3 ? { ...r, actor: 'someone-else' } : r));
    const v = verifyAudit(edited, head, publicKey);
    assert.deepEqual(v.problems.map((p) => [p.kind, p.seq]), [['changed', 3]]);
    const rehashed = rs.map((r) => (r.seq === 3 ? sealRecord({ actor: 'someone-else', action: r.action, target: r.target }, 3, r.time, r.prevHash) : r));
    assert.deepEqual(verifyAudit(rehashed, head, publicKey).problems.map((p) => [p.kind, p.seq]), [['chain_broken', 4]]);
  });

  test('a deleted middle record leaves a gap; renumbering breaks the chain instead', () => {
    const rs = chain(5);
    const v = verifyAudit(rs.filter((r) => r.seq !== 2), headOf(rs), publicKey);
    assert.deepEqual(v.problems.map((p) => [p.kind, p.seq]), [['missing', 2]]);
    assert.match(v.problems[0].message, /record 2 is missing/);
  });

  test('a truncated tail (the newest record removed) is caught only by the head', () => {
    const rs = chain(5);
    const v = verifyAudit(rs.slice(0, 4), headOf(rs), publicKey);
    assert.deepEqual(v.problems.map((p) => [p.kind, p.seq]), [['truncated', 5]]);
    assert.match(v.problems[0].message, /covers 5 records but the log ends at 4: the newest record was removed/);
  });

  test('a replaced newest record (re-chained) differs from the head', () => {
    const rs = chain(5);
    const forged = [...rs.slice(0, 4), sealRecord({ actor: 'mallory', action: 'x.y', target: 't5' }, 5, rs[4].time, rs[3].hash)];
    assert.deepEqual(kinds(verifyAudit(forged, headOf(rs), publicKey)), ['head_mismatch']);
  });

  test('a forged head: edited count, another key, or none at all', () => {
    const rs = chain(5);
    const short = rs.slice(0, 4);
    const edited = { ...headOf(rs), count: 4, lastHash: rs[3].hash };
    assert.deepEqual(kinds(verifyAudit(short, edited, publicKey)), ['bad_signature']);
    const other = generateKeyPairSync('ed25519');
    const foreign = signHead({ count: 4, lastHash: rs[3].hash, time: 'x' }, other.privateKey, other.publicKey);
    assert.deepEqual(kinds(verifyAudit(short, foreign, publicKey)), ['bad_signature']);
    assert.deepEqual(kinds(verifyAudit(rs, undefined, publicKey)), ['no_head']);
  });

  test('records past the head are reported as unsigned', () => {
    const rs = chain(5);
    assert.deepEqual(kinds(verifyAudit(rs, headOf(rs.slice(0, 3)), publicKey)), ['unsigned_records']);
  });
});

describe('AuditLog (SQLite, head file)', () => {
  test('appends chain from genesis with the injected clock; the head file is signed; the files verify', async () => {
    const { log, dir } = await openLog();
    const rs = await fill(log, 3);
    assert.deepEqual(rs.map((r) => [r.seq, r.time]), [[1, '2026-11-27T01:00:01.000Z'], [2, '2026-11-27T01:00:02.000Z'], [3, '2026-11-27T01:00:03.000Z']]);
    assert.equal(rs[0].prevHash, GENESIS_HASH);
    assert.equal(rs[1].prevHash, rs[0].hash);
    const onDisk = JSON.parse(readFileSync(path.join(dir, AUDIT_HEAD_FILE), 'utf8')) as SignedAuditHead;
    assert.deepEqual(onDisk, log.currentHead());
    assert.equal(onDisk.count, 3);
    assert.equal(onDisk.lastHash, rs[2].hash);
    assert.deepEqual((await log.verify()).problems, []);
    assert.deepEqual((await log.verify({ fromDisk: true })).problems, []);
    assert.deepEqual(log.read({ after: 1, limit: 1 }), { records: [rs[1]], more: true });
    assert.deepEqual(log.read({ since: '2026-11-27T01:00:03.000Z' }).records.map((r) => r.seq), [3]);
    await log.close();
    assert.deepEqual((await verifyFiles(dir)).problems, []);
  });

  test('concurrent appends never fork the chain', async () => {
    const { log } = await openLog();
    const heads: number[] = [];
    log.onHead((h) => heads.push(h.count));
    const rs = await Promise.all(Array.from({ length: 25 }, (_, i) => log.append({ actor: 'a', action: 'access.deny', target: `t${i}` })));
    assert.deepEqual(rs.map((r) => r.seq), Array.from({ length: 25 }, (_, i) => i + 1));
    const v = await log.verify({ fromDisk: true });
    assert.deepEqual(v.problems, []);
    assert.equal(log.currentHead()!.count, 25);
    assert.deepEqual(heads, rs.map((r) => r.seq), 'one signed head per append, in order');
    await log.close();
  });

  test('UPDATE and DELETE are refused by the database', async () => {
    const { log, dir } = await openLog();
    await fill(log, 2);
    await log.close();
    const db = new DatabaseSync(path.join(dir, AUDIT_DB));
    assert.throws(() => db.exec('UPDATE records SET record = record WHERE seq = 1'), /append-only/);
    assert.throws(() => db.exec('DELETE FROM records WHERE seq = 2'), /append-only/);
    db.close();
  });

  test('verify catches an edited, a deleted and a truncated tail record in the database file', async () => {
    const { log, dir } = await openLog();
    await fill(log, 5);
    await log.close();
    const pristine = readFileSync(path.join(dir, AUDIT_DB));
    const reset = (): void => writeFileSync(path.join(dir, AUDIT_DB), pristine);

    tamper(dir, "UPDATE records SET record = replace(record, '\"actor\":\"admin:bootstrap\"', '\"actor\":\"nobody\"') WHERE seq = 3");
    assert.deepEqual((await verifyFiles(dir)).problems.map((p) => [p.kind, p.seq]), [['changed', 3]]);
    reset();
    tamper(dir, 'DELETE FROM records WHERE seq = 2');
    assert.deepEqual((await verifyFiles(dir)).problems.map((p) => [p.kind, p.seq]), [['missing', 2]]);
    reset();
    tamper(dir, 'DELETE FROM records WHERE seq = 5');
    assert.deepEqual((await verifyFiles(dir)).problems.map((p) => [p.kind, p.seq]), [['truncated', 5]]);
    reset();
    assert.deepEqual((await verifyFiles(dir)).problems, []);
  });

  test('a forged head file is caught', async () => {
    const { log, dir } = await openLog();
    const rs = await fill(log, 3);
    await log.close();
    const file = path.join(dir, AUDIT_HEAD_FILE);
    const head = JSON.parse(readFileSync(file, 'utf8')) as SignedAuditHead;
    tamper(dir, 'DELETE FROM records WHERE seq = 3');
    writeFileSync(file, JSON.stringify({ ...head, count: 2, lastHash: rs[1].hash }));
    assert.deepEqual(kinds(await verifyFiles(dir)), ['bad_signature']);
  });

  test('reopening after a truncation records the mismatch in the chain, so later appends cannot hide it', async () => {
    const now = clock();
    const { log, dir } = await openLog(undefined, now);
    await fill(log, 4);
    await log.close();
    tamper(dir, 'DELETE FROM records WHERE seq = 4');
    const events: string[] = [];
    const again = await AuditLog.open({ dataDir: dir, wrapper: wrapper(), writeFile: (p, t) => writeFileAtomic(p, t), now, log: (e) => events.push(e) });
    assert.deepEqual(events, ['audit_tail_mismatch']);
    const marker = again.read({ after: 3 }).records[0];
    assert.equal(marker.action, 'audit.tail-mismatch');
    assert.match(marker.reason, /covered 4 records .* but the log held 3/);
    await again.append({ actor: 'a', action: 'config.create', target: 't' });
    const v = await again.verify({ fromDisk: true });
    assert.deepEqual(v.problems.map((p) => [p.kind, p.seq]), [['tail_mismatch', 4]]);
    await again.close();
  });

  test('a crash between commit and head write: the next open signs a marker; a lost head file likewise', async () => {
    const { log, dir } = await openLog();
    await fill(log, 2);
    await log.close();
    rmSync(path.join(dir, AUDIT_HEAD_FILE));
    assert.deepEqual(kinds(await verifyFiles(dir)), ['no_head']);
    const again = (await openLog(dir)).log;
    const v = await again.verify({ fromDisk: true });
    assert.deepEqual(v.problems.map((p) => p.kind), ['tail_mismatch']);
    assert.match(v.problems[0].message, /there was no signed head/);
    await again.close();
  });

  test('the key is sealed by the master key: another master key cannot open it', async () => {
    const { log, dir } = await openLog();
    await fill(log, 1);
    await log.close();
    await assert.rejects(readAuditFiles(dir, [new LocalKeyWrapper(randomBytes(32))]), { code: 'audit_key' });
    await assert.rejects(AuditLog.open({ dataDir: dir, wrapper: new LocalKeyWrapper(randomBytes(32)), writeFile: async () => {} }), { code: 'audit_key' });
  });

  test('reseal: after a master-key rotation the same signing key opens under the new master key only', async () => {
    const { log, dir } = await openLog();
    await fill(log, 2);
    const keyId = log.keyId;
    const next = randomBytes(32);
    await log.close();
    const rotated = await AuditLog.open({ dataDir: dir, wrapper: new LocalKeyWrapper(Buffer.from(next)), openWith: () => [wrapper(), new LocalKeyWrapper(Buffer.from(next))], writeFile: (p, t) => writeFileAtomic(p, t) });
    await rotated.reseal();
    await rotated.close();
    const { records, head, publicKey } = await readAuditFiles(dir, [new LocalKeyWrapper(Buffer.from(next))]);
    assert.deepEqual(verifyAudit(records, head, publicKey!).problems, []);
    assert.equal(head!.keyId, keyId);
    await assert.rejects(readAuditFiles(dir, [wrapper()]), { code: 'audit_key' });
  });
});

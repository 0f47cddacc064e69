// The audit trail's files in a data dir, and reading them without writing (`lockgate audit verify|export --data-dir`,
// with the control plane up or down: WAL readers never block the writer).
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { KeyWrapper } from '../secrets/key-wrapper.ts';
import { AuditError, openAuditKey, type StoredAuditKey } from './audit-key.ts';
import type { SignedAuditHead } from './audit-record.ts';

export const AUDIT_DB = 'audit.db';
export const AUDIT_HEAD_FILE = 'audit-head.json';

/** Rows as records; a row that is not JSON becomes an object verify reports as malformed. */
export function parseRows(rows: readonly { record: string }[]): unknown[] {
  return rows.map((r) => {
    try {
      return JSON.parse(r.record) as unknown;
    } catch {
      return { unparsable: r.record.slice(0, 80) };
    }
  });
}

/** The head file's content, or undefined when there is none; a file that is not JSON reads as an unsigned head. */
export async function readHeadFile(dataDir: string): Promise<SignedAuditHead | undefined> {
  let text: string;
  try {
    text = await readFile(join(dataDir, AUDIT_HEAD_FILE), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as SignedAuditHead;
  } catch {
    return { signature: '' } as SignedAuditHead;
  }
}

/** Every record, the head file, and (given the master keys) the public key, opened from the sealed private key. */
export async function readAuditFiles(dataDir: string, wrappers?: readonly KeyWrapper[]): Promise<{ records: unknown[]; head: SignedAuditHead | undefined; publicKey?: KeyObject }> {
  const db = new DatabaseSync(join(dataDir, AUDIT_DB), { readOnly: true });
  try {
    const keyRow = db.prepare("SELECT value FROM meta WHERE name = 'signing_key'").get() as { value: string } | undefined;
    const records = parseRows(db.prepare('SELECT record FROM records ORDER BY seq').all() as unknown as { record: string }[]);
    const head = await readHeadFile(dataDir);
    if (wrappers === undefined) return { records, head };
    if (keyRow === undefined) throw new AuditError('audit_key', `${join(dataDir, AUDIT_DB)} holds no audit signing key`);
    return { records, head, publicKey: (await openAuditKey(JSON.parse(keyRow.value) as StoredAuditKey, wrappers)).publicKey };
  } finally {
    db.close();
  }
}

// `lockgate audit verify|export`: checks the audit trail's hash chain and signed head, or writes it as JSON lines;
// through the admin API, or straight from a data dir's files (the control plane may be stopped).
import { createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalKeyWrapper, MASTER_KEY_ENV, MASTER_KEY_FILE_ENV, SecretsError, type KeyWrapper } from '../secrets/key-wrapper.ts';
import { AUDIT_DB, AuditError, readAuditFiles } from '../store/audit-log.ts';
import { verifyAudit, type AuditRecord, type AuditVerification, type SignedAuditHead } from '../store/audit-record.ts';
import { ADMIN_CLIENT_OPTIONS, ADMIN_CLIENT_USAGE, AdminClientError, adminRequest, describeError, resolveTarget, type AdminTarget } from './admin-client.ts';
import type { Verb } from './verb.ts';

/** Exit status of `audit verify` when the trail is damaged (1 stays "could not check", as for every verb). */
export const EXIT_DAMAGED = 3;

const USAGE = `Usage: lockgate audit verify [--data-dir DIR | connection options] [--public-key FILE] [--head FILE] [--json]
       lockgate audit export [--data-dir DIR | connection options] [--output FILE] [--after SEQ] [--since TIME]

The audit trail: every admin change (before and after), CA rotation and renewal, with actor, time, reason
and request id. Each record holds the hash of the one before; a head (count, last hash) signed with the
audit key is kept outside the database (audit-head.json) and served by the control plane.

  verify   checks every record's hash, that no record is missing, and that the log ends where the signed
           head says (so removing the newest records is caught too). Exit 0 when intact, ${EXIT_DAMAGED} when not
           (each problem listed), 1 when it could not check.
  export   writes the records as JSON lines (one record per line, hashes included), oldest first.

Where from:
  --data-dir DIR       read DIR/${AUDIT_DB} and DIR/audit-head.json directly (works with the control plane
                       stopped); the audit key is opened with the master key ($${MASTER_KEY_ENV},
                       $${MASTER_KEY_FILE_ENV}, else DIR/master.key) unless --public-key is given
  --online             with --data-dir: ask the control plane that DIR's control-plane.json names instead
  (otherwise)          the admin API (connection options below)

Options:
  --public-key FILE    verify: the audit public key to trust (PEM, from GET /v1/audit/head, kept aside)
  --head FILE          verify: check against this signed head (JSON, e.g. one published in a snapshot or saved
                       earlier) instead of the current one: catches a head file rolled back to an older head
  --json               verify: print the result as JSON
  --output FILE        export: write to FILE (mode 0600) instead of stdout
  --after SEQ          export: only records after this sequence number
  --since TIME         export: only records at or after this time (e.g. 2026-11-27 or 2026-11-27T01:00:00Z)

${ADMIN_CLIENT_USAGE}`;

const OPTIONS = {
  ...ADMIN_CLIENT_OPTIONS,
  online: { type: 'boolean' },
  'public-key': { type: 'string' },
  head: { type: 'string' },
  json: { type: 'boolean' },
  output: { type: 'string' },
  after: { type: 'string' },
  since: { type: 'string' },
} as const;

/** The master keys an offline check may need: the environment's (current and previous), else the data dir's files. */
async function masterKeys(dataDir: string, env: Record<string, string | undefined>): Promise<KeyWrapper[]> {
  if (env[MASTER_KEY_ENV] || env[MASTER_KEY_FILE_ENV]) {
    const keys: KeyWrapper[] = [await LocalKeyWrapper.fromEnv(env)];
    const prev = { [MASTER_KEY_ENV]: env.LOCKGATE_MASTER_KEY_PREVIOUS, [MASTER_KEY_FILE_ENV]: env.LOCKGATE_MASTER_KEY_PREVIOUS_FILE };
    if (prev[MASTER_KEY_ENV] || prev[MASTER_KEY_FILE_ENV]) keys.push(await LocalKeyWrapper.fromEnv(prev));
    return keys;
  }
  const files = [join(dataDir, 'master.key'), join(dataDir, 'master.key.next')].filter((f, i) => i === 0 || existsSync(f));
  return Promise.all(files.map((f) => LocalKeyWrapper.fromFile(f)));
}

async function readJsonFile<T>(file: string, what: string): Promise<T> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    throw new AdminClientError(`cannot read ${what} ${file}: ${(err as Error).message}`);
  }
}

interface Source {
  records: unknown[];
  head: SignedAuditHead | undefined;
  publicKey: KeyObject | undefined;
}

async function offline(dataDir: string, withKey: boolean): Promise<Source> {
  if (!existsSync(join(dataDir, AUDIT_DB))) throw new AdminClientError(`${join(dataDir, AUDIT_DB)} does not exist (is ${dataDir} a control plane's data dir?)`);
  let keys: KeyWrapper[] | undefined;
  try {
    keys = withKey ? await masterKeys(dataDir, process.env) : undefined;
  } catch (err) {
    if (!(err instanceof SecretsError)) throw err;
    throw new AdminClientError(`${err.message}; the audit key opens with the master key ($${MASTER_KEY_ENV} or $${MASTER_KEY_FILE_ENV}), or give --public-key FILE`);
  }
  const read = await readAuditFiles(dataDir, keys);
  return { records: read.records, head: read.head, publicKey: read.publicKey };
}

/** Every record through GET /v1/audit (pages of 1000), the head served with the last page, and the public key. */
async function online(target: AdminTarget, o: { after?: number; since?: string } = {}): Promise<Source> {
  const key = await adminRequest(target, 'GET', '/v1/audit/head');
  if (key.status !== 200) throw new AdminClientError(describeError(key));
  const publicKey = createPublicKey((JSON.parse(key.text) as { publicKey: string }).publicKey);
  const records: AuditRecord[] = [];
  let after = o.after ?? 0;
  let head: SignedAuditHead | undefined;
  for (;;) {
    const q = new URLSearchParams({ after: String(after), limit: '1000', ...(o.since !== undefined ? { since: o.since } : {}) });
    const reply = await adminRequest(target, 'GET', `/v1/audit?${q}`);
    if (reply.status !== 200) throw new AdminClientError(describeError(reply));
    const page = JSON.parse(reply.text) as { records: AuditRecord[]; more: boolean; head: SignedAuditHead | null };
    records.push(...page.records);
    head = page.head ?? undefined;
    if (!page.more || page.records.length === 0) return { records, head, publicKey };
    after = page.records[page.records.length - 1].seq;
  }
}

function report(v: AuditVerification, head: SignedAuditHead | undefined, json: boolean): string {
  if (json) return `${JSON.stringify({ ...v, head: head ?? null }, null, 2)}\n`;
  if (v.ok) {
    const signed = head === undefined ? 'no records, no head yet' : `signed head: ${head.count} records, last ${head.lastHash.slice(0, 16)}…, key ${head.keyId}, ${head.time}`;
    return `audit trail intact: ${v.records} record${v.records === 1 ? '' : 's'}; ${signed}\n`;
  }
  const n = v.problems.length;
  return `audit trail DAMAGED: ${n} problem${n === 1 ? '' : 's'} in ${v.records} record${v.records === 1 ? '' : 's'}\n${v.problems.map((p) => `  ${p.kind}: ${p.message}\n`).join('')}`;
}

async function verifyCommand(values: ReturnType<typeof parse>['values'], local: string | undefined): Promise<number> {
  const pinned = values['public-key'] !== undefined ? createPublicKey(await readFile(values['public-key'], 'utf8').catch((err: Error) => {
    throw new AdminClientError(`cannot read the public key ${values['public-key']}: ${err.message}`);
  })) : undefined;
  let source: Source;
  if (local !== undefined) source = await offline(local, pinned === undefined);
  else {
    const target = await resolveTarget(values);
    // The newest record may be committed a moment before its head is signed: ask again rather than cry wolf.
    for (let attempt = 0; ; attempt++) {
      source = await online(target);
      const v = verifyAudit(source.records, source.head, pinned ?? source.publicKey!);
      if (attempt >= 3 || !(v.problems.length === 1 && v.problems[0].kind === 'unsigned_records')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const key = pinned ?? source.publicKey!;
  const v = verifyAudit(source.records, source.head, key);
  if (values.head !== undefined) {
    // A head from elsewhere (a snapshot, one saved earlier): the log may have grown since, but must still hold it.
    const given = verifyAudit(source.records, await readJsonFile<SignedAuditHead>(values.head, 'the head file'), key);
    const seen = new Set(v.problems.map((p) => p.message));
    for (const p of given.problems) {
      if (p.kind !== 'unsigned_records' && !seen.has(p.message)) v.problems.push({ ...p, message: `against ${values.head}: ${p.message}` });
    }
    v.ok = v.problems.length === 0;
  }
  process.stdout.write(report(v, source.head, values.json === true));
  return v.ok ? 0 : EXIT_DAMAGED;
}

async function exportCommand(values: ReturnType<typeof parse>['values'], local: string | undefined): Promise<number> {
  let after = 0;
  if (values.after !== undefined) {
    if (!/^\d{1,15}$/.test(values.after)) throw new AdminClientError('--after must be a sequence number (a non-negative integer)');
    after = Number(values.after);
  }
  let since: string | undefined;
  if (values.since !== undefined) {
    const t = Date.parse(values.since);
    if (Number.isNaN(t)) throw new AdminClientError(`--since ${JSON.stringify(values.since)} is not a date or time (e.g. 2026-11-27T01:00:00Z)`);
    since = new Date(t).toISOString();
  }
  const source = local !== undefined ? await offline(local, false) : await online(await resolveTarget(values), { after, ...(since !== undefined ? { since } : {}) });
  const records = (source.records as AuditRecord[]).filter((r) => !(r?.seq <= after) && (since === undefined || !(r?.time < since)));
  const text = records.map((r) => `${JSON.stringify(r)}\n`).join('');
  if (values.output === undefined) process.stdout.write(text);
  else {
    const fh = await open(values.output, 'w', 0o600);
    try {
      await fh.writeFile(text);
    } finally {
      await fh.close();
    }
    process.stderr.write(`wrote ${records.length} record${records.length === 1 ? '' : 's'} to ${values.output}\n`);
  }
  return 0;
}

function parse(args: string[]) {
  return parseArgs({ args, allowPositionals: true, options: OPTIONS });
}

export const auditVerb: Verb = {
  summary: 'verify or export the audit trail (hash chain + signed head)',
  usage: USAGE,
  async run(args) {
    const { values, positionals } = parse(args);
    const [sub, extra] = positionals;
    if ((sub !== 'verify' && sub !== 'export') || extra !== undefined) {
      process.stderr.write(`${USAGE.split('\n\n')[0]}\n`);
      return 1;
    }
    const local = values['data-dir'] !== undefined && values.online !== true ? values['data-dir'] : undefined;
    try {
      return sub === 'verify' ? await verifyCommand(values, local) : await exportCommand(values, local);
    } catch (err) {
      if (err instanceof AdminClientError || err instanceof AuditError || err instanceof SecretsError) {
        process.stderr.write(`lockgate audit ${sub}: ${err.message}\n`);
        return 1;
      }
      // The file is there but is not an audit log any more (a table dropped, the file overwritten): that is damage.
      if ((err as { code?: string }).code === 'ERR_SQLITE_ERROR' && local !== undefined) {
        process.stdout.write(`audit trail DAMAGED: ${join(local, AUDIT_DB)} cannot be read as an audit log: ${(err as Error).message}\n`);
        return EXIT_DAMAGED;
      }
      throw err;
    }
  },
};

// `lockgate apply -f FILE|DIR [--prune] [--dry-run]`: sends config documents to the control plane in one revision.
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { Problem } from '../model/types.ts';
import { ADMIN_CLIENT_OPTIONS, ADMIN_CLIENT_USAGE, AdminClientError, adminRequest, describeError, REASON_OPTION, reasonUsage, reasonHeaders, resolveTarget } from './admin-client.ts';
import type { Verb } from './verb.ts';

/** Several files sent as one body, and the way back from a line of the body to a line of a file. */
export interface Manifests {
  body: string;
  files: string[];
  /** Turns a problem in the body (file "request") into one in the file it came from. */
  mapProblem: (p: Problem) => Problem;
}

/** Reads files, directories (their *.yaml and *.yml, sorted) and `-` (stdin) into one multi-document body. */
export async function readManifests(paths: readonly string[]): Promise<Manifests> {
  const files: string[] = [];
  for (const path of paths) {
    if (path === '-') {
      files.push(path);
      continue;
    }
    let isDir: boolean;
    try {
      isDir = (await stat(path)).isDirectory();
    } catch (err) {
      throw new AdminClientError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (!isDir) {
      files.push(path);
      continue;
    }
    const names = (await readdir(path)).filter((n) => /\.ya?ml$/.test(n)).sort();
    if (names.length === 0) throw new AdminClientError(`${path}: directory has no .yaml or .yml files`);
    files.push(...names.map((n) => join(path, n)));
  }
  const starts: Array<{ file: string; line: number }> = [];
  let body = '';
  let line = 1;
  for (const file of files) {
    let text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
    if (text !== '' && !text.endsWith('\n')) text += '\n';
    if (body !== '') {
      body += '---\n';
      line += 1;
    }
    starts.push({ file: file === '-' ? '<stdin>' : file, line });
    body += text;
    line += text.split('\n').length - 1;
  }
  const mapProblem = (p: Problem): Problem => {
    if (p.file !== 'request') return p;
    const from = starts.findLast((s) => s.line <= p.line) ?? starts[0];
    return from ? { ...p, file: from.file, line: p.line - from.line + 1 } : p;
  };
  return { body, files, mapProblem };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export interface ApplyChange {
  action: 'create' | 'update' | 'delete' | 'unchanged';
  kind: string;
  namespace: string;
  name: string;
  before?: string;
  after?: string;
}

/** POST /v1/config:apply; throws AdminClientError with the printable error (problems mapped to files). */
export async function postApply(values: Record<string, unknown>, files: readonly string[], opts: { prune: boolean; dryRun: boolean; reason?: string }): Promise<{ revision: number; changes: ApplyChange[] }> {
  const target = await resolveTarget(values);
  const m = await readManifests(files);
  const query = new URLSearchParams();
  if (opts.prune) query.set('prune', 'true');
  if (opts.dryRun) query.set('dryRun', 'true');
  const reply = await adminRequest(target, 'POST', `/v1/config:apply${query.size > 0 ? `?${query}` : ''}`, { body: m.body, headers: reasonHeaders(opts.reason) });
  if (reply.status !== 200) throw new AdminClientError(describeError(reply, m.mapProblem));
  return JSON.parse(reply.text) as { revision: number; changes: ApplyChange[] };
}

const PAST: Record<ApplyChange['action'], string> = { create: 'created', update: 'configured', delete: 'deleted', unchanged: 'unchanged' };

export const applyVerb: Verb = {
  summary: 'apply config files to the control plane (validated whole, one revision)',
  usage: `Usage: lockgate apply -f FILE|DIR [-f ...] [--prune] [--dry-run] [connection options]

Sends every document of the files (a directory: its *.yaml and *.yml files; "-": stdin) to the
control plane, which validates the whole resulting config and stores the changes in one revision.
Problems are printed as file:line:col: message and nothing is stored.

  --prune     also delete stored resources that the files do not hold
  --dry-run   show what would change, store nothing
${reasonUsage(10)}

${ADMIN_CLIENT_USAGE}`,
  async run(args) {
    const { values } = parseArgs({
      args,
      options: { ...ADMIN_CLIENT_OPTIONS, ...REASON_OPTION, filename: { type: 'string', short: 'f', multiple: true }, prune: { type: 'boolean', default: false }, 'dry-run': { type: 'boolean', default: false } },
    });
    if (!values.filename?.length) {
      process.stderr.write('lockgate apply: give the config with -f FILE|DIR\n');
      return 1;
    }
    try {
      const { changes } = await postApply(values, values.filename, { prune: values.prune, dryRun: values['dry-run'], reason: values.reason });
      const suffix = values['dry-run'] ? ' (dry run)' : '';
      for (const c of changes) process.stdout.write(`${c.kind} ${c.namespace}/${c.name} ${PAST[c.action]}${suffix}\n`);
      if (changes.length === 0) process.stdout.write(`nothing to apply${suffix}\n`);
      return 0;
    } catch (err) {
      if (!(err instanceof AdminClientError)) throw err;
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
  },
};

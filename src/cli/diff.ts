// `lockgate diff -f FILE|DIR [--prune]`: what `apply` would change, as unified diffs; exit 0 none, 1 some, 2 error.
import { parseArgs } from 'node:util';
import { ADMIN_CLIENT_OPTIONS, ADMIN_CLIENT_USAGE, AdminClientError } from './admin-client.ts';
import { postApply } from './apply.ts';
import type { Verb } from './verb.ts';

type Op = { t: ' ' | '-' | '+'; line: string };

function lines(text: string): string[] {
  if (text === '') return [];
  const l = text.split('\n');
  if (l[l.length - 1] === '') l.pop();
  return l;
}

/** Line edits turning `a` into `b` by longest common subsequence (documents are small; huge ones diff as replace-all). */
function edits(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  if (n * m > 4_000_000) return [...a.map((line) => ({ t: '-' as const, line })), ...b.map((line) => ({ t: '+' as const, line }))];
  const w = m + 1;
  const lcs = new Uint32Array((n + 1) * w);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i * w + j] = a[i] === b[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
  }
  const ops: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      ops.push({ t: ' ', line: a[i++] });
      j++;
    } else if (i < n && (j === m || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])) ops.push({ t: '-', line: a[i++] }); // removals first, as diff -u
    else ops.push({ t: '+', line: b[j++] });
  }
  return ops;
}

/** A unified diff (`--- a`, `+++ b`, `@@` hunks with `context` lines around changes); '' when the texts are equal. */
export function unifiedDiff(a: string, b: string, labelA: string, labelB: string, context = 3): string {
  const ops = edits(lines(a), lines(b));
  const changed = ops.flatMap((o, k) => (o.t === ' ' ? [] : [k]));
  if (changed.length === 0) return '';
  const out = [`--- ${labelA}`, `+++ ${labelB}`];
  // Lines of a and b before each op, for hunk headers.
  const aBefore: number[] = [];
  const bBefore: number[] = [];
  let an = 0;
  let bn = 0;
  for (const o of ops) {
    aBefore.push(an);
    bBefore.push(bn);
    if (o.t !== '+') an++;
    if (o.t !== '-') bn++;
  }
  for (let c = 0; c < changed.length; ) {
    const start = Math.max(0, changed[c] - context);
    let last = changed[c];
    while (c + 1 < changed.length && changed[c + 1] - last <= 2 * context) last = changed[++c];
    c++;
    const end = Math.min(ops.length, last + context + 1);
    const hunk = ops.slice(start, end);
    const aLen = hunk.filter((o) => o.t !== '+').length;
    const bLen = hunk.filter((o) => o.t !== '-').length;
    out.push(`@@ -${aBefore[start] + (aLen > 0 ? 1 : 0)},${aLen} +${bBefore[start] + (bLen > 0 ? 1 : 0)},${bLen} @@`);
    for (const o of hunk) out.push(`${o.t}${o.line}`);
  }
  return out.join('\n') + '\n';
}

export const diffVerb: Verb = {
  summary: 'show what apply would change in the control plane (exit 1 when something would)',
  usage: `Usage: lockgate diff -f FILE|DIR [-f ...] [--prune] [connection options]

Asks the control plane what \`lockgate apply\` with the same files would do (a dry run: the whole
config is validated, nothing is stored) and prints a unified diff per resource that would be
created, changed or (with --prune) deleted. Exit 0 when nothing would change, 1 when something
would, 2 on an error (invalid config, unreachable control plane), as \`kubectl diff\`.

${ADMIN_CLIENT_USAGE}`,
  async run(args) {
    const { values } = parseArgs({ args, options: { ...ADMIN_CLIENT_OPTIONS, filename: { type: 'string', short: 'f', multiple: true }, prune: { type: 'boolean', default: false } } });
    if (!values.filename?.length) {
      process.stderr.write('lockgate diff: give the config with -f FILE|DIR\n');
      return 2;
    }
    try {
      const { changes } = await postApply(values, values.filename, { prune: values.prune, dryRun: true });
      let n = 0;
      for (const c of changes) {
        if (c.action === 'unchanged') continue;
        n++;
        const id = `${c.kind}/${c.namespace}/${c.name}`;
        const before = c.action === 'create' ? '/dev/null' : `${id} (stored)`;
        const after = c.action === 'delete' ? '/dev/null' : `${id} (applied)`;
        process.stdout.write(unifiedDiff(c.before ?? '', c.after ?? '', before, after));
      }
      return n > 0 ? 1 : 0;
    } catch (err) {
      if (!(err instanceof AdminClientError)) throw err;
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
  },
};

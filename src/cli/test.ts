// `lockgate test [FILE|DIR...]`: runs YAML policy test cases through the real pipeline in-process, with stubbed backends and no network.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Verb } from './verb.ts';
import { runTestFile, type CaseResult } from '../app/policy-test-runner.ts';

async function testFiles(paths: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of paths) {
    if ((await stat(p)).isDirectory()) {
      const names = (await readdir(p)).filter((n) => /\.test\.ya?ml$/.test(n)).sort();
      out.push(...names.map((n) => join(p, n)));
    } else out.push(p);
  }
  return out;
}

export const testVerb: Verb = {
  summary: 'run YAML policy test cases against the real pipeline, in-process, no network',
  usage: `Usage: lockgate test [--json] [--verbose] [FILE|DIR...]

Runs policy test cases (files named *.test.yaml in a directory; default: the current directory).
A test file names the config it tests and lists cases: a request in, stubbed backend answers,
and the expected status, headers and body (a JSON subset match), the backend request, and the
policies that must run. See docs/policies.md#testing-policies-locally.

  --json      one JSON object per case on stdout
  --verbose   print the policy trace of every case, not only failing ones

Exit 0 when every case passes, 1 when one fails or a file is invalid.`,
  async run(args) {
    const json = args.includes('--json');
    const verbose = args.includes('--verbose');
    const paths = args.filter((a) => !a.startsWith('--'));
    let files: string[];
    try {
      files = await testFiles(paths.length ? paths : ['.']);
    } catch (err) {
      process.stderr.write(`lockgate test: ${(err as Error).message}\n`);
      return 1;
    }
    if (files.length === 0) {
      process.stderr.write('lockgate test: no *.test.yaml files found\n');
      return 1;
    }
    let passed = 0;
    let failed = 0;
    for (const file of files) {
      let results: CaseResult[];
      try {
        results = await runTestFile(file);
      } catch (err) {
        failed++;
        process.stderr.write(`${file}: ${(err as Error).message}\n`);
        continue;
      }
      for (const r of results) {
        if (r.ok) passed++;
        else failed++;
        if (json) {
          process.stdout.write(`${JSON.stringify({ file, ...r })}\n`);
          continue;
        }
        process.stdout.write(`${r.ok ? 'ok  ' : 'FAIL'} ${file}: ${r.name}\n`);
        for (const f of r.failures) process.stdout.write(`       ${f}\n`);
        if (!r.ok || verbose) for (const t of r.trace) process.stdout.write(`       · ${t}\n`);
      }
    }
    if (!json) process.stdout.write(`${passed} passed, ${failed} failed\n`);
    return failed === 0 ? 0 : 1;
  },
};

// `lockgate validate FILE...`: prints every problem with file, line and column; exit 1 when there are any.
import { formatProblems } from '../model/load-config.ts';
import { loadCheckedConfig } from '../policy/load-checked.ts';
import type { Verb } from './verb.ts';
import { buildRuntime, retireRuntime } from '../proxy/runtime.ts';
import { POLICY_REGISTRY } from '../filters/index.ts';

export const validateVerb: Verb = {
  summary: 'check config files and print every problem with file:line:col',
  usage: `Usage: lockgate validate FILE|DIR...

Validates Lockgate YAML config without starting anything. Every problem is printed at once as
file:line:col: message, with the closest known name for a misspelt field. Exit 0 when valid, 1 otherwise.`,
  async run(args) {
    const files = args.filter((a) => !a.startsWith('-'));
    if (files.length === 0) {
      process.stderr.write('lockgate validate: give at least one FILE or DIR\n');
      return 1;
    }
    const { config, problems } = await loadCheckedConfig(files);
    if (problems.length || !config) {
      process.stderr.write(formatProblems(problems) + '\n');
      process.stderr.write(`${problems.length} problem${problems.length === 1 ? '' : 's'} found\n`);
      return 1;
    }
    // Policies compile when a config version is built: build one with stub pools (no network) to catch what only
    // compiling finds (a protected header in set-header, cors credentials with origin *, a bad ip-filter range).
    const built = buildRuntime(config, undefined, { poolFactory: () => ({ dispatch: () => false, close: async () => {}, destroy: async () => {} }) }, { registry: POLICY_REGISTRY, services: {} });
    if (!built.runtime) {
      process.stderr.write(built.problems.join('\n') + '\n');
      process.stderr.write(`${built.problems.length} problem${built.problems.length === 1 ? '' : 's'} found\n`);
      return 1;
    }
    await retireRuntime(built.runtime, undefined);
    const ops = config.apis.reduce((n, a) => n + Math.max(1, a.spec.operations.length), 0);
    process.stdout.write(`ok: ${config.apis.length} apis, ${ops} operations, ${config.backends.size} backends, version ${config.version}\n`);
    return 0;
  },
};

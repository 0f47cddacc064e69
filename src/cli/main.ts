// CLI entry: dispatches to one file per verb; exit codes 0 ok, 1 user error, 2 internal error.
import { readFileSync } from 'node:fs';
import type { Verb } from './verb.ts';

const VERBS: Record<string, () => Promise<Verb>> = {
  gateway: async () => (await import('./gateway.ts')).gatewayVerb,
  validate: async () => (await import('./validate.ts')).validateVerb,
  schema: async () => (await import('./schema.ts')).schemaVerb,
  up: async () => (await import('./up.ts')).upVerb,
  subscription: async () => (await import('./subscription.ts')).subscriptionVerb,
  test: async () => (await import('./test.ts')).testVerb,
  sidecar: async () => (await import('./sidecar.ts')).sidecarVerb,
  'demo-app': async () => (await import('./demo-app.ts')).demoAppVerb,
  'control-plane': async () => (await import('./control-plane.ts')).controlPlaneVerb,
  apply: async () => (await import('./apply.ts')).applyVerb,
  get: async () => (await import('./get.ts')).getVerb,
  delete: async () => (await import('./delete.ts')).deleteVerb,
  diff: async () => (await import('./diff.ts')).diffVerb,
  token: async () => (await import('./token.ts')).tokenVerb,
  'admin-token': async () => (await import('./admin-token.ts')).adminTokenVerb,
  login: async () => (await import('./login.ts')).loginVerb,
  logout: async () => (await import('./login.ts')).logoutVerb,
  whoami: async () => (await import('./login.ts')).whoamiVerb,
  ca: async () => (await import('./ca.ts')).caVerb,
  check: async () => (await import('./check.ts')).checkVerb,
  backup: async () => (await import('./backup.ts')).backupVerb,
  restore: async () => (await import('./restore.ts')).restoreVerb,
  explain: async () => (await import('./explain.ts')).explainVerb,
  access: async () => (await import('./access.ts')).accessVerb,
  audit: async () => (await import('./audit.ts')).auditVerb,
  secrets: async () => (await import('./secrets.ts')).secretsVerb,
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

async function help(): Promise<string> {
  const lines = ['lockgate: one trust model from the public edge to every service', '', 'Usage: lockgate <command> [options]', '', 'Commands:'];
  const w = Math.max(...Object.keys(VERBS).map((n) => n.length), 9);
  for (const [name, load] of Object.entries(VERBS)) lines.push(`  ${name.padEnd(w)}  ${(await load()).summary}`);
  lines.push('', 'Options:', `  ${'--help'.padEnd(w)}  help for any command (lockgate <command> --help)`, `  ${'--version'.padEnd(w)}  print the version`, '');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      if (cmd === 'help' && rest[0] && VERBS[rest[0]]) {
        process.stdout.write((await VERBS[rest[0]]()).usage + '\n');
        return 0;
      }
      process.stdout.write(await help());
      return cmd ? 0 : 1;
    }
    if (cmd === '--version' || cmd === '-v' || cmd === 'version') {
      process.stdout.write(`lockgate ${version()} (node ${process.version})\n`);
      return 0;
    }
    const load = VERBS[cmd];
    if (!load) {
      process.stderr.write(`lockgate: unknown command "${cmd}"\n\n${await help()}`);
      return 1;
    }
    const verb = await load();
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(verb.usage + '\n');
      return 0;
    }
    return await verb.run(rest);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' || e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      process.stderr.write(`lockgate ${cmd}: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`lockgate ${cmd}: internal error: ${e.stack ?? e.message}\n`);
    return 2;
  }
}

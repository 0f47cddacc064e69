// `lockgate schema`: prints the JSON Schema of the config format (for editors' YAML language servers).
import { configSchema } from '../model/schema.ts';
import type { Verb } from './verb.ts';

export const schemaVerb: Verb = {
  summary: 'print the JSON Schema of the config format',
  usage: `Usage: lockgate schema

Prints the JSON Schema (draft 2020-12) of one Lockgate config document. Point your editor at it,
e.g. with "# yaml-language-server: $schema=./schema/lockgate.schema.json" at the top of a file.`,
  async run() {
    process.stdout.write(JSON.stringify(configSchema(), null, 2) + '\n');
    return 0;
  },
};

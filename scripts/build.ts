// Compiles src/ to dist/ for the published package: Node does not strip types under node_modules.
import { execFileSync } from 'node:child_process';
import { rmSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
rmSync(path.join(root, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], { stdio: 'inherit' });
// The schema ships beside the code so editors can point at node_modules/lockgate/schema/lockgate.schema.json.
const { configSchema } = await import(path.join(root, 'src/model/schema.ts'));
mkdirSync(path.join(root, 'schema'), { recursive: true });
writeFileSync(path.join(root, 'schema/lockgate.schema.json'), JSON.stringify(configSchema(), null, 2) + '\n');
process.stdout.write('build: dist/ and schema/ written\n');

// Enforces DESIGN.md §3: a file may import only from its own layer or lower ones, and there are no import cycles.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..', 'src');

/** Folder (or file) → layer. `telemetry/channels.ts` sits below the rest of telemetry. */
function layerOf(rel: string): number | undefined {
  if (rel === 'telemetry/channels.ts') return 2;
  const top = rel.split('/')[0];
  const table: Record<string, number> = {
    lib: 0,
    model: 1,
    policy: 2,
    proxy: 3, store: 3, ca: 3, secrets: 3,
    filters: 4, control: 4, agent: 4, admin: 4, telemetry: 4,
    app: 5, cli: 5,
    web: 6,
  };
  return table[top];
}

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

const IMPORT = /^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;

const files = walk(ROOT);
const problems: string[] = [];
const graph = new Map<string, string[]>();
for (const file of files) {
  const rel = path.relative(ROOT, file).split(path.sep).join('/');
  const layer = layerOf(rel);
  if (layer === undefined) {
    problems.push(`${rel}: folder is not in the layer table (DESIGN.md §3)`);
    continue;
  }
  const src = readFileSync(file, 'utf8');
  const edges: string[] = [];
  for (const m of src.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2] ?? m[3];
    if (!spec.startsWith('.')) continue;
    const target = path.relative(ROOT, path.resolve(path.dirname(file), spec)).split(path.sep).join('/');
    const tl = layerOf(target);
    if (tl === undefined) {
      problems.push(`${rel}: imports ${spec}, outside src/ layers`);
      continue;
    }
    // Type-only imports of a higher layer are still a coupling: forbid them too.
    if (tl > layer) problems.push(`${rel} (layer ${layer}) imports ${target} (layer ${tl})`);
    if (rel.startsWith('proxy/') && target.startsWith('filters/')) problems.push(`${rel}: proxy/ must not import filters/`);
    if (rel.startsWith('filters/') && rel !== 'filters/index.ts' && target.startsWith('filters/') && !target.endsWith('index.ts')) problems.push(`${rel}: filters must not import each other (${target})`);
    edges.push(target);
  }
  graph.set(rel, edges);
}

// Cycle detection (DFS with colours).
const colour = new Map<string, 0 | 1 | 2>();
const stack: string[] = [];
function visit(n: string): void {
  colour.set(n, 1);
  stack.push(n);
  for (const m of graph.get(n) ?? []) {
    const c = colour.get(m) ?? 0;
    if (c === 1) problems.push(`import cycle: ${[...stack.slice(stack.indexOf(m)), m].join(' → ')}`);
    else if (c === 0 && graph.has(m)) visit(m);
  }
  stack.pop();
  colour.set(n, 2);
}
for (const n of graph.keys()) if (!colour.get(n)) visit(n);

if (problems.length) {
  process.stderr.write(`check-layers: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(`check-layers: ${files.length} files, layers and acyclicity ok\n`);

// Writes schema/lockgate.schema.json and the field tables in docs/config.md from the field descriptors; --check only compares.
import { readFileSync, writeFileSync } from 'node:fs';
import type { Field } from '../src/model/field.ts';
import { KINDS, metadataFields } from '../src/model/kinds.ts';
import { configSchema, sourceForm } from '../src/model/schema.ts';
import { POLICIES } from '../src/model/policy-catalog.ts';

const root = new URL('../', import.meta.url);
const schemaFile = new URL('schema/lockgate.schema.json', root);
const docsFile = new URL('docs/config.md', root);
const policiesFile = new URL('docs/policies.md', root);

function typeText(f: Field): string {
  switch (f.t) {
    case 'str':
      return 'string';
    case 'int':
    case 'num': {
      const name = f.t === 'int' ? 'integer' : 'number';
      if (f.min !== undefined && f.max !== undefined) return `${name} ${f.min}–${f.max}`;
      return f.min !== undefined ? `${name} ≥ ${f.min}` : name;
    }
    case 'bool':
      return 'boolean';
    case 'enum':
      return f.values.map((v) => `\`${v}\``).join(' \\| ');
    case 'statusRange':
      return 'status or range';
    case 'list':
      return `list of ${f.items.t === 'obj' ? 'objects' : typeText(f.items)}`;
    case 'dict':
      return `map of ${typeText(f.values)}`;
    case 'any':
      return 'any value';
    case 'alt':
      return [f.scalar, f.list, f.map].filter((x) => x !== undefined).map((x) => (x.t === 'obj' ? 'object' : typeText(x))).join(' or ');
    case 'ref':
      return f.name;
    default:
      return f.t === 'obj' ? 'object' : f.t;
  }
}

function defaultText(f: Field): string {
  if (f.required) return '**required**';
  if (f.defaultText) return f.defaultText.replace(/"/g, '`');
  const d = sourceForm(f, f.default);
  if (d === undefined) return f.t === 'obj' && !f.optional ? '(see fields)' : '—';
  return `\`${typeof d === 'string' ? d : JSON.stringify(d)}\``;
}

function rows(f: Field, path: string, out: string[]): void {
  if (path) out.push(`| \`${path}\` | ${typeText(f)} | ${defaultText(f)} | ${f.description.replace(/\|/g, '\\|')} |`);
  const inner = f.t === 'list' ? f.items : f;
  const prefix = f.t === 'list' ? `${path}[]` : path;
  if (inner.t !== 'obj') return;
  for (const [name, child] of Object.entries(inner.fields)) rows(child, prefix ? `${prefix}.${name}` : name, out);
}

function table(f: Field): string {
  const out = ['| Field | Type | Default | Description |', '|---|---|---|---|'];
  rows(f, '', out);
  return out.join('\n');
}

function withTables(markdown: string, tables: Record<string, Field>, marker = 'fields'): string {
  let text = markdown;
  for (const [name, field] of Object.entries(tables)) {
    const begin = `<!-- ${marker}:${name}:begin -->`;
    const end = `<!-- ${marker}:${name}:end -->`;
    const re = new RegExp(`${begin}[\\s\\S]*?${end}`);
    if (!re.test(text)) throw new Error(`docs lack the ${begin} … ${end} markers`);
    text = text.replace(re, () => `${begin}\n${table(field)}\n${end}`);
  }
  return text;
}

const check = process.argv.includes('--check');
const schemaText = `${JSON.stringify(configSchema(), null, 2)}\n`;
const docsBefore = readFileSync(docsFile, 'utf8');
const kindTables: Record<string, Field> = { metadata: metadataFields };
for (const [kind, def] of Object.entries(KINDS)) kindTables[kind] = def.spec;
const docsText = withTables(docsBefore, kindTables);
const policiesBefore = readFileSync(policiesFile, 'utf8');
const policyTables: Record<string, Field> = {};
for (const [name, def] of Object.entries(POLICIES)) if (name !== 'base') policyTables[name] = def.attrs;
const policiesText = withTables(policiesBefore, policyTables, 'policy');
const schemaBefore = (() => {
  try {
    return readFileSync(schemaFile, 'utf8');
  } catch {
    return '';
  }
})();
if (check) {
  const stale = [
    schemaBefore !== schemaText && 'schema/lockgate.schema.json',
    docsBefore !== docsText && 'docs/config.md',
    policiesBefore !== policiesText && 'docs/policies.md',
  ].filter(Boolean);
  if (stale.length > 0) {
    console.error(`out of date: ${stale.join(', ')}; run node scripts/write-schema.ts`);
    process.exit(1);
  }
} else {
  writeFileSync(schemaFile, schemaText);
  writeFileSync(docsFile, docsText);
  writeFileSync(policiesFile, policiesText);
}

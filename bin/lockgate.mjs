#!/usr/bin/env node
// Launcher: checks the Node version with a clear message, then loads the CLI (TypeScript in a checkout, compiled JS when installed).
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`lockgate needs Node.js 24 or newer (this is ${process.version}).\n` +
    'In a checkout, run it through npm (npm start, npx lockgate …) so the pinned Node 24 is used.\n');
  process.exit(1);
}
import { existsSync } from 'node:fs';
import * as nodeModule from "node:module";
const compiled = new URL('../dist/cli/main.js', import.meta.url);
const source = new URL('../src/cli/main.ts', import.meta.url);
try { nodeModule.enableCompileCache?.(); } catch {}
const entry = existsSync(source) ? source : compiled; // a checkout runs its source; the package ships dist/
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));

#!/usr/bin/env node
// Launcher: checks the Node version with a clear message, then loads the CLI (TypeScript in a checkout, compiled JS when installed).
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`lockgate needs Node.js 24 or newer (this is ${process.version}).\n` +
    'In a checkout, run it through npm (npm start, npx lockgate …) so the pinned Node 24 is used.\n');
  process.exit(1);
}
// The sidecar serves on its main thread, where V8's young generation grows to 32 MiB semi-spaces under load (its
// peak RSS grew with the request rate: 182 MB at ~9,000 req/s against 159 with 16). The flag must be set before the
// heap exists, so the launcher re-executes itself with it (same PID) unless one was given (docs/performance.md).
const SIDECAR_SEMI_SPACE_MB = 16;
if (process.argv[2] === 'sidecar' && typeof process.execve === 'function' && !process.env.LOCKGATE_LAUNCHED
  && ![...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)].some((a) => a.startsWith('--max-semi-space-size'))) {
  process.execve(process.execPath, [process.execPath, `--max-semi-space-size=${SIDECAR_SEMI_SPACE_MB}`, ...process.execArgv, ...process.argv.slice(1)],
    { ...process.env, LOCKGATE_LAUNCHED: '1' });
}
import { existsSync } from 'node:fs';
import * as nodeModule from "node:module";
const compiled = new URL('../dist/cli/main.js', import.meta.url);
const source = new URL('../src/cli/main.ts', import.meta.url);
try { nodeModule.enableCompileCache?.(); } catch {}
const entry = existsSync(source) ? source : compiled; // a checkout runs its source; the package ships dist/
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));

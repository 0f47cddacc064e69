// Micro-benchmark for canonicalPath: ns/op on a clean (fast-path) target and on dirty ones.
// Run: npx node bench/micro/canonical-path.ts
import { canonicalPath } from '../../src/lib/canonical-path.ts';
import type { CanonicalPathOptions } from '../../src/lib/canonical-path.ts';

const opts: CanonicalPathOptions = { escapedSlashes: 'reject', backslash: 'reject', semicolon: 'keep' };
const strip: CanonicalPathOptions = { escapedSlashes: 'decode', backslash: 'slash', semicolon: 'strip' };

const cases: Array<[string, string, CanonicalPathOptions]> = [
  ['clean', '/api/v1/orders/12345/items?limit=10&offset=20', opts],
  ['clean, no query', '/api/v1/orders/12345/items', opts],
  ['dirty (dots, escapes, //)', '/api/v1//orders/./12345/%2e%2E/items/%7euser%3a?limit=10', opts],
  ['dirty (strip ;, \\, %2F)', '/api;v=1/orders\\12345/..;/items%2Fx?limit=10', strip],
  ['rejected (%00)', '/api/v1/orders%00.json', opts],
];

function run(raw: string, o: CanonicalPathOptions, n: number): number {
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const r = canonicalPath(raw, o);
    sink += 'path' in r ? r.path.length : 1;
  }
  const ns = Number(process.hrtime.bigint() - t0) / n;
  if (sink < 0) console.log(sink);
  return ns;
}

/** Peers for scale: the cheapest possible look at every char, and the WHATWG parser many Node proxies use. */
function baselines(raw: string, n: number): [number, number] {
  let sink = 0;
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) for (let j = 0; j < raw.length; j++) sink += raw.charCodeAt(j);
  const scan = Number(process.hrtime.bigint() - t0) / n;
  t0 = process.hrtime.bigint();
  for (let i = 0; i < n / 10; i++) sink += new URL(raw, 'http://h').pathname.length;
  const url = Number(process.hrtime.bigint() - t0) / (n / 10);
  if (sink < 0) console.log(sink);
  return [scan, url];
}

const N = 2_000_000;
for (const [, raw, o] of cases) run(raw, o, N / 4); // warm up every shape before timing any
for (const [name, raw, o] of cases) {
  const best = Math.min(run(raw, o, N), run(raw, o, N), run(raw, o, N));
  const [scan, url] = baselines(raw, N);
  console.log(`${name.padEnd(28)} ${best.toFixed(1).padStart(7)} ns/op   (charCodeAt scan ${scan.toFixed(1)}, new URL ${url.toFixed(1)})  ${raw}`);
}

// parseDocuments reuses the YAML parse of unchanged pieces of a text: the result must be exactly that of a fresh parse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { positionOf, type DocContext, type LinePos } from './doc-context.ts';
import { configTextDigest, noteConfigPieces, parseDocuments } from './parse-documents.ts';
import { configDocs, configPieces } from './snapshot-delta.ts';
import type { Problem } from './types.ts';

const H = 'apiVersion: lockgate.dev/v1alpha1';

/** A position as problems see it: a kept document's are relative to its piece of text, shifted by lineShift. */
function placed(cx: DocContext, pos: LinePos): LinePos {
  return { line: pos.line + (cx.lineShift ?? 0), col: pos.col };
}

/** Everything a caller can observe: resources, problems, and each document's positions. */
function observe(text: string, reuse: boolean, file = '/etc/lockgate/config.yaml'): string {
  const problems: Problem[] = [];
  const { resources } = parseDocuments(text, file, problems, { reuse });
  return JSON.stringify({
    resources: resources.map((r) => ({
      resource: r.resource,
      start: r.cx.start,
      kind: r.cx.kind,
      values: [...r.cx.values].map(([k, v]) => [k, placed(r.cx, v)]),
      keys: [...r.cx.keys].map(([k, v]) => [k, placed(r.cx, v)]),
      // What report() uses: the same as the maps say, shifted.
      where: [...r.cx.values.keys()].map((k) => positionOf(r.cx, k)),
      baseDir: r.cx.baseDir,
      // lineAt takes offsets into the source the document was parsed from: its own nodes' ranges.
      root: r.cx.doc?.contents?.range ? placed(r.cx, r.cx.lineAt(r.cx.doc.contents.range[0])) : null,
    })),
    problems,
  });
}

/** Equal, or the first difference with some context (the whole texts are too long to read). */
function assertSame(actual: string, expected: string, message = ''): void {
  if (actual === expected) return;
  let i = 0;
  while (actual[i] === expected[i]) i++;
  assert.fail(`${message}: differs at ${i}:\n  reused: …${actual.slice(Math.max(0, i - 200), i + 100)}\n  fresh:  …${expected.slice(Math.max(0, i - 200), i + 100)}`);
}

function sameAsFresh(text: string, message = JSON.stringify(text.slice(0, 80))): void {
  const fresh = observe(text, false);
  assertSame(observe(text, true), fresh, message); // first time: pieces parsed and cached
  assertSame(observe(text, true), fresh, message); // again: every piece from the cache
  // The text's pieces noted (a node's snapshot rebuilt from a delta): each document a piece of its own.
  const pieces = configPieces(configDocs(text));
  assert.equal(pieces.join(''), text);
  noteConfigPieces('', []);
  const digest = configTextDigest(text).toString('hex');
  noteConfigPieces(text, pieces);
  assertSame(observe(text, true), fresh, `${message} (noted pieces)`);
  // The digest (the version's) is the same however the text came: cut here, or noted, its pieces' digests kept.
  assert.equal(configTextDigest(text).toString('hex'), digest, `${message}: digest of the noted pieces`);
  noteConfigPieces(text, pieces.map((d) => Buffer.from(d, 'utf16le').toString('utf16le'))); // other string objects, same text
  assertSame(observe(text, true), fresh, `${message} (noted pieces, from the cache)`);
  assert.equal(configTextDigest(text).toString('hex'), digest, `${message}: digest of the noted pieces, from the cache`);
  noteConfigPieces('', []);
}

function api(i: number, ops: number, extra = ''): string {
  const operations = Array.from({ length: ops }, (_, j) => `    - { methods: [GET], urlTemplate: "/r${j}/{id}" }`).join('\n');
  return `${H}\nkind: Api\nmetadata: { name: api-${i} }\nspec:\n  hostnames: [h${i}.example.com]\n  path: /svc${i}\n  backend: upstream\n  operations:\n${operations}\n${extra}`;
}

const BACKEND = `${H}\nkind: Backend\nmetadata: { name: upstream }\nspec: { url: "http://127.0.0.1:9" }\n`;

function config(apis: number, ops: number, policy = 'one'): string {
  const docs = [BACKEND, ...Array.from({ length: apis }, (_, i) => api(i, ops))];
  docs.push(`${H}\nkind: ApiPolicy\nmetadata: { name: probe }\nspec:\n  scope: { api: api-0 }\n  inbound:\n    - return-response: { status: 200, headers: { x-seq: ["${policy}"] } }\n`);
  return docs.join('---\n');
}

test('a config parsed again with one document changed is the same as parsed afresh, cached pieces and all', () => {
  const a = config(30, 20, 'one');
  const b = config(30, 20, 'two');
  const { resources, problems } = parseDocuments(a, 'a.yaml');
  assert.deepEqual(problems, []);
  assert.equal(resources.length, 32);
  sameAsFresh(a);
  sameAsFresh(b);
  assert.notEqual(observe(a, true), observe(b, true));
  // The positions of the changed document and of the ones after it are those of the new text.
  const c = a.replace('api-3 }', 'api-3 }\n# a comment that moves every later line down\n');
  sameAsFresh(c);
});

test('the config digest: the same for the same text however it is parsed, another for any change, and not a digest of the documents alone', () => {
  const docs = [`${H}\nkind: Backend\nmetadata:\n  name: a\nspec:\n  url: http://127.0.0.1:1\n`, `${H}\nkind: Backend\nmetadata:\n  name: b\nspec:\n  url: http://127.0.0.1:2\n`];
  const text = docs.join('---\n');
  const d = configTextDigest(text).toString('hex');
  assert.match(d, /^[0-9a-f]{64}$/);
  assert.equal(configTextDigest(text).toString('hex'), d);
  assert.notEqual(configTextDigest(text.replace('127.0.0.1:2', '127.0.0.1:3')).toString('hex'), d, 'a changed document');
  assert.notEqual(configTextDigest(`${docs[1]}---\n${docs[0]}`).toString('hex'), d, 'the same documents in another order');
  assert.notEqual(configTextDigest(text.replace('\n---\n', '\n--- \n')).toString('hex'), d, 'a separator that is not one');
  // The empty text noted as no pieces (how tests clear the note) digests as configDocuments cuts it: one empty piece.
  const empty = configTextDigest('').toString('hex');
  noteConfigPieces('', []);
  assert.equal(configTextDigest('').toString('hex'), empty);
  noteConfigPieces('', configPieces(configDocs('')));
  assert.equal(configTextDigest('').toString('hex'), empty);
  noteConfigPieces(text, configPieces(configDocs(text)));
  parseDocuments(text, '/etc/lockgate/config.yaml');
  assert.equal(configTextDigest(text).toString('hex'), d, 'noted, with its pieces parsed');
  noteConfigPieces('', []);
});

test('what a caller does to the resources it got does not reach the next parse', () => {
  const text = config(5, 10);
  const first = parseDocuments(text, 'a.yaml').resources;
  (first[1].resource.spec as { path: string }).path = '/changed';
  (first[1].resource.spec as { operations: unknown[] }).operations.length = 0;
  first[1].cx.values.clear();
  sameAsFresh(text);
});

test('the same text under another file name names that file', () => {
  const text = config(5, 10);
  parseDocuments(text, '/a/one.yaml');
  const problems: Problem[] = [];
  const { resources } = parseDocuments(text, '/b/two.yaml', problems);
  assert.equal(resources[0].resource.source?.file, '/b/two.yaml');
  assert.equal(resources[0].cx.baseDir, '/b');
  assertSame(observe(text, true, '/b/two.yaml'), observe(text, false, '/b/two.yaml'));
});

// Texts where a `---` line, a directive, a byte order mark or an error could make pieces parse differently.
const EDGE_CASES: Record<string, string> = {
  'block scalar holding a --- line': `${api(1, 12)}  description: |\n    text\n---\n    more\n---\n${api(2, 12)}`,
  'double-quoted scalar across a --- line': `${api(1, 12)}  description: "a\n---\n  b"\n---\n${api(2, 12)}`,
  'single-quoted scalar across a --- line': `${api(1, 12)}  description: 'a\n---\n  b'\n---\n${api(2, 12)}`,
  'plain scalar across a --- line': `${api(1, 12)}  description: a\n    b\n---\n    c\n---\n${api(2, 12)}`,
  'flow mapping across a --- line': `${api(1, 12)}  labels: { a: 1,\n---\n  b: 2 }\n---\n${api(2, 12)}`,
  'comments before ---': `${api(1, 12)}# trailing comment\n\n# another\n---\n${api(2, 12)}`,
  'document end markers': `${api(1, 12)}...\n---\n${api(2, 12)}...\n`,
  'bare document after ...': `${api(1, 12)}...\n${api(2, 12)}`,
  'anchors and aliases within a document': `${api(1, 12)}  hostnames: &h [a.example.com]\n---\n${api(2, 12).replace('hostnames: [h2.example.com]', 'hostnames: *h')}`,
  'CRLF line endings': config(6, 8).replace(/\n/g, '\r\n'),
  'no newline at the end': config(6, 8).trimEnd(),
  'leading ---': `---\n${config(6, 8)}`,
  'empty documents': `---\n---\n${config(6, 8)}---\n---\n`,
  'a directive': `%YAML 1.2\n---\n${config(6, 8)}`,
  'a directive in the middle': `${config(3, 8)}---\n%YAML 1.2\n---\n${config(3, 8)}`,
  'byte order mark': `\uFEFF${config(6, 8)}`,
  'a syntax error in one document': config(6, 8).replace('path: /svc3', 'path: [/svc3'),
  'a syntax error just before ---': `${api(1, 12)}  description: "open\n---\n${api(2, 12)}`,
  'tab indentation error': `${api(1, 12)}\t bad: 1\n---\n${api(2, 12)}`,
  'a decode problem': config(6, 8).replace('urlTemplate: "/r3/{id}"', 'urlTemplate: 7'),
  '--- with content': `${api(1, 12)}--- # comment\n${api(2, 12)}--- !!map\n${api(3, 12)}`,
  'indented ---': `${api(1, 12)}  ---\n${api(2, 12)}`,
  'a lone surrogate in a value': `${api(1, 12)}  description: "x\uD800y"\n---\n${api(2, 12).replace('/svc2', '/svc2\uDC00')}`,
  'duplicate keys': `${api(1, 12)}  path: /again\n---\n${api(2, 12)}`,
};

for (const [name, text] of Object.entries(EDGE_CASES)) {
  test(`reused parse = fresh parse: ${name}`, () => sameAsFresh(text, name));
}

test('random documents, separators and breakage: the reused parse is the fresh parse', () => {
  const fragment = fc.oneof(
    fc.integer({ min: 1, max: 30 }).map((n) => api(n, n)),
    fc.constant(BACKEND),
    fc.constant(`${H}\nkind: Backend\nmetadata: { name: b }\nspec:\n  url: "http://x"\n  description: |\n    line\n`),
    fc.constant('# only a comment\n'),
    fc.constant(''),
    fc.constant('key: "unterminated\n'),
    fc.constant('  - [a, b\n'),
    fc.constant('plain\n  continued\n'),
    fc.constant('x: |\n  block\n'),
    fc.constant('%YAML 1.2\n'),
    fc.constant('...\n'),
    fc.constant('a: &x 1\nb: *x\n'),
    fc.constant('c: *missing\n'),
  );
  const separator = fc.constantFrom('---\n', '---\n', '---\n', '--- \n', '...\n---\n', '\n', '---\r\n', '');
  fc.assert(
    fc.property(fc.array(fc.tuple(fragment, separator), { minLength: 1, maxLength: 12 }), (parts) => {
      const text = parts.map(([f, s]) => f + s).join('');
      sameAsFresh(text);
    }),
    { numRuns: 300 },
  );
});

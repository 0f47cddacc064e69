// Tests for the path-template segment tree: parsing, precedence of the depth-first lookup, param offsets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createNode, lookupTree, parseTemplate, segmentHash, terminalNode } from './radix-tree.ts';
import type { TreeNode } from './radix-tree.ts';

test('parseTemplate splits segments, params and the prefix marker', () => {
  assert.deepEqual(parseTemplate('/orders/{id}/items/*'), { segments: ['orders', null, 'items'], paramNames: ['id'], prefix: true });
  assert.deepEqual(parseTemplate('/*'), { segments: [], paramNames: [], prefix: true });
  assert.deepEqual(parseTemplate('/'), { segments: [''], paramNames: [], prefix: false });
  assert.deepEqual(parseTemplate('/a/{x}/{y}'), { segments: ['a', null, null], paramNames: ['x', 'y'], prefix: false });
});

test('parseTemplate interns segments and names through the given map', () => {
  const intern = new Map<string, string>();
  const a = parseTemplate('/items/{id}', intern);
  const b = parseTemplate('/x/items/{id}/*', intern);
  assert.ok(typeof a !== 'string' && typeof b !== 'string');
  assert.equal(intern.size, 3);
  assert.equal(intern.get('items'), 'items');
});

test('parseTemplate returns a problem for malformed templates', () => {
  for (const bad of ['orders', '/a*', '/*/b', '/a/{id', '/a/x{id}', '/a/{}', '/a/{1x}', '/{x}/{x}', '/{__proto__}']) {
    assert.equal(typeof parseTemplate(bad), 'string', bad);
  }
});

// Builds a tree whose candidates are the template strings themselves (one per terminal); select takes it.
function tree(templates: string[]): TreeNode<string> {
  const root = createNode<string>();
  for (const t of templates) {
    const parsed = parseTemplate(t);
    assert.notEqual(typeof parsed, 'string', t);
    const template = parsed as Exclude<typeof parsed, string>;
    const node = terminalNode(root, template);
    if (template.prefix) node.prefix = t;
    else node.end = t;
  }
  return root;
}
const first = (head: string) => head;
function find(root: TreeNode<string>, path: string, offsets = new Int32Array(8)): string | undefined {
  return lookupTree(root, path, first, undefined, undefined, offsets);
}

test('lookup precedence: static segment > param > prefix, decided at the first differing segment', () => {
  const root = tree(['/*', '/a/*', '/a/{x}', '/a/b', '/a/{x}/c', '/{y}/b/*', '/a/b/c/*']);
  const cases: Array<[string, string | undefined]> = [
    ['/a/b', '/a/b'],
    ['/a/z', '/a/{x}'],
    ['/a/z/c', '/a/{x}/c'],
    ['/a/z/d', '/a/*'],
    ['/a/b/c', '/a/b/c/*'],
    ['/a/b/c/d', '/a/b/c/*'],
    ['/a/b/d', '/a/*'], // '/a/b' has no prefix; backtracks to param '/a/{x}' (needs end), then '/a/*'
    ['/q/b/zz', '/{y}/b/*'],
    ['/q', '/*'],
    ['/', '/*'],
  ];
  for (const [path, want] of cases) assert.equal(find(root, path), want, path);
});

test('a prefix matches only on a segment boundary', () => {
  const root = tree(['/admin/*']);
  assert.equal(find(root, '/admin'), '/admin/*');
  assert.equal(find(root, '/admin/'), '/admin/*');
  assert.equal(find(root, '/admin/users/1'), '/admin/*');
  assert.equal(find(root, '/administrator'), undefined);
  assert.equal(find(root, '/adm'), undefined);
  assert.equal(find(root, 'admin'), undefined);
});

test('params need a non-empty segment and report offsets on the accepted branch', () => {
  const root = tree(['/o/{id}/items/{item}', '/o/{id}']);
  const offsets = new Int32Array(4);
  const path = '/o/42/items/abc';
  assert.equal(find(root, path, offsets), '/o/{id}/items/{item}');
  assert.equal(path.slice(offsets[0], offsets[1]), '42');
  assert.equal(path.slice(offsets[2], offsets[3]), 'abc');
  assert.equal(find(root, '/o/'), undefined);
  assert.equal(find(root, '/o//items/x'), undefined);
  assert.equal(find(root, '/o/42/items'), undefined);
});

test('a rejecting select makes the lookup backtrack to less specific routes', () => {
  const root = tree(['/a/b', '/a/{x}', '/a/*']);
  const seen: string[] = [];
  const none = (head: string) => void seen.push(head);
  assert.equal(lookupTree(root, '/a/b', none, undefined, undefined, new Int32Array(2)), undefined);
  assert.deepEqual(seen, ['/a/b', '/a/{x}', '/a/*']);
});

test('segments whose hashes collide are told apart by their text', () => {
  // Found once by brute force; the assertion keeps the test honest if the hash ever changes.
  const pair = ['s31597', 's618190'];
  assert.equal(segmentHash(pair[0], 0, pair[0].length), segmentHash(pair[1], 0, pair[1].length));
  const root = tree([`/${pair[0]}/*`, `/${pair[1]}/*`]);
  assert.equal(find(root, `/${pair[0]}/x`), `/${pair[0]}/*`);
  assert.equal(find(root, `/${pair[1]}`), `/${pair[1]}/*`);
  assert.equal(find(root, '/zzz'), undefined);
});

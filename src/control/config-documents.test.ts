// Tests for splitting request bodies into stored documents, kind names, and document equality.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfigKey, resolveKind, sameDocument, splitDocuments } from './config-documents.ts';

test('resolveKind takes any case and plurals, and nothing else', () => {
  assert.equal(resolveKind('Backend'), 'Backend');
  assert.equal(resolveKind('backend'), 'Backend');
  assert.equal(resolveKind('BACKENDS'), 'Backend');
  assert.equal(resolveKind('apipolicies'), 'ApiPolicy');
  assert.equal(resolveKind('backendz'), undefined);
  assert.equal(resolveKind(''), undefined);
});

test('splitDocuments keeps each document\'s own text, its key and line; unnamed documents are left out', () => {
  const text = '# leading comment\napiVersion: v\nkind: Backend\nmetadata: { name: a }\n---\n  kind: Api\n  metadata:\n    name: b\n    namespace: shop\n---\n{"kind": "Product", "metadata": {"name": "c"}}\n---\nkind: Backend\n---\n';
  const docs = splitDocuments(text);
  assert.deepEqual(docs.map((d) => [d.key, d.line]), [['/config/Backend/default/a', 2], ['/config/Api/shop/b', 6], ['/config/Product/default/c', 11]]);
  assert.equal(docs[0].text, 'apiVersion: v\nkind: Backend\nmetadata: { name: a }\n');
  assert.equal(docs[1].text, '  kind: Api\n  metadata:\n    name: b\n    namespace: shop\n');
  assert.equal(docs[2].text, '{"kind": "Product", "metadata": {"name": "c"}}\n');
  assert.deepEqual(splitDocuments('kind: [unclosed\n'), []);
  assert.deepEqual(parseConfigKey(docs[1].key), { kind: 'Api', namespace: 'shop', name: 'b' });
});

test('sameDocument ignores formatting, comments and field order, not values', () => {
  assert.ok(sameDocument('a: 1\nb: { c: 2 }\n', '# x\nb:\n  c: 2\na: 1\n'));
  assert.ok(!sameDocument('a: 1\n', 'a: 2\n'));
  assert.ok(!sameDocument('a: [1, 2]\n', 'a: [2, 1]\n'));
});

// Tests for edit distance and "did you mean" suggestions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { didYouMean, editDistance, suggest } from './suggest.ts';

test('editDistance counts inserts, deletes, substitutions and neighbour swaps as one edit each', () => {
  assert.equal(editDistance('listeners', 'listeners'), 0);
  assert.equal(editDistance('listners', 'listeners'), 1);
  assert.equal(editDistance('lsiteners', 'listeners'), 1);
  assert.equal(editDistance('port', 'prot'), 1);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('kitten', 'sitting'), 3);
});

test('suggest picks the closest name within a limit that grows with the word, ignoring case', () => {
  const fields = ['listeners', 'limits', 'trustedProxies', 'maxHops', 'admin'];
  assert.equal(suggest('listners', fields), 'listeners');
  assert.equal(suggest('trustedProxys', fields), 'trustedProxies');
  assert.equal(suggest('MaxHops', fields), 'maxHops');
  assert.equal(suggest('adm', fields), undefined, 'two edits are too many for a three-letter word');
  assert.equal(suggest('zzzzzz', fields), undefined);
  assert.equal(didYouMean('limts', fields), ' (did you mean "limits"?)');
  assert.equal(didYouMean('nothing-like-it', fields), '');
});

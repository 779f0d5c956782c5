import assert from 'node:assert/strict';
import { test } from 'node:test';
import { editDistance, suggestFieldName } from '../../src/manifest/suggest';

const FIELDS = ['sessionAffinity', 'selector', 'ports', 'type', 'targetPort', 'nodePort'];

test('suggests the field that differs only in case, dashes or underscores', () => {
  assert.equal(suggestFieldName('sessionaffinity', FIELDS), 'sessionAffinity');
  assert.equal(suggestFieldName('session_affinity', FIELDS), 'sessionAffinity');
  assert.equal(suggestFieldName('target-port', FIELDS), 'targetPort');
});

test('suggests a field within two edits, counting a swap as one', () => {
  assert.equal(suggestFieldName('selecter', FIELDS), 'selector');
  assert.equal(suggestFieldName('prots', FIELDS), 'ports');
  assert.equal(suggestFieldName('targetPorts', FIELDS), 'targetPort');
});

test('suggests nothing for a word that is not a near miss', () => {
  assert.equal(suggestFieldName('replicas', FIELDS), undefined);
  assert.equal(suggestFieldName('tag', FIELDS), undefined);
});

test('measures edit distance with adjacent swaps', () => {
  assert.equal(editDistance('abc', 'abc'), 0);
  assert.equal(editDistance('abc', 'acb'), 1);
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(editDistance('', 'abc'), 3);
  assert.equal(editDistance('abcdef', 'uvwxyz', 2), 2);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isEmptySelector, matchesSelector } from '../../src/manifest/selector';
import type { SelectorOperator } from '../../src/manifest/types';

const labels = { app: 'web', tier: 'front' };

test('matches when every matchLabels entry is present with the same value', () => {
  assert.equal(matchesSelector({ matchLabels: { app: 'web' } }, labels), true);
  assert.equal(matchesSelector({ matchLabels: { app: 'web', tier: 'back' } }, labels), false);
  assert.equal(matchesSelector({ matchLabels: { zone: 'a' } }, labels), false);
});

test('evaluates each set-based operator', () => {
  const match = (operator: SelectorOperator, key: string, values?: string[]) =>
    matchesSelector({ matchExpressions: [{ key, operator, values }] }, labels);
  assert.equal(match('In', 'app', ['web', 'api']), true);
  assert.equal(match('In', 'zone', ['a']), false);
  assert.equal(match('NotIn', 'app', ['api']), true);
  assert.equal(match('NotIn', 'zone', ['a']), true);
  assert.equal(match('NotIn', 'app', ['web']), false);
  assert.equal(match('Exists', 'tier'), true);
  assert.equal(match('DoesNotExist', 'tier'), false);
});

test('treats a selector without terms as empty, matching everything', () => {
  assert.equal(isEmptySelector({}), true);
  assert.equal(matchesSelector({}, {}), true);
  assert.equal(isEmptySelector({ matchLabels: { app: 'web' } }), false);
});

test('does not treat inherited object properties as labels', () => {
  const selector = { matchExpressions: [{ key: 'constructor', operator: 'Exists' as const }] };
  assert.equal(matchesSelector(selector, {}), false);
});
